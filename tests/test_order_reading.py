"""Reading an order the way a clinician wrote it: course length, doses in grams, and local steroids.

Three ways the service misread orders, each tested through the HTTP endpoint from a public scenario
and, where the reading code is small enough, as a pure function:
- the course length in `timing.repeat.boundsPeriod` or a `boundsDuration` in weeks or hours;
- `rapid-regimen` for a 0.4 g/kg/day course written in grams (converted with the dosing weight);
- a corticosteroid for local use (eye drops, cream, inhaler) completing the critical-bleeding triad.
"""

from __future__ import annotations

from typing import Any

import pytest

from hooks import terminology as t
from hooks.fhir_model import parse_resource
from hooks.orders import OrderKind, classify_medication, medication_concept, read_dose
from tests.conftest import SIGN
from tests.variants import dosage, ivig_request, variant

UCUM = "http://unitsofmeasure.org"


def cards(call, scenario) -> list[dict[str, Any]]:
    status, body = call(SIGN.id, scenario.prefetch_request(SIGN.prefetch))
    assert status == 200
    return body["cards"]


def rules(call, scenario) -> dict[str, str]:
    return {c["source"]["topic"]["code"]: c["indicator"] for c in cards(call, scenario)}


def card(call, scenario, rule_id) -> dict[str, Any]:
    return next(c for c in cards(call, scenario) if c["source"]["topic"]["code"] == rule_id)


DAILY = {"frequency": 1, "period": 1, "periodUnit": "d"}


def duration(value: float, code: str | None = None, unit: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"value": value}
    if code:
        found.update(code=code, system=UCUM)
    if unit:
        found["unit"] = unit
    return found


# --- 1. course length ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bounds", "days"),
    [
        ({"boundsDuration": duration(5, "d")}, 5),
        ({"boundsDuration": duration(5, unit="days")}, 5),
        ({"boundsDuration": duration(1, "wk")}, 7),
        ({"boundsDuration": duration(2, unit="weeks")}, 14),
        ({"boundsDuration": duration(1, unit="week")}, 7),
        ({"boundsDuration": duration(48, "h")}, 2),
        ({"boundsDuration": duration(36, "h")}, 2),  # part of a second day is a second dosing day
        ({"boundsDuration": duration(12, "h")}, 1),
        ({"boundsDuration": duration(1, "mo")}, 31),  # UCUM month: 30.4375 days
        ({"boundsDuration": duration(1, "a")}, 366),  # UCUM year: 365.25 days
        ({"boundsDuration": duration(1.5, "d")}, 2),
        # boundsPeriod: calendar days covered, the start and end days included
        ({"boundsPeriod": {"start": "2026-06-01", "end": "2026-06-05"}}, 5),
        ({"boundsPeriod": {"start": "2026-06-01", "end": "2026-06-01"}}, 1),
        # Two instants span the time between them, as a Duration does: 4 days of daily doses are 4.
        ({"boundsPeriod": {"start": "2026-06-01T08:00:00Z", "end": "2026-06-05T08:00:00Z"}}, 4),
        ({"boundsPeriod": {"start": "2026-06-01T14:00:00Z", "end": "2026-06-06T13:59:00Z"}}, 5),
        ({"boundsPeriod": {"start": "2026-06-01T20:00:00-05:00", "end": "2026-06-06T01:00:00Z"}}, 4),
        ({"boundsPeriod": {"start": "2026-06-01T08:00:00Z", "end": "2026-06-05T20:00:00Z"}}, 5),
        ({"boundsPeriod": {"start": "2026-06-01T00:00:00Z", "end": "2026-06-06T00:00:00Z"}}, 5),  # ends at midnight
        ({"boundsPeriod": {"start": "2026-06-01", "end": "2026-06-05T23:59:00Z"}}, 5),
    ],
)
def test_course_length_from_bounds(bounds, days):
    dose = read_dose(ivig_request({**DAILY, **bounds}))
    assert dose is not None and dose.days == days


