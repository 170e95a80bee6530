"""Writes `scenarios/*.json` from the definitions below: `python -m fhir_fixtures.build`.

Why generated: 36+ scenarios share one default patient (SCENARIOS.md) and differ in a line or two.
Writing each by hand would hide those differences in thousands of lines of JSON; here each
scenario reads like its row. The JSON files are committed (they are what the tests, the curl
example and a sandbox FHIR server load), and `tests/test_fixtures.py` fails if they drift from
these definitions.

Default patient (SCENARIOS.md): woman, 40, ITP, 70 kg weighed 2 days ago, 165 cm, eGFR 95 three
days ago, IgA 210 mg/dL before any IVIG, platelet count (777-3, 10*3/uL) 6 hours ago, a prior IVIG
course a year ago; draft order Privigen 1 g/kg once IV. The rows do not give a default platelet
count: 40 ×10^9/L is used (grade 3, ITP needing treatment).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fhir_fixtures import SCENARIO_DIR

AS_OF = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
UCUM = "http://unitsofmeasure.org"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ago(**delta: float) -> str:
    return iso(AS_OF - timedelta(**delta))


def ahead(**delta: float) -> str:
    return iso(AS_OF + timedelta(**delta))


@dataclass
class Chart:
    """A mutable patient record being built for one scenario."""

    sid: str
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    drafts: list[dict[str, Any]] = field(default_factory=list)
    hook: str = "order-sign"
    selections: list[str] = field(default_factory=list)

    @property
    def pid(self) -> str:
        return f"pat-{self.sid.lower()}"

    @property
    def subject(self) -> dict[str, str]:
        return {"reference": f"Patient/{self.pid}"}

    def rid(self, name: str) -> str:
        return f"{self.sid.lower()}-{name}"

    def add(self, name: str, resource: dict[str, Any]) -> None:
        resource["id"] = self.rid(name) if resource["resourceType"] != "Patient" else self.pid
        self.resources[name] = resource

    def drop(self, name: str) -> None:
        del self.resources[name]

    # -- builders ---------------------------------------------------------------------------
    def patient(self, gender: str, birth: date) -> None:
        self.add("patient", {"resourceType": "Patient", "gender": gender, "birthDate": birth.isoformat()})

    def observation(
        self,
        name: str,
        code: str,
        display: str,
        value: float | None,
        unit: str | None,
        when: str,
        *,
        ucum: bool = True,
    ) -> None:
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "vital-signs" if code in ("29463-7", "8302-2") else "laboratory",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
            "subject": self.subject,
            "effectiveDateTime": when,
        }
        if value is not None:
            quantity: dict[str, Any] = {"value": value}
            if unit is not None:
                quantity["unit"] = unit
                if ucum:
                    quantity["system"] = UCUM
                    quantity["code"] = unit
            resource["valueQuantity"] = quantity
        self.add(name, resource)

    def coded_observation(self, name: str, code: str, display: str, answer: dict[str, Any], when: str) -> None:
        self.add(
            name,
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                "subject": self.subject,
                "effectiveDateTime": when,
                **answer,
            },
        )

    def platelets(self, name: str, value: float | None, unit: str | None = "10*3/uL", when: str | None = None) -> None:
        self.observation(
            name,
            "777-3",
            "Platelets [#/volume] in Blood by Automated count",
            value,
            unit,
            when or ago(hours=6),
        )

    def condition(
        self,
        name: str,
        system: str | None,
        code: str | None,
        display: str,
        *,
        onset: str | None = None,
        status: str = "active",
    ) -> None:
        concept: dict[str, Any] = {"text": display}
        if system and code:
            concept["coding"] = [{"system": system, "code": code, "display": display}]
        self.add(
            name,
            {
                "resourceType": "Condition",
                "clinicalStatus": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": status}]
                },
                "verificationStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                            "code": "confirmed",
                        }
                    ]
                },
                "code": concept,
                "subject": self.subject,
                **({"onsetDateTime": onset} if onset else {}),
            },
        )

    def medication_request(
        self, name: str, medication: dict[str, Any], status: str, authored: str, dosage: list | None = None
    ) -> dict:
        resource = {
            "resourceType": "MedicationRequest",
            "status": status,
            "intent": "order",
            "medicationCodeableConcept": medication,
            "subject": self.subject,
            "authoredOn": authored,
        }
        if dosage:
            resource["dosageInstruction"] = dosage
        self.add(name, resource)
        return resource

    def draft(self, resource: dict[str, Any], name: str) -> None:
        resource = dict(resource)
        resource["id"] = self.rid(name)
        resource["subject"] = self.subject
        resource["encounter"] = {"reference": f"Encounter/enc-{self.sid.lower()}"}
        self.drafts.append(resource)
        self.selections.append(f"{resource['resourceType']}/{resource['id']}")


PRIVIGEN = {
    "coding": [{"system": ATC, "code": "J06BA02", "display": "immunoglobulins, normal human, for intravascular adm."}],
    "text": "Privigen (immune globulin intravenous, human) 10 % solution",
}
IV_ROUTE = {"coding": [{"system": SNOMED, "code": "47625008", "display": "Intravenous route"}]}


def ivig_dosage(value: float, unit: str, days: int) -> list[dict[str, Any]]:
    text = f"{value:g} {unit} IV " + (f"daily for {days} days" if days > 1 else "once")
    return [
        {
            "text": text,
            "timing": {"repeat": {"count": days, "frequency": 1, "period": 1, "periodUnit": "d"}},
            "route": IV_ROUTE,
            "doseAndRate": [{"doseQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}],
        }
    ]


def ivig_order(value: float = 1, unit: str = "g/kg", days: int = 1, medication: dict | None = None) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        "priority": "routine",
        "medicationCodeableConcept": medication or PRIVIGEN,
        "dosageInstruction": ivig_dosage(value, unit, days),
    }


def platelet_order() -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "priority": "urgent",
        "code": {
            "coding": [
                {
                    "system": SNOMED,
                    "code": "180208003",
                    "display": "Intravenous blood transfusion of platelets",
                }
            ],
            "text": "Platelet transfusion, 1 adult dose",
        },
    }


def medication_order(rxnorm: str, display: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": rxnorm, "display": display}],
            "text": text,
        },
    }


def default_chart(sid: str, plt: float | None = 40) -> Chart:
    chart = Chart(sid)
    chart.patient("female", date(1986, 3, 15))
    chart.condition("itp", SNOMED, "32273002", "Immune thrombocytopenic purpura", onset="2024-01-10")
    chart.observation("weight", "29463-7", "Body weight", 70, "kg", ago(days=2))
    chart.observation("height", "8302-2", "Body height", 165, "cm", ago(days=2))
    chart.observation(
        "egfr",
        "98979-8",
        "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by "
        "Creatinine-based formula (CKD-EPI 2021)",
        95,
        "mL/min/{1.73_m2}",
        ago(days=3),
    )
    chart.observation("iga", "2458-8", "IgA [Mass/volume] in Serum or Plasma", 210, "mg/dL", "2025-05-20T09:00:00Z")
    if plt is not None:
        chart.platelets("plt", plt)
    chart.medication_request("prior-ivig", PRIVIGEN, "completed", "2025-06-01T10:00:00Z", ivig_dosage(1, "g/kg", 1))
    return chart


def with_ivig(chart: Chart, **order: Any) -> Chart:
    chart.draft(ivig_order(**order), "ivig-draft")
    return chart


def gi_bleed(chart: Chart) -> None:
    chart.condition("gi-bleed", SNOMED, "74474003", "Gastrointestinal hemorrhage", onset=ago(hours=10))


def ich(chart: Chart) -> None:
    chart.condition("ich", SNOMED, "1386000", "Intracranial hemorrhage", onset=ago(hours=3))


def pregnant(chart: Chart, weeks: int, delivery_in_days: int) -> None:
    chart.coded_observation(
        "pregnancy-status",
        "82810-3",
        "Pregnancy status",
        {"valueCodeableConcept": {"coding": [{"system": LOINC, "code": "LA15173-0", "display": "Pregnant"}]}},
        ago(days=7),
    )
    chart.coded_observation(
        "edd",
        "11778-8",
        "Delivery date Estimated",
        {"valueDateTime": ahead(days=delivery_in_days)[:10]},
        ago(days=7),
    )


Definition = Callable[[], Chart]
SCENARIOS: dict[str, tuple[str, Definition, list[tuple[str, str]]]] = {}


def scenario(sid: str, title: str, expected: list[tuple[str, str]]) -> Callable[[Definition], Definition]:
    def register(function: Definition) -> Definition:
        SCENARIOS[sid] = (title, function, expected)
        return function

    return register


DOSE_OK = ("dose-check", "info")
THRESHOLD = ("treatment-threshold", "info")


@scenario("P01", "PLT 10, intracranial haemorrhage; IVIG", [("critical-bleeding", "critical"), DOSE_OK])
def p01() -> Chart:
    chart = with_ivig(default_chart("P01", plt=10))
    ich(chart)
    return chart


@scenario("P02", "PLT 24, GI bleed; IVIG", [("bleeding-with-low-platelets", "warning"), DOSE_OK])
def p02() -> Chart:
    chart = with_ivig(default_chart("P02", plt=24))
    gi_bleed(chart)
    return chart


@scenario("P03", "PLT 25, GI bleed; IVIG", [("bleeding-with-low-platelets", "warning"), DOSE_OK])
def p03() -> Chart:
    chart = with_ivig(default_chart("P03", plt=25))
    gi_bleed(chart)
    return chart


@scenario("P04", "PLT 25, no bleeding; IVIG", [THRESHOLD, DOSE_OK])
def p04() -> Chart:
    return with_ivig(default_chart("P04", plt=25))


@scenario("P05", "PLT 30, no bleeding; IVIG", [THRESHOLD, DOSE_OK])
def p05() -> Chart:
    return with_ivig(default_chart("P05", plt=30))


@scenario("P06", "PLT 49, haematuria; IVIG", [("bleeding-with-low-platelets", "warning"), DOSE_OK])
def p06() -> Chart:
    chart = with_ivig(default_chart("P06", plt=49))
    chart.condition("hematuria", SNOMED, "34436003", "Blood in urine", onset=ago(hours=20))
    return chart


@scenario("P07", "PLT 74, no bleeding; IVIG", [THRESHOLD, DOSE_OK])
def p07() -> Chart:
    return with_ivig(default_chart("P07", plt=74))


@scenario("P08", "PLT 100; IVIG", [("no-thrombocytopenia", "info"), DOSE_OK])
def p08() -> Chart:
    return with_ivig(default_chart("P08", plt=100))


@scenario("P09", "PLT 25000 /uL, GI bleed; IVIG", [("bleeding-with-low-platelets", "warning"), DOSE_OK])
def p09() -> Chart:
    chart = with_ivig(default_chart("P09", plt=None))
    chart.platelets("plt", 25000, "/uL")
    gi_bleed(chart)
    return chart


@scenario("P10", "PLT 25 10*9/L, GI bleed; IVIG", [("bleeding-with-low-platelets", "warning"), DOSE_OK])
def p10() -> Chart:
    chart = with_ivig(default_chart("P10", plt=None))
    chart.platelets("plt", 25, "10*9/L")
    gi_bleed(chart)
    return chart


@scenario("P11", "PLT 25 with no unit; IVIG", [("data-quality", "warning"), DOSE_OK])
def p11() -> Chart:
    chart = with_ivig(default_chart("P11", plt=None))
    chart.platelets("plt", 25, None)
    return chart


@scenario("P12", "PLT 20 drawn 10 days ago, no bleeding; IVIG", [("data-quality", "warning"), DOSE_OK])
def p12() -> Chart:
    chart = with_ivig(default_chart("P12", plt=None))
    chart.platelets("plt", 20, when=ago(days=10))
    return chart


@scenario("P13", "no platelet count ever; IVIG", [("no-platelet-count", "warning"), DOSE_OK])
def p13() -> Chart:
    return with_ivig(default_chart("P13", plt=None))


@scenario("P14", "no weight on record; IVIG", [("dose-check", "warning"), THRESHOLD])
def p14() -> Chart:
    chart = with_ivig(default_chart("P14"))
    chart.drop("weight")
    return chart


@scenario("P15", "120 kg, 165 cm; IVIG (adjusted dosing weight)", [DOSE_OK, THRESHOLD])
def p15() -> Chart:
    chart = with_ivig(default_chart("P15"))
    chart.observation("weight", "29463-7", "Body weight", 120, "kg", ago(days=2))
    return chart


@scenario("P16", "eGFR 25; IVIG", [("ivig-safety", "warning"), THRESHOLD, DOSE_OK])
def p16() -> Chart:
    chart = with_ivig(default_chart("P16"))
    chart.resources["egfr"]["valueQuantity"]["value"] = 25
    return chart


@scenario(
    "P17",
    "no creatinine or eGFR in 30 days, no risk factor; IVIG",
    [("renal-baseline", "info"), THRESHOLD, DOSE_OK],
)
def p17() -> Chart:
    chart = with_ivig(default_chart("P17"))
    chart.resources["egfr"]["effectiveDateTime"] = ago(days=45)
    return chart


@scenario("P18", "history of DVT (Z86.718); IVIG", [("ivig-safety", "warning"), THRESHOLD, DOSE_OK])
def p18() -> Chart:
    chart = with_ivig(default_chart("P18"))
    chart.condition(
        "dvt-history",
        ICD10,
        "Z86.718",
        "Personal history of other venous thrombosis and embolism",
        status="resolved",
    )
    return chart


@scenario(
    "P19",
    "IgA deficiency (D80.2), anti-IgA antibodies, prior anaphylaxis; Privigen",
    [("iga-deficiency", "critical"), ("prior-ivig-anaphylaxis", "critical"), THRESHOLD, DOSE_OK],
)
def p19() -> Chart:
    chart = with_ivig(default_chart("P19"))
    chart.drop("iga")
    chart.condition(
        "iga-deficiency", ICD10, "D80.2", "Selective deficiency of immunoglobulin A [IgA]", onset="2020-02-01"
    )
    chart.condition("anti-iga", None, None, "Anti-IgA antibodies present", onset="2025-06-02")
    chart.add(
        "ivig-allergy",
        {
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]},
            "verificationStatus": {"coding": [{"system": ALLERGY_VERIFICATION, "code": "confirmed"}]},
            "type": "allergy",
            "category": ["medication"],
            "criticality": "high",
            "code": {"text": "Immune globulin intravenous (human)"},
            "patient": chart.subject,
            "reaction": [
                {"manifestation": [{"coding": [{"system": SNOMED, "code": "39579001", "display": "Anaphylaxis"}]}]}
            ],
        },
    )
    return chart


@scenario("P20", "IgA 5 mg/dL; IVIG", [("iga-deficiency", "warning"), THRESHOLD, DOSE_OK])
def p20() -> Chart:
    chart = with_ivig(default_chart("P20"))
    chart.resources["iga"]["valueQuantity"]["value"] = 5
    return chart


@scenario("P21", "no prior IVIG, no IgA result; IVIG", [("iga-screening", "info"), THRESHOLD, DOSE_OK])
def p21() -> Chart:
    chart = with_ivig(default_chart("P21"))
    chart.drop("iga")
    chart.drop("prior-ivig")
    return chart


@scenario("P22", "IVIG given 12 hours ago; IVIG", [("duplicate-ivig", "warning"), THRESHOLD, DOSE_OK])
def p22() -> Chart:
    chart = with_ivig(default_chart("P22"))
    chart.add(
        "recent-ivig",
        {
            "resourceType": "MedicationAdministration",
            "status": "completed",
            "medicationCodeableConcept": PRIVIGEN,
            "subject": chart.subject,
            "effectiveDateTime": ago(hours=12),
        },
    )
    return chart


@scenario(
    "P23",
    "PLT 15, GI bleed; IVIG 0.4 g/kg/day × 5 days",
    [("rapid-regimen", "warning"), ("bleeding-with-low-platelets", "warning"), DOSE_OK],
)
def p23() -> Chart:
    chart = with_ivig(default_chart("P23", plt=15), value=0.4, days=5)
    gi_bleed(chart)
    return chart


@scenario(
    "P24",
    "pregnant 34 weeks, PLT 45, nadir 28, IPF 12 %; IVIG",
    [
        ("pregnancy", "info"),
        ("pregnancy-response-predictors", "info"),
        ("ivig-safety", "warning"),
        THRESHOLD,
        DOSE_OK,
    ],
)
def p24() -> Chart:
    chart = with_ivig(default_chart("P24", plt=45))
    pregnant(chart, weeks=34, delivery_in_days=42)
    chart.platelets("plt-nadir", 28, when=ago(days=20))
    chart.observation(
        "ipf",
        "71693-6",
        "Platelets reticulated/100 platelets in Blood by Automated count",
        12,
        "%",
        ago(hours=6),
    )
    return chart


@scenario(
    "P25",
    "pregnant 38 weeks, PLT 45, delivery planned this week; IVIG",
    [
        ("pregnancy", "warning"),
        ("pregnancy-response-predictors", "info"),
        ("ivig-safety", "warning"),
        THRESHOLD,
        DOSE_OK,
    ],
)
def p25() -> Chart:
    chart = with_ivig(default_chart("P25", plt=45))
    pregnant(chart, weeks=38, delivery_in_days=5)
    return chart


def hit_chart(sid: str) -> Chart:
    chart = default_chart(sid)
    chart.drop("itp")
    chart.condition("hit", ICD10, "D75.822", "Immune-mediated heparin-induced thrombocytopenia", onset=ago(days=4))
    return chart


@scenario("P26", "HIT (D75.822); heparin flush", [("hit-heparin", "critical")])
def p26() -> Chart:
    chart = hit_chart("P26")
    chart.draft(medication_order("5224", "heparin", "Heparin lock flush 100 units/mL, 5 mL IV"), "heparin-draft")
    return chart


@scenario("P27", "HIT, no bleeding; platelet transfusion", [("hit-platelet-transfusion", "warning")])
def p27() -> Chart:
    chart = hit_chart("P27")
    chart.draft(platelet_order(), "platelet-draft")
    return chart


@scenario("P28", "HIT; IVIG", [("hit-ivig", "warning"), ("ivig-safety", "warning"), DOSE_OK])
def p28() -> Chart:
    return with_ivig(hit_chart("P28"))


@scenario("P29", "sepsis with DIC; IVIG", [("sepsis", "warning"), ("ivig-safety", "warning"), DOSE_OK])
def p29() -> Chart:
    chart = with_ivig(default_chart("P29"))
    chart.drop("itp")
    chart.condition("thrombocytopenia", ICD10, "D69.6", "Thrombocytopenia, unspecified", onset=ago(days=2))
    chart.condition("sepsis", ICD10, "A41.9", "Sepsis, unspecified organism", onset=ago(days=3))
    chart.condition("dic", ICD10, "D65", "Disseminated intravascular coagulation", onset=ago(days=1))
    return chart


@scenario(
    "P30",
    "neonate 2 days old, PLT 18; IVIG 0.4 g/kg/day × 5",
    [("neonatal", "info"), ("renal-baseline", "info"), DOSE_OK],
)
def p30() -> Chart:
    chart = Chart("P30")
    chart.patient("male", (AS_OF - timedelta(days=2)).date())
    chart.condition("nait", ICD10, "P61.0", "Transient neonatal thrombocytopenia", onset=ago(days=1))
    chart.observation("weight", "29463-7", "Body weight", 3.2, "kg", ago(days=1))
    chart.platelets("plt", 18)
    return with_ivig(chart, value=0.4, days=5)


@scenario("P31", "child 6 years, PLT 8, bruising only; IVIG", [("pediatric-itp", "info"), DOSE_OK])
def p31() -> Chart:
    chart = with_ivig(default_chart("P31", plt=8))
    chart.patient("male", date(2020, 3, 1))
    chart.observation("weight", "29463-7", "Body weight", 20, "kg", ago(days=1))
    chart.observation("height", "8302-2", "Body height", 115, "cm", ago(days=1))
    chart.condition("bruising", SNOMED, "302227002", "Ecchymosis", onset=ago(days=2))
    return chart


@scenario("P32", "PLT 12, intracranial haemorrhage; platelet transfusion only", [("critical-bleeding", "critical")])
def p32() -> Chart:
    chart = default_chart("P32", plt=12)
    ich(chart)
    chart.draft(platelet_order(), "platelet-draft")
    return chart


@scenario(
    "P33",
    "PLT 15, no bleeding, no procedure; platelet transfusion",
    [("transfusion-without-bleeding", "info")],
)
def p33() -> Chart:
    chart = default_chart("P33", plt=15)
    chart.draft(platelet_order(), "platelet-draft")
    return chart


@scenario("P34", "HCV-associated ITP; IVIG", [("secondary-itp", "info"), THRESHOLD, DOSE_OK])
def p34() -> Chart:
    chart = with_ivig(default_chart("P34"))
    chart.condition("hcv", ICD10, "B18.2", "Chronic viral hepatitis C", onset="2019-05-01")
    return chart


@scenario("P35", "PLT 10; amoxicillin", [])
def p35() -> Chart:
    chart = default_chart("P35", plt=10)
    chart.draft(medication_order("723", "amoxicillin", "Amoxicillin 500 mg PO three times daily"), "amoxicillin-draft")
    return chart


@scenario("P36", "CIDP (no ITP), PLT 250, eGFR 40; IVIG", [("ivig-safety", "warning"), DOSE_OK])
def p36() -> Chart:
    chart = with_ivig(default_chart("P36", plt=250))
    chart.drop("itp")
    chart.condition(
        "cidp",
        SNOMED,
        "128209004",
        "Chronic inflammatory demyelinating polyradiculoneuropathy",
        onset="2023-09-01",
    )
    chart.resources["egfr"]["valueQuantity"]["value"] = 40
    return chart


# --- scenarios added beyond SCENARIOS.md (see the issue note) ------------------------------


@scenario(
    "P37",
    "PLT 45, urgent splenectomy ordered; IVIG 0.4 g/kg/day × 5",
    [("rapid-regimen", "warning"), THRESHOLD, DOSE_OK],
)
def p37() -> Chart:
    chart = with_ivig(default_chart("P37", plt=45), value=0.4, days=5)
    chart.draft(
        {
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "order",
            "priority": "urgent",
            "category": [{"coding": [{"system": SNOMED, "code": "387713003", "display": "Surgical procedure"}]}],
            "code": {"text": "Laparoscopic splenectomy"},
        },
        "surgery-draft",
    )
    return chart


@scenario(
    "P38",
    "PLT 8, intracranial haemorrhage; IVIG, prednisone and platelet transfusion all ordered",
    [("critical-bleeding", "info"), ("transfusion-with-ivig", "info"), DOSE_OK],
)
def p38() -> Chart:
    chart = with_ivig(default_chart("P38", plt=8))
    ich(chart)
    chart.draft(medication_order("8640", "prednisone", "Prednisone 70 mg PO daily"), "prednisone-draft")
    chart.draft(platelet_order(), "platelet-draft")
    return chart


@scenario("P39", "ITP, PLT 40; subcutaneous immune globulin (Hizentra)", [("subcutaneous-ig", "info")])
def p39() -> Chart:
    chart = default_chart("P39")
    chart.draft(
        {
            "resourceType": "MedicationRequest",
            "status": "draft",
            "intent": "order",
            "medicationCodeableConcept": {"text": "Hizentra (immune globulin subcutaneous, human) 20 %"},
        },
        "scig-draft",
    )
    return chart


@scenario("P40", "HIV-associated ITP, no bleeding; IVIG", [("secondary-itp", "info"), THRESHOLD, DOSE_OK])
def p40() -> Chart:
    chart = with_ivig(default_chart("P40"))
    chart.condition("hiv", ICD10, "B20", "Human immunodeficiency virus [HIV] disease", onset="2015-01-01")
    return chart


@scenario("P41", "age 70, PLT 40; IVIG", [("ivig-safety", "warning"), THRESHOLD, DOSE_OK])
def p41() -> Chart:
    chart = with_ivig(default_chart("P41"))
    chart.patient("female", date(1956, 2, 1))
    return chart


@scenario(
    "P42",
    "pregnant 30 weeks, PLT 80, IPF 20 %; IVIG",
    [
        ("pregnancy", "info"),
        ("pregnancy-response-predictors", "info"),
        ("ivig-safety", "warning"),
        THRESHOLD,
        DOSE_OK,
    ],
)
def p42() -> Chart:
    chart = with_ivig(default_chart("P42", plt=80))
    pregnant(chart, weeks=30, delivery_in_days=70)
    chart.observation(
        "ipf", "71693-6", "Platelets reticulated/100 platelets in Blood by Automated count", 20, "%", ago(hours=6)
    )
    return chart


@scenario("P43", "sepsis without DIC; IVIG", [("sepsis", "info"), ("ivig-safety", "warning"), DOSE_OK])
def p43() -> Chart:
    chart = with_ivig(default_chart("P43"))
    chart.drop("itp")
    chart.condition("thrombocytopenia", ICD10, "D69.6", "Thrombocytopenia, unspecified", onset=ago(days=2))
    chart.condition("sepsis", SNOMED, "91302008", "Sepsis", onset=ago(days=3))
    return chart


@scenario("P44", "PLT 5, GI bleed recorded as life-threatening; IVIG", [("critical-bleeding", "critical"), DOSE_OK])
def p44() -> Chart:
    chart = with_ivig(default_chart("P44", plt=5))
    gi_bleed(chart)
    chart.resources["gi-bleed"]["severity"] = {
        "coding": [{"system": SNOMED, "code": "442452003", "display": "Life threatening severity"}]
    }
    return chart


@scenario("P45", "on estradiol, PLT 40; IVIG", [("ivig-safety", "warning"), THRESHOLD, DOSE_OK])
def p45() -> Chart:
    chart = with_ivig(default_chart("P45"))
    chart.medication_request("estradiol", {"text": "Estradiol 1 mg tablet"}, "active", ago(days=60))
    return chart


@scenario(
    "P46",
    "IVIG given 24 hours ago, recorded against a Medication resource; IVIG",
    [("duplicate-ivig", "warning"), THRESHOLD, DOSE_OK],
)
def p46() -> Chart:
    chart = with_ivig(default_chart("P46"))
    chart.add("privigen", {"resourceType": "Medication", "code": PRIVIGEN})
    chart.add(
        "recent-ivig",
        {
            "resourceType": "MedicationAdministration",
            "status": "completed",
            "medicationReference": {"reference": f"Medication/{chart.rid('privigen')}"},
            "subject": chart.subject,
            "effectiveDateTime": ago(hours=24),
        },
    )
    return chart


from fhir_fixtures import scenarios_dosing  # noqa: E402, F401, I001  (registers P70–P89: issue 9 dosing classes)
from fhir_fixtures import scenarios_facts  # noqa: E402, F401  (registers P50–P69)


def to_json(sid: str) -> dict[str, Any]:
    title, definition, expected = SCENARIOS[sid]
    chart = definition()
    return {
        "id": sid,
        "title": title,
        "asOf": iso(AS_OF),
        "hook": chart.hook,
        "selections": chart.selections,
        "expected": [{"rule": rule, "indicator": indicator} for rule, indicator in expected],
        "record": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": r} for r in chart.resources.values()],
        },
        "draftOrders": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": d} for d in chart.drafts],
        },
    }


def render_all() -> dict[str, str]:
    return {f"{sid}.json": json.dumps(to_json(sid), indent=2, ensure_ascii=False) + "\n" for sid in SCENARIOS}


def main() -> int:
    SCENARIO_DIR.mkdir(exist_ok=True)
    files = render_all()
    for stale in SCENARIO_DIR.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        Path(SCENARIO_DIR, name).write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} scenarios to {SCENARIO_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
