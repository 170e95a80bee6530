"""Logs an operator can act on: every line of a call names it, refusals say why (safely), and the
start-up line says what configuration is in force, all without a token, a patient id or a value."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid

import pytest
import requests
import responses

import fhir_fixtures
from cds_service import observability
from tests.auth_tokens import JWKS_URL, PUBLIC_BASE, bearer, ehr_jwks, jwt_app, token
from tests.conftest import SIGN, make_app
from tests.fhir_mock import BASE, serve_scenario
from tests.processes import free_port

INVOKE = f"/cds-services/{SIGN.id}"
P01 = fhir_fixtures.load("P01")


@pytest.fixture
def lines():
    """What the service writes to its log, as parsed JSON lines (the real handler, filter and formatter)."""
    stream = io.StringIO()
    handler = observability.json_handler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    previous = logging.getLogger("cds_service").level
    logging.getLogger("cds_service").setLevel(logging.INFO)

    def read() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield read
    root.removeHandler(handler)
    logging.getLogger("cds_service").setLevel(previous)


def test_every_line_of_a_call_names_its_request_id_and_hook_instance(lines):
    request_id = str(uuid.uuid4())  # with hyphens, as most proxies and EHRs make them
    request = P01.fetch_request(BASE)
    with responses.RequestsMock() as rsps:
        # The platelet search fails: a warning is written in the middle of the call.
        serve_scenario(rsps, P01, fail=lambda path: (500, {}) if "code=" in path else None)
        client = make_app(fhir_allowlist=[BASE]).test_client()
        before = len(lines())
        response = client.post(INVOKE, json=request, headers={"X-Request-Id": request_id})
    assert response.status_code == 200 and response.headers["X-Request-Id"] == request_id
    call = lines()[before:]
    messages = [line["message"] for line in call]
    assert "FHIR fetch failed" in messages and "hook answered" in messages and "request" in messages
    for line in call:
        assert line["request_id"] == request_id, line
        assert line["hook_instance"] == request["hookInstance"], line
    assert P01.patient_id not in json.dumps(call)


def test_ids_do_not_leak_into_the_next_call(lines):
    client = make_app().test_client()
    client.post(INVOKE, json=P01.prefetch_request(SIGN.prefetch), headers={"X-Request-Id": "first-call"})
    before = len(lines())
    client.get("/healthz")
    after = lines()[before:]
    assert after and all(line.get("request_id") != "first-call" and "hook_instance" not in line for line in after)


@pytest.mark.parametrize("sent", ["a b", "x" * 200, "id;forged=1", "é", "-leading-hyphen", ""])
def test_an_insane_request_id_is_replaced(sent):
    response = make_app().test_client().get("/healthz", headers={"X-Request-Id": sent})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-Id"])


def test_thread_pool_tasks_run_in_the_calls_context():
    executor = observability.ContextExecutor(max_workers=1)
    observability._request_id.set("req-in-thread")
    try:
        assert executor.submit(observability.current_request_id).result(5) == "req-in-thread"
    finally:
        observability._request_id.set(None)
        executor.shutdown()


def test_timestamps_have_milliseconds(lines):
    make_app().test_client().get("/healthz")
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"]) for line in lines())


def test_one_start_up_line_says_what_is_in_force_without_secrets(lines):
    secrets = ("k" * 40, "metrics-token-0123456789", "proxy-password")
    make_app(
        auth="jwt",
        jwt_issuers='[{"iss": "https://ehr.example.org", "jwks_url": "https://ehr.example.org/jwks"}]',
        public_base_url=PUBLIC_BASE,
        fhir_allowlist=["https://fhir.example.org/r4", "https://fhir2.example.org:8443/fhir"],
        audit_key=secrets[0],
        metrics_token=secrets[1],
        outbound_proxy=f"http://user:{secrets[2]}@proxy.internal:3128",
    )
    started = [line for line in lines() if line["message"] == "configuration in force"]
    assert len(started) == 1
    config = started[0]["config"]
    assert config["auth"] == "jwt" and config["issuers"] == 1
    assert config["fhir_allowlist_hosts"] == ["fhir.example.org", "fhir2.example.org:8443"]
    assert config["database_backend"] == "sqlite" and config["database"].startswith("sqlite:////")
    assert config["replay_store"] == "in-process"
    assert config["audit_key"] == "set" and config["metrics_token"] == "set"
    assert config["outbound_proxy"] == "http://proxy.internal:3128"
    assert not any(secret in json.dumps(started) for secret in secrets)


def test_log_level_is_accepted_in_any_case():
    assert make_app(log_level="debug").config["IVIG_CDS"].log_level == "DEBUG"
    assert logging.getLogger("cds_service").level == logging.DEBUG
    make_app(log_level="info")


# --- refusals, with the detail that says what to fix -------------------------------------------


def _refusal(lines_now: list[dict]) -> dict:
    return next(line for line in lines_now if line["message"] == "CDS client token refused")


def test_bad_audience_names_the_audience_expected_and_received(lines):
    with responses.RequestsMock() as rsps:
        rsps.get(JWKS_URL, json=ehr_jwks())
        signed = token(INVOKE, aud="http://cds.example.org" + INVOKE)  # http, not https: a common slip
        response = jwt_app().test_client().post(INVOKE, json={}, headers=bearer(signed))
    assert response.status_code == 401
    refusal = _refusal(lines())
    assert refusal["reason"] == "bad-audience"
    assert refusal["expected_audience"] == PUBLIC_BASE + INVOKE
    assert refusal["received_audience"] == "http://cds.example.org" + INVOKE
    assert signed not in json.dumps(lines()) and signed.split(".")[2] not in json.dumps(lines())


def test_unknown_issuer_names_the_issuer_received(lines):
    response = (
        jwt_app().test_client().get("/cds-services", headers=bearer(token("/cds-services", iss="https://x.test")))
    )
    assert response.status_code == 401
    assert _refusal(lines()) | {"reason": "unknown-issuer", "issuer": "https://x.test"} == _refusal(lines())


def test_jwks_failure_names_the_url_and_why_and_a_fixed_jwks_is_used_seconds_later(lines):
    clock = [1000.0]
    with responses.RequestsMock() as rsps:
        rsps.get(JWKS_URL, body=requests.exceptions.SSLError("certificate verify failed"))
        app = jwt_app(jwks_refresh_interval=30)
        app.extensions["ivig_cds.jwt"].keys.clock = lambda: clock[0]
        client = app.test_client()
        assert client.get("/cds-services", headers=bearer(token("/cds-services"))).status_code == 401
        failed = next(line for line in lines() if line["message"] == "JWKS fetch failed")
        assert failed["jwks_url"] == JWKS_URL and failed["failure"] == "tls"
        assert _refusal(lines())["failure"] == "tls" and _refusal(lines())["jwks_url"] == JWKS_URL
        # The operator installs the CA bundle; the JWKS answers from now on.
        rsps.replace(responses.GET, JWKS_URL, json=ehr_jwks())
        clock[0] += 1
        assert client.get("/cds-services", headers=bearer(token("/cds-services"))).status_code == 401
        assert len(rsps.calls) == 1, "a broken JWKS is not hammered"
        clock[0] += 5
        assert client.get("/cds-services", headers=bearer(token("/cds-services"))).status_code == 200


def test_a_refused_fhir_server_is_logged_by_host_only(lines):
    request = P01.fetch_request("https://evil.example.net/fhir/tenant-7")
    response = make_app(fhir_allowlist=[BASE]).test_client().post(INVOKE, json=request)
    assert response.status_code == 403
    refused = next(line for line in lines() if line["message"] == "FHIR server refused: not on the allowlist")
    assert refused["host"] == "https://evil.example.net"
    assert "tenant-7" not in json.dumps(lines()) and P01.patient_id not in json.dumps(lines())


def test_a_repaired_or_refused_element_is_named_never_its_value_or_the_patient_id(lines):
    request = P01.prefetch_request(SIGN.prefetch)
    request["prefetch"]["patient"]["birthDate"] = "not-a-date-1234"
    assert make_app().test_client().post(INVOKE, json=request).status_code == 200  # read around, said on a card
    repaired = next(line for line in lines() if line["message"] == "input repaired")
    assert repaired["where"] == "prefetch.patient.birthDate" and repaired["reason"] == "unreadable"
    assert repaired["request_id"] and repaired["hook_instance"] == request["hookInstance"]
    assert "not-a-date-1234" not in json.dumps(lines()) and P01.patient_id not in json.dumps(lines())

    schema_broken = P01.prefetch_request(SIGN.prefetch)
    schema_broken["context"]["draftOrders"] = "not a bundle"
    assert make_app().test_client().post(INVOKE, json=schema_broken).status_code == 400
    refused = [line for line in lines() if line["message"] == "request refused"][-1]
    assert refused["element"] == "$.context.draftOrders"


def test_an_unreachable_database_is_named_with_the_cause_and_no_password(lines):
    url = f"postgresql+psycopg://ivig:db-password-x@127.0.0.1:{free_port()}/ivig"
    make_app(database_url=url, database_timeout=1)
    line = next(line for line in lines() if line["message"].startswith("database unreachable at start"))
    assert line["failure"] == "connection-refused"
    assert line["database"].startswith("postgresql+psycopg://ivig:***@127.0.0.1:")
    assert "db-password-x" not in json.dumps(lines())
