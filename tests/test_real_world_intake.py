"""What real EHRs send, through HTTP: drafts shaped like the reference CDS client's, medications behind
references, malformed resources beside good ones, long histories paged by a server that sorts or does
not. Every test here failed (400, no card, the wrong card, or the whole history read) before the
tolerant, bounded reader."""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import timedelta

import pytest
import responses
from prometheus_client import CollectorRegistry

import fhir_fixtures
from fhir_fixtures import realistic
from tests.conftest import AS_OF, SELECT, SIGN, check_response, make_app, rule_set
from tests.fhir_mock import BASE, serve_scenario

P01 = fhir_fixtures.load("P01")
P04 = fhir_fixtures.load("P04")
SNOMED = "http://snomed.info/sct"


def fetching_app(**config):
    return make_app(fhir_allowlist=[BASE], **config)


def post(app, body, service=SIGN):
    response = app.test_client().post(f"/cds-services/{service.id}", json=body)
    return response.status_code, check_response(response)


# --- drafts as the reference CDS client writes them ----------------------------------------------


def client_draft(medication: dict | None, patient: str = P01.patient_id, **extra) -> dict:
    """A MedicationRequest as the CDS Hooks reference client builds it: no `intent`, `category` and
    `reasonCode` as single objects, an STU3-style `Dosage.doseQuantity`, a date-only `authoredOn`."""
    draft = {
        "resourceType": "MedicationRequest",
        "id": "sandbox-draft",
        "status": "draft",
        "authoredOn": "2026-06-01",
        "subject": {"reference": f"Patient/{patient}"},
        "category": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category", "code": "inpatient"}
            ]
        },
    }
    if medication is not None:
        draft["medicationCodeableConcept"] = medication
    draft.update(extra)
    return draft


def with_drafts(scenario, *drafts, hook="order-sign"):
    service = SIGN if hook == "order-sign" else SELECT
    request = scenario.prefetch_request(service.prefetch, hook=hook)
    request["context"]["draftOrders"] = {"resourceType": "Bundle", "entry": [{"resource": d} for d in drafts]}
    if hook == "order-select":
        request["context"]["selections"] = [f"MedicationRequest/{d['id']}" for d in drafts]
    return request


NAPROXEN = {
    "text": "naproxen 500 MG Oral Tablet",
    "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "198014", "display": "naproxen"}],
}
IVIG_BY_NAME = {"text": "Privigen (immune globulin intravenous, human) 10 % solution"}
ICH_REASON = {"coding": [{"system": SNOMED, "code": "1386000", "display": "Intracranial hemorrhage"}]}


@pytest.mark.parametrize("hook", ["order-sign", "order-select"])
def test_the_reference_clients_first_draft_without_intent_or_medication_gets_no_cards_not_400(hook):
    status, body = post(
        make_app(), with_drafts(P01, client_draft(None), hook=hook), SIGN if hook == "order-sign" else SELECT
    )
    assert (status, body) == (200, {"cards": []})


def test_a_reference_client_draft_for_another_drug_gets_no_cards_not_400():
    draft = client_draft(NAPROXEN, reasonCode=ICH_REASON, dosageInstruction=[{"doseQuantity": {"value": 1}}])
    assert post(make_app(), with_drafts(P01, draft)) == (200, {"cards": []})


def test_a_reference_client_ivig_draft_is_judged_with_its_reason_and_dose_read():
    """P04: platelets 25 and no bleeding on record; the draft's reason (a single object) says intracranial
    haemorrhage, and its dose sits where STU3 put it. Both must be read, not dropped."""
    dosage = [{"doseQuantity": {"value": 1, "unit": "g/kg", "system": "http://unitsofmeasure.org", "code": "g/kg"}}]
    draft = client_draft(IVIG_BY_NAME, P04.patient_id, reasonCode=ICH_REASON, dosageInstruction=dosage)
    status, body = post(make_app(), with_drafts(P04, draft))
    assert status == 200
    found = rule_set(body)
    assert ("critical-bleeding", "critical") in found, found
    dose = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "dose-check")
    assert dose["indicator"] == "info" and "70 g" in dose["summary"]


