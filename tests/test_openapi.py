"""The OpenAPI description is valid, matches the routes, and holds when schemathesis attacks the app.

The schemathesis run is bounded (few examples per operation, no example database) so it stays in
the default test run; it talks to the Flask app in-process through WSGI, with JWT verification on
and a fresh token per request, so every answer passes through the real auth guard.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from urllib.parse import urljoin

import pytest
import responses
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from schemathesis.specs.openapi.checks import positive_data_acceptance

import cds_service
from tests.auth_tokens import JWKS_URL, bearer, ehr_jwks, jwt_app, token

SPEC_PATH = Path(cds_service.__file__).parent / "openapi.yaml"
SPEC = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def test_openapi_document_is_valid():
    validate(SPEC, base_uri=SPEC_PATH.as_uri())


def test_the_validator_can_fail():
    broken = copy.deepcopy(SPEC)
    del broken["paths"]["/cds-services"]["get"]["responses"]["200"]["description"]
    with pytest.raises(OpenAPIValidationError):
        validate(broken, base_uri=SPEC_PATH.as_uri())


def test_every_route_is_documented_and_every_documented_path_is_routed():
    app = jwt_app(preview=True)
    routed = {
        rule.rule.replace("<service_id>", "{service_id}")
        .replace("<name>", "{name}")
        .replace("<scenario_id>", "{scenario_id}")
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
    }
    documented = set(SPEC["paths"])
    # The feedback route may come from a blueprint not yet installed; everything else must match.
    assert routed - documented == set()
    assert documented - routed <= {"/cds-services/{service_id}/feedback"}
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            if path.startswith("/cds-services"):
                assert operation.get("security", SPEC["security"]) == SPEC["security"], path
                assert "401" in operation["responses"], path
            else:
                assert operation["security"] == [], path


def test_referenced_json_schemas_are_the_ones_the_service_validates_with():
    text = SPEC_PATH.read_text(encoding="utf-8")
    for name in ("cds-request.json", "cds-response.json", "discovery-response.json", "feedback-request.json"):
        assert f'"schemas/{name}"' in text
        assert (SPEC_PATH.parent / "schemas" / name).is_file()


def test_the_served_description_resolves_from_its_own_url_without_a_token():
    """An integration engineer points a tool at /openapi.yaml; every relative $ref must load from there."""
    client = jwt_app().test_client()  # JWT on: these documents need no token
    response = client.get("/openapi.yaml")
    assert response.status_code == 200 and response.mimetype == "application/yaml"
    assert response.data == SPEC_PATH.read_bytes(), "the description of the running release, as packaged"
    served = yaml.safe_load(response.data)
    refs = set(re.findall(r'\$ref: "(schemas/[^"#]+)"', response.get_data(as_text=True)))
    assert refs, "the description refers to the JSON Schemas"
    for ref in sorted(refs):
        schema = client.get(urljoin("/openapi.yaml", ref))
        assert schema.status_code == 200 and schema.mimetype == "application/schema+json", ref
        assert schema.get_json() == json.loads((SPEC_PATH.parent / ref).read_text(encoding="utf-8"))
    validate(served, base_uri=SPEC_PATH.as_uri())


@pytest.mark.parametrize("name", ["nope.json", "..%2Fopenapi.yaml", "cds-request", "%2e%2e%2fapp.py"])
def test_only_the_packaged_json_schemas_are_served(name):
    response = jwt_app().test_client().get(f"/schemas/{name}")
    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"


# --- schemathesis ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served_jwks():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(JWKS_URL, json=ehr_jwks())
        yield mock


APP = jwt_app(jwks_refresh_interval=3600, preview=True)  # the preview page is fuzzed too
schema = schemathesis.openapi.from_path(SPEC_PATH)
schema.app = APP


@pytest.mark.fuzz
@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_spec(case, served_jwks):
    # A body can match cds-request.json and still be refused with 400 (hook-specific context, FHIR
    # validity): the OpenAPI description says so, hence positive_data_acceptance does not apply.
    headers = bearer(token(case.formatted_path)) if case.path.startswith("/cds-services") else {}
    case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])


def test_a_real_hook_call_and_its_cards_conform_to_the_description(served_jwks):
    """Generated bodies rarely make a valid hook call, so one scenario goes through explicitly."""
    import fhir_fixtures
    from tests.conftest import SIGN

    operation = schema["/cds-services/{service_id}"]["POST"]
    case = operation.Case(
        path_parameters={"service_id": SIGN.id},
        body=fhir_fixtures.load("P01").prefetch_request(SIGN.prefetch),
        media_type="application/json",
    )
    headers = bearer(token(f"/cds-services/{SIGN.id}"))
    response = case.call(headers=headers)
    assert response.status_code == 200 and response.json()["cards"]
    case.validate_response(response, headers=headers, excluded_checks=[positive_data_acceptance])
