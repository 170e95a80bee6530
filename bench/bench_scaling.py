"""How the cost of a call follows the clinical window, not the length of the history; and throughput
against a bare Flask floor. Every figure is measured in this run, beside its baseline.

    .venv/bin/python bench/bench_scaling.py [--calls 30] [--duration 8] [--rounds 3]
                                            [--skip-latency] [--skip-throughput]

1. Latency of one call for a chronic ITP chart (`fhir_fixtures.realistic`) with 10, 100, 1 000 and
   5 000 platelet counts (one every 3 days), loaded into a real FHIR server (sekmet-fhir). Two data
   modes: the prefetch a client fills from the server's first page (with its `next` link), and no
   prefetch at all (the service reads everything itself). Baseline: the 10-count chart.
2. Throughput through gunicorn (`ivig-cds serve`: 2 workers × 4 threads), driven by `wrk` with 8
   connections, for an IVIG call (P01: critical bleeding) and a call with no order this service
   judges (P35: amoxicillin, the same prefetch), against `bench/floor_app.py` (Flask parsing the same
   body) under the same gunicorn settings, the servers side by side and loaded in turn, medians of
   several rounds; once more with the parse cache off (every chart parsed as if never seen). Needs
   `wrk` (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

import fhir_fixtures  # noqa: E402
from cds_service.prefetch import render  # noqa: E402
from fhir_fixtures import realistic  # noqa: E402
from hooks.services import SERVICES  # noqa: E402
from tests.processes import free_port, sekmet_server, tool, wait_ready  # noqa: E402

SIGN = next(s for s in SERVICES if s.hook == "order-sign")
COUNTS = (10, 100, 1000, 5000)


def client_prefetch(base: str, request: dict[str, Any]) -> dict[str, Any]:
    """The prefetch a client fills from the server: each template's first page, with its `next` link."""
    prefetch = {}
    for key, template in SIGN.prefetch.items():
        response = requests.get(f"{base}/{render(template, request['context'])}", timeout=60)
        prefetch[key] = response.json() if response.status_code == 200 else None
    return {**request, "prefetch": prefetch}


def timed_calls(url: str, body: bytes, calls: int) -> list[float]:
    session = requests.Session()
    timings = []
    for _ in range(calls + 3):
        started = time.perf_counter()
        response = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=60)
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code}: {response.text[:300]}")
        codes = {c["source"]["topic"]["code"] for c in response.json()["cards"]}
        if "critical-bleeding" not in codes:
            raise SystemExit(f"the chronic chart lost its critical card: {sorted(codes)}")
    return timings[3:]  # the first calls warm the worker


