"""Configuration that refuses mistakes: each problem named with its variable, all of them at once,
from the library, from `ivig-cds config check`, and from `ivig-cds serve` (exit 2, no traceback)."""

from __future__ import annotations

import os
import subprocess

import pytest

from cds_service.config import ConfigError, load_settings
from tests.processes import free_port, tool


def problems_of(environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    return caught.value.problems


def test_an_unknown_variable_is_an_error_with_a_suggestion():
    assert problems_of({"IVIG_CDS_FHIR_ALLOWLST": "https://fhir.example.org"}) == [
        "unknown variable IVIG_CDS_FHIR_ALLOWLST (did you mean 'IVIG_CDS_FHIR_ALLOWLIST'?)"
    ]


def test_the_test_suites_own_variables_are_not_settings():
    load_settings({"IVIG_CDS_TEST_POSTGRES_URL": "postgresql://x@h/db"})


def test_a_misspelt_rule_id_in_disabled_rules_is_an_error():
    (problem,) = problems_of({"IVIG_CDS_RULE_DISABLED_RULES": "dose-check, iga-screenig"})
    assert "IVIG_CDS_RULE_DISABLED_RULES" in problem and "'iga-screenig'" in problem
    assert "did you mean 'iga-screening'" in problem and "ivig-cds rules" in problem
    assert load_settings({"IVIG_CDS_RULE_DISABLED_RULES": "dose-check,iga-screening"}).rules.disabled_rules == {
        "dose-check",
        "iga-screening",
    }


@pytest.mark.parametrize(
    "variable",
    ["IVIG_CDS_FHIR_ALLOWLIST", "IVIG_CDS_CORS_ORIGINS", "IVIG_CDS_RULE_DISABLED_RULES"],
)
def test_a_semicolon_joined_list_is_an_error_that_says_commas(variable):
    (problem,) = problems_of({variable: "https://a.example.org;https://b.example.org"})
    assert problem == f"{variable} separates its entries with commas, not ';'"


@pytest.mark.parametrize("level", ["debug", "Info", "WARNING", " error "])
def test_log_levels_in_any_case(level):
    assert load_settings({"IVIG_CDS_LOG_LEVEL": level}).log_level == level.strip().upper()


def test_every_problem_is_reported_at_once():
    problems = problems_of(
        {
            "IVIG_CDS_LOG_LEVEL": "chatty",
            "IVIG_CDS_FHIR_WORKERS": "eight",
            "IVIG_CDS_AUTH": "maybe",
            "IVIG_CDS_AUDIT_KEY": "short",
            "IVIG_CDS_RULE_PLATELET_FRESH_HOURS": "soon",
            "IVIG_CDS_CA_BUNDLE": "/nonexistent/ca.pem",
            "IVIG_CDS_OUTBOUND_PROXY": "socks5://proxy:1080",
        }
    )
    joined = "\n".join(problems)
    for variable in (
        "IVIG_CDS_LOG_LEVEL",
        "IVIG_CDS_FHIR_WORKERS",
        "IVIG_CDS_AUTH",
        "IVIG_CDS_AUDIT_KEY",
        "IVIG_CDS_RULE_PLATELET_FRESH_HOURS",
        "IVIG_CDS_CA_BUNDLE",
        "IVIG_CDS_OUTBOUND_PROXY",
    ):
        assert variable in joined, variable
    assert len(problems) == 7


@pytest.mark.parametrize(
    "variable", ["IVIG_CDS_FHIR_TOTAL_TIMEOUT", "IVIG_CDS_JWKS_MAX_AGE", "IVIG_CDS_RULE_PLATELET_FRESH_HOURS"]
)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_number_that_is_not_finite_is_refused(variable, value):
    # NaN compares false with everything: a NaN threshold would silently silence a rule.
    (problem,) = problems_of({variable: value})
    assert variable in problem and ("finite" in problem or "negative" in problem)


def test_a_ca_bundle_must_hold_certificates(tmp_path):
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("hello")
    assert "holds no PEM certificate" in problems_of({"IVIG_CDS_CA_BUNDLE": str(not_pem)})[0]


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVIG_CDS_")}
    env.update(values)
    return env


def config_check(**values: str) -> subprocess.CompletedProcess:
    """`ivig-cds config check` with exactly these IVIG_CDS_* variables."""
    return subprocess.run(
        [tool("ivig-cds"), "config", "check"], env=_env(**values), capture_output=True, text=True, timeout=60
    )


def test_config_check_prints_what_is_in_force_without_secrets(tmp_path):
    result = config_check(
        IVIG_CDS_AUTH="JWT",
        IVIG_CDS_JWT_ISSUERS='[{"iss": "https://ehr.example.org", "jwks_url": "https://ehr.example.org/jwks"}]',
        IVIG_CDS_FHIR_ALLOWLIST="https://fhir.example.org/r4",
        IVIG_CDS_AUDIT_KEY="s" * 40,
        IVIG_CDS_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}",
        IVIG_CDS_RULE_PLATELET_FRESH_HOURS="48",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "configuration is valid" in out
    assert "auth" in out and "jwt" in out and "fhir.example.org" in out
    assert "issuer https://ehr.example.org: keys from jwks_url" in out
    assert "rule setting platelet_fresh_hours = 48" in out
    assert "s" * 40 not in out and "audit_key              set" in out
    assert not (tmp_path / "x.db").exists(), "a dry run creates no database"


def test_config_check_lists_each_error_and_exits_2():
    result = config_check(
        IVIG_CDS_FHIR_ALLOWLIST="https://a.example.org;https://b.example.org",
        IVIG_CDS_RULE_DISABLED_RULES="no-such-rule",
        IVIG_CDS_LOG_LEVL="debug",
        IVIG_CDS_JWT_ISSUERS="[{",
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    listed = [line for line in result.stdout.splitlines() if line.startswith("  - ")]
    assert len(listed) == 3, result.stdout  # the issuers are checked once the variables parse
    assert "unknown variable IVIG_CDS_LOG_LEVL" in result.stdout


@pytest.mark.parametrize(
    "values",
    [
        {"IVIG_CDS_LOG_LEVEL": "chatty"},
        {"IVIG_CDS_FHIR_ALLOWLIST": "https://a.example.org;https://b.example.org"},
        {"IVIG_CDS_RULE_DISABLED_RULES": "no-such-rule"},
        {"IVIG_CDS_JTI_CACHE_URL": "memcached://x"},
        {"IVIG_CDS_DATABASE_URL": "mysql://u@h/db"},
        {"IVIG_CDS_CORS_ORIGINS": "https://a.example.org/path"},
        {"IVIG_CDS_JWT_ALGORITHMS": "HS256"},
        {"IVIG_CDS_DATABASE_URL": "sqlite:////proc/no-such-folder/ivig-cds.db"},
    ],
    ids=["log-level", "semicolons", "rule-id", "jti-url", "database", "cors", "hmac", "sqlite-folder"],
)
def test_serve_refuses_a_bad_value_with_a_message_and_exit_2(values, tmp_path):
    result = subprocess.run(
        [tool("ivig-cds"), "serve", "--port", str(free_port())],
        env=_env(**values),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "configuration error" in result.stderr and next(iter(values)) in result.stderr
