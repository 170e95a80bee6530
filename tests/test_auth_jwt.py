"""JWT verification as CDS Hooks 2.0 asks: a matrix of forged, stale and misaddressed tokens (401),
and the tokens real EHRs send (200), with keys generated here and JWKS served by `responses`."""

from __future__ import annotations

import json
import logging
import time

import pytest
import responses

import fhir_fixtures
from cds_service.config import ConfigError
from tests.auth_tokens import (
    EHR,
    JWKS_URL,
    OTHER_JKU,
    PUBLIC_BASE,
    bearer,
    ehr_jwks,
    hmac_forgery,
    issuers_config,
    jwks,
    jwt_app,
    private_key,
    token,
    unsigned,
)
from tests.conftest import SIGN, check_response, fresh_database_url, make_app

DISCOVERY = "/cds-services"
INVOKE = f"/cds-services/{SIGN.id}"
P01_REQUEST = fhir_fixtures.load("P01").prefetch_request(SIGN.prefetch)


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(JWKS_URL, json=ehr_jwks())
        yield mock


@pytest.fixture
def client(rsps):
    return jwt_app().test_client()


def jwks_fetches(rsps, url=JWKS_URL):
    return sum(1 for call in rsps.calls if call.request.url == url)


def discover(client, headers):
    return client.get(DISCOVERY, headers=headers)


def invoke(client, headers, body=None):
    return client.post(INVOKE, json=P01_REQUEST if body is None else body, headers=headers)


# --- what passes ------------------------------------------------------------------------------------


def test_es384_token_opens_discovery_and_invocation(client):
    assert discover(client, bearer(token(DISCOVERY))).status_code == 200
    response = invoke(client, bearer(token(INVOKE)))
    assert response.status_code == 200
    assert check_response(response)["cards"][0]["indicator"] == "critical"


def test_rs384_token_is_accepted(client):
    response = discover(client, bearer(token(DISCOVERY, key=private_key("rsa-1", "RSA"), kid="rsa-1", alg="RS384")))
    assert response.status_code == 200


def test_extra_claims_ehrs_add_are_tolerated(client):
    now = time.time()
    signed = token(DISCOVERY, sub="client-app", tenant="hospital-a", nbf=int(now) - 10, fhirUser="x")
    assert discover(client, bearer(signed)).status_code == 200


def test_aud_as_a_list_and_scheme_in_any_case_are_accepted(client):
    signed = token(DISCOVERY, aud=["https://other.example.org", PUBLIC_BASE + DISCOVERY])
    assert discover(client, {"Authorization": "bearer " + signed}).status_code == 200


def test_small_clock_skew_is_within_leeway(client):
    assert discover(client, bearer(token(DISCOVERY, now=time.time() + 30))).status_code == 200


def test_allowed_jku_is_fetched_from_that_url(rsps):
    rotated = private_key("ec-jku")
    rsps.get(OTHER_JKU, json=jwks((rotated, "jku-1")))
    client = jwt_app().test_client()
    signed = token(DISCOVERY, key=rotated, kid="jku-1", headers={"jku": OTHER_JKU})
    assert discover(client, bearer(signed)).status_code == 200
    assert jwks_fetches(rsps, OTHER_JKU) == 1 and jwks_fetches(rsps) == 0


def test_a_jku_naming_the_issuers_own_jwks_url_is_allowed(rsps):
    """Many EHRs put their JWKS URL in every token's jku; configuring it as jwks_url is enough."""
    client = jwt_app(jwt_issuers=issuers_config({"iss": EHR, "jwks_url": JWKS_URL})).test_client()
    assert discover(client, bearer(token(DISCOVERY, headers={"jku": JWKS_URL}))).status_code == 200
    assert discover(client, bearer(token(DISCOVERY, headers={"jku": OTHER_JKU}))).status_code == 401
    assert jwks_fetches(rsps, OTHER_JKU) == 0


