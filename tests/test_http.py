"""Every status the HTTP edge can answer, each with a JSON body, through the Flask test client."""

from __future__ import annotations

import json
import logging
import re

import pytest
import requests
import responses

import fhir_fixtures
from tests.conftest import AS_OF, SELECT, SIGN, check_response, make_app, rule_set
from tests.fhir_mock import BASE, serve_scenario
from tests.variants import without_included_medications

P01 = fhir_fixtures.load("P01")


def sign_request(**changes):
    request = P01.prefetch_request(SIGN.prefetch)
    request.update(changes)
    return request


def test_discovery_lists_both_services_with_allowed_prefetch_tokens(client):
    response = client.get("/cds-services")
    body = response.get_json()
    assert response.status_code == 200
    from cds_service.protocol import first_error

    assert first_error("discovery-response.json", body) is None
    hooks = {s["hook"] for s in body["services"]}
    assert hooks == {"order-select", "order-sign"}
    for service in body["services"]:
        for template in service["prefetch"].values():
            tokens = set(__import__("re").findall(r"\{\{([^}]*)\}\}", template))
            assert tokens == {"context.patientId"}


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "alive"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"


def test_malformed_json_is_400(client):
    response = client.post(f"/cds-services/{SIGN.id}", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert "not valid JSON" in check_response(response)["issue"][0]["diagnostics"]


def test_deeply_nested_json_is_400(client):
    body = "[" * 200 + "]" * 200
    response = client.post(f"/cds-services/{SIGN.id}", data=body, content_type="application/json")
    assert response.status_code == 400
    check_response(response)


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda r: r.pop("hookInstance"), "'hookInstance' is a required property"),
        (lambda r: r["context"].pop("patientId"), "'patientId' is a required property"),
        (lambda r: r["context"].pop("draftOrders"), "'draftOrders' is a required property"),
        (lambda r: r.__setitem__("hookInstance", "not-a-uuid"), "$.hookInstance"),
        (lambda r: r.__setitem__("prefetch", []), "$.prefetch: must be of type"),
    ],
)
def test_schema_violation_is_400_naming_the_field(call, mutate, fragment):
    request = sign_request()
    mutate(request)
    status, body = call(SIGN.id, request)
    assert status == 400
    assert fragment in body["issue"][0]["diagnostics"]


def test_body_that_is_not_an_object_is_400(call):
    status, _body = call(SIGN.id, [1, 2, 3])
    assert status == 400


def test_wrong_hook_for_the_service_is_400(call):
    status, body = call(SIGN.id, sign_request(hook="order-select"))
    assert status == 400
    assert "order-sign" in body["issue"][0]["diagnostics"]


def test_an_invalid_element_a_rule_reads_is_said_on_a_card_never_a_400(call, caplog):
    request = sign_request()
    observation = request["prefetch"]["platelets"]["entry"][0]["resource"]
    observation["effectiveDateTime"] = "31/05/2026 10:00"  # a date written for the eye is not FHIR
    with caplog.at_level(logging.INFO):
        status, body = call(SIGN.id, request)
    assert status == 200
    found = rule_set(body)
    assert ("data-unavailable", "warning") in found
    card = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "data-unavailable")
    assert "Platelet count" in card["detail"] and "effectiveDateTime could not be read" in card["detail"]
    # An undated count is not a usable count: the critical bleed is carded with the count unknown.
    assert ("critical-bleeding", "critical") in found
    logged = [vars(record) for record in caplog.records]
    assert "31/05/2026" not in json.dumps(logged, default=str)  # values are never logged
    where = "prefetch.platelets.entry[0].resource.effectiveDateTime"  # the element's path is
    assert any(r.get("where") == where and r.get("reason") == "unreadable" and r.get("request_id") for r in logged)


def test_an_invalid_element_no_rule_reads_in_a_draft_is_left_out_and_the_draft_judged(call):
    request = sign_request()
    request["context"]["draftOrders"]["entry"][0]["resource"]["intent"] = 42
    request["context"]["draftOrders"]["entry"][0]["resource"]["category"] = {"text": "inpatient"}
    status, body = call(SIGN.id, request)
    assert status == 200
    assert ("critical-bleeding", "critical") in rule_set(body)


NUTRITION_ORDER_WITHOUT_INTENT = {  # as in the CDS Hooks order-select example: R4 requires intent
    "resourceType": "NutritionOrder",
    "id": "pureeddiet-simple",
    "status": "draft",
    "patient": {"reference": "Patient/p01"},
    "dateTime": "2026-06-01",
    "oralDiet": {"type": [{"text": "Pureed diet"}]},
}


