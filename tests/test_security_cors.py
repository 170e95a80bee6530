"""CORS on /cds-services for configured browser origins; preflight needs no JWT."""

from __future__ import annotations

import pytest
import responses

from cds_service.config import ConfigError
from tests.auth_tokens import JWKS_URL, bearer, ehr_jwks, jwt_app, token
from tests.conftest import SIGN, fresh_database_url, make_app

SANDBOX = "https://sandbox.cds-hooks.org"
INVOKE = f"/cds-services/{SIGN.id}"


def preflight(client, origin, path=INVOKE, method="POST"):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_preflight_from_a_configured_origin_is_allowed_without_a_token():
    client = jwt_app(cors_origins=(SANDBOX,)).test_client()
    response = preflight(client, SANDBOX)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == SANDBOX
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Origin" in response.headers["Vary"]


def test_preflight_from_another_origin_gets_no_cors_headers():
    client = jwt_app(cors_origins=(SANDBOX,)).test_client()
    response = preflight(client, "https://evil.example.net")
    assert "Access-Control-Allow-Origin" not in response.headers
    assert response.status_code != 401  # preflight never asks for the JWT


def test_no_origins_configured_means_no_cors_headers():
    client = jwt_app().test_client()
    assert "Access-Control-Allow-Origin" not in preflight(client, SANDBOX).headers


def test_actual_calls_carry_the_origin_also_on_401():
    with responses.RequestsMock() as rsps:
        rsps.get(JWKS_URL, json=ehr_jwks())
        client = jwt_app(cors_origins=(SANDBOX,)).test_client()
        ok = client.get("/cds-services", headers={"Origin": SANDBOX, **bearer(token("/cds-services"))})
        refused = client.get("/cds-services", headers={"Origin": SANDBOX})
    assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == SANDBOX
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == SANDBOX
    assert "WWW-Authenticate" in refused.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Credentials" not in ok.headers  # the JWT is a header, never a cookie


def test_origin_match_ignores_case_but_not_scheme_or_port():
    client = make_app(cors_origins=(SANDBOX,)).test_client()
    assert preflight(client, SANDBOX.upper().replace("HTTPS", "https")).headers.get("Access-Control-Allow-Origin")
    assert "Access-Control-Allow-Origin" not in preflight(client, "http://sandbox.cds-hooks.org").headers
    assert "Access-Control-Allow-Origin" not in preflight(client, SANDBOX + ":8443").headers


def test_wildcard_origin():
    client = make_app(cors_origins=("*",)).test_client()
    assert preflight(client, "https://anywhere.example").headers["Access-Control-Allow-Origin"] == "*"


def test_health_endpoints_get_no_cors_headers():
    client = make_app(cors_origins=(SANDBOX,)).test_client()
    assert "Access-Control-Allow-Origin" not in client.get("/healthz", headers={"Origin": SANDBOX}).headers


def test_cors_origins_from_the_environment():
    from cds_service import create_app

    environ = {
        "IVIG_CDS_AUTH": "off",
        "IVIG_CDS_CORS_ORIGINS": f"{SANDBOX}, https://b.example",
        "IVIG_CDS_DATABASE_URL": fresh_database_url(),
    }
    app = create_app({"environ": environ})
    assert (
        preflight(app.test_client(), "https://b.example").headers["Access-Control-Allow-Origin"] == "https://b.example"
    )


@pytest.mark.parametrize("origin", ["sandbox.cds-hooks.org", "https://a.example/path", "ftp://a.example", "https://"])
def test_an_origin_that_is_not_an_origin_stops_the_service(origin):
    with pytest.raises(ConfigError, match="IVIG_CDS_CORS_ORIGINS"):
        make_app(cors_origins=(origin,))
