"""Reading the draft orders of a hook call: each on its own, tolerantly, and for this patient only.

Why each on its own: the reference CDS client opens its order screen with a draft that has neither
an intent nor a medication yet, and writes `category` as a single object; an EHR may put a
NutritionOrder without `intent` beside the IVIG order. Cards for one draft must never depend on
another, malformed one, so a draft that cannot be read is left out (and said on a card when it may be
an order this service judges), and the others are judged as usual.

Why the patient check is strict: a draft for another patient would be judged against the wrong chart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hooks import terminology as t
from hooks.data_needs import raw_codings
from hooks.fhir_model import Reading, Repair, read_resource

#: Elements of a draft the rules read. A draft is parsed whole (an `update` suggestion carries it
#: back), but an invalid element among these is reported rather than silently read as absent. No
#: rule reads a draft's status or intent: an invalid one is left out and completed from the hook.
DRAFT_READS: Mapping[str, frozenset[str]] = {
    "MedicationRequest": frozenset(
        {
            "subject",
            "medicationCodeableConcept",
            "medicationReference",
            "contained",
            "dosageInstruction",
            "priority",
            "reasonCode",
        }
    ),
    "ServiceRequest": frozenset({"subject", "code", "category", "priority", "reasonCode"}),
    "Medication": frozenset({"code"}),
}
#: Orders: what the hook implies for them when the EHR has not filled it in yet (CDS Hooks: drafts
#: "may not be fully specified").
ORDER_TYPES = frozenset({"MedicationRequest", "ServiceRequest"})


class ForeignDraftError(ValueError):
    """A draft order's subject is another patient than `context.patientId`."""


@dataclass(frozen=True)
class Draft:
    """One entry of `draftOrders`, as sent and as read."""

    index: int
    raw: Mapping[str, Any]
    reading: Reading

    @property
    def resource_type(self) -> str | None:
        kind = self.raw.get("resourceType") if isinstance(self.raw, Mapping) else None
        return kind if isinstance(kind, str) else None

    @property
    def reference(self) -> str | None:
        """"MedicationRequest/abc": how the EHR knows the draft (and names it in `selections`)."""
        ident = self.raw.get("id") if isinstance(self.raw, Mapping) else None
        return f"{self.resource_type}/{ident}" if self.resource_type and isinstance(ident, str) and ident else None

    @property
    def where(self) -> str:
        return f"context.draftOrders.entry[{self.index}].resource"


@dataclass(frozen=True)
class DraftSet:
    drafts: tuple[Draft, ...]

    @property
    def repairs(self) -> list[Repair]:
        return [repair for draft in self.drafts for repair in draft.reading.repairs]

    def medications(self) -> dict[str, Draft]:
        """Medication drafts by reference, read or not (an unreadable one still names its product)."""
        return {d.reference: d for d in self.drafts if d.resource_type == "Medication" and d.reference}

    def referenced_medications(self) -> set[str]:
        """"Medication/x" references of order drafts that the bundle itself does not hold."""
        held = set(self.medications())
        wanted = set()
        for draft in self.drafts:
            if draft.resource_type != "MedicationRequest":
                continue
            reference = draft.raw.get("medicationReference")
            target = reference.get("reference") if isinstance(reference, Mapping) else None
            if isinstance(target, str) and target.startswith("Medication/") and target not in held:
                wanted.add(target)
        return wanted


def read_drafts(context: Mapping[str, Any]) -> DraftSet:
    """Every draft of `context.draftOrders`, each read on its own (see the module docstring).

    Raises ForeignDraftError for a draft whose subject is another patient.
    """
    patient = f"Patient/{context['patientId']}"
    drafts = []
    for index, entry in enumerate(context["draftOrders"].get("entry") or []):
        raw = entry.get("resource") if isinstance(entry, Mapping) else None
        raw = raw if isinstance(raw, Mapping) else {}
        kind = raw.get("resourceType")
        where = f"context.draftOrders.entry[{index}].resource"
        defaults = (
            {"status": "draft", "intent": "order", "subject": {"reference": patient}} if kind in ORDER_TYPES else None
        )
        reads = DRAFT_READS.get(kind, frozenset()) if isinstance(kind, str) else frozenset()
        reading = read_resource(raw, where=where, reads=reads, defaults=defaults)
        subject = (reading.data.get("subject") or raw.get("subject")) if kind in ORDER_TYPES else None
        target = subject.get("reference") if isinstance(subject, Mapping) else None
        if isinstance(target, str) and target != patient and not target.endswith("/" + patient):
            raise ForeignDraftError(f"{where}: the order's subject is not context.patientId")
        drafts.append(Draft(index, raw, reading))
    return DraftSet(tuple(drafts))


# --- hints: may an order this service cannot read be one it judges? ---------------------------

_HINT_WORDS = (
    *t.IVIG_PRODUCT_NAMES,
    *t.SUBCUTANEOUS_IG_NAMES,
    *t.GENERIC_IG_NAMES,
    "platelet",
    *t.LMWH_NAMES,
)


def suggests_target(*raws: object) -> bool:
    """Whether an order's own text or codes suggest immune globulin, platelets or heparin.

    Used only to say on a card that such an order could not be read; never to judge it.
    """
    for raw in raws:
        if raw is None:
            continue
        text = json.dumps(raw).lower()
        if any(word in text for word in _HINT_WORDS) or t.standalone_words(text) & set(t.IG_ABBREVIATIONS):
            return True
        if isinstance(raw, Mapping) and _hint_codes(raw):
            return True
    return False


def _hint_codes(raw: Mapping[str, Any]) -> bool:
    for element in ("medicationCodeableConcept", "code"):
        for system, code in raw_codings(raw.get(element)):
            if (system, code) in _HINT_CODINGS:
                return True
    return False


_HINT_CODINGS = frozenset(
    {(t.CVX, code) for code in t.IVIG_CVX}
    | {(t.ATC, code) for code in t.IVIG_ATC}
    | {(t.RXNORM, code) for code in t.HEPARIN_RXNORM}
    | {(t.PLATELET_TRANSFUSION.system, t.PLATELET_TRANSFUSION.code)}
)


def unread_orders(drafts: Sequence[Draft]) -> list[Draft]:
    """Order drafts that could not be read at all."""
    return [d for d in drafts if d.reading.resource is None and d.resource_type in ORDER_TYPES]
