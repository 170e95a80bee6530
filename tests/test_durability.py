"""Feedback answered 200 is on disk: the real server, a stream of posts, `kill -9` mid-stream.

The whole process group (gunicorn master and worker) is killed with SIGKILL, as an OOM killer or a
lost node would; the server is started again on the same SQLite file, and every feedback report
that had been answered 200 must be there. Then a clean SIGTERM shows that a forked worker's audit
writer gets its rows into the database before the worker exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

import fhir_fixtures
from cds_service.storage import Storage
from cds_service.storage.schema import feedback as feedback_table
from cds_service.storage.schema import invocation as invocation_table
from tests.conftest import SIGN
from tests.processes import free_port, wait_ready

TOOL = Path(sys.executable).parent / "ivig-cds"
BUDGET_SECONDS = 20


def _start(database_url: str, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, IVIG_CDS_AUTH="off", IVIG_CDS_DATABASE_URL=database_url)
    with log.open("ab") as sink:
        server = subprocess.Popen(
            [str(TOOL) if TOOL.exists() else "ivig-cds", "serve", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            start_new_session=True,  # its own process group, so kill -9 takes the worker too
        )
    base = f"http://127.0.0.1:{port}"
    if wait_ready(server, f"{base}/readyz", timeout=10):
        return server, base
    os.killpg(server.pid, signal.SIGKILL)
    server.wait(5)
    pytest.fail("the service did not become ready:\n" + log.read_text()[-2000:])


def _item(n: int) -> dict:
    return {
        "card": str(uuid.uuid4()),
        "outcome": "overridden",
        "overrideReason": {"reason": {"system": "urn:ivig-cds:override-reason", "code": "not-applicable"}},
        "outcomeTimestamp": f"2026-06-01T12:00:{n % 60:02d}.{n:06d}Z",
    }


@pytest.mark.integration
def test_every_feedback_answered_200_survives_kill_9_and_audit_rows_survive_sigterm(tmp_path):
    started = time.monotonic()
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    log = tmp_path / "server.log"
    server, base = _start(url, log)
    acknowledged: list[str] = []
    attempts = {"sent": 0}
    stop = threading.Event()

    def stream() -> None:
        with requests.Session() as session:
            n = 0
            while not stop.is_set() and n < 20_000:
                item = _item(n)
                n += 1
                attempts["sent"] += 1
                try:
                    response = session.post(
                        f"{base}/cds-services/{SIGN.id}/feedback", json={"feedback": [item]}, timeout=2
                    )
                except requests.RequestException:
                    time.sleep(0.01)  # the server is gone; keep trying until told to stop
                    continue
                if response.status_code == 200:
                    acknowledged.append(item["card"])

    sender = threading.Thread(target=stream)
    sender.start()
    try:
        deadline = time.monotonic() + 5
        while len(acknowledged) < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.killpg(server.pid, signal.SIGKILL)  # mid-stream: posts are in flight
        server.wait(5)
        time.sleep(0.2)  # a few posts fail against the dead server
    finally:
        stop.set()
        sender.join(10)
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(5)
    assert len(acknowledged) >= 100, "the stream should have been answered before the kill:\n" + log.read_text()[-2000:]
    assert attempts["sent"] > len(acknowledged), "the kill should have caught posts in flight"

    server, base = _start(url, log)  # a restart on the crashed database (WAL recovery)
    try:
        hook_call = fhir_fixtures.load("P01").prefetch_request(SIGN.prefetch)
        response = requests.post(f"{base}/cds-services/{SIGN.id}", json=hook_call, timeout=10)
        assert response.status_code == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # clean shutdown: gunicorn's worker_exit drains the audit queue
        server.wait(15)

    store = Storage(url)
    try:
        with store.begin() as conn:
            stored = set(conn.execute(select(feedback_table.c.card_uuid)).scalars())
            instances = set(conn.execute(select(invocation_table.c.hook_instance)).scalars())
    finally:
        store.close()
    missing = [card for card in acknowledged if card not in stored]
    assert missing == [], f"{len(missing)} of {len(acknowledged)} acknowledged feedback reports were lost"
    assert hook_call["hookInstance"] in instances, "the worker's audit row was not written before it exited"
    assert time.monotonic() - started < BUDGET_SECONDS
