"""Recognising what a medication or service request is, and reading an IVIG order's dose.

The same classifier serves the draft orders and the patient's medication history, so an IVIG
product recognised in a draft is recognised in the history too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from hooks import terminology as t
from hooks.fhir_model import Resource


class OrderKind(StrEnum):
    IVIG = "ivig"
    SUBCUTANEOUS_IG = "subcutaneous-ig"
    PLATELET_TRANSFUSION = "platelet-transfusion"
    CORTICOSTEROID = "corticosteroid"
    HEPARIN = "heparin"
    ESTROGEN = "estrogen"
    URGENT_SURGERY = "urgent-surgery"
    OTHER = "other"


TARGET_KINDS = frozenset({OrderKind.IVIG, OrderKind.SUBCUTANEOUS_IG, OrderKind.PLATELET_TRANSFUSION})


@dataclass(frozen=True)
class Dose:
    """An IVIG dose as ordered: per kg, or absolute grams (converted with the dosing weight later)."""

    g_per_kg: float | None
    grams: float | None
    days: int
    as_written: str


@dataclass(frozen=True)
class DraftOrder:
    kind: OrderKind
    reference: str  # "MedicationRequest/abc", the id the EHR knows the draft by
    label: str
    dose: Dose | None
    priority: str | None
    iga_depleted: bool
    reason_codes: tuple[tuple[str | None, str | None], ...]
    resource: Mapping[str, Any]  # the draft as JSON, for an `update` suggestion


def medication_concept(resource: Resource, medications: Mapping[str, Resource]) -> object | None:
    """The CodeableConcept of a MedicationRequest/Administration, following a Medication reference."""
    concept = getattr(resource, "medicationCodeableConcept", None)
    if concept is not None:
        return concept
    reference = getattr(resource, "medicationReference", None)
    if reference is None:
        return None
    ref = reference.reference or ""
    for contained in getattr(resource, "contained", None) or ():
        if ref == f"#{contained.id}" and getattr(contained, "code", None) is not None:
            return contained.code
    medication = medications.get(ref)
    if medication is not None and getattr(medication, "code", None) is not None:
        return medication.code
    if reference.display:
        return _TextConcept(reference.display)
    return None


@dataclass(frozen=True)
class _TextConcept:
    text: str
    coding: tuple[()] = ()


def _route_is(resource: Resource, route_codes: frozenset[str], words: tuple[str, ...]) -> bool:
    for dosage in _dosages(resource):
        route = getattr(dosage, "route", None)
        if route is None:
            continue
        for system, code in t.codings_of(route):
            if system == t.SNOMED and code in route_codes:
                return True
        if any(word in t.concept_text(route).lower() for word in words):
            return True
    return False


def _dosages(resource: Resource) -> list[Any]:
    dosage = getattr(resource, "dosage", None)  # MedicationAdministration
    if dosage is not None:
        return [dosage]
    return list(getattr(resource, "dosageInstruction", None) or [])


def _all_text(concept: object) -> str:
    """The concept's text and every coding display, lower-cased: where product names are found."""
    displays = [str(c.display) for c in getattr(concept, "coding", None) or () if c.display]
    return " ".join([t.concept_text(concept), *displays]).lower()


def classify_medication(concept: object, resource: Resource | None = None) -> OrderKind:
    """IVIG, subcutaneous Ig, corticosteroid, heparin, or other, from codes first and names second."""
    if concept is None:
        return OrderKind.OTHER
    all_text = _all_text(concept)
    for system, code in t.codings_of(concept):
        if system == t.RXNORM and code in t.CORTICOSTEROID_RXNORM:
            return OrderKind.CORTICOSTEROID
        if system == t.RXNORM and code in t.HEPARIN_RXNORM:
            return OrderKind.HEPARIN
    if any(word in all_text for word in t.HYPERIMMUNE_IG_WORDS):
        return OrderKind.OTHER
    if any(name in all_text for name in t.SUBCUTANEOUS_IG_NAMES):
        return OrderKind.SUBCUTANEOUS_IG
    for system, code in t.codings_of(concept):
        if (
            (system == t.RXNORM and code in t.IVIG_RXNORM)
            or (system == t.CVX and code in t.IVIG_CVX)
            or (system == t.ATC and code in t.IVIG_ATC)
        ):
            return OrderKind.IVIG
    if any(name in all_text for name in t.IVIG_PRODUCT_NAMES):
        return OrderKind.IVIG
    if any(name in all_text for name in t.GENERIC_IG_NAMES):
        if "subcutaneous" in all_text or (
            resource is not None and _route_is(resource, t.SUBCUTANEOUS_ROUTE_SNOMED, ("subcut",))
        ):
            return OrderKind.SUBCUTANEOUS_IG
        if "intravenous" in all_text or (
            resource is not None and _route_is(resource, t.INTRAVENOUS_ROUTE_SNOMED, ("intravenous",))
        ):
            return OrderKind.IVIG
        return OrderKind.OTHER
    if any(name in all_text for name in t.CORTICOSTEROID_RXNORM.values()):
        return OrderKind.CORTICOSTEROID
    if any(name in all_text for name in t.LMWH_NAMES):
        return OrderKind.HEPARIN
    if any(name in all_text for name in t.ESTROGEN_NAMES):
        return OrderKind.ESTROGEN
    return OrderKind.OTHER


