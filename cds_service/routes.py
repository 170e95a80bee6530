"""The HTTP edge: CDS Hooks discovery and invocation, health and readiness.

Routes are thin: they check the transport (method, content type, size) and hand the body to the
pipeline. Everything that goes wrong is a `CdsError` or an HTTP error, rendered as JSON by
`install_error_handlers`.
"""

from __future__ import annotations

import logging
import traceback
from functools import cache
from importlib import resources
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException, NotFound

from cds_service import observability
from cds_service.errors import CdsError, UnsupportedMediaTypeError, element_path, operation_outcome
from cds_service.pipeline import Outcome, Pipeline

log = logging.getLogger(__name__)

cds = Blueprint("cds", __name__)
ops = Blueprint("ops", __name__)


def pipeline() -> Pipeline:
    return current_app.extensions["ivig_cds.pipeline"]


def require_json() -> None:
    """415 unless the body is JSON; every POST endpoint under /cds-services shares this check."""
    mimetype = (request.mimetype or "").lower()
    if mimetype not in ("application/json", "application/fhir+json"):
        raise UnsupportedMediaTypeError("send the request body as application/json")


@cds.get("/cds-services")
def discovery() -> Response:
    return jsonify(pipeline().discovery())


def _remember(outcome: Outcome) -> None:
    """Keep the call's outcome where the audit and metrics hooks find it, even if it is refused later."""
    request.environ["ivig_cds.outcome"] = outcome
    observability.bind_hook_instance(outcome.hook_instance)  # every later log line of the call names it


@cds.post("/cds-services/<service_id>")
def invoke(service_id: str) -> Response:
    pipeline().service(service_id)  # 404 before anything else is looked at
    require_json()
    outcome = pipeline().call(
        service_id, request.get_data(cache=False), identified=_remember, request_id=g.get("request_id")
    )
    log.info(
        "hook answered",
        extra={
            "service": outcome.service_id,
            "cards": len(outcome.cards),
            "rules": ",".join(f.rule for f in outcome.findings),
            "data_mode": outcome.data_mode,
            "elapsed_ms": round(outcome.elapsed_ms, 1),
        },
    )
    return jsonify({"cards": outcome.cards})


@ops.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "alive"})


@ops.get("/readyz")
def readyz() -> tuple[Response, int]:
    checks: dict[str, Any] = current_app.extensions.get("ivig_cds.readiness", {})
    results = {name: check() for name, check in checks.items()}
    ready = all(results.values())
    return jsonify({"status": "ready" if ready else "not ready", "checks": results}), 200 if ready else 503


@ops.get("/openapi.yaml")
def api_description() -> Response:
    """The OpenAPI 3.1 description this release was tested against, for integration engineers' tools.

    Served as packaged, with the JSON Schemas it refers to (`schemas/<name>.json`, relative to this
    URL) beside it, so a tool given this one URL resolves the whole description. Needs no token:
    it describes the service, not a patient.
    """
    return Response(_packaged("openapi.yaml"), mimetype="application/yaml")


@ops.get("/schemas/<name>")
def json_schema(name: str) -> Response:
    if name not in _schema_names():
        raise NotFound()
    return Response(_packaged("schemas", name), mimetype="application/schema+json")


@cache
def _schema_names() -> frozenset[str]:
    folder = resources.files("cds_service").joinpath("schemas")
    return frozenset(entry.name for entry in folder.iterdir() if entry.name.endswith(".json"))


@cache
def _packaged(*parts: str) -> bytes:
    return resources.files("cds_service").joinpath(*parts).read_bytes()


def _error_response(status: int, message: str, code: str) -> Response:
    response = jsonify(operation_outcome(message, code))
    response.status_code = status
    return response


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(CdsError)
    def cds_error(error: CdsError) -> Response:
        details = {"status": error.status, "error": type(error).__name__}
        element = element_path(error)
        if element:
            details["element"] = element
        log.info("request refused", extra=details)
        return _error_response(error.status, error.message, error.issue_code)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        codes = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported"}
        messages = {
            404: "no such endpoint; CDS services are under /cds-services",
            405: "this method is not allowed on this endpoint",
            413: "the request body is larger than this service accepts",
        }
        response = _error_response(status, messages.get(status, error.name), codes.get(status, "processing"))
        if status == 405 and getattr(error, "valid_methods", None):
            response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        frames = traceback.extract_tb(error.__traceback__)
        where = " <- ".join(f"{f.name}@{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in reversed(frames[-6:]))
        # The exception's message may quote request data, so only its type and frames are logged.
        log.error("unexpected error", extra={"error": type(error).__name__, "where": where})
        return _error_response(500, "internal error; the incident was logged", "exception")