def test_repairs_are_logged_with_their_path_and_request_id_and_counted(caplog):
    registry = CollectorRegistry()
    app = make_app(metrics_registry=registry)
    dosage = [{"doseQuantity": {"value": 1, "unit": "g/kg", "system": "http://unitsofmeasure.org", "code": "g/kg"}}]
    draft = client_draft(IVIG_BY_NAME, P04.patient_id, reasonCode=ICH_REASON, dosageInstruction=dosage)
    with caplog.at_level(logging.INFO):
        response = app.test_client().post(
            f"/cds-services/{SIGN.id}", json=with_drafts(P04, draft), headers={"X-Request-Id": "abc123"}
        )
    assert response.status_code == 200
    repairs = {(r.where, r.reason) for r in caplog.records if r.getMessage() == "input repaired"}
    where = "context.draftOrders.entry[0].resource"
    assert repairs == {
        (f"{where}.category", "wrapped-in-list"),
        (f"{where}.reasonCode", "wrapped-in-list"),
        (f"{where}.dosageInstruction[0].doseQuantity", "moved-to-r4"),
        (f"{where}.intent", "completed"),
    }
    assert all(r.request_id == "abc123" for r in caplog.records if r.getMessage() == "input repaired")

    def count(action):
        return registry.get_sample_value("ivig_cds_input_repairs_total", {"source": "draft", "action": action})

    assert (count("wrapped-in-list"), count("moved-to-r4"), count("completed")) == (2, 1, 1)


# --- one malformed draft never costs another its cards ---------------------------------------------


def test_an_unreadable_unrelated_draft_changes_no_card():
    request = P01.prefetch_request(SIGN.prefetch)
    expected = rule_set(post(make_app(), request)[1])
    broken = client_draft(NAPROXEN, id="broken", medicationCodeableConcept=[NAPROXEN])  # a list: not R4
    request["context"]["draftOrders"]["entry"].append({"resource": broken})
    status, body = post(make_app(), request)
    assert status == 200 and rule_set(body) == expected


def test_an_unreadable_draft_that_may_be_ivig_is_said_on_a_card_beside_the_others():
    request = P01.prefetch_request(SIGN.prefetch)
    expected = rule_set(post(make_app(), request)[1])
    broken = client_draft(None, id="broken-ivig", medicationCodeableConcept=[{"text": "Gamunex-C 10 %"}])
    request["context"]["draftOrders"]["entry"].append({"resource": broken})
    status, body = post(make_app(), request)
    assert status == 200 and rule_set(body) == expected | {("order-unreadable", "warning")}
    card = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "order-unreadable")
    assert "MedicationRequest/broken-ivig" in card["detail"] and len(card["summary"]) <= 140


# --- IVIG behind a Medication reference ---------------------------------------------------------------

CVX_87_ONLY = {
    "resourceType": "Medication",
    "id": "ivig-cvx87",
    "code": {"coding": [{"system": realistic.CVX, "code": "87"}]},
}


def _ivig_by_reference(scenario=P01):
    request = scenario.prefetch_request(SIGN.prefetch)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft.pop("medicationCodeableConcept")
    draft["medicationReference"] = {"reference": "Medication/ivig-cvx87"}  # no display: the code says it all
    request["fhirServer"] = BASE
    return request


def test_an_ivig_draft_coded_only_on_a_server_medication_is_judged():
    request = _ivig_by_reference()
    with responses.RequestsMock() as rsps:
        rsps.get(
            re.compile(re.escape(BASE) + r"/Medication\?_id=ivig-cvx87.*"),
            json={"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": CVX_87_ONLY}]},
        )
        status, body = post(fetching_app(), request)
        assert len(rsps.calls) == 1
    assert status == 200 and ("critical-bleeding", "critical") in rule_set(body)


def test_an_ivig_draft_whose_medication_came_in_prefetch_needs_no_search():
    request = _ivig_by_reference()
    request["prefetch"]["medications"]["entry"].append({"resource": CVX_87_ONLY, "search": {"mode": "include"}})
    with responses.RequestsMock():  # no call may be made
        status, body = post(fetching_app(), request)
    assert status == 200 and ("critical-bleeding", "critical") in rule_set(body)


def test_a_referenced_medication_that_cannot_be_read_is_said_on_a_card_when_the_order_suggests_ivig():
    request = _ivig_by_reference()
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"][0]["text"] = "IVIG 1 g/kg IV once"
    with responses.RequestsMock() as rsps:
        rsps.get(re.compile(re.escape(BASE) + r"/Medication.*"), status=503)
        status, body = post(fetching_app(), request)
    assert status == 200 and rule_set(body) == {("order-unreadable", "warning")}
    assert "Medication/ivig-cvx87" in body["cards"][0]["detail"]


# --- long histories: read as far back as the rules look ---------------------------------------------


def test_a_chronic_patients_counts_are_read_back_to_the_nadir_window_only():
    chart = realistic.chronic_itp(counts=600)
    seen: list = []
    with responses.RequestsMock() as rsps:
        serve_scenario(rsps, chart, seen=seen)
        status, body = post(fetching_app(), chart.fetch_request(BASE))
    assert status == 200 and rule_set(body) == {("critical-bleeding", "critical"), ("dose-check", "info")}
    platelet_reads = [r.url for r in seen if "777-3" in r.url]
    assert len(platelet_reads) == 1, "one page covers the 90-day nadir window"
    since = (AS_OF - timedelta(days=300)).date().isoformat()
    assert f"date=ge{since}" in platelet_reads[0] and "_sort=-date" in platelet_reads[0]