@pytest.mark.parametrize(
    "bounds",
    [
        {"boundsDuration": duration(5, unit="cycles")},  # unknown unit
        {"boundsDuration": {"unit": "d", "code": "d", "system": UCUM}},  # no value
        {"boundsDuration": duration(0, "d")},
        {"boundsPeriod": {"end": "2026-06-05"}},
        {"boundsPeriod": {"start": "2026-06", "end": "2026-07"}},  # partial dates: whole months
        {"boundsPeriod": {"start": "2026-06-05", "end": "2026-06-01"}},  # ends before it starts
        {"boundsRange": {"low": duration(3, "d"), "high": duration(5, "d")}},  # 3 to 5 days: which?
    ],
)
def test_a_course_length_that_cannot_be_read_is_unknown_not_one_day(bounds):
    dose = read_dose(ivig_request({**DAILY, **bounds}))
    assert dose is not None and dose.days is None
    assert dose.g_per_kg == pytest.approx(0.4)
    assert "course length not readable" in dose.as_written and "once" not in dose.as_written


@pytest.mark.parametrize(
    ("repeat", "days"),
    [
        ({}, 1),  # no bounds, no count: a single dose
        ({"count": 5, **DAILY, "boundsDuration": duration(1, "wk")}, 5),  # count wins, as before
        ({"count": 3}, 3),
        ({"count": 4, "frequency": 2, "period": 1, "periodUnit": "d"}, 2),
    ],
)
def test_count_and_single_doses_are_read_as_before(repeat, days):
    dose = read_dose(ivig_request(repeat))
    assert dose is not None and dose.days == days


@pytest.mark.parametrize(
    "bounds",
    [{"boundsDuration": duration(4, "wk")}, {"boundsPeriod": {"start": "2026-06-01", "end": "2026-06-22"}}],
)
def test_a_weekly_dose_over_four_weeks_is_four_doses_like_count_4(bounds):
    weekly = {"frequency": 1, "period": 1, "periodUnit": "wk"}
    by_bounds = read_dose(ivig_request({**weekly, **bounds}))
    by_count = read_dose(ivig_request({**weekly, "count": 4}))
    assert by_bounds is not None and by_count is not None
    assert by_bounds.days == by_count.days == 4


def test_1_g_per_kg_daily_for_a_week_is_a_7_g_per_kg_course_not_one_dose(call):
    week = {**DAILY, "boundsDuration": duration(1, "wk")}
    scenario = variant("P04", draft={"dosageInstruction": dosage(1, "g/kg", week)})
    found = card(call, scenario, "dose-check")
    assert found["indicator"] == "warning"
    assert "once" not in found["summary"]
    assert "course of 7 g/kg exceeds 2 g/kg" in found["summary"]
    assert "over 7 days" in found["detail"]


def test_a_course_in_hours_is_converted_to_days(call):
    two_days = {**DAILY, "boundsDuration": duration(48, "h")}
    scenario = variant("P04", draft={"dosageInstruction": dosage(1, "g/kg", two_days)})
    found = card(call, scenario, "dose-check")
    assert found["indicator"] == "info"
    assert "daily × 2 days" in found["summary"]


def test_p23_written_with_a_bounds_period_is_still_a_five_day_course(call):
    period = {**DAILY, "boundsPeriod": {"start": "2026-06-01", "end": "2026-06-05"}}
    scenario = variant("P23", draft={"dosageInstruction": dosage(0.4, "g/kg", period)})
    found = rules(call, scenario)
    assert found.get("rapid-regimen") == "warning"
    assert "0.4 g/kg × 5 days" in card(call, scenario, "rapid-regimen")["summary"]
    dose = card(call, scenario, "dose-check")
    assert dose["indicator"] == "info" and "daily × 5 days" in dose["summary"]


@pytest.mark.parametrize(
    "bounds",
    [
        {"boundsDuration": duration(5, unit="cycles")},
        {"boundsDuration": duration(1e308, "a")},  # no course runs for centuries: a typo, not a course
    ],
)
def test_an_unreadable_course_length_is_a_dose_check_warning(call, bounds):
    scenario = variant("P23", draft={"dosageInstruction": dosage(0.4, "g/kg", {**DAILY, **bounds})})
    found = rules(call, scenario)
    dose = card(call, scenario, "dose-check")
    assert dose["indicator"] == "warning"
    assert "course length could not be read" in dose["summary"]
    assert "once" not in dose["summary"] and "over 1 day" not in dose["detail"]
    assert "28 g per dose" in dose["detail"]  # the daily dose is still shown
    assert "rapid-regimen" not in found  # not claimed to be a 5-day course either


