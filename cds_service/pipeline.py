"""One pipeline for every CDS service: look up, parse, validate, gather data, judge, render.

No handler is copied per hook: a service is a declaration in `hooks.services`, and this module
calls it. Each step raises a `CdsError` subclass that the HTTP edge maps to a status.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from cds_service import protocol
from cds_service.config import Settings
from cds_service.errors import (
    InvalidFhirError,
    MalformedJsonError,
    SchemaViolationError,
    UnknownServiceError,
    UnprocessableError,
)
from cds_service.fhir_client import FhirClient
from cds_service.patient_data import gather
from hooks.cards import render
from hooks.fhir_model import InvalidResourceError, parse_resource, preload
from hooks.findings import Finding
from hooks.services import (
    SERVICES,
    HookCall,
    ServiceDefinition,
    UnknownSelectionError,
    classify_drafts,
    in_scope,
    judge,
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


def registry(services: tuple[ServiceDefinition, ...] = SERVICES) -> dict[str, ServiceDefinition]:
    table: dict[str, ServiceDefinition] = {}
    for service in services:
        if service.id in table:
            raise ValueError(f"two services declare the id {service.id!r}")
        table[service.id] = service
    return table


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of parsed JSON, stopping early past `limit` (hostile bodies nest deeply)."""
    stack = [(value, 1)]
    deepest = 0
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(current, dict):
            stack.extend((v, depth + 1) for v in current.values())
        elif isinstance(current, list):
            stack.extend((v, depth + 1) for v in current)
    return deepest


def parse_json(raw: bytes) -> Any:
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise MalformedJsonError("the request body is not valid JSON") from None
    except RecursionError:
        raise MalformedJsonError("the request body nests too deeply") from None
    if _depth(body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
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

    def warm_up(self) -> None:
        """Build the FHIR models and compile the schemas at start, not during the first hook call."""
        preload()
        for name in ("cds-request.json", *protocol.CONTEXT_SCHEMAS.values()):
            protocol.validator(name)

    def discovery(self) -> dict[str, Any]:
        return {"services": [s.discovery() for s in self.services.values()]}

    def service(self, service_id: str) -> ServiceDefinition:
        service = self.services.get(service_id)
        if service is None:
            raise UnknownServiceError("no CDS service with this id; see GET /cds-services")
        return service

    def call(self, service_id: str, raw: bytes, identified: Callable[[Outcome], None] | None = None) -> Outcome:
        """Answer one hook call.

        `identified` is given the outcome as soon as the request is valid CDS Hooks, before any
        drafts are judged or data fetched, so that a call refused after that point (invalid FHIR,
        no Patient, a refused FHIR server) is still audited with its hookInstance and patient.
        """
        started = time.perf_counter()
        service = self.service(service_id)
        body = parse_json(raw)
        if not isinstance(body, dict):
            raise SchemaViolationError("the request body must be a JSON object")
        protocol.validate_request(body, service.hook)
        outcome = Outcome(
            service.id, service.hook, body["hookInstance"], cards=[], patient_id=body["context"].get("patientId")
        )
        if identified is not None:
            identified(outcome)
        drafts, left_out = _parse_drafts(body["context"])
        call = HookCall(hook=service.hook, context=body["context"], drafts=drafts, left_out=left_out)
        try:
            targets = targets_of(call, classify_drafts(call, self.settings.rules))
        except UnknownSelectionError as error:
            raise UnprocessableError(str(error)) from None
        if in_scope(targets):
            data = gather(service, body, self.client, self.executor, self.settings.fhir_total_timeout)
            outcome.data_mode = data.mode
            call = replace(call, resources=data.resources, unavailable=frozenset(data.unavailable))
            _, outcome.findings = judge(call, settings=self.settings.rules, now=self.clock())
            outcome.cards = render(outcome.findings, self.new_uuid)
        outcome.elapsed_ms = (time.perf_counter() - started) * 1000
        return outcome


#: The draft types the rules read (IVIG, steroid, heparin and estrogen MedicationRequests, and the
#: Medications they point at; platelet transfusion and surgery ServiceRequests). Other drafts in the
#: bundle are context the rules ignore.
JUDGED_DRAFT_TYPES = frozenset({"MedicationRequest", "ServiceRequest", "Medication"})


def _parse_drafts(context: Mapping[str, Any]) -> tuple[list[tuple[Any, Mapping[str, Any]]], frozenset[str]]:
    """The draft orders, each valid FHIR and each for the patient the call is about.

    A draft for another patient would be judged against the wrong chart, so it is refused (422)
    rather than silently carded. CDS Hooks warns that drafts may not be fully specified yet, so a
    judged draft missing only what the hook itself implies (status `draft`, the intent of an order,
    the subject `context.patientId`) is completed with it; one still invalid is a 400. A draft of a
    type no rule reads that is not valid R4 (the spec's own examples hold a NutritionOrder without
    its required `intent`) is left out rather than costing the clinician every card.
    """
    drafts = []
    left_out: set[str] = set()
    patient = f"Patient/{context['patientId']}"
    for index, entry in enumerate(context["draftOrders"].get("entry") or []):
        raw = entry.get("resource")
        try:
            resource = parse_resource(raw)
        except InvalidResourceError as error:
            resource_type = raw.get("resourceType") if isinstance(raw, Mapping) else None
            if resource_type not in JUDGED_DRAFT_TYPES:
                log.info(
                    "draft order left out: not valid FHIR R4 and not a kind this service judges",
                    extra={"reason": f"context.draftOrders.entry[{index}] {resource_type}"},
                )
                if isinstance(raw, Mapping) and isinstance(raw.get("id"), str):
                    left_out.add(f"{resource_type}/{raw['id']}")
                continue
            raw = _completed_draft(raw, patient)
            try:
                resource = parse_resource(raw)
            except InvalidResourceError:
                raise InvalidFhirError(f"context.draftOrders.entry[{index}]: {error}") from None
        subject = getattr(getattr(resource, "subject", None), "reference", None)
        if subject is not None and subject != patient and not subject.endswith("/" + patient):
            raise UnprocessableError(
                f"context.draftOrders.entry[{index}]: the order's subject is not context.patientId"
            )
        drafts.append((resource, raw))
    return drafts, frozenset(left_out)


def _completed_draft(raw: Mapping[str, Any], patient: str) -> dict[str, Any]:
    """The draft with what the hook implies where it is missing: it is a draft order for this patient."""
    completed = dict(raw)
    completed.setdefault("status", "draft")
    completed.setdefault("intent", "order")
    completed.setdefault("subject", {"reference": patient})
    return completed
