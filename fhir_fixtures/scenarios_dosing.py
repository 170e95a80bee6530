"""Adversarial charts for issue 9's dosing, schedule, contradiction and presentation classes (P70–P89).

Each chart is written the way EHRs record patients: weights in grams, one concept under two codes,
an indication only in the order's reasonCode, partial onset dates, a dose the pharmacy system wrote
as "2 vials", two IVIG drafts in one signing. Each one failed (a wrong dose, a warning on a correct
regimen, two cards contradicting each other, an unusable suggestion) before the fix it tests; the
tests that read them are tests/test_dosing_classes.py.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fhir_fixtures import scenario_builder

build: Any = scenario_builder()

AS_OF = build.AS_OF
SNOMED, ICD10, LOINC, UCUM = build.SNOMED, build.ICD10, build.LOINC, build.UCUM
Chart = build.Chart
ago, ahead, scenario = build.ago, build.ahead, build.scenario
DOSE_OK, THRESHOLD = build.DOSE_OK, build.THRESHOLD
DOSE_WARNING = ("dose-check", "warning")
DAILY = {"frequency": 1, "period": 1, "periodUnit": "d"}


def dosage(value: float, unit: str, repeat: dict[str, Any], text: str | None = None) -> list[dict[str, Any]]:
    found: dict[str, Any] = {
        "timing": {"repeat": repeat},
        "route": build.IV_ROUTE,
        "doseAndRate": [{"doseQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}],
    }
    if text:
        found["text"] = text
    return [found]


def ivig(dosage_instruction: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        "priority": "routine",
        "medicationCodeableConcept": build.PRIVIGEN,
        "dosageInstruction": dosage_instruction,
        **extra,
    }


def infant(sid: str, *, days_old: int, grams: float, plt: float | None) -> Chart:
    """A small patient as a neonatal unit records one: weight in grams (UCUM g), no renal labs."""
    chart = Chart(sid)
    chart.patient("female", (AS_OF - timedelta(days=days_old)).date())
    chart.observation("weight", "29463-7", "Body weight", grams, "g", ago(hours=20))
    if plt is not None:
        chart.platelets("plt", plt)
    return chart


def child(sid: str, born: date, kg: float, cm: float, plt: float = 40) -> Chart:
    chart = build.default_chart(sid, plt=plt)
    chart.patient("male", born)
    chart.observation("weight", "29463-7", "Body weight", kg, "kg", ago(days=1))
    chart.observation("height", "8302-2", "Body height", cm, "cm", ago(days=1))
    return chart


def two_codes(chart: Chart, name: str, codings: list[tuple[str, str]], text: str, onset: str | None) -> None:
    """One condition coded in ICD-10-CM and SNOMED CT at once, as problem lists often carry it."""
    chart.condition(name, None, None, text, onset=onset)
    chart.resources[name]["code"]["coding"] = [{"system": s, "code": c, "display": text} for s, c in codings]


def without_itp(chart: Chart) -> Chart:
    chart.drop("itp")
    return chart


# --- class 2: dose arithmetic for small patients ------------------------------------------------


@scenario(
    "P70",
    "preterm 10 days old weighed 620 g (UCUM g), NAIT, PLT 18; IVIG 1 g/kg once",
    [DOSE_OK, ("neonatal", "info"), ("renal-baseline", "info")],
)
def p70() -> Chart:
    chart = infant("P70", days_old=10, grams=620, plt=18)
    chart.condition("nait", ICD10, "P61.0", "Transient neonatal thrombocytopenia", onset=ago(days=9))
    return build.with_ivig(chart)


@scenario(
    "P71",
    "infant 2 months, 1.4 kg, ITP coded twice, cerebral haemorrhage, PLT 8; IVIG 1 g/kg only",
    [("critical-bleeding", "critical"), DOSE_OK, ("renal-baseline", "info")],
)
def p71() -> Chart:
    chart = infant("P71", days_old=61, grams=1400, plt=8)
    two_codes(chart, "itp", [(ICD10, "D69.3"), (SNOMED, "32273002")], "Immune thrombocytopenic purpura", "2026-05")
    chart.condition("ich", SNOMED, "274100004", "Cerebral hemorrhage", onset=ago(hours=5))
    return build.with_ivig(chart)


@scenario(
    "P72",
    "extremely preterm 3 days old, 450 g, thrombocytopenia, PLT 30; IVIG 0.4 g/kg daily × 5 (0.18 g a dose)",
    [DOSE_OK, ("neonatal", "info"), ("renal-baseline", "info")],
)
def p72() -> Chart:
    chart = infant("P72", days_old=3, grams=450, plt=30)
    chart.condition("thrombocytopenia", ICD10, "D69.6", "Thrombocytopenia, unspecified", onset=ago(days=2))
    chart.draft(ivig(dosage(0.4, "g/kg", {**DAILY, "count": 5})), "ivig-draft")
    return chart


@scenario(
    "P73",
    "child 3 years, 12.6 kg, ITP, PLT 15, petechiae only; IVIG 1 g/kg once (12.5 g)",
    [DOSE_OK, ("pediatric-itp", "info")],
)
def p73() -> Chart:
    chart = child("P73", date(2023, 2, 1), 12.6, 92, plt=15)
    chart.condition("petechiae", SNOMED, "271813007", "Petechiae", onset=ago(days=1))
    return build.with_ivig(chart)


# --- class 8: schedules and regimens by indication ---------------------------------------------


def cidp(chart: Chart) -> Chart:
    two_codes(
        chart,
        "cidp",
        [(ICD10, "G61.81"), (SNOMED, "128209004")],
        "Chronic inflammatory demyelinating polyneuritis",
        "2023-09",  # a partial date, as many problem lists hold an old diagnosis
    )
    return chart


@scenario("P74", "CIDP, PLT 250; IVIG 1 g/kg every 3 weeks for 6 months (maintenance)", [DOSE_OK])
def p74() -> Chart:
    chart = cidp(without_itp(build.default_chart("P74", plt=250)))
    every_3_weeks = {
        "frequency": 1,
        "period": 3,
        "periodUnit": "wk",
        "boundsDuration": {"value": 6, "unit": "months", "system": UCUM, "code": "mo"},
    }
    chart.draft(ivig(dosage(1, "g/kg", every_3_weeks)), "ivig-draft")
    return chart


@scenario("P75", "CIDP, PLT 250; IVIG 0.5 g/kg daily, 1 to 4 June (loading 2 g/kg over 4 days)", [DOSE_OK])
def p75() -> Chart:
    chart = cidp(without_itp(build.default_chart("P75", plt=250)))
    bounds = {**DAILY, "boundsPeriod": {"start": "2026-06-01", "end": "2026-06-04"}}
    chart.draft(ivig(dosage(0.5, "g/kg", bounds)), "ivig-draft")
    return chart


@scenario(
    "P76",
    "child 4 years, 16 kg, PLT 450, Kawasaki disease only as the order's reason (M30.3); IVIG 2 g/kg once",
    [DOSE_OK],
)
def p76() -> Chart:
    chart = without_itp(child("P76", date(2022, 3, 10), 16, 102, plt=450))
    kawasaki = {"system": ICD10, "code": "M30.3", "display": "Mucocutaneous lymph node syndrome [Kawasaki]"}
    reason = [{"coding": [kawasaki]}]
    chart.draft(ivig(dosage(2, "g/kg", {"count": 1}), reasonCode=reason), "ivig-draft")
    return chart


@scenario(
    "P77",
    "Guillain–Barré (SNOMED 40956001), PLT 210; IVIG 1 g/kg daily × 2 (an ITP regimen, not the GBS one)",
    [DOSE_WARNING],
)
def p77() -> Chart:
    chart = without_itp(build.default_chart("P77", plt=210))
    chart.condition("gbs", SNOMED, "40956001", "GBS - Guillain-Barre syndrome", onset=ago(days=3))
    chart.draft(ivig(dosage(1, "g/kg", {**DAILY, "count": 2})), "ivig-draft")
    return chart


@scenario(
    "P78",
    "common variable immunodeficiency (D83.9), resolved ITP, PLT 180; IVIG 0.6 g/kg every 4 weeks, no end",
    [DOSE_OK],
)
def p78() -> Chart:
    chart = build.default_chart("P78", plt=180)
    chart.resources["itp"]["clinicalStatus"]["coding"][0]["code"] = "resolved"
    chart.condition("cvid", ICD10, "D83.9", "Common variable immunodeficiency, unspecified", onset="2019")
    chart.draft(ivig(dosage(0.6, "g/kg", {"frequency": 1, "period": 4, "periodUnit": "wk"})), "ivig-draft")
    return chart


@scenario("P79", "no IVIG indication on record (hypertension only), PLT 250; IVIG 2 g/kg once", [DOSE_OK])
def p79() -> Chart:
    chart = without_itp(build.default_chart("P79", plt=250))
    chart.condition("htn", SNOMED, "38341003", "Hypertensive disorder", onset="2015-04")
    chart.draft(ivig(dosage(2, "g/kg", {"count": 1})), "ivig-draft")
    return chart


@scenario(
    "P80",
    "ITP, PLT 40; IVIG 1 g/kg every 3 weeks for 6 months (9 doses, not 9 days)",
    [DOSE_WARNING, THRESHOLD],
)
def p80() -> Chart:
    chart = build.default_chart("P80")
    every_3_weeks = {
        "frequency": 1,
        "period": 3,
        "periodUnit": "wk",
        "boundsDuration": {"value": 6, "unit": "mo", "system": UCUM, "code": "mo"},
    }
    chart.draft(ivig(dosage(1, "g/kg", every_3_weeks)), "ivig-draft")
    return chart


# --- class 9: cards that contradict each other ------------------------------------------------


@scenario("P81", "HIV-associated ITP, PLT 25, no bleeding; IVIG", [("secondary-itp", "info"), THRESHOLD, DOSE_OK])
def p81() -> Chart:
    chart = build.with_ivig(build.default_chart("P81", plt=25))
    chart.condition("hiv", SNOMED, "86406008", "Human immunodeficiency virus infection", onset="2012")
    return chart


@scenario(
    "P82",
    "HIT (D75.822) with an intracerebral haemorrhage, PLT 15; IVIG",
    [("critical-bleeding", "critical"), ("hit-ivig", "warning"), ("ivig-safety", "warning"), DOSE_OK],
)
def p82() -> Chart:
    chart = build.with_ivig(build.hit_chart("P82"))
    chart.resources["plt"]["valueQuantity"]["value"] = 15
    chart.condition("ich", ICD10, "I61.9", "Nontraumatic intracerebral hemorrhage, unspecified", onset=ago(hours=4))
    return chart


@scenario(
    "P83",
    "ITP, PLT 40; two IVIG drafts in one signing (Privigen 1 g/kg once, Gamunex-C 70 g once)",
    [("duplicate-ivig", "warning"), THRESHOLD, DOSE_OK],
)
def p83() -> Chart:
    chart = build.with_ivig(build.default_chart("P83"))
    gamunex = {"text": "Gamunex-C (immune globulin injection, human) 10 %"}
    chart.draft(ivig(dosage(70, "g", {"count": 1}), medicationCodeableConcept=gamunex), "ivig-draft-2")
    return chart


@scenario(
    "P84",
    "ITP, pregnant, delivery in 10 days, PLT 40; IVIG",
    [
        ("pregnancy", "warning"),
        ("pregnancy-response-predictors", "info"),
        ("ivig-safety", "warning"),
        THRESHOLD,
        DOSE_OK,
    ],
)
def p84() -> Chart:
    chart = build.with_ivig(build.default_chart("P84"))
    build.pregnant(chart, weeks=38, delivery_in_days=10)
    return chart


@scenario("P85", "HCV-associated ITP, PLT 20, no bleeding; IVIG", [("secondary-itp", "info"), THRESHOLD, DOSE_OK])
def p85() -> Chart:
    chart = build.with_ivig(build.default_chart("P85", plt=20))
    chart.condition("hcv", SNOMED, "128302006", "Chronic hepatitis C", onset="2018-11")
    return chart


@scenario(
    "P86",
    "ITP and HIT both active, PLT 40; IVIG",
    [("hit-ivig", "warning"), ("ivig-safety", "warning"), DOSE_OK],
)
def p86() -> Chart:
    chart = build.with_ivig(build.default_chart("P86"))
    chart.condition("hit", ICD10, "D75.822", "Immune-mediated heparin-induced thrombocytopenia", onset=ago(days=5))
    return chart


@scenario(
    "P88",
    "neonate 5 days, 3.1 kg, intracranial haemorrhage, no platelet count; IVIG and platelets ordered",
    [
        ("critical-bleeding", "info"),
        ("no-platelet-count", "warning"),
        ("neonatal", "info"),
        ("transfusion-with-ivig", "info"),
        ("renal-baseline", "info"),
        DOSE_OK,
    ],
)
def p88() -> Chart:
    chart = infant("P88", days_old=5, grams=3100, plt=None)
    chart.condition("ich", SNOMED, "1386000", "Intracranial hemorrhage", onset=ago(hours=8))
    chart.draft(build.platelet_order(), "platelet-draft")
    return build.with_ivig(chart)


# --- class 11: what the clinician reads ------------------------------------------------------


@scenario("P87", "ITP, PLT 40; IVIG written as '2 vials IV once' (dose quantity 2 vial)", [DOSE_WARNING, THRESHOLD])
def p87() -> Chart:
    chart = build.default_chart("P87")
    chart.draft(ivig(dosage(2, "vial", {"count": 1}, text="2 vials IV once")), "ivig-draft")
    return chart


@scenario(
    "P89",
    "ITP, PLT 40, IgA '<5 mg/dL' (a comparator); Octagam: the IgA-depleted product suggestion",
    [("iga-deficiency", "warning"), THRESHOLD, DOSE_OK],
)
def p89() -> Chart:
    chart = build.default_chart("P89")
    chart.resources["iga"]["valueQuantity"].update(value=5, comparator="<")
    octagam = {"text": "Octagam 10 % (immune globulin intravenous, human)"}
    chart.draft(ivig(dosage(1, "g/kg", {"count": 1}), medicationCodeableConcept=octagam), "ivig-draft")
    return chart
