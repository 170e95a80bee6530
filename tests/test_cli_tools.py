"""The command line an integration engineer uses: version, help, mistakes answered without tracebacks,
and the tools (dev-keys, fixture load, prefetch, fire) that reach a signed, fetched call with cards."""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess

import pytest

from cds_service.cli import build_parser, main
from cds_service.config import Settings
from cds_service.jwt_auth import load_issuers
from tests.processes import free_port, running_service, sekmet_server, tool


def _subparsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _subparsers(child)


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("ivig-cds 0.")


def test_every_option_of_every_command_has_help_and_shows_its_default(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # no line wrapping inside a default
    for parser in _subparsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._VersionAction | argparse._SubParsersAction):
                continue
            assert action.help, f"{parser.prog} {action.dest} has no help text"
        text = parser.format_help()
        for action in parser._actions:
            shown = isinstance(action.default, str | int | float) and action.default not in (False, argparse.SUPPRESS)
            if action.option_strings and shown:
                assert f"(default: {action.default})" in " ".join(text.split()), f"{parser.prog} {action.dest}"


@pytest.mark.parametrize("port", ["99999", "0", "http"])
def test_a_bad_port_is_a_message_not_a_traceback(port, capsys):
    with pytest.raises(SystemExit) as done:
        main(["serve", "--port", port])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "--port" in err and "Traceback" not in err


