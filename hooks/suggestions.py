"""FHIR resources a card may offer the clinician to accept with one click.

Every resource is built as R4 JSON from a fixed shape, references the patient and encounter, and is a
draft order: the clinician's acceptance, not this service, turns it into a real order. The shapes are
proven valid R4 by the tests (tests/test_suggestions_valid.py parses every suggestion of every
scenario and of generated charts with `fhir.resources`), not on every call: re-parsing our own
resources cost a quarter of a hook call. An `update` starts from the draft as read (`hooks/drafts.py`:
already parsed, repaired where it had to be), so it is valid too.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from hooks import terminology as t
from hooks.facts import PatientFacts
from hooks.findings import Action, Suggestion


def _context(facts: PatientFacts) -> dict[str, Any]:
    context: dict[str, Any] = {"subject": {"reference": f"Patient/{facts.patient_id}"}}
    if facts.encounter_id:
        context["encounter"] = {"reference": f"Encounter/{facts.encounter_id}"}
    return context


def order_service(facts: PatientFacts, code: t.Code, label: str, *, priority: str = "routine") -> Suggestion:
    """A draft ServiceRequest for `code` (a lab test, a platelet transfusion) as a one-click suggestion."""
    resource = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "priority": priority,
        "code": {"coding": [code.as_fhir()], "text": code.display},
        **_context(facts),
    }
    return Suggestion(label=label, actions=(Action("create", label, resource=resource),), recommended=True)


def platelet_transfusion(facts: PatientFacts) -> Suggestion:
    return order_service(facts, t.PLATELET_TRANSFUSION, "Order platelet transfusion (STAT)", priority="stat")


def _dose_quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": round(value, 1), "unit": unit, "system": t.UCUM, "code": unit}


def prednisone(facts: PatientFacts, dosing_weight_kg: float | None, mg_per_kg: float) -> Suggestion:
    """Prednisone by mouth once daily at `mg_per_kg` (rounded to 5 mg), capped by no maximum here.

    Without a weight the dose is left for the prescriber and the label says so.
    """
    dosage: dict[str, Any] = {
        "text": f"prednisone {mg_per_kg:g} mg/kg by mouth once daily",
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
        "route": {"coding": [{"system": t.SNOMED, "code": "26643006", "display": "Oral route"}]},
    }
    label = f"Start prednisone {mg_per_kg:g} mg/kg/day"
    if dosing_weight_kg is not None:
        mg = 5 * round(mg_per_kg * dosing_weight_kg / 5)
        dosage["doseAndRate"] = [{"doseQuantity": _dose_quantity(mg, "mg")}]
        dosage["text"] = f"prednisone {mg} mg by mouth once daily ({mg_per_kg:g} mg/kg × {dosing_weight_kg:.0f} kg)"
        label = f"Start prednisone {mg} mg daily ({mg_per_kg:g} mg/kg)"
    resource = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        "priority": "urgent",
        "medicationCodeableConcept": {"coding": [t.PREDNISONE.as_fhir()], "text": "prednisone"},
        **_context(facts),
        "dosageInstruction": [dosage],
    }
    return Suggestion(label=label, actions=(Action("create", label, resource=resource),), recommended=True)


def _ivig_dosage(grams: float | None, g_per_kg: float) -> dict[str, Any]:
    dosage: dict[str, Any] = {
        "text": f"immune globulin intravenous {g_per_kg:g} g/kg IV once",
        "timing": {"repeat": {"count": 1}},
        "route": {"coding": [{"system": t.SNOMED, "code": "47625008", "display": "Intravenous route"}]},
    }
    if grams is not None:
        dosage["doseAndRate"] = [{"doseQuantity": _dose_quantity(grams, "g")}]
        dosage["text"] = f"immune globulin intravenous {grams:.0f} g IV once ({g_per_kg:g} g/kg)"
    else:
        dosage["doseAndRate"] = [{"doseQuantity": _dose_quantity(g_per_kg, "g/kg")}]
    return dosage


def new_ivig(facts: PatientFacts, dosing_weight_kg: float | None, g_per_kg: float) -> Suggestion:
    grams = round(g_per_kg * dosing_weight_kg) if dosing_weight_kg is not None else None
    resource = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        "priority": "stat",
        "medicationCodeableConcept": {"text": "Immune globulin intravenous (human)"},
        **_context(facts),
        "dosageInstruction": [_ivig_dosage(grams, g_per_kg)],
    }
    amount = f"{grams} g" if grams is not None else f"{g_per_kg:g} g/kg"
    label = f"Order IVIG {amount} IV once ({g_per_kg:g} g/kg)"
    return Suggestion(label=label, actions=(Action("create", label, resource=resource),), recommended=True)


def revised_ivig(
    draft: Mapping[str, Any], dosing_weight_kg: float | None, g_per_kg: float, *, label: str
) -> Suggestion:
    """The draft order with its dose replaced by a single `g_per_kg` dose (an `update`)."""
    resource = copy.deepcopy(dict(draft))
    grams = round(g_per_kg * dosing_weight_kg) if dosing_weight_kg is not None else None
    resource["dosageInstruction"] = [_ivig_dosage(grams, g_per_kg)]
    return Suggestion(label=label, actions=(Action("update", label, resource=resource),), recommended=True)


def replace_product(draft: Mapping[str, Any], concept_text: str, *, label: str) -> Suggestion:
    """The draft order with its product replaced (used for an IgA-depleted IVIG)."""
    resource = copy.deepcopy(dict(draft))
    resource.pop("medicationReference", None)
    resource["medicationCodeableConcept"] = {"text": concept_text}
    return Suggestion(label=label, actions=(Action("update", label, resource=resource),), recommended=True)


def delete_order(reference: str, *, label: str) -> Suggestion:
    return Suggestion(label=label, actions=(Action("delete", label, resource_id=reference),), recommended=True)
