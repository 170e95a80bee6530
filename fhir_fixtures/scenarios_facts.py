"""Adversarial charts P50–P69: the patient facts of issue 9, recorded the way EHRs record them.

Each chart was written before the fix it tests, from how records really look: a bleed coded by
its cause or as a newborn's haemorrhage, a weight in grams typed into a kilogram field, a
"heparin-free" flush, HIT kept on the allergy list, an IgA result drawn after IVIG, a diagnosis
entered long after it began (`recordedDate` is not onset), a creatinine without an eGFR, a CIDP
order with no platelet count. The expected cards are exact (tests/test_scenarios.py), and
tests/test_facts_v2.py runs every chart in both data modes.

Registered into `build.SCENARIOS` by the import at the end of build.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fhir_fixtures import scenario_builder

_b = scenario_builder()
AS_OF = _b.AS_OF
ICD10, SNOMED, LOINC, RXNORM, UCUM = _b.ICD10, _b.SNOMED, _b.LOINC, _b.RXNORM, _b.UCUM
Chart, ago, scenario = _b.Chart, _b.ago, _b.scenario
DOSE_OK, THRESHOLD = _b.DOSE_OK, _b.THRESHOLD

ALLERGY_CLINICAL, ALLERGY_VERIFICATION = _b.ALLERGY_CLINICAL, _b.ALLERGY_VERIFICATION
HEPARIN_SUBSTANCE = {"coding": [{"system": RXNORM, "code": "5224", "display": "heparin"}], "text": "Heparin"}
IMMUNE_GLOBULIN_SUBSTANCE = {"text": "Immune globulin intravenous (human)"}


def allergy(
    chart: Any,
    name: str,
    substance: dict[str, Any],
    *,
    manifestation: dict[str, Any] | None = None,
    criticality: str | None = None,
    onset: str | None = None,
    recorded: str | None = None,
    note: str | None = None,
    verification: str = "confirmed",
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": ALLERGY_VERIFICATION, "code": verification}]},
        "type": "allergy",
        "category": ["medication"],
        "code": substance,
        "patient": chart.subject,
    }
    if criticality:
        resource["criticality"] = criticality
    if onset:
        resource["onsetDateTime"] = onset
    if recorded:
        resource["recordedDate"] = recorded
    if note:
        resource["note"] = [{"text": note}]
    if manifestation is not None:
        resource["reaction"] = [{"manifestation": [manifestation]}]
    chart.add(name, resource)
    return resource


def coded(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def neonate(sid: str, *, days_old: int, weight_kg: float | None, plt: float) -> Any:
    chart = Chart(sid)
    chart.patient("male", (AS_OF - timedelta(days=days_old)).date())
    chart.condition("nait", ICD10, "P61.0", "Transient neonatal thrombocytopenia", onset=ago(days=1))
    if weight_kg is not None:
        chart.observation("weight", "29463-7", "Body weight", weight_kg, "kg", ago(hours=20))
    chart.platelets("plt", plt)
    return chart


# --- class 1: bleeding classes are hierarchies --------------------------------------------------


@scenario(
    "P50",
    "newborn 3 days, PLT 25, intraventricular haemorrhage grade 3 (ICD-10-CM P52.21); IVIG 1 g/kg",
    [("critical-bleeding", "critical"), ("neonatal", "info"), ("renal-baseline", "info"), DOSE_OK],
)
def p50() -> Any:
    chart = neonate("P50", days_old=3, weight_kg=3.1, plt=25)
    chart.condition(
        "ivh", ICD10, "P52.21", "Intraventricular (nontraumatic) hemorrhage, grade 3, of newborn", onset=ago(hours=30)
    )
    return _b.with_ivig(chart)


@scenario(
    "P51",
    "ITP, PLT 12, traumatic haemorrhage of left cerebrum (S06.350A) after a fall; IVIG",
    [("critical-bleeding", "critical"), DOSE_OK],
)
def p51() -> Any:
    chart = _b.with_ivig(_b.default_chart("P51", plt=12))
    chart.condition(
        "tich",
        ICD10,
        "S06.350A",
        "Traumatic hemorrhage of left cerebrum without loss of consciousness, initial encounter",
        onset=ago(hours=5),
    )
    return chart


@scenario(
    "P52",
    "ITP, PLT 20, GI bleed coded by its cause (chronic duodenal ulcer with hemorrhage, K26.4); IVIG",
    [("bleeding-with-low-platelets", "warning"), DOSE_OK],
)
def p52() -> Any:
    chart = _b.with_ivig(_b.default_chart("P52", plt=20))
    chart.condition(
        "du-bleed", ICD10, "K26.4", "Chronic or unspecified duodenal ulcer with hemorrhage", onset=ago(hours=16)
    )
    return chart


@scenario(
    "P53",
    "ITP, PLT 10, sequela of an old traumatic subdural haemorrhage (S06.5X0S) still active; IVIG",
    [THRESHOLD, DOSE_OK],
)
def p53() -> Any:
    chart = _b.with_ivig(_b.default_chart("P53", plt=10))
    chart.condition(
        "sdh-sequela",
        ICD10,
        "S06.5X0S",
        "Traumatic subdural hemorrhage without loss of consciousness, sequela",
        onset="2019-03-02",
    )
    return chart


# --- class 3: implausible weights are not used for dosing ---------------------------------------


@scenario(
    "P54",
    "newborn 2 days, weight 3200 'kg' (grams typed in kg), PLT 18; IVIG 0.4 g/kg/day × 5",
    [("data-quality", "warning"), ("neonatal", "info"), ("renal-baseline", "info"), ("dose-check", "warning")],
)
def p54() -> Any:
    chart = neonate("P54", days_old=2, weight_kg=3200, plt=18)
    return _b.with_ivig(chart, value=0.4, days=5)


@scenario(
    "P55",
    "adult weighed 70 kg 3 days ago, today 700 kg (typo); IVIG 1 g/kg",
    [("data-quality", "warning"), THRESHOLD, DOSE_OK],
)
def p55() -> Any:
    chart = _b.with_ivig(_b.default_chart("P55"))
    chart.observation("weight", "29463-7", "Body weight", 70, "kg", ago(days=3))
    chart.observation("weight-typo", "29463-7", "Body weight", 700, "kg", ago(hours=2))
    return chart


# --- class 4: negation in names ------------------------------------------------------------------


@scenario("P56", "HIT (D75.822); heparin-free saline lock flush", [])
def p56() -> Any:
    chart = _b.hit_chart("P56")
    chart.draft(
        {
            "resourceType": "MedicationRequest",
            "status": "draft",
            "intent": "order",
            "medicationCodeableConcept": {"text": "Sodium chloride 0.9 % lock flush, heparin-free, 10 mL IV"},
        },
        "flush-draft",
    )
    return chart


# --- class 5: HIT recorded as an allergy ---------------------------------------------------------


@scenario(
    "P57",
    "HIT only on the allergy list (heparin, reaction SNOMED 73397007); heparin flush",
    [("hit-heparin", "critical")],
)
def p57() -> Any:
    chart = _b.default_chart("P57")
    chart.drop("itp")
    allergy(
        chart,
        "heparin-allergy",
        HEPARIN_SUBSTANCE,
        manifestation=coded(SNOMED, "73397007", "Heparin-induced thrombocytopenia"),
        criticality="high",
        recorded="2021-09-14",
    )
    chart.draft(_b.medication_order("5224", "heparin", "Heparin lock flush 100 units/mL, 5 mL IV"), "heparin-draft")
    return chart


@scenario(
    "P58",
    "HIT named only in the allergy's text ('HIT - PF4 antibody positive'); enoxaparin",
    [("hit-heparin", "critical")],
)
def p58() -> Any:
    chart = _b.default_chart("P58")
    chart.drop("itp")
    allergy(chart, "heparin-allergy", {"text": "Heparin sodium"}, note="HIT - PF4 antibody positive, 2022")
    chart.draft(
        {
            "resourceType": "MedicationRequest",
            "status": "draft",
            "intent": "order",
            "medicationCodeableConcept": {"text": "Enoxaparin 40 mg/0.4 mL SC daily"},
        },
        "enoxaparin-draft",
    )
    return chart


# --- class 6: IgA judged on results drawn before the first IVIG ---------------------------------


@scenario(
    "P59",
    "IgA 4 mg/dL before the first IVIG, 95 mg/dL ten days after it; IVIG",
    [("iga-deficiency", "warning"), THRESHOLD, DOSE_OK],
)
def p59() -> Any:
    chart = _b.with_ivig(_b.default_chart("P59"))
    chart.observation("iga", "2458-8", "IgA [Mass/volume] in Serum or Plasma", 4, "mg/dL", "2024-02-03T09:00:00Z")
    chart.observation("iga-post", "2458-8", "IgA [Mass/volume] in Serum or Plasma", 95, "mg/dL", "2025-06-11T09:00:00Z")
    return chart


# --- class 7: recordedDate is never onset -------------------------------------------------------


def _recorded_only(chart: Any, name: str, recorded: str) -> None:
    """A condition entered on `recorded` with no onset: EHRs fill `recordedDate` themselves."""
    chart.resources[name].pop("onsetDateTime", None)
    chart.resources[name]["recordedDate"] = recorded


@scenario(
    "P60",
    "pregnancy entered yesterday (no onset, no due date), PLT 60 now, 25 ten days ago; IVIG",
    [
        ("pregnancy", "info"),
        ("pregnancy-response-predictors", "info"),
        ("ivig-safety", "warning"),
        THRESHOLD,
        DOSE_OK,
    ],
)
def p60() -> Any:
    chart = _b.with_ivig(_b.default_chart("P60", plt=60))
    chart.condition("pregnancy", SNOMED, "77386006", "Pregnancy")
    _recorded_only(chart, "pregnancy", ago(days=1)[:10])
    chart.platelets("plt-earlier", 25, when=ago(days=10))
    return chart


@scenario(
    "P61",
    "pregnancy onset 200 days ago (entered yesterday), due in 100 days, nadir 22 190 days ago, PLT 60; IVIG",
    [
        ("pregnancy", "info"),
        ("pregnancy-response-predictors", "info"),
        ("ivig-safety", "warning"),
        THRESHOLD,
        DOSE_OK,
    ],
)
def p61() -> Any:
    chart = _b.with_ivig(_b.default_chart("P61", plt=60))
    chart.condition("pregnancy", ICD10, "Z33.1", "Pregnant state, incidental", onset=ago(days=200)[:10])
    chart.resources["pregnancy"]["recordedDate"] = ago(days=1)[:10]
    _b.pregnant(chart, weeks=26, delivery_in_days=100)  # the due date puts the start 180 days ago
    chart.platelets("plt-nadir", 22, when=ago(days=190))
    return chart


@scenario(
    "P62",
    "ITP entered yesterday (no onset) but IVIG given a year ago, PLT 15; IVIG",
    [THRESHOLD, DOSE_OK],
)
def p62() -> Any:
    chart = _b.with_ivig(_b.default_chart("P62", plt=15))
    _recorded_only(chart, "itp", ago(days=1)[:10])
    return chart


# --- class 10: missing safety cards -------------------------------------------------------------


@scenario(
    "P63",
    "anaphylaxis to IVIG in 2023, IgA 210 mg/dL before any IVIG; Privigen",
    [("prior-ivig-anaphylaxis", "critical"), THRESHOLD, DOSE_OK],
)
def p63() -> Any:
    chart = _b.with_ivig(_b.default_chart("P63"))
    allergy(
        chart,
        "ivig-allergy",
        IMMUNE_GLOBULIN_SUBSTANCE,
        manifestation=coded(SNOMED, "39579001", "Anaphylaxis"),
        onset="2023-04-18",
    )
    chart.resources["iga"]["effectiveDateTime"] = "2023-03-01T09:00:00Z"
    return chart


@scenario(
    "P64",
    "anaphylactic reaction to 'IVIG' in free text, only IgA result drawn after IVIG (normal); IVIG",
    [("prior-ivig-anaphylaxis", "critical"), THRESHOLD, DOSE_OK],
)
def p64() -> Any:
    chart = _b.with_ivig(_b.default_chart("P64"))
    allergy(chart, "ivig-allergy", {"text": "IVIG"}, manifestation={"text": "anaphylactic reaction, hypotension"})
    chart.resources["iga"]["effectiveDateTime"] = "2025-06-03T09:00:00Z"  # two days after the prior IVIG
    return chart


@scenario(
    "P65",
    "creatinine 2.5 mg/dL yesterday, no eGFR on record; IVIG",
    [("ivig-safety", "warning"), THRESHOLD, DOSE_OK],
)
def p65() -> Any:
    chart = _b.with_ivig(_b.default_chart("P65"))
    chart.drop("egfr")
    chart.observation("creatinine", "2160-0", "Creatinine [Mass/volume] in Serum or Plasma", 2.5, "mg/dL", ago(days=1))
    return chart


@scenario("P66", "CIDP, no ITP, no platelet count on record; IVIG 1 g/kg", [DOSE_OK])
def p66() -> Any:
    chart = _b.with_ivig(_b.default_chart("P66", plt=None))
    chart.drop("itp")
    chart.condition(
        "cidp", SNOMED, "128209004", "Chronic inflammatory demyelinating polyradiculoneuropathy", onset="2023-09-01"
    )
    return chart
