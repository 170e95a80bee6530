"""Service configuration: defaults, then `IVIG_CDS_*` environment variables, then a test mapping.

Why a typed, validated object built once at start: a typo in a deployment variable must stop the
service with a clear message, not surface as odd behaviour during a clinician's order.
"""

from __future__ import annotations

import difflib
import math
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from hooks.settings import RuleSettings, parse_text

PREFIX = "IVIG_CDS_"
RULE_PREFIX = "IVIG_CDS_RULE_"
#: Names under the prefix that are not service settings: the test suite's own variables.
RESERVED_PREFIXES = ("IVIG_CDS_TEST_",)
#: `IVIG_CDS_*` variables read outside `Settings` (by `serve`, say); listed so they are not unknown.
OTHER_VARIABLES: set[str] = set()
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """The configuration cannot run safely; each problem says which variable and why."""

    def __init__(self, *problems: str) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(problems))


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
    # Parsed resources reused by later calls with the same JSON (cds_service/parse_cache.py): at most
    # this many, for at most this long; 0 turns it off. They hold patient data, in memory only.
    parse_cache_size: int = 2048
    parse_cache_seconds: float = 120.0
    # How `ivig-cds serve` runs (cds_service/server.py); its --host/--port/--workers/--threads win.
    host: str = "127.0.0.1"  # address to bind (the Docker image: 0.0.0.0)
    port: int = 8080  # the health check and probes follow it
    workers: int = 0  # gunicorn worker processes; 0: WEB_CONCURRENCY if set, else 2
    threads: int = 4  # threads per worker
    ca_bundle: str | None = None  # PEM file of the CAs trusted for outbound HTTPS (JWKS, FHIR); unset: the system's
    outbound_proxy: str | None = field(default=None, repr=False)  # proxy for outbound HTTP(S); never from HTTP_PROXY
    preview: bool = False  # serve the card preview page at /preview (scenarios and pasted requests only)

    def __post_init__(self) -> None:
        # Spelling that has one meaning is accepted as such: `debug`, `Jwt`.
        object.__setattr__(self, "log_level", str(self.log_level).strip().upper())
        object.__setattr__(self, "auth", str(self.auth).strip().lower())
        problems = self.problems()
        if problems:
            raise ConfigError(*problems)

    def problems(self) -> list[str]:
        """Every reason this configuration cannot run, each naming its variable (empty: it can)."""
        problems: list[str] = []
        if self.auth not in ("jwt", "off"):
            problems.append(f"{PREFIX}AUTH must be 'jwt' or 'off', not {self.auth!r}")
        if self.log_level not in LOG_LEVELS:
            levels = ", ".join(LOG_LEVELS)
            problems.append(f"{PREFIX}LOG_LEVEL must be one of {levels} (any case), not {self.log_level!r}")
        for url in self.fhir_allowlist:
            parts = urlsplit(url)
            if parts.scheme not in ("https", "http") or not parts.netloc:
                problems.append(f"{PREFIX}FHIR_ALLOWLIST entry {url!r} is not an absolute http(s) URL")
            elif parts.scheme == "http" and not self.fhir_allow_http:
                problems.append(
                    f"{PREFIX}FHIR_ALLOWLIST entry {url!r} is plain http; set {PREFIX}FHIR_ALLOW_HTTP=true "
                    "to allow it (local development only)"
                )
        for name in ("fhir_connect_timeout", "fhir_read_timeout", "fhir_total_timeout"):
            if getattr(self, name) <= 0:
                problems.append(f"{PREFIX}{name.upper()} must be positive")
        if self.fhir_workers < 1:
            problems.append(f"{PREFIX}FHIR_WORKERS must be at least 1")
        if self.fhir_max_pages < 1:
            problems.append(f"{PREFIX}FHIR_MAX_PAGES must be at least 1")
        if self.fhir_max_response_bytes < 1024:
            problems.append(f"{PREFIX}FHIR_MAX_RESPONSE_BYTES must be at least 1024")
        if self.max_body_bytes < 1024:
            problems.append(f"{PREFIX}MAX_BODY_BYTES must be at least 1024")
        if self.public_base_url is not None:
            parts = urlsplit(self.public_base_url)
            if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
                problems.append(f"{PREFIX}PUBLIC_BASE_URL must be an absolute http(s) URL without query")
        if not 0 <= self.jwt_leeway <= 300:
            problems.append(f"{PREFIX}JWT_LEEWAY must be 0 to 300 seconds")
        if self.jwt_max_lifetime < 1:
            problems.append(f"{PREFIX}JWT_MAX_LIFETIME must be positive")
        if self.jwks_refresh_interval < 0:
            problems.append(f"{PREFIX}JWKS_REFRESH_INTERVAL must not be negative")
        if self.jwks_max_age <= 0:
            problems.append(f"{PREFIX}JWKS_MAX_AGE must be positive")
        if not self.database_url or not self.database_url.startswith(("sqlite:", "postgresql", "postgres:")):
            problems.append(f"{PREFIX}DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL")
        if self.database_timeout <= 0:
            problems.append(f"{PREFIX}DATABASE_TIMEOUT must be positive")
        if self.audit_queue_size < 1:
            problems.append(f"{PREFIX}AUDIT_QUEUE_SIZE must be at least 1")
        if self.parse_cache_size < 0 or not 0 < self.parse_cache_seconds <= 3600:
            problems.append(
                f"{PREFIX}PARSE_CACHE_SIZE must not be negative and {PREFIX}PARSE_CACHE_SECONDS must be above 0 "
                "and at most 3600"
            )
        if self.audit_key is not None and len(self.audit_key) < 32:
            problems.append(f"{PREFIX}AUDIT_KEY must be at least 32 characters (e.g. 32 random bytes as hex)")
        token = self.metrics_token
        if token is not None and (len(token) < 16 or not all("!" <= c <= "~" for c in token)):
            problems.append(f"{PREFIX}METRICS_TOKEN must be at least 16 visible ASCII characters (no spaces)")
        if not self.host or not 0 < self.port < 65536 or self.workers < 0 or self.threads < 1:
            problems.append(f"{PREFIX}HOST must be set, {PREFIX}PORT 1-65535, WORKERS ≥0 and THREADS ≥1")
        problems += _rule_problems(self.rules)
        if self.ca_bundle is not None:
            problems += _ca_bundle_problems(self.ca_bundle)
        if self.outbound_proxy is not None:
            problems += _proxy_problems(self.outbound_proxy)
        return problems