def latency(calls: int) -> None:
    print(
        f"\n1. One call for a chronic ITP chart, against the 10-count chart: median / p95 latency of {calls} calls"
        "\n   (ms), and the service's own CPU per call (its processes' CPU time, which other load on the machine"
        "\n   does not change; the latency of the fetched mode is mostly the FHIR server's, which answers one request"
        "\n   at a time)"
    )
    paged, fetched_mode = "prefetch paged by server: latency, CPU/call", "fetched: latency, CPU/call"
    print(f"{'platelet counts':>16} {'resources':>10} {paged:>44} {fetched_mode:>40}")
    with tempfile.TemporaryDirectory() as workdir, sekmet_server(Path(workdir)) as base:
        charts = {n: realistic.chronic_itp(counts=n).rebased(datetime.now(UTC)) for n in COUNTS}
        for chart in charts.values():
            requests.post(base, json=chart.transaction(), timeout=600).raise_for_status()
        env = dict(
            os.environ,
            IVIG_CDS_AUTH="off",
            IVIG_CDS_DATABASE_URL=f"sqlite:///{workdir}/audit.db",
            IVIG_CDS_FHIR_ALLOWLIST=base,
            IVIG_CDS_FHIR_ALLOW_HTTP="true",
            IVIG_CDS_FHIR_TOTAL_TIMEOUT="30",
            IVIG_CDS_FHIR_READ_TIMEOUT="20",
            IVIG_CDS_LOG_LEVEL="WARNING",
            IVIG_CDS_WORKERS="1",
        )
        command = [tool("ivig-cds"), "serve", "--port", "{port}"]
        with server(command, env, Path(workdir) / "service.log") as (service, pid):
            url = f"{service}/cds-services/{SIGN.id}"
            baseline: dict[str, tuple[float, float]] = {}
            for n, chart in charts.items():
                fetched = chart.fetch_request(base)
                modes = {"paged": client_prefetch(base, fetched), "fetched": fetched}
                cells = []
                for mode, request in modes.items():
                    body = json.dumps(request).encode()
                    timed_calls(url, body, 3)  # warm up
                    cpu_before = tree_cpu_seconds(pid)
                    timings = timed_calls(url, body, calls)
                    cpu = (tree_cpu_seconds(pid) - cpu_before) * 1000 / (calls + 3)
                    median = statistics.median(timings)
                    p95 = statistics.quantiles(timings, n=20)[18]
                    base_median, base_cpu = baseline.setdefault(mode, (median, cpu))
                    latency_cell = f"{median:6.1f} / {p95:6.1f} ({median / base_median:4.2f}×)"
                    cells.append(f"{latency_cell}, {cpu:5.1f} ({cpu / base_cpu:4.2f}×)")
                print(f"{n:>16} {len(chart.resources()):>10} {cells[0]:>44} {cells[1]:>40}")


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.body = f:read("*a")
f:close()
"""


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and all its descendants, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, stack, tick = 0.0, [pid], os.sysconf("SC_CLK_TCK")
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        stack.extend(children.get(current, []))
    return total


def wrk(url: str, body_path: str, duration: int, script: str, server_pid: int | None = None) -> tuple[float, ...]:
    """(requests/s, median ms, p99 ms, server CPU ms per call) of `wrk -t2 -c8 --latency`.

    The CPU the server's processes spent per call does not depend on what else the machine runs,
    so it compares the service with the floor even on a busy machine; requests/s do not.
    """
    cpu_before = tree_cpu_seconds(server_pid) if server_pid else 0.0
    result = subprocess.run(
        ["wrk", "-t2", "-c8", f"-d{duration}s", "--latency", "-s", script, url],
        capture_output=True,
        text=True,
        env=dict(os.environ, BENCH_BODY=body_path),
        check=True,
    )
    out = result.stdout
    if "Non-2xx" in out:
        raise SystemExit(f"{url}: non-2xx answers under load:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def percentile(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    calls = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    cpu = (tree_cpu_seconds(server_pid) - cpu_before) * 1000 / calls if server_pid else float("nan")
    return rate, percentile("50"), percentile("99"), cpu


@contextmanager
def server(command: list[str], env: dict[str, str], log_path: Path) -> Any:
    """A server process on the port given in `command` (`{port}`); yields (base URL, pid)."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            if not wait_ready(process, f"{base}/healthz", timeout=60):
                raise SystemExit(f"{command[0]} did not start: {log_path.read_text()[-2000:]}")
            yield base, process.pid
        finally:
            process.terminate()
            process.wait(timeout=30)