def test_an_invalid_draft_of_a_kind_no_rule_reads_costs_no_card(call):
    request = sign_request()
    request["context"]["draftOrders"]["entry"].append({"resource": NUTRITION_ORDER_WITHOUT_INTENT})
    status, body = call(SIGN.id, request)
    assert status == 200
    assert ("critical-bleeding", "critical") in rule_set(body)


def test_selecting_only_such_a_draft_gets_no_cards(call):
    request = P01.prefetch_request(SELECT.prefetch, hook="order-select")
    request["context"]["draftOrders"]["entry"].append({"resource": NUTRITION_ORDER_WITHOUT_INTENT})
    request["context"]["selections"] = ["NutritionOrder/pureeddiet-simple"]
    assert call(SELECT.id, request) == (200, {"cards": []})


def test_a_judged_draft_missing_only_what_the_hook_implies_is_completed():
    """CDS Hooks: drafts may not be fully specified yet; status, intent and subject are implied."""
    scenario = fhir_fixtures.load("P23")
    request = scenario.prefetch_request(SIGN.prefetch)
    for entry in request["context"]["draftOrders"]["entry"]:
        for name in ("status", "intent", "subject"):
            entry["resource"].pop(name, None)
    response = make_app().test_client().post(f"/cds-services/{SIGN.id}", json=request)
    assert response.status_code == 200
    body = check_response(response)
    (rapid,) = [c for c in body["cards"] if c["source"]["topic"]["code"] == "rapid-regimen"]
    (update,) = [a for s in rapid["suggestions"] for a in s["actions"] if a["type"] == "update"]
    assert update["resource"]["subject"] == {"reference": f"Patient/{scenario.patient_id}"}
    assert update["resource"]["status"] == "draft"


def test_unknown_service_is_404(call):
    status, _body = call("no-such-service", sign_request())
    assert status == 404


def test_unknown_path_is_404_json(client):
    response = client.get("/nowhere")
    assert response.status_code == 404
    check_response(response)


def test_wrong_method_is_405_json(client):
    response = client.get(f"/cds-services/{SIGN.id}")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    check_response(response)


def test_wrong_content_type_is_415(client):
    response = client.post(f"/cds-services/{SIGN.id}", data=json.dumps(sign_request()), content_type="text/plain")
    assert response.status_code == 415
    check_response(response)


def test_oversized_body_is_413():
    client = make_app(max_body_bytes=2048).test_client()
    response = client.post(f"/cds-services/{SIGN.id}", data=json.dumps(sign_request()), content_type="application/json")
    assert response.status_code == 413
    check_response(response)


def test_patient_missing_without_fhir_server_is_412(call):
    request = P01.prefetch_request(SIGN.prefetch, omit=["patient"])
    status, body = call(SIGN.id, request)
    assert status == 412
    assert "Patient" in body["issue"][0]["diagnostics"]


def test_prefetch_null_patient_is_412(call):
    request = sign_request()
    request["prefetch"]["patient"] = None
    status, _ = call(SIGN.id, request)
    assert status == 412


def test_unknown_selection_is_422(call):
    request = P01.prefetch_request(SIGN.prefetch, hook="order-select")
    request["context"]["selections"] = ["MedicationRequest/not-in-the-bundle"]
    status, _body = call("ivig-platelets-order-select", request)
    assert status == 422


def test_draft_order_for_another_patient_is_422(call):
    request = sign_request()
    request["context"]["draftOrders"]["entry"][0]["resource"]["subject"] = {"reference": "Patient/someone-else"}
    status, body = call(SIGN.id, request)
    assert status == 422
    assert "someone-else" not in body["issue"][0]["diagnostics"]


def test_unexpected_exception_is_500_json_without_details(app):
    def explode(*_args, **_kwargs):
        raise RuntimeError("secret patient detail")

    app.extensions["ivig_cds.pipeline"].call = explode
    response = app.test_client().post(f"/cds-services/{SIGN.id}", json=sign_request())
    assert response.status_code == 500
    body = check_response(response)
    assert "secret" not in json.dumps(body)


def test_non_target_order_gets_no_cards_and_no_fetch(call):
    scenario = fhir_fixtures.load("P35")
    request = scenario.fetch_request(BASE)  # nothing prefetched, and no FHIR server mocked:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        status, body = call(SIGN.id, request)
        assert len(rsps.calls) == 0
    assert status == 200 and body == {"cards": []}