def is_platelet_transfusion(resource: Resource, local_codes: frozenset[tuple[str, str]] = frozenset()) -> bool:
    for system, code in t.codings_of(getattr(resource, "code", None)):
        if system == t.PLATELET_TRANSFUSION.system and code == t.PLATELET_TRANSFUSION.code:
            return True
        if (system, code) in local_codes:
            return True
    return False


def _is_urgent_surgery(resource: Resource) -> bool:
    surgical = any(
        system == t.SNOMED and code == t.SURGICAL_PROCEDURE_SNOMED
        for category in getattr(resource, "category", None) or ()
        for system, code in t.codings_of(category)
    )
    return surgical and getattr(resource, "priority", None) in t.URGENT_PRIORITIES


def is_iga_depleted(concept: object) -> bool:
    return any(name in _all_text(concept) for name in t.IGA_DEPLETED_PRODUCT_NAMES)


_PER_KG_FACTORS = {"g/kg": 1.0, "mg/kg": 0.001}
_ABSOLUTE_FACTORS = {"g": 1.0, "mg": 0.001}


def read_dose(resource: Resource) -> Dose | None:
    """The IVIG dose per day and the number of days, from the first dosage instruction.

    Days come from `timing.repeat.count` (one dose a day), else `boundsDuration` in days, else one.
    A dose we cannot read returns None and the dose-check card says so rather than guessing.
    """
    dosages = _dosages(resource)
    if not dosages:
        return None
    dosage = dosages[0]
    quantity = None
    for dose_and_rate in getattr(dosage, "doseAndRate", None) or ():
        quantity = getattr(dose_and_rate, "doseQuantity", None)
        if quantity is not None:
            break
    if quantity is None:
        quantity = getattr(dosage, "dose", None)  # MedicationAdministration.dosage.dose
    if quantity is None or quantity.value is None:
        return None
    unit = (quantity.code or quantity.unit or "").strip()
    value = float(Decimal(quantity.value))
    days = _days(dosage)
    written = f"{_fmt(value)} {unit}" + (f" daily × {days} days" if days > 1 else " once")
    if unit in _PER_KG_FACTORS:
        return Dose(g_per_kg=value * _PER_KG_FACTORS[unit], grams=None, days=days, as_written=written)
    if unit in _ABSOLUTE_FACTORS:
        return Dose(g_per_kg=None, grams=value * _ABSOLUTE_FACTORS[unit], days=days, as_written=written)
    return None


def _days(dosage: Any) -> int:
    timing = getattr(dosage, "timing", None)
    repeat = getattr(timing, "repeat", None) if timing is not None else None
    if repeat is None:
        return 1
    if repeat.count:
        per_day = 1
        if repeat.frequency and repeat.period and (repeat.periodUnit or "d") == "d":
            per_day = max(1, round(float(repeat.frequency) / float(repeat.period)))
        return max(1, int(repeat.count) // per_day)
    bounds = getattr(repeat, "boundsDuration", None)
    if bounds is not None and bounds.value is not None and (bounds.code or bounds.unit) in ("d", "day", "days"):
        return max(1, int(Decimal(bounds.value)))
    return 1


def _fmt(value: float) -> str:
    return f"{value:g}"


def reason_codes(resource: Resource) -> tuple[tuple[str | None, str | None], ...]:
    pairs: list[tuple[str | None, str | None]] = []
    for concept in getattr(resource, "reasonCode", None) or ():
        pairs.extend(t.codings_of(concept))
    return tuple(pairs)


def classify_draft(
    resource: Resource,
    raw: Mapping[str, Any],
    medications: Mapping[str, Resource],
    local_platelet_codes: frozenset[tuple[str, str]] = frozenset(),
) -> DraftOrder:
    resource_type = resource.get_resource_type()
    reference = f"{resource_type}/{resource.id}" if resource.id else resource_type
    kind = OrderKind.OTHER
    label = ""
    dose = None
    iga_depleted = False
    if resource_type == "MedicationRequest":
        concept = medication_concept(resource, medications)
        kind = classify_medication(concept, resource)
        label = t.concept_text(concept)
        if kind in (OrderKind.IVIG, OrderKind.SUBCUTANEOUS_IG):
            dose = read_dose(resource)
            iga_depleted = is_iga_depleted(concept)
    elif resource_type == "ServiceRequest" and is_platelet_transfusion(resource, local_platelet_codes):
        kind = OrderKind.PLATELET_TRANSFUSION
        label = t.concept_text(resource.code) or "Platelet transfusion"
    elif resource_type == "ServiceRequest" and _is_urgent_surgery(resource):
        kind = OrderKind.URGENT_SURGERY
        label = t.concept_text(resource.code) or "Surgical procedure"
    return DraftOrder(
        kind=kind,
        reference=reference,
        label=label,
        dose=dose,
        priority=getattr(resource, "priority", None),
        iga_depleted=iga_depleted,
        reason_codes=reason_codes(resource),
        resource=raw,
    )
