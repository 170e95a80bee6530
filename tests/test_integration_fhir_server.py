"""Against a real FHIR server process (sekmet-fhir): every scenario loaded by transaction, then
judged with no prefetch at all. The cards must equal the prefetch path's, which proves the
prefetch templates select on a real server what the fixture evaluator selects.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

import fhir_fixtures
from cds_service.prefetch import render
from fhir_fixtures import realistic
from tests.conftest import SELECT, SIGN, check_response, make_app, rule_set
from tests.processes import sekmet_server
from tests.variants import without_included_medications

pytestmark = pytest.mark.integration


@contextmanager
def loaded_server(tmp_path_factory: pytest.TempPathFactory, scenarios: list[fhir_fixtures.Scenario]) -> Iterator[str]:
    """A real sekmet-fhir process loaded with `scenarios` by transaction."""
    with sekmet_server(tmp_path_factory.mktemp("sekmet")) as base:
        for scenario in scenarios:
            response = requests.post(
                base,
                json=scenario.transaction(),
                headers={"Content-Type": "application/fhir+json"},
                timeout=120,
            )
            assert response.status_code in (200, 201), f"{scenario.id}: {response.status_code} {response.text[:300]}"
        yield base


@pytest.fixture(scope="module")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with loaded_server(tmp_path_factory, list(fhir_fixtures.all_scenarios())) as base:
        yield base


@pytest.fixture(scope="module")
def fetching_client(fhir_server: str):
    return make_app(
        fhir_allowlist=[fhir_server], fhir_allow_http=True, fhir_read_timeout=10, fhir_total_timeout=20
    ).test_client()


@pytest.mark.parametrize("sid", fhir_fixtures.names())
def test_fetched_from_fhir_server_equals_prefetch(sid, fhir_server, fetching_client):
    scenario = fhir_fixtures.load(sid)
    for service in (SIGN, SELECT):
        prefetched = fetching_client.post(
            f"/cds-services/{service.id}", json=scenario.prefetch_request(service.prefetch, hook=service.hook)
        )
        fetched = fetching_client.post(
            f"/cds-services/{service.id}", json=scenario.fetch_request(fhir_server, hook=service.hook)
        )
        assert fetched.status_code == 200, check_response(fetched)
        fetched_body = check_response(fetched)
        assert all(c["source"]["topic"]["code"] != "data-unavailable" for c in fetched_body["cards"])
        assert rule_set(fetched_body) == rule_set(check_response(prefetched))


def test_unknown_patient_on_real_server_is_412(fhir_server, fetching_client):
    request = fhir_fixtures.load("P01").fetch_request(fhir_server)
    request["context"]["patientId"] = "no-such-patient"
    for entry in request["context"]["draftOrders"]["entry"]:
        entry["resource"]["subject"]["reference"] = "Patient/no-such-patient"
    response = fetching_client.post(f"/cds-services/{SIGN.id}", json=request)
    assert response.status_code == 412
    check_response(response)


def test_medications_the_client_did_not_include_are_read_from_the_real_server(fhir_server, fetching_client):
    """A client that ignores `_include`: the real server answers the service's `Medication?_id=` search."""
    request = without_included_medications(fhir_fixtures.load("P46"), SIGN.prefetch)
    request["fhirServer"] = fhir_server
    response = fetching_client.post(f"/cds-services/{SIGN.id}", json=request)
    body = check_response(response)
    assert response.status_code == 200
    assert ("duplicate-ivig", "warning") in rule_set(body)
    assert all(c["source"]["topic"]["code"] != "data-unavailable" for c in body["cards"])


# --- charts the size of real ones, paged by the real server --------------------------------------

REALISTIC = {name: make() for name, make in realistic.REALISTIC.items()}


@pytest.fixture(scope="module")
def realistic_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second sekmet process holding the realistic charts (hundreds of resources each)."""
    with loaded_server(tmp_path_factory, list(REALISTIC.values())) as base:
        yield base


def client_prefetch(base: str, scenario: fhir_fixtures.Scenario, hook: str) -> dict:
    """A request whose prefetch a CDS client filled by running the discovery templates against the real
    server: each search's first page, with the server's own `next` link when it paged."""
    request = scenario.fetch_request(base, hook=hook)
    request["prefetch"] = {}
    for key, template in SIGN.prefetch.items():
        query = render(template, request["context"])
        response = requests.get(f"{base}/{query}", headers={"Accept": "application/fhir+json"}, timeout=30)
        request["prefetch"][key] = response.json() if response.status_code == 200 else None
    return request


@pytest.mark.parametrize("name", sorted(REALISTIC))
def test_a_realistic_chart_gets_its_scenarios_cards_in_both_data_modes(name, realistic_server):
    scenario = REALISTIC[name]
    client = make_app(
        fhir_allowlist=[realistic_server], fhir_allow_http=True, fhir_read_timeout=20, fhir_total_timeout=40
    ).test_client()
    expected = {(e.rule, e.indicator) for e in scenario.expected}
    for service in (SIGN, SELECT):
        prefetched = client_prefetch(realistic_server, scenario, service.hook)
        fetched = scenario.fetch_request(realistic_server, hook=service.hook)
        for mode, request in (("prefetch paged by the server", prefetched), ("fetched", fetched)):
            response = client.post(f"/cds-services/{service.id}", json=request)
            body = check_response(response)
            assert response.status_code == 200, (mode, body)
            assert rule_set(body) == expected, (name, service.hook, mode)


def test_the_chronic_charts_prefetch_really_is_paged_by_the_server(realistic_server):
    request = client_prefetch(realistic_server, REALISTIC["chronic-itp"], "order-sign")
    platelets = request["prefetch"]["platelets"]
    assert len(platelets["entry"]) == 100 and any(link["relation"] == "next" for link in platelets["link"])
