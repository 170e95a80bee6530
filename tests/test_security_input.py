"""Hostile and unusual input: extensions are tolerated, wrong types are 400, and nothing a patient,
an EHR session or a CDS client could be known by ever reaches a log line or an error body."""

from __future__ import annotations

import copy
import io
import json
import logging
import re
import time

import pytest
import responses

import fhir_fixtures
from cds_service.observability import JsonFormatter
from tests.auth_tokens import JWKS_URL, bearer, ehr_jwks, jwt_app, token
from tests.conftest import SIGN, check_response, rule_set

FHIR = "https://fhir.example.org/r4"
INVOKE = f"/cds-services/{SIGN.id}"
P01 = fhir_fixtures.load("P01")


def sign_request():
    return P01.prefetch_request(SIGN.prefetch)


# --- extensions tolerated, wrong types refused ----------------------------------------------------------


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r.__setitem__("extension", {"com.example.flags": {"urgent": True}}),
        lambda r: r.__setitem__("com.example.unknownMember", [1, 2]),
        lambda r: r["context"].__setitem__("com.example.extra", "x"),
        lambda r: r.update(
            fhirServer=FHIR,
            fhirAuthorization={
                "access_token": "t",
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": "patient/*.read",
                "subject": "ivig-cds",
                "com.example.x": 1,
            },
        ),
        lambda r: r["prefetch"].__setitem__("notAskedFor", {"resourceType": "Bundle", "type": "searchset"}),
    ],
    ids=["extension", "unknown top-level member", "unknown context member", "extra fhir member", "extra prefetch"],
)
def test_extensions_and_unknown_members_are_tolerated(call, mutate):
    request = sign_request()
    mutate(request)
    status, body = call(SIGN.id, request)
    assert status == 200
    assert ("critical-bleeding", "critical") in rule_set(body)


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda r: r.__setitem__("hook", 7), "$.hook"),
        (lambda r: r.__setitem__("hookInstance", 12345), "$.hookInstance"),
        (lambda r: r.__setitem__("context", "patient"), "$.context"),
        (lambda r: r.__setitem__("prefetch", "all"), "$.prefetch"),
        (lambda r: r.__setitem__("fhirServer", 5), "$.fhirServer"),
        (lambda r: r.update(fhirServer=FHIR, fhirAuthorization="tok"), "$.fhirAuthorization"),
        (
            lambda r: r.update(fhirServer=FHIR, fhirAuthorization={"access_token": 1, "token_type": "Bearer"}),
            "$.fhirAuthorization",
        ),
        (lambda r: r.__setitem__("extension", []), "$.extension"),
        (lambda r: r["context"].__setitem__("patientId", 99), "$.context.patientId"),
        (lambda r: r["context"].__setitem__("draftOrders", []), "$.context.draftOrders"),
        (lambda r: r["context"]["draftOrders"].__setitem__("entry", {}), "$.context.draftOrders"),
    ],
)
def test_wrong_types_are_400_naming_the_member(call, mutate, where):
    request = sign_request()
    mutate(request)
    status, body = call(SIGN.id, request)
    assert status == 400
    assert where in body["issue"][0]["diagnostics"]


@pytest.mark.parametrize("value", [42, "Patient/p01", {"id": "no-type"}, ["a"]])
def test_a_prefetch_value_that_is_no_fhir_resource_is_treated_as_not_sent(call, value):
    """Not a reason to refuse the call: without a fhirServer to read it from, the Patient is missing (412);
    another kind is said to be unavailable on a card."""
    request = sign_request()
    request["prefetch"]["patient"] = value
    status, body = call(SIGN.id, request)
    assert status == 412 and "Patient" in body["issue"][0]["diagnostics"]
    request = sign_request()
    request["prefetch"]["allergies"] = value
    status, body = call(SIGN.id, request)
    assert status == 200 and ("data-unavailable", "warning") in rule_set(body)


@pytest.mark.parametrize(
    "raw",
    [b"\xff\xfe{}", b'{"hook": "order-sign", "hook": 1}' + b" " * 10, b"null", b'"string"', b"1e999999", b"[]"],
)
def test_odd_json_is_a_4xx_not_a_500(client, raw):
    response = client.post(INVOKE, data=raw, content_type="application/json")
    assert 400 <= response.status_code < 500
    check_response(response)


def test_deep_nesting_inside_an_accepted_member_is_400(call):
    request = sign_request()
    deep: dict = {}
    cursor = deep
    for _ in range(100):
        cursor["a"] = {}
        cursor = cursor["a"]
    request["extension"] = {"com.example.deep": deep}
    status, _ = call(SIGN.id, request)
    assert status == 400


# --- the log-leak test ---------------------------------------------------------------------------------

PATIENT = "pat-QZX81-leakcheck"
ACCESS_TOKEN = "fhir-access-token-7Hq2LeakCheck"
CONDITION_TEXT = "Leakcheck condition note 5521"
OBSERVATION_TEXT = "Leakcheck platelet comment 9043"


def _marked(value):
    """The scenario with a recognisable patient id and recognisable resource contents."""
    text = json.dumps(value).replace("pat-p01", PATIENT)
    marked = json.loads(text)

    def visit(node):
        if isinstance(node, dict):
            if node.get("resourceType") == "Condition":
                node["note"] = [{"text": CONDITION_TEXT}]
            if node.get("resourceType") == "Observation":
                node["note"] = [{"text": OBSERVATION_TEXT}]
            for child in node.values():
                visit(child)
        elif isinstance(node, list):
            for child in node:
                visit(child)

    visit(marked)
    return marked


RESOURCES = _marked(P01.resources())


def _serve_marked_fhir(rsps, fail=None):
    def answer(request):
        relative = request.url[len(FHIR) + 1 :]
        if fail and fail(relative):
            return 500, {}, json.dumps({"resourceType": "OperationOutcome", "text": {"div": CONDITION_TEXT}})
        result = fhir_fixtures.evaluate(relative, RESOURCES)
        if result is None:
            return 404, {}, "{}"
        return 200, {"Content-Type": "application/fhir+json"}, json.dumps(result)

    rsps.add_callback(responses.GET, re.compile(re.escape(FHIR) + r"/.*"), callback=answer)


@pytest.fixture
def captured(caplog):
    """Every log record at DEBUG, and the JSON lines the service writes, for the whole test."""
    caplog.set_level(logging.DEBUG)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    service_level = logging.getLogger("cds_service").level
    try:
        yield caplog, stream
    finally:
        root.removeHandler(handler)
        logging.getLogger("cds_service").setLevel(service_level)


def _everything_logged(caplog, stream):
    parts = [caplog.text, stream.getvalue()]
    for record in caplog.records:
        parts.append(repr(record.args))
        parts.extend(repr(value) for value in vars(record).values())  # extra= fields too
    return "\n".join(parts)


def test_no_patient_data_token_or_jwt_reaches_the_logs_or_error_bodies(captured):
    caplog, stream = captured
    secrets = [PATIENT, ACCESS_TOKEN, CONDITION_TEXT, OBSERVATION_TEXT]
    jwts: list[str] = []
    error_bodies: list[str] = []

    def signed(path=INVOKE, **claims):
        value = token(path, **claims)
        jwts.append(value)
        return bearer(value)

    prefetched = _marked(P01.prefetch_request(SIGN.prefetch))
    fetched = _marked(P01.fetch_request(FHIR, token=ACCESS_TOKEN))
    invalid = copy.deepcopy(prefetched)
    invalid["prefetch"]["conditions"]["entry"][0]["resource"]["subject"] = PATIENT  # not a Reference
    not_cds_hooks = copy.deepcopy(prefetched)
    not_cds_hooks["context"]["patientId"] = f"{PATIENT} /"
    selection = _marked(P01.prefetch_request(SIGN.prefetch, hook="order-select"))
    selection["context"]["selections"] = [f"MedicationRequest/{PATIENT}"]

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(JWKS_URL, json=ehr_jwks())
        _serve_marked_fhir(rsps, fail=lambda path: path.startswith("AllergyIntolerance"))
        app = jwt_app(fhir_allowlist=[FHIR], log_level="DEBUG")
        client = app.test_client()

        ok_prefetch = client.post(INVOKE, json=prefetched, headers=signed())
        ok_fetch = client.post(INVOKE, json=fetched, headers=signed())
        assert ok_prefetch.status_code == 200 and ok_fetch.status_code == 200
        assert ("data-unavailable", "warning") in rule_set(ok_fetch.get_json())  # the failing query ran
        repaired = client.post(INVOKE, json=invalid, headers=signed())  # read tolerantly: a repair is logged
        assert repaired.status_code == 200

        errors = [
            client.post(INVOKE, json=not_cds_hooks, headers=signed()),  # 400: a patient id that is no FHIR id
            client.post(  # 403: fhirServer not allowlisted, with the token in the body
                INVOKE, json={**fetched, "fhirServer": f"https://{PATIENT}.example.net/r4"}, headers=signed()
            ),
            client.post(
                "/cds-services/ivig-platelets-order-select", json=selection, headers=signed("/cds-services/x")
            ),  # 401: wrong audience
            client.post(INVOKE, json=prefetched, headers=signed(now=time.time() - 4000)),  # 401: expired
            client.post(INVOKE, json=prefetched, headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}),
        ]
        fhir_down = jwt_app(fhir_allowlist=[FHIR], log_level="DEBUG").test_client()
        with responses.RequestsMock() as inner:  # a fresh mock where the FHIR server fails everything
            inner.get(JWKS_URL, json=ehr_jwks())
            _serve_marked_fhir(inner, fail=lambda path: True)
            errors.append(fhir_down.post(INVOKE, json=fetched, headers=signed()))  # 412

        def explode(*_args, **_kwargs):
            raise RuntimeError(f"bug while judging {PATIENT}: {CONDITION_TEXT}")

        app.extensions["ivig_cds.pipeline"].call = explode
        errors.append(client.post(INVOKE, json=prefetched, headers=signed()))  # 500

    assert [e.status_code for e in errors] == [400, 403, 401, 401, 401, 412, 500]
    for response in errors:
        check_response(response)
        error_bodies.append(response.get_data(as_text=True))

    logged = _everything_logged(caplog, stream)
    assert "hook answered" in logged and "request refused" in logged  # the capture did capture
    assert "input repaired" in logged and "prefetch.conditions.entry[0].resource.subject" in logged
    assert logging.getLogger("cds_service").getEffectiveLevel() == logging.DEBUG
    for secret in [*secrets, *jwts]:
        assert secret not in logged, f"leaked into logs: {secret[:12]}…"
        for body in error_bodies:
            assert secret not in body, f"leaked into an error body: {secret[:12]}…"
    for value in jwts:
        for part in value.split("."):
            assert part not in logged