def _rule_problems(rules: RuleSettings) -> list[str]:
    from hooks.rules import REGISTRY  # the registered rules: a disabled id must name one of them

    unknown = sorted(rules.disabled_rules - set(REGISTRY))
    return [
        f"{RULE_PREFIX}DISABLED_RULES names no registered rule: {rule!r}{_did_you_mean(rule, REGISTRY)} "
        "(the rule ids are listed by 'ivig-cds rules')"
        for rule in unknown
    ]


def _ca_bundle_problems(path: str) -> list[str]:
    try:
        context = ssl.create_default_context(cafile=path)
    except FileNotFoundError:
        return [f"{PREFIX}CA_BUNDLE: no file at {path!r}"]
    except ssl.SSLError:  # an OSError too: checked first
        return [f"{PREFIX}CA_BUNDLE: {path!r} holds no PEM certificate the TLS library can load"]
    except OSError as error:
        return [f"{PREFIX}CA_BUNDLE: {path!r} cannot be read ({error.strerror or type(error).__name__})"]
    if not context.get_ca_certs():
        return [f"{PREFIX}CA_BUNDLE: {path!r} holds no CA certificate"]
    return []


def _proxy_problems(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return [f"{PREFIX}OUTBOUND_PROXY is not a URL with a valid port"]
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query:
        return [f"{PREFIX}OUTBOUND_PROXY must be http://host:port or https://host:port (user:password@ allowed)"]
    return []


def _did_you_mean(name: str, candidates: Any) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _parse(name: str, raw: str, default: Any) -> Any:
    variable = PREFIX + name.upper()
    if isinstance(default, tuple):
        if ";" in raw:
            raise ConfigError(f"{variable} separates its entries with commas, not ';'")
        return tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())
    if isinstance(default, bool | int | float):
        try:
            value = parse_text(raw, default)
        except ValueError as error:
            raise ConfigError(f"{variable} {error}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{variable} expects a finite number, got {raw!r}")
        return value
    return raw.strip() or None


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """`IVIG_CDS_*` names that no setting reads: a misspelt variable must not pass silently."""
    known = {PREFIX + f.name.upper() for f in fields(Settings) if f.name != "rules"} | OTHER_VARIABLES
    problems = []
    for name in sorted(environ):
        if not name.startswith(PREFIX) or name in known or name.startswith((RULE_PREFIX, *RESERVED_PREFIXES)):
            continue
        problems.append(f"unknown variable {name}{_did_you_mean(name, known)}")
    return problems