def test_key_rotation_fetches_the_new_kid(rsps):
    client = jwt_app(jwks_refresh_interval=0).test_client()
    assert discover(client, bearer(token(DISCOVERY))).status_code == 200
    assert discover(client, bearer(token(DISCOVERY))).status_code == 200
    assert jwks_fetches(rsps) == 1  # cached

    new_key = private_key("ec-2")
    rsps.replace(responses.GET, JWKS_URL, json=jwks((new_key, "ec-2")))
    assert discover(client, bearer(token(DISCOVERY, key=new_key, kid="ec-2"))).status_code == 200
    assert jwks_fetches(rsps) == 2


def test_keys_are_cached_and_unknown_kids_refetch_at_most_once_per_interval(rsps):
    client = jwt_app(jwks_refresh_interval=3600).test_client()
    assert discover(client, bearer(token(DISCOVERY))).status_code == 200
    for attempt in range(5):
        forged = token(DISCOVERY, kid=f"made-up-{attempt}")
        assert discover(client, bearer(forged)).status_code == 401
    assert jwks_fetches(rsps) == 1


def test_without_public_base_url_the_audience_is_the_request_url(rsps):
    client = jwt_app(public_base_url=None).test_client()
    assert discover(client, bearer(token(DISCOVERY, aud="http://localhost/cds-services"))).status_code == 200
    assert discover(client, bearer(token(DISCOVERY))).status_code == 401


def test_issuers_without_public_base_url_warn_at_start(caplog):
    caplog.set_level(logging.WARNING, logger="cds_service")
    jwt_app(public_base_url=None)
    assert "IVIG_CDS_PUBLIC_BASE_URL is not set" in caplog.text
    caplog.clear()
    jwt_app()
    assert "IVIG_CDS_PUBLIC_BASE_URL" not in caplog.text


def test_public_base_url_with_a_path_prefix(rsps):
    client = jwt_app(public_base_url="https://gw.example.org/ivig/").test_client()
    signed = token(DISCOVERY, aud="https://gw.example.org/ivig/cds-services")
    assert discover(client, bearer(signed)).status_code == 200


