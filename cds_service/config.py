"""Service configuration: defaults, then `IVIG_CDS_*` environment variables, then a test mapping.

Why a typed, validated object built once at start: a typo in a deployment variable must stop the
service with a clear message, not surface as odd behaviour during a clinician's order.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from hooks.settings import RuleSettings, parse_text

PREFIX = "IVIG_CDS_"
RULE_PREFIX = "IVIG_CDS_RULE_"


class ConfigError(ValueError):
    """The configuration cannot run safely; the message says which variable and why."""


@dataclass(frozen=True)
class Settings:
    auth: str = "jwt"  # jwt | off (local development only)
    fhir_allowlist: tuple[str, ...] = ()  # FHIR base URLs the service may call
    fhir_allow_http: bool = False  # plain-http FHIR servers (local development only)
    fhir_connect_timeout: float = 2.0  # seconds
    fhir_read_timeout: float = 3.0  # seconds, per request
    fhir_total_timeout: float = 4.0  # seconds, all fetches of one hook call
    fhir_max_pages: int = 5  # Bundle pages read per kind of data inside its window (hooks/data_needs.py)
    fhir_max_response_bytes: int = 10 * 1024 * 1024
    fhir_workers: int = 8  # parallel fetches per process
    max_body_bytes: int = 5 * 1024 * 1024  # request body limit
    log_level: str = "INFO"
    public_base_url: str | None = None  # this service's public URL (JWT `aud`)
    jwt_issuers: str | None = None  # JSON list of trusted CDS clients (see cds_service/jwt_auth.py)
    jwt_issuers_file: str | None = None  # or a path to a file holding that JSON
    jwt_algorithms: tuple[str, ...] = ("ES384", "RS384")  # asymmetric only: never none or HMAC
    jwt_leeway: int = 60  # seconds of clock skew tolerated on exp, nbf, iat
    jwt_max_lifetime: int = 3600  # seconds from iat to exp; bounds the jti replay window
    jwks_refresh_interval: float = 30.0  # seconds: least time between two fetches of one JWKS URL
    jwks_max_age: float = 3600.0  # seconds a fetched JWKS is trusted before it is fetched again
    jti_cache_url: str | None = None  # redis://... for the jti replay window; unset: the service's database
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call /cds-services (e.g. a sandbox)
    database_url: str = "sqlite:///ivig-cds.db"  # SQLAlchemy URL: SQLite file, or postgresql+psycopg://
    database_timeout: float = 5.0  # seconds to connect, or to wait for a locked SQLite file
    audit: bool = True  # one audit row per hook call (off only to measure its cost)
    audit_key: str | None = field(default=None, repr=False)  # HMAC key for patient ids in audit rows
    audit_queue_size: int = 10_000  # audit rows waiting for the writer; beyond, new rows are dropped
    metrics: bool = True  # serve Prometheus metrics at GET /metrics (off: 404)
    metrics_token: str | None = field(default=None, repr=False)  # if set, /metrics needs this Bearer token
    rules: RuleSettings = field(default_factory=RuleSettings)
    # Advertise CDS Hooks 3.0 date tokens (`{{today() - 90 days}}`) in the discovery prefetch, so a
    # client that resolves them sends only the window the rules read. Off: CDS Hooks 2.0 tokens only.
    prefetch_date_tokens: bool = False
    # How `ivig-cds serve` runs (cds_service/server.py); its --host/--port/--workers/--threads win.
    host: str = "127.0.0.1"  # address to bind (the Docker image: 0.0.0.0)
    port: int = 8080  # the health check and probes follow it
    workers: int = 0  # gunicorn worker processes; 0: WEB_CONCURRENCY if set, else 2
    threads: int = 4  # threads per worker

    def __post_init__(self) -> None:
        if self.auth not in ("jwt", "off"):
            raise ConfigError(f"{PREFIX}AUTH must be 'jwt' or 'off', not {self.auth!r}")
        for url in self.fhir_allowlist:
            parts = urlsplit(url)
            if parts.scheme not in ("https", "http") or not parts.netloc:
                raise ConfigError(f"{PREFIX}FHIR_ALLOWLIST entry {url!r} is not an absolute http(s) URL")
            if parts.scheme == "http" and not self.fhir_allow_http:
                raise ConfigError(
                    f"{PREFIX}FHIR_ALLOWLIST entry {url!r} is plain http; set {PREFIX}FHIR_ALLOW_HTTP=true "
                    "to allow it (local development only)"
                )
        for name in ("fhir_connect_timeout", "fhir_read_timeout", "fhir_total_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{PREFIX}{name.upper()} must be positive")
        if self.fhir_workers < 1 or self.fhir_max_pages < 1 or self.max_body_bytes < 1024:
            raise ConfigError("FHIR_WORKERS, FHIR_MAX_PAGES must be ≥1 and MAX_BODY_BYTES ≥1024")
        if self.public_base_url is not None:
            parts = urlsplit(self.public_base_url)
            if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
                raise ConfigError(f"{PREFIX}PUBLIC_BASE_URL must be an absolute http(s) URL without query")
        if not 0 <= self.jwt_leeway <= 300 or self.jwt_max_lifetime < 1:
            raise ConfigError(f"{PREFIX}JWT_LEEWAY must be 0 to 300 seconds and JWT_MAX_LIFETIME positive")
        if self.jwks_refresh_interval < 0 or self.jwks_max_age <= 0:
            raise ConfigError("JWKS_REFRESH_INTERVAL ≥0 and JWKS_MAX_AGE >0 are required")
        if not self.database_url or not self.database_url.startswith(("sqlite:", "postgresql", "postgres:")):
            raise ConfigError(f"{PREFIX}DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL")
        if self.database_timeout <= 0 or self.audit_queue_size < 1:
            raise ConfigError(f"{PREFIX}DATABASE_TIMEOUT must be positive and {PREFIX}AUDIT_QUEUE_SIZE ≥1")
        if self.audit_key is not None and len(self.audit_key) < 32:
            raise ConfigError(f"{PREFIX}AUDIT_KEY must be at least 32 characters (e.g. 32 random bytes as hex)")
        token = self.metrics_token
        if token is not None and (len(token) < 16 or not all("!" <= c <= "~" for c in token)):
            raise ConfigError(f"{PREFIX}METRICS_TOKEN must be at least 16 visible ASCII characters (no spaces)")
        if not self.host or not 0 < self.port < 65536 or self.workers < 0 or self.threads < 1:
            raise ConfigError(f"{PREFIX}HOST must be set, {PREFIX}PORT 1-65535, WORKERS ≥0 and THREADS ≥1")


def _parse(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, tuple):
        return tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())
    if isinstance(default, bool | int | float):
        try:
            return parse_text(raw, default)
        except ValueError as error:
            raise ConfigError(f"{PREFIX}{name.upper()} {error}") from None
    return raw.strip() or None


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Build Settings from the environment (`IVIG_CDS_*`) and then explicit overrides (tests)."""
    environ = os.environ if environ is None else environ
    base = Settings()
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = environ.get(PREFIX + f.name.upper())
        if raw is not None and f.name != "rules":
            default = getattr(base, f.name)
            values[f.name] = _parse(f.name, raw, "" if default is None else default)
    rule_overrides = {
        key[len(RULE_PREFIX) :].lower(): value
        for key, value in environ.items()
        if key.startswith(RULE_PREFIX)
    }
    try:
        rules = RuleSettings().with_overrides(rule_overrides)
    except ValueError as error:
        raise ConfigError(f"{RULE_PREFIX}*: {error}") from None
    values["rules"] = rules
    for key, value in (overrides or {}).items():
        if not hasattr(base, key):
            raise ConfigError(f"unknown setting {key!r}")
        values[key] = tuple(value) if key == "fhir_allowlist" else value
    if "fhir_allowlist" in values:
        values["fhir_allowlist"] = tuple(url.rstrip("/") for url in values["fhir_allowlist"])
    return Settings(**values)
