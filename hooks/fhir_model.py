"""The one place FHIR R4 JSON becomes typed models.

`fhir.resources`' top-level package is FHIR R5; EHRs speak R4, so everything here is imported from
`fhir.resources.R4B` (R4B shares R4's resource shapes for the resources this service reads).
Keeping the import in one module means a version change is a one-line edit and no other module can
parse with the wrong release by accident.

Validation errors are reported by resource type, id and field path, never by value: values are
patient data and must not reach logs or error bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

__all__ = ["InvalidResourceError", "Resource", "parse_resource", "preload", "resources_of", "validate_resource"]




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
        validate_resource(resource)


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


def validate_resource(data: Mapping[str, Any]) -> dict[str, Any]:
    """Round-trip a resource this service builds (a suggestion) through the model.

    Why: a suggestion the EHR cannot accept is worse than none, so every resource we emit is
    proven valid before it leaves; the JSON returned is the model's own serialisation.
    """
    model = parse_resource(data)
    return model.model_dump(mode="json", exclude_none=True)


def resources_of(payload: object) -> list[Resource]:
    """The parsed resources of a prefetch value: a Bundle's entries, or a single resource.

    A Bundle is unpacked entry by entry so that an invalid entry is named by its own type and id;
    OperationOutcome entries (search warnings) are skipped, not treated as patient data.
    """
    if payload is None:
        return []
    if not isinstance(payload, Mapping):
        raise InvalidResourceError("prefetch value", ["expected a JSON object or null"])
    if payload.get("resourceType") != "Bundle":
        return [parse_resource(payload)]
    entries = payload.get("entry") or []
    if not isinstance(entries, list):
        raise InvalidResourceError(_describe(payload), ["entry: expected an array"])
    parsed: list[Resource] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise InvalidResourceError(_describe(payload), [f"entry.{index}: expected an object"])
        resource = entry.get("resource")
        if resource is None:
            continue
        if isinstance(resource, Mapping) and resource.get("resourceType") == "OperationOutcome":
            continue
        parsed.append(parse_resource(resource))
    return parsed
