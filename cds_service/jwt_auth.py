"""Verifying the CDS client's JWT, as CDS Hooks 2.0 "Trusting CDS Clients" asks.

Each call carries `Authorization: Bearer <JWT>` signed by the EHR. We trust only configured issuers;
each names the JWKS URL its keys are published at and the `jku` values its tokens may carry. A
`jku` that is not on that issuer's list is refused *before* anything is fetched: otherwise a token
could make this service fetch any URL (SSRF) and trust keys the attacker serves.

Issuers are configured as JSON, in `IVIG_CDS_JWT_ISSUERS` or in a file named by
`IVIG_CDS_JWT_ISSUERS_FILE`:

    [{"iss": "https://ehr.example.org", "jwks_url": "https://ehr.example.org/jwks.json",
      "jku": ["https://ehr.example.org/jwks.json"]}]

Every failure is a `TokenRejectedError` (401) carrying a short `reason` for the log ("expired",
"bad-audience", ...). Neither the token nor its claims are ever logged or echoed.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests

from cds_service.config import ConfigError, Settings
from cds_service.errors import UnauthorizedError
from cds_service.replay import JtiCache

log = logging.getLogger(__name__)

#: Algorithms an operator may enable. HMAC (HS*) is absent on purpose: with HMAC the "public" key
#: from the JWKS would be the secret, the classic algorithm-confusion attack; `none` is absent too.
SUPPORTED_ALGORITHMS = frozenset({"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
MAX_TOKEN_CHARS = 16 * 1024
MAX_JWKS_BYTES = 256 * 1024
JWKS_TIMEOUT = (2.0, 3.0)  # seconds: connect, read
_COMPACT_JWS = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")

PUBLIC_MESSAGE = "authentication failed: send a valid CDS Hooks JWT as 'Authorization: Bearer <token>'"


class TokenRejectedError(UnauthorizedError):
    """401. `reason` is a fixed short word for the log; the response never says which check failed."""

    reason = "invalid"

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(PUBLIC_MESSAGE)
        if reason is not None:
            self.reason = reason

    @property
    def www_authenticate(self) -> str:
        return 'Bearer realm="ivig-cds", error="invalid_token"'


class MissingTokenError(TokenRejectedError):
    """No bearer token at all: RFC 6750 §3.1 says to answer without an error code."""

    reason = "missing"

    @property
    def www_authenticate(self) -> str:
        return 'Bearer realm="ivig-cds"'


class JwksUnavailableError(TokenRejectedError):
    """The issuer's key set could not be fetched, so no key can vouch for the token."""

    reason = "jwks-unavailable"


@dataclass(frozen=True)
class TrustedIssuer:
    iss: str
    jwks_url: str | None = None
    jku: tuple[str, ...] = ()


@dataclass(frozen=True)
class VerifiedClient:
    """Who called, after verification: for the request context and audit, never for the log."""

    iss: str
    jti: str
    tenant: str | None = None
    sub: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False)


# --- configuration --------------------------------------------------------------------------------


def _https_url(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string URL")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or "@" in parts.netloc or parts.fragment:
        raise ConfigError(f"{where} must be an https URL without user info or fragment, not {value!r}")
    return value


def parse_issuers(text: str, where: str = "IVIG_CDS_JWT_ISSUERS") -> tuple[TrustedIssuer, ...]:
    """Trusted issuers from their JSON text; every mistake is a ConfigError naming the entry."""
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"{where} is not valid JSON ({error.__class__.__name__})") from None
    if not isinstance(raw, list):
        raise ConfigError(f"{where} must be a JSON list of issuer objects")
    issuers: list[TrustedIssuer] = []
    for index, entry in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{at} must be an object")
        unknown = set(entry) - {"iss", "jwks_url", "jku"}
        if unknown:
            raise ConfigError(f"{at} has unknown fields {sorted(unknown)}; allowed: iss, jwks_url, jku")
        iss = entry.get("iss")
        if not isinstance(iss, str) or not iss:
            raise ConfigError(f"{at}.iss must be a non-empty string")
        jwks_url = entry.get("jwks_url")
        if jwks_url is not None:
            jwks_url = _https_url(jwks_url, f"{at}.jwks_url")
        jku = entry.get("jku", [])
        if isinstance(jku, str) or not isinstance(jku, list):
            raise ConfigError(f"{at}.jku must be a list of URLs")
        jku_urls = tuple(_https_url(url, f"{at}.jku[{i}]") for i, url in enumerate(jku))
        if jwks_url is None and not jku_urls:
            raise ConfigError(f"{at} needs a jwks_url or at least one jku URL")
        if any(existing.iss == iss for existing in issuers):
            raise ConfigError(f"{at}: issuer {iss!r} is listed twice")
        issuers.append(TrustedIssuer(iss=iss, jwks_url=jwks_url, jku=jku_urls))
    return tuple(issuers)