def test_a_draft_bundle_with_no_orders_gets_no_cards(call):
    """FHIR JSON leaves out empty arrays, so a Bundle with no orders has no `entry` at all."""
    request = sign_request()
    request["context"]["draftOrders"] = {"resourceType": "Bundle", "type": "collection"}
    status, body = call(SIGN.id, request)
    assert (status, body) == (200, {"cards": []})


# --- fetching from the FHIR server ---------------------------------------------------------


def fetching_app(**config):
    config.setdefault("fhir_allowlist", [BASE])
    return make_app(**config).test_client()


def post(client, request):
    response = client.post(f"/cds-services/{SIGN.id}", json=request)
    return response.status_code, check_response(response)


def test_fetch_mode_gives_the_same_cards_as_prefetch(call):
    _, prefetched = call(SIGN.id, sign_request())
    seen = []
    with responses.RequestsMock() as rsps:
        serve_scenario(rsps, P01, seen=seen)
        status, fetched = post(fetching_app(), P01.fetch_request(BASE, token="tok-123"))
    assert status == 200
    assert rule_set(fetched) == rule_set(prefetched)
    assert len(seen) == len(SIGN.prefetch)
    assert all(r.headers["Authorization"] == "Bearer tok-123" for r in seen)


def test_operation_outcome_in_prefetch_is_refetched():
    request = P01.prefetch_request(SIGN.prefetch)
    request["prefetch"]["platelets"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}],
    }
    request["fhirServer"] = BASE
    seen = []
    with responses.RequestsMock() as rsps:
        serve_scenario(rsps, P01, seen=seen)
        status, body = post(fetching_app(), request)
    assert status == 200
    assert len(seen) == 1 and "Observation" in seen[0].url
    assert ("critical-bleeding", "critical") in rule_set(body)


def _paged_conditions(request: dict) -> dict:
    """Split the prefetched Conditions: the ITP on page 1, the haemorrhage behind a `next` link."""
    conditions = request["prefetch"]["conditions"]
    first = [e for e in conditions["entry"] if e["resource"]["id"] != "p01-ich"]
    rest = [e for e in conditions["entry"] if e["resource"]["id"] == "p01-ich"]
    assert first and rest
    request["prefetch"]["conditions"] = {
        **conditions,
        "entry": first,
        "link": [{"relation": "next", "url": f"{BASE}/Condition?patient=p01&_page=2"}],
    }
    return {"resourceType": "Bundle", "type": "searchset", "entry": rest}


def test_a_paged_prefetch_bundle_is_read_to_its_end_from_the_fhir_server():
    """The client may page prefetch (CDS Hooks 2.0); page 1 alone would say "no bleeding"."""
    request = P01.prefetch_request(SIGN.prefetch)
    page_two = _paged_conditions(request)
    request["fhirServer"] = BASE
    with responses.RequestsMock() as rsps:
        rsps.get(f"{BASE}/Condition?patient=p01&_page=2", json=page_two)
        status, body = post(fetching_app(), request)
        assert len(rsps.calls) == 1
    assert status == 200
    assert ("critical-bleeding", "critical") in rule_set(body)


def test_a_paged_prefetch_bundle_that_cannot_be_finished_is_unavailable_not_absent():
    request = P01.prefetch_request(SIGN.prefetch)
    _paged_conditions(request)  # and no fhirServer to read page 2 from
    status, body = post(fetching_app(), request)
    assert status == 200
    found = rule_set(body)
    assert ("data-unavailable", "warning") in found
    assert not any(rule in {r for r, _ in found} for rule in ("treatment-threshold", "critical-bleeding"))
    unavailable = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "data-unavailable")
    assert "ondition" in unavailable["summary"] + unavailable["detail"]


def test_a_search_longer_than_the_page_bound_is_unavailable_not_cut():
    def answer(request):
        page = int(dict(p.split("=") for p in request.url.split("?", 1)[1].split("&")).get("_page", "1"))
        bundle = {"resourceType": "Bundle", "type": "searchset", "entry": []}
        bundle["link"] = [{"relation": "next", "url": f"{BASE}/Condition?patient=p01&_page={page + 1}"}]
        return 200, {"Content-Type": "application/fhir+json"}, json.dumps(bundle)

    request = P01.prefetch_request(SIGN.prefetch, omit=("conditions",))
    request["fhirServer"] = BASE
    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.GET, re.compile(re.escape(BASE) + r"/Condition.*"), callback=answer)
        status, body = post(fetching_app(fhir_max_pages=4), request)
        assert len(rsps.calls) == 4
    assert status == 200
    assert ("data-unavailable", "warning") in rule_set(body)
    assert "critical-bleeding" not in {r for r, _ in rule_set(body)}


