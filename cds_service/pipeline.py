"""One pipeline for every CDS service: look up, parse, validate, gather data, judge, render.

No handler is copied per hook: a service is a declaration in `hooks.services`, and this module
calls it. Each step raises a `CdsError` subclass that the HTTP edge maps to a status.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from cds_service import protocol
from cds_service.config import Settings
from cds_service.errors import (
    MalformedJsonError,
    RequiredDataUnavailableError,
    SchemaViolationError,
    UnknownServiceError,
    UnprocessableError,
)
from cds_service.fhir_client import FhirClient
from cds_service.parse_cache import ParseCache
from cds_service.patient_data import fetch_medications, gather
from hooks.cards import render
from hooks.data_needs import READ_ELEMENTS, data_needs, prefetch_templates
from hooks.drafts import DraftSet, ForeignDraftError, UnknownSelectionError, check_drafts, may_be_judged, read_drafts
from hooks.facts import DataKind
from hooks.fhir_model import Repair, Resource, preload
from hooks.findings import Finding
from hooks.record import read_record
from hooks.services import (
    SERVICES,
    HookCall,
    ServiceDefinition,
    classify_drafts,
    in_scope,
    judge,
    judged,
    targets_of,
)

log = logging.getLogger(__name__)

MAX_JSON_DEPTH = 64


@dataclass
class Outcome:
    """What one call produced, for the response and for the audit trail (never patient data)."""

    service_id: str
    hook: str
    hook_instance: str
    cards: list[dict[str, Any]]
    findings: list[Finding] = field(default_factory=list)
    data_mode: str = "none"
    elapsed_ms: float = 0.0
    patient_id: str | None = field(default=None, repr=False)  # only for the audit trail's keyed hash
    repairs: list[Repair] = field(default_factory=list)  # what the tolerant reader changed, by element path


def registry(services: tuple[ServiceDefinition, ...] = SERVICES) -> dict[str, ServiceDefinition]:
    table: dict[str, ServiceDefinition] = {}
    for service in services:
        if service.id in table:
            raise ValueError(f"two services declare the id {service.id!r}")
        table[service.id] = service
    return table


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of parsed JSON (a scalar counts as a level), stopping early past `limit`
    (hostile bodies nest deeply). Only containers are stacked: most nodes are scalars."""
    if not isinstance(value, dict | list):
        return 1
    stack = [(value, 1)]
    deepest = 1
    while stack:
        current, depth = stack.pop()
        below = depth + 1
        for child in current.values() if isinstance(current, dict) else current:
            if isinstance(child, dict | list):
                stack.append((child, below))
            if below > deepest:
                deepest = below
                if deepest > limit:
                    return deepest
    return deepest


