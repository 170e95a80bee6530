"""Logs as one JSON object per line, with a request id, and nothing a patient could be known by.

Why a fixed allowlist of fields: the easiest way to leak patient data is a well-meant
`log.info(body)`. Only the fields named in `SAFE_FIELDS` leave the process; anything else passed
in `extra=` is dropped, so a careless log call cannot widen what is written.

Why context variables: an operator follows one call through the log by its request id and the
EHR's hookInstance, so every line written while a call is served carries both, whichever module
wrote it (the JWT check, the FHIR reads, the audit). The ids live in `contextvars`, set when the
request starts and cleared when it ends, and a logging filter on the handler copies them onto each
record; `ContextExecutor` carries them into the threads that read the FHIR server.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, request

SAFE_FIELDS = (
    "request_id",
    "hook_instance",
    "method",
    "path",
    "status",
    "elapsed_ms",
    "service",
    "cards",
    "rules",
    "data_mode",
    "error",
    "where",
    "key",
    "keys",
    "reason",
    "setting",
    # Safe details of a refusal or failure: configuration and protocol facts, never a token,
    # a patient id or a value from a resource.
    "jwks_url",
    "failure",
    "retry_in_s",
    "expected_audience",
    "received_audience",
    "issuer",
    "host",
    "element",
    "database",
    "config",
)

#: An incoming X-Request-Id is kept when it looks like an id (a UUID, a ULID, a proxy's token):
#: letters, digits and `._:-`, at most 128 characters. Anything else is replaced, never echoed.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_MAX_HOOK_INSTANCE_CHARS = 128

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("ivig_cds_request_id", default=None)
_hook_instance: contextvars.ContextVar[str | None] = contextvars.ContextVar("ivig_cds_hook_instance", default=None)


def request_id_from(header: str | None) -> str:
    """The caller's request id when it is a sane token, else a new one."""
    if header and _SANE_REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex


def bind_hook_instance(hook_instance: str | None) -> None:
    """Name the EHR's hookInstance on every later line of this call (it is an id, not patient data)."""
    _hook_instance.set(hook_instance[:_MAX_HOOK_INSTANCE_CHARS] if hook_instance else None)


def current_request_id() -> str | None:
    return _request_id.get()


class RequestContextFilter(logging.Filter):
    """Copies the current call's request id and hookInstance onto every record the handler writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = _request_id.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        hook_instance = _hook_instance.get()
        if hook_instance is not None and not hasattr(record, "hook_instance"):
            record.hook_instance = hook_instance
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        out: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in SAFE_FIELDS:
            if hasattr(record, name):
                out[name] = getattr(record, name)
        if record.exc_info and record.exc_info[0] is not None and "error" not in out:
            # A traceback may quote request data: only the exception's type is written.
            out["error"] = record.exc_info[0].__name__
        return json.dumps(out, default=str, ensure_ascii=False)


def json_handler(stream: Any = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    return handler


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        root.addHandler(json_handler())
    logging.getLogger("cds_service").setLevel(level.upper())
    # urllib3 logs every URL it fetches at DEBUG, and FHIR search URLs carry the patient id.
    logging.getLogger("urllib3").setLevel(logging.WARNING)


class ContextExecutor(ThreadPoolExecutor):
    """A thread pool whose tasks run in the submitting call's context, so their log lines carry its ids."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        context = contextvars.copy_context()
        return super().submit(context.run, fn, *args, **kwargs)


def init_app(app: Flask) -> None:
    access = logging.getLogger("cds_service.access")

    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()
        g.request_id = request_id_from(request.headers.get("X-Request-Id"))
        _request_id.set(g.request_id)
        _hook_instance.set(None)

    @app.after_request
    def log_request(response: Response) -> Response:
        elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        response.headers["X-Request-Id"] = g.get("request_id", "")
        access.info(
            "request",
            extra={
                "request_id": g.get("request_id"),
                "method": request.method,
                "path": request.url_rule.rule if request.url_rule else "(unmatched)",
                "status": response.status_code,
                "elapsed_ms": round(elapsed, 1),
            },
        )
        return response

    @app.teardown_request
    def forget_ids(_error: BaseException | None) -> None:
        # gunicorn's threads serve one call after another: no id may leak into the next call.
        _request_id.set(None)
        _hook_instance.set(None)