def test_a_paged_prefetch_of_a_long_history_is_not_read_to_its_end():
    chart = realistic.chronic_itp(counts=1000, spacing_days=1)
    request = chart.prefetch_request(SIGN.prefetch, paged_by=BASE)
    assert "link" in request["prefetch"]["platelets"], "the client paged it"
    seen: list = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        serve_scenario(rsps, chart, seen=seen)
        status, body = post(fetching_app(), request)
    assert status == 200 and rule_set(body) == {("critical-bleeding", "critical"), ("dose-check", "info")}
    assert not [r for r in seen if "777-3" in r.url], "page 1 (100 daily counts) covers the nadir window"


def test_a_pregnancy_widens_the_platelet_window_to_the_pregnancy():
    """P24 (pregnant, delivery in 42 days: the pregnancy began ~238 days ago) with a daily count for a
    year; its nadir of 19, 200 days ago, lies on the third page and must be read."""
    base = fhir_fixtures.load("P24")
    history = realistic.History(base, seed=5)
    history.platelet_counts(360, 1, start_days=1, low=30, high=60)
    nadir = next(r for r in history.resources if r["effectiveDateTime"].startswith(_day(base, 200)))
    nadir["valueQuantity"]["value"] = 19
    chart = realistic._padded(base, history, "pregnant-daily")
    seen: list = []
    with responses.RequestsMock() as rsps:
        serve_scenario(rsps, chart, seen=seen)
        status, body = post(fetching_app(), chart.fetch_request(BASE))
    assert status == 200
    predictors = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "pregnancy-response-predictors")
    assert "Nadir 19" in predictors["detail"]
    assert len([r for r in seen if "777-3" in r.url]) >= 3


def _day(scenario, days_ago):
    return (scenario.as_of - timedelta(days=days_ago)).date().isoformat()


def test_a_server_that_ignores_sort_is_read_to_the_end_when_short():
    chart = realistic.chronic_itp(counts=250)
    seen: list = []
    with responses.RequestsMock() as rsps:
        serve_scenario(rsps, chart, seen=seen, ignore_sort=True)
        status, body = post(fetching_app(), chart.fetch_request(BASE))
    assert status == 200 and rule_set(body) == {("critical-bleeding", "critical"), ("dose-check", "info")}
    # 101 counts in the 300-day window: two pages, both read, where a sorted server needs one.
    assert len([r for r in seen if "777-3" in r.url]) == 2, "unsorted: every page of the window is read"


def test_a_server_that_ignores_sort_and_has_too_many_pages_is_said_not_guessed():
    chart = realistic.chronic_itp(counts=900, spacing_days=0.3)
    with responses.RequestsMock() as rsps:
        serve_scenario(rsps, chart, ignore_sort=True)
        status, body = post(fetching_app(fhir_max_pages=3), chart.fetch_request(BASE))
    assert status == 200
    card = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "data-unavailable")
    assert "platelet" in card["summary"] and "newest first" in card["detail"]
    # The count cannot be trusted: the critical bleed is carded with the count unknown.
    critical = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "critical-bleeding")
    assert "count now" in critical["summary"]


def test_a_paged_prefetch_without_fhir_server_says_how_far_back_it_was_read():
    """Four counts a day for a year: the client's first page holds 25 days, the nadir window is 90."""
    chart = realistic.chronic_itp(counts=1400, spacing_days=0.25)
    request = chart.prefetch_request(SIGN.prefetch, paged_by=BASE)
    del request["fhirServer"]
    status, body = post(make_app(), request)
    assert status == 200
    found = rule_set(body)
    assert ("critical-bleeding", "critical") in found and ("data-unavailable", "warning") in found
    card = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "data-unavailable")
    assert card["summary"].startswith("Read only in part: platelet counts")
    assert re.search(r"back to 2026-05-0\d only", card["detail"]), card["detail"]


def test_the_page_bound_inside_the_window_keeps_what_was_read_and_says_so():
    chart = realistic.chronic_itp(counts=1400, spacing_days=0.25)
    with responses.RequestsMock() as rsps:
        serve_scenario(rsps, chart)
        status, body = post(fetching_app(fhir_max_pages=2), chart.fetch_request(BASE))
    assert status == 200
    found = rule_set(body)
    assert ("critical-bleeding", "critical") in found and ("data-unavailable", "warning") in found
    card = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "data-unavailable")
    assert "more than 2 pages" in card["detail"]


# --- CDS Hooks 3.0 date tokens -----------------------------------------------------------------------


