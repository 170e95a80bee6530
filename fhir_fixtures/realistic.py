"""Charts the size of real ones: a public scenario with years of history added around it.

Why: the hand-made scenarios hold ten resources each; a chronic ITP patient's record holds hundreds
of platelet counts, years of weights and renal results, dozens of diagnoses and medication orders,
and an EHR pages it at `_count=100`. The service must give the *same cards* on both, and cost what
its clinical window costs, not what the history costs. So each realistic chart is a public scenario
(`P01`, `P36`, `P30`) padded with history that no rule may act on: older counts, weights, renal
results and IVIG courses, unrelated diagnoses and medications, an allergy. Its expected cards are the
scenario's own, and the tests hold them equal in both data modes.

Everything is deterministic (a seeded generator), dated relative to the scenario's `asOf`, and valid
FHIR R4 the way EHRs write it (each resource with `meta`, `identifier`, categories, displays).

    python -m fhir_fixtures.realistic chronic-itp --counts 600 > chart.json   # a FHIR transaction
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import fhir_fixtures
from fhir_fixtures import Scenario

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = "http://unitsofmeasure.org"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
LAB = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}
VITALS = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}

# Diagnoses no rule reads (ICD-10-CM): the bulk of a long problem list and of encounter diagnoses.
UNRELATED_CONDITIONS = (
    ("I10", "Essential (primary) hypertension"),
    ("E78.5", "Hyperlipidemia, unspecified"),
    ("K21.9", "Gastro-esophageal reflux disease without esophagitis"),
    ("G43.909", "Migraine, unspecified, not intractable, without status migrainosus"),
    ("J45.909", "Unspecified asthma, uncomplicated"),
    ("M54.50", "Low back pain, unspecified"),
    ("F41.1", "Generalized anxiety disorder"),
    ("J06.9", "Acute upper respiratory infection, unspecified"),
    ("N39.0", "Urinary tract infection, site not specified"),
    ("R51.9", "Headache, unspecified"),
    ("J18.9", "Pneumonia, unspecified organism"),
    ("L30.9", "Dermatitis, unspecified"),
    ("M25.561", "Pain in right knee"),
    ("H10.9", "Unspecified conjunctivitis"),
)
# Medications no rule reads (RxNorm ingredients), ordered over the years.
UNRELATED_MEDICATIONS = (
    ("17767", "amlodipine"),
    ("83367", "atorvastatin"),
    ("7646", "omeprazole"),
    ("161", "acetaminophen"),
    ("723", "amoxicillin"),
    ("41493", "meloxicam"),
    ("10582", "levothyroxine"),
    ("36437", "sertraline"),
    ("435", "albuterol"),
    ("2551", "ciprofloxacin"),
)
PRIVIGEN = {
    "coding": [{"system": CVX, "code": "87", "display": "immune globulin, intravenous"}],
    "text": "Privigen (immune globulin intravenous, human) 10 % solution",
}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class History:
    """Builds the history resources of one patient, each with an id, `meta` and an identifier."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.scenario = scenario
        self.subject = {"reference": f"Patient/{scenario.patient_id}"}
        self.random = random.Random(seed)
        self.resources: list[dict[str, Any]] = []

    def _add(self, resource: dict[str, Any], when: datetime) -> None:
        n = len(self.resources)
        resource["id"] = f"{self.scenario.id.lower()}-h{n:05d}"
        resource["meta"] = {"versionId": "1", "lastUpdated": _iso(when + timedelta(hours=1))}
        resource["identifier"] = [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": f"H{n:07d}"}]
        self.resources.append(resource)

    def ago(self, **delta: float) -> datetime:
        return self.scenario.as_of - timedelta(**delta)

    def observation(
        self, code: str, display: str, value: float, unit: str, when: datetime, *, vital: bool = False
    ) -> None:
        self._add(
            {
                "resourceType": "Observation",
                "status": "final",
                "category": [VITALS if vital else LAB],
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
                "subject": self.subject,
                "effectiveDateTime": _iso(when),
                "issued": _iso(when + timedelta(hours=2)),
                "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
                "referenceRange": [{"text": "see laboratory"}],
            },
            when,
        )

    def platelet_counts(self, count: int, spacing_days: float, start_days: float, low: float, high: float) -> None:
        """`count` counts, one every `spacing_days`, the newest `start_days` ago, within [low, high]."""
        for i in range(count):
            when = self.ago(days=start_days + i * spacing_days, hours=self.random.uniform(0, 6))
            value = round(self.random.uniform(low, high))
            self.observation("777-3", "Platelets [#/volume] in Blood by Automated count", value, "10*3/uL", when)

    def condition(self, code: str, display: str, onset: datetime, status: str = "active") -> None:
        self._add(
            {
                "resourceType": "Condition",
                "clinicalStatus": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": status}]
                },
                "verificationStatus": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}
                    ]
                },
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                "code": "encounter-diagnosis",
                            }
                        ]
                    }
                ],
                "code": {"coding": [{"system": ICD10, "code": code, "display": display}], "text": display},
                "subject": self.subject,
                "onsetDateTime": _iso(onset),
                "recordedDate": _iso(onset + timedelta(hours=3)),
            },
            onset,
        )

    def medication_request(self, concept: dict[str, Any], status: str, authored: datetime, text: str) -> None:
        self._add(
            {
                "resourceType": "MedicationRequest",
                "status": status,
                "intent": "order",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                                "code": "outpatient",
                            }
                        ]
                    }
                ],
                "medicationCodeableConcept": concept,
                "subject": self.subject,
                "authoredOn": _iso(authored),
                "dosageInstruction": [{"text": text}],
            },
            authored,
        )

    def ivig_course(self, when: datetime, g_per_kg: float, weight: float) -> None:
        """An IVIG order and its administration, both completed."""
        self.medication_request(PRIVIGEN, "completed", when - timedelta(hours=20), f"{g_per_kg:g} g/kg IV once")
        self._add(
            {
                "resourceType": "MedicationAdministration",
                "status": "completed",
                "medicationCodeableConcept": PRIVIGEN,
                "subject": self.subject,
                "effectivePeriod": {"start": _iso(when), "end": _iso(when + timedelta(hours=4))},
                "dosage": {
                    "route": {"coding": [{"system": SNOMED, "code": "47625008", "display": "Intravenous route"}]},
                    "dose": {"value": round(g_per_kg * weight), "unit": "g", "system": UCUM, "code": "g"},
                },
            },
            when,
        )

    def routine_history(self, years: float, weight: float, height: float) -> None:
        """Weights, heights, renal results, diagnoses, medications and an allergy no rule acts on."""
        days = int(years * 365)
        for month in range(1, int(years * 12)):  # monthly weights, all older than the scenario's own
            when = self.ago(days=30 * month + 5)
            value = round(weight + self.random.uniform(-2, 2), 1)
            self.observation("29463-7", "Body weight", value, "kg", when, vital=True)
        for year in range(1, int(years) + 1):
            self.observation("8302-2", "Body height", height, "cm", self.ago(days=365 * year), vital=True)
        for quarter in range(1, int(years * 4)):
            when = self.ago(days=91 * quarter + 10)
            self.observation(
                "98979-8",
                "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by "
                "Creatinine-based formula (CKD-EPI 2021)",
                round(self.random.uniform(85, 110)),
                "mL/min/{1.73_m2}",
                when,
            )
            self.observation(
                "2160-0",
                "Creatinine [Mass/volume] in Serum or Plasma",
                round(self.random.uniform(0.6, 0.9), 2),
                "mg/dL",
                when,
            )
        for i in range(3 * len(UNRELATED_CONDITIONS)):
            code, display = UNRELATED_CONDITIONS[i % len(UNRELATED_CONDITIONS)]
            onset = self.ago(days=self.random.uniform(20, days))
            self.condition(code, display, onset, status="resolved" if i % 3 else "active")
        for i in range(4 * len(UNRELATED_MEDICATIONS)):
            code, name = UNRELATED_MEDICATIONS[i % len(UNRELATED_MEDICATIONS)]
            authored = self.ago(days=self.random.uniform(10, days))
            concept = {"coding": [{"system": RXNORM, "code": code, "display": name}], "text": name}
            self.medication_request(concept, "completed" if i % 4 else "active", authored, f"{name} as directed")
        for course in range(1, int(years * 2)):  # completed prednisone courses: corticosteroids, not active
            authored = self.ago(days=180 * course + 40)
            concept = {"coding": [{"system": RXNORM, "code": "8640", "display": "prednisone"}], "text": "prednisone"}
            self.medication_request(concept, "completed", authored, "prednisone 1 mg/kg daily for 2 weeks, taper")
        self._add(
            {
                "resourceType": "AllergyIntolerance",
                "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]},
                "verificationStatus": {"coding": [{"system": ALLERGY_VERIFICATION, "code": "confirmed"}]},
                "type": "allergy",
                "category": ["medication"],
                "criticality": "low",
                "code": {
                    "coding": [{"system": RXNORM, "code": "7980", "display": "penicillin G"}],
                    "text": "Penicillin",
                },
                "patient": self.subject,
                "reaction": [{"manifestation": [{"text": "Rash"}]}],
            },
            self.ago(days=days),
        )


