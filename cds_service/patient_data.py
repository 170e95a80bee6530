"""Getting the patient's data for one hook call: from prefetch where given, else from the FHIR server.

Policy, per prefetch key (CDS Hooks 2.0 "Prefetch"):
- a value that is a resource or Bundle is used as is (and must be valid FHIR: else 400);
- `null` means the client looked and found nothing;
- an omitted key, or an OperationOutcome in its place, is fetched from `fhirServer` with the
  access token, all keys of one call in parallel, under one deadline;
- a prefetch Bundle the client paged (it has a `next` link; the spec allows it) is read to its
  end from `fhirServer` the same way: its first page alone could hide the one Condition that
  matters, and "not on this page" must never read as "not on record";
- a `Medication` that an order or administration refers to but that neither prefetch nor the
  searches brought (a client that does not support `_include`, which CDS Hooks does not require
  it to) is read from `fhirServer` in one more search; if it cannot be, the medication history
  is unavailable rather than quietly missing an IVIG given last night;
- a key that can be had neither way is *unavailable*: the cards say so (rule `data-unavailable`)
  and rules that need it stay silent. Only the Patient is indispensable: without it the answer is
  412 with an OperationOutcome, as the spec asks.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from blinker import Namespace

from cds_service.errors import ForbiddenError, InvalidFhirError, RequiredDataUnavailableError
from cds_service.fhir_client import (
    FhirClient,
    FhirError,
    FhirHttpError,
    FhirIncompleteError,
    FhirResponseError,
    FhirServerNotAllowedError,
    FhirTimeoutError,
    next_link,
)
from cds_service.prefetch import PrefetchTemplateError, render
from hooks.facts import DataKind
from hooks.fhir_model import InvalidResourceError, Resource, resources_of
from hooks.services import ServiceDefinition

log = logging.getLogger(__name__)

#: Sent once per prefetch key the FHIR server was asked for, with `kind` (a DataKind) and `result`
#: (one of FETCH_RESULTS); the sender is the FhirClient, so each app hears only its own fetches.
#: A signal rather than a metrics call keeps this module free of any monitoring library.
fhir_fetched = Namespace().signal("ivig-cds.fhir-fetched")
FETCH_RESULTS = ("ok", "not-found", "timeout", "unreachable", "http-error", "invalid", "incomplete", "not-allowed")


def fetch_result(error: BaseException) -> str:
    """The FETCH_RESULTS word for a failed fetch (a FhirError, or the deadline passing)."""
    if isinstance(error, FhirTimeoutError | FutureTimeout):
        return "timeout"
    if isinstance(error, FhirServerNotAllowedError):
        return "not-allowed"
    if isinstance(error, FhirHttpError):
        return "http-error"
    if isinstance(error, FhirIncompleteError):
        return "incomplete"
    if isinstance(error, FhirResponseError):
        return "invalid"
    return "unreachable"


@dataclass
class PatientData:
    resources: list[Resource] = field(default_factory=list)
    unavailable: set[DataKind] = field(default_factory=set)
    prefetched: set[str] = field(default_factory=set)
    fetched: set[str] = field(default_factory=set)

    @property
    def mode(self) -> str:
        if self.fetched and self.prefetched:
            return "mixed"
        return "fetched" if self.fetched else "prefetch"


def _is_outcome(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("resourceType") == "OperationOutcome"


def gather(
    service: ServiceDefinition,
    body: Mapping[str, Any],
    client: FhirClient,
    executor: ThreadPoolExecutor,
    total_timeout: float,
) -> PatientData:
    data = PatientData()
    prefetch = body.get("prefetch") or {}
    to_fetch: dict[str, Mapping[str, Any] | None] = {}  # key → None (fetch by template) or a paged Bundle
    for key in service.prefetch:
        value = prefetch.get(key)
        if key not in prefetch or _is_outcome(value):
            to_fetch[key] = None
            continue
        try:
            resources = resources_of(value)
        except InvalidResourceError as error:
            raise InvalidFhirError(f"prefetch '{key}': {error}") from None
        if isinstance(value, Mapping) and value.get("resourceType") == "Bundle" and next_link(value):
            to_fetch[key] = value
            continue
        data.resources.extend(resources)
        data.prefetched.add(key)

    deadline = time.monotonic() + total_timeout  # one budget for every read of this call
    if to_fetch:
        _fetch(service, body, client, executor, deadline, to_fetch, data)
    _resolve_medications(body, client, deadline, data)

    patient_id = body["context"]["patientId"]
    if not any(r.get_resource_type() == "Patient" and r.id == patient_id for r in data.resources):
        reason = (
            "could not be retrieved from the FHIR server"
            if DataKind.PATIENT in data.unavailable
            else "is neither in prefetch nor on the FHIR server"
        )
        raise RequiredDataUnavailableError(f"the Patient named by context.patientId {reason}")
    return data


_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_MEDICATION_KINDS = {"MedicationRequest": DataKind.MEDICATIONS, "MedicationAdministration": DataKind.ADMINISTRATIONS}
_IDS_PER_SEARCH = 50  # keeps each search URL short; a chart rarely refers to more


def _resolve_medications(body: Mapping[str, Any], client: FhirClient, deadline: float, data: PatientData) -> None:
    have = {r.id for r in data.resources if r.get_resource_type() == "Medication" and r.id}
    wanted: dict[str, set[DataKind]] = {}
    for resource in data.resources:
        kind = _MEDICATION_KINDS.get(resource.get_resource_type())
        reference = getattr(getattr(resource, "medicationReference", None), "reference", None) or ""
        target, _, ident = reference.rpartition("/")
        if kind and target == "Medication" and ident not in have and _FHIR_ID.fullmatch(ident):
            wanted.setdefault(ident, set()).add(kind)
    if not wanted:
        return
    kinds = set().union(*wanted.values())
    base = body.get("fhirServer")
    if not base or not client.allows(base):
        # Nothing else needed the server: rather than refuse the whole call, never contact it and
        # say the medication history is incomplete.
        log.info("referenced Medications not supplied and not fetchable", extra={"keys": sorted(kinds)})
        data.unavailable.update(kinds)
        return
    token = (body.get("fhirAuthorization") or {}).get("access_token")
    ids = sorted(wanted)
    found: set[str] = set()
    try:
        for first in range(0, len(ids), _IDS_PER_SEARCH):
            batch = ids[first : first + _IDS_PER_SEARCH]
            payload = client.get(base, f"Medication?_id={','.join(batch)}&_count={len(batch)}", token, deadline)
            medications = [r for r in resources_of(payload) if r.get_resource_type() == "Medication"]
            data.resources.extend(medications)
            found.update(r.id for r in medications if r.id)
    except (FhirError, InvalidResourceError) as error:
        log.warning("referenced Medications could not be read", extra={"reason": type(error).__name__})
    missing = set(ids) - found
    for kind in kinds:
        result = "ok" if not missing else "not-found"
        fhir_fetched.send(client, kind=kind, result=result)
    if missing:  # not found, not allowed to be read, or the search failed: the history is incomplete
        data.unavailable.update(k for ident in missing for k in wanted[ident])
        return
    data.fetched.add("medication-references")


def _fetch(
    service: ServiceDefinition,
    body: Mapping[str, Any],
    client: FhirClient,
    executor: ThreadPoolExecutor,
    deadline: float,
    keys: Mapping[str, Mapping[str, Any] | None],
    data: PatientData,
) -> None:
    base = body.get("fhirServer")
    if not base:
        data.unavailable.update(DataKind(k) for k in keys)
        log.info("prefetch keys missing or paged and no fhirServer given", extra={"keys": sorted(keys)})
        return
    try:
        client.check_allowed(base)
    except FhirServerNotAllowedError as error:
        for key in keys:
            fhir_fetched.send(client, kind=DataKind(key), result="not-allowed")
        raise ForbiddenError(str(error)) from None
    token = (body.get("fhirAuthorization") or {}).get("access_token")
    futures: dict[str, Future[dict[str, Any] | None]] = {}
    for key, paged in keys.items():
        if paged is not None:
            futures[key] = executor.submit(client.follow, base, dict(paged), token, deadline)
            continue
        try:
            query = render(service.prefetch[key], body["context"])
        except PrefetchTemplateError as error:
            log.warning("prefetch template not filled", extra={"key": key, "reason": str(error)})
            data.unavailable.add(DataKind(key))
            continue
        futures[key] = executor.submit(client.get, base, query, token, deadline)
    for key, future in futures.items():
        try:
            payload = future.result(timeout=max(0.0, deadline - time.monotonic()) + 0.5)
        except (FhirError, FutureTimeout) as error:
            future.cancel()
            log.warning("FHIR fetch failed", extra={"key": key, "reason": str(error) or "timeout"})
            fhir_fetched.send(client, kind=DataKind(key), result=fetch_result(error))
            data.unavailable.add(DataKind(key))
            continue
        try:
            data.resources.extend(resources_of(payload))
        except InvalidResourceError as error:
            log.warning(
                "FHIR server returned invalid FHIR", extra={"key": key, "reason": error.where.split("/")[0]}
            )
            fhir_fetched.send(client, kind=DataKind(key), result="invalid")
            data.unavailable.add(DataKind(key))
            continue
        fhir_fetched.send(client, kind=DataKind(key), result="ok" if payload is not None else "not-found")
        data.fetched.add(key)
        if keys[key] is not None:
            data.prefetched.add(key)  # its first page came with the request
