"""The first hook call after a worker starts, against the same process's second call (the baseline).

    python bench/bench_first_call.py [--processes 5]

Each sample is a fresh Python process (as a new gunicorn worker is): build the app, then time
its first and second P01 calls. A first call much slower than the second means work that
belongs at start-up (model building, schema compilation) is landing on a clinician's order.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).parents[1]

SAMPLE = """
import json, logging, sys, time
sys.path.insert(0, {root!r})
logging.disable(logging.WARNING)
from datetime import UTC, datetime
import fhir_fixtures
from cds_service import create_app
from hooks.services import SERVICES
sign = next(s for s in SERVICES if s.hook == "order-sign")
request = fhir_fixtures.load("P01").prefetch_request(sign.prefetch)
t0 = time.perf_counter()
app = create_app({{"auth": "off", "clock": lambda: datetime(2026, 6, 1, 12, tzinfo=UTC),
                   "database_url": "sqlite:///{db}"}})
client = app.test_client()
t1 = time.perf_counter()
assert client.post(f"/cds-services/{{sign.id}}", json=request).status_code == 200
t2 = time.perf_counter()
assert client.post(f"/cds-services/{{sign.id}}", json=request).status_code == 200
t3 = time.perf_counter()
print(json.dumps({{"start": (t1 - t0) * 1000, "first": (t2 - t1) * 1000, "second": (t3 - t2) * 1000}}))
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--processes", type=int, default=5)
    args = parser.parse_args()
    samples = []
    with tempfile.TemporaryDirectory() as workdir:
        for index in range(args.processes):
            code = SAMPLE.format(root=str(ROOT), db=f"{workdir}/bench-{index}.db")
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            samples.append(json.loads(out.strip().splitlines()[-1]))
    second = statistics.median(s["second"] for s in samples)
    print(f"{'measure':<32} {'median ms':>10}   ({args.processes} fresh processes)")
    print(f"{'baseline: second call':<32} {second:10.2f}")
    for key, label in (("first", "first call after start"), ("start", "create_app (start-up)")):
        value = statistics.median(s[key] for s in samples)
        print(f"{label:<32} {value:10.2f}   {value / second:5.1f}× baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
