"""Reading from the EHR's FHIR server: allowlisted, bounded in time and size, never redirected.

Why so guarded: `fhirServer` arrives in the request body, so without an allowlist this service
would fetch any URL an attacker names (SSRF), with a bearer token attached. A base URL must match
an allowlist entry (scheme, host, port and path prefix); redirects are refused; `next` links must
stay under the same base; responses are cut at a size limit; every call has a timeout.

The transport is a `requests.Session`, so tests can mount an adapter (or use `responses`) instead
of monkeypatching.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests

log = logging.getLogger(__name__)


class FhirError(Exception):
    """Data could not be read from the FHIR server. Messages never contain patient data."""


class FhirServerNotAllowedError(FhirError):
    pass


class FhirUnreachableError(FhirError):
    pass


class FhirTimeoutError(FhirError):
    pass


class FhirHttpError(FhirError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class FhirResponseError(FhirError):
    """The server answered with something that is not a usable FHIR JSON body."""


#: Two results of a search sorted newest first may tie or be a little out of order (an effective
#: period against an effective time); only a step back beyond this means the server ignored `_sort`.
SORT_TOLERANCE = timedelta(minutes=1)


@dataclass
class Pages:
    """The entries of a search read page by page, as far back as the caller's window needs.

    `complete`: nothing left unread could fall inside the window (no next page, or the results are
    newest first and the last page read already reaches past the window's start). `newest_first`:
    no result was newer than the one before it. `oldest`: the oldest dated result read. `next_url`:
    where reading would go on (None when the search ended).
    """

    entries: list[Any] = field(default_factory=list)
    pages: int = 0
    complete: bool = True
    newest_first: bool = True
    oldest: datetime | None = None
    next_url: str | None = None
    _last: datetime | None = None

    def add(self, bundle: Mapping[str, Any], instant_of: Callable[[Mapping[str, Any]], datetime | None]) -> None:
        entries = _entries(bundle)
        self.entries.extend(entries)
        self.pages += 1
        self.next_url = next_link(bundle)
        for entry in entries:
            resource = entry.get("resource") if isinstance(entry, Mapping) else None
            search = entry.get("search") if isinstance(entry, Mapping) else None
            if not isinstance(resource, Mapping) or (isinstance(search, Mapping) and search.get("mode") == "include"):
                continue  # an included Medication says nothing about the order of the matches
            instant = instant_of(resource)
            if instant is None:
                continue
            if self._last is not None and instant > self._last + SORT_TOLERANCE:
                self.newest_first = False
            self._last = instant
            self.oldest = instant if self.oldest is None else min(self.oldest, instant)

    def reaches(self, since: datetime | None) -> bool:
        """True when what is read covers the window back to `since` (None: the whole history)."""
        if self.next_url is None:
            return True
        return since is not None and self.newest_first and self.oldest is not None and self.oldest < since


# Characters no FHIR base URL needs, each a known way to make two URL parsers disagree: white space
# and controls (Python's urlsplit silently drops tabs and newlines), backslashes (browsers and some
# servers read them as "/"), and percent-encoded dots, slashes and backslashes in the path.
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")
_ENCODED_PATH_TRICKS = re.compile(r"%(2e|2f|5c)", re.IGNORECASE)


def unsafe_url(url: str) -> bool:
    """True for URLs whose shape could let a request leave the allowlisted base, whatever it names.

    Refused: non-ASCII (IDN look-alikes, full-width letters that normalise to other characters),
    white space, controls, backslashes, user info (`user@host`), a host with a trailing dot (a
    different name for a resolver with search domains), and `.`/`..` path segments, literal or
    percent-encoded, which the HTTP stack or the server would resolve to a path outside the base.
    """
    if not url.isascii() or _UNSAFE_CHARACTERS.search(url):
        return True
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return True
    host = parts.hostname or ""
    if "@" in parts.netloc or not host or host.endswith("."):
        return True
    return any(segment in (".", "..") for segment in parts.path.split("/")) or bool(
        _ENCODED_PATH_TRICKS.search(parts.path)
    )


def refused_host(url: str) -> str:
    """scheme://host:port of a refused URL, for the log (ASCII only, cut short), or why there is none."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(not a URL)"
    if not host:
        return "(no host)"
    return f"{parts.scheme}://{host}{port}".encode("ascii", "backslashreplace").decode()[:200]


def _origin_and_path(url: str) -> tuple[str, int | None, str, str]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80 if parts.scheme == "http" else None)
    return parts.scheme.lower(), port, (parts.hostname or "").lower(), parts.path.rstrip("/")


def is_allowed(base_url: str, allowlist: Iterable[str], allow_http: bool) -> bool:
    """True when `base_url` is an allowlisted base or a path under one (same scheme, host and port)."""
    if unsafe_url(base_url):
        return False
    scheme, port, host, path = _origin_and_path(base_url)
    if scheme not in ("https", "http") or not host or (scheme == "http" and not allow_http):
        return False
    if urlsplit(base_url).query or urlsplit(base_url).fragment:
        return False
    for entry in allowlist:
        e_scheme, e_port, e_host, e_path = _origin_and_path(entry)
        if (scheme, port, host) == (e_scheme, e_port, e_host) and (path == e_path or path.startswith(e_path + "/")):
            return True
    return False