def test_health_readiness_and_preflight_need_no_token(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.options(INVOKE).status_code in (200, 204)


def test_verified_client_is_available_to_the_request(rsps):
    from flask import g

    app = jwt_app()
    with app.test_request_context(DISCOVERY, headers=bearer(token(DISCOVERY, tenant="t-1"))):
        app.preprocess_request()
        assert g.cds_client.iss == EHR and g.cds_client.tenant == "t-1"


# --- what is refused ----------------------------------------------------------------------------------


def _now() -> int:
    return int(time.time())


def _tampered(path: str) -> str:
    header, _payload, signature = token(path).split(".")
    other = token(path, sub="admin").split(".")[1]
    return f"{header}.{other}.{signature}"


def _alg_none(path: str, signature: bytes = b"") -> str:
    now = _now()
    payload = {"iss": EHR, "aud": PUBLIC_BASE + path, "exp": now + 300, "iat": now, "jti": f"none-{path}"}
    return unsigned({"alg": "none", "typ": "JWT", "kid": "ec-1"}, payload, signature)


def _rsa() -> object:
    return private_key("rsa-1", "RSA")


# Each case: the reason logged, and the headers for a request to `p` (only the named defect differs
# from a good call).
REFUSED = {
    "no header": ("missing", lambda p: {}),
    "empty header": ("missing", lambda p: {"Authorization": ""}),
    "basic scheme": ("not-bearer", lambda p: {"Authorization": "Basic dXNlcjpwYXNz"}),
    "token under another scheme": ("not-bearer", lambda p: {"Authorization": "DPoP " + token(p)}),
    "bearer without token": ("malformed", lambda p: {"Authorization": "Bearer "}),
    "not a JWT": ("malformed", lambda p: bearer("abc.def")),
    "malformed header": ("malformed", lambda p: bearer("e30x." + token(p).split(".", 1)[1])),
    "header not JSON": ("malformed", lambda p: bearer("bm90IGpzb24." + token(p).split(".", 1)[1])),
    "expired": ("expired", lambda p: bearer(token(p, now=time.time() - 400, lifetime=300))),
    "missing exp": ("missing-claim", lambda p: bearer(token(p, drop=("exp",)))),
    "nbf in the future": ("not-yet-valid", lambda p: bearer(token(p, nbf=_now() + 300))),
    "iat in the future": ("not-yet-valid", lambda p: bearer(token(p, now=time.time() + 300))),
    "missing iat": ("missing-claim", lambda p: bearer(token(p, drop=("iat",)))),
    "wrong aud": ("bad-audience", lambda p: bearer(token(p, aud="https://other.example.org" + p))),
    "aud of another endpoint": ("bad-audience", lambda p: bearer(token(p, aud=PUBLIC_BASE + "/cds-services/other"))),
    "aud is only the base URL": ("bad-audience", lambda p: bearer(token(p, aud=PUBLIC_BASE))),
    "missing aud": ("missing-claim", lambda p: bearer(token(p, drop=("aud",)))),
    "unknown iss": ("unknown-issuer", lambda p: bearer(token(p, iss="https://evil.example.net"))),
    "missing iss": ("unknown-issuer", lambda p: bearer(token(p, drop=("iss",)))),
    "jku not allowed": (
        "jku-not-allowed",
        lambda p: bearer(token(p, headers={"jku": "https://evil.example.net/jwks"})),
    ),
    "unknown kid": ("unknown-kid", lambda p: bearer(token(p, kid="nobody"))),
    "missing kid": ("missing-kid", lambda p: bearer(token(p, kid=None))),
    "bad signature": ("bad-signature", lambda p: bearer(_tampered(p))),
    "other key, same kid": ("bad-signature", lambda p: bearer(token(p, key=private_key("impostor"), kid="ec-1"))),
    "alg none": ("malformed", lambda p: bearer(_alg_none(p))),
    "alg none with a signature": ("bad-algorithm", lambda p: bearer(_alg_none(p, b"sig"))),
    "HS256 keyed with the public key": ("bad-algorithm", lambda p: bearer(hmac_forgery(p, private_key("ec-1")))),
    "HS384 keyed with the public key": (
        "bad-algorithm",
        lambda p: bearer(hmac_forgery(p, private_key("ec-1"), "HS384")),
    ),
    "RS256 not configured": ("bad-algorithm", lambda p: bearer(token(p, key=_rsa(), kid="rsa-1", alg="RS256"))),
    "ES384 header on an RSA key": ("key-mismatch", lambda p: bearer(token(p, kid="rsa-1"))),
    "typ not JWT": ("bad-type", lambda p: bearer(token(p, headers={"typ": "at+jwt"}))),
    "missing jti": ("missing-claim", lambda p: bearer(token(p, drop=("jti",)))),
    "lifetime beyond the maximum": ("lifetime-too-long", lambda p: bearer(token(p, lifetime=7 * 24 * 3600))),
    "tenant not a string": ("bad-claim", lambda p: bearer(token(p, tenant=42))),
    "token far too long": ("malformed", lambda p: bearer("a" * 20000 + ".b.c")),
}


def test_every_refused_case_differs_from_a_good_call_only_by_its_defect(client):
    """The matrix can fail: the same builder without the defect is accepted."""
    assert discover(client, bearer(token(DISCOVERY))).status_code == 200
    assert invoke(client, bearer(token(INVOKE))).status_code == 200


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_tokens_get_a_bare_401(client, rsps, case, caplog):
    caplog.set_level(logging.DEBUG)
    sent = []
    for path, send in ((DISCOVERY, discover), (INVOKE, invoke)):
        headers = REFUSED[case][1](path)
        sent.append(headers.get("Authorization", "").partition(" ")[2])
        response = send(client, headers)
        assert response.status_code == 401, case
        body = check_response(response)
        assert body["issue"][0]["code"] == "login"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert jwks_fetches(rsps, "https://evil.example.net/jwks") == 0
    logged = [r.reason for r in caplog.records if r.name == "cds_service.auth" and hasattr(r, "reason")]
    assert logged == [REFUSED[case][0]] * 2
    for secret in filter(None, sent):
        for part in (secret, *secret.split(".")):
            assert len(part) < 8 or part not in caplog.text  # neither the token nor any of its parts


def test_replayed_jti_is_refused(client):
    signed = token(DISCOVERY)
    assert discover(client, bearer(signed)).status_code == 200
    assert discover(client, bearer(signed)).status_code == 401
    same_jti = token(DISCOVERY, jti="fixed-1")
    assert discover(client, bearer(same_jti)).status_code == 200
    assert discover(client, bearer(token(DISCOVERY, jti="fixed-1"))).status_code == 401


def test_missing_token_answers_without_error_code_and_bad_token_with_invalid_token(client):
    assert discover(client, {}).headers["WWW-Authenticate"] == 'Bearer realm="ivig-cds"'
    assert 'error="invalid_token"' in discover(client, bearer("a.b.c")).headers["WWW-Authenticate"]


def test_refusal_logs_the_reason_category_only(client, caplog):
    caplog.set_level(logging.INFO, logger="cds_service")
    expired = token(DISCOVERY, now=time.time() - 400)
    discover(client, bearer(expired))
    reasons = [r.reason for r in caplog.records if getattr(r, "reason", None)]
    assert reasons == ["expired"]
    assert expired not in caplog.text


def test_feedback_and_any_path_under_cds_services_is_guarded(client):
    for path in (f"{INVOKE}/feedback", "/cds-services/", "/cds-services/unknown"):
        assert client.post(path, json={}).status_code == 401, path


def test_no_trusted_issuers_refuses_every_call_and_warns_at_start(rsps, caplog):
    caplog.set_level(logging.WARNING, logger="cds_service")
    client = make_app(auth="jwt").test_client()
    assert "no trusted issuers configured" in caplog.text
    assert discover(client, bearer(token(DISCOVERY))).status_code == 401
    assert client.get("/healthz").status_code == 200


def test_unreachable_jwks_is_401_and_not_retried_within_the_interval(caplog):
    with responses.RequestsMock() as mock:
        mock.get(JWKS_URL, status=503)
        client = jwt_app(jwks_refresh_interval=3600).test_client()
        assert discover(client, bearer(token(DISCOVERY))).status_code == 401
        assert discover(client, bearer(token(DISCOVERY))).status_code == 401
        assert len(mock.calls) == 1


def test_jwks_redirect_oversize_and_symmetric_keys_are_not_trusted():
    oct_key = {"kty": "oct", "kid": "ec-1", "k": "c2VjcmV0"}
    for serve in (
        {"status": 302, "headers": {"Location": "https://evil.example.net/jwks"}},
        {"body": b"{" + b" " * (300 * 1024) + b"}"},
        {"json": {"keys": [oct_key]}},
        {"body": b"not json"},
    ):
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            mock.get(JWKS_URL, **serve)
            client = jwt_app().test_client()
            assert discover(client, bearer(token(DISCOVERY))).status_code == 401
            assert all(call.request.url == JWKS_URL for call in mock.calls)


def test_jwks_key_with_a_different_alg_is_not_used_for_this_token():
    from tests.auth_tokens import public_jwk

    with responses.RequestsMock() as mock:
        mock.get(JWKS_URL, json={"keys": [public_jwk(private_key("ec-1"), "ec-1", alg="ES512")]})
        assert discover(jwt_app().test_client(), bearer(token(DISCOVERY))).status_code == 401


# --- configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"jwt_issuers": "not json"}, "not valid JSON"),
        ({"jwt_issuers": '{"iss": "x"}'}, "JSON list"),
        ({"jwt_issuers": '[{"iss": "x"}]'}, "needs a jwks_url, a jku URL, or pinned keys"),
        ({"jwt_issuers": '[{"iss": "x", "jwks_url": "http://ehr/jwks"}]'}, "https URL"),
        ({"jwt_issuers": '[{"iss": "x", "jwks_url": "https://u:p@ehr/jwks"}]'}, "https URL"),
        ({"jwt_issuers": '[{"iss": "x", "jku": "https://ehr/jwks"}]'}, "list of URLs"),
        ({"jwt_issuers": '[{"iss": "x", "jwks_uri": "https://ehr/jwks"}]'}, "unknown fields"),
        ({"jwt_issuers": '[{"iss": "x", "jwks": "https://ehr/jwks"}]'}, "must be a JWKS"),
        (
            {"jwt_issuers": '[{"iss": "x", "jwks_url": "https://a/j"}, {"iss": "x", "jwks_url": "https://a/j"}]'},
            "twice",
        ),
        ({"jwt_algorithms": ("ES384", "HS256")}, "never none or HMAC"),
        ({"jwt_algorithms": ("none",)}, "never none or HMAC"),
        ({"jwt_issuers_file": "/nonexistent/issuers.json"}, "cannot be read"),
        ({"jti_cache_url": "memcached://x"}, "redis://"),
        ({"jwt_leeway": 3600}, "JWT_LEEWAY"),
        ({"public_base_url": "cds.example.org"}, "PUBLIC_BASE_URL"),
    ],
)
def test_bad_auth_configuration_stops_the_service(config, fragment):
    with pytest.raises(ConfigError, match=fragment):
        make_app(auth="jwt", **config)


