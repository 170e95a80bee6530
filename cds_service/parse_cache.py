"""Parsed FHIR resources kept for a short while, so the same chart is not parsed again call after call.

Why: an EHR calls the service many times in one ordering session: `order-select` at every change of
the selection, `order-sign` at the end, each with the same patient's record. Parsing a resource
with `fhir.resources` costs about a tenth of a millisecond, the largest part of a hook call's CPU
once everything else is paid only for what is read. Parsing is a pure function of the resource's
JSON, so the result can be reused exactly: the key is the resource's whole canonical JSON (not a
hash of it) with what the reader was asked to read, and the value is what the tolerant reader
returned, its repair paths relative, re-rooted at the caller's path on every use.

What it costs: parsed resources (patient data) stay in the worker's memory after the call, for at
most `IVIG_CDS_PARSE_CACHE_SECONDS` (default 120 s: one ordering session) and at most
`IVIG_CDS_PARSE_CACHE_SIZE` resources (least recently used first out); they are never written
anywhere. `IVIG_CDS_PARSE_CACHE_SIZE=0` turns it off. The models are shared between calls and
threads, and nothing in the service mutates a parsed resource.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from hooks import fhir_model
from hooks.fhir_model import Reading, Repair


class ParseCache:
    def __init__(self, size: int, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.seconds = seconds
        self.clock = clock
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[Any, ...], tuple[float, Reading]] = OrderedDict()
        self._lock = threading.Lock()

    def read(
        self,
        raw: object,
        *,
        where: str,
        reads: frozenset[str],
        keep: frozenset[str] | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> Reading:
        """`hooks.fhir_model.read_resource`, from the cache when the same JSON was read the same way."""
        if self.size <= 0 or not isinstance(raw, Mapping):
            return fhir_model.read_resource(raw, where=where, reads=reads, keep=keep, defaults=defaults)
        try:
            key = (
                json.dumps(raw, sort_keys=True, separators=(",", ":")),
                reads,
                keep,
                json.dumps(defaults, sort_keys=True) if defaults else None,
            )
        except (TypeError, ValueError, RecursionError):  # not plain JSON: read it as it comes
            return fhir_model.read_resource(raw, where=where, reads=reads, keep=keep, defaults=defaults)
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry[0] <= self.seconds:
                self._entries.move_to_end(key)
                self.hits += 1
                reading = entry[1]
            else:
                reading = None
        if reading is None:
            reading = fhir_model.read_resource(raw, where="", reads=reads, keep=keep, defaults=defaults)
            with self._lock:
                self.misses += 1
                self._entries[key] = (now, reading)
                self._entries.move_to_end(key)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return Reading(
            reading.resource,
            reading.data,
            [Repair(where + repair.where, repair.action) for repair in reading.repairs],
            list(reading.unreadable),
            reading.problem,
        )

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
