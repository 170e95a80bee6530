"""The raw-JSON filters that decide what is never parsed must be supersets of the classifier.

`drafts.may_be_judged` lets a call with no order this service judges skip reading anything, and
`data_needs.may_matter_medication` keeps most of a long medication history unparsed. If either ever
said "no" where the classifier says IVIG, heparin or a platelet transfusion, an order would silently
go unjudged; so hypothesis draws medication concepts from every name and code the terminology knows
(and their neighbours) and holds the filters to the classifier.
"""

from __future__ import annotations

import logging

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fhir_fixtures
from hooks import terminology as t
from hooks.data_needs import may_matter_medication
from hooks.drafts import may_be_judged
from hooks.fhir_model import parse_resource
from hooks.orders import TARGET_KINDS, OrderKind, classify_draft, classify_medication
from tests.conftest import SIGN, make_app

JUDGED = TARGET_KINDS | {OrderKind.HEPARIN}
NAMES = sorted(
    {
        *t.IVIG_PRODUCT_NAMES,
        *t.SUBCUTANEOUS_IG_NAMES,
        *t.GENERIC_IG_NAMES,
        *t.IG_ABBREVIATIONS,
        *t.LMWH_NAMES,
        *t.ESTROGEN_NAMES,
        *t.CORTICOSTEROID_RXNORM.values(),
        *t.HYPERIMMUNE_IG_WORDS,
        "amoxicillin",
        "naproxen",
        "intravenous",
        "subcutaneous",
        "10 % solution",
        "CMV-",
        "-free",
    }
)
CODINGS = [
    *((t.CVX, c) for c in t.IVIG_CVX),
    *((t.ATC, c) for c in t.IVIG_ATC),
    *((t.RXNORM, c) for c in t.HEPARIN_RXNORM),
    *((t.RXNORM, c) for c in t.CORTICOSTEROID_RXNORM),
    (t.RXNORM, "723"),
    (t.SNOMED, "87"),
    (t.CVX, "86"),
]
ROUTES = [None, *t.INTRAVENOUS_ROUTE_SNOMED, *t.SUBCUTANEOUS_ROUTE_SNOMED, "26643006"]


@st.composite
def concepts(draw):
    words = draw(st.lists(st.sampled_from(NAMES), max_size=3))
    text = " ".join(w.upper() if draw(st.booleans()) else w for w in words)
    concept: dict = {}
    if text:
        concept["text"] = text
    codings = draw(st.lists(st.sampled_from(CODINGS), max_size=2))
    if codings:
        concept["coding"] = [
            {"system": s, "code": c, **({"display": draw(st.sampled_from(NAMES))} if draw(st.booleans()) else {})}
            for s, c in codings
        ]
    return concept or {"text": "unnamed"}


@st.composite
def medication_requests(draw):
    resource = {
        "resourceType": "MedicationRequest",
        "id": "d1",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/p"},
        "medicationCodeableConcept": draw(concepts()),
    }
    route = draw(st.sampled_from(ROUTES))
    if route:
        resource["dosageInstruction"] = [{"route": {"coding": [{"system": t.SNOMED, "code": route}]}}]
    return resource


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(medication_requests())
def test_no_draft_the_classifier_judges_is_skipped_on_raw_json(raw):
    order = classify_draft(parse_resource(raw), raw, {})
    if order.kind in JUDGED:
        assert may_be_judged(raw), (order.kind, raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(medication_requests())
def test_no_medication_the_classifier_recognises_is_left_unparsed_in_the_history(raw):
    resource = parse_resource(raw)
    if classify_medication(resource.medicationCodeableConcept, resource) is not OrderKind.OTHER:
        assert may_matter_medication(raw, {}), raw


def test_every_scenario_draft_the_service_judges_passes_the_raw_filter():
    for scenario in fhir_fixtures.all_scenarios():
        for entry in scenario.draft_orders["entry"]:
            raw = entry["resource"]
            if raw["resourceType"] in ("MedicationRequest", "ServiceRequest"):
                order = classify_draft(parse_resource(raw), raw, {})
                assert may_be_judged(raw) or order.kind not in JUDGED, (scenario.id, raw["id"])


def test_a_call_with_no_judged_order_parses_no_fhir(monkeypatch, caplog):
    """P35 (amoxicillin) with a full prefetch: the envelope is checked and nothing else is read."""
    from hooks import fhir_model

    def refuse(*_args, **_kwargs):
        raise AssertionError("parsed FHIR on the non-target path")

    monkeypatch.setattr(fhir_model, "read_resource", refuse)
    caplog.set_level(logging.INFO)
    client = make_app().test_client()
    response = client.post(f"/cds-services/{SIGN.id}", json=fhir_fixtures.load("P35").prefetch_request(SIGN.prefetch))
    assert response.status_code == 200 and response.get_json() == {"cards": []}


def test_every_clinician_unit_is_found_by_the_quick_check_before_the_regex():
    """`units.readable` skips lines holding none of its marks: every unit it knows must hold one."""
    from hooks import units

    for unit in units.CLINICIAN_UNITS:
        assert any(mark in unit for mark in units._MARKS), unit
        assert units.readable(f"Value: 5 {unit} today") == f"Value: 5 {units.CLINICIAN_UNITS[unit]} today"


def test_a_time_without_its_zone_is_read_as_its_date_and_an_instant_is_not_guessed():
    from hooks.fhir_model import read_resource

    raw = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "Platelets"},
        "effectiveDateTime": "2026-05-31T23:30:00",
        "issued": "2026-05-31T23:45:00",
    }
    reads = frozenset({"effectiveDateTime", "issued"})
    reading = read_resource(raw, where="prefetch.platelets.entry[0].resource", reads=reads)
    assert str(reading.resource.effectiveDateTime) == "2026-05-31"
    assert [(r.where.rsplit(".", 1)[1], r.action) for r in reading.repairs] == [
        ("effectiveDateTime", "read-as-date"),
        ("issued", "unreadable"),
    ]
