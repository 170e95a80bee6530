"""What configuration is in force, checked the way `serve` checks it, and described without secrets.

Two users: `ivig-cds config check` (a dry run an operator runs before a deployment: every problem
at once, or what will be in force) and the service's one start-up log line, so that whoever reads
the log of a running replica knows its auth mode, issuers, allowlist, database and replay store
without shell access to its environment. Neither ever shows a secret: the audit key, the metrics
token and passwords in URLs are reported as set or not set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from cds_service.config import PREFIX, ConfigError, Settings, load_settings
from cds_service.outbound import describe_proxy
from hooks.settings import RuleSettings


@dataclass(frozen=True)
class CheckResult:
    settings: Settings | None
    issuers: tuple[Any, ...] = ()
    problems: list[str] = field(default_factory=list)


def check(environ: Mapping[str, str] | None = None) -> CheckResult:
    """Everything `serve` validates before it answers a call, without opening any connection."""
    from cds_service import cors
    from cds_service.jwt_auth import check_algorithms, load_issuers
    from cds_service.storage import normalise_url

    environ = os.environ if environ is None else environ
    try:
        settings = load_settings(environ)
    except ConfigError as error:
        return CheckResult(None, problems=error.problems)
    problems: list[str] = []
    issuers: tuple[Any, ...] = ()
    steps: list[Any] = [
        lambda: check_algorithms(settings.jwt_algorithms),
        lambda: cors.parse_origins(settings.cors_origins),
        lambda: _check_sqlite_folder(normalise_url(settings.database_url)),
        lambda: _check_jti_cache_url(settings.jti_cache_url),
    ]
    try:
        issuers = load_issuers(settings)
    except ConfigError as error:
        problems += error.problems
    for step in steps:
        try:
            step()
        except ConfigError as error:
            problems += error.problems
    return CheckResult(settings, issuers, problems)


def _check_sqlite_folder(url: Any) -> None:
    """An SQLite file's folder must exist, or be one the service can create, without creating it here."""
    from cds_service.storage import sqlite_file

    file = sqlite_file(url)
    if file is None:
        return
    folder = file.resolve().parent
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{PREFIX}DATABASE_URL: the folder {folder} does not exist and cannot be created")


def _check_jti_cache_url(url: str | None) -> None:
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{PREFIX}JTI_CACHE_URL must be a redis://, rediss:// or unix:// URL")


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


def describe_database(url: str) -> str:
    """The database for a human: an SQLite file as an absolute path, a server URL without its password."""
    from cds_service.storage import describe_location, normalise_url

    return describe_location(normalise_url(url))


def summary(settings: Settings, issuers: tuple[Any, ...]) -> dict[str, Any]:
    """The configuration in force, without secrets: the start-up log line's `config` field."""
    from cds_service.storage import normalise_url

    backend = normalise_url(settings.database_url).get_backend_name()
    rule_defaults = RuleSettings()
    return {
        "auth": settings.auth,
        "issuers": len(issuers),
        "pinned_key_issuers": sum(1 for issuer in issuers if issuer.pinned_keys),
        "public_base_url": settings.public_base_url,
        "fhir_allowlist_hosts": sorted({urlsplit(url).netloc for url in settings.fhir_allowlist}),
        "fhir_allow_http": settings.fhir_allow_http,
        "database_backend": backend,
        "database": describe_database(settings.database_url),
        "replay_store": _without_userinfo(settings.jti_cache_url) if settings.jti_cache_url else "in-process",
        "audit": settings.audit,
        "audit_key": "set" if settings.audit_key else "not set",
        "metrics": settings.metrics,
        "metrics_token": "set" if settings.metrics_token else "not set",
        "cors_origins": len(settings.cors_origins),
        "ca_bundle": settings.ca_bundle or "system",
        "outbound_proxy": describe_proxy(settings.outbound_proxy) or "none",
        "preview": settings.preview,
        "log_level": settings.log_level,
        "rule_overrides": sorted(
            f.name for f in fields(RuleSettings) if getattr(settings.rules, f.name) != getattr(rule_defaults, f.name)
        ),
    }


def render(result: CheckResult) -> str:
    """`ivig-cds config check`'s report: the problems, or every setting in force."""
    if result.problems or result.settings is None:
        lines = [f"ivig-cds config check: {len(result.problems)} problem(s); the service would not start:"]
        lines += [f"  - {problem}" for problem in result.problems]
        return "\n".join(lines) + "\n"
    settings = result.settings
    lines = ["ivig-cds config check: the configuration is valid. In force:"]
    for key, value in summary(settings, result.issuers).items():
        shown = ", ".join(str(v) for v in value) if isinstance(value, list) else value
        lines.append(f"  {key:<22} {shown if shown not in ('', None) else '(none)'}")
    for issuer in result.issuers:
        sources = [
            name
            for name, present in (
                ("jwks_url", issuer.jwks_url),
                (f"jku ({len(issuer.jku)})", issuer.jku),
                (f"pinned keys ({len(issuer.pinned_keys)})", issuer.pinned_keys),
            )
            if present
        ]
        lines.append(f"  issuer {issuer.iss}: keys from {', '.join(sources)}")
    changed = summary(settings, result.issuers)["rule_overrides"]
    for name in changed:
        value = getattr(settings.rules, name)
        shown = ", ".join(sorted(value)) if isinstance(value, frozenset) else value
        lines.append(f"  rule setting {name} = {shown}")
    return "\n".join(lines) + "\n"
