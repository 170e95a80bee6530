"""Logs carry only allowlisted fields, and no library logs FHIR URLs (which hold patient ids)."""

from __future__ import annotations

import json
import logging

from cds_service.observability import JsonFormatter
from tests.conftest import make_app


def test_only_safe_fields_leave_the_process():
    record = logging.LogRecord("cds_service.x", logging.INFO, __file__, 1, "hook answered", None, None)
    record.service = "svc"
    record.patient_id = "pat-secret"  # a careless extra= must not be written
    line = json.loads(JsonFormatter().format(record))
    assert line["service"] == "svc" and "patient_id" not in line and "pat-secret" not in json.dumps(line)


def test_urllib3_cannot_log_fhir_urls():
    logging.getLogger("urllib3").setLevel(logging.DEBUG)
    make_app()
    assert logging.getLogger("urllib3").getEffectiveLevel() >= logging.WARNING
