"""Against a real FHIR server process (sekmet-fhir): every scenario loaded by transaction, then
judged with no prefetch at all. The cards must equal the prefetch path's, which proves the
prefetch templates select on a real server what the fixture evaluator selects.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

import fhir_fixtures
from tests.conftest import SELECT, SIGN, check_response, make_app, rule_set
from tests.processes import sekmet_server
from tests.variants import without_included_medications

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with sekmet_server(tmp_path_factory.mktemp("sekmet")) as base:
        for scenario in fhir_fixtures.all_scenarios():
            response = requests.post(
                base,
                json=scenario.transaction(),
                headers={"Content-Type": "application/fhir+json"},
                timeout=30,
            )
            assert response.status_code in (200, 201), (
                f"{scenario.id}: {response.status_code} {response.text[:300]}"
            )
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
