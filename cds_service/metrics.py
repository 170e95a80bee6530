"""Prometheus metrics at `GET /metrics`: traffic, latency, cards, FHIR reads, refused tokens, audit drops.

Why every label is drawn from a fixed set: a label value becomes a time series, stored for weeks by
whoever scrapes us. A label taken from a request (a patient id, a token, a made-up service id)
would both leak data into the monitoring system and let a caller create series without bound. So
service ids come from the service registry (anything else is `unknown`), rule ids from the rule
registry, data kinds from `hooks.facts.DataKind`, refusal reasons and fetch results from fixed
word lists (anything else is `other`), status codes from the HTTP response.

Why multiprocess mode: gunicorn runs several worker processes and a scrape reaches one of them, so
per-process counters would each report a share of the traffic. With `PROMETHEUS_MULTIPROC_DIR` set
before prometheus_client is first imported, every process writes its values to files in that
directory and `/metrics` adds them up (`MultiProcessCollector`). `ivig-cds serve` sets it up
(`multiprocess_directory`); prometheus_client is imported only inside functions here, so importing
the application cannot fix the mode too early. In multiprocess mode the per-process collectors
(CPU, memory, GC) are left out: they would describe whichever worker answered the scrape.

The modules that see the events (`patient_data`, `auth`, `audit`) announce them on blinker signals
and know nothing of Prometheus; the hook call itself is counted after the response is built.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec

from flask import Flask, Response, current_app, g, jsonify, request

from cds_service import audit, auth, feedback, patient_data
from cds_service.config import Settings
from cds_service.errors import operation_outcome
from cds_service.pipeline import Outcome
from hooks import fhir_model
from hooks.facts import DataKind
from hooks.rules import REGISTRY as RULES

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Histogram

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
EXTENSION = "ivig_cds.metrics"
INVOKE_ENDPOINT = audit.INVOKE_ENDPOINT
#: Seconds. The EHR waits at most ~500 ms for cards; the buckets are dense around that budget.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0)
INDICATORS = frozenset({"info", "warning", "critical"})
#: Every `reason` word `cds_service.jwt_auth` can give (tests keep this list in step with it).
AUTH_REASONS = frozenset(
    {
        "invalid",
        "missing",
        "not-bearer",
        "malformed",
        "no-trusted-issuers",
        "bad-type",
        "bad-algorithm",
        "missing-kid",
        "unknown-issuer",
        "jku-not-allowed",
        "jku-required",
        "jwks-unavailable",
        "unknown-kid",
        "key-mismatch",
        "bad-key",
        "expired",
        "not-yet-valid",
        "bad-audience",
        "missing-claim",
        "bad-signature",
        "bad-claim",
        "lifetime-too-long",
        "replayed",
    }
)
RULE_IDS = frozenset(RULES)
DATA_KINDS = frozenset(kind.value for kind in DataKind)
FETCH_RESULTS = frozenset(patient_data.FETCH_RESULTS)
FEEDBACK_OUTCOMES = frozenset({"accepted", "overridden"})
REPAIR_ACTIONS = frozenset(fhir_model.REPAIR_ACTIONS)
#: Where a repaired element came from, by the start of its path (`Repair.where`).
REPAIR_SOURCES = {"context.draftOrders": "draft", "prefetch.": "prefetch", "fhirServer.": "fhir-server"}
UNKNOWN = "unknown"
OTHER = "other"

P = ParamSpec("P")


def _never_raises(function: Callable[P, None]) -> Callable[P, None]:
    """Counting must never cost the clinician the answer: a failure is logged (by type) and ignored."""

    @functools.wraps(function)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            function(*args, **kwargs)
        except Exception as error:
            log.error("metric not recorded", extra={"error": type(error).__name__})

    return guarded


def bounded(value: object, allowed: frozenset[str], fallback: str = OTHER) -> str:
    """`value` when it is one of `allowed`, else `fallback`: a label never takes a value from outside."""
    return value if isinstance(value, str) and value in allowed else fallback


@dataclass
class Metrics:
    """One app's metric objects and what `/metrics` exposes; kept in `app.extensions`."""

    registry: CollectorRegistry
    token: str | None
    services: frozenset[str]
    hook_requests: Counter
    hook_duration: Histogram
    cards: Counter
    fhir_fetches: Counter
    auth_rejections: Counter
    audit_dropped: Counter
    feedback: Counter
    input_repairs: Counter

    @_never_raises
    def count_hook_call(self, service_id: str | None, status: int, seconds: float | None) -> None:
        service = bounded(service_id, self.services, UNKNOWN)
        self.hook_requests.labels(service=service, status=str(status)).inc()
        if seconds is not None:
            self.hook_duration.labels(service=service).observe(seconds)

    @_never_raises
    def count_cards(self, outcome: Outcome) -> None:
        for card in outcome.cards:
            rule = ((card.get("source") or {}).get("topic") or {}).get("code")
            self.cards.labels(rule=bounded(rule, RULE_IDS), indicator=bounded(card.get("indicator"), INDICATORS)).inc()

    @_never_raises
    def count_repairs(self, outcome: Outcome) -> None:
        for repair in outcome.repairs:
            source = next((name for start, name in REPAIR_SOURCES.items() if repair.where.startswith(start)), OTHER)
            self.input_repairs.labels(source=source, action=bounded(repair.action, REPAIR_ACTIONS)).inc()

    @_never_raises
    def on_fhir_fetch(self, _client: object, *, kind: DataKind, result: str) -> None:
        self.fhir_fetches.labels(
            kind=bounded(str(kind), DATA_KINDS),
            result=bounded(result, FETCH_RESULTS),
        ).inc()

    @_never_raises
    def on_token_refused(self, _app: object, *, reason: str) -> None:
        self.auth_rejections.labels(reason=bounded(reason, AUTH_REASONS)).inc()

    @_never_raises
    def on_audit_dropped(self, _writer: object) -> None:
        self.audit_dropped.inc()

    @_never_raises
    def on_feedback(self, _app: object, *, outcomes: list[str]) -> None:
        for outcome in outcomes:
            self.feedback.labels(outcome=bounded(outcome, FEEDBACK_OUTCOMES)).inc()


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def init_app(app: Flask, settings: Settings, registry: CollectorRegistry | None = None) -> Metrics | None:
    """Count this app's traffic and serve `GET /metrics` (unless `IVIG_CDS_METRICS=false`: then 404).

    `registry`: where the metrics are registered and what `/metrics` exposes in single-process mode;
    a new one per app when omitted, so two apps in one process (tests) never share counts. In
    multiprocess mode the metrics live in the shared files instead and `registry` is not used.
    Call after the pipeline and the audit writer exist: their events are connected here.
    """
    if not settings.metrics:
        return None
    from prometheus_client import CollectorRegistry, Counter, Histogram, values
    from prometheus_client.gc_collector import GCCollector
    from prometheus_client.multiprocess import MultiProcessCollector
    from prometheus_client.platform_collector import PlatformCollector
    from prometheus_client.process_collector import ProcessCollector

    shared = multiprocess_mode()
    if shared != bool(getattr(values.ValueClass, "_multiprocess", False)):
        raise RuntimeError(
            f"{MULTIPROC_ENV} was set or unset after prometheus_client was imported; set it before the process starts"
        )
    own: CollectorRegistry | None
    if shared:
        own = None  # the metric objects write to files; the collector below reads every process's files
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        PlatformCollector(registry=registry)
    else:
        if registry is None:
            registry = CollectorRegistry()
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        own = registry

    state = Metrics(
        registry=registry,
        token=settings.metrics_token,
        services=frozenset(app.extensions["ivig_cds.pipeline"].services),
        hook_requests=Counter(
            "ivig_cds_hook_requests",
            "POST /cds-services/{id} calls by service id (unknown ids: 'unknown') and HTTP status.",
            ["service", "status"],
            registry=own,
        ),
        hook_duration=Histogram(
            "ivig_cds_hook_duration_seconds",
            "Time to answer POST /cds-services/{id}, from the request's arrival to its response.",
            ["service"],
            buckets=DURATION_BUCKETS,
            registry=own,
        ),
        cards=Counter(
            "ivig_cds_cards", "Cards returned, by rule id and indicator.", ["rule", "indicator"], registry=own
        ),
        fhir_fetches=Counter(
            "ivig_cds_fhir_fetch",
            "FHIR server reads for missing prefetch, by data kind and result.",
            ["kind", "result"],
            registry=own,
        ),
        auth_rejections=Counter(
            "ivig_cds_auth_rejections", "CDS client JWTs refused (401), by reason.", ["reason"], registry=own
        ),
        audit_dropped=Counter(
            "ivig_cds_audit_dropped", "Audit rows dropped because the audit queue was full.", registry=own
        ),
        feedback=Counter(
            "ivig_cds_feedback",
            "Feedback items received (duplicates included), by outcome.",
            ["outcome"],
            registry=own,
        ),
        input_repairs=Counter(
            "ivig_cds_input_repairs",
            "Elements of the FHIR input the tolerant reader repaired, left out or could not read, by source "
            "(draft, prefetch, fhir-server, other) and action; the log names each element's path.",
            ["source", "action"],
            registry=own,
        ),
    )
    app.extensions[EXTENSION] = state  # also keeps the signal receivers (weakly connected) alive

    patient_data.fhir_fetched.connect(state.on_fhir_fetch, sender=app.extensions["ivig_cds.pipeline"].client)
    auth.token_refused.connect(state.on_token_refused, sender=app)
    feedback.feedback_stored.connect(state.on_feedback, sender=app)
    writer = app.extensions.get("ivig_cds.audit")
    if writer is not None:
        audit.row_dropped.connect(state.on_audit_dropped, sender=writer)

    @app.after_request
    def count_hook_call(response: Response) -> Response:
        if audit.is_hook_call():
            started = g.get("started")  # set by observability's before_request
            seconds = time.perf_counter() - started if started is not None else None
            state.count_hook_call((request.view_args or {}).get("service_id"), response.status_code, seconds)
            outcome = request.environ.get("ivig_cds.outcome")
            if outcome is not None:
                state.count_cards(outcome)
                state.count_repairs(outcome)
        return response

    app.add_url_rule("/metrics", endpoint="metrics", view_func=serve_metrics, methods=["GET"])
    return state