def _rule_settings(environ: Mapping[str, str]) -> tuple[RuleSettings, list[str]]:
    """Rule overrides from `IVIG_CDS_RULE_*`, one variable at a time so every mistake is reported."""
    overrides: dict[str, str] = {}
    problems: list[str] = []
    defaults = RuleSettings()
    for key in sorted(environ):
        if not key.startswith(RULE_PREFIX):
            continue
        name, raw = key[len(RULE_PREFIX) :].lower(), environ[key]
        if isinstance(getattr(defaults, name, None), frozenset) and ";" in raw:
            problems.append(f"{key} separates its entries with commas, not ';'")
            continue
        try:
            parsed = defaults.with_overrides({name: raw})
            value = getattr(parsed, name)
            if isinstance(value, float) and not math.isfinite(value):  # NaN compares false: silent wrong cards
                raise ValueError(f"rule setting {name} expects a finite number, got {raw!r}")
        except ValueError as error:
            hint = _did_you_mean(name, [f.name for f in fields(RuleSettings)]) if "unknown" in str(error) else ""
            problems.append(f"{key}: {error}{hint}")
            continue
        overrides[name] = raw
    try:
        return defaults.with_overrides(overrides), problems
    except ValueError as error:  # a combination of values that each parse
        return defaults, [*problems, f"{RULE_PREFIX}*: {error}"]


def load_settings(environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Build Settings from the environment (`IVIG_CDS_*`) and then explicit overrides (tests).

    Every problem found is reported at once (ConfigError.problems), not only the first, so an
    operator fixes a deployment in one pass.
    """
    environ = os.environ if environ is None else environ
    base = Settings()
    values: dict[str, Any] = {}
    problems = unknown_variables(environ)
    for f in fields(Settings):
        raw = environ.get(PREFIX + f.name.upper())
        if raw is not None and f.name != "rules":
            default = getattr(base, f.name)
            try:
                values[f.name] = _parse(f.name, raw, "" if default is None else default)
            except ConfigError as error:
                problems += error.problems
    values["rules"], rule_problems = _rule_settings(environ)
    problems += rule_problems
    for key, value in (overrides or {}).items():
        if not hasattr(base, key):
            raise ConfigError(f"unknown setting {key!r}")
        values[key] = tuple(value) if key == "fhir_allowlist" else value
    if "fhir_allowlist" in values:
        values["fhir_allowlist"] = tuple(url.rstrip("/") for url in values["fhir_allowlist"])
    try:
        settings = Settings(**values)
    except ConfigError as error:
        problems += [p for p in error.problems if p not in problems]
    if problems:
        raise ConfigError(*problems)
    return settings