def test_discovery_offers_date_tokens_only_when_configured():
    plain = make_app().test_client().get("/cds-services").get_json()["services"][0]["prefetch"]
    assert not any("today()" in t for t in plain.values())
    tokens = make_app(prefetch_date_tokens=True).test_client().get("/cds-services").get_json()["services"][0]
    assert "&date=ge{{today() - 300 days}}&" in tokens["prefetch"]["platelets"]
    assert "&date=ge{{today() - 30 days}}&" in tokens["prefetch"]["weight"]
    assert "today()" not in tokens["prefetch"]["conditions"]  # read whole


def test_a_client_that_cannot_resolve_the_tokens_leaves_the_key_and_the_service_reads_it():
    chart = realistic.chronic_itp(counts=300)
    request = chart.prefetch_request(SIGN.prefetch, omit=("platelets",))
    request["fhirServer"] = BASE
    seen: list = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        serve_scenario(rsps, chart, seen=seen)
        status, body = post(fetching_app(prefetch_date_tokens=True), request)
    assert status == 200 and ("critical-bleeding", "critical") in rule_set(body)
    assert next(r.url for r in seen if "777-3" in r.url).count("date=ge") == 1


def test_only_what_a_rule_reads_is_parsed(monkeypatch):
    """A long history is selected on raw JSON first: of 800 resources, only those in a window are parsed."""
    from hooks import fhir_model

    parsed: list = []
    original = fhir_model.read_resource

    def counting(raw, **kwargs):
        parsed.append(raw.get("resourceType"))
        return original(raw, **kwargs)

    monkeypatch.setattr(fhir_model, "read_resource", counting)
    chart = realistic.chronic_itp(counts=600)
    status, _ = post(make_app(), chart.prefetch_request(SIGN.prefetch))
    assert status == 200
    assert len(chart.resources()) > 800
    assert len(parsed) < 150, len(parsed)
    assert parsed.count("Observation") < 60  # 30 counts in 90 days, weights of 30 days, the rest


def test_one_budget_covers_every_fhir_read_of_a_call():
    """The referenced Medication and then the record, from a slow server: the call keeps to
    IVIG_CDS_FHIR_TOTAL_TIMEOUT as a whole, it does not get a fresh budget for the record."""

    def slow(request):
        time.sleep(0.6)
        relative = request.url[len(BASE) + 1 :]
        if relative.startswith("Medication?"):
            body = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": CVX_87_ONLY}]}
        else:
            body = fhir_fixtures.evaluate(relative, P01.resources(), base=BASE)
        return 200, {"Content-Type": "application/fhir+json"}, json.dumps(body)

    request = _ivig_by_reference()
    for key in ("conditions", "platelets"):
        del request["prefetch"][key]  # read from the server, after the Medication
    app = fetching_app(fhir_total_timeout=1.0, fhir_read_timeout=1.0, fhir_workers=2)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.GET, re.compile(re.escape(BASE) + r"/.*"), callback=slow)
        started = time.monotonic()
        status, body = post(app, request)
        elapsed = time.monotonic() - started
    assert status == 200
    assert elapsed < 1.0 + 0.5 + 0.3, elapsed  # the budget, the last read's grace, and the call itself
    assert ("data-unavailable", "warning") in rule_set(body)  # what did not fit in the budget is said


# --- code systems named by OID -----------------------------------------------------------------

_OIDS = {
    "http://loinc.org": "urn:oid:2.16.840.1.113883.6.1",
    SNOMED: "urn:oid:2.16.840.1.113883.6.96",
    "http://hl7.org/fhir/sid/icd-10-cm": "urn:oid:2.16.840.1.113883.6.90",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "urn:oid:2.16.840.1.113883.6.88",
}


def _systems_as(node, names):
    if isinstance(node, dict):
        return {k: names.get(v, v) if k == "system" else _systems_as(v, names) for k, v in node.items()}
    if isinstance(node, list):
        return [_systems_as(v, names) for v in node]
    return node


@pytest.mark.parametrize("sid", ["P01", "P04", "P07", "P20"])
@pytest.mark.parametrize("spelling", ["oid", "https/"])
def test_a_record_naming_code_systems_by_oid_or_https_gets_the_same_cards(sid, spelling):
    """Records converted from C-CDA name LOINC, SNOMED CT, ICD-10-CM and RxNorm by OID: same patient."""
    names = _OIDS if spelling == "oid" else {uri: uri.replace("http://", "https://") + "/" for uri in _OIDS}
    request = fhir_fixtures.load(sid).prefetch_request(SIGN.prefetch)
    app = make_app()
    _, expected = post(app, request)
    rewritten = dict(
        request, prefetch=_systems_as(request["prefetch"], names), context=_systems_as(request["context"], names)
    )
    assert rewritten["prefetch"] != request["prefetch"]
    _, answered = post(app, rewritten)
    assert expected["cards"] and [c["summary"] for c in answered["cards"]] == [c["summary"] for c in expected["cards"]]
