"""SSRF: a `fhirServer` (or a Bundle `next` link) that merely *looks* allowlisted is never contacted."""

from __future__ import annotations

import time

import pytest
import requests
import responses

import fhir_fixtures
from cds_service.fhir_client import FhirClient, FhirResponseError, is_allowed, unsafe_url
from hooks.data_needs import raw_instant
from tests.conftest import SIGN, check_response, make_app

BASE = "https://fhir.example.org/r4"
P01 = fhir_fixtures.load("P01")

HOSTILE = [
    "https://attacker@fhir.example.org/r4",  # user info
    "https://fhir.example.org:443@evil.example.net/r4",
    "https://fhir.example.org\\@evil.example.net/r4",  # backslash: parsers disagree on the host
    "https://fhir.example.org/r4/../admin",  # dot segments leave the base path
    "https://fhir.example.org/r4/./../admin",
    "https://fhir.example.org/r4/%2e%2e/admin",  # encoded dot segments
    "https://fhir.example.org/r4/%2E%2E%2Fadmin",
    "https://fhir.example.org/r4/..%5cadmin",
    "https://fhir.example.org./r4",  # trailing dot: another name as far as resolvers go
    "https://fhir.example.org\t/r4",  # urlsplit would drop the tab silently
    "https://fhir.example.org/r4\n",
    "https://fhir.example.org /r4",
    "https://ｆhir.example.org/r4",  # full-width letter
    "https://fhir.exаmple.org/r4",  # Cyrillic 'а'
    "https://fhir.example.org:+443/r4",  # port that int() would accept
    "https://fhir.example.org:99999/r4",
    "https://fhir.example.org/r4#frag",
    "https://fhir.example.org/r4?_format=xml",
    "https:///fhir.example.org/r4",
    "https://127.0.0.1/r4",  # IP literals: not the allowlisted name
    "https://2130706433/r4",
    "https://0x7f.0.0.1/r4",
    "https://[::1]/r4",
    "https://[::ffff:127.0.0.1]/r4",
    "http://fhir.example.org/r4",
    "file:///etc/passwd",
    "gopher://fhir.example.org/r4",
]


@pytest.mark.parametrize("url", HOSTILE)
def test_hostile_fhir_server_urls_are_not_allowed(url):
    assert not is_allowed(url, [BASE], allow_http=False)


@pytest.mark.parametrize(
    "url",
    [BASE, BASE + "/", "HTTPS://FHIR.Example.ORG/r4", "https://fhir.example.org:443/r4", BASE + "/tenant-a"],
)
def test_ordinary_spellings_of_the_allowlisted_base_are_allowed(url):
    assert is_allowed(url, [BASE], allow_http=False)
    assert not unsafe_url(url)


def test_ip_literal_allowlist_matches_only_that_literal():
    allow = ["https://10.0.0.5/fhir"]
    assert is_allowed("https://10.0.0.5/fhir", allow, allow_http=False)
    for trick in ("https://010.0.0.5/fhir", "https://167772165/fhir", "https://0xa.0.0.5/fhir", "https://10.5/fhir"):
        assert not is_allowed(trick, allow, allow_http=False), trick


@pytest.mark.parametrize("url", HOSTILE)
def test_hostile_fhir_server_gets_403_and_nothing_is_sent(url):
    client = make_app(fhir_allowlist=[BASE]).test_client()
    request = P01.fetch_request(BASE, token="secret-token")
    request["fhirServer"] = url
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        response = client.post(f"/cds-services/{SIGN.id}", json=request)
        assert len(rsps.calls) == 0
    assert response.status_code in (400, 403)  # 400 when the request schema already refuses the URL
    body = check_response(response)
    assert url not in str(body)


def test_next_link_with_dot_segments_is_not_followed():
    fhir = FhirClient(
        requests.Session(),
        allowlist=[BASE],
        allow_http=False,
        connect_timeout=1,
        read_timeout=1,
        max_pages=3,
        max_bytes=10_000,
    )
    page = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [],
        "link": [{"relation": "next", "url": f"{BASE}/../admin/Condition?page=2"}],
    }
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(f"{BASE}/Condition", json=page)
        with pytest.raises(FhirResponseError, match="leaves"):
            fhir.search(BASE, "Condition?patient=1", "tok", time.monotonic() + 5, since=None, instant_of=raw_instant)
        assert len(rsps.calls) == 1