def test_issuers_can_come_from_a_file(tmp_path, rsps):
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps([{"iss": EHR, "jwks_url": JWKS_URL}]))
    client = jwt_app(jwt_issuers=None, jwt_issuers_file=str(path)).test_client()
    assert discover(client, bearer(token(DISCOVERY))).status_code == 200


def test_issuers_and_algorithms_from_the_environment(rsps):
    from cds_service import create_app

    environ = {
        "IVIG_CDS_AUTH": "jwt",
        "IVIG_CDS_JWT_ISSUERS": issuers_config(),
        "IVIG_CDS_JWT_ALGORITHMS": "RS384",
        "IVIG_CDS_PUBLIC_BASE_URL": PUBLIC_BASE,
        "IVIG_CDS_DATABASE_URL": fresh_database_url(),
    }
    client = create_app({"environ": environ}).test_client()
    assert discover(client, bearer(token(DISCOVERY))).status_code == 401  # ES384 not enabled here
    rs = token(DISCOVERY, key=private_key("rsa-1", "RSA"), kid="rsa-1", alg="RS384")
    assert discover(client, bearer(rs)).status_code == 200


def test_auth_off_still_warns_loudly(caplog):
    caplog.set_level(logging.WARNING, logger="cds_service")
    client = make_app(auth="off").test_client()
    assert "authentication is DISABLED" in caplog.text
    assert client.get(DISCOVERY).status_code == 200


def test_the_readme_example_configuration_is_valid():
    from pathlib import Path

    from cds_service.cors import parse_origins
    from cds_service.jwt_auth import parse_issuers

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Connecting an EHR", 1)[1]
    issuers = parse_issuers(section.split("export IVIG_CDS_JWT_ISSUERS='", 1)[1].split("'", 1)[0])
    assert [i.iss for i in issuers] == ["https://ehr.example.org", "https://ehr-test.example.org"]
    origins = section.split("export IVIG_CDS_CORS_ORIGINS=", 1)[1].split("\n", 1)[0]
    assert parse_origins(origins.split(","))
