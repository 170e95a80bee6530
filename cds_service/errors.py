"""One small exception tree, each class mapped to one HTTP status, rendered as an OperationOutcome.

Why: an EHR integration engineer must be able to tell "your request is wrong" (4xx, with the
reason) from "we are down" (503), and must never receive an HTML page or a stack trace. Messages
name fields, resources and rules, never values: values are patient data.
"""

from __future__ import annotations

import re
from typing import Any


class CdsError(Exception):
    status = 500
    issue_code = "exception"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequestError(CdsError):
    status = 400
    issue_code = "invalid"


class MalformedJsonError(BadRequestError):
    issue_code = "structure"


class SchemaViolationError(BadRequestError):
    issue_code = "structure"


class UnauthorizedError(CdsError):
    status = 401
    issue_code = "login"


class ForbiddenError(CdsError):
    status = 403
    issue_code = "forbidden"


class UnknownServiceError(CdsError):
    status = 404
    issue_code = "not-found"


class RequiredDataUnavailableError(CdsError):
    """412: the spec's answer when the service cannot obtain data it must have (the Patient)."""

    status = 412
    issue_code = "incomplete"


class PayloadTooLargeError(CdsError):
    status = 413
    issue_code = "too-costly"


class UnsupportedMediaTypeError(CdsError):
    status = 415
    issue_code = "not-supported"


class UnprocessableError(CdsError):
    status = 422
    issue_code = "business-rule"


class ServiceUnavailableError(CdsError):
    status = 503
    issue_code = "transient"


def operation_outcome(message: str, code: str, severity: str = "error") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": message}],
    }


_JSON_PATH = re.compile(r"\$[\w.\[\]-]*")
_LEADING_ELEMENT = re.compile(r"^(context\.[\w.\[\]]+)(?=: )")


def element_path(error: CdsError) -> str | None:
    """Where in the request a refused call went wrong, for the log: element names only, never values or ids.

    The element a message starts with (`context.draftOrders.entry[0].resource: ...`), else the JSON
    path of a schema error. FHIR resources are read tolerantly and never refuse a call, so no
    refusal is about a resource's own elements.
    """
    match = _LEADING_ELEMENT.match(error.message)
    if match:
        return match.group(1)
    found = _JSON_PATH.search(error.message)
    return found.group(0)[:300] if found else None
