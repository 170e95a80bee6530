"""Test-only CDS clients: keys generated per test run (never committed), JWKS documents, JWTs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

PUBLIC_BASE = "https://cds.example.org"
EHR = "https://ehr.example.org"
JWKS_URL = f"{EHR}/.well-known/jwks.json"
OTHER_JKU = f"{EHR}/keys/2026.json"

_KEYS: dict[str, Any] = {}


def private_key(name: str, kind: str = "EC") -> Any:
    """A key generated once per test session under `name` (RSA generation is slow)."""
    if name not in _KEYS:
        _KEYS[name] = (
            ec.generate_private_key(ec.SECP384R1())
            if kind == "EC"
            else ec.generate_private_key(ec.SECP256R1())
            if kind == "EC256"
            else rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
    return _KEYS[name]


def public_jwk(key: Any, kid: str, alg: str | None = None) -> dict[str, Any]:
    public = key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(public, as_dict=True)
    jwk.update({"kid": kid, "use": "sig"})
    if alg:
        jwk["alg"] = alg
    return jwk


def jwks(*entries: tuple[Any, str]) -> dict[str, Any]:
    return {"keys": [public_jwk(key, kid) for key, kid in entries]}


def issuers_config(*issuers: dict[str, Any]) -> str:
    return json.dumps(list(issuers) or [{"iss": EHR, "jwks_url": JWKS_URL, "jku": [OTHER_JKU]}])


def token(
    path: str,
    *,
    key: Any = None,
    kid: str | None = "ec-1",
    alg: str = "ES384",
    iss: str = EHR,
    aud: Any = None,
    lifetime: int = 300,
    now: float | None = None,
    headers: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    """A CDS Hooks client JWT for `PUBLIC_BASE + path`, as an EHR would send it."""
    now = time.time() if now is None else now
    payload: dict[str, Any] = {
        "iss": iss,
        "aud": PUBLIC_BASE + path if aud is None else aud,
        "exp": int(now) + lifetime,
        "iat": int(now),
        "jti": str(uuid.uuid4()),
    }
    payload.update(claims)
    for name in drop:
        payload.pop(name, None)
    return jwt.encode(
        payload,
        key if key is not None else private_key("ec-1"),
        algorithm=alg,
        headers={"typ": "JWT", **({"kid": kid} if kid else {}), **(headers or {})},
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWS assembled by hand: for `alg: none` and other forgeries PyJWT will not make."""
    return ".".join((b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)))


def hmac_forgery(path: str, issuer_key: Any, alg: str = "HS256", kid: str = "ec-1") -> str:
    """The algorithm-confusion attack: an HMAC signature keyed with the issuer's public key PEM."""
    now = int(time.time())
    header = {"alg": alg, "typ": "JWT", "kid": kid}
    payload = {"iss": EHR, "aud": PUBLIC_BASE + path, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}".encode()
    public = issuer_key.public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.sha256 if alg == "HS256" else hashlib.sha384
    return signing_input.decode() + "." + b64(hmac.new(pem, signing_input, digest).digest())


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def jwt_app(**config: Any) -> Any:
    """An app that verifies JWTs from the test EHR (whose JWKS the test serves at JWKS_URL)."""
    from tests.conftest import make_app

    config.setdefault("auth", "jwt")
    config.setdefault("jwt_issuers", issuers_config())
    config.setdefault("public_base_url", PUBLIC_BASE)
    return make_app(**config)


def ehr_jwks() -> dict[str, Any]:
    return jwks((private_key("ec-1"), "ec-1"), (private_key("rsa-1", "RSA"), "rsa-1"))