def throughput(duration: int, rounds: int) -> None:
    if shutil.which("wrk") is None:
        print("\n2. Throughput: skipped, wrk is not installed (Debian: apt-get install wrk)")
        return
    workers, threads = 2, 4
    print(
        f"\n2. Throughput through gunicorn ({workers} workers × {threads} threads, gthread), wrk 2 threads × 8 "
        f"connections, {duration} s a run, {os.cpu_count()} cores. The floor is bench/floor_app.py under the same "
        f"gunicorn settings. The servers run side by side and are loaded in turn, {rounds} rounds; each figure is "
        "the median of its runs. 'CPU/call': the server processes' CPU time per call, which other load on the "
        "machine does not change; 'of floor': floor req/s and CPU/call against the service's."
    )
    print(f"{'call':<40} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'CPU/call':>9} {'of floor (rate, CPU)':>21}")
    now = datetime.now(UTC)
    bodies = {
        sid: json.dumps(fhir_fixtures.load(sid).rebased(now).prefetch_request(SIGN.prefetch)).encode()
        for sid in ("P01", "P35")
    }
    gunicorn_line = [
        *("--bind", "127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads)),
        *("--worker-class", "gthread", "--timeout", "30", "--graceful-timeout", "20"),
    ]
    with tempfile.TemporaryDirectory() as workdir, contextlib.ExitStack() as stack:
        folder = Path(workdir)
        script = folder / "post.lua"
        script.write_text(WRK_SCRIPT)
        for sid, body in bodies.items():
            (folder / f"{sid}.json").write_bytes(body)
        env = dict(os.environ)
        floor, floor_pid = stack.enter_context(
            server([tool("gunicorn"), *gunicorn_line, "bench.floor_app:app"], env, folder / "floor.log")
        )
        env.update(
            IVIG_CDS_AUTH="off",
            IVIG_CDS_DATABASE_URL=f"sqlite:///{workdir}/audit.db",
            IVIG_CDS_LOG_LEVEL="WARNING",
            IVIG_CDS_WORKERS=str(workers),
            IVIG_CDS_THREADS=str(threads),
        )
        command = [tool("ivig-cds"), "serve", "--port", "{port}"]
        service, pid = stack.enter_context(server(command, env, folder / "service.log"))
        # Every call parsed afresh, as for charts never seen before (no reuse between calls).
        cold, cold_pid = stack.enter_context(
            server(command, {**env, "IVIG_CDS_PARSE_CACHE_SIZE": "0"}, folder / "cold.log")
        )
        rows = [
            ("floor: Flask parses the P01 body", floor, floor_pid, "P01", None),
            ("floor: Flask parses the P35 body", floor, floor_pid, "P35", None),
            ("IVIG call (P01, critical bleeding)", service, pid, "P01", "P01"),
            ("non-target call (P35, amoxicillin)", service, pid, "P35", "P35"),
            ("IVIG call, parse cache off", cold, cold_pid, "P01", "P01"),
        ]
        runs: dict[str, list[tuple[float, ...]]] = {label: [] for label, *_ in rows}
        for _label, base, _, sid, _ in rows:  # warm every worker
            wrk(f"{base}/cds-services/{SIGN.id}", str(folder / f"{sid}.json"), 2, str(script))
        for _ in range(rounds):
            for label, base, server_pid, sid, _ in rows:
                url = f"{base}/cds-services/{SIGN.id}"
                runs[label].append(wrk(url, str(folder / f"{sid}.json"), duration, str(script), server_pid))
        medians = {label: tuple(statistics.median(run[i] for run in runs[label]) for i in range(4)) for label in runs}
        for label, _, _, _, against in rows:
            rate, p50, p99, cpu = medians[label]
            share = "100%, 100%"
            if against is not None:
                floor_rate, _, _, floor_cpu = medians[f"floor: Flask parses the {against} body"]
                share = f"{rate / floor_rate:4.0%}, {floor_cpu / cpu:4.0%}"
            print(f"{label:<40} {rate:7.0f} {p50:7.1f} {p99:7.1f} {cpu:7.2f}ms {share:>21}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=30, help="calls per chart and mode in part 1 (default 30)")
    parser.add_argument("--duration", type=int, default=8, help="seconds of load per run in part 2 (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of runs in part 2, medians reported (default 3)")
    parser.add_argument("--skip-latency", action="store_true", help="skip part 1")
    parser.add_argument("--skip-throughput", action="store_true", help="skip part 2")
    args = parser.parse_args()
    if not args.skip_latency:
        latency(args.calls)
    if not args.skip_throughput:
        throughput(args.duration, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
