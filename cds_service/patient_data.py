"""Gathering the patient's data for one hook call as raw JSON: from prefetch where given, else from
the FHIR server, each kind read as far back as the rules look (`hooks/data_needs.py`), no further.

Policy, per kind of data (one prefetch key each, CDS Hooks 2.0 "Prefetch"):
- a prefetch value that is a resource or a Bundle is used; `null` means the client looked and found
  nothing; an omitted key, an OperationOutcome, or anything that is not a FHIR resource is read from
  `fhirServer` instead, with the service's own date-bounded search (the value is never a reason to
  refuse the call: the client may not have resolved a template);
- a Bundle with a `next` link (the client or the server paged it) is read on only while its results
  can still fall inside the window: the search asks for results newest first, so the first page whose
  oldest result is older than the window ends it. A server that ignores `_sort` is detected (a result
  newer than the one before it) and then read to the end. More pages than `IVIG_CDS_FHIR_MAX_PAGES`
  inside the window: what was read is used and the cards say back to when (`Partial`); a long
  history is never "unavailable";
- platelets are read back over the nadir window, or over the whole window when the record may show a
  pregnancy (the nadir is then taken over the pregnancy);
- `Medication`s that orders or administrations refer to, and that neither prefetch nor the searches
  brought (CDS Hooks does not require a client to support `_include`), are read in one more search;
- a kind that can be had neither way is *unavailable*: the cards say so and rules that need it stay
  silent. Only the Patient is indispensable: without it the answer is 412.

Nothing here parses FHIR or knows a rule: the result is raw JSON with where each resource came from,
for `hooks` to select and parse.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from blinker import Namespace

from cds_service.errors import ForbiddenError
from cds_service.fhir_client import (
    FhirClient,
    FhirError,
    FhirHttpError,
    FhirResponseError,
    FhirServerNotAllowedError,
    FhirTimeoutError,
    Pages,
)
from cds_service.prefetch import PrefetchTemplateError, render
from hooks.data_needs import DataNeed, platelet_window, raw_instant
from hooks.facts import DataKind, Partial
from hooks.settings import RuleSettings

log = logging.getLogger(__name__)

#: Sent once per kind of data the FHIR server was asked for, with `kind` (a DataKind) and `result`
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
    if isinstance(error, FhirResponseError):
        return "invalid"
    return "unreachable"


@dataclass
class PatientData:
    """Raw resources with where each came from (for the log of what could not be read), and what
    could not be had."""

    raw: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)
    unavailable: set[DataKind] = field(default_factory=set)
    partial: list[Partial] = field(default_factory=list)
    prefetched: set[str] = field(default_factory=set)
    fetched: set[str] = field(default_factory=set)
    platelets_since: datetime | None = None  # how far back platelet counts are needed

    @property
    def mode(self) -> str:
        if self.fetched and self.prefetched:
            return "mixed"
        return "fetched" if self.fetched else "prefetch"

    def resources(self) -> list[Mapping[str, Any]]:
        return [resource for _, resource in self.raw]


def _is_resource(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("resourceType"), str)


@dataclass
class _Read:
    """One kind of data being read: its first page (given or fetched) and how to go on."""

    need: DataNeed
    origin: str  # "prefetch.platelets" or "fhirServer.platelets"
    pages: Pages | None = None
    resource: Mapping[str, Any] | None = None  # a read (the Patient), or a prefetch value that is no Bundle
    since: datetime | None = None


class Gatherer:
    """Reads one call's data; one instance per call (it holds that call's deadline and results)."""

    def __init__(
        self,
        needs: Sequence[DataNeed],
        templates: Mapping[str, str],
        settings: RuleSettings,
        client: FhirClient,
        executor: ThreadPoolExecutor,
        deadline: float,
        now: datetime,
    ) -> None:
        self.needs = needs
        self.templates = templates  # the service's own searches: date-bounded templates
        self.settings = settings
        self.client = client
        self.executor = executor
        self.deadline = deadline  # time.monotonic() by which every read of this call is done
        self.now = now
        self.data = PatientData()

    def gather(self, body: Mapping[str, Any]) -> PatientData:
        prefetch = body.get("prefetch")
        prefetch = prefetch if isinstance(prefetch, Mapping) else {}
        base = body.get("fhirServer")
        token = (body.get("fhirAuthorization") or {}).get("access_token")
        reads: list[_Read] = []
        to_fetch: list[_Read] = []
        for need in self.needs:
            key = need.kind.value
            read = _Read(need, f"prefetch.{key}", since=need.since(self.now))
            if need.kind is DataKind.PLATELETS:  # first pass: the nadir window only
                read.since = self.now - timedelta(days=self.settings.nadir_lookback_days)
            value = prefetch.get(key)
            if key in prefetch and value is None:
                self.data.prefetched.add(key)  # the client looked and found nothing
                continue
            if not _is_resource(value) or value.get("resourceType") == "OperationOutcome":
                if key in prefetch and value is not None and not _is_resource(value):
                    log.info("prefetch value is not a FHIR resource: read from the FHIR server", extra={"key": key})
                read.origin = f"fhirServer.{key}"
                to_fetch.append(read)
                continue
            if value.get("resourceType") == "Bundle":
                read.pages = Pages()
                read.pages.add(value, raw_instant)
            else:
                read.resource = value
            self.data.prefetched.add(key)
            reads.append(read)
        if to_fetch:
            self._fetch(body, base, token, to_fetch)
        reads.extend(r for r in to_fetch if r.pages is not None or r.resource is not None)
        self._read_on(base, token, reads)
        # Second pass: a pregnancy on record widens the platelet window to the whole pregnancy.
        self.data.platelets_since = platelet_window(self._pool(reads), self.now, self.settings)
        platelets = [r for r in reads if r.need.kind is DataKind.PLATELETS]
        for read in platelets:
            read.since = self.data.platelets_since
        self._read_on(base, token, platelets)
        for read in reads:
            self._collect(read)
        self._resolve_medications(base, token)
        return self.data

    # --- reading -----------------------------------------------------------------------------

    def _fetch(self, body: Mapping[str, Any], base: str | None, token: str | None, reads: list[_Read]) -> None:
        if not base:
            self.data.unavailable.update(r.need.kind for r in reads)
            log.info(
                "prefetch keys missing and no fhirServer given", extra={"keys": sorted(r.need.kind for r in reads)}
            )
            return
        try:
            self.client.check_allowed(base)
        except FhirServerNotAllowedError as error:
            for read in reads:
                fhir_fetched.send(self.client, kind=read.need.kind, result="not-allowed")
            raise ForbiddenError(str(error)) from None
        futures: dict[int, Future[Any]] = {}
        for index, read in enumerate(reads):
            try:
                query = render(self.templates[read.need.kind.value], body["context"], today=self.now.date())
            except PrefetchTemplateError as error:
                log.warning("prefetch template not filled", extra={"key": read.need.kind.value, "reason": str(error)})
                self.data.unavailable.add(read.need.kind)
                continue
            futures[index] = self.executor.submit(
                self.client.search, base, query, token, self.deadline, since=read.since, instant_of=raw_instant
            )
        for index, future in futures.items():
            read = reads[index]
            kind = read.need.kind
            try:
                payload = future.result(timeout=max(0.0, self.deadline - time.monotonic()) + 0.5)
            except (FhirError, FutureTimeout) as error:
                future.cancel()
                log.warning("FHIR fetch failed", extra={"key": kind.value, "reason": str(error) or "timeout"})
                fhir_fetched.send(self.client, kind=kind, result=fetch_result(error))
                self.data.unavailable.add(kind)
                continue
            if isinstance(payload, Pages):
                read.pages = payload
            elif payload is not None:
                read.resource = payload
            fhir_fetched.send(self.client, kind=kind, result="ok" if payload is not None else "not-found")
            self.data.fetched.add(kind.value)

    def _read_on(self, base: str | None, token: str | None, reads: Sequence[_Read]) -> None:
        """Follow `next` links of every paged read that does not yet cover its window, in parallel."""
        pending = [r for r in reads if r.pages is not None and r.need.kind not in self.data.unavailable]
        pending = [r for r in pending if not r.pages.reaches(r.since)]  # type: ignore[union-attr]
        if not pending:
            return
        usable = base if base and self.client.allows(base) else None
        futures = {
            id(read): self.executor.submit(
                self.client.read_search,
                usable,
                read.pages,
                token,
                self.deadline,
                since=read.since,
                instant_of=raw_instant,
            )
            for read in pending
        }
        for read in pending:
            kind = read.need.kind
            try:
                futures[id(read)].result(timeout=max(0.0, self.deadline - time.monotonic()) + 0.5)
            except (FhirError, FutureTimeout) as error:
                log.warning("FHIR paging failed", extra={"key": kind.value, "reason": str(error) or "timeout"})
                fhir_fetched.send(self.client, kind=kind, result=fetch_result(error))
                read.pages.complete = False  # type: ignore[union-attr]
                read.pages.next_url = read.pages.next_url or "(failed)"  # type: ignore[union-attr]
                continue
            if read.origin.startswith("prefetch") and usable:
                self.data.fetched.add(kind.value)

    def _collect(self, read: _Read) -> None:
        if read.resource is not None:
            self.data.raw.append((read.origin, read.resource))
            return
        pages = read.pages
        if pages is None:
            return
        usable = pages.reaches(read.since) or self._partial(read, pages)
        if not usable:
            return
        for index, entry in enumerate(pages.entries):
            resource = entry.get("resource") if isinstance(entry, Mapping) else None
            if _is_resource(resource) and resource.get("resourceType") != "OperationOutcome":
                self.data.raw.append((f"{read.origin}.entry[{index}].resource", resource))

    def _partial(self, read: _Read, pages: Pages) -> bool:
        """Record a read that does not cover its window (more pages than the bound, paging failed, or
        a paged prefetch without a fhirServer to finish it from). Returns whether what was read may
        still be used."""
        kind = read.need.kind
        if pages.pages >= self.client.max_pages:
            reason = f"the FHIR server has more than {self.client.max_pages} pages of results in the window"
            fhir_fetched.send(self.client, kind=kind, result="incomplete")
        elif pages.next_url == "(failed)":
            reason = "reading the next page from the FHIR server failed"
        else:
            reason = "the prefetch was paged and no fhirServer was given to read the rest from"
        log.info("data read in part", extra={"key": kind.value, "reason": reason})
        if read.need.lookback_days is None:
            # A whole-history kind (conditions, allergies, IgA): any entry left unread may be the one
            # that matters (a HIT of 2019), so absence proves nothing; what was read is still true.
            self.data.partial.append(Partial(kind, None, reason))
            self.data.unavailable.add(kind)
            return True
        if pages.newest_first:
            self.data.partial.append(Partial(kind, pages.oldest, reason))
            return True
        # Results not newest first: the newest may be the one missing, so none of it can be used.
        self.data.partial.append(Partial(kind, None, reason + "; the server did not sort them newest first"))
        self.data.unavailable.add(kind)
        return False

    def _pool(self, reads: Sequence[_Read]) -> list[Mapping[str, Any]]:
        pooled: list[Mapping[str, Any]] = []
        for read in reads:
            if read.resource is not None:
                pooled.append(read.resource)
            for entry in read.pages.entries if read.pages is not None else ():
                resource = entry.get("resource") if isinstance(entry, Mapping) else None
                if _is_resource(resource):
                    pooled.append(resource)
        return pooled

    # --- referenced Medications ----------------------------------------------------------------

    def _resolve_medications(self, base: str | None, token: str | None) -> None:
        have = {f"Medication/{r.get('id')}" for r in self.data.resources() if r.get("resourceType") == "Medication"}
        wanted: dict[str, set[DataKind]] = {}
        for origin, resource in self.data.raw:
            kind = _MEDICATION_KINDS.get(str(resource.get("resourceType")))
            reference = resource.get("medicationReference")
            target = reference.get("reference") if isinstance(reference, Mapping) else None
            if kind is None or not isinstance(target, str) or target in have:
                continue
            if target.startswith("Medication/") and _FHIR_ID.fullmatch(target.split("/", 1)[1]):
                key = origin.split(".")[1] if "." in origin else ""
                wanted.setdefault(target, set()).add(DataKind(key) if key in _KINDS else kind)
        if not wanted:
            return
        found, failed = fetch_medications(self.client, base, token, self.deadline, sorted(wanted))
        self.data.raw.extend((f"fhirServer.medication-references.{ref}", med) for ref, med in found.items())
        kinds = set().union(*wanted.values())
        for kind in kinds:
            fhir_fetched.send(self.client, kind=kind, result="ok" if not failed else "not-found")
        if failed:  # not found, not allowed to be read, or the search failed: the history is incomplete
            self.data.unavailable.update(k for ref in failed for k in wanted[ref])
        elif found:
            self.data.fetched.add("medication-references")


_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_MEDICATION_KINDS = {"MedicationRequest": DataKind.MEDICATIONS, "MedicationAdministration": DataKind.ADMINISTRATIONS}
_KINDS = frozenset(k.value for k in DataKind)
_IDS_PER_SEARCH = 50  # keeps each search URL short; a chart rarely refers to more


def fetch_medications(
    client: FhirClient, base: str | None, token: str | None, deadline: float, references: Sequence[str]
) -> tuple[dict[str, Mapping[str, Any]], set[str]]:
    """`Medication/x` references read from the FHIR server with `_id` searches: (found, not had).

    Never contacts a server off the allowlist: the references are then simply not had, and the
    caller says so (a whole call is not refused for a lookup nothing else needed).
    """
    ids = [ref.split("/", 1)[1] for ref in references if _FHIR_ID.fullmatch(ref.split("/", 1)[-1])]
    found: dict[str, Mapping[str, Any]] = {}
    if not base or not client.allows(base):
        log.info("referenced Medications not supplied and not fetchable", extra={"keys": ["medication-references"]})
        return found, set(references)
    try:
        for first in range(0, len(ids), _IDS_PER_SEARCH):
            batch = ids[first : first + _IDS_PER_SEARCH]
            payload = client.search(
                base,
                f"Medication?_id={','.join(batch)}&_count={len(batch)}",
                token,
                deadline,
                since=None,
                instant_of=raw_instant,
            )
            entries = payload.entries if isinstance(payload, Pages) else ([{"resource": payload}] if payload else [])
            for entry in entries:
                resource = entry.get("resource") if isinstance(entry, Mapping) else None
                if (
                    _is_resource(resource)
                    and resource.get("resourceType") == "Medication"
                    and resource.get("id") in batch
                ):
                    found[f"Medication/{resource['id']}"] = resource
    except FhirError as error:
        log.warning("referenced Medications could not be read", extra={"reason": type(error).__name__})
    return found, set(references) - set(found)


def gather(
    needs: Sequence[DataNeed],
    templates: Mapping[str, str],
    settings: RuleSettings,
    body: Mapping[str, Any],
    client: FhirClient,
    executor: ThreadPoolExecutor,
    deadline: float,
    now: datetime,
) -> PatientData:
    """The call's data; `deadline` (time.monotonic()) is the call's one budget for FHIR reads."""
    return Gatherer(needs, templates, settings, client, executor, deadline, now).gather(body)
