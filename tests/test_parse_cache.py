"""The parse cache: a chart called about again within an ordering session is not parsed again, and the
answer is the same as a cold one's; what it keeps is bounded in number and in time."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

import fhir_fixtures
from cds_service.parse_cache import ParseCache
from hooks import fhir_model
from hooks.data_needs import READ_ELEMENTS
from tests.conftest import SIGN, make_app, rule_set


@pytest.fixture
def parses(monkeypatch):
    seen: list[str] = []
    original = fhir_model.read_resource

    def counting(raw, **kwargs):
        seen.append(str(raw.get("resourceType")))
        return original(raw, **kwargs)

    monkeypatch.setattr(fhir_model, "read_resource", counting)
    return seen


def _cards(body):
    return [{k: v for k, v in card.items() if k not in ("uuid", "suggestions")} for card in body["cards"]]


def test_the_same_chart_again_is_not_parsed_again_and_gets_the_same_cards(parses):
    client = make_app().test_client()
    request = fhir_fixtures.load("P01").prefetch_request(SIGN.prefetch)
    first = client.post(f"/cds-services/{SIGN.id}", json=request).get_json()
    parsed_first = len(parses)
    assert parsed_first >= 9
    second = client.post(
        f"/cds-services/{SIGN.id}", json={**request, "hookInstance": "4b1c8f0e-0000-4000-8000-000000000001"}
    )
    assert second.status_code == 200
    assert len(parses) == parsed_first, "nothing parsed the second time"
    assert _cards(second.get_json()) == _cards(first)


def test_a_changed_resource_is_parsed_again(parses):
    client = make_app().test_client()
    request = fhir_fixtures.load("P01").prefetch_request(SIGN.prefetch)
    client.post(f"/cds-services/{SIGN.id}", json=request)
    before = len(parses)
    request["prefetch"]["platelets"]["entry"][0]["resource"]["valueQuantity"]["value"] = 60
    body = client.post(f"/cds-services/{SIGN.id}", json=request).get_json()
    assert len(parses) == before + 1
    assert ("critical-bleeding", "critical") not in rule_set(body)


def test_it_can_be_turned_off(parses):
    client = make_app(parse_cache_size=0).test_client()
    request = fhir_fixtures.load("P01").prefetch_request(SIGN.prefetch)
    client.post(f"/cds-services/{SIGN.id}", json=request)
    once = len(parses)
    client.post(f"/cds-services/{SIGN.id}", json=request)
    assert len(parses) == 2 * once


def test_repairs_from_the_cache_name_the_element_where_it_is_now():
    cache = ParseCache(10, 60)
    reads = READ_ELEMENTS["Observation"]
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "777-3"}]},
        "effectiveDateTime": "31/05/2026 10:00",  # written for the eye: not FHIR
    }
    first = cache.read(observation, where="prefetch.platelets.entry[0].resource", reads=reads, keep=reads)
    again = cache.read(dict(observation), where="fhirServer.platelets.entry[7].resource", reads=reads, keep=reads)
    assert (cache.hits, cache.misses) == (1, 1)
    assert [r.where for r in first.repairs] == ["prefetch.platelets.entry[0].resource.effectiveDateTime"]
    assert [r.where for r in again.repairs] == ["fhirServer.platelets.entry[7].resource.effectiveDateTime"]
    assert again.unreadable == ["effectiveDateTime"] and again.resource is first.resource


def test_entries_expire_and_the_least_recently_used_go_first():
    now = [0.0]
    cache = ParseCache(2, 120, clock=lambda: now[0])
    reads = READ_ELEMENTS["Patient"]

    def patient(n):
        return {"resourceType": "Patient", "id": f"p{n}", "birthDate": "1980-01-01"}

    for n in (1, 2, 1, 3):  # p2 is the least recently used when p3 arrives
        cache.read(patient(n), where="x", reads=reads, keep=reads)
    assert (cache.hits, cache.misses) == (1, 3)
    cache.read(patient(1), where="x", reads=reads, keep=reads)
    cache.read(patient(2), where="x", reads=reads, keep=reads)
    assert (cache.hits, cache.misses) == (2, 4), "p1 stayed, p2 had gone"
    now[0] = 121.0
    cache.read(patient(2), where="x", reads=reads, keep=reads)
    assert cache.misses == 5, "older than the time allowed: read again"


def test_concurrent_calls_share_it_safely():
    client_app = make_app()
    request = fhir_fixtures.load("P24").prefetch_request(SIGN.prefetch)
    expected = rule_set(client_app.test_client().post(f"/cds-services/{SIGN.id}", json=request).get_json())

    def call(_):
        return rule_set(client_app.test_client().post(f"/cds-services/{SIGN.id}", json=request).get_json())

    with ThreadPoolExecutor(8) as pool:
        assert all(found == expected for found in pool.map(call, range(40)))
