"""FHIR resources a card may offer the clinician to accept with one click.

Every resource is built as R4 JSON from a fixed shape, references the patient and encounter, and is a
draft order: the clinician's acceptance, not this service, turns it into a real order. The shapes are
proven valid R4 by the tests, not on every call (tests/test_card_quality.py parses every suggestion
of every scenario, tests/test_knowledge_fuzz.py those of generated charts, with `fhir.resources`):
re-parsing our own resources cost a quarter of a hook call. An `update` starts from the draft as
read (`hooks/drafts.py`: already parsed, repaired where it had to be), so it is valid too.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from hooks import terminology as t
from hooks.dose_rounding import ivig_grams, kg_text, steroid_mg
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
    """A UCUM dose; the value as given (already rounded by `hooks.dose_rounding`, never re-rounded here:
    rounding 0.18 g to one decimal would give a 0.45 kg infant 0.2 g, 11 % over its target)."""
    return {"value": value, "unit": unit, "system": t.UCUM, "code": unit}


def prednisone(facts: PatientFacts, dosing_weight_kg: float | None, mg_per_kg: float) -> Suggestion:
    """Prednisone by mouth once daily at `mg_per_kg`, rounded as RULES.md "Dose arithmetic" says.

    Without a weight the dose is left for the prescriber and the label says so.
    """
    dosage: dict[str, Any] = {
        "text": f"prednisone {mg_per_kg:g} mg/kg by mouth once daily",
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
        "route": {"coding": [{"system": t.SNOMED, "code": "26643006", "display": "Oral route"}]},
    }
    label = f"Start prednisone {mg_per_kg:g} mg/kg/day"
    if dosing_weight_kg is not None:
        dose = steroid_mg(mg_per_kg, dosing_weight_kg)
        dosage["doseAndRate"] = [{"doseQuantity": _dose_quantity(dose.amount, "mg")}]
        dosage["text"] = (
            f"prednisone {dose.text} by mouth once daily ({mg_per_kg:g} mg/kg × {kg_text(dosing_weight_kg)} kg, "
            f"{dose.rounding})"
        )
        label = f"Start prednisone {dose.text} daily ({mg_per_kg:g} mg/kg × {kg_text(dosing_weight_kg)} kg)"
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


def ivig_amount(dosing_weight_kg: float | None, g_per_kg: float) -> str:
    """ "70 g" (rounded to what a pharmacy gives), or "1 g/kg" without a weight: the words of a label."""
    if dosing_weight_kg is None:
        return f"{g_per_kg:g} g/kg"
    return ivig_grams(g_per_kg, dosing_weight_kg).text


def _ivig_dosage(dosing_weight_kg: float | None, g_per_kg: float, days: int = 1) -> dict[str, Any]:
    """IV immune globulin `g_per_kg` daily for `days` days, in grams when the weight is known."""
    schedule = "once" if days == 1 else f"daily for {days} days"
    repeat: dict[str, Any] = {"count": days}
    if days > 1:
        repeat.update(frequency=1, period=1, periodUnit="d")
    dosage: dict[str, Any] = {
        "text": f"immune globulin intravenous {g_per_kg:g} g/kg IV {schedule}",
        "timing": {"repeat": repeat},
        "route": {"coding": [{"system": t.SNOMED, "code": "47625008", "display": "Intravenous route"}]},
    }
    if dosing_weight_kg is not None:
        dose = ivig_grams(g_per_kg, dosing_weight_kg)
        dosage["doseAndRate"] = [{"doseQuantity": _dose_quantity(dose.amount, "g")}]
        dosage["text"] = (
            f"immune globulin intravenous {dose.text} IV {schedule} ({g_per_kg:g} g/kg × "
            f"{kg_text(dosing_weight_kg)} kg, {dose.rounding})"
        )
    else:
        dosage["doseAndRate"] = [{"doseQuantity": _dose_quantity(g_per_kg, "g/kg")}]
    return dosage


#: What a suggested IVIG order names: a text and a code a client can act on (the reference client
#: refuses a medication with text alone). ATC J06BA02 is the IVIG value set's own code.
IVIG_CONCEPT: dict[str, Any] = {
    "coding": [t.IVIG_ATC_CODE.as_fhir()],
    "text": "Immune globulin intravenous (human)",
}


def new_ivig(facts: PatientFacts, dosing_weight_kg: float | None, g_per_kg: float) -> Suggestion:
    resource = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        "priority": "stat",
        "medicationCodeableConcept": copy.deepcopy(IVIG_CONCEPT),
        **_context(facts),
        "dosageInstruction": [_ivig_dosage(dosing_weight_kg, g_per_kg)],
    }
    amount = ivig_amount(dosing_weight_kg, g_per_kg)
    label = f"Order IVIG {amount} IV once ({g_per_kg:g} g/kg)"
    return Suggestion(label=label, actions=(Action("create", label, resource=resource),), recommended=True)


def revised_ivig(
    draft: Mapping[str, Any], dosing_weight_kg: float | None, g_per_kg: float, *, label: str, days: int = 1
) -> Suggestion:
    """The draft order with its dose replaced by `g_per_kg` daily for `days` days (an `update`)."""
    resource = copy.deepcopy(dict(draft))
    resource["dosageInstruction"] = [_ivig_dosage(dosing_weight_kg, g_per_kg, days)]
    return Suggestion(label=label, actions=(Action("update", label, resource=resource),), recommended=True)


def replace_product(draft: Mapping[str, Any], concept_text: str, *, label: str) -> Suggestion:
    """The draft order with its product replaced (used for an IgA-depleted IVIG).

    The product carries its codes (`terminology.PRODUCT_CODINGS`: for Gammagard S/D its NDC first)
    as well as its text: a client applies a medication it can code, and refuses text alone.
    """
    resource = copy.deepcopy(dict(draft))
    resource.pop("medicationReference", None)
    concept: dict[str, Any] = {"text": concept_text}
    codings = t.PRODUCT_CODINGS.get(concept_text)
    if codings:
        concept = {"coding": [code.as_fhir() for code in codings], "text": concept_text}
    resource["medicationCodeableConcept"] = concept
    return Suggestion(label=label, actions=(Action("update", label, resource=resource),), recommended=True)


def delete_order(reference: str, *, label: str) -> Suggestion:
    return Suggestion(label=label, actions=(Action("delete", label, resource_id=reference),), recommended=True)
