"""What the rules read from the patient's record, and how far back: one declaration per kind of data.

Why one declaration: the prefetch templates the service advertises, the FHIR searches it runs itself
(`date=ge…`, newest first), where paging stops and which raw resources are parsed at all are all
derived from the table below. A chart with ten years of results then costs what its clinical window
costs, not what its history costs, and no two of those places can disagree about the window.

Each look-back is the longest span a rule looks at (RULES.md), taken from `RuleSettings` where a
rule already names it, so a governance change to a window moves the queries with it:

- platelets and IPF: the nadir window (90 days), or the whole current pregnancy (280 days of
  gestation plus the post-term allowance: `pregnancy_status_max_age_days`, 300). Searches and
  templates are bounded at the longer span; paging stops at 90 days unless the record may show a
  pregnancy (`platelet_window`).
- weight: 30 days (`weight_max_age_days`: a dose is computed only from a weight that recent).
- height: 10 years (adult height is stable; only a height measured in adulthood is used at all).
- renal function (creatinine, eGFR): 30 days (`renal_lab_max_age_days`).
- IgA: the whole history. Results are few, and deficiency is judged on results drawn before the
  first IVIG, which may be years old.
- pregnancy status and expected delivery: 300 days (`pregnancy_status_max_age_days`).
- conditions and allergies: the whole history (a diagnosis or an anaphylaxis of 2015 still holds).
  Conditions are read newest first, so a paging bound keeps the acute ones.
- medication orders and administrations: 5 years (`ivig_history_lookback_days`), the span over
  which "prior IVIG" is looked for; orders still active are read whatever their age.

This module is pure: it computes windows and queries from settings and a moment passed in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from hooks import terminology as t
from hooks.facts import DataKind
from hooks.settings import RuleSettings
from hooks.timeutil import parse_instant

#: Elements of each resource type that some rule reads (with `resourceType` and `id`). Everything
#: else is left out before parsing: it costs time and can only make a valid reading fail.
READ_ELEMENTS: Mapping[str, frozenset[str]] = {
    "Patient": frozenset({"birthDate", "gender"}),
    "Observation": frozenset(
        {
            "status",
            "code",
            "subject",
            "effectiveDateTime",
            "effectiveInstant",
            "effectivePeriod",
            "issued",
            "valueQuantity",
            "valueCodeableConcept",
            "valueDateTime",
            "valueBoolean",
        }
    ),
    "Condition": frozenset(
        {
            "clinicalStatus",
            "verificationStatus",
            "code",
            "subject",
            "severity",
            "onsetDateTime",
            "onsetPeriod",
            "recordedDate",
            # A condition with an abatement and no clinical status has ended (FHIR R4 con-4).
            "abatementDateTime",
            "abatementAge",
            "abatementPeriod",
            "abatementRange",
            "abatementString",
        }
    ),
    "MedicationRequest": frozenset(
        {
            "status",
            "intent",
            "subject",
            "medicationCodeableConcept",
            "medicationReference",
            "contained",
            "authoredOn",
            "dosageInstruction",
        }
    ),
    "MedicationAdministration": frozenset(
        {
            "status",
            "subject",
            "medicationCodeableConcept",
            "medicationReference",
            "contained",
            "effectiveDateTime",
            "effectivePeriod",
            "dosage",
        }
    ),
    "Medication": frozenset({"code"}),
    "AllergyIntolerance": frozenset(
        {
            "patient",
            "code",
            "criticality",
            "reaction",
            "verificationStatus",
            "clinicalStatus",
            "onsetDateTime",
            "onsetPeriod",
            "lastOccurrence",
            "recordedDate",
            "note",
        }
    ),
}


@dataclass(frozen=True)
class DataNeed:
    """One kind of data: the search that finds it, and how far back the rules look."""

    kind: DataKind
    resource_type: str
    codes: tuple[str, ...] = ()  # LOINC codes (Observations)
    date_param: str | None = None  # search parameter that bounds the date
    sort_param: str | None = None  # newest first by this parameter
    lookback_days: int | None = None  # None: the whole history
    filters: tuple[tuple[str, str], ...] = ()
    include: str | None = None  # `_include` of referenced Medications
    read: bool = False  # a read by id (the Patient), not a search
    why: str = ""

    def template(self, *, date_tokens: bool) -> str:
        """The prefetch template; with `date_tokens`, bounded by a CDS Hooks 3.0 `today()` token."""
        if self.read:
            return f"{self.resource_type}/{{{{context.patientId}}}}"
        params = [("patient", "{{context.patientId}}")]
        if self.codes:
            params.append(("code", ",".join(f"{t.LOINC}|{code}" for code in self.codes)))
        params.extend(self.filters)
        if date_tokens and self.date_param and self.lookback_days is not None:
            params.append((self.date_param, f"ge{{{{today() - {self.lookback_days} days}}}}"))
        if self.sort_param:
            params.append(("_sort", f"-{self.sort_param}"))
        if self.include:
            params.append(("_include", self.include))
        params.append(("_count", "100"))
        return f"{self.resource_type}?" + "&".join(f"{name}={value}" for name, value in params)

    def since(self, now: datetime) -> datetime | None:
        """The oldest moment the rules look at (None: the whole history)."""
        return None if self.lookback_days is None else now - timedelta(days=self.lookback_days)


def data_needs(settings: RuleSettings) -> tuple[DataNeed, ...]:
    """Every kind of data the rules read, in the order discovery lists them."""
    s = settings
    observation = {"resource_type": "Observation", "date_param": "date", "sort_param": "date"}
    history = s.ivig_history_lookback_days
    return (
        DataNeed(DataKind.PATIENT, "Patient", read=True, why="age, sex"),
        DataNeed(
            DataKind.PLATELETS,
            codes=tuple(sorted(t.PLATELET_COUNT_LOINC | t.IPF_LOINC)),
            lookback_days=max(s.nadir_lookback_days, s.pregnancy_status_max_age_days),
            why=f"nadir window ({s.nadir_lookback_days} days) or the current pregnancy",
            **observation,
        ),
        DataNeed(
            DataKind.WEIGHT,
            codes=tuple(sorted(t.WEIGHT_LOINC)),
            lookback_days=s.weight_max_age_days,
            why="a dose is computed only from a recent weight",
            **observation,
        ),
        DataNeed(
            DataKind.HEIGHT,
            codes=tuple(sorted(t.HEIGHT_LOINC)),
            lookback_days=s.height_lookback_days,
            why="adult height for the ideal and adjusted dosing weight",
            **observation,
        ),
        DataNeed(
            DataKind.RENAL,
            codes=tuple(sorted(t.CREATININE_LOINC | t.EGFR_LOINC)),
            lookback_days=s.renal_lab_max_age_days,
            why="current renal function",
            **observation,
        ),
        DataNeed(
            DataKind.IGA,
            codes=tuple(sorted(t.IGA_LOINC)),
            why="IgA deficiency is judged on results drawn before the first IVIG",
            **observation,
        ),
        DataNeed(
            DataKind.PREGNANCY,
            codes=tuple(sorted(_PREGNANCY_CODES)),
            lookback_days=s.pregnancy_status_max_age_days,
            why="a pregnancy status or expected delivery older than a pregnancy says nothing about now",
            **observation,
        ),
        DataNeed(
            DataKind.CONDITIONS,
            "Condition",
            sort_param="recorded-date",
            why="diagnoses hold whatever their age",
        ),
        DataNeed(
            DataKind.MEDICATIONS,
            "MedicationRequest",
            date_param="authoredon",
            sort_param="authoredon",
            lookback_days=history,
            include="MedicationRequest:medication",
            why="prior IVIG",
        ),
        DataNeed(
            DataKind.ACTIVE_MEDICATIONS,
            "MedicationRequest",
            filters=(("status", "active,on-hold"),),
            include="MedicationRequest:medication",
            why="orders still active, whatever their age",
        ),
        DataNeed(
            DataKind.ADMINISTRATIONS,
            "MedicationAdministration",
            date_param="effective-time",
            sort_param="effective-time",
            lookback_days=history,
            include="MedicationAdministration:medication",
            why="IVIG given",
        ),
        DataNeed(DataKind.ALLERGIES, "AllergyIntolerance", why="allergies hold whatever their age"),
    )


def prefetch_templates(settings: RuleSettings, *, date_tokens: bool) -> dict[str, str]:
    """The discovery prefetch: one key per kind, so a failure is reported for exactly that data."""
    return {need.kind.value: need.template(date_tokens=date_tokens) for need in data_needs(settings)}


# --- reading raw JSON: what is worth parsing --------------------------------------------------


def raw_codings(concept: object) -> list[tuple[str | None, str | None]]:
    """(system, code) of a CodeableConcept as JSON, tolerating any shape."""
    if isinstance(concept, dict):  # the usual shape first: {"coding": [{"system", "code"}, ...]}
        codings = concept.get("coding")
        if isinstance(codings, list) and all(isinstance(c, dict) for c in codings):
            return [
                (
                    t.canonical_system(system) if isinstance(system := c.get("system"), str) else None,
                    code if isinstance(code := c.get("code"), str) else None,
                )
                for c in codings
            ]
    return list(_any_codings(concept))


def _any_codings(concept: object) -> Iterable[tuple[str | None, str | None]]:
    if isinstance(concept, Mapping):
        concept = [concept]
    for item in concept if isinstance(concept, list) else ():
        codings = item.get("coding") if isinstance(item, Mapping) else None
        if isinstance(codings, Mapping):
            codings = [codings]
        for coding in codings if isinstance(codings, list) else ():
            if isinstance(coding, Mapping):
                system, code = coding.get("system"), coding.get("code")
                yield (
                    t.canonical_system(system) if isinstance(system, str) else None,
                    code if isinstance(code, str) else None,
                )


def raw_loinc(resource: Mapping[str, Any]) -> set[str]:
    return {code for system, code in raw_codings(resource.get("code")) if system == t.LOINC and code}


def _period_instant(period: object, *parts: str) -> datetime | None:
    if not isinstance(period, Mapping):
        return None
    for part in parts:
        instant = parse_instant(period.get(part))
        if instant is not None:
            return instant
    return None


def raw_instant(resource: Mapping[str, Any]) -> datetime | None:
    """When a resource happened, read from raw JSON the way the facts read it (None: undated)."""
    kind = resource.get("resourceType")
    if kind == "Observation":
        for name in ("effectiveDateTime", "effectiveInstant"):
            instant = parse_instant(resource.get(name))
            if instant is not None:
                return instant
        return _period_instant(resource.get("effectivePeriod"), "end", "start") or parse_instant(resource.get("issued"))
    if kind == "MedicationRequest":
        return parse_instant(resource.get("authoredOn"))
    if kind == "MedicationAdministration":
        return parse_instant(resource.get("effectiveDateTime")) or _period_instant(
            resource.get("effectivePeriod"), "start", "end"
        )
    if kind == "Condition":
        return parse_instant(resource.get("recordedDate")) or parse_instant(resource.get("onsetDateTime"))
    return None


@cache
def _index(needs: tuple[DataNeed, ...]) -> tuple[dict[str, DataNeed], dict[str, DataNeed]]:
    """(resource type → its first need, LOINC code → the Observation need that searches it)."""
    by_type: dict[str, DataNeed] = {}
    by_code: dict[str, DataNeed] = {}
    for need in needs:
        by_type.setdefault(need.resource_type, need)
        for code in need.codes:
            by_code.setdefault(code, need)
    return by_type, by_code


def need_for(resource: Mapping[str, Any], needs: Sequence[DataNeed]) -> DataNeed | None:
    """The need an Observation serves (by its LOINC code), else the first need of its type."""
    by_type, by_code = _index(tuple(needs))
    kind = resource.get("resourceType")
    if kind != "Observation":
        return by_type.get(kind)  # type: ignore[arg-type]
    for system, code in raw_codings(resource.get("code")):
        if system == t.LOINC and code in by_code:
            return by_code[code]
    return None


def may_be_pregnant(resources: Iterable[Mapping[str, Any]], now: datetime, settings: RuleSettings) -> bool:
    """Whether the record may show a current pregnancy: then platelets are read back over it.

    A superset of what the facts conclude (any recent "pregnant" answer or expected delivery date,
    or a pregnancy condition in any status): reading too far back costs a page, too short a nadir.
    """
    recent = now - timedelta(days=settings.pregnancy_status_max_age_days)
    for resource in resources:
        kind = resource.get("resourceType")
        if kind == "Condition":
            if any(t.PREGNANCY.matches(s, c) for s, c in raw_codings(resource.get("code"))):
                return True
        elif kind == "Observation":
            codes = raw_loinc(resource) & _PREGNANCY_CODES
            if not codes:
                continue
            when = raw_instant(resource)
            if when is not None and when < recent:
                continue
            if t.EXPECTED_DELIVERY_LOINC in codes:
                return True
            if set(raw_codings(resource.get("valueCodeableConcept"))) & t.PREGNANT_ANSWERS:
                return True
            if resource.get("valueBoolean") is True:
                return True
    return False


_PREGNANCY_CODES = t.PREGNANCY_STATUS_CODES | {t.EXPECTED_DELIVERY_LOINC}


def platelet_window(resources: Iterable[Mapping[str, Any]], now: datetime, settings: RuleSettings) -> datetime:
    """How far back platelet counts are needed: the nadir window, or the longest pregnancy."""
    days = settings.nadir_lookback_days
    if may_be_pregnant(resources, now, settings):
        days = max(days, settings.pregnancy_status_max_age_days)
    return now - timedelta(days=days)


def medication_text(resource: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]) -> str:
    """Everything a medication is named by in raw JSON, lower-cased: its concept, the Medication it
    refers to (contained or by reference) and the reference's display."""
    parts: list[object] = [resource.get("medicationCodeableConcept"), resource.get("code")]
    reference = resource.get("medicationReference")
    if isinstance(reference, Mapping):
        target = reference.get("reference")
        parts.append(reference.get("display"))
        if isinstance(target, str):
            for contained in resource.get("contained") or ():
                if isinstance(contained, Mapping) and target == f"#{contained.get('id')}":
                    parts.append(contained.get("code"))
            referenced = medications.get(target)
            if referenced is not None:
                parts.append(referenced.get("code"))
    return json.dumps([p for p in parts if p is not None]).lower()


def may_matter_medication(resource: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether a medication order or administration could be one the rules read (IVIG, SCIG, a
    steroid, a heparin, an estrogen): a superset of `orders.classify_medication`, so the rest of a
    long medication history is never parsed. A test holds the two together."""
    text = medication_text(resource, medications)
    return any(word in text for word in t.MEDICATION_KEYWORDS)


def selected(
    resource: Mapping[str, Any],
    needs: Sequence[DataNeed],
    now: datetime,
    medications: Mapping[str, Mapping[str, Any]],
    platelets_since: datetime,
) -> bool:
    """Whether a raw resource is one a rule reads: the right type and code, inside its window."""
    kind = resource.get("resourceType")
    if kind in ("Patient", "Medication", "Condition", "AllergyIntolerance"):
        return True
    need = need_for(resource, needs)
    if need is None:
        return False
    if kind in ("MedicationRequest", "MedicationAdministration"):
        if not may_matter_medication(resource, medications):
            return False
        if kind == "MedicationRequest" and resource.get("status") in ("active", "on-hold"):
            return True
    since = platelets_since if need.kind is DataKind.PLATELETS else need.since(now)
    if since is None:
        return True
    when = raw_instant(resource)
    return when is None or when >= since
