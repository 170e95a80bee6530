"""What the audit trail costs a hook call: audit on versus off, measured in the same run.

    python bench/bench_audit.py [--rounds 400] [--database-url URL]

Two apps judge the same public scenarios through the Flask test client; one writes the audit
trail (to a temporary SQLite file, or to `--database-url`), the other has `IVIG_CDS_AUDIT=false`
and is the baseline. Calls alternate between the two so that drift (CPU frequency, caches) hits
both alike. The request thread only queues a record; the figures show whether that, and the
writer thread competing for the GIL, is noticeable. After the run the writer is drained and its
counters printed: every audited call must have been written, none dropped.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

import fhir_fixtures
from cds_service import create_app
from hooks.services import SERVICES

SIGN = next(s for s in SERVICES if s.hook == "order-sign")
AS_OF = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def timed(client, request) -> float:
    started = time.perf_counter()
    response = client.post(f"/cds-services/{SIGN.id}", json=request)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.get_json()
    return elapsed


def figures(timings: list[float]) -> tuple[float, float]:
    return statistics.median(timings), statistics.quantiles(timings, n=20)[18]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--database-url", help="where the audited app writes (default: a temporary SQLite file)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # measure the service, not the log handler

    with tempfile.TemporaryDirectory(prefix="bench-audit-") as folder:
        url = args.database_url or f"sqlite:///{folder}/audit.db"
        base = {"auth": "off", "clock": lambda: AS_OF, "audit_key": "k" * 32}
        audited = create_app({**base, "database_url": url})
        baseline = create_app({**base, "database_url": f"sqlite:///{folder}/off.db", "audit": False})
        writer = audited.extensions["ivig_cds.audit"]
        clients = {"off": baseline.test_client(), "on": audited.test_client()}
        cases = [
            ("P35 amoxicillin (no judgement, no card)", fhir_fixtures.load("P35").prefetch_request(SIGN.prefetch)),
            ("P01 prefetch (2 cards)", fhir_fixtures.load("P01").prefetch_request(SIGN.prefetch)),
            ("P24 prefetch (pregnancy, several cards)", fhir_fixtures.load("P24").prefetch_request(SIGN.prefetch)),
        ]
        for _, request in cases:  # warm-up: imports, schema compilation, the writer thread
            for client in clients.values():
                for _ in range(20):
                    timed(client, request)
        print(f"audit database: {url.split('@')[-1]}; {args.rounds} calls per case and mode, alternating")
        print(f"{'case':<42} {'off med':>8} {'on med':>8} {'added':>7} {'off p95':>8} {'on p95':>8} {'added':>7}  (ms)")
        audited_calls = 20 * len(cases)
        for name, request in cases:
            timings: dict[str, list[float]] = {"off": [], "on": []}
            for _ in range(args.rounds):
                for mode, client in clients.items():
                    timings[mode].append(timed(client, request))
            audited_calls += args.rounds
            off_med, off_p95 = figures(timings["off"])
            on_med, on_p95 = figures(timings["on"])
            print(
                f"{name:<42} {off_med:8.2f} {on_med:8.2f} {on_med - off_med:+7.2f}"
                f" {off_p95:8.2f} {on_p95:8.2f} {on_p95 - off_p95:+7.2f}"
            )
        started = time.perf_counter()
        writer.close()
        drained = (time.perf_counter() - started) * 1000
        print(
            f"writer: {writer.written} rows written of {audited_calls} audited calls, {writer.dropped} dropped, "
            f"{writer.lost} lost; final drain {drained:.1f} ms"
        )
        for app in (audited, baseline):
            app.extensions["ivig_cds.storage"].close()
        return 0 if writer.written == audited_calls and not writer.dropped else 1


if __name__ == "__main__":
    sys.exit(main())