def test_a_medication_the_client_did_not_include_is_read_from_the_fhir_server():
    scenario = fhir_fixtures.load("P46")
    request = without_included_medications(scenario, SIGN.prefetch)
    request["fhirServer"] = BASE
    seen = []
    with responses.RequestsMock() as rsps:
        serve_scenario(rsps, scenario, seen=seen)
        status, body = post(fetching_app(), request)
    assert status == 200
    assert [r.url.split("?")[0].rsplit("/", 1)[-1] for r in seen] == ["Medication"]
    assert ("duplicate-ivig", "warning") in rule_set(body), "the IVIG given 24 h ago is found"


def test_a_medication_that_cannot_be_read_makes_the_history_unavailable_not_empty(call):
    request = without_included_medications(fhir_fixtures.load("P46"), SIGN.prefetch)  # and no fhirServer
    status, body = call(SIGN.id, request)
    assert status == 200
    found = rule_set(body)
    assert ("data-unavailable", "warning") in found and "duplicate-ivig" not in {r for r, _ in found}
    card = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "data-unavailable")
    assert "administrations" in card["summary"]


def test_a_medication_search_that_finds_nothing_leaves_the_history_unavailable():
    """A token that may not read Medications gets an empty Bundle: that is not an empty history."""
    scenario = fhir_fixtures.load("P46")
    request = without_included_medications(scenario, SIGN.prefetch)
    request["fhirServer"] = BASE
    with responses.RequestsMock() as rsps:
        rsps.get(re.compile(re.escape(BASE) + r"/Medication\?.*"), json={"resourceType": "Bundle", "type": "searchset"})
        status, body = post(fetching_app(), request)
    assert status == 200
    found = rule_set(body)
    assert ("data-unavailable", "warning") in found and "duplicate-ivig" not in {r for r, _ in found}


def test_medications_are_not_sought_on_a_server_off_the_allowlist_and_the_call_still_answers():
    request = without_included_medications(fhir_fixtures.load("P46"), SIGN.prefetch)
    request["fhirServer"] = "https://elsewhere.example.net/fhir"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        status, body = post(fetching_app(), request)
        assert len(rsps.calls) == 0
    assert status == 200 and ("data-unavailable", "warning") in rule_set(body)


def test_a_prefetch_bundle_whose_link_is_not_a_list_has_no_next_page(call):
    request = sign_request()
    request["prefetch"]["conditions"]["link"] = 5
    status, body = call(SIGN.id, request)
    assert status == 200 and ("critical-bleeding", "critical") in rule_set(body)


def test_an_ivig_draft_whose_medication_cannot_be_read_is_said_on_a_card_not_ignored(call):
    request = sign_request()
    ivig = request["context"]["draftOrders"]["entry"][0]["resource"]
    ivig.pop("medicationCodeableConcept")
    ivig["medicationReference"] = {"reference": "Medication/med-ivig"}
    medication = {"resourceType": "Medication", "id": "med-ivig", "code": "IVIG"}  # code must be an object
    request["context"]["draftOrders"]["entry"].append({"resource": medication})
    status, body = call(SIGN.id, request)
    assert status == 200
    assert rule_set(body) == {("order-unreadable", "warning")}
    card = body["cards"][0]
    assert "Medication/med-ivig" in card["detail"] and "could not be read" in card["detail"]


def test_included_medications_need_no_second_search(call):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        request = fhir_fixtures.load("P46").prefetch_request(SIGN.prefetch)
        request["fhirServer"] = BASE
        status, body = call(SIGN.id, request)
        assert len(rsps.calls) == 0
    assert status == 200 and ("duplicate-ivig", "warning") in rule_set(body)


def test_fhir_server_not_on_allowlist_is_403_and_never_contacted():
    request = P01.fetch_request("https://evil.example.net/fhir")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        status, _body = post(fetching_app(), request)
        assert len(rsps.calls) == 0
    assert status == 403


