"""The one place FHIR R4 JSON becomes typed models.

`fhir.resources`' top-level package is FHIR R5; EHRs speak R4, so everything here is imported from
`fhir.resources.R4B` (R4B shares R4's resource shapes for the resources this service reads).
Keeping the import in one module means a version change is a one-line edit and no other module can
parse with the wrong release by accident.

Two readers. The service reads what EHRs send (drafts, prefetch, FHIR server answers) with the
tolerant `read_resource`, which repairs or leaves out what it cannot read and reports it by element
path. `parse_resource` is strict: for resources the service builds itself (tests prove every
suggestion valid with it) and for the models' warm-up. Either way problems are named by resource
type, id and element path, never by value: values are patient data and must not reach logs or
error bodies.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

__all__ = [
    "InvalidResourceError",
    "Reader",
    "Reading",
    "Repair",
    "Resource",
    "parse_resource",
    "preload",
    "read_resource",
]


class InvalidResourceError(ValueError):
    """A resource failed FHIR R4 validation. `where` names it (e.g. "Observation/plt1")."""

    def __init__(self, where: str, problems: list[str]) -> None:
        self.where = where
        self.problems = problems
        super().__init__(f"{where} is not valid FHIR R4: " + "; ".join(problems))


def _describe(resource: Mapping[str, Any]) -> str:
    resource_type = resource.get("resourceType")
    rid = resource.get("id")
    label = resource_type if isinstance(resource_type, str) else "resource without resourceType"
    return f"{label}/{rid}" if isinstance(rid, str) and rid else label


def _problems(error: ValidationError) -> list[str]:
    out = []
    for item in error.errors(include_input=False, include_url=False, include_context=False)[:5]:
        path = ".".join(str(part) for part in item.get("loc", ()) if part != "__root__")
        out.append(f"{path or '(resource)'}: {item.get('msg', 'invalid')}")
    return out


_CODE = {"coding": [{"system": "urn:warm-up", "code": "x", "display": "x"}], "text": "x"}
_QUANTITY = {"value": 1, "unit": "g", "system": "http://unitsofmeasure.org", "code": "g"}
_REF = {"reference": "Patient/warm-up", "display": "x"}
# Synthetic resources (no patient data) that touch the element types a hook call populates.
_WARM_UP: tuple[dict[str, Any], ...] = (
    {"resourceType": "Patient", "gender": "female", "birthDate": "1980-01-01"},
    {
        "resourceType": "Observation",
        "status": "final",
        "category": [_CODE],
        "code": _CODE,
        "subject": _REF,
        "effectivePeriod": {"start": "2026-01-01T00:00:00Z"},
        "valueQuantity": _QUANTITY,
        "component": [{"code": _CODE, "valueCodeableConcept": _CODE}],
    },
    {
        "resourceType": "Condition",
        "clinicalStatus": _CODE,
        "verificationStatus": _CODE,
        "severity": _CODE,
        "code": _CODE,
        "subject": _REF,
        "onsetDateTime": "2026-01-01T00:00:00Z",
    },
    {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": _CODE,
        "subject": _REF,
        "encounter": _REF,
        "reasonCode": [_CODE],
        "note": [{"text": "x"}],
        "dosageInstruction": [
            {
                "text": "x",
                "route": _CODE,
                "timing": {"repeat": {"count": 1, "boundsDuration": {"value": 1, "code": "d"}}},
                "doseAndRate": [{"doseQuantity": _QUANTITY}],
            }
        ],
    },
    {
        "resourceType": "MedicationAdministration",
        "status": "completed",
        "medicationReference": _REF,
        "subject": _REF,
        "effectiveDateTime": "2026-01-01T00:00:00Z",
        "dosage": {"dose": _QUANTITY, "route": _CODE},
    },
    {"resourceType": "Medication", "code": _CODE},
    {
        "resourceType": "AllergyIntolerance",
        "criticality": "high",
        "code": _CODE,
        "patient": _REF,
        "reaction": [{"manifestation": [_CODE]}],
    },
    {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "category": [_CODE],
        "code": _CODE,
        "subject": _REF,
        "note": [{"text": "x"}],
    },
    {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "x", "diagnostics": "x"}]},
)


def preload() -> None:
    """Build the models now, so the first clinician's call does not pay for it.

    `fhir.resources` imports each element type's module on first use (tens of milliseconds in all);
    a service process does that once, at start, by parsing synthetic resources.
    """
    for resource in _WARM_UP:
        parse_resource(resource).model_dump(mode="json", exclude_none=True)  # serialisation is built lazily too


def parse_resource(data: object) -> Resource:
    """Parse one resource dict into its R4B model, raising InvalidResourceError on any problem."""
    if not isinstance(data, Mapping):
        raise InvalidResourceError("resource", ["expected a JSON object"])
    resource_type = data.get("resourceType")
    where = _describe(data)
    if not isinstance(resource_type, str):
        raise InvalidResourceError(where, ["resourceType is missing"])
    try:
        model_class = get_fhir_model_class(resource_type)
    except KeyError:
        raise InvalidResourceError(where, [f"unknown resourceType {resource_type!r}"]) from None
    try:
        return model_class.model_validate(dict(data))
    except ValidationError as error:
        raise InvalidResourceError(where, _problems(error)) from None
    except (TypeError, ValueError) as error:  # fhir.resources raises these for some primitives
        raise InvalidResourceError(where, [type(error).__name__]) from None


# --- the tolerant reader -------------------------------------------------------------------------
#
# EHRs send resources that are not quite valid R4: a single object where R4 wants a list (R4's
# `category` and `reasonCode` were 0..1 in STU3), an STU3 `Dosage.doseQuantity`, vendor elements R4
# does not know, a date that is not a date. Refusing the call for that would cost the clinician every
# card; guessing would be worse. So a resource is read for what the rules need:
# - what has exactly one meaning is repaired (an object wrapped in a list, an STU3 element moved to
#   its R4 place, a draft's status/intent/subject completed from the hook);
# - elements R4 does not define, and invalid elements no rule reads, are left out;
# - an invalid element a rule reads is left out *and reported* (`unreadable`), so a card can say which
#   element could not be read instead of the rule silently reading its absence.
# Every change is returned as a `Repair` with its element path, for the log and the metrics.

REPAIR_ACTIONS = ("wrapped-in-list", "moved-to-r4", "completed", "read-as-date", "left-out", "unreadable")

# A dateTime with a time but no zone (FHIR requires one). Which zone the EHR meant is unknown, so
# the time is dropped and the value read as its date: as precise as a date-only result, never a
# guessed hour (timeutil reads a date as the start of its day, the older side).
_INSTANTS = frozenset({"issued", "lastUpdated"})  # an instant cannot be a date: left to the rules below
_ZONELESS_DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2})T\d{2}:\d{2}(:\d{2}(\.\d+)?)?")


class Reader(Protocol):
    """What reads a resource: `read_resource`, or a cache in front of it (cds_service/parse_cache.py)."""

    def __call__(
        self,
        raw: object,
        *,
        where: str,
        reads: frozenset[str],
        keep: frozenset[str] | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> Reading: ...


_MAX_ROUNDS = 8  # each round fixes every error pydantic reported; real resources need one or two


@dataclass(frozen=True)
class Repair:
    where: str  # the element's path in the request, never its value
    action: str  # one of REPAIR_ACTIONS


@dataclass
class Reading:
    resource: Resource | None
    data: dict[str, Any]  # the JSON that was parsed: the input with the repairs applied
    repairs: list[Repair] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # elements a rule reads that could not be read
    problem: str | None = None  # why nothing could be read (resource is None)


def _path_text(loc: tuple[Any, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def _get(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _with(data: dict[str, Any], loc: tuple[Any, ...], value: Any, *, delete: bool = False) -> dict[str, Any]:
    """`data` with the element at `loc` replaced (or deleted), copying only the containers on the way."""
    root = dict(data)
    parent: Any = root
    for part in loc[:-1]:
        child = parent[part]
        child = dict(child) if isinstance(child, Mapping) else list(child)
        parent[part] = child
        parent = child
    if delete:
        del parent[loc[-1]]
    else:
        parent[loc[-1]] = value
    return root


# STU3 put a dose or rate directly on Dosage; R4 moved them into `doseAndRate` (the STU3→R4 map).
_STU3_DOSAGE_ELEMENTS = frozenset({"doseQuantity", "doseRange", "rateQuantity", "rateRange", "rateRatio"})
_DOSAGE_LISTS = frozenset({"dosageInstruction"})


def _moved_stu3_dose(data: dict[str, Any], loc: tuple[Any, ...]) -> dict[str, Any] | None:
    """`data` with an STU3 `Dosage.doseQuantity` (or rate) moved into `doseAndRate`, if that is what `loc` is."""
    if len(loc) != 3 or loc[0] not in _DOSAGE_LISTS or not isinstance(loc[1], int):
        return None
    if loc[2] not in _STU3_DOSAGE_ELEMENTS:
        return None
    dosage = _get(data, loc[:2])
    if not isinstance(dosage, Mapping) or "doseAndRate" in dosage:
        return None
    moved = {k: v for k, v in dosage.items() if k not in _STU3_DOSAGE_ELEMENTS}
    moved["doseAndRate"] = [{k: v for k, v in dosage.items() if k in _STU3_DOSAGE_ELEMENTS}]
    return _with(data, loc[:2], moved)


def _missing_required(error_type: str) -> bool:
    return error_type == "missing" or error_type.endswith(".missing")


def read_resource(
    raw: object,
    *,
    where: str,
    reads: frozenset[str],
    keep: frozenset[str] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Reading:
    """Read one resource tolerantly (see above). Never raises for bad input.

    `reads`: the top-level elements some rule reads (an invalid one is reported as unreadable);
    `keep`: if given, only these top-level elements are parsed at all (the rest costs time and no
    rule reads it); `defaults`: elements completed when missing (a draft's status, intent, subject).
    """
    if not isinstance(raw, Mapping):
        return Reading(None, {}, problem="not a JSON object")
    resource_type = raw.get("resourceType")
    if not isinstance(resource_type, str):
        return Reading(None, {}, problem="resourceType is missing")
    try:
        model_class = get_fhir_model_class(resource_type)
    except KeyError:
        return Reading(None, {}, problem="not a FHIR R4 resource type")
    always = {"resourceType", "id"}
    data = dict(raw) if keep is None else {k: v for k, v in raw.items() if k in keep or k in always}
    reading = Reading(None, data)
    for _ in range(_MAX_ROUNDS):
        # What the hook implies is completed where missing, also once an invalid value is left out.
        for name, value in (defaults or {}).items():
            if name not in data:
                data[name] = copy.deepcopy(value)
                reading.repairs.append(Repair(f"{where}.{name}", "completed"))
        try:
            reading.resource = model_class.model_validate(data)
            reading.data = data
            reading.problem = None
            return reading
        except ValidationError as error:
            errors = error.errors(include_url=False, include_context=False, include_input=False)
        except (TypeError, ValueError):  # fhir.resources raises these for some primitives
            reading.problem = "a value could not be read"
            return reading
        except RecursionError:
            reading.problem = "it nests too deeply"
            return reading
        changed = False
        dropped: set[str] = set()
        for item in errors:
            loc = tuple(item.get("loc") or ())
            kind = str(item.get("type", ""))
            if not loc:
                reading.problem = f"{item.get('msg', 'invalid')}"  # e.g. no medication[x] at all
                continue
            top = str(loc[0])
            if top in dropped or top in always:
                if top in always:
                    reading.problem = f"{top} is not valid"
                continue
            value = _get(data, loc)
            if kind == "list_type" and isinstance(value, Mapping):
                data = _with(data, loc, [value])
                reading.repairs.append(Repair(f"{where}{_path_text(loc)}", "wrapped-in-list"))
                changed = True
                continue
            zoneless = _ZONELESS_DATETIME.fullmatch(value) if isinstance(value, str) else None
            if zoneless and loc[-1] not in _INSTANTS:
                data = _with(data, loc, zoneless.group(1))
                reading.repairs.append(Repair(f"{where}{_path_text(loc)}", "read-as-date"))
                changed = True
                continue
            if kind == "extra_forbidden":
                moved = _moved_stu3_dose(data, loc)
                if moved is not None:
                    data = moved
                    reading.repairs.append(Repair(f"{where}{_path_text(loc)}", "moved-to-r4"))
                else:
                    data = _with(data, loc, None, delete=True)
                    reading.repairs.append(Repair(f"{where}{_path_text(loc)}", "left-out"))
                changed = True
                continue
            if _missing_required(kind) and len(loc) == 1:
                reading.problem = f"{top} is missing"
                if top in reads:
                    reading.unreadable.append(top)
                continue
            # An invalid value (or a required part missing inside an element): the whole top-level
            # element goes, since reading what is left of it could change its meaning (a course
            # whose bounds are invalid would read as a single dose).
            dropped.add(top)
            if top in data:
                data = _with(data, (top,), None, delete=True)
            action = "unreadable" if top in reads else "left-out"
            if action == "unreadable":
                reading.unreadable.append(top)
            reading.repairs.append(Repair(f"{where}.{top}", action))
            changed = True
        if not changed:
            break
    reading.problem = reading.problem or "not valid FHIR R4"
    return reading
