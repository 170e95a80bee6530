"""Every threshold of the rule book at its edge, through the HTTP endpoint (RULES.md definitions)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

import fhir_fixtures
from tests.conftest import SIGN, make_app, rule_set
from tests.variants import GI_BLEED, ICH, variant


def cards(call, scenario):
    status, body = call(SIGN.id, scenario.prefetch_request(SIGN.prefetch))
    assert status == 200
    return body["cards"]


def rules(call, scenario):
    return {c["source"]["topic"]["code"]: c["indicator"] for c in cards(call, scenario)}


def card(call, scenario, rule_id):
    return next(c for c in cards(call, scenario) if c["source"]["topic"]["code"] == rule_id)


# --- platelet thresholds -------------------------------------------------------------------


@pytest.mark.parametrize(("plt", "expected"), [(49, "warning"), (49.9, "warning"), (50, None), (51, None)])
def test_bleeding_card_needs_platelets_below_50(call, plt, expected):
    found = rules(call, variant("P04", plt=plt, add=(GI_BLEED,)))
    assert found.get("bleeding-with-low-platelets") == expected


@pytest.mark.parametrize(("plt", "fires"), [(49, True), (50, False)])
def test_critical_bleeding_cut_off_is_50(call, plt, fires):
    found = rules(call, variant("P04", plt=plt, add=(ICH,)))
    assert ("critical-bleeding" in found) is fires
    assert "treatment-threshold" not in found  # bleeding: never the no-bleeding framing


@pytest.mark.parametrize(
    ("plt", "grade", "phrase"),
    [
        (24, 4, "corticosteroids are first-line"),
        (25, 3, "corticosteroids are first-line"),
        (29, 3, "corticosteroids are first-line"),
        (30, 3, "observation is favoured"),
        (49, 3, "observation is favoured"),
        (50, 2, "observation is favoured"),
        (74, 2, "observation is favoured"),
        (75, 1, "observation is favoured"),
        (80, 1, "observation is favoured"),
        (99, 1, "observation is favoured"),
    ],
)
def test_treatment_threshold_bands_and_ctcae_grades(call, plt, grade, phrase):
    found = card(call, variant("P04", plt=plt), "treatment-threshold")
    assert phrase in found["summary"]
    assert f"grade {grade}" in found["summary"] and f"CTCAE grade {grade}" in found["detail"]


@pytest.mark.parametrize(
    ("plt", "rule_id"), [(99, "treatment-threshold"), (100, "no-thrombocytopenia"), (150, "no-thrombocytopenia")]
)
def test_100_separates_thrombocytopenia_from_none(call, plt, rule_id):
    found = rules(call, variant("P04", plt=plt))
    other = ({"treatment-threshold", "no-thrombocytopenia"} - {rule_id}).pop()
    assert rule_id in found and other not in found


@pytest.mark.parametrize(("plt", "fires"), [(19, True), (20, False)])
def test_rapid_regimen_below_20_without_bleeding(call, plt, fires):
    scenario = variant(
        "P04",
        plt=plt,
        draft={"dosageInstruction": variant("P23").draft_orders["entry"][0]["resource"]["dosageInstruction"]},
    )
    assert ("rapid-regimen" in rules(call, scenario)) is fires


def test_rapid_regimen_suggests_updating_the_draft_to_1_g_per_kg(call):
    found = card(call, variant("P23"), "rapid-regimen")
    action = found["suggestions"][0]["actions"][0]
    assert action["type"] == "update"
    assert action["resource"]["id"].endswith("ivig-draft")
    assert action["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] == {
        "value": 70.0,
        "unit": "g",
        "system": "http://unitsofmeasure.org",
        "code": "g",
    }


# --- freshness and units -------------------------------------------------------------------


@pytest.mark.parametrize(("hours", "stale"), [(71.9, False), (72, False), (72.1, True), (240, True)])
def test_platelet_count_is_fresh_up_to_72_hours(call, hours, stale):
    found = rules(call, variant("P04", plt_hours_ago=hours))
    assert ("data-quality" in found) is stale
    assert ("treatment-threshold" in found) is not stale


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (25, "10*3/uL", 25),
        (25, "10*9/L", 25),
        (25, "K/uL", 25),
        (25, "G/L", 25),
        (25, "10*3/mm3", 25),
        (25000, "/uL", 25),
        (25000, "/mm3", 25),
        (25000, "{cells}/uL", 25),
    ],
)
def test_every_known_unit_converts_to_10e9_per_litre(call, value, unit, shown):
    found = card(call, variant("P04", plt=value, plt_unit=unit), "treatment-threshold")
    assert f"Platelets {shown} " in found["summary"]


@pytest.mark.parametrize(
    ("value", "unit", "problem"),
    [
        (25, None, "no unit"),
        (25, "mg/dL", "not recognised"),
        (0.5, "10*3/uL", "implausible"),
        (2500, "10*3/uL", "implausible"),
        (25, "10*6/uL", "not recognised"),
    ],
)
def test_unusable_counts_give_data_quality_and_no_threshold_card(call, value, unit, problem):
    found = cards(call, variant("P04", plt=value, plt_unit=unit))
    codes = {c["source"]["topic"]["code"] for c in found}
    assert "data-quality" in codes and "treatment-threshold" not in codes
    quality = next(c for c in found if c["source"]["topic"]["code"] == "data-quality")
    assert problem in quality["summary"]
    assert quality["suggestions"][0]["actions"][0]["resource"]["code"]["coding"][0]["code"] == "58410-2"


def test_stale_count_still_allows_critical_bleeding(call):
    found = rules(call, variant("P04", plt=12, plt_hours_ago=200, add=(ICH,)))
    assert found["critical-bleeding"] == "critical" and found["data-quality"] == "warning"


# --- weight --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weight", "height", "basis", "kg", "dose_g"),
    [
        (100, 190, "actual", "100", 100),  # BMI 27.7, exactly 100 kg: actual weight
        (101, 190, "adjusted", "88.1", 90),  # over 100 kg: IBW 79.5 + 0.4 × 21.5
        (81.675, 165, "adjusted", "66.8", 65),  # BMI exactly 30.0: IBW 56.9 + 0.4 × 24.8
        (81.6, 165, "actual", "81.6", 80),  # BMI 29.97: actual
        (120, 165, "adjusted", "82.1", 80),  # P15: ≈ 82 kg
    ],
)
def test_adjusted_dosing_weight_at_100_kg_and_bmi_30(call, weight, height, basis, kg, dose_g):
    """The dose is rounded to 5 g above 50 g (RULES.md v2 "Dose arithmetic"); the weight used says which."""
    found = card(call, variant("P04", weight=weight, height=height), "dose-check")
    assert found["summary"].startswith(f"IVIG {dose_g} g (1 g/kg × {kg} kg {basis} weight)")


def test_weight_older_than_30_days_cannot_verify_the_dose(call):
    scenario = variant("P04")
    weight = next(e["resource"] for e in scenario.record["entry"] if e["resource"]["id"].endswith("-weight"))
    weight["effectiveDateTime"] = "2026-04-25T12:00:00Z"  # 37 days before asOf
    found = card(call, scenario, "dose-check")
    assert found["indicator"] == "warning" and "cannot be verified" in found["summary"]


@pytest.mark.parametrize(
    ("value", "unit", "days", "indicator"),
    [
        (1, "g/kg", 1, "info"),
        (1000, "mg/kg", 1, "info"),
        (70, "g", 1, "info"),
        (0.4, "g/kg", 5, "info"),
        (1, "g/kg", 2, "info"),
        (1.1, "g/kg", 1, "info"),  # within 10 %
        (1.15, "g/kg", 1, "warning"),  # outside 10 %
        (0.6, "g/kg", 1, "warning"),
        (1, "g/kg", 3, "warning"),  # course 3 g/kg > 2
        (2, "mL", 1, "warning"),  # unreadable unit
    ],
)
def test_dose_check_tolerance_and_course(call, value, unit, days, indicator):
    dosage = [
        {
            "timing": {"repeat": {"count": days, "frequency": 1, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [
                {"doseQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}
            ],
        }
    ]
    found = card(call, variant("P04", draft={"dosageInstruction": dosage}), "dose-check")
    assert found["indicator"] == indicator


def test_two_day_label_regimen_advises_a_recheck_before_dose_two(call):
    dosage = variant("P23").draft_orders["entry"][0]["resource"]["dosageInstruction"]
    dosage = [{**dosage[0], "timing": {"repeat": {"count": 2, "frequency": 1, "period": 1, "periodUnit": "d"}}}]
    dosage[0]["doseAndRate"] = [
        {"doseQuantity": {"value": 1, "unit": "g/kg", "system": "http://unitsofmeasure.org", "code": "g/kg"}}
    ]
    found = card(call, variant("P04", draft={"dosageInstruction": dosage}), "dose-check")
    assert "before the second dose" in found["detail"]


# --- renal, IgA ----------------------------------------------------------------------------


@pytest.mark.parametrize(("egfr", "fires"), [(59, True), (59.9, True), (60, False)])
def test_egfr_below_60_is_a_risk_factor(call, egfr, fires):
    assert ("ivig-safety" in rules(call, variant("P04", egfr=egfr))) is fires


@pytest.mark.parametrize(("iga", "expected"), [(6.9, "warning"), (7, None), (210, None)])
def test_iga_below_7_is_deficiency(call, iga, expected):
    assert rules(call, variant("P04", iga=iga)).get("iga-deficiency") == expected


def test_iga_deficiency_suggestion_replaces_the_product(call):
    found = card(call, variant("P20"), "iga-deficiency")
    resource = found["suggestions"][0]["actions"][0]["resource"]
    assert "Gammagard S/D" in resource["medicationCodeableConcept"]["text"]
    assert resource["id"].endswith("ivig-draft")


def test_iga_depleted_product_is_not_flagged(call):
    product = {"medicationCodeableConcept": {"text": "Gammagard S/D (immune globulin intravenous, IgA-depleted)"}}
    assert "iga-deficiency" not in rules(call, variant("P20", draft=product))


# --- configuration -------------------------------------------------------------------------


def test_thresholds_come_from_configuration():
    app = make_app(environ={"IVIG_CDS_RULE_PLATELET_FRESH_HOURS": "4", "IVIG_CDS_AUTH": "off"})
    response = app.test_client().post(f"/cds-services/{SIGN.id}", json=variant("P04").prefetch_request(SIGN.prefetch))
    assert ("data-quality", "warning") in rule_set(response.get_json())  # the count is 6 h old


def test_rules_can_be_switched_off_and_a_floor_set():
    app = make_app(environ={"IVIG_CDS_RULE_DISABLED_RULES": "dose-check", "IVIG_CDS_RULE_MINIMUM_INDICATOR": "warning"})
    response = app.test_client().post(f"/cds-services/{SIGN.id}", json=variant("P14").prefetch_request(SIGN.prefetch))
    assert rule_set(response.get_json()) == set()


def test_invalid_rule_setting_stops_the_service():
    from cds_service.config import ConfigError

    with pytest.raises(ConfigError, match=r"PLATELET_FRESH_HOURS|platelet_fresh_hours"):
        make_app(environ={"IVIG_CDS_RULE_PLATELET_FRESH_HOURS": "soon"})
    with pytest.raises(ConfigError, match="unknown rule setting"):
        make_app(environ={"IVIG_CDS_RULE_PLATELET_FRESH": "4"})


def test_a_local_platelet_transfusion_code_is_recognised_when_configured():
    local = {"code": {"coding": [{"system": "urn:hospital:orders", "code": "PLT-TX"}], "text": "Platelets"}}
    scenario = variant("P33", draft=local)
    request = scenario.prefetch_request(SIGN.prefetch)
    plain = make_app().test_client().post(f"/cds-services/{SIGN.id}", json=request)
    assert rule_set(plain.get_json()) == set()  # an unknown code: not this service's business
    configured = make_app(environ={"IVIG_CDS_RULE_PLATELET_TRANSFUSION_CODES": "urn:hospital:orders|PLT-TX"})
    response = configured.test_client().post(f"/cds-services/{SIGN.id}", json=request)
    assert rule_set(response.get_json()) == {("transfusion-without-bleeding", "info")}


def test_neonate_with_a_platelet_transfusion_gets_the_neonatal_card(call):
    scenario = variant(
        "P30",
        draft={
            "resourceType": "ServiceRequest",
            "intent": "order",
            "status": "draft",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "180208003"}]},
        },
    )
    for entry in scenario.draft_orders["entry"]:
        for key in ("medicationCodeableConcept", "dosageInstruction", "priority"):
            entry["resource"].pop(key, None)
    found = rules(call, scenario)
    assert found.get("neonatal") == "info"


def test_critical_bleeding_in_a_neonate_suggests_no_corticosteroid(call):
    found = card(call, variant("P30", add=(ICH,)), "critical-bleeding")
    created = [a["resource"] for s in found["suggestions"] for a in s["actions"]]
    assert [r["resourceType"] for r in created] == ["ServiceRequest"]  # platelets only; IVIG is ordered
    assert "corticosteroid" not in found["summary"] and "HPA-compatible" in found["detail"]


@pytest.mark.parametrize(("value", "indicator"), [(0.8, "info"), (0.85, "info"), (0.7, "warning")])
def test_children_may_get_0_8_to_1_g_per_kg(call, value, indicator):
    dosage = [
        {
            "timing": {"repeat": {"count": 1}},
            "doseAndRate": [{"doseQuantity": {"value": value, "unit": "g/kg", "code": "g/kg"}}],
        }
    ]
    assert card(call, variant("P31", draft={"dosageInstruction": dosage}), "dose-check")["indicator"] == indicator
    adult = card(call, variant("P04", draft={"dosageInstruction": dosage}), "dose-check")
    assert adult["indicator"] == "warning"  # 0.8 g/kg is outside 10 % of 1 and of 0.4 for an adult


# --- pregnancy: the response predictors of Khalife et al. 2025 (S000) ------------------------


def _predictors(call, **changes) -> dict | None:
    found = [
        c
        for c in cards(call, variant("P24", **changes))
        if c["source"]["topic"]["code"] == "pregnancy-response-predictors"
    ]
    return found[0] if found else None


@pytest.mark.parametrize(
    ("values", "line"),
    [
        ({"plt-nadir": 29.9}, "Favourable: Nadir 29.9"),
        ({"plt-nadir": 30}, "Not present: Nadir 30"),
        ({"ipf": 15.9}, "Favourable: IPF 15.9 %"),
        ({"ipf": 16}, "Not present: IPF 16 %"),
    ],
)
def test_nadir_below_30_and_ipf_below_16_are_favourable(call, values, line):
    card = _predictors(call, values=values)
    assert line in card["detail"]


@pytest.mark.parametrize(
    ("plt", "line"), [(49.9, "Favourable: Pre-IVIG count 49.9"), (50, "Not present: Pre-IVIG count 50")]
)
def test_a_pre_ivig_count_below_50_is_favourable(call, plt, line):
    assert line in _predictors(call, plt=plt)["detail"]


@pytest.mark.parametrize(("plt", "less_likely"), [(69.9, False), (70, True), (99, True)])
def test_counts_from_70_were_less_likely_to_rise(call, plt, less_likely):
    card = _predictors(call, plt=plt)
    assert ("70–100 was less likely to rise by ≥20" in card["detail"]) is less_likely
    assert "2 of 3 favourable predictors" in card["summary"]  # nadir 28 and IPF 12 % stay favourable


def test_no_predictor_card_from_100(call):
    assert _predictors(call, plt=99.9) is not None
    assert _predictors(call, plt=100) is None


# --- ages and disease phase (completed years and days, as CQL's AgeInYears/AgeInDays count) ----


def _years_before(day: date, years: int) -> date:
    return day.replace(year=day.year - years)


P04_TODAY = fhir_fixtures.load("P04").as_of.date()


@pytest.mark.parametrize(
    ("born", "framing"),
    [
        # 2008-06-01 to 2026-06-01 spans four leap days: 6574 days, which ÷ 365.25 is 17.998 years.
        (_years_before(P04_TODAY, 18), "treatment-threshold"),
        (_years_before(P04_TODAY, 18) + timedelta(days=1), "pediatric-itp"),
    ],
)
def test_the_adult_rules_apply_from_the_18th_birthday(call, born, framing):
    found = rules(call, variant("P04", born=born))
    other = ({"treatment-threshold", "pediatric-itp"} - {framing}).pop()
    assert framing in found and other not in found


@pytest.mark.parametrize(("days_old", "neonate"), [(0, True), (27, True), (28, False)])
def test_a_neonate_is_younger_than_28_days(call, days_old, neonate):
    born = fhir_fixtures.load("P30").as_of.date() - timedelta(days=days_old)
    assert ("neonatal" in rules(call, variant("P30", born=born))) is neonate


@pytest.mark.parametrize(("years", "day_offset", "factor"), [(66, 0, "age 66 (over 65)"), (66, 1, None), (65, 0, None)])
def test_age_over_65_counts_from_the_66th_birthday(call, years, day_offset, factor):
    """RULES.md "age >65" in completed years (CQL AgeInYears() > 65)."""
    born = _years_before(P04_TODAY, years) + timedelta(days=day_offset)
    found = [c for c in cards(call, variant("P04", born=born)) if c["source"]["topic"]["code"] == "ivig-safety"]
    detail = found[0]["detail"] if found else ""
    if factor:
        assert factor in detail
    else:
        assert "(over 65)" not in detail


@pytest.mark.parametrize(("days_since", "newly"), [(89, True), (90, False)])
def test_itp_is_newly_diagnosed_for_under_90_days(call, days_since, newly):
    onset = (P04_TODAY - timedelta(days=days_since)).isoformat()
    found = card(call, variant("P04", plt=15, patch={"itp": {"onsetDateTime": onset}}), "treatment-threshold")
    assert ("(newly diagnosed)" in found["detail"]) is newly
    assert ("consider admission" in found["detail"].lower()) is newly
