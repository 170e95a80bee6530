"""Filling prefetch templates with the values of one hook call: a pure function with exact errors.

The tokens CDS Hooks 2.0 defines are accepted: `{{context.<field>}}` for a scalar context field,
and `{{userPractitionerId}}`, `{{userPractitionerRoleId}}`, `{{userPatientId}}`,
`{{userRelatedPersonId}}` derived from `context.userId`. So are the date tokens of CDS Hooks 3.0's
"simpler FHIRPath" that the reference client resolves, `{{today()}}` and `{{today() - 90 days}}`
(or `+`), given the day to count from. Every value is percent-encoded, so a hostile `patientId` such
as `1&_include=*` cannot add search parameters to the query.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

TOKEN = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")

_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


_TODAY = re.compile(r"today\(\)(?:\s*([+-])\s*(\d{1,5})\s+days?)?")


class PrefetchTemplateError(ValueError):
    """A template token cannot be filled from this call's context."""


def _value(token: str, context: Mapping[str, Any], today: date | None) -> str:
    moment = _TODAY.fullmatch(token)
    if moment is not None:
        if today is None:
            raise PrefetchTemplateError(f"prefetch token {{{{{token}}}}}: no date to count from")
        sign, days = moment.groups()
        offset = timedelta(days=int(days or 0)) * (-1 if sign == "-" else 1)
        return (today + offset).isoformat()
    if token.startswith("context."):
        name = token[len("context.") :]
        value = context.get(name)
        if value is None:
            raise PrefetchTemplateError(f"prefetch token {{{{{token}}}}}: context.{name} is absent")
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise PrefetchTemplateError(f"prefetch token {{{{{token}}}}}: context.{name} is not a scalar")
        return str(value)
    if token in _USER_TOKENS:
        user = context.get("userId")
        resource_type = _USER_TOKENS[token]
        if isinstance(user, str) and user.startswith(resource_type + "/"):
            return user[len(resource_type) + 1 :]
        raise PrefetchTemplateError(f"prefetch token {{{{{token}}}}}: context.userId is not a {resource_type}")
    raise PrefetchTemplateError(f"prefetch token {{{{{token}}}}} is not defined by CDS Hooks")


def render(template: str, context: Mapping[str, Any], today: date | None = None) -> str:
    """The template with every token replaced by its percent-encoded value (`today`: for date tokens)."""
    return TOKEN.sub(lambda match: quote(_value(match.group(1), context, today), safe=""), template)
