"""Hook latency, measured against a baseline taken in the same run.

    python bench/bench_hook.py [--rounds 300]

Baseline: an order-sign call whose only draft is amoxicillin (P35) — the HTTP edge, JSON parsing
and schema validation, but no FHIR parsing and no rules. The other rows add the full judgement:
prefetch-complete requests of increasing size, and the fetch path against an in-process FHIR mock
(`responses`), which adds the parallel fetch machinery but no network latency. The CDS Hooks spec
asks for an answer well within 500 ms; the figures show how much of that the service itself uses.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

import responses

import fhir_fixtures
from cds_service import create_app
from hooks.services import SERVICES
from tests.fhir_mock import BASE, serve_scenario

SIGN = next(s for s in SERVICES if s.hook == "order-sign")
AS_OF = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def measure(client, request, rounds: int) -> list[float]:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.post(f"/cds-services/{SIGN.id}", json=request)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.get_json()
    return timings


def row(name: str, timings: list[float], baseline: float | None) -> str:
    median = statistics.median(timings)
    p95 = statistics.quantiles(timings, n=20)[18]
    ratio = f"{median / baseline:5.1f}×" if baseline else "  1.0×"
    return f"{name:<44} {median:8.2f} {p95:8.2f} {ratio}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()

    import logging

    logging.disable(logging.INFO)  # measure the service, not the log handler
    workdir = tempfile.mkdtemp(prefix="ivig-bench-")
    app = create_app(
        {
            "auth": "off",
            "clock": lambda: AS_OF,
            "fhir_allowlist": [BASE],
            "database_url": f"sqlite:///{workdir}/bench.db",  # audit on, as in production
        }
    )
    client = app.test_client()
    cases = [
        ("baseline: P35 amoxicillin (no judgement)", fhir_fixtures.load("P35").prefetch_request(SIGN.prefetch)),
        ("P01 prefetch (critical bleeding)", fhir_fixtures.load("P01").prefetch_request(SIGN.prefetch)),
        ("P24 prefetch (pregnancy, 5 cards)", fhir_fixtures.load("P24").prefetch_request(SIGN.prefetch)),
        ("P38 prefetch (3 draft orders)", fhir_fixtures.load("P38").prefetch_request(SIGN.prefetch)),
    ]
    for _, request in cases:  # warm-up: imports, schema compilation, model classes
        measure(client, request, 20)
    print(f"{'case':<44} {'median':>8} {'p95':>8} {'vs base':>6}   (ms, {args.rounds} rounds)")
    baseline = None
    for name, request in cases:
        timings = measure(client, request, args.rounds)
        if baseline is None:
            baseline = statistics.median(timings)
            print(row(name, timings, None))
        else:
            print(row(name, timings, baseline))
    scenario = fhir_fixtures.load("P01")
    with responses.RequestsMock() as rsps:
        serve_scenario(rsps, scenario)
        request = scenario.fetch_request(BASE)
        measure(client, request, 20)
        print(row("P01 fetched (12 parallel FHIR reads, mocked)", measure(client, request, args.rounds), baseline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
