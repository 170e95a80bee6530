"""Variants of a public scenario for boundary tests: change one fact, keep everything else."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from typing import Any

import fhir_fixtures
from fhir_fixtures import Scenario
from hooks import terminology as t
from hooks.fhir_model import parse_resource


def _iso(scenario: Scenario, hours_ago: float) -> str:
    return (scenario.as_of - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")


def variant(
    sid: str,
    *,
    plt: float | None = None,
    plt_unit: str | None = "10*3/uL",
    plt_hours_ago: float | None = None,
    weight: float | None = None,
    height: float | None = None,
    egfr: float | None = None,
    iga: float | None = None,
    values: dict[str, float] | None = None,
    patch: dict[str, dict[str, Any]] | None = None,
    born: date | None = None,
    drop: tuple[str, ...] = (),
    add: tuple[dict[str, Any], ...] = (),
    draft: dict[str, Any] | None = None,
) -> Scenario:
    """Scenario `sid` with the named facts changed (values in the fixture's own units)."""
    base = fhir_fixtures.load(sid)
    record = copy.deepcopy(base.record)
    resources = {r["id"].split("-", 1)[1]: r for r in (e["resource"] for e in record["entry"]) if "-" in r["id"]}

    def quantity(name: str) -> dict[str, Any]:
        return resources[name]["valueQuantity"]

    if plt is not None:
        q = quantity("plt")
        q["value"] = plt
        if plt_unit is None:
            for key in ("unit", "code", "system"):
                q.pop(key, None)
        else:
            q.update(unit=plt_unit, code=plt_unit, system="http://unitsofmeasure.org")
    if plt_hours_ago is not None:
        resources["plt"]["effectiveDateTime"] = _iso(base, plt_hours_ago)
    if weight is not None:
        quantity("weight")["value"] = weight
    if height is not None:
        quantity("height")["value"] = height
    if egfr is not None:
        quantity("egfr")["value"] = egfr
    if iga is not None:
        quantity("iga")["value"] = iga
    for name, value in (values or {}).items():  # any other Observation, by the name after its id's prefix
        quantity(name)["value"] = value
    for name, fields in (patch or {}).items():  # any resource's fields, by the same name
        resources[name].update(copy.deepcopy(fields))
    if born is not None:
        patient = next(e["resource"] for e in record["entry"] if e["resource"]["resourceType"] == "Patient")
        patient["birthDate"] = born.isoformat()
    record["entry"] = [e for e in record["entry"] if not any(e["resource"]["id"].endswith("-" + name) for name in drop)]
    for resource in add:
        resource = copy.deepcopy(resource)
        if "patient" not in resource:  # AllergyIntolerance names its patient so; the others, subject
            resource.setdefault("subject", {"reference": f"Patient/{base.patient_id}"})
        record["entry"].append({"resource": resource})
    draft_orders = copy.deepcopy(base.draft_orders)
    if draft is not None:
        for entry in draft_orders["entry"]:
            entry["resource"] = {**entry["resource"], **draft}
    return Scenario(
        id=f"{sid}-variant",
        title="variant",
        as_of=base.as_of,
        hook=base.hook,
        record=record,
        draft_orders=draft_orders,
        selections=base.selections,
        expected=(),
    )


def condition(cid: str, system: str, code: str, display: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "clinicalStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
        },
        "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
    }


GI_BLEED = condition("v-gi", "http://snomed.info/sct", "74474003", "Gastrointestinal hemorrhage")
ICH = condition("v-ich", "http://hl7.org/fhir/sid/icd-10-cm", "I61.9", "Nontraumatic intracerebral hemorrhage")


def without_included_medications(scenario: Scenario, templates: dict[str, str]) -> dict[str, Any]:
    """A prefetch as a client that ignores `_include` sends it: the referenced Medications are left out."""
    request = scenario.prefetch_request(templates)
    for value in request["prefetch"].values():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            value["entry"] = [e for e in value.get("entry", []) if e["resource"]["resourceType"] != "Medication"]
    return request


# --- IVIG orders for the dose reader, without the app ---------------------------------------------


def dosage(value: float, unit: str, repeat: dict[str, Any]) -> list[dict[str, Any]]:
    """An IV dosage instruction: `value` `unit` per dose, on the schedule `repeat`."""
    return [
        {
            "timing": {"repeat": repeat},
            "route": {"coding": [{"system": t.SNOMED, "code": "47625008", "display": "Intravenous route"}]},
            "doseAndRate": [{"doseQuantity": {"value": value, "unit": unit, "system": t.UCUM, "code": unit}}],
        }
    ]


def ivig_request(repeat: dict[str, Any], value: float = 0.4, unit: str = "g/kg") -> Any:
    """A parsed IVIG draft (Privigen) dosed `value` `unit` on the schedule `repeat`."""
    return parse_resource(
        {
            "resourceType": "MedicationRequest",
            "status": "draft",
            "intent": "order",
            "subject": {"reference": "Patient/p"},
            "medicationCodeableConcept": {"text": "Privigen"},
            "dosageInstruction": dosage(value, unit, repeat),
        }
    )
