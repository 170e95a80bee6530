"""Selecting and parsing the patient's record: only what a rule reads, tolerantly.

Why select on raw JSON first: a chronic patient's record holds years of results, hundreds of
conditions and medication orders, and parsing one resource with `fhir.resources` costs about a
tenth of a millisecond. So resources are chosen by type, code and date on the raw JSON
(`hooks/data_needs.py`), projected onto the elements a rule reads, and only then parsed, with the
tolerant reader of `hooks/fhir_model.py`. What could not be read is returned as notes a card shows,
and every repair as a `Repair` for the log and the metrics.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hooks import fhir_model
from hooks import terminology as t
from hooks.data_needs import READ_ELEMENTS, DataNeed, raw_codings, raw_instant, raw_loinc, selected
from hooks.facts import DataKind
from hooks.fhir_model import Reader, Repair, Resource

#: How a card names a result, by LOINC code.
_LOINC_LABELS = {
    **dict.fromkeys(t.PLATELET_COUNT_LOINC, "Platelet count"),
    **dict.fromkeys(t.IPF_LOINC, "IPF"),
    **dict.fromkeys(t.WEIGHT_LOINC, "Weight"),
    **dict.fromkeys(t.HEIGHT_LOINC, "Height"),
    **dict.fromkeys(t.CREATININE_LOINC, "Creatinine"),
    **dict.fromkeys(t.EGFR_LOINC, "eGFR"),
    **dict.fromkeys(t.IGA_LOINC, "Serum IgA"),
    **dict.fromkeys(t.PREGNANCY_STATUS_CODES, "Pregnancy status"),
    t.EXPECTED_DELIVERY_LOINC: "Expected delivery date",
}
_TYPE_LABELS = {
    "Patient": "Patient",
    "Condition": "Condition",
    "MedicationRequest": "Medication order",
    "MedicationAdministration": "Medication administration",
    "Medication": "Medication",
    "AllergyIntolerance": "Allergy",
}


@dataclass
class RecordReading:
    resources: list[Resource] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # as a card says it
    repairs: list[Repair] = field(default_factory=list)


def describe(resource: Mapping[str, Any]) -> str:
    """ "Platelet count of 2026-05-30": how a card names a resource it could not read."""
    kind = str(resource.get("resourceType"))
    label = next((_LOINC_LABELS[c] for c in raw_loinc(resource) if c in _LOINC_LABELS), None)
    if label is None:
        label = _TYPE_LABELS.get(kind, kind)
        text = _concept_text(resource.get("code"))
        if text and kind in ("Condition", "AllergyIntolerance", "Medication"):
            label = f"{label} '{text}'"
    when = raw_instant(resource)
    return f"{label} of {when.date().isoformat()}" if when else label


def _concept_text(concept: object) -> str | None:
    if isinstance(concept, Mapping):
        text = concept.get("text")
        if isinstance(text, str) and text.strip():
            return text.strip()[:80]
    return None


def relevant_condition(resource: Mapping[str, Any]) -> bool:
    """A condition some rule reads (by any code of a concept set, or by its words); one whose code is
    not a CodeableConcept at all may be one, so it is parsed and said to be unreadable."""
    concept = resource.get("code")
    if concept is not None and not isinstance(concept, Mapping):
        return True
    for system, code in raw_codings(concept):
        if t.ANY_CONDITION.matches(system, code):
            return True
    text = json.dumps(resource.get("code")).lower()
    return any(word in text for word in t.CONDITION_TEXT_WORDS)


def read_record(
    raw: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    needs: Sequence[DataNeed],
    now: datetime,
    platelets_since: datetime,
    reader: Reader | None = None,
) -> RecordReading:
    """The resources a rule reads, parsed; each raw resource is `(where it came from, JSON)`."""
    pool: dict[tuple[str, str], tuple[str, Mapping[str, Any]]] = {}
    anonymous: list[tuple[str, Mapping[str, Any]]] = []
    for origin, resource in raw:
        ident = resource.get("id")
        if isinstance(ident, str):
            pool.setdefault((str(resource.get("resourceType")), ident), (origin, resource))
        else:
            anonymous.append((origin, resource))
    everything = [*pool.values(), *anonymous]
    medications = {f"Medication/{i}": r for (kind, i), (_, r) in pool.items() if kind == "Medication"}
    chosen = [
        (origin, resource)
        for origin, resource in everything
        if selected(resource, needs, now, medications, platelets_since)
        and (resource.get("resourceType") != "Condition" or relevant_condition(resource))
    ]
    chosen.extend(_newest_platelet_if_none_chosen(everything, chosen, needs))
    reading = RecordReading()
    read = reader or fhir_model.read_resource
    for origin, resource in chosen:
        reads = READ_ELEMENTS.get(str(resource.get("resourceType")), frozenset())
        result = read(resource, where=origin, reads=reads, keep=reads)
        reading.repairs.extend(result.repairs)
        if result.resource is None:
            reading.unreadable.append(f"{describe(resource)}: could not be read ({result.problem})")
            continue
        if result.unreadable:
            reading.unreadable.append(f"{describe(resource)}: {', '.join(result.unreadable)} could not be read")
        reading.resources.append(result.resource)
    return reading


def _newest_platelet_if_none_chosen(
    everything: Sequence[tuple[str, Mapping[str, Any]]],
    chosen: Sequence[tuple[str, Mapping[str, Any]]],
    needs: Sequence[DataNeed],
) -> list[tuple[str, Mapping[str, Any]]]:
    """The newest platelet count outside the window when none is inside: the cards then say how old
    the latest count is, instead of "no count on record"."""
    codes = set(t.PLATELET_COUNT_LOINC)
    if any(raw_loinc(r) & codes for _, r in chosen if r.get("resourceType") == "Observation"):
        return []
    platelet_need = next((n for n in needs if n.kind is DataKind.PLATELETS), None)
    if platelet_need is None:
        return []
    counts = [(o, r) for o, r in everything if r.get("resourceType") == "Observation" and raw_loinc(r) & codes]
    dated = [(raw_instant(r), o, r) for o, r in counts if raw_instant(r) is not None]
    if not dated:
        return []
    _, origin, resource = max(dated, key=lambda item: item[0])  # type: ignore[arg-type, return-value]
    return [(origin, resource)]
