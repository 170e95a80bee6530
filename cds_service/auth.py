"""Who may call: CDS Hooks JWT verification, or nothing at all in explicit local development.

Every path under `/cds-services` (discovery, invocation, feedback, whatever blueprint serves it)
is guarded by one `before_request`, so a new endpoint there cannot be forgotten. Health, readiness
and metrics stay open; CORS preflight (OPTIONS) carries no credentials and is answered unguarded.
"""

from __future__ import annotations

import logging

import requests
from blinker import Namespace
from flask import Flask, Response, current_app, g, jsonify, request

from cds_service.config import Settings
from cds_service.errors import operation_outcome
from cds_service.jwt_auth import (
    JwksCache,
    JwtVerifier,
    TokenRejectedError,
    VerifiedClient,
    check_algorithms,
    load_issuers,
)
from cds_service.outbound import configure_session, new_session
from cds_service.replay import make_jti_cache
from cds_service.storage import Storage

log = logging.getLogger(__name__)

#: Sent for every refused CDS client token, with `reason` (the verifier's fixed word); the sender is
#: the Flask app. Metrics count it; this module needs to know nothing about them.
token_refused = Namespace().signal("ivig-cds.token-refused")

PROTECTED_PREFIX = "/cds-services"

LOCAL_DEVELOPMENT_WARNING = (
    "IVIG_CDS_AUTH=off: CDS client authentication is DISABLED. Any caller can send patient data "
    "and receive cards. Use this only for local development, never with real patient data."
)
NO_ISSUERS_WARNING = (
    "IVIG_CDS_AUTH=jwt but no trusted issuers configured: every call to /cds-services will be refused "
    "with 401. Set IVIG_CDS_JWT_ISSUERS or IVIG_CDS_JWT_ISSUERS_FILE (see README, 'Connecting an EHR')."
)


NO_PUBLIC_BASE_URL_WARNING = (
    "IVIG_CDS_PUBLIC_BASE_URL is not set: a JWT's aud is compared with the URL as the request reached "
    "this process, built from its Host header. Set it to the URL EHRs call, so that a token minted for "
    "another service cannot be replayed here under a forged Host header."
)


def init_app(app: Flask, settings: Settings, storage: Storage, session: requests.Session | None = None) -> None:
    """Install the JWT guard (or log loudly that there is none). Bad configuration raises ConfigError.

    `storage` holds the `jti` replay window unless `IVIG_CDS_JTI_CACHE_URL` names a Redis.
    """
    if settings.auth == "off":
        log.warning(LOCAL_DEVELOPMENT_WARNING)
        return
    issuers = load_issuers(settings)
    app.extensions["ivig_cds.issuers"] = issuers
    if not issuers:
        log.warning(NO_ISSUERS_WARNING)
    elif not settings.public_base_url:
        log.warning(NO_PUBLIC_BASE_URL_WARNING)
    verifier = JwtVerifier(
        issuers,
        JwksCache(
            configure_session(session, settings) if session is not None else new_session(settings),
            refresh_interval=settings.jwks_refresh_interval,
            max_age=settings.jwks_max_age,
        ),
        make_jti_cache(settings.jti_cache_url, storage),
        algorithms=check_algorithms(settings.jwt_algorithms),
        leeway=settings.jwt_leeway,
        max_lifetime=settings.jwt_max_lifetime,
    )
    app.extensions["ivig_cds.jwt"] = verifier
    app.extensions["ivig_cds.replay"] = verifier.replay
    app.before_request(_authenticate)
    app.register_error_handler(TokenRejectedError, _refused)


def expected_audience(public_base_url: str | None) -> str:
    """The URL the client called, as it saw it: behind a proxy that is the public base URL + path."""
    if public_base_url:
        return public_base_url.rstrip("/") + request.path
    return request.base_url


def is_protected(path: str) -> bool:
    return path.startswith(PROTECTED_PREFIX)


def _authenticate() -> None:
    if request.method == "OPTIONS" or not is_protected(request.path):
        return
    settings: Settings = current_app.config["IVIG_CDS"]
    verifier: JwtVerifier = current_app.extensions["ivig_cds.jwt"]
    g.cds_client = verifier.verify(request.headers.get("Authorization"), expected_audience(settings.public_base_url))


def current_client() -> VerifiedClient | None:
    """The verified caller of this request (None when authentication is off)."""
    return g.get("cds_client")


def _refused(error: TokenRejectedError) -> Response:
    # The reason is a fixed word chosen by the verifier; the token itself is never logged.
    log.warning("CDS client token refused", extra={**error.details, "status": 401, "reason": error.reason})
    token_refused.send(current_app._get_current_object(), reason=error.reason)  # type: ignore[attr-defined]
    response = jsonify(operation_outcome(error.message, error.issue_code))
    response.status_code = 401
    response.headers["WWW-Authenticate"] = error.www_authenticate
    return response
