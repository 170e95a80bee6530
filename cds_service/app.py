"""The application factory: defaults, then the environment, then the caller's test mapping.

Each plumbing module exposes `init_app`; the factory wires them in dependency order. Nothing here
knows any clinical rule: those live in `hooks/`.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Flask

from cds_service import audit, auth, config_check, cors, feedback, metrics, observability, preview, routes, storage
from cds_service.config import Settings, load_settings
from cds_service.fhir_client import FhirClient
from cds_service.outbound import configure_session
from cds_service.pipeline import Pipeline

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the service. `test_config` may hold Settings fields plus `clock`, `http_session`, `metrics_registry`.

    `clock` (a callable returning an aware datetime) lets tests judge fixtures at their own moment;
    `http_session` lets tests mount a transport adapter for the FHIR client; `metrics_registry` (a
    prometheus_client CollectorRegistry) lets tests read the app's metrics directly.
    """
    options = dict(test_config or {})
    clock: Callable[[], datetime] = options.pop("clock", utc_now)
    session: requests.Session = options.pop("http_session", None) or requests.Session()
    metrics_registry = options.pop("metrics_registry", None)
    environ = options.pop("environ", None)
    settings: Settings = load_settings(environ, overrides=options)
    configure_session(session, settings)  # no proxy or trust store inherited from the environment

    observability.configure_logging(settings.log_level)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["IVIG_CDS"] = settings
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]

    # Order matters: request ids first, then CORS preflight (unauthenticated), then the JWT guard.
    observability.init_app(app)
    cors.init_app(app, settings.cors_origins)
    store = storage.init_app(app, settings)  # adds the "database" readiness check
    auth.init_app(app, settings, store, session)  # the jti replay window lives in the database

    # FHIR reads run in these threads; their log lines keep the call's request id and hookInstance.
    executor = observability.ContextExecutor(max_workers=settings.fhir_workers, thread_name_prefix="fhir")
    atexit.register(executor.shutdown, wait=False, cancel_futures=True)
    client = FhirClient(
        session,
        allowlist=settings.fhir_allowlist,
        allow_http=settings.fhir_allow_http,
        connect_timeout=settings.fhir_connect_timeout,
        read_timeout=settings.fhir_read_timeout,
        max_pages=settings.fhir_max_pages,
        max_bytes=settings.fhir_max_response_bytes,
    )
    pipeline = Pipeline(settings, client, executor, clock)
    pipeline.warm_up()
    app.extensions["ivig_cds.pipeline"] = pipeline
    app.extensions["ivig_cds.readiness"]["rules_loaded"] = lambda: bool(app.extensions["ivig_cds.pipeline"].services)
    audit.init_app(app, settings, store)
    feedback.init_app(app)
    metrics.init_app(app, settings, metrics_registry)

    app.register_blueprint(routes.cds)
    app.register_blueprint(routes.ops)
    preview.init_app(app, settings)
    routes.install_error_handlers(app)
    log.info(
        "configuration in force",
        extra={"config": config_check.summary(settings, app.extensions.get("ivig_cds.issuers", ()))},
    )
    return app
