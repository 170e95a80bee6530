"""End-to-end latency through gunicorn over loopback, against a same-run baseline.

    python bench/bench_http.py [--requests 400] [--concurrency 4] [--workers 2]

Starts `ivig-cds serve` as a real process (tests/processes.py) (authentication off, a temporary SQLite audit database),
then sends a bounded number of requests from a thread pool on 127.0.0.1 only. Baseline: `GET
/healthz` on the same server in the same run (the HTTP stack alone). The CDS Hooks budget is an
answer well within 500 ms; p99 shows how much of it the service uses under concurrent load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from tests.processes import running_service  # noqa: E402


def timed(session: requests.Session, method: str, url: str, body: bytes | None) -> float:
    started = time.perf_counter()
    response = session.request(method, url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{url}: HTTP {response.status_code}")
    return elapsed


def run(url: str, method: str, body: bytes | None, count: int, concurrency: int) -> tuple[list[float], float]:
    sessions = [requests.Session() for _ in range(concurrency)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        timings = list(pool.map(lambda i: timed(sessions[i % concurrency], method, url, body), range(count)))
    wall = time.perf_counter() - started
    for session in sessions:
        session.close()
    return timings, count / wall


def line(name: str, timings: list[float], rate: float, baseline: float | None) -> str:
    cuts = statistics.quantiles(timings, n=100)
    median = statistics.median(timings)
    ratio = f"{median / baseline:5.1f}×" if baseline else "  1.0×"
    return f"{name:<34} {median:7.2f} {cuts[94]:7.2f} {cuts[98]:7.2f} {rate:8.0f}/s {ratio}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    import fhir_fixtures
    from hooks.services import SERVICES

    sign = next(s for s in SERVICES if s.hook == "order-sign")
    with tempfile.TemporaryDirectory() as workdir:
        env = dict(os.environ, IVIG_CDS_AUTH="off", IVIG_CDS_DATABASE_URL=f"sqlite:///{workdir}/audit.db")
        with running_service(Path(workdir), env, workers=args.workers) as base:
            invoke = f"{base}/cds-services/{sign.id}"
            cases = [
                ("baseline: GET /healthz", "GET", f"{base}/healthz", None),
                ("P35 amoxicillin (no judgement)", "POST", invoke, "P35"),
                ("P01 critical bleeding", "POST", invoke, "P01"),
                ("P24 pregnancy (5 cards)", "POST", invoke, "P24"),
            ]
            print(
                f"{'case':<34} {'median':>7} {'p95':>7} {'p99':>7} {'rate':>10} {'vs base':>6}"
                f"   (ms; {args.requests} requests, {args.concurrency} concurrent, {args.workers} workers)"
            )
            baseline = None
            for name, method, url, sid in cases:
                body = None
                if sid:
                    scenario = fhir_fixtures.load(sid).rebased(datetime.now(UTC))
                    body = json.dumps(scenario.prefetch_request(sign.prefetch)).encode()
                run(url, method, body, 40, args.concurrency)  # warm every worker
                timings, rate = run(url, method, body, args.requests, args.concurrency)
                print(line(name, timings, rate, baseline))
                baseline = baseline or statistics.median(timings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