def test_fhir_server_down_for_patient_is_412():
    with responses.RequestsMock() as rsps:
        serve_scenario(rsps, P01, fail=lambda path: (503, {"resourceType": "OperationOutcome"}))
        status, body = post(fetching_app(), P01.fetch_request(BASE))
    assert status == 412
    assert "could not be retrieved" in body["issue"][0]["diagnostics"]


def test_fhir_server_unreachable_is_412():
    client = fetching_app(fhir_allowlist=["https://127.0.0.1:9"], fhir_connect_timeout=0.5)
    status, _body = post(client, P01.fetch_request("https://127.0.0.1:9"))
    assert status == 412


def test_one_query_failing_gives_cards_that_say_which_data_is_missing():
    def fail(path):
        return (500, {"resourceType": "OperationOutcome"}) if path.startswith("AllergyIntolerance") else None

    with responses.RequestsMock() as rsps:
        serve_scenario(rsps, P01, fail=fail)
        status, body = post(fetching_app(), P01.fetch_request(BASE))
    assert status == 200
    unavailable = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "data-unavailable")
    assert unavailable["indicator"] == "warning" and "allergies" in unavailable["summary"]
    assert ("critical-bleeding", "critical") in rule_set(body)


def test_missing_platelet_data_is_not_reported_as_no_platelet_count():
    def fail(path):
        return (500, {}) if "777-3" in path else None

    with responses.RequestsMock() as rsps:
        serve_scenario(rsps, P01, fail=fail)
        status, body = post(fetching_app(), P01.fetch_request(BASE))
    assert status == 200
    rules = {code for code, _ in rule_set(body)}
    assert "data-unavailable" in rules
    assert "no-platelet-count" not in rules
    # The intracranial bleed is not left silent: the count is asked for, not assumed.
    critical = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "critical-bleeding")
    assert critical["summary"].startswith("Life-threatening bleeding, platelet counts not retrieved: count now")
    assert "Platelet count: could not be retrieved" in critical["detail"]


def test_an_unreadable_resource_from_the_server_is_said_on_a_card():
    ich = {
        "resourceType": "Condition",
        "id": "ich-bad-subject",
        "subject": 5,
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "1386000"}], "text": "Intracranial bleed"},
    }

    def fail(path):
        if path.startswith("Condition"):
            return 200, {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": ich}]}
        return None

    with responses.RequestsMock() as rsps:
        serve_scenario(rsps, P01, fail=fail)
        status, body = post(fetching_app(), P01.fetch_request(BASE))
    assert status == 200
    card = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "data-unavailable")
    assert "Condition 'Intracranial bleed'" in card["detail"] and "subject" in card["detail"]


def test_no_fhir_server_and_missing_keys_reports_unavailable_data(call):
    request = P01.prefetch_request(SIGN.prefetch, omit=["medications", "administrations"])
    status, body = call(SIGN.id, request)
    assert status == 200
    assert ("data-unavailable", "warning") in rule_set(body)


def test_clock_is_the_apps_not_the_tests():
    """The app judges at its clock: one hour later the fixture's count is still fresh, 80 h later not."""
    from datetime import timedelta

    later = make_app(clock=lambda: AS_OF + timedelta(hours=80)).test_client()
    response = later.post(f"/cds-services/{SIGN.id}", json=fhir_fixtures.load("P04").prefetch_request(SIGN.prefetch))
    assert ("data-quality", "warning") in rule_set(check_response(response))


def timing_out(prefix, error):
    """A `fail` callback for serve_scenario: queries starting with `prefix` raise `error`."""

    def fail(path):
        if path.startswith(prefix):
            raise error
        return None

    return fail


def test_fhir_timeout_on_one_query_is_reported_not_hidden():
    with responses.RequestsMock() as rsps:
        serve_scenario(rsps, P01, fail=timing_out("Condition", requests.ReadTimeout()))
        status, body = post(fetching_app(), P01.fetch_request(BASE))
    assert status == 200
    card = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "data-unavailable")
    assert "problem list" in card["summary"]
    # without the problem list the intracranial bleed is unknown: no bleeding card is guessed
    assert "critical-bleeding" not in {c["source"]["topic"]["code"] for c in body["cards"]}


def test_fhir_timeout_on_the_patient_is_412():
    with responses.RequestsMock() as rsps:
        serve_scenario(rsps, P01, fail=timing_out("Patient", requests.ConnectTimeout()))
        status, _body = post(fetching_app(), P01.fetch_request(BASE))
    assert status == 412