def _padded(base: Scenario, history: History, suffix: str) -> Scenario:
    record = {**base.record, "entry": [*base.record["entry"], *({"resource": r} for r in history.resources)]}
    return replace(base, id=f"{base.id}-{suffix}", title=f"{base.title} (realistic chart: {suffix})", record=record)


def chronic_itp(counts: int = 600, spacing_days: float = 3.0, years: float = 5.0, seed: int = 1) -> Scenario:
    """P01 (platelets 10, intracranial haemorrhage, IVIG ordered) after `years` of chronic ITP:
    `counts` older platelet counts one every `spacing_days`, IVIG courses twice a year, and the rest."""
    base = fhir_fixtures.load("P01")
    history = History(base, seed)
    history.platelet_counts(counts, spacing_days, start_days=2, low=15, high=140)
    history.routine_history(years, weight=70, height=165)
    for course in range(2, int(years * 2) + 1):  # the scenario's own prior course is a year ago
        history.ivig_course(history.ago(days=182 * course + 11), 1.0, 70)
    return _padded(base, history, f"chronic-itp-{counts}")


def cidp_maintenance(years: float = 4.0, seed: int = 2) -> Scenario:
    """P36 (CIDP, platelets 250, eGFR 40, IVIG ordered) on maintenance IVIG 1 g/kg every 3 weeks."""
    base = fhir_fixtures.load("P36")
    history = History(base, seed)
    history.platelet_counts(int(years * 17), 21, start_days=21, low=190, high=320)
    history.routine_history(years, weight=70, height=165)
    for dose in range(1, int(years * 365 / 21)):
        history.ivig_course(history.ago(days=21 * dose), 1.0, 70)
    return _padded(base, history, "cidp-maintenance")


def neonate(seed: int = 3) -> Scenario:
    """P30 (2-day-old, platelets 18, IVIG 0.4 g/kg/day × 5): a neonate's short but busy record."""
    base = fhir_fixtures.load("P30")
    history = History(base, seed)
    history.platelet_counts(6, 0.25, start_days=0.5, low=18, high=60)
    for hours in (6, 18, 30, 42):
        history.observation("29463-7", "Body weight", 3.2, "kg", history.ago(hours=hours), vital=True)
    history.condition("P07.38", "Preterm newborn, gestational age 35 completed weeks", history.ago(days=2))
    return _padded(base, history, "neonate")


REALISTIC: dict[str, Callable[[], Scenario]] = {
    "chronic-itp": chronic_itp,
    "cidp-maintenance": cidp_maintenance,
    "neonate": neonate,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print a realistic chart as a FHIR transaction.")
    parser.add_argument("chart", choices=sorted(REALISTIC))
    parser.add_argument("--counts", type=int, default=600, help="chronic-itp: platelet counts in the history")
    args = parser.parse_args(argv)
    scenario = chronic_itp(args.counts) if args.chart == "chronic-itp" else REALISTIC[args.chart]()
    json.dump(scenario.transaction(), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