def authorized(header: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time."""
    scheme, _, presented = (header or "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())


def serve_metrics() -> Response:
    from prometheus_client.exposition import choose_encoder

    state: Metrics = current_app.extensions[EXTENSION]
    if state.token is not None and not authorized(request.headers.get("Authorization"), state.token):
        log.warning("metrics token refused", extra={"status": 401})  # what was sent is never logged
        response = jsonify(operation_outcome("send the metrics token as 'Authorization: Bearer <token>'", "login"))
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="ivig-cds-metrics"'
        return response
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = Response(encode(state.registry), content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- gunicorn: one metrics directory shared by the workers of one `ivig-cds serve` ----------------


@contextlib.contextmanager
def multiprocess_directory(enabled: bool = True) -> Iterator[Path | None]:
    """Set up `PROMETHEUS_MULTIPROC_DIR` for the workers gunicorn is about to fork, before any metric exists.

    The operator's directory is used when set (files left by an earlier run are removed: counts
    would otherwise carry over); else a private temporary directory is made, and removed when the
    server stops. Only the process that entered removes it: gunicorn workers are forks that leave
    through this same `with` block.
    """
    if not enabled:
        yield None
        return
    configured = os.environ.get(MULTIPROC_ENV)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
    else:
        path = Path(tempfile.mkdtemp(prefix="ivig-cds-metrics-"))
        os.environ[MULTIPROC_ENV] = str(path)
    owner = os.getpid()
    try:
        yield path
    finally:
        if not configured and os.getpid() == owner:
            shutil.rmtree(path, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)


def child_exit(_server: Any, worker: Any) -> None:
    """gunicorn's `child_exit` hook (in the master): the prometheus_client bookkeeping for a gone worker."""
    if not multiprocess_mode():
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
