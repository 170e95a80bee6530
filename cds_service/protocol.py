"""Checking a hook call against the CDS Hooks 2.0 request schema and its hook's context schema.

Schemas live as JSON files in `schemas/` and are loaded once. Every call is checked by a compiled
validator (`jsonschema-rs`, in Rust: a few microseconds for an envelope); only a body it refuses is
checked again by `jsonschema`, to name the first error. Error messages name the JSON path and the
broken constraint, never the offending value (it may be patient data). tests/test_schemas.py holds
the two validators to the same verdict on every variant it tries.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from cds_service.errors import SchemaViolationError

CONTEXT_SCHEMAS = {"order-select": "context-order-select.json", "order-sign": "context-order-sign.json"}


@cache
def validator(name: str) -> Draft202012Validator:
    schema = _schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@cache
def _schema(name: str) -> dict[str, Any]:
    return json.loads(resources.files("cds_service").joinpath("schemas", name).read_text(encoding="utf-8"))


@cache
def compiled(name: str) -> Any:
    """The compiled validator of a schema, formats checked as `validator` checks them."""
    return jsonschema_rs.validator_for(_schema(name), validate_formats=True)


def describe(error: ValidationError, prefix: str = "$") -> str:
    """A value-free account of one schema error: where, and which rule it broke."""
    path = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    if error.validator == "required":
        return f"{path}: {error.message}"
    if error.validator in ("enum", "const"):
        return f"{path}: must be one of {json.dumps(error.validator_value)}"
    if error.validator == "type":
        return f"{path}: must be of type {json.dumps(error.validator_value)}"
    if error.validator == "additionalProperties":
        return f"{path}: has properties the schema does not allow"
    return f"{path}: fails the '{error.validator}' constraint"


def first_error(name: str, instance: Any, prefix: str = "$") -> str | None:
    if compiled(name).is_valid(instance):
        return None
    errors = sorted(validator(name).iter_errors(instance), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    return describe(errors[0], prefix) if errors else None


def validate_request(body: Any, hook: str) -> None:
    """Raise SchemaViolationError unless `body` is a CDS Hooks request for `hook`.

    The envelope and the hook's context are checked; the prefetch contents are not walked (they can
    be large, and are read tolerantly later, resource by resource).
    """
    envelope = {name: value for name, value in body.items() if name != "prefetch"} if isinstance(body, dict) else body
    if isinstance(body, dict) and "prefetch" in body and not isinstance(body["prefetch"], dict):
        raise SchemaViolationError('request does not follow CDS Hooks 2.0: $.prefetch: must be of type "object"')
    problem = first_error("cds-request.json", envelope)
    if problem:
        raise SchemaViolationError(f"request does not follow CDS Hooks 2.0: {problem}")
    if body["hook"] != hook:
        raise SchemaViolationError(f"$.hook: this service answers the '{hook}' hook, not another hook")
    problem = first_error(CONTEXT_SCHEMAS[hook], body["context"], "$.context")
    if problem:
        raise SchemaViolationError(f"context does not follow the {hook} hook: {problem}")
