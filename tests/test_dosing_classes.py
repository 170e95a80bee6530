"""Issue 9, the dosing half: dose arithmetic for small patients, schedules and regimens by indication,
cards that contradicted each other, and what the clinician reads (summaries, sources, units, time
zone, the unreadable dose, the IgA-depleted product).

Every HTTP test reads a chart of fhir_fixtures/scenarios_dosing.py (P70–P89) or a public scenario,
in both data modes: from prefetch, and fetched from a FHIR server (`tests/fhir_mock.serve_scenario`).
Each failed before the fix of its class.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fhir_fixtures
from cds_service.config import ConfigError
from hooks import terminology as t
from hooks.dose_rounding import IVIG_STEPS_G, STEROID_STEPS_MG, ivig_grams, kg_text, round_dose, steroid_mg
from hooks.fhir_model import parse_resource
from hooks.orders import OrderKind, classify_medication, medication_concept, read_dose
from tests.conftest import MODES, SELECT, SIGN, answer, check_response, make_app, rule_set
from tests.fhir_mock import BASE
from tests.variants import ivig_request, variant

UCUM = "http://unitsofmeasure.org"


@pytest.fixture(scope="module")
def app():
    return make_app(fhir_allowlist=[BASE])


def cards_of(body: dict[str, Any], rule_id: str) -> list[dict[str, Any]]:
    return [c for c in body["cards"] if c["source"]["topic"]["code"] == rule_id]


def card_of(body: dict[str, Any], rule_id: str) -> dict[str, Any]:
    found = cards_of(body, rule_id)
    assert len(found) == 1, (rule_id, [c["summary"] for c in body["cards"]])
    return found[0]


def created(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [a["resource"] for s in card.get("suggestions", []) for a in s["actions"] if a.get("resource")]


def dose_value(resource: dict[str, Any]) -> float:
    return resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"]


def expected(sid: str) -> set[tuple[str, str]]:
    return {(e.rule, e.indicator) for e in fhir_fixtures.load(sid).expected}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sid", [f"P{n}" for n in range(70, 90)])
def test_every_dosing_chart_gives_exactly_its_cards_in_both_modes(app, sid, mode):
    assert rule_set(answer(app, fhir_fixtures.load(sid), mode)) == expected(sid)


# --- class 2: dose arithmetic -------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_620_g_infant_gets_0_6_g_and_one_weight_in_summary_and_detail(app, mode):
    dose = card_of(answer(app, fhir_fixtures.load("P70"), mode), "dose-check")
    assert dose["summary"].startswith("IVIG 0.6 g (1 g/kg × 0.62 kg")
    assert "actual weight 0.62 kg" in dose["detail"], "the detail says the weight the summary says"
    assert "rounded to the nearest 0.1 g from 0.62 g" in dose["detail"]


@pytest.mark.parametrize("mode", MODES)
def test_a_450_g_infant_is_never_dosed_0_g_nor_rounded_more_than_10_percent_off(app, mode):
    dose = card_of(answer(app, fhir_fixtures.load("P72"), mode), "dose-check")
    assert "IVIG 0.18 g (0.4 g/kg × 0.45 kg" in dose["summary"]  # 0.2 g would be 11 % over
    assert " 0 g" not in dose["summary"] + dose["detail"]
    assert "0.1 g steps would be 0 or over 10 % off" in dose["detail"]


@pytest.mark.parametrize("mode", MODES)
def test_an_infants_prednisone_is_never_0_mg(app, mode):
    body = answer(app, fhir_fixtures.load("P71"), mode)
    critical = card_of(body, "critical-bleeding")
    prednisone = next(r for r in created(critical) if r["resourceType"] == "MedicationRequest")
    assert dose_value(prednisone) == 1.5  # 1 mg/kg × 1.4 kg: 1 mg steps would be 29 % off
    parse_resource(prednisone)
    dose = card_of(body, "dose-check")
    assert "1 g/kg × 1.4 kg" in dose["summary"] and "actual weight 1.4 kg" in dose["detail"]


@pytest.mark.parametrize("mode", MODES)
def test_a_child_of_12_6_kg_gets_12_5_g(app, mode):
    dose = card_of(answer(app, fhir_fixtures.load("P73"), mode), "dose-check")
    assert dose["summary"].startswith("IVIG 12.5 g (1 g/kg × 12.6 kg")


@pytest.mark.parametrize(
    ("target", "steps", "amount"),
    [
        (0.62, IVIG_STEPS_G, 0.6),
        (0.18, IVIG_STEPS_G, 0.18),  # 0.2 would be 11 % over: a finer step
        (0.04, IVIG_STEPS_G, 0.04),
        (9.94, IVIG_STEPS_G, 9.9),
        (10.2, IVIG_STEPS_G, 10.0),  # 0.5 g from 10 g
        (10.3, IVIG_STEPS_G, 10.5),
        (50.0, IVIG_STEPS_G, 50.0),  # "up to 50 g": 50 is in the 0.5 g band
        (50.2, IVIG_STEPS_G, 50.0),  # 5 g above 50 g
        (82.4, IVIG_STEPS_G, 80.0),
        (1.4, STEROID_STEPS_MG, 1.5),  # 1 mg steps: 1 mg is 29 % off
        (2.0, STEROID_STEPS_MG, 2.0),
        (9.4, STEROID_STEPS_MG, 9.0),
        (12.0, STEROID_STEPS_MG, 12.0),  # 5 mg steps: 10 mg is 17 % off
        (70.0, STEROID_STEPS_MG, 70.0),
    ],
)
def test_rounding_bands_and_the_10_percent_guard(target, steps, amount):
    assert round_dose(target, "g", steps).amount == pytest.approx(amount)


@given(st.floats(min_value=0.001, max_value=400), st.sampled_from([IVIG_STEPS_G, STEROID_STEPS_MG]))
def test_a_rounded_dose_is_never_0_nor_more_than_10_percent_off(target, steps):
    dose = round_dose(target, "g", steps)
    assert dose.amount > 0
    assert abs(dose.amount - target) <= 0.1 * target + 1e-9


def test_weights_are_spelled_one_way():
    assert [kg_text(w) for w in (70, 70.44, 1.4, 0.62, 0.449, 12.6, 123.45)] == [
        "70",
        "70.4",
        "1.4",
        "0.62",
        "0.45",
        "12.6",
        "123.5",
    ]
    assert ivig_grams(1, 0.62).text == "0.6 g" and steroid_mg(1, 2).text == "2 mg"


# --- class 8: schedules and regimens by indication -------------------------------------------------


@pytest.mark.parametrize(
    ("repeat", "days", "interval", "per_day", "written"),
    [
        (
            {"frequency": 1, "period": 3, "periodUnit": "wk", "boundsDuration": {"value": 6, "code": "mo"}},
            9,
            21,
            1,
            "1 g/kg every 3 weeks × 9 doses",
        ),
        ({"frequency": 1, "period": 3, "periodUnit": "wk", "count": 4}, 4, 21, 1, "1 g/kg every 3 weeks × 4 doses"),
        ({"frequency": 1, "period": 4, "periodUnit": "wk"}, 1, 28, 1, "1 g/kg every 4 weeks (no end stated)"),
        ({"frequency": 1, "period": 12, "periodUnit": "h", "count": 4}, 2, 1, 2, "1 g/kg 2 times a day × 2 days"),
        ({"frequency": 1, "period": 1, "periodUnit": "d", "count": 5}, 5, 1, 1, "1 g/kg daily × 5 days"),
    ],
)
def test_a_course_is_its_doses_within_the_bounds_not_its_days(repeat, days, interval, per_day, written):
    dose = read_dose(ivig_request(repeat, value=1))
    assert dose is not None
    assert (dose.days, dose.interval_days, dose.per_day, dose.as_written) == (days, interval, per_day, written)


@pytest.mark.parametrize("mode", MODES)
def test_cidp_maintenance_every_3_weeks_is_9_doses_within_its_regimen(app, mode):
    dose = card_of(answer(app, fhir_fixtures.load("P74"), mode), "dose-check")
    assert dose["indicator"] == "info"
    assert "every 3 weeks × 9 doses" in dose["summary"] and "CIDP maintenance" in dose["summary"]
    assert "daily × 9" not in dose["summary"] + dose["detail"]


@pytest.mark.parametrize(
    ("sid", "words"),
    [
        ("P75", "within the CIDP loading regimen"),
        ("P76", "within the Kawasaki regimen"),
        ("P78", "within the primary immunodeficiency regimen"),
        ("P79", "not an ITP dose; fits the Kawasaki label regimen"),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_label_regimens_of_other_indications_are_info_not_warnings(app, sid, words, mode):
    dose = card_of(answer(app, fhir_fixtures.load(sid), mode), "dose-check")
    assert dose["indicator"] == "info" and words in dose["summary"]


@pytest.mark.parametrize("mode", MODES)
def test_a_kawasaki_dose_cites_the_kawasaki_statement_not_the_itp_guideline(app, mode):
    dose = card_of(answer(app, fhir_fixtures.load("P76"), mode), "dose-check")
    urls = [link["url"] for link in dose["links"]]
    assert "https://doi.org/10.1161/CIR.0000000000000484" in urls
    assert "https://doi.org/10.1182/bloodadvances.2019000966" not in urls
    assert "aspirin" in dose["detail"]


@pytest.mark.parametrize("mode", MODES)
def test_a_dose_outside_the_indications_regimen_is_a_warning_naming_that_regimen(app, mode):
    dose = card_of(answer(app, fhir_fixtures.load("P77"), mode), "dose-check")
    assert dose["indicator"] == "warning"
    assert "outside the Guillain–Barré regimen (0.4 g/kg/day × 5 days)" in dose["summary"]


@pytest.mark.parametrize("mode", MODES)
def test_itp_every_3_weeks_is_read_as_9_doses_and_is_not_an_itp_regimen(app, mode):
    dose = card_of(answer(app, fhir_fixtures.load("P80"), mode), "dose-check")
    assert dose["indicator"] == "warning"
    assert "every 3 weeks × 9 doses is outside the ITP regimen" in dose["summary"]
    assert "9 doses of 1 g/kg, one every 21 days" in dose["detail"]


def _with_dose(sid: str, value: float, repeat: dict[str, Any], unit: str = "g/kg"):
    instruction = [
        {
            "timing": {"repeat": repeat},
            "doseAndRate": [{"doseQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}],
        }
    ]
    return variant(sid, draft={"dosageInstruction": instruction})


EVERY_4_WEEKS = {"frequency": 1, "period": 4, "periodUnit": "wk"}


@pytest.mark.parametrize(
    ("sid", "value", "repeat", "indicator"),
    [
        ("P78", 0.88, EVERY_4_WEEKS, "info"),  # 0.8 g/kg + 10 %
        ("P78", 0.9, EVERY_4_WEEKS, "warning"),
        ("P78", 0.18, EVERY_4_WEEKS, "info"),  # 0.2 g/kg − 10 %
        ("P78", 0.17, EVERY_4_WEEKS, "warning"),
        ("P78", 0.4, {"frequency": 1, "period": 6, "periodUnit": "wk"}, "warning"),  # every 6 weeks: not 3–4
        ("P74", 1, {"frequency": 1, "period": 3, "periodUnit": "wk", "count": 6}, "info"),
        ("P74", 1, {"frequency": 1, "period": 8, "periodUnit": "wk", "count": 3}, "warning"),
        ("P74", 0.5, {"frequency": 1, "period": 1, "periodUnit": "d", "count": 2}, "info"),  # maintenance over 2 days
        ("P76", 0.8, {"frequency": 1, "period": 1, "periodUnit": "d", "count": 2}, "info"),  # Kawasaki 1.6 over 2 days
        ("P76", 1, {"count": 1}, "warning"),  # 1 g/kg once is not a Kawasaki regimen
    ],
)
def test_regimen_boundaries(app, sid, value, repeat, indicator):
    dose = card_of(answer(app, _with_dose(sid, value, repeat), "prefetch"), "dose-check")
    assert dose["indicator"] == indicator, dose["summary"]


def test_the_order_reason_code_is_an_indication_in_the_fetched_mode_too(app):
    """P76's Kawasaki disease is only in the draft's reasonCode: no condition to fetch names it."""
    body = answer(app, fhir_fixtures.load("P76"), "fetched")
    assert "Kawasaki disease: M30.3 (the order's reason)" in card_of(body, "dose-check")["detail"]


# --- class 9: cards that contradict each other ----------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_hiv_associated_itp_is_not_told_corticosteroids_are_first_line(app, mode):
    body = answer(app, fhir_fixtures.load("P81"), mode)
    threshold = card_of(body, "treatment-threshold")
    assert "first-line" not in threshold["summary"] + threshold["detail"]
    assert "antiretrovirals first" in threshold["summary"]
    assert "antiretrovirals first" in card_of(body, "secondary-itp")["summary"]


@pytest.mark.parametrize("mode", MODES)
def test_hcv_associated_itp_is_told_ivig_first(app, mode):
    threshold = card_of(answer(app, fhir_fixtures.load("P85"), mode), "treatment-threshold")
    assert "corticosteroids are first-line" not in threshold["summary"]
    assert "IVIG is the initial treatment" in threshold["summary"]


@pytest.mark.parametrize("mode", MODES)
def test_hit_with_an_intracranial_bleed_gets_platelets_not_the_itp_triad(app, mode):
    body = answer(app, fhir_fixtures.load("P82"), mode)
    critical = card_of(body, "critical-bleeding")
    kinds = {(r.get("code") or r.get("medicationCodeableConcept"))["coding"][0]["code"] for r in created(critical)}
    assert kinds == {t.PLATELET_TRANSFUSION.code}, "no prednisone, no second IVIG in HIT"
    assert "prednisone" not in critical["detail"] and "a corticosteroid does not help" in critical["detail"]
    assert "adjunct" in card_of(body, "hit-ivig")["summary"]


@pytest.mark.parametrize("mode", MODES)
def test_two_ivig_drafts_in_one_signing_are_one_duplicate_warning_and_add_up(app, mode):
    body = answer(app, fhir_fixtures.load("P83"), mode)
    assert len(cards_of(body, "duplicate-ivig")) == 1
    doses = cards_of(body, "dose-check")
    assert len(doses) == 2
    assert all("140 g together" in d["summary"] for d in doses), "neither '70 g once' card is silent about the other"


def test_two_ivig_drafts_are_a_duplicate_in_order_select_too(app):
    body = answer(app, fhir_fixtures.load("P83"), "prefetch", service=SELECT)
    assert len(cards_of(body, "duplicate-ivig")) == 1


@pytest.mark.parametrize("mode", MODES)
def test_delivery_within_14_days_needs_a_rapid_rise_not_observation(app, mode):
    body = answer(app, fhir_fixtures.load("P84"), mode)
    threshold = card_of(body, "treatment-threshold")
    assert "observation is favoured" not in threshold["summary"]
    assert "rapid rise needed (delivery expected in 10 days)" in threshold["summary"]
    assert card_of(body, "pregnancy")["indicator"] == "warning"


@pytest.mark.parametrize("delivery_in_days", [14, 15])
def test_the_delivery_horizon_boundary(app, delivery_in_days):
    scenario = fhir_fixtures.load("P84")
    edd = scenario.as_of.date().toordinal() + delivery_in_days
    from datetime import date

    patched = variant("P84", patch={"edd": {"valueDateTime": date.fromordinal(edd).isoformat()}})
    threshold = card_of(answer(app, patched, "prefetch"), "treatment-threshold")
    assert ("rapid rise needed" in threshold["summary"]) is (delivery_in_days <= 14)


@pytest.mark.parametrize("mode", MODES)
def test_hit_beside_itp_frames_ivig_as_hit_does(app, mode):
    rules = rule_set(answer(app, fhir_fixtures.load("P86"), mode))
    assert ("treatment-threshold", "info") not in rules and ("hit-ivig", "warning") in rules


@pytest.mark.parametrize("mode", MODES)
def test_a_neonates_bleed_is_not_advised_a_corticosteroid(app, mode):
    critical = card_of(answer(app, fhir_fixtures.load("P88"), mode), "critical-bleeding")
    assert critical["indicator"] == "info"
    assert "IVIG and platelet transfusion ordered" in critical["summary"]
    assert "no corticosteroid for a newborn" in critical["detail"]
    assert "a corticosteroid and a platelet transfusion" not in critical["detail"]


def test_a_guillain_barre_course_is_not_told_to_switch_to_1_g_per_kg(app):
    """0.4 g/kg × 5 is the GBS regimen: an urgent priority does not make it an ITP rapid-rise case."""
    scenario = _with_dose("P77", 0.4, {"frequency": 1, "period": 1, "periodUnit": "d", "count": 5})
    scenario.draft_orders["entry"][0]["resource"]["priority"] = "stat"
    rules = rule_set(answer(app, scenario, "prefetch"))
    assert rules == {("dose-check", "info")}


# Pairs that contradict each other when both are shown: (rule, words) beside (rule, words).
CONTRADICTIONS = [
    (("secondary-itp", "antiretrovirals first"), ("treatment-threshold", "first-line")),
    (("secondary-itp", "IVIG is the preferred initial"), ("treatment-threshold", "corticosteroids are first-line")),
    (("hit-ivig", ""), ("treatment-threshold", "")),
    (("hit-ivig", ""), ("pediatric-itp", "")),
    (("hit-ivig", ""), ("bleeding-with-low-platelets", "")),
    (("hit-ivig", ""), ("critical-bleeding", "prednisone")),
    (("neonatal", ""), ("critical-bleeding", "a corticosteroid and a platelet transfusion")),
    (("neonatal", ""), ("rapid-regimen", "")),
    (("sepsis", "not a rapid-regimen case"), ("rapid-regimen", "")),
    (("pregnancy", "Delivery"), ("treatment-threshold", "observation is favoured")),
    (("dose-check", "within the Guillain–Barré regimen"), ("rapid-regimen", "")),
    (("no-thrombocytopenia", ""), ("treatment-threshold", "")),
    (("critical-bleeding", ""), ("treatment-threshold", "no bleeding")),
]


def _shows(body: dict[str, Any], rule_id: str, words: str) -> bool:
    return any(words in c["summary"] + c["detail"] for c in cards_of(body, rule_id))


@pytest.mark.parametrize("sid", fhir_fixtures.names())
def test_no_card_contradicts_another_in_any_scenario(app, sid):
    scenario = fhir_fixtures.load(sid)
    for service in (SIGN, SELECT):
        body = answer(app, scenario, "prefetch", service=service)
        for (rule_a, words_a), (rule_b, words_b) in CONTRADICTIONS:
            assert not (_shows(body, rule_a, words_a) and _shows(body, rule_b, words_b)), (sid, rule_a, rule_b)
        ivig_drafts = {c["detail"].split("\n")[2] for c in cards_of(body, "dose-check")}
        if len(ivig_drafts) > 1:
            assert cards_of(body, "duplicate-ivig"), (sid, "several IVIG drafts and no duplicate warning")


# --- class 11: what the clinician reads ---------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_an_unreadable_dose_is_quoted_and_the_computed_dose_offered_as_an_update(app, mode):
    scenario = fhir_fixtures.load("P87")
    dose = card_of(answer(app, scenario, mode), "dose-check")
    assert "“2 vials IV once”" in dose["summary"] and "computed 70 g once" in dose["summary"]
    (suggestion,) = dose["suggestions"]
    (action,) = suggestion["actions"]
    draft = scenario.draft_orders["entry"][0]["resource"]
    assert action["type"] == "update" and action["resource"]["id"] == draft["id"]
    assert dose_value(action["resource"]) == 70
    assert action["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["code"] == "g"
    parse_resource(action["resource"])


def test_an_unreadable_gbs_dose_is_offered_the_gbs_course_as_a_valid_update(app):
    scenario = _with_dose("P77", 2, {"count": 5}, unit="vial")
    dose = card_of(answer(app, scenario, "prefetch"), "dose-check")
    (action,) = [a for s in dose["suggestions"] for a in s["actions"]]
    instruction = action["resource"]["dosageInstruction"][0]
    assert instruction["timing"]["repeat"] == {"count": 5, "frequency": 1, "period": 1, "periodUnit": "d"}
    assert dose_value(action["resource"]) == 28  # 0.4 g/kg × 70 kg, daily × 5 days
    assert "computed 28 g daily × 5 days" in dose["summary"]
    parse_resource(action["resource"])


def test_an_unreadable_cidp_dose_names_both_regimens_and_guesses_neither(app):
    dose = card_of(answer(app, _with_dose("P74", 2, {"count": 1}, unit="vial"), "prefetch"), "dose-check")
    assert "suggestions" not in dose
    assert "CIDP loading: 2 g/kg over 2–5 days; CIDP maintenance: 1 g/kg every 3 weeks" in dose["detail"]


@pytest.mark.parametrize("mode", MODES)
def test_the_iga_depleted_product_carries_a_code_a_client_can_act_on(app, mode):
    scenario = fhir_fixtures.load("P89")
    iga = card_of(answer(app, scenario, mode), "iga-deficiency")
    (action,) = [a for s in iga["suggestions"] for a in s["actions"]]
    concept = action["resource"]["medicationCodeableConcept"]
    assert concept["text"] and concept["coding"][0]["code"] == "0944-2658-04"
    assert concept["coding"][0]["system"] == "http://hl7.org/fhir/sid/ndc"
    parse_resource(action["resource"])
    # Accepting it gives an order the service itself reads as IgA-depleted IVIG: no card asks again.
    accepted = copy.deepcopy(scenario.draft_orders)
    accepted["entry"][0]["resource"] = action["resource"]
    request = scenario.prefetch_request(SIGN.prefetch)
    request["context"]["draftOrders"] = accepted
    response = app.test_client().post(f"/cds-services/{SIGN.id}", json=request)
    assert ("iga-deficiency", "warning") not in rule_set(check_response(response))


def test_every_suggested_medication_names_a_code_and_a_text():
    """The reference client refuses a suggested medication without text and a coding code."""
    resource = parse_resource(
        {
            "resourceType": "MedicationRequest",
            "status": "draft",
            "intent": "order",
            "subject": {"reference": "Patient/p"},
            "medicationCodeableConcept": {
                "coding": [c.as_fhir() for c in t.PRODUCT_CODINGS[t.IGA_DEPLETED_IVIG_TEXT]],
                "text": t.IGA_DEPLETED_IVIG_TEXT,
            },
        }
    )
    assert classify_medication(medication_concept(resource, {}), resource) is OrderKind.IVIG


@pytest.mark.parametrize("mode", MODES)
def test_a_suggested_new_ivig_order_is_coded(app, mode):
    critical = card_of(answer(app, fhir_fixtures.load("P32"), mode), "critical-bleeding")
    ivig = next(r for r in created(critical) if "Immune globulin" in r["medicationCodeableConcept"]["text"])
    assert ivig["medicationCodeableConcept"]["coding"][0]["code"] == "J06BA02"
    parse_resource(ivig)


RAW_UCUM = re.compile(r"\d (10\*3/uL|10\*9/L|mL/min/\{1\.73_m2\}|/uL|\{cells\}/uL|umol/L)\b")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sid", ["P01", "P09", "P17", "P70"])
def test_units_are_shown_as_clinicians_write_them(app, sid, mode):
    body = answer(app, fhir_fixtures.load(sid), mode)
    text = " ".join(c["summary"] + c["detail"] for c in body["cards"])
    assert not RAW_UCUM.search(text), RAW_UCUM.search(text)
    assert "×10⁹/L" in text or "mL/min/1.73 m²" in text


def test_the_value_as_recorded_stays_beside_the_normalised_one(app):
    body = answer(app, fhir_fixtures.load("P09"), "prefetch")
    detail = card_of(body, "bleeding-with-low-platelets")["detail"]
    assert "Platelet count: 25 ×10⁹/L (as recorded: 25000 /µL;" in detail


@pytest.mark.parametrize("mode", MODES)
def test_times_are_shown_in_the_deployments_time_zone(mode):
    app = make_app(fhir_allowlist=[BASE], environ={"IVIG_CDS_RULE_DISPLAY_TIME_ZONE": "America/New_York"})
    critical = card_of(answer(app, fhir_fixtures.load("P01"), mode), "critical-bleeding")
    assert "2026-06-01 02:00 EDT, 6 h ago" in critical["detail"]  # drawn 06:00 UTC
    assert "UTC" not in critical["detail"]


def test_an_unknown_time_zone_stops_the_service_at_start():
    with pytest.raises(ConfigError, match="display_time_zone 'Mars/Olympus'"):
        make_app(environ={"IVIG_CDS_RULE_DISPLAY_TIME_ZONE": "Mars/Olympus"})


LONG_NAME = "Hizentra " + "(immune globulin subcutaneous human 20 % liquid, prefilled syringe, lot 1234) " * 3


@pytest.mark.parametrize(
    ("sid", "rule_id", "field", "tail"),
    [
        ("P39", "subcutaneous-ig", "medicationCodeableConcept", " is not indicated for ITP; IVIG is."),
        ("P26", "hit-heparin", "medicationCodeableConcept", ")."),
    ],
)
def test_a_long_name_is_shortened_at_a_word_never_cut_mid_sentence(app, sid, rule_id, field, tail):
    name = LONG_NAME if sid == "P39" else "Heparin lock flush " + "100 units/mL in 0.9 % sodium chloride, " * 5
    found = card_of(answer(app, variant(sid, draft={field: {"text": name}}), "prefetch"), rule_id)
    assert len(found["summary"]) <= 140 and found["summary"].endswith(tail) and "…" in found["summary"]
