"""The audit trail: one row per `POST /cds-services/{id}`, written off the request thread.

What a row holds: time, service, hook, hookInstance, data mode (prefetch | fetched | mixed | none),
HTTP status (errors too: a 400 or 412 call gets a row with its status and no cards), latency, the
request id, and one `card` row per card returned (card uuid → rule id, indicator) so feedback can
be joined to the rule that produced the card. Never a patient id in clear: only
HMAC-SHA256(`IVIG_CDS_AUDIT_KEY`, patient id), which links one patient's calls across replicas and
restarts without naming the patient.

**Without a key, rows carry no patient hash at all** (NULL), and a warning says so at start. A
random per-process key was considered and refused: with several workers and replicas each would
hash the same patient differently, so the column would look like linkage while providing none.

Why a background writer: the clinician waits for the cards, not for the audit row. The request
thread only puts a record on a bounded queue (microseconds); one thread per process takes
batches off it and inserts them in one transaction each. The writer lets a batch gather for up to
`LINGER_SECONDS` after its first row: a transaction per row cost more CPU than the hook call's
whole judgement beside it (measured with bench/bench_scaling.py), a batch of many rows about the
same as one. If the database is slow or down, the
writer retries with back-off while the queue absorbs the burst; when the queue is full, new rows
are dropped *and counted* (logged with the count, never with data) rather than blocking a hook
call. On a clean shutdown (gunicorn's `worker_exit`, or `atexit` elsewhere) the queue is drained
before the process ends. A `kill -9` loses what is still queued: that is the price of not adding
a database round trip to every hook call, and the reason feedback (which must not be lost) is
written synchronously instead (`feedback.py`).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import hmac
import logging
import os
import queue
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from blinker import Namespace
from flask import Flask, Response, current_app, g, request
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from cds_service.config import Settings
from cds_service.storage import Storage, describe_error
from cds_service.storage.schema import card as card_table
from cds_service.storage.schema import invocation as invocation_table

log = logging.getLogger(__name__)

NO_KEY_WARNING = (
    "IVIG_CDS_AUDIT_KEY is not set: audit rows are written without a patient hash, so calls about "
    "the same patient cannot be linked; set a secret of at least 32 characters, the same on every replica"
)
INVOKE_ENDPOINT = "cds.invoke"
BATCH_SIZE = 500
LINGER_SECONDS = 0.05  # how long a batch may gather after its first row (a kill -9 may lose this much more)
RETRY_SECONDS = 30.0
CLOSE_TIMEOUT = 10.0

#: Sent (sender: the AuditWriter) each time a full queue drops a row, so metrics can count drops
#: across worker processes; `AuditWriter.dropped` only knows this process.
row_dropped = Namespace().signal("ivig-cds.audit-row-dropped")


def patient_hash(key: bytes | None, patient_id: str | None) -> str | None:
    """HMAC-SHA256 of the patient id under the audit key, as hex; None without a key or an id."""
    if key is None or not patient_id:
        return None
    return hmac.new(key, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class CardRow:
    card_uuid: str
    rule_id: str
    indicator: str


@dataclass(frozen=True)
class AuditRecord:
    id: str
    received_at: datetime
    service_id: str
    hook: str | None
    hook_instance: str | None
    patient_hash: str | None
    data_mode: str
    status: int
    latency_ms: float
    request_id: str | None
    cards: tuple[CardRow, ...] = ()


_STOP = object()
_WRITERS: weakref.WeakSet[AuditWriter] = weakref.WeakSet()


class AuditWriter:
    """A bounded queue and one writer thread per process, started on first use.

    Started lazily because gunicorn builds the app in its master and then forks: threads do not
    survive `fork()`, so each worker starts its own writer the first time it audits a call.
    """

    def __init__(
        self,
        storage: Storage,
        queue_size: int = 10_000,
        batch_size: int = BATCH_SIZE,
        retry_seconds: float = RETRY_SECONDS,
        linger_seconds: float = LINGER_SECONDS,
    ) -> None:
        # SQLite: a pooled twin of the store, with `synchronous=NORMAL`: opening a connection per batch
        # cost more than the batch, and in WAL mode NORMAL loses no commit to a process crash, only
        # (perhaps the last few) to a power cut, less than a `kill -9` loses from the queue anyway.
        # PostgreSQL: the store's own pool.
        self._schema = storage
        twin = getattr(storage, "dialect", None) == "sqlite"
        self.storage = Storage(storage.url, storage.timeout, hot=True) if twin else storage
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.retry_seconds = retry_seconds
        self.linger_seconds = linger_seconds
        self._start_lock = threading.Lock()
        self._reset()
        _WRITERS.add(self)

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=self.queue_size)
        self._cond = threading.Condition()
        self._pending = 0
        self._flushing = 0  # callers waiting in flush()
        self._hurry = threading.Event()  # set: write what is queued now, without lingering
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.written = 0
        self.dropped = 0
        self.lost = 0

    # -- request side -------------------------------------------------------------------------

    def submit(self, record: AuditRecord) -> bool:
        """Queue a record without waiting; False (and counted) when the queue is full."""
        self._ensure_started()
        with self._cond:
            self._pending += 1
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            with self._cond:
                self._pending -= 1
                self.dropped += 1
                dropped = self.dropped
                self._cond.notify_all()
            row_dropped.send(self)
            if dropped == 1 or dropped % 1000 == 0:
                log.warning(f"audit queue full: {dropped} audit rows dropped so far in this process")
            return False
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued record is written (or given up); False on timeout. The batch being
        gathered is written at once rather than after its linger."""
        with self._cond:
            self._flushing += 1
            self._hurry.set()
            try:
                return self._cond.wait_for(lambda: self._pending <= 0, timeout)
            finally:
                self._flushing -= 1
                if not self._flushing and not self._stopping.is_set():
                    self._hurry.clear()

    @property
    def pending(self) -> int:
        return self._pending

    def _ensure_started(self) -> None:
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._start_lock:
            if self._pid != os.getpid():
                self._reset()  # a forked child: the parent's queue and thread are not ours
            if self._thread is None:
                self._stopping.clear()
                self._hurry.clear()
                self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                self._thread.start()

    # -- writer side --------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            stop = item is _STOP
            batch: list[AuditRecord] = [] if stop else [item]
            if not stop:
                # Let more rows gather, unless someone waits for them (flush, shutdown). Sleeping on
                # an event, not on the queue: a writer waiting in `get` would be woken by every row.
                self._hurry.wait(self.linger_seconds)
            while not stop and len(batch) < self.batch_size:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                else:
                    batch.append(item)
            if batch:
                try:
                    self._write_with_retry(batch)
                except Exception as error:  # a bug must not kill the writer silently
                    self.lost += len(batch)
                    log.error("audit write failed unexpectedly", extra={"error": type(error).__name__})
                finally:
                    with self._cond:
                        self._pending -= len(batch)
                        self._cond.notify_all()
            if stop:
                return

    def _write_with_retry(self, batch: list[AuditRecord]) -> None:
        deadline = time.monotonic() + self.retry_seconds
        delay, attempt = 0.1, 0
        while True:
            attempt += 1
            try:
                self._write(batch)
            except IntegrityError as error:  # retrying cannot help
                self.lost += len(batch)
                log.error(
                    f"audit rows lost: {len(batch)} (rejected by the database)",
                    extra={"error": type(error).__name__, "failure": describe_error(error)},
                )
                return
            except SQLAlchemyError as error:
                if attempt == 1:
                    log.warning(
                        "audit write failed; retrying",
                        extra={
                            "error": type(error).__name__,
                            "failure": describe_error(error),
                            "database": self.storage.described,
                        },
                    )
                giving_up = time.monotonic() >= deadline or (self._stopping.is_set() and attempt >= 3)
                if giving_up:
                    self.lost += len(batch)
                    log.error(
                        f"audit rows lost: {len(batch)} (database unavailable)",
                        extra={"error": type(error).__name__, "failure": describe_error(error)},
                    )
                    return
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
            else:
                self.written += len(batch)
                return

    def _write(self, batch: list[AuditRecord]) -> None:
        self._schema.ensure_schema()
        invocations = [
            {
                "id": r.id,
                "received_at": r.received_at,
                "service_id": r.service_id,
                "hook": r.hook,
                "hook_instance": r.hook_instance,
                "patient_hash": r.patient_hash,
                "data_mode": r.data_mode,
                "status": r.status,
                "latency_ms": r.latency_ms,
                "request_id": r.request_id,
            }
            for r in batch
        ]
        cards = [
            {"invocation_id": r.id, "card_uuid": c.card_uuid, "rule_id": c.rule_id, "indicator": c.indicator}
            for r in batch
            for c in r.cards
        ]
        with self.storage.begin(write=True) as conn:
            conn.execute(invocation_table.insert(), invocations)
            if cards:
                conn.execute(card_table.insert(), cards)

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Write what is queued, then stop the thread (idempotent; a later submit restarts it)."""
        thread = self._thread
        if thread is None or self._pid != os.getpid() or not thread.is_alive():
            self._thread = None
            return
        self._stopping.set()
        self._hurry.set()
        with contextlib.suppress(queue.Full):  # then the thread is busy and join() below times out
            self._queue.put(_STOP, timeout=timeout)
        thread.join(timeout)
        if thread.is_alive():
            log.error(f"audit writer still busy at shutdown: {self._pending} audit rows may be lost")
        else:
            self._thread = None
        if self.dropped or self.lost:
            log.warning(f"audit trail incomplete in this process: {self.dropped} rows dropped, {self.lost} lost")
        if self.storage is not self._schema:
            self.storage.close()  # the pooled twin's connections (a later write opens new ones)


def drain_all(timeout: float = CLOSE_TIMEOUT) -> None:
    """Drain every writer of this process: gunicorn's `worker_exit` hook and `atexit` call this."""
    for writer in list(_WRITERS):
        writer.close(timeout)