def load_issuers(settings: Settings) -> tuple[TrustedIssuer, ...]:
    if settings.jwt_issuers and settings.jwt_issuers_file:
        raise ConfigError("set IVIG_CDS_JWT_ISSUERS or IVIG_CDS_JWT_ISSUERS_FILE, not both")
    if settings.jwt_issuers_file:
        try:
            text = Path(settings.jwt_issuers_file).read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"IVIG_CDS_JWT_ISSUERS_FILE cannot be read ({error.strerror})") from None
        return parse_issuers(text, "IVIG_CDS_JWT_ISSUERS_FILE")
    if settings.jwt_issuers:
        return parse_issuers(settings.jwt_issuers)
    return ()


def check_algorithms(algorithms: Sequence[str]) -> tuple[str, ...]:
    chosen = tuple(algorithms)
    bad = [alg for alg in chosen if alg not in SUPPORTED_ALGORITHMS]
    if bad or not chosen:
        raise ConfigError(
            f"IVIG_CDS_JWT_ALGORITHMS may only name {sorted(SUPPORTED_ALGORITHMS)} (never none or HMAC); "
            f"refused: {bad or 'an empty list'}"
        )
    return chosen


# --- keys -------------------------------------------------------------------------------------------


@dataclass
class _KeySet:
    keys: dict[str, dict[str, Any]]
    fetched_at: float | None  # monotonic time of the last good fetch
    attempted_at: float  # monotonic time of the last attempt, good or not
    lock: threading.Lock = field(default_factory=threading.Lock)


class JwksCache:
    """Key sets by URL, refetched on an unknown `kid` (key rotation) but at most once per interval.

    Why the bound: anyone can send a token with a made-up `kid`; without it each such token would
    make us fetch the issuer's JWKS. A failed fetch keeps the keys we already had.
    """

    def __init__(
        self,
        session: requests.Session,
        *,
        refresh_interval: float,
        max_age: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.refresh_interval = refresh_interval
        self.max_age = max_age
        self.clock = clock
        self._sets: dict[str, _KeySet] = {}
        self._lock = threading.Lock()

    def key(self, url: str, kid: str) -> dict[str, Any]:
        """The JWK with this `kid` at `url` (a URL the caller has already checked is configured)."""
        with self._lock:
            entry = self._sets.setdefault(url, _KeySet(keys={}, fetched_at=None, attempted_at=float("-inf")))
        with entry.lock:
            now = self.clock()
            fresh = entry.fetched_at is not None and now - entry.fetched_at < self.max_age
            if fresh and kid in entry.keys:
                return entry.keys[kid]
            if now - entry.attempted_at >= self.refresh_interval:
                entry.attempted_at = now
                try:
                    entry.keys = self._fetch(url)
                    entry.fetched_at = now
                except JwksUnavailableError:
                    log.warning("JWKS fetch failed", extra={"reason": "jwks-unavailable"})
                    if kid not in entry.keys:
                        raise
            if kid in entry.keys:
                return entry.keys[kid]
            if entry.fetched_at is None:
                raise JwksUnavailableError()
            raise TokenRejectedError("unknown-kid")

    def _fetch(self, url: str) -> dict[str, dict[str, Any]]:
        try:
            response = self.session.get(
                url,
                headers={"Accept": "application/json, application/jwk-set+json"},
                timeout=JWKS_TIMEOUT,
                allow_redirects=False,
                stream=True,
            )
        except requests.RequestException:
            raise JwksUnavailableError() from None
        with response:
            if response.status_code != 200:
                raise JwksUnavailableError()
            content = b""
            try:
                for chunk in response.iter_content(chunk_size=16 * 1024):
                    content += chunk
                    if len(content) > MAX_JWKS_BYTES:
                        raise JwksUnavailableError()
            except requests.RequestException:
                raise JwksUnavailableError() from None
        try:
            document = json.loads(content)
        except (ValueError, RecursionError):
            raise JwksUnavailableError() from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise JwksUnavailableError()
        keys: dict[str, dict[str, Any]] = {}
        for jwk in document["keys"]:
            # Only public signing keys of the families we verify with; never a symmetric ("oct") key.
            if (
                isinstance(jwk, dict)
                and isinstance(jwk.get("kid"), str)
                and jwk.get("kty") in ("EC", "RSA")
                and jwk.get("use", "sig") == "sig"
                and "d" not in jwk
            ):
                keys.setdefault(jwk["kid"], jwk)
        return keys


def _verification_key(jwk: Mapping[str, Any], alg: str) -> Any:
    """The public key for `alg`, if this JWK may be used with it (family, curve and its own `alg`)."""
    if jwk.get("alg") not in (None, alg):
        raise TokenRejectedError("key-mismatch")
    if alg.startswith("ES"):
        if jwk.get("kty") != "EC" or jwk.get("crv") != EC_CURVES[alg]:
            raise TokenRejectedError("key-mismatch")
    elif jwk.get("kty") != "RSA":
        raise TokenRejectedError("key-mismatch")
    try:
        return jwt.PyJWK(dict(jwk), algorithm=alg).key
    except jwt.PyJWTError:  # PyJWK's messages quote the key: not logged
        raise TokenRejectedError("bad-key") from None


# --- verification -----------------------------------------------------------------------------------


_DECODE_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not-yet-valid"),
    (jwt.InvalidAudienceError, "bad-audience"),
    (jwt.InvalidIssuerError, "unknown-issuer"),
    (jwt.MissingRequiredClaimError, "missing-claim"),
    (jwt.InvalidSignatureError, "bad-signature"),
    (jwt.InvalidAlgorithmError, "bad-algorithm"),
    (jwt.InvalidIssuedAtError, "bad-claim"),
    (jwt.DecodeError, "malformed"),
)


