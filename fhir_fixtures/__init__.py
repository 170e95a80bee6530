"""Named clinical scenarios as FHIR data, usable as CDS Hooks requests and as sandbox FHIR content.

A scenario file (`scenarios/P01.json`) holds the patient's record as a FHIR `collection` Bundle,
the draft orders as a Bundle, the hook to call, and the cards the rule book expects. Every date in
it is written relative to the scenario's `asOf` moment; `rebased(now)` shifts them so a scenario
can be replayed against a live clock (the README's curl does this).

From one scenario:
- `prefetch_request(service)` gives a request whose prefetch is filled the way a CDS client would
  fill the service's templates (a small evaluator for the template shapes this service uses);
- `fetch_request(service, fhir_base)` gives the same request without prefetch, to be answered from
  a FHIR server loaded with `transaction()`.
The integration test proves the two give the same cards, so the evaluator cannot drift from what a
real FHIR server returns.
"""

from __future__ import annotations

import copy
import json
import re
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from cds_service.prefetch import render

SCENARIO_DIR = Path(__file__).parent / "scenarios"

_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_KEYS = ("DateTime", "Date", "authoredOn", "issued", "start", "end", "recordedDate", "birthDate", "date")


@dataclass(frozen=True)
class Expected:
    rule: str
    indicator: str


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    as_of: datetime
    hook: str
    record: dict[str, Any]
    draft_orders: dict[str, Any]
    selections: tuple[str, ...]
    expected: tuple[Expected, ...]

    @property
    def patient_id(self) -> str:
        for resource in self.resources():
            if resource["resourceType"] == "Patient":
                return resource["id"]
        raise ValueError(f"scenario {self.id} has no Patient")

    def resources(self) -> list[dict[str, Any]]:
        return [entry["resource"] for entry in self.record.get("entry", [])]

    def context(self, hook: str | None = None) -> dict[str, Any]:
        context: dict[str, Any] = {
            "userId": "Practitioner/example-prescriber",
            "patientId": self.patient_id,
            "encounterId": f"enc-{self.id.lower()}",
            "draftOrders": copy.deepcopy(self.draft_orders),
        }
        if (hook or self.hook) == "order-select":
            context["selections"] = list(self.selections)
        return context

    def _base_request(self, hook: str | None) -> dict[str, Any]:
        hook = hook or self.hook
        return {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": self.context(hook)}

    def prefetch_request(
        self,
        templates: Mapping[str, str],
        omit: Sequence[str] = (),
        hook: str | None = None,
        paged_by: str | None = None,
    ) -> dict[str, Any]:
        """A request with every template key filled from the record (except the keys in `omit`).

        `hook` defaults to the scenario's own; order-select selects every draft order. With
        `paged_by` (a FHIR base URL), each search is paged as that server would page it: the prefetch
        holds the first page and a `next` link, and `fhirServer` is that base.
        """
        request = self._base_request(hook)
        today = self.as_of.date()
        request["prefetch"] = {
            key: evaluate(render(template, request["context"], today=today), self.resources(), base=paged_by)
            for key, template in templates.items()
            if key not in omit
        }
        if paged_by:
            request["fhirServer"] = paged_by
        return request

    def fetch_request(
        self, fhir_base: str, token: str | None = "example-access-token", hook: str | None = None
    ) -> dict[str, Any]:
        """A request without prefetch: the service must read everything from `fhir_base`."""
        request = self._base_request(hook)
        request["fhirServer"] = fhir_base
        if token:
            request["fhirAuthorization"] = {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": "patient/*.read",
                "subject": "ivig-cds",
            }
        return request

    def transaction(self) -> dict[str, Any]:
        """The record as a FHIR transaction (PUT by id) to load into a sandbox FHIR server."""
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": copy.deepcopy(resource),
                    "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
                }
                for resource in self.resources()
            ],
        }

    def rebased(self, now: datetime) -> Scenario:
        """The same scenario with every date moved so that `asOf` becomes `now`."""
        delta = now - self.as_of
        return Scenario(
            id=self.id,
            title=self.title,
            as_of=now,
            hook=self.hook,
            record=_shift(self.record, delta),
            draft_orders=_shift(self.draft_orders, delta),
            selections=self.selections,
            expected=self.expected,
        )


def _shift(value: Any, delta: timedelta, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _shift(v, delta, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift(v, delta, key) for v in value]
    if isinstance(value, str) and any(key.endswith(suffix) for suffix in _DATE_KEYS):
        if _DATETIME.match(value):
            moved = datetime.fromisoformat(value.replace("Z", "+00:00")) + delta
            return moved.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if _DATE.match(value):
            return (date.fromisoformat(value) + timedelta(days=round(delta.total_seconds() / 86400))).isoformat()
    return value


# --- a small evaluator for this service's prefetch template shapes --------------------------


def _references_patient(resource: Mapping[str, Any], patient_id: str) -> bool:
    for field in ("subject", "patient"):
        ref = (resource.get(field) or {}).get("reference")
        if ref == f"Patient/{patient_id}":
            return True
    return False


def _has_code(resource: Mapping[str, Any], tokens: list[str]) -> bool:
    codings = (resource.get("code") or {}).get("coding") or []
    for token in tokens:
        system, _, code = token.rpartition("|")
        if any(c.get("code") == code and (not system or c.get("system") == system) for c in codings):
            return True
    return False


def _instant(value: Any) -> datetime | None:
    """Where a server indexes a date value: a partial date at the start of its period, a time
    written without its zone at the start of its day (servers index both as ranges)."""
    if not isinstance(value, str):
        return None
    if _PARTIAL_DATE.fullmatch(value):
        year, month = int(value[:4]), int(value[5:7]) if len(value) == 7 else 1
        return datetime(year, month, 1, tzinfo=UTC)
    if _DATE.match(value):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else datetime.combine(moment.date(), datetime.min.time(), tzinfo=UTC)


_PARTIAL_DATE = re.compile(r"\d{4}(-\d{2})?")


# The date each searched date parameter reads, as a server indexes it (the start of a period).
_DATE_PARAMS = {
    "date": lambda r: (
        _instant(r.get("effectiveDateTime"))
        or _instant(r.get("effectiveInstant"))
        or _instant((r.get("effectivePeriod") or {}).get("start"))
    ),
    "authoredon": lambda r: _instant(r.get("authoredOn")),
    "effective-time": lambda r: (
        _instant(r.get("effectiveDateTime")) or _instant((r.get("effectivePeriod") or {}).get("start"))
    ),
    "recorded-date": lambda r: _instant(r.get("recordedDate")),
}
_PREFIXES = {
    "ge": lambda a, b: a >= b,
    "gt": lambda a, b: a > b,
    "le": lambda a, b: a <= b,
    "lt": lambda a, b: a < b,
}


def _date_filter(resources: list[Mapping[str, Any]], name: str, value: str) -> list[Mapping[str, Any]]:
    prefix, bound = (value[:2], value[2:]) if value[:2] in _PREFIXES else ("ge", value)
    limit = _instant(bound)
    if limit is None:
        raise ValueError(f"the fixture evaluator cannot read the date {value!r}")
    read = _DATE_PARAMS[name]
    return [r for r in resources if (d := read(r)) is not None and _PREFIXES[prefix](d, limit)]


def evaluate(query: str, resources: Sequence[Mapping[str, Any]], base: str | None = None) -> dict[str, Any] | None:
    """What a FHIR server would answer to `query` for these resources (read or simple search).

    Supports what this service asks: `Type/id` reads, and searches by `patient`, `code`, `_id` and
    `status` (comma = OR), the date parameters `date`, `authoredon` and `effective-time` (with the
    prefixes ge, gt, le, lt), `_sort` on one of those (newest first with `-`), `_include=<Type>:medication`,
    and `_count` with `_offset`: given a `base`, a search longer than `_count` is paged as a server
    pages it (a `next` link under `base`); without one, every match is returned on one page.
    """
    parts = urlsplit(query)
    path = unquote(parts.path)
    if "/" in path:
        resource_type, rid = path.split("/", 1)
        found = [r for r in resources if r["resourceType"] == resource_type and r.get("id") == rid]
        return copy.deepcopy(found[0]) if found else None
    params = parse_qs(parts.query)
    supported = {"patient", "code", "_id", "status", "_sort", "_count", "_offset", "_include", *_DATE_PARAMS}
    unsupported = set(params) - supported
    if unsupported:
        raise ValueError(f"the fixture evaluator does not support {sorted(unsupported)}")
    matches = [r for r in resources if r["resourceType"] == path]
    if "patient" in params:
        matches = [r for r in matches if _references_patient(r, params["patient"][0])]
    if "code" in params:
        tokens = params["code"][0].split(",")
        matches = [r for r in matches if _has_code(r, tokens)]
    if "_id" in params:
        ids = set(params["_id"][0].split(","))
        matches = [r for r in matches if r.get("id") in ids]
    if "status" in params:
        statuses = set(params["status"][0].split(","))
        matches = [r for r in matches if r.get("status") in statuses]
    for name in _DATE_PARAMS:
        for value in params.get(name, []):
            matches = _date_filter(matches, name, value)
    for order in params.get("_sort", [])[:1]:
        read = _DATE_PARAMS[order.lstrip("-")]
        oldest = datetime.min.replace(tzinfo=UTC)
        matches.sort(key=lambda r: read(r) or oldest, reverse=order.startswith("-"))
    total = len(matches)
    offset = int(params.get("_offset", ["0"])[0])
    count = int(params["_count"][0]) if "_count" in params and base else total
    page = matches[offset : offset + count]
    included: list[Mapping[str, Any]] = []
    if params.get("_include", [""])[0].endswith(":medication"):
        wanted = {(r.get("medicationReference") or {}).get("reference") for r in page}
        included = [r for r in resources if f"{r['resourceType']}/{r.get('id')}" in wanted]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": total}
    if base and offset + count < total:
        following = [(k, v) for k, values in params.items() if k != "_offset" for v in values]
        following.append(("_offset", str(offset + count)))
        bundle["link"] = [{"relation": "next", "url": f"{base.rstrip('/')}/{path}?{urlencode(following)}"}]
    bundle["entry"] = [{"resource": copy.deepcopy(r), "search": {"mode": "match"}} for r in page] + [
        {"resource": copy.deepcopy(r), "search": {"mode": "include"}} for r in included
    ]
    return bundle


# --- loading ---------------------------------------------------------------------------------


def from_json(data: Mapping[str, Any]) -> Scenario:
    return Scenario(
        id=data["id"],
        title=data["title"],
        as_of=datetime.fromisoformat(data["asOf"].replace("Z", "+00:00")),
        hook=data["hook"],
        record=data["record"],
        draft_orders=data["draftOrders"],
        selections=tuple(data.get("selections", ())),
        expected=tuple(Expected(e["rule"], e["indicator"]) for e in data["expected"]),
    )


def load(scenario_id: str) -> Scenario:
    name = f"{scenario_id}.json"
    text = resources.files("fhir_fixtures").joinpath("scenarios", name).read_text(encoding="utf-8")
    return from_json(json.loads(text))


def find(scenario_id: str) -> Scenario:
    """The scenario named in any case, with or without leading zeros (`p01`, `P1`); LookupError if none."""
    wanted = scenario_id.strip().upper()
    known = names()
    by_key = {name.upper(): name for name in known}
    prefix, digits = wanted[:1], wanted[1:]
    if wanted not in by_key and digits.isdigit():
        wanted = f"{prefix}{int(digits):02d}"
    if wanted not in by_key:
        raise LookupError(f"no scenario {scenario_id!r}; 'ivig-cds fixture list' lists {known[0]} to {known[-1]}")
    return load(by_key[wanted])


def names() -> list[str]:
    folder = resources.files("fhir_fixtures").joinpath("scenarios")
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def all_scenarios() -> Iterator[Scenario]:
    for name in names():
        yield load(name)


def scenario_builder() -> ModuleType:
    """fhir_fixtures/build.py's module, for the scenario modules it imports at its end to register into.

    Under `python -m fhir_fixtures.build` that is `__main__`, whose registry `main()` renders:
    importing `fhir_fixtures.build` there would make a second copy, which nothing renders.
    """
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None) == "fhir_fixtures.build":
        return main  # type: ignore[return-value]
    from fhir_fixtures import build

    return build
