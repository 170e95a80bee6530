"""Logs as one JSON object per line, with a request id, and nothing a patient could be known by.

Why a fixed allowlist of fields: the easiest way to leak patient data is a well-meant
`log.info(body)`. Only the fields named in `SAFE_FIELDS` leave the process; anything else passed
in `extra=` is dropped, so a careless log call cannot widen what is written.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid

from flask import Flask, Response, g, request

SAFE_FIELDS = (
    "request_id",
    "method",
    "path",
    "status",
    "elapsed_ms",
    "service",
    "cards",
    "rules",
    "data_mode",
    "error",
    "where",
    "key",
    "keys",
    "reason",
    "setting",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in SAFE_FIELDS:
            if hasattr(record, name):
                out[name] = getattr(record, name)
        return json.dumps(out, default=str)


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    logging.getLogger("cds_service").setLevel(level)
    # urllib3 logs every URL it fetches at DEBUG, and FHIR search URLs carry the patient id.
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def init_app(app: Flask) -> None:
    access = logging.getLogger("cds_service.access")

    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if incoming.isalnum() and len(incoming) <= 64 else uuid.uuid4().hex

    @app.after_request
    def log_request(response: Response) -> Response:
        elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        response.headers["X-Request-Id"] = g.get("request_id", "")
        access.info(
            "request",
            extra={
                "request_id": g.get("request_id"),
                "method": request.method,
                "path": request.url_rule.rule if request.url_rule else "(unmatched)",
                "status": response.status_code,
                "elapsed_ms": round(elapsed, 1),
            },
        )
        return response