class JwtVerifier:
    def __init__(
        self,
        issuers: Sequence[TrustedIssuer],
        keys: JwksCache,
        replay: JtiCache,
        *,
        algorithms: Sequence[str],
        leeway: int,
        max_lifetime: int,
    ) -> None:
        self.issuers = {issuer.iss: issuer for issuer in issuers}
        self.keys = keys
        self.replay = replay
        self.algorithms = tuple(algorithms)
        self.leeway = leeway
        self.max_lifetime = max_lifetime

    def verify(self, authorization: str | None, audience: str) -> VerifiedClient:
        """The verified caller, or TokenRejectedError. `audience` is the exact URL that was called."""
        token = _bearer_token(authorization)
        if not self.issuers:
            raise TokenRejectedError("no-trusted-issuers")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise TokenRejectedError("malformed") from None
        if str(header.get("typ", "")).upper() != "JWT":
            raise TokenRejectedError("bad-type")
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise TokenRejectedError("bad-algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejectedError("missing-kid")
        issuer = self.issuers.get(unverified.get("iss")) if isinstance(unverified.get("iss"), str) else None
        if issuer is None:
            raise TokenRejectedError("unknown-issuer")
        jku = header.get("jku")
        if jku is not None:
            # Checked before any fetch: never an SSRF. The issuer's own jwks_url is trusted under
            # either name, since many EHRs put the URL of their JWKS in every token's jku.
            if jku not in issuer.jku and jku != issuer.jwks_url:
                raise TokenRejectedError("jku-not-allowed")
            url = jku
        elif issuer.jwks_url is not None:
            url = issuer.jwks_url
        else:
            raise TokenRejectedError("jku-required")
        key = _verification_key(self.keys.key(url, kid), alg)
        audiences = [audience, audience.rstrip("/") + "/"] if not audience.endswith("/") else [audience]
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=audiences,
                issuer=issuer.iss,
                leeway=self.leeway,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except jwt.PyJWTError as error:
            raise TokenRejectedError(_reason_of(error)) from None
        return self._accept(issuer, claims)

    def _accept(self, issuer: TrustedIssuer, claims: dict[str, Any]) -> VerifiedClient:
        jti, exp, iat, tenant = claims["jti"], claims["exp"], claims["iat"], claims.get("tenant")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise TokenRejectedError("bad-claim")
        if tenant is not None and not isinstance(tenant, str):
            raise TokenRejectedError("bad-claim")
        if not isinstance(exp, int | float) or not isinstance(iat, int | float) or exp - iat > self.max_lifetime:
            raise TokenRejectedError("lifetime-too-long")
        if not self.replay.add(f"{issuer.iss}\n{jti}", float(exp) + self.leeway):
            raise TokenRejectedError("replayed")
        sub = claims.get("sub")
        return VerifiedClient(
            iss=issuer.iss, jti=jti, tenant=tenant, sub=sub if isinstance(sub, str) else None, claims=claims
        )


def _bearer_token(authorization: str | None) -> str:
    if not authorization or not authorization.strip():
        raise MissingTokenError()
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise TokenRejectedError("not-bearer")
    token = token.strip()
    if len(token) > MAX_TOKEN_CHARS or not _COMPACT_JWS.match(token):
        raise TokenRejectedError("malformed")
    return token


def _reason_of(error: Exception) -> str:
    for kind, reason in _DECODE_REASONS:
        if isinstance(error, kind):
            return reason
    return "bad-claim"
