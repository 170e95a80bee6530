"""Throughput of one replica and of three behind HAProxy, sharing PostgreSQL and Redis.

    python bench/bench_scaleout.py [--requests 1200] [--concurrency 12] [--workers 2]

Both set-ups run in the same run, on the same machine, through the same load balancer
configuration (deploy/haproxy.cfg, tests/cluster.py), with real JWT verification, the replay
window in Redis and the audit trail in PostgreSQL; the one-replica figures are the baseline.
Tokens are signed before the clock starts, so the client's signing does not count. On a machine
with fewer cores than replicas × workers, three replicas share the same cores: the figure then
shows the cost of the extra processes, not a gain; the gain appears where each replica has
cores of its own (Kubernetes nodes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

import fhir_fixtures  # noqa: E402
from tests import cluster as clusters  # noqa: E402
from tests.auth_tokens import token  # noqa: E402
from tests.conftest import SIGN  # noqa: E402

HOOK = f"/cds-services/{SIGN.id}"


def drive(base: str, count: int, concurrency: int) -> tuple[list[float], float]:
    body = fhir_fixtures.load("P01").rebased(datetime.now(UTC)).prefetch_request(SIGN.prefetch)
    tokens = [token(HOOK, lifetime=600) for _ in range(count)]
    sessions = [requests.Session() for _ in range(concurrency)]

    def call(index: int) -> float:
        started = time.perf_counter()
        response = sessions[index % concurrency].post(
            base + HOOK,
            json=body,
            headers={"Authorization": f"Bearer {tokens[index]}", "X-Request-Id": uuid.uuid4().hex},
            timeout=30,
        )
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        timings = list(pool.map(call, range(count)))
    wall = time.perf_counter() - started
    for session in sessions:
        session.close()
    return timings, count / wall


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1200)
    parser.add_argument("--concurrency", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    conninfo, why = clusters.missing()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    print(
        f"P01 order-sign with JWT, {args.requests} calls, {args.concurrency} concurrent clients, "
        f"{args.workers} workers per replica, HAProxy in front"
    )
    print(f"{'set-up':<28} {'median ms':>9} {'p99 ms':>7} {'calls/s':>8} {'vs 1':>6}")
    baseline = None
    for replicas in (1, 3):
        with (
            tempfile.TemporaryDirectory() as workdir,
            clusters.running_cluster(Path(workdir), conninfo, count=replicas, workers=args.workers) as cl,
        ):
            drive(cl.lb, min(200, args.requests), args.concurrency)  # warm-up: first calls, JWKS fetches
            timings, rate = drive(cl.lb, args.requests, args.concurrency)
        baseline = baseline or rate
        p99 = statistics.quantiles(timings, n=100)[98]
        print(
            f"{f'{replicas} replica(s)':<28} {statistics.median(timings):9.1f} {p99:7.1f} {rate:8.0f} "
            f"{rate / baseline:5.2f}×"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