# --- 2. rapid-regimen for doses written in grams -------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "fires"),
    [
        (28, "g", True),  # 0.40 g/kg at 70 kg
        (28000, "mg", True),
        (30.8, "g", True),  # 0.44 g/kg: the edge of the 10 % tolerance
        (25.2, "g", True),  # 0.36 g/kg: the other edge
        (31.5, "g", False),  # 0.45 g/kg
        (24, "g", False),  # 0.34 g/kg
        (70, "g", False),  # 1 g/kg daily: not the slow regimen
    ],
)
def test_rapid_regimen_for_a_daily_dose_in_grams(call, value, unit, fires):
    scenario = variant("P23", draft={"dosageInstruction": dosage(value, unit, {"count": 5, **DAILY})})
    assert ("rapid-regimen" in rules(call, scenario)) is fires


def test_rapid_regimen_in_grams_agrees_with_dose_check(call):
    scenario = variant("P23", draft={"dosageInstruction": dosage(28, "g", {"count": 5, **DAILY})})
    assert "0.4 g/kg × 70 kg" in card(call, scenario, "dose-check")["detail"]
    regimen = card(call, scenario, "rapid-regimen")
    assert regimen["indicator"] == "warning"
    assert "Change to 70 g" in regimen["summary"]
    assert "0.40 g/kg" in regimen["detail"]


def test_rapid_regimen_in_grams_is_silent_without_a_weight(call):
    scenario = variant("P23", drop=("weight",), draft={"dosageInstruction": dosage(28, "g", {"count": 5, **DAILY})})
    found = rules(call, scenario)
    assert "rapid-regimen" not in found
    assert "No weight" in card(call, scenario, "dose-check")["summary"]


# --- 3. only a systemic corticosteroid completes the critical-bleeding triad ---------------

ROUTE = {
    "ophthalmic": {"coding": [{"system": t.SNOMED, "code": "54485002"}]},
    "topical": {"coding": [{"system": t.SNOMED, "code": "6064005", "display": "Topical route"}]},
    "rectal": {"coding": [{"system": t.SNOMED, "code": "37161004"}]},
    "inhaled text": {"text": "Inhalation"},
    "oral": {"coding": [{"system": t.SNOMED, "code": "26643006", "display": "Oral route"}]},
    "iv": {"coding": [{"system": t.SNOMED, "code": "47625008", "display": "Intravenous route"}]},
}


def steroid(text: str, code: str | None = "8638", route: str | None = None, status: str = "draft") -> dict[str, Any]:
    """A corticosteroid MedicationRequest (RxNorm `code`; 8638 is prednisolone)."""
    concept: dict[str, Any] = {"text": text}
    if code:
        concept["coding"] = [{"system": t.RXNORM, "code": code, "display": t.CORTICOSTEROID_RXNORM[code]}]
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": f"steroid-{status}",
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": concept,
    }
    if route:
        resource["dosageInstruction"] = [{"route": ROUTE[route]}]
    return resource


def p38(draft_steroid: dict[str, Any] | None, active: dict[str, Any] | None = None):
    """P38 (ICH, PLT 8; IVIG, prednisone and platelets drafted) with its prednisone draft replaced or removed."""
    scenario = variant("P38", add=(active,) if active else ())
    entries = scenario.draft_orders["entry"]
    entries[:] = [e for e in entries if e["resource"]["id"] != "p38-prednisone-draft"]
    if draft_steroid is not None:
        entries.append({"resource": {**draft_steroid, "subject": {"reference": f"Patient/{scenario.patient_id}"}}})
    return scenario


LOCAL = [
    ("Prednisolone acetate 1 % eye drops", "8638", "ophthalmic"),
    ("Prednisolone acetate 1 % ophthalmic suspension", "8638", None),
    ("Prednisolone", "8638", "ophthalmic"),  # the route code alone says it
    ("Dexamethasone 0.1 % cream", "3264", None),
    ("Dexamethasone", "3264", "topical"),
    ("Dexamethasone nasal spray", "3264", None),
    ("Dexamethasone ear drops", "3264", None),
    ("Dexamethasone", "3264", "inhaled text"),
    ("Prednisolone", "8638", "rectal"),
    ("Prednisolone retention enema 20 mg", None, None),  # recognised by name, local by dose form
    ("Methylprednisolone acetate 40 mg intra-articular injection", "6902", None),
]
SYSTEMIC = [
    ("Prednisone 70 mg PO daily", "8640", None),
    ("Prednisone 70 mg", "8640", "oral"),
    ("Methylprednisolone 1 g IV", "6902", "iv"),
    ("Dexamethasone 40 mg", "3264", None),  # no route, no local dose form: counted as systemic
    ("Prednisolone 60 mg tablets for one year", "8638", None),  # "year" is not "ear"
]


