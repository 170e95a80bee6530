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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hooks import fhir_model
from hooks import terminology as t
from hooks.data_needs import raw_codings
from hooks.fhir_model import Reader, Reading, Repair

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
        """ "MedicationRequest/abc": how the EHR knows the draft (and names it in `selections`)."""
        ident = self.raw.get("id") if isinstance(self.raw, Mapping) else None
        return f"{self.resource_type}/{ident}" if self.resource_type and isinstance(ident, str) and ident else None


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
        """ "Medication/x" references of order drafts that the bundle itself does not hold."""
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


def read_drafts(context: Mapping[str, Any], reader: Reader | None = None) -> DraftSet:
    """Every draft of `context.draftOrders`, each read on its own (see the module docstring).

    `check_drafts` is the protocol's check of the same drafts.
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
        reading = (reader or fhir_model.read_resource)(raw, where=where, reads=reads, defaults=defaults)
        drafts.append(Draft(index, raw, reading))
    return DraftSet(tuple(drafts))


def check_drafts(context: Mapping[str, Any]) -> None:
    """The protocol's own demands on the drafts, checked on raw JSON before anything is read.

    Raises ForeignDraftError for an order whose subject is another patient (it would be judged
    against the wrong chart), and UnknownSelectionError for an order-select selection that names no
    draft (it cannot be judged at all). A subject that is not a reference is read later, and
    completed from the hook like a missing one.
    """
    patient = f"Patient/{context['patientId']}"
    known = set()
    for index, entry in enumerate(context["draftOrders"].get("entry") or []):
        raw = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(raw, Mapping):
            continue
        subject = raw.get("subject")
        target = subject.get("reference") if isinstance(subject, Mapping) else None
        foreign = isinstance(target, str) and target != patient and not target.endswith("/" + patient)
        if raw.get("resourceType") in ORDER_TYPES and foreign:
            raise ForeignDraftError(
                f"context.draftOrders.entry[{index}].resource: the order's subject is not context.patientId"
            )
        kind, ident = raw.get("resourceType"), raw.get("id")
        if isinstance(kind, str) and isinstance(ident, str):
            known.add(f"{kind}/{ident}")
    unknown = [s for s in context.get("selections") or () if s not in known]
    if unknown:
        raise UnknownSelectionError(f"selections not found in draftOrders: {', '.join(map(str, unknown))}")


class UnknownSelectionError(ValueError):
    """An order-select `selections` entry names no resource in `draftOrders`."""


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


# --- the fast path: a call with no order this service judges -----------------------------------

_TARGET_WORDS = (
    *t.IVIG_PRODUCT_NAMES,
    *t.SUBCUTANEOUS_IG_NAMES,
    *t.GENERIC_IG_NAMES,
    *t.LMWH_NAMES,
)
_TARGET_CODINGS = _HINT_CODINGS | {(t.RXNORM, code) for code in t.IVIG_RXNORM}


def _words_pattern(words: Sequence[str]) -> re.Pattern[str]:
    """One search for any of `words`, or an Ig abbreviation standing alone ("IVIG", not "CMV-IGIV")."""
    names = "|".join(re.escape(word) for word in sorted(set(words), key=len, reverse=True))
    abbreviations = "|".join(t.IG_ABBREVIATIONS)
    return re.compile(f"{names}|(?<![\\w-])(?:{abbreviations})(?![\\w-])")


_TARGET_TEXT = _words_pattern(_TARGET_WORDS)


def may_be_judged(raw: object, local_platelet_codes: frozenset[tuple[str, str]] = frozenset()) -> bool:
    """Whether a draft, as raw JSON, could be an order this service judges (IVIG, subcutaneous Ig, a
    platelet transfusion, heparin) or one it must say it could not read.

    A superset of what `orders.classify_draft` finds, checked without parsing: the most common call an
    EHR makes (an antibiotic, a diet) then costs the envelope check and this, nothing more. A draft
    that names its medication only by reference may be anything until the reference is read.
    tests/test_drafts.py holds this and the classifier together.
    """
    if not isinstance(raw, Mapping):
        return False
    kind = raw.get("resourceType")
    if kind == "ServiceRequest":
        codings = set(raw_codings(raw.get("code")))
        return bool(codings & ({(t.PLATELET_TRANSFUSION.system, t.PLATELET_TRANSFUSION.code)} | local_platelet_codes))
    if kind != "MedicationRequest":
        return False
    if "medicationReference" in raw:
        return True
    concept = raw.get("medicationCodeableConcept")
    if set(raw_codings(concept)) & _TARGET_CODINGS:
        return True
    # The whole draft: its own words may say what an unreadable draft is.
    return _TARGET_TEXT.search(json.dumps(raw).lower()) is not None
