"""CORS for `/cds-services`, for browser-based CDS clients such as the CDS Hooks sandbox.

Why our own twenty lines rather than a library: the policy is tiny and fixed (configured origins,
`GET`/`POST`, the `Authorization` and `Content-Type` headers, no cookies) and must be visible at a
glance. Preflight (`OPTIONS`) is answered here before authentication runs, since browsers send it
without credentials. Origins not configured get no CORS headers, so the browser blocks the call.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from flask import Flask, Response, request

from cds_service.config import ConfigError

PREFIX = "/cds-services"
ALLOWED_METHODS = "GET, POST"
ALLOWED_HEADERS = "Authorization, Content-Type"
EXPOSED_HEADERS = "WWW-Authenticate, X-Request-Id"
MAX_AGE_SECONDS = "600"


def parse_origins(origins: Iterable[str]) -> frozenset[str]:
    """Configured origins, checked: `*`, or `scheme://host[:port]` with nothing after it."""
    checked = set()
    for origin in origins:
        if origin == "*":
            checked.add(origin)
            continue
        parts = urlsplit(origin)
        if (
            parts.scheme not in ("https", "http")
            or not parts.hostname
            or parts.path
            or parts.query
            or parts.fragment
            or "@" in parts.netloc
        ):
            raise ConfigError(f"IVIG_CDS_CORS_ORIGINS entry {origin!r} is not an origin like https://host[:port]")
        checked.add(f"{parts.scheme}://{parts.netloc}".lower())
    return frozenset(checked)


def init_app(app: Flask, origins: Iterable[str]) -> None:
    allowed = parse_origins(origins)
    if not allowed:
        return

    def origin_allowed() -> str | None:
        origin = request.headers.get("Origin")
        if origin and request.path.startswith(PREFIX) and ("*" in allowed or origin.lower() in allowed):
            return origin
        return None

    @app.before_request
    def preflight() -> Response | None:
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        origin = origin_allowed()
        if origin is None:
            return None  # Flask's own OPTIONS answer, without CORS headers: the browser refuses
        response = Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = MAX_AGE_SECONDS
        return response

    @app.after_request
    def allow_origin(response: Response) -> Response:
        if request.path.startswith(PREFIX):
            response.vary.add("Origin")
        origin = origin_allowed()
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = "*" if "*" in allowed else origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        return response