def test_p38_with_a_systemic_corticosteroid_has_all_three(call):
    found = card(call, p38(steroid("Prednisone 70 mg PO daily", "8640")), "critical-bleeding")
    assert found["indicator"] == "info" and "corticosteroid and platelet transfusion ordered" in found["summary"]


@pytest.mark.parametrize(("text", "code", "route"), LOCAL)
def test_a_local_corticosteroid_does_not_complete_the_critical_bleeding_triad(call, text, code, route):
    found = card(call, p38(steroid(text, code, route)), "critical-bleeding")
    assert found["indicator"] == "critical"
    assert "add corticosteroid" in found["summary"]
    assert "ordered or active: IVIG and platelet transfusion" in found["detail"]  # the two that are ordered
    assert "local use" in found["detail"]  # says why the ordered steroid does not count
    labels = [s["label"].lower() for s in found.get("suggestions", [])]
    assert any("prednisone" in label for label in labels)


@pytest.mark.parametrize(("text", "code", "route"), SYSTEMIC)
def test_a_systemic_corticosteroid_completes_the_triad(call, text, code, route):
    found = card(call, p38(steroid(text, code, route)), "critical-bleeding")
    assert found["indicator"] == "info"
    assert "local use" not in found["detail"]


def test_an_active_local_corticosteroid_is_not_corticosteroid_co_therapy(call):
    eye_drops = steroid("Prednisolone acetate 1 % eye drops", "8638", "ophthalmic", status="active")
    found = card(call, p38(None, active=eye_drops), "critical-bleeding")
    assert found["indicator"] == "critical" and "add corticosteroid" in found["summary"]


def test_an_active_systemic_corticosteroid_is_corticosteroid_co_therapy(call):
    tablets = steroid("Prednisone 70 mg", "8640", "oral", status="active")
    found = card(call, p38(None, active=tablets), "critical-bleeding")
    assert found["indicator"] == "info"


def test_significant_bleeding_card_does_not_count_eye_drops(call):
    eye_drops = steroid("Prednisolone acetate 1 % eye drops", "8638", "ophthalmic", status="active")
    found = card(call, variant("P23", add=(eye_drops,)), "bleeding-with-low-platelets")
    assert "no corticosteroid yet" in found["summary"]
    tablets = steroid("Prednisone 70 mg", "8640", "oral", status="active")
    found = card(call, variant("P23", add=(tablets,)), "bleeding-with-low-platelets")
    assert "corticosteroid ordered" in found["summary"]


def _classify(resource: dict[str, Any]) -> OrderKind:
    parsed = parse_resource({**resource, "subject": {"reference": "Patient/p"}})
    return classify_medication(medication_concept(parsed, {}), parsed)


@pytest.mark.parametrize(("text", "code", "route"), LOCAL)
def test_local_corticosteroids_are_classified_apart(text, code, route):
    assert _classify(steroid(text, code, route)) is OrderKind.LOCAL_CORTICOSTEROID


@pytest.mark.parametrize(("text", "code", "route"), SYSTEMIC)
def test_systemic_corticosteroids_are_classified_as_before(text, code, route):
    assert _classify(steroid(text, code, route)) is OrderKind.CORTICOSTEROID


def test_a_stated_route_decides_over_the_name_and_the_dosage_text():
    uveitis = steroid("Prednisone 60 mg", "8640")
    uveitis["dosageInstruction"] = [{"text": "60 mg daily for eye inflammation"}]  # an indication, not a route
    assert _classify(uveitis) is OrderKind.CORTICOSTEROID
    in_words = steroid("Prednisolone", "8638")
    in_words["dosageInstruction"] = [{"route": {"text": "Left eye"}}]
    assert _classify(in_words) is OrderKind.LOCAL_CORTICOSTEROID
    by_mouth = steroid("Dexamethasone 4 mg/mL injection", "3264")
    by_mouth["dosageInstruction"] = [{"route": {"text": "By mouth"}}]
    assert _classify(by_mouth) is OrderKind.CORTICOSTEROID


def test_local_wording_on_a_non_steroid_changes_nothing():
    resource = steroid("Chloramphenicol 0.5 % eye drops", None)
    assert _classify(resource) is OrderKind.OTHER


def test_a_period_with_only_a_start_states_no_course_length():
    """An order starting on 1 June is one dose unless something says how long it runs."""
    dose = read_dose(ivig_request({**DAILY, "boundsPeriod": {"start": "2026-06-01"}}))
    assert dose is not None and dose.days == 1
