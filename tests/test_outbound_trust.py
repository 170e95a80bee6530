"""Trust offline and outbound traffic by configuration only: pinned issuer keys (inline or from a
file), a CA bundle for the service's own HTTPS, and proxies only when configured for the service.

The CA-bundle and proxy tests use real sockets: a TLS server with a certificate from a CA made
here, and a plain HTTP server standing in for an environment proxy.
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import fhir_fixtures
from cds_service.config import ConfigError
from fhir_fixtures import evaluate
from tests.auth_tokens import EHR, bearer, jwks, private_key, public_jwk, token
from tests.conftest import SIGN, make_app

INVOKE = f"/cds-services/{SIGN.id}"
P01 = fhir_fixtures.load("P01")


def pinned_app(**issuer_extra):
    issuer = {"iss": EHR, **issuer_extra}
    return make_app(auth="jwt", jwt_issuers=json.dumps([issuer]), public_base_url="https://cds.example.org")


# --- pinned keys --------------------------------------------------------------------------------------


def test_inline_pinned_keys_verify_tokens_without_any_fetch():
    client = pinned_app(jwks=jwks((private_key("ec-1"), "ec-1"))).test_client()
    # `responses` is not active: any HTTP request would fail to connect and the call would be a 401.
    assert client.get("/cds-services", headers=bearer(token("/cds-services"))).status_code == 200
    other = private_key("ec-other")
    assert client.get("/cds-services", headers=bearer(token("/cds-services", key=other))).status_code == 401


def test_a_pinned_kid_wins_over_a_jku_the_token_names():
    client = pinned_app(jwks=jwks((private_key("ec-1"), "ec-1"))).test_client()
    signed = token("/cds-services", headers={"jku": "https://unreachable.ehr.internal/jwks.json"})
    assert client.get("/cds-services", headers=bearer(signed)).status_code == 200


def test_an_unknown_kid_with_only_pinned_keys_is_refused(caplog):
    client = pinned_app(jwks=jwks((private_key("ec-1"), "ec-1"))).test_client()
    response = client.get("/cds-services", headers=bearer(token("/cds-services", kid="ec-2")))
    assert response.status_code == 401
    assert any(getattr(r, "reason", None) == "unknown-kid" for r in caplog.records)


def test_pinned_keys_from_a_file_relative_to_the_issuers_file(tmp_path):
    (tmp_path / "ehr-jwks.json").write_text(json.dumps(jwks((private_key("ec-1"), "ec-1"))))
    issuers = tmp_path / "issuers.json"
    issuers.write_text(json.dumps([{"iss": EHR, "jwks_file": "ehr-jwks.json"}]))
    app = make_app(auth="jwt", jwt_issuers_file=str(issuers), public_base_url="https://cds.example.org")
    assert app.test_client().get("/cds-services", headers=bearer(token("/cds-services"))).status_code == 200


@pytest.mark.parametrize(
    ("jwks_value", "fragment"),
    [
        ({"keys": []}, "non-empty"),
        ({"keys": [{**public_jwk(private_key("ec-1"), "k"), "d": "secret"}]}, "private key material"),
        ({"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]}, "private key material"),
        ({"keys": [{k: v for k, v in public_jwk(private_key("ec-1"), "k").items() if k != "kid"}]}, "needs a kid"),
        ({"keys": [{**public_jwk(private_key("ec-1"), "k"), "x": "AAAA"}]}, "not a valid EC public key"),
        ({"keys": [public_jwk(private_key("ec-1"), "k"), public_jwk(private_key("ec-1"), "k")]}, "appears twice"),
    ],
    ids=["empty", "private-ec", "symmetric", "no-kid", "broken", "duplicate"],
)
def test_bad_pinned_keys_stop_the_service_with_a_clear_message(jwks_value, fragment):
    with pytest.raises(ConfigError, match=fragment):
        pinned_app(jwks=jwks_value)


def test_a_missing_jwks_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"jwks_file: .*nope\.json' cannot be read"):
        pinned_app(jwks_file=str(tmp_path / "nope.json"))


# --- a CA bundle for outbound HTTPS -------------------------------------------------------------------


def _certificate(subject: str, issuer_key, public_key, issuer_name, ca: bool, san=None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def hospital_ca(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A private CA (as a hospital runs) and a server certificate for 127.0.0.1 signed by it."""
    folder = tmp_path_factory.mktemp("ca")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hospital test CA")])
    ca_cert = _certificate("Hospital test CA", ca_key, ca_key.public_key(), ca_name, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _certificate(
        "127.0.0.1",
        ca_key,
        server_key.public_key(),
        ca_name,
        ca=False,
        san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    (folder / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (folder / "server.pem").write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return folder / "ca.pem", folder / "server.pem", folder / "server.key"


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers GETs from a fixed map of path -> JSON (FHIR reads answered from a scenario), recording them."""

    answer = staticmethod(lambda path: None)
    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        body = self.answer(self.path)
        payload = json.dumps(body if body is not None else {"resourceType": "OperationOutcome", "issue": []}).encode()
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_args) -> None:
        pass


@contextmanager
def serving(answer, tls: tuple[Path, Path] | None = None) -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Handler", (_Recorder,), {"answer": staticmethod(answer), "seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    scheme = "http"
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_jwks_signed_by_the_hospital_ca_is_trusted_only_with_the_ca_bundle(hospital_ca, monkeypatch):
    ca, cert, key = hospital_ca
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    document = jwks((private_key("ec-1"), "ec-1"))
    with serving(lambda path: document if path == "/jwks.json" else None, tls=(cert, key)) as (base, seen):
        issuers = json.dumps([{"iss": EHR, "jwks_url": f"{base}/jwks.json"}])
        common = {"auth": "jwt", "jwt_issuers": issuers, "public_base_url": "https://cds.example.org"}
        untrusting = make_app(**common).test_client()
        assert untrusting.get("/cds-services", headers=bearer(token("/cds-services"))).status_code == 401
        # REQUESTS_CA_BUNDLE in the environment is not how the service is told: it is ignored.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
        still_untrusting = make_app(**common).test_client()
        assert still_untrusting.get("/cds-services", headers=bearer(token("/cds-services"))).status_code == 401
        trusting = make_app(**common, ca_bundle=str(ca)).test_client()
        assert trusting.get("/cds-services", headers=bearer(token("/cds-services"))).status_code == 200
        assert seen.count("/jwks.json") == 1, "the failing TLS handshakes never reached the server's handler"


# --- proxies: never from the environment --------------------------------------------------------------


def _fhir_answer(path: str):
    relative = path.split("/fhir/", 1)[1] if "/fhir/" in path else path.lstrip("/")
    return evaluate(relative, P01.resources())


def test_fhir_reads_ignore_http_proxy_and_use_only_the_configured_proxy(monkeypatch):
    with serving(_fhir_answer) as (fhir, direct), serving(_fhir_answer) as (proxy, proxied):
        base = f"{fhir}/fhir"
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.setenv("http_proxy", proxy)
        client = make_app(fhir_allowlist=[base], fhir_allow_http=True).test_client()
        response = client.post(INVOKE, json=P01.fetch_request(base))
        assert response.status_code == 200
        assert direct and not proxied, "the environment's proxy carried no FHIR read (patient id, token)"

        direct.clear()
        configured = make_app(fhir_allowlist=[base], fhir_allow_http=True, outbound_proxy=proxy).test_client()
        assert configured.post(INVOKE, json=P01.fetch_request(base)).status_code == 200
        assert proxied and not direct, "the service's own proxy setting is used"
        assert all(path.startswith(f"{fhir}/fhir/") for path in proxied), "a proxy sees absolute URLs"
