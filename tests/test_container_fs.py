"""The image's command, environment and file system layout, run as the image runs them: read-only
root, /data the only writable volume, an arbitrary UID in group 0, HOME=/ (tests/container_like.py).

Measured before: with the database in the home directory, `--read-only` or an arbitrary UID gave
503 on /readyz and on feedback and lost the audit rows; without a writable /tmp the process did
not start; gunicorn's control socket needs a writable $HOME.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import time
from datetime import UTC, datetime

import pytest
import requests

import fhir_fixtures
from cds_service.server import GRACEFUL_TIMEOUT
from tests import container_like
from tests.auth_tokens import PUBLIC_BASE, bearer, token
from tests.conftest import SIGN
from tests.jwks_server import serving_jwks
from tests.processes import free_port, wait_ready

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def _need_namespaces():
    reason = container_like.available()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the read-only container test: {reason}")
        pytest.skip(reason)


@pytest.mark.parametrize("writable_tmp", [True, False], ids=["tmpfs-tmp", "read-only-tmp"])
def test_read_only_root_arbitrary_uid_serves_stores_feedback_and_keeps_every_audit_row(tmp_path, writable_tmp):
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    with serving_jwks(tmp_path) as jwks:
        shutil.copy(jwks.ca_bundle, data / "ca.pem")  # what a deployment would mount as a secret
        env = {
            "IVIG_CDS_PORT": str(port),
            "IVIG_CDS_WORKERS": "2",
            "IVIG_CDS_JWT_ISSUERS": jwks.issuers(),
            "IVIG_CDS_PUBLIC_BASE_URL": PUBLIC_BASE,
            "IVIG_CDS_CA_BUNDLE": "/data/ca.pem",
        }
        process, log = container_like.start(tmp_path, data, env, writable_tmp=writable_tmp)
        base = f"http://127.0.0.1:{port}"
        try:
            assert wait_ready(process, f"{base}/healthz", timeout=60), log.read_text()[-3000:]
            assert requests.get(f"{base}/readyz", timeout=5).status_code == 200
            path = f"/cds-services/{SIGN.id}"
            request = fhir_fixtures.load("P01").rebased(datetime.now(UTC)).prefetch_request(SIGN.prefetch)
            calls = 6
            cards = []
            for _ in range(calls):
                answer = requests.post(base + path, json=request, headers=bearer(token(path)), timeout=10)
                assert answer.status_code == 200, answer.text
                cards = answer.json()["cards"]
            assert cards[0]["indicator"] == "critical"
            signed = bearer(token(path))
            assert requests.post(base + path, json=request, headers=signed, timeout=10).status_code == 200
            assert requests.post(base + path, json=request, headers=signed, timeout=10).status_code == 401  # replay
            feedback_path = f"{path}/feedback"
            report = {
                "feedback": [
                    {
                        "card": cards[0]["uuid"],
                        "outcome": "overridden",
                        "overrideReason": {"reason": cards[0]["overrideReasons"][0]},
                        "outcomeTimestamp": datetime.now(UTC).isoformat(),
                    }
                ]
            }
            stored = requests.post(base + feedback_path, json=report, headers=bearer(token(feedback_path)), timeout=10)
            assert stored.status_code == 200, stored.text
        finally:
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=GRACEFUL_TIMEOUT + 10)
            stopped_in = time.monotonic() - started
    assert process.returncode == 0, log.read_text()[-3000:]
    assert stopped_in < GRACEFUL_TIMEOUT
    database = data / "ivig-cds.db"
    assert database.stat().st_uid == container_like.ARBITRARY_UID
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM invocation").fetchone()[0] == calls + 2
        assert conn.execute("SELECT count(*) FROM feedback").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM jti_seen").fetchone()[0] == calls + 2
    assert "Traceback" not in log.read_text()