atexit.register(drain_all)


def is_hook_call() -> bool:
    """A `POST /cds-services/{id}`: not a CORS preflight (OPTIONS) or HEAD on the same route, which
    are no hook calls and would inflate the governance report and the hook metrics."""
    return request.endpoint == INVOKE_ENDPOINT and request.method == "POST"


def _card_rows(cards: list[dict[str, Any]]) -> tuple[CardRow, ...]:
    rows = []
    for card in cards:
        topic = (card.get("source") or {}).get("topic") or {}
        rows.append(CardRow(str(card.get("uuid")), str(topic.get("code", "(none)")), str(card.get("indicator"))))
    return tuple(rows)


def init_app(app: Flask, settings: Settings, storage: Storage) -> AuditWriter | None:
    """Audit every hook invocation of this app (unless `IVIG_CDS_AUDIT=false`)."""
    if not settings.audit:
        return None
    key = settings.audit_key.encode("utf-8") if settings.audit_key else None
    if key is None:
        log.warning(NO_KEY_WARNING)
    writer = AuditWriter(storage, queue_size=settings.audit_queue_size)
    app.extensions["ivig_cds.audit"] = writer

    @app.after_request
    def audit_invocation(response: Response) -> Response:
        if not is_hook_call():
            return response
        try:
            outcome = request.environ.get("ivig_cds.outcome")
            service_id = str((request.view_args or {}).get("service_id", ""))[:200]
            started = g.get("started")
            latency = (time.perf_counter() - started) * 1000 if started else (outcome.elapsed_ms if outcome else 0.0)
            if outcome is not None:
                hook, instance = outcome.hook, outcome.hook_instance[:200]
                data_mode, cards = outcome.data_mode, _card_rows(outcome.cards)
                hashed = patient_hash(key, outcome.patient_id)
            else:
                service = current_app.extensions["ivig_cds.pipeline"].services.get(service_id)
                hook, instance, data_mode, cards, hashed = (service.hook if service else None), None, "none", (), None
            writer.submit(
                AuditRecord(
                    id=uuid.uuid4().hex,
                    received_at=datetime.now(UTC),
                    service_id=service_id,
                    hook=hook,
                    hook_instance=instance,
                    patient_hash=hashed,
                    data_mode=data_mode,
                    status=response.status_code,
                    latency_ms=latency,
                    request_id=g.get("request_id"),
                    cards=cards,
                )
            )
        except Exception as error:  # the audit must never cost the clinician the answer
            log.error("audit record not queued", extra={"error": type(error).__name__})
        return response

    return writer
