"""The HTTP sessions the service reads JWKS and FHIR data with: whom they trust and which proxy they use.

Why never the environment's proxy: a FHIR read carries the patient id in its URL and the EHR's
bearer token in its headers. `requests` by default sends them through whatever `HTTP_PROXY` /
`HTTPS_PROXY` the process inherited (and reads `~/.netrc` and `REQUESTS_CA_BUNDLE`), so a variable
set for some other tool on the host would silently route patient data through another machine.
So the environment is ignored (`trust_env = False`), and a proxy is used only when configured for
this service (`IVIG_CDS_OUTBOUND_PROXY`).

Why a CA bundle setting: a hospital's FHIR server or EHR JWKS often has a certificate from an
internal CA. `IVIG_CDS_CA_BUNDLE` names a PEM file of the CAs to trust for the service's outbound
HTTPS, instead of replacing the whole process's (or image's) trust store.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests

from cds_service.config import Settings


def configure_session(session: requests.Session, settings: Settings) -> requests.Session:
    """`session`, set to ignore proxy and trust settings from the environment and use the configured ones."""
    session.trust_env = False
    if settings.outbound_proxy:
        session.proxies = {"http": settings.outbound_proxy, "https": settings.outbound_proxy}
    if settings.ca_bundle:
        session.verify = settings.ca_bundle
    return session


def new_session(settings: Settings) -> requests.Session:
    return configure_session(requests.Session(), settings)


def describe_proxy(url: str | None) -> str | None:
    """The proxy for logs: scheme, host and port, never its user or password."""
    if not url:
        return None
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"
