"""The FHIR client's guards, with the transport mocked by `responses`."""

from __future__ import annotations

import json
import time

import pytest
import requests
import responses

from cds_service.fhir_client import (
    FhirClient,
    FhirHttpError,
    FhirResponseError,
    FhirServerNotAllowedError,
    FhirTimeoutError,
    is_allowed,
)
from hooks.data_needs import raw_instant

BASE = "https://fhir.example.org/r4"


def client(**kwargs):
    options = {
        "allowlist": [BASE],
        "allow_http": False,
        "connect_timeout": 1,
        "read_timeout": 1,
        "max_pages": 3,
        "max_bytes": 10_000,
    }
    options.update(kwargs)
    return FhirClient(requests.Session(), **options)


def later(seconds=5.0):
    return time.monotonic() + seconds


def search(base, relative, token, deadline):
    """`relative` read as the service reads every search and read, here over no date window."""
    return client().search(base, relative, token, deadline, since=None, instant_of=raw_instant)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        (BASE, True),
        (BASE + "/", True),
        (BASE + "/tenant-a", True),
        ("https://fhir.example.org/r4x", False),
        ("https://fhir.example.org", False),
        ("http://fhir.example.org/r4", False),
        ("https://fhir.example.org:8443/r4", False),
        ("https://fhir.example.org.evil.net/r4", False),
        ("https://user@fhir.example.org/r4", False),
        ("https://fhir.example.org/r4?x=1", False),
        ("ftp://fhir.example.org/r4", False),
        ("not a url", False),
    ],
)
def test_allowlist_matches_scheme_host_port_and_path_prefix(url, allowed):
    assert is_allowed(url, [BASE], allow_http=False) is allowed


def test_http_needs_explicit_permission():
    assert not is_allowed("http://127.0.0.1:8080/fhir", ["http://127.0.0.1:8080/fhir"], allow_http=False)
    assert is_allowed("http://127.0.0.1:8080/fhir", ["http://127.0.0.1:8080/fhir"], allow_http=True)


def _paged_search(pages: int) -> None:
    """A Condition search answered in `pages` pages of one entry each, the last without `next`."""
    for page in range(pages):
        body = {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": {"resourceType": "Condition", "id": f"c{page}"}}],
        }
        if page + 1 < pages:
            body["link"] = [{"relation": "next", "url": f"{BASE}/Condition?page={page + 1}"}]
        query = {"page": str(page)} if page else {"patient": "1"}
        responses.add(
            responses.GET,
            f"{BASE}/Condition",
            json=body,
            match=[responses.matchers.query_param_matcher(query)],
        )


@responses.activate
def test_follows_next_links_to_the_end_and_merges_entries():
    _paged_search(3)  # exactly the bound
    result = search(BASE, "Condition?patient=1", "token", later())
    assert [e["resource"]["id"] for e in result.entries] == ["c0", "c1", "c2"]
    assert result.complete and result.next_url is None


@responses.activate
def test_a_search_longer_than_the_bound_is_incomplete_never_silently_cut():
    """A cut list would let a rule read "no haemorrhage on record" off the first pages."""
    _paged_search(5)
    result = search(BASE, "Condition?patient=1", "token", later())
    assert not result.complete and result.next_url, "marked incomplete: the caller says how much was read"
    assert [e["resource"]["id"] for e in result.entries] == ["c0", "c1", "c2"]
    assert len(responses.calls) == 3, "the bound still caps what is read"


@responses.activate
def test_next_link_to_another_host_is_refused():
    responses.add(
        responses.GET,
        f"{BASE}/Condition",
        json={
            "resourceType": "Bundle",
            "type": "searchset",
            "link": [{"relation": "next", "url": "https://evil.example.net/x"}],
        },
    )
    with pytest.raises(FhirResponseError, match="leaves"):
        search(BASE, "Condition", None, later())
    assert len(responses.calls) == 1


@responses.activate
def test_redirects_are_not_followed():
    responses.add(responses.GET, f"{BASE}/Patient/1", status=302, headers={"Location": "http://169.254.169.254/"})
    with pytest.raises(FhirHttpError, match="redirect"):
        search(BASE, "Patient/1", None, later())
    assert len(responses.calls) == 1


@responses.activate
def test_404_means_no_such_resource():
    responses.add(responses.GET, f"{BASE}/Patient/1", status=404)
    assert search(BASE, "Patient/1", None, later()) is None


@responses.activate
def test_server_error_is_an_http_error_with_status():
    responses.add(responses.GET, f"{BASE}/Patient/1", status=500)
    with pytest.raises(FhirHttpError) as error:
        search(BASE, "Patient/1", None, later())
    assert error.value.status == 500


@responses.activate
def test_oversized_answer_is_refused():
    responses.add(
        responses.GET, f"{BASE}/Patient/1", body=json.dumps({"resourceType": "Patient", "text": "x" * 20_000})
    )
    with pytest.raises(FhirResponseError, match="size limit"):
        search(BASE, "Patient/1", None, later())


@responses.activate
def test_non_fhir_answer_is_refused():
    responses.add(responses.GET, f"{BASE}/Patient/1", body="<html>login</html>")
    with pytest.raises(FhirResponseError):
        search(BASE, "Patient/1", None, later())


@responses.activate
def test_timeout_is_reported_as_timeout():
    responses.add(responses.GET, f"{BASE}/Patient/1", body=requests.ReadTimeout())
    with pytest.raises(FhirTimeoutError):
        search(BASE, "Patient/1", None, later())


def test_expired_deadline_sends_nothing():
    with responses.RequestsMock() as rsps, pytest.raises(FhirTimeoutError):
        search(BASE, "Patient/1", None, time.monotonic() - 1)
    assert len(rsps.calls) == 0


def test_not_allowlisted_base_sends_nothing():
    with responses.RequestsMock() as rsps, pytest.raises(FhirServerNotAllowedError):
        search("https://other.example.org/fhir", "Patient/1", None, later())
    assert len(rsps.calls) == 0


@responses.activate
def test_token_is_sent_as_bearer_and_nothing_else_is_added():
    responses.add(responses.GET, f"{BASE}/Patient/1", json={"resourceType": "Patient", "id": "1"})
    search(BASE, "Patient/1", "abc", later())
    assert responses.calls[0].request.headers["Authorization"] == "Bearer abc"
