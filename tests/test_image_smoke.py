"""The real image, where a Docker engine runs: build it, run it as a hospital would (read-only
root, tmpfs /tmp, an arbitrary UID in group 0, no capabilities, another port), see /healthz, the
image's own health check, P01's critical card, and `docker stop` within the grace period.

Skipped where no Docker engine answers (this project's CI machines have only the client); the
same claims are checked without an engine by test_image_build.py and test_container_fs.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from datetime import UTC, datetime

import pytest
import requests

import fhir_fixtures
from cds_service.server import GRACEFUL_TIMEOUT
from tests.conftest import SIGN
from tests.dockerfile import ROOT

pytestmark = pytest.mark.integration
STOP_GRACE = 30  # seconds, as deploy/compose.yaml's stop_grace_period


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


@pytest.fixture(scope="module")
def image():
    if shutil.which("docker") is None:
        pytest.skip("no docker client")
    try:
        docker("info", timeout=20)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        pytest.skip("no Docker engine answers here")
    tag = f"ivig-cds:smoke-{uuid.uuid4().hex[:8]}"
    docker("build", "--pull=false", "-t", tag, str(ROOT), timeout=1800)
    yield tag
    docker("rmi", "-f", tag, check=False)


def test_image_serves_read_only_under_an_arbitrary_uid_and_stops_within_its_grace(image):
    name = f"ivig-cds-smoke-{uuid.uuid4().hex[:8]}"
    docker(
        "run",
        "-d",
        "--name",
        name,
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--user",
        "1000770000:0",
        "-e",
        "IVIG_CDS_AUTH=off",
        "-e",
        "IVIG_CDS_PORT=8081",
        "-p",
        "127.0.0.1::8081",
        image,
    )
    try:
        port = docker("port", name, "8081/tcp").stdout.strip().rsplit(":", 1)[1]
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        assert requests.get(f"{base}/readyz", timeout=5).status_code == 200
        check = json.loads(docker("inspect", "--format", "{{json .Config.Healthcheck.Test}}", name).stdout)
        assert check[0] == "CMD"
        assert docker("exec", name, *check[1:], check=False).returncode == 0  # follows IVIG_CDS_PORT
        request = fhir_fixtures.load("P01").rebased(datetime.now(UTC)).prefetch_request(SIGN.prefetch)
        cards = requests.post(f"{base}/cds-services/{SIGN.id}", json=request, timeout=10).json()["cards"]
        assert cards[0]["indicator"] == "critical"
        started = time.monotonic()
        docker("stop", "-t", str(STOP_GRACE), name, timeout=STOP_GRACE + 30)
        assert time.monotonic() - started < STOP_GRACE
        assert docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip() == "0"
        assert GRACEFUL_TIMEOUT < STOP_GRACE
    finally:
        docker("rm", "-f", "-v", name, check=False)