def parse_json(raw: bytes) -> Any:
    """The body as JSON; everything but the prefetch must nest at most MAX_JSON_DEPTH levels.

    The prefetch (most of a large body) is not walked here: it is read resource by resource, only
    where a rule reads it, and a resource nesting deeper than Python can follow is refused as a
    whole (`Pipeline.call`) rather than walked node by node on every call.
    """
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise MalformedJsonError("the request body is not valid JSON") from None
    except RecursionError:
        raise MalformedJsonError("the request body nests too deeply") from None
    envelope = {k: v for k, v in body.items() if k != "prefetch"} if isinstance(body, dict) else body
    if _depth(envelope, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise MalformedJsonError(f"the request body nests deeper than {MAX_JSON_DEPTH} levels")
    return body


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        client: FhirClient,
        executor: ThreadPoolExecutor,
        clock: Callable[[], datetime],
        new_uuid: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.settings = settings
        self.client = client
        self.executor = executor
        self.clock = clock
        self.new_uuid = new_uuid
        self.services = registry()
        rules = settings.rules
        self.needs = data_needs(rules)
        # What discovery advertises (CDS Hooks 3.0 date tokens only when configured), and the
        # service's own searches (always bounded by date: it resolves the tokens itself).
        self.templates = prefetch_templates(rules, date_tokens=settings.prefetch_date_tokens)
        self.own_queries = prefetch_templates(rules, date_tokens=True)
        self.parse_cache = ParseCache(settings.parse_cache_size, settings.parse_cache_seconds)

    def warm_up(self) -> None:
        """Build the FHIR models and compile the schemas at start, not during the first hook call."""
        preload()
        for name in ("cds-request.json", *protocol.CONTEXT_SCHEMAS.values()):
            protocol.validator(name)
            protocol.compiled(name)

    def discovery(self) -> dict[str, Any]:
        return {"services": [s.discovery(self.templates) for s in self.services.values()]}

    def service(self, service_id: str) -> ServiceDefinition:
        service = self.services.get(service_id)
        if service is None:
            raise UnknownServiceError("no CDS service with this id; see GET /cds-services")
        return service

    def call(
        self,
        service_id: str,
        raw: bytes,
        identified: Callable[[Outcome], None] | None = None,
        request_id: str | None = None,
    ) -> Outcome:
        """Answer one hook call.

        `identified` is given the outcome as soon as the request is valid CDS Hooks, before any
        drafts are judged or data fetched, so that a call refused after that point (no Patient, a
        refused FHIR server) is still audited with its hookInstance and patient. Every repair of the
        input is logged with its element path and `request_id`, so an integration engineer can tell
        the EHR vendor what to fix.
        """
        started = time.perf_counter()
        service = self.service(service_id)
        body = parse_json(raw)
        if not isinstance(body, dict):
            raise SchemaViolationError("the request body must be a JSON object")
        protocol.validate_request(body, service.hook)
        patient_id = body["context"].get("patientId")
        outcome = Outcome(service.id, service.hook, body["hookInstance"], cards=[], patient_id=patient_id)
        if identified is not None:
            identified(outcome)
        try:
            self._judge(service, body, outcome)
        except RecursionError:  # a prefetch resource nesting deeper than any FHIR resource does
            raise MalformedJsonError("the request body nests too deeply") from None
        finally:
            for repair in outcome.repairs:
                log.info(
                    "input repaired", extra={"request_id": request_id, "where": repair.where, "reason": repair.action}
                )
        outcome.elapsed_ms = (time.perf_counter() - started) * 1000
        return outcome

    def _judge(self, service: ServiceDefinition, body: dict[str, Any], outcome: Outcome) -> None:
        context = body["context"]
        now = self.clock()
        # One budget for every FHIR read of this call (referenced Medications, then the record).
        deadline = time.monotonic() + self.settings.fhir_total_timeout
        try:
            check_drafts(context)
        except (ForeignDraftError, UnknownSelectionError) as error:
            raise UnprocessableError(str(error)) from None
        if not self._may_be_judged(context):
            return  # {"cards": []}: nothing read, nothing parsed
        drafts = read_drafts(context, self.parse_cache.read)
        outcome.repairs.extend(drafts.repairs)
        medications, unread = self._draft_medications(drafts, body, outcome, deadline)
        call = HookCall(
            hook=service.hook, context=context, drafts=drafts.drafts, medications=medications, unread_medications=unread
        )
        orders = classify_drafts(call, self.settings.rules)
        targets = targets_of(call, orders)
        if judged(targets):
            call = self._with_record(call, body, now, outcome, deadline)
        if in_scope(targets):
            _, outcome.findings = judge(call, settings=self.settings.rules, now=now, orders=orders)
            outcome.cards = render(outcome.findings, self.new_uuid)

    def _may_be_judged(self, context: dict[str, Any]) -> bool:
        """False when no draft can be an order this service judges, checked on raw JSON."""
        local = self.settings.rules.platelet_transfusion_codings
        entries = context["draftOrders"].get("entry") or ()
        return any(may_be_judged(e.get("resource"), local) for e in entries if isinstance(e, dict))

    def _with_record(
        self, call: HookCall, body: dict[str, Any], now: datetime, outcome: Outcome, deadline: float
    ) -> HookCall:
        """The call with the patient's record: gathered raw, then selected and parsed."""
        data = gather(
            self.needs,
            self.own_queries,
            self.settings.rules,
            body,
            self.client,
            self.executor,
            deadline,
            now,
        )
        record = read_record(
            data.raw,
            needs=self.needs,
            now=now,
            platelets_since=data.platelets_since or now,
            reader=self.parse_cache.read,
        )
        outcome.repairs.extend(record.repairs)
        patient_id = call.context["patientId"]
        if not any(r.get_resource_type() == "Patient" and r.id == patient_id for r in record.resources):
            raw_patient = any(
                r.get("resourceType") == "Patient" and r.get("id") == patient_id for r in data.resources()
            )
            if raw_patient:
                reason = "could not be read (not valid FHIR R4)"
            elif DataKind.PATIENT in data.unavailable:
                reason = "could not be retrieved from the FHIR server"
            else:
                reason = "is neither in prefetch nor on the FHIR server"
            raise RequiredDataUnavailableError(f"the Patient named by context.patientId {reason}")
        outcome.data_mode = data.mode
        return replace(
            call,
            resources=record.resources,
            unavailable=frozenset(data.unavailable),
            partial=tuple(data.partial),
            unreadable=tuple(record.unreadable),
        )

    def _draft_medications(
        self, drafts: DraftSet, body: dict[str, Any], outcome: Outcome, deadline: float
    ) -> tuple[dict[str, Resource], dict[str, Any]]:
        """Medications the draft orders refer to, read before scope is decided (an IVIG order may be
        coded only on a Medication the FHIR server holds): from the draft bundle, then the prefetch,
        then the FHIR server. Returns those read, and the raw JSON (or None) of those that were not."""
        reads = READ_ELEMENTS["Medication"]
        read: dict[str, Resource] = {}
        unread: dict[str, Any] = {}
        for reference, draft in drafts.medications().items():
            if draft.reading.resource is not None and not draft.reading.unreadable:
                read[reference] = draft.reading.resource
            else:  # not read, or read without its code: either way it names no product
                unread[reference] = draft.raw
        wanted = drafts.referenced_medications()
        if not wanted:
            return read, unread
        found = _prefetched_medications(body.get("prefetch"), wanted)
        missing = sorted(wanted - set(found))
        if missing:
            fetched, _ = fetch_medications(
                self.client,
                body.get("fhirServer"),
                (body.get("fhirAuthorization") or {}).get("access_token"),
                deadline,
                missing,
            )
            found.update(fetched)
        for reference in sorted(wanted):
            raw = found.get(reference)
            where = f"medication {reference}"
            reading = self.parse_cache.read(raw, where=where, reads=reads, keep=reads) if raw else None
            if reading is not None:
                outcome.repairs.extend(reading.repairs)
            if reading is not None and reading.resource is not None and not reading.unreadable:
                read[reference] = reading.resource
            else:
                unread[reference] = raw
        return read, unread


def _prefetched_medications(prefetch: Any, wanted: set[str]) -> dict[str, Any]:
    """Medications among the prefetch values (a client's `_include`), by reference."""
    found: dict[str, Any] = {}
    for value in prefetch.values() if isinstance(prefetch, dict) else ():
        entries = value.get("entry") if isinstance(value, dict) and value.get("resourceType") == "Bundle" else None
        for entry in entries if isinstance(entries, list) else ():
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and resource.get("resourceType") == "Medication":
                reference = f"Medication/{resource.get('id')}"
                if reference in wanted:
                    found.setdefault(reference, resource)
    return found
