"""Starting real processes in tests: free ports, the console script, waiting until a server answers."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tool(name: str) -> str:
    """A console script of this environment (the venv running the tests), else one on PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def wait_ready(server: subprocess.Popen, url: str, timeout: float = 30) -> bool:
    """Poll `url` until it answers 200; False when the process exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=0.5).status_code == 200:
                return True
        except requests.RequestException:
            pass
        if server.poll() is not None:
            return False
        time.sleep(0.05)
    return False


@contextmanager
def running_service(tmp_path: Path, env: Mapping[str, str], cwd: Path | None = None, workers: int = 1) -> Iterator[str]:
    """`ivig-cds serve --workers N`; yields its base URL; its stderr is `tmp_path/log`."""
    port = free_port()
    log_path = tmp_path / "log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [tool("ivig-cds"), "serve", "--port", str(port), "--workers", str(workers)],
            env=dict(env),
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            if not wait_ready(server, f"{base}/healthz"):
                pytest.fail("the service did not start:\n" + log_path.read_text()[-2000:])
            yield base
        finally:
            server.terminate()
            server.wait(timeout=20)


def sekmet_command() -> list[str] | None:
    """The real FHIR server of the test extra (sekmet-fhir), if installed."""
    exe = shutil.which("sekmet") or str(Path(sys.executable).with_name("sekmet"))
    return [exe] if Path(exe).exists() else None


@contextmanager
def sekmet_server(workdir: Path) -> Iterator[str]:
    """A real FHIR server on a free port (skipped where sekmet is absent, failed under CI); yields its base."""
    import os

    command = sekmet_command()
    if command is None:
        if os.environ.get("CI"):
            pytest.fail("sekmet-fhir is not installed; CI must run the real-FHIR-server tests")
        pytest.skip("sekmet-fhir is not installed (pip install -e '.[test]')")
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    env = dict(os.environ, SEKMET_DB=str(workdir / "fhir.db"), SEKMET_BASE_URL=base)
    with (workdir / "sekmet.log").open("wb") as log:
        process = subprocess.Popen(
            [*command, "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            if not wait_ready(process, f"{base}/metadata", timeout=60):
                pytest.fail("sekmet did not start: " + (workdir / "sekmet.log").read_text()[-2000:])
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
