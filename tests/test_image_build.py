"""The image is reproducible and hardened, checked without a Docker engine: what the Dockerfile
builds from, what it ships, and the lock files it installs (issue 11's measured defects)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata

import pytest
import requests
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.dockerfile import ROOT, parse
from tests.processes import free_port, running_service

DOCKERFILE = parse()
RUNTIME = DOCKERFILE.final
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LINUX_311 = {
    "sys_platform": "linux",
    "platform_system": "Linux",
    "python_version": "3.11",
    "python_full_version": "3.11.9",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
}


def pins(lock: str) -> dict[str, tuple[str, list[str], str]]:
    """name → (version, hashes, marker) of a hashed requirements file."""
    found = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", (ROOT / lock).read_text()):
        match = re.match(r"([A-Za-z0-9._-]+)==(\S+)(?:\s*;\s*([^\\\n]+))?", block)
        if match:
            hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
            found[canonicalize_name(match.group(1))] = (match.group(2), hashes, (match.group(3) or "").strip())
    return found


RUNTIME_PINS = pins("requirements.lock")


def test_no_syntax_directive_that_fetches_a_frontend_first():
    first = DOCKERFILE.text.lstrip().splitlines()[0]
    directive = re.match(r"#\s*syntax\s*=\s*(\S+)", first, re.IGNORECASE)
    assert directive is None or "@sha256:" in directive.group(1)


def test_base_image_is_pinned_by_digest_through_a_build_arg_on_the_python_ci_tests():
    base = DOCKERFILE.global_args["PYTHON_IMAGE"]
    assert re.fullmatch(r"[\w./-]*python:(\d+\.\d+)[\w.-]*@sha256:[0-9a-f]{64}", base), base
    assert base.split(":")[1].startswith(f"{sys.version_info.major}.{sys.version_info.minor}-")
    stage_names = {s.name for s in DOCKERFILE.stages}
    assert all(s.base == "${PYTHON_IMAGE}" or s.base in stage_names for s in DOCKERFILE.stages)


def test_lock_pins_every_runtime_dependency_and_the_redis_extra_with_hashes():
    wanted = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    wanted += [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["redis"]]
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in RUNTIME_PINS, f"{name} is not in requirements.lock: regenerate it (README, Docker)"
        version = RUNTIME_PINS[name][0]
        assert requirement.specifier.contains(version, prereleases=True), f"{name}=={version} vs {requirement}"
        for extra in requirement.extras:  # psycopg[binary] needs psycopg-binary, pyjwt[crypto] cryptography
            dist = metadata.distribution(requirement.name)
            for extra_requirement in map(Requirement, dist.requires or []):
                if extra_requirement.marker and extra_requirement.marker.evaluate({**LINUX_311, "extra": extra}):
                    assert canonicalize_name(extra_requirement.name) in RUNTIME_PINS
    for name, (_, hashes, _) in RUNTIME_PINS.items():
        assert hashes, f"{name} has no hash"
    assert "gunicorn" in RUNTIME_PINS and "redis" in RUNTIME_PINS


def test_lock_is_closed_under_the_dependencies_of_what_it_pins():
    """The image installs with --no-deps: every dependency of a pinned package must itself be pinned."""
    missing = []
    for name, (version, _, marker) in RUNTIME_PINS.items():
        if marker and not Marker(marker).evaluate(LINUX_311):
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if dist.version != version:
            continue  # only the metadata of the very version pinned is evidence
        for requirement in map(Requirement, dist.requires or []):
            if requirement.marker and not requirement.marker.evaluate({**LINUX_311, "extra": ""}):
                continue
            if canonicalize_name(requirement.name) not in RUNTIME_PINS:
                missing.append(f"{name} needs {requirement}")
    assert missing == []


def test_build_backend_is_locked_too():
    build_pins = pins("requirements-build.lock")
    for raw in PYPROJECT["build-system"]["requires"]:
        requirement = Requirement(raw)
        version, hashes, _ = build_pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version) and hashes


def _run_lines(stage) -> list[str]:
    return [i.args for i in stage.all("RUN")]


def test_dependencies_install_from_the_lock_in_their_own_layer_before_any_source():
    deps = DOCKERFILE.stage("deps")
    assert [i.args.split()[0] for i in deps.all("COPY")] == ["requirements.lock"]
    (install,) = _run_lines(deps)
    assert "--require-hashes" in install and "--no-deps" in install and "requirements.lock" in install
    assert "--only-binary=:all:" in install  # no sdist is built from the network
    assert deps in DOCKERFILE.lineage(RUNTIME)  # the runtime image reuses that layer as is
    build = DOCKERFILE.stage("build")
    assert "--no-build-isolation" in _run_lines(build)[-1]  # the locked setuptools, not a fresh download


def test_a_private_index_comes_from_a_build_secret_never_from_an_arg_or_env():
    installs = [r for s in DOCKERFILE.stages for r in _run_lines(s) if "--require-hashes" in r]  # what downloads
    assert installs and all(r.startswith("--mount=type=secret,id=pip.conf,target=/etc/pip.conf ") for r in installs)
    declared = [i.args for s in DOCKERFILE.stages for i in s.all("ARG") + s.all("ENV")]
    assert not any("INDEX" in text or "PIP_CONFIG" in text for text in declared)


def test_no_wheel_or_build_tool_is_shipped_in_a_layer():
    for instruction in RUNTIME.instructions:
        assert ".whl" not in instruction.args and "wheel" not in instruction.args.lower(), instruction
    copies = RUNTIME.all("COPY")
    assert [c.args for c in copies] == ["--from=build /install/ /opt/venv/"]
    build_runs = " ".join(_run_lines(DOCKERFILE.stage("build")))
    assert "--prefix /install" in build_runs  # only the project's own files land in /install
    assert RUNTIME.base == "deps"  # not the build stage, with its setuptools and sources


def test_state_lives_in_a_data_volume_owned_by_the_service_uid_and_group_0():
    env = {**DOCKERFILE.stage("base").env(), **RUNTIME.env()}
    assert env["IVIG_CDS_DATABASE_URL"] == "sqlite:////data/ivig-cds.db"
    assert [i.args for i in RUNTIME.all("VOLUME")] == ['["/data"]']
    assert [i.args for i in RUNTIME.all("WORKDIR")] == ["/data"]
    assert [i.args for i in RUNTIME.all("USER")] == ["10001:0"]
    setup = " ".join(_run_lines(RUNTIME))
    assert "chown 10001:0 /data" in setup and re.search(r"chmod [0-7]?770 /data", setup)
    assert "--gid 0" in setup


def test_oci_labels_name_the_release():
    labels = " ".join(i.args for i in RUNTIME.all("LABEL"))
    for key in ("title", "description", "version", "revision", "created", "source", "licenses", "base.name"):
        assert f"org.opencontainers.image.{key}=" in labels
    assert any(i.args == f"VERSION={PYPROJECT['project']['version']}" for i in RUNTIME.all("ARG"))
    assert f'licenses="{PYPROJECT["project"]["license"]}"' in labels


def test_serving_settings_come_from_ivig_cds_variables_not_the_command():
    assert RUNTIME.all("CMD")[-1].exec_form() == ["ivig-cds", "serve"]
    env = RUNTIME.env()
    assert env["IVIG_CDS_HOST"] == "0.0.0.0" and env["IVIG_CDS_PORT"] == "8080"


def test_dockerignore_keeps_what_the_build_copies_and_drops_the_rest():
    ignored = (ROOT / ".dockerignore").read_text().split()
    copied = {i.args.split()[0] for s in DOCKERFILE.stages for i in s.all("COPY") if not i.args.startswith("--from")}
    assert copied >= {"requirements.lock", "pyproject.toml", "cds_service"}
    assert not copied & set(ignored)
    assert {".git", ".venv", "tests", "*.db"} <= set(ignored)


@pytest.mark.integration
def test_the_image_healthcheck_follows_the_port(tmp_path):
    check = RUNTIME.all("HEALTHCHECK")[0].exec_form()
    check[0] = sys.executable
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVIG_CDS_")}
    env.update(IVIG_CDS_AUTH="off", IVIG_CDS_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}")
    with running_service(tmp_path, env) as base:
        port = base.rsplit(":", 1)[1]
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
        assert subprocess.run(check, env=dict(env, IVIG_CDS_PORT=port), capture_output=True).returncode == 0
        assert subprocess.run(check, env=dict(env, IVIG_CDS_PORT=str(free_port())), capture_output=True).returncode