def test_a_closed_pipe_ends_quietly():
    process = subprocess.Popen(
        [tool("ivig-cds"), "rules", "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()  # as `| head` does once it has read enough
    _, err = process.communicate(timeout=60)
    assert process.returncode == 141, err
    assert b"Traceback" not in err and b"BrokenPipe" not in err


@pytest.mark.parametrize("name", ["P01", "p01", "p1", " P1 "])
def test_scenario_ids_in_any_case(name, capsys):
    assert main(["fixture", "request", name]) == 0
    assert json.loads(capsys.readouterr().out)["context"]["patientId"] == "pat-p01"


def test_an_unknown_scenario_is_named(capsys):
    assert main(["fixture", "request", "P99"]) == 2
    assert "no scenario 'P99'" in capsys.readouterr().err


def test_dev_keys_make_a_private_key_only_its_owner_reads_and_an_issuer_trusting_it(tmp_path, capsys):
    folder = tmp_path / "keys"
    assert main(["dev-keys", "--out", str(folder), "--iss", "https://my-ehr.test"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == f"export IVIG_CDS_JWT_ISSUERS_FILE={folder / 'issuers.json'}"
    assert stat.S_IMODE((folder / "signing-key.pem").stat().st_mode) == 0o600
    (issuer,) = load_issuers(Settings(jwt_issuers_file=str(folder / "issuers.json")))
    assert issuer.iss == "https://my-ehr.test" and len(issuer.pinned_keys) == 1 and issuer.jwks_url is None
    assert main(["dev-keys", "--out", str(folder)]) == 2, "existing keys are not overwritten silently"


def test_fire_builds_a_prefetch_request_or_a_fetch_request(capsys):
    assert main(["fire", "P01", "--print-request"]) == 0
    filled = json.loads(capsys.readouterr().out)
    assert set(filled["prefetch"]) >= {"patient", "platelets"} and "fhirServer" not in filled
    fhir = "http://127.0.0.1:9/fhir"
    select = ["--hook", "order-select"]
    assert main(["fire", "p1", "--print-request", "--no-prefetch", "--fhir-server", fhir, *select]) == 0
    fetched = json.loads(capsys.readouterr().out)
    assert "prefetch" not in fetched and fetched["fhirServer"] == fhir and fetched["hook"] == "order-select"
    assert fetched["context"]["selections"]
    assert main(["fire", "P01", "--no-prefetch"]) == 2
    assert "--no-prefetch needs --fhir-server" in capsys.readouterr().err


def test_fire_says_when_the_service_is_not_running(capsys):
    assert main(["fire", "P01", "--url", f"http://127.0.0.1:{free_port()}"]) == 1
    assert "cannot reach the CDS service" in capsys.readouterr().err


# --- the whole integration sequence, with real processes ------------------------------------------


def _run(*args: str, env: dict[str, str], cwd) -> subprocess.CompletedProcess:
    result = subprocess.run([tool("ivig-cds"), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.mark.integration
def test_a_signed_fetched_call_with_cards_against_a_real_fhir_server(tmp_path):
    """The README's 'first signed call' sequence: dev-keys, serve, fixture load, fire --no-prefetch --sign."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVIG_CDS_")}
    with sekmet_server(tmp_path) as fhir:
        keys = _run("dev-keys", "--out", "keys", env=env, cwd=tmp_path)
        assert keys.returncode == 0
        issuers_file = keys.stdout.strip().split("=", 1)[1]
        service_env = dict(
            env,
            IVIG_CDS_JWT_ISSUERS_FILE=issuers_file,
            IVIG_CDS_FHIR_ALLOWLIST=fhir,
            IVIG_CDS_FHIR_ALLOW_HTTP="true",
            IVIG_CDS_DATABASE_URL=f"sqlite:///{tmp_path / 'cds.db'}",
        )
        with running_service(tmp_path, service_env, cwd=tmp_path) as url:
            loaded = _run("fixture", "load", "P01", "p27", "--fhir-server", fhir, env=env, cwd=tmp_path)
            assert loaded.returncode == 0 and loaded.stdout.splitlines()[0].startswith("P01  Patient/pat-p01")

            unsigned = _run("fire", "P01", "--url", url, "--fhir-server", fhir, "--no-prefetch", env=env, cwd=tmp_path)
            assert unsigned.returncode == 1 and "401" in unsigned.stderr

            fired = _run(
                "fire",
                "P01",
                "--url",
                url,
                "--fhir-server",
                fhir,
                "--no-prefetch",
                "--sign",
                "keys",
                env=env,
                cwd=tmp_path,
            )
            assert fired.returncode == 0, fired.stderr
            assert "HTTP 200" in fired.stderr and "no prefetch" in fired.stderr
            assert fired.stdout.lstrip().startswith("CRITICAL   Life-threatening bleeding, platelets 10")
            assert "INFO   IVIG 70 g" in fired.stdout and "Values used" in fired.stdout
            assert "data-unavailable" not in fired.stdout

            as_json = _run(
                "fire",
                "--patient",
                "pat-p27",
                "--order",
                "platelets",
                "--url",
                url,
                "--fhir-server",
                fhir,
                "--sign",
                "keys",
                "--json",
                env=env,
                cwd=tmp_path,
            )
            assert as_json.returncode == 0 and "prefetch filled" in as_json.stderr
            rules = {c["source"]["topic"]["code"] for c in json.loads(as_json.stdout)["cards"]}
            assert "hit-platelet-transfusion" in rules

            resolved = _run("prefetch", "pat-p01", "--fhir-server", fhir, "--resolve", env=env, cwd=tmp_path)
            prefetch = json.loads(resolved.stdout)
            assert prefetch["patient"]["id"] == "pat-p01" and prefetch["platelets"]["resourceType"] == "Bundle"

        log = [json.loads(line) for line in (tmp_path / "log").read_text().splitlines()]
    assert any(line["logger"].startswith("gunicorn") for line in log), "gunicorn's own lines are JSON too"
    assert sum(line["message"] == "configuration in force" for line in log) == 1
    answered = [line for line in log if line["message"] == "hook answered"]
    assert answered and all(line["request_id"] and line["hook_instance"] for line in answered)
    assert all(line["data_mode"] in ("fetched", "prefetch", "mixed") for line in answered)


def test_prefetch_shows_this_deployments_queries_with_date_tokens_filled(monkeypatch, capsys):
    """What the EHR is asked for depends on IVIG_CDS_*: the tool shows that, not the defaults."""
    from datetime import UTC, datetime, timedelta

    monkeypatch.setenv("IVIG_CDS_PREFETCH_DATE_TOKENS", "true")
    monkeypatch.setenv("IVIG_CDS_RULE_PREGNANCY_STATUS_MAX_AGE_DAYS", "200")  # bounds the platelet search
    assert main(["prefetch", "pat-1"]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    today = datetime.now(UTC).date()
    assert "{{" not in "".join(lines.values())
    assert f"ge{(today - timedelta(days=200)).isoformat()}" in lines["platelets"]
    assert f"ge{(today - timedelta(days=30)).isoformat()}" in lines["renal"]

    monkeypatch.setenv("IVIG_CDS_RULE_NOT_A_RULE", "1")
    assert main(["prefetch", "pat-1"]) == 2
    assert "IVIG_CDS_RULE_NOT_A_RULE" in capsys.readouterr().err