class FhirClient:
    def __init__(
        self,
        session: requests.Session,
        *,
        allowlist: Iterable[str],
        allow_http: bool,
        connect_timeout: float,
        read_timeout: float,
        max_pages: int,
        max_bytes: int,
        user_agent: str = "ivig-cds",
    ) -> None:
        self.session = session
        self.allowlist = tuple(allowlist)
        self.allow_http = allow_http
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_pages = max_pages
        self.max_bytes = max_bytes
        self.user_agent = user_agent

    def allows(self, base_url: str) -> bool:
        return is_allowed(base_url, self.allowlist, self.allow_http)

    def check_allowed(self, base_url: str) -> None:
        if not self.allows(base_url):
            # The host, so an operator can tell a missing allowlist entry from an attack; never the
            # path or query, which can carry a patient or tenant id.
            log.warning("FHIR server refused: not on the allowlist", extra={"host": refused_host(base_url)})
            raise FhirServerNotAllowedError("fhirServer is not on this service's FHIR allowlist")

    def read_search(
        self,
        base_url: str | None,
        pages: Pages,
        token: str | None,
        deadline: float,
        *,
        since: datetime | None,
        instant_of: Callable[[Mapping[str, Any]], datetime | None],
    ) -> Pages:
        """Go on reading `pages` (whose first page is read) until its window back to `since` is covered.

        Stops at the first page whose oldest result is older than `since` when the server returns
        results newest first; otherwise reads on, to the end of the search. Never reads more than
        `max_pages` pages: then `complete` is False and the caller says how much was read. Without a
        `base_url` (a paged prefetch with no `fhirServer`) nothing more can be read.
        """
        while not pages.reaches(since):
            if base_url is None or pages.pages >= self.max_pages:
                pages.complete = False
                return pages
            next_url = pages.next_url or ""
            self.check_allowed(base_url)
            base = base_url.rstrip("/")
            if unsafe_url(next_url) or not is_allowed(next_url.split("?", 1)[0], (base,), self.allow_http):
                raise FhirResponseError("a Bundle next link leaves the FHIR server's base URL")
            page = self._get_json(next_url, token, deadline)
            if page is None or page.get("resourceType") != "Bundle":
                raise FhirResponseError("a Bundle next link did not return a Bundle")
            pages.add(page, instant_of)
        pages.complete = True
        return pages

    def search(
        self,
        base_url: str,
        relative: str,
        token: str | None,
        deadline: float,
        *,
        since: datetime | None,
        instant_of: Callable[[Mapping[str, Any]], datetime | None],
    ) -> Pages | dict[str, Any] | None:
        """GET `relative`; a Bundle is read page by page back to `since` (see `read_search`).

        A read (`Patient/1`) returns the resource itself, and 404/410 return None.
        """
        self.check_allowed(base_url)
        body = self._get_json(f"{base_url.rstrip('/')}/{relative.lstrip('/')}", token, deadline)
        if body is None or body.get("resourceType") != "Bundle":
            return body
        pages = Pages()
        pages.add(body, instant_of)
        return self.read_search(base_url, pages, token, deadline, since=since, instant_of=instant_of)

    def _get_json(self, url: str, token: str | None, deadline: float) -> dict[str, Any] | None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FhirTimeoutError("the FHIR server did not answer in time")
        headers = {"Accept": "application/fhir+json, application/json", "User-Agent": self.user_agent}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        timeout = (min(self.connect_timeout, remaining), min(self.read_timeout, remaining))
        try:
            response = self.session.get(url, headers=headers, timeout=timeout, allow_redirects=False, stream=True)
        except requests.Timeout:
            raise FhirTimeoutError("the FHIR server did not answer in time") from None
        except requests.ConnectionError:
            raise FhirUnreachableError("the FHIR server could not be reached") from None
        except requests.RequestException as error:
            raise FhirUnreachableError(f"the FHIR request failed ({type(error).__name__})") from None
        with response:
            if response.status_code in (404, 410):
                return None
            if 300 <= response.status_code < 400:
                raise FhirHttpError("the FHIR server answered with a redirect, which is not followed", 502)
            if response.status_code >= 400:
                raise FhirHttpError(f"the FHIR server answered HTTP {response.status_code}", response.status_code)
            content = self._read_bounded(response, deadline)
        try:
            body = json.loads(content)
        except (ValueError, RecursionError):
            raise FhirResponseError("the FHIR server's answer is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
            raise FhirResponseError("the FHIR server's answer is not a FHIR resource")
        return body

    def _read_bounded(self, response: requests.Response, deadline: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(chunk_size=64 * 1024):
                size += len(chunk)
                if size > self.max_bytes:
                    raise FhirResponseError("the FHIR server's answer exceeds the size limit")
                if time.monotonic() > deadline:
                    raise FhirTimeoutError("the FHIR server did not answer in time")
                chunks.append(chunk)
        except requests.RequestException:
            raise FhirUnreachableError("the FHIR server's answer was cut off") from None
        return b"".join(chunks)


def _entries(bundle: Mapping[str, Any]) -> list[Any]:
    entries = bundle.get("entry")
    if entries is not None and not isinstance(entries, list):
        raise FhirResponseError("a Bundle's entry is not a list")
    return list(entries or [])


def next_link(bundle: Mapping[str, Any]) -> str | None:
    """The URL of a Bundle's next page, if it has one (a `link` that is not a list has none)."""
    links = bundle.get("link")
    for link in links if isinstance(links, list) else ():
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None
