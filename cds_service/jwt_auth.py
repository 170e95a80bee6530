"""Verifying the CDS client's JWT, as CDS Hooks 2.0 "Trusting CDS Clients" asks.

Each call carries `Authorization: Bearer <JWT>` signed by the EHR. We trust only configured issuers;
each names the JWKS URL its keys are published at and the `jku` values its tokens may carry. A
`jku` that is not on that issuer's list is refused *before* anything is fetched: otherwise a token
could make this service fetch any URL (SSRF) and trust keys the attacker serves.

Issuers are configured as JSON, in `IVIG_CDS_JWT_ISSUERS` or in a file named by
`IVIG_CDS_JWT_ISSUERS_FILE`:

    [{"iss": "https://ehr.example.org", "jwks_url": "https://ehr.example.org/jwks.json",
      "jku": ["https://ehr.example.org/jwks.json"]},
     {"iss": "https://ehr.hospital.internal", "jwks_file": "/etc/ivig-cds/ehr-jwks.json"}]

Pinned keys (`jwks`: a JWKS inline; `jwks_file`: the path of one) are the keys an EHR vendor hands
over for a network where the service cannot reach the EHR's JWKS URL. A token whose `kid` is
pinned is verified with that key and nothing is fetched; other `kid`s go to `jwks_url`/`jku`, if
the issuer has them. Pinned keys are read and checked at start: public EC or RSA signing keys
only, never private key material.

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
    """401. `reason` is a fixed short word for the log; the response never says which check failed.

    `details` are safe facts for the log line that help an operator fix the cause (the audience
    expected, the issuer received, the JWKS URL and why it failed): never the token or a claim
    that could identify a patient.
    """

    reason = "invalid"

    def __init__(self, reason: str | None = None, **details: Any) -> None:
        super().__init__(PUBLIC_MESSAGE)
        if reason is not None:
            self.reason = reason
        self.details: dict[str, Any] = details

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
    """The issuer's key set could not be fetched, so no key can vouch for the token.

    `failure` says why, as a fixed word an operator can act on: `tls` (the certificate is not
    trusted: see IVIG_CDS_CA_BUNDLE), `connect`, `timeout`, `proxy`, `http-<status>`, `redirect`,
    `too-large`, `not-json`, `no-key-set`.
    """

    reason = "jwks-unavailable"

    def __init__(self, failure: str = "unknown") -> None:
        super().__init__()
        self.failure = failure


_MAX_DETAIL_CHARS = 200


def _detail(value: Any) -> Any:
    """A claim or header value for the log: strings (or lists of them) cut short, anything else by type."""
    if isinstance(value, str):
        return value[:_MAX_DETAIL_CHARS]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v[:_MAX_DETAIL_CHARS] for v in value[:5]]
    return f"({type(value).__name__})"


@dataclass(frozen=True)
class TrustedIssuer:
    iss: str
    jwks_url: str | None = None
    jku: tuple[str, ...] = ()
    pinned_keys: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # kid -> public JWK


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


ISSUER_FIELDS = ("iss", "jwks_url", "jku", "jwks", "jwks_file")
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


def pinned_keys(document: Any, where: str) -> dict[str, dict[str, Any]]:
    """The public signing keys of a JWKS given in configuration, by `kid`; every mistake a ConfigError."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list) or not document["keys"]:
        raise ConfigError(f'{where} must be a JWKS: an object with a non-empty "keys" list')
    keys: dict[str, dict[str, Any]] = {}
    for index, jwk in enumerate(document["keys"]):
        at = f"{where}.keys[{index}]"
        if not isinstance(jwk, dict):
            raise ConfigError(f"{at} must be an object")
        if any(member in jwk for member in _PRIVATE_MEMBERS):
            raise ConfigError(f"{at} holds private key material; give the service public keys only")
        if jwk.get("kty") not in ("EC", "RSA"):
            raise ConfigError(f"{at}.kty must be EC or RSA (signing keys; never a symmetric key)")
        if not isinstance(jwk.get("kid"), str) or not jwk["kid"]:
            raise ConfigError(f"{at} needs a kid (tokens name their key by it)")
        if jwk.get("use", "sig") != "sig":
            raise ConfigError(f"{at}.use must be sig")
        try:
            jwt.PyJWK(dict(jwk))
        except jwt.PyJWTError:
            raise ConfigError(f"{at} is not a valid {jwk['kty']} public key") from None
        if jwk["kid"] in keys:
            raise ConfigError(f"{at}: kid {jwk['kid']!r} appears twice")
        keys[jwk["kid"]] = dict(jwk)
    return keys


def _read_jwks_file(path: Any, where: str, base_dir: Path | None) -> dict[str, dict[str, Any]]:
    if not isinstance(path, str) or not path:
        raise ConfigError(f"{where} must be a file path")
    file = Path(path).expanduser()
    if not file.is_absolute() and base_dir is not None:
        file = base_dir / file
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{where}: {str(file)!r} cannot be read ({error.strerror or type(error).__name__})") from None
    except ValueError:
        raise ConfigError(f"{where}: {str(file)!r} is not JSON") from None
    return pinned_keys(document, where)


def parse_issuers(
    text: str, where: str = "IVIG_CDS_JWT_ISSUERS", base_dir: Path | None = None
) -> tuple[TrustedIssuer, ...]:
    """Trusted issuers from their JSON text; every mistake is a ConfigError naming the entry.

    `base_dir`: where a relative `jwks_file` is looked up (the issuers file's folder).
    """
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
        unknown = set(entry) - set(ISSUER_FIELDS)
        if unknown:
            raise ConfigError(f"{at} has unknown fields {sorted(unknown)}; allowed: {', '.join(ISSUER_FIELDS)}")
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
        if "jwks" in entry and "jwks_file" in entry:
            raise ConfigError(f"{at}: give jwks or jwks_file, not both")
        pinned: dict[str, dict[str, Any]] = {}
        if "jwks" in entry:
            pinned = pinned_keys(entry["jwks"], f"{at}.jwks")
        elif "jwks_file" in entry:
            pinned = _read_jwks_file(entry["jwks_file"], f"{at}.jwks_file", base_dir)
        if jwks_url is None and not jku_urls and not pinned:
            raise ConfigError(f"{at} needs a jwks_url, a jku URL, or pinned keys (jwks or jwks_file)")
        if any(existing.iss == iss for existing in issuers):
            raise ConfigError(f"{at}: issuer {iss!r} is listed twice")
        issuers.append(TrustedIssuer(iss=iss, jwks_url=jwks_url, jku=jku_urls, pinned_keys=pinned))
    return tuple(issuers)


def load_issuers(settings: Settings) -> tuple[TrustedIssuer, ...]:
    if settings.jwt_issuers and settings.jwt_issuers_file:
        raise ConfigError("set IVIG_CDS_JWT_ISSUERS or IVIG_CDS_JWT_ISSUERS_FILE, not both")
    if settings.jwt_issuers_file:
        path = Path(settings.jwt_issuers_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"IVIG_CDS_JWT_ISSUERS_FILE cannot be read ({error.strerror})") from None
        return parse_issuers(text, "IVIG_CDS_JWT_ISSUERS_FILE", base_dir=path.resolve().parent)
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
    failure: str | None = None  # why the last attempt failed; None after a good fetch
    lock: threading.Lock = field(default_factory=threading.Lock)


class JwksCache:
    """Key sets by URL, refetched on an unknown `kid` (key rotation) but at most once per interval.

    Why the bound: anyone can send a token with a made-up `kid`; without it each such token would
    make us fetch the issuer's JWKS. A failed fetch keeps the keys we already had. After a failed
    fetch the next try comes sooner (`failure_retry`, at most the refresh interval), so a JWKS
    fixed by the operator is picked up within seconds, while a broken one is still fetched at most
    once per `failure_retry` however many tokens arrive.
    """

    def __init__(
        self,
        session: requests.Session,
        *,
        refresh_interval: float,
        max_age: float,
        clock: Callable[[], float] = time.monotonic,
        failure_retry: float = 5.0,
    ) -> None:
        self.session = session
        self.refresh_interval = refresh_interval
        self.max_age = max_age
        self.clock = clock
        self.failure_retry = min(failure_retry, refresh_interval)
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
            interval = self.failure_retry if entry.failure else self.refresh_interval
            if now - entry.attempted_at >= interval:
                entry.attempted_at = now
                try:
                    entry.keys = self._fetch(url)
                    entry.fetched_at = now
                    entry.failure = None
                except JwksUnavailableError as error:
                    entry.failure = error.failure
                    log.warning(
                        "JWKS fetch failed",
                        extra={
                            "reason": "jwks-unavailable",
                            "jwks_url": url,
                            "failure": error.failure,
                            "retry_in_s": self.failure_retry,
                        },
                    )
                    if kid not in entry.keys:
                        error.details = {"jwks_url": url, "failure": error.failure}
                        raise
            if kid in entry.keys:
                return entry.keys[kid]
            if entry.fetched_at is None:
                refused = JwksUnavailableError(entry.failure or "unknown")
                wait = max(0.0, entry.attempted_at + self.failure_retry - now)
                refused.details = {"jwks_url": url, "failure": refused.failure, "retry_in_s": round(wait, 1)}
                raise refused
            raise TokenRejectedError("unknown-kid", jwks_url=url)

    def _fetch(self, url: str) -> dict[str, dict[str, Any]]:
        try:
            response = self.session.get(
                url,
                headers={"Accept": "application/json, application/jwk-set+json"},
                timeout=JWKS_TIMEOUT,
                allow_redirects=False,
                stream=True,
            )
        except requests.RequestException as error:
            raise JwksUnavailableError(_failure_of(error)) from None
        with response:
            if 300 <= response.status_code < 400:
                raise JwksUnavailableError("redirect")
            if response.status_code != 200:
                raise JwksUnavailableError(f"http-{response.status_code}")
            content = b""
            try:
                for chunk in response.iter_content(chunk_size=16 * 1024):
                    content += chunk
                    if len(content) > MAX_JWKS_BYTES:
                        raise JwksUnavailableError("too-large")
            except requests.RequestException as error:
                raise JwksUnavailableError(_failure_of(error)) from None
        try:
            document = json.loads(content)
        except (ValueError, RecursionError):
            raise JwksUnavailableError("not-json") from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise JwksUnavailableError("no-key-set")
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


def _failure_of(error: requests.RequestException) -> str:
    """A fixed word for why a fetch failed: a TLS trust failure must not look like a refused connection."""
    if isinstance(error, requests.exceptions.SSLError):
        return "tls"
    if isinstance(error, requests.exceptions.ProxyError):
        return "proxy"
    if isinstance(error, requests.Timeout):
        return "timeout"
    if isinstance(error, requests.ConnectionError):
        return "connect"
    return type(error).__name__


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
            raise TokenRejectedError("unknown-issuer", issuer=_detail(unverified.get("iss")))
        key = _verification_key(self._jwk(issuer, header, kid), alg)
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
        except jwt.InvalidAudienceError:
            raise TokenRejectedError(
                "bad-audience", expected_audience=audience, received_audience=_detail(unverified.get("aud"))
            ) from None
        except jwt.PyJWTError as error:
            raise TokenRejectedError(_reason_of(error), issuer=issuer.iss) from None
        return self._accept(issuer, claims)

    def _jwk(self, issuer: TrustedIssuer, header: Mapping[str, Any], kid: str) -> Mapping[str, Any]:
        """The key the token names: pinned in configuration, or from a JWKS URL configured for its issuer."""
        if kid in issuer.pinned_keys:
            return issuer.pinned_keys[kid]  # the operator's own trust: nothing is fetched, whatever jku says
        jku = header.get("jku")
        if jku is not None:
            # Checked before any fetch: never an SSRF. The issuer's own jwks_url is trusted under
            # either name, since many EHRs put the URL of their JWKS in every token's jku.
            if jku not in issuer.jku and jku != issuer.jwks_url:
                raise TokenRejectedError("jku-not-allowed", issuer=issuer.iss, jwks_url=_detail(jku))
            return self.keys.key(jku, kid)
        if issuer.jwks_url is not None:
            return self.keys.key(issuer.jwks_url, kid)
        if issuer.pinned_keys:
            raise TokenRejectedError("unknown-kid", issuer=issuer.iss)
        raise TokenRejectedError("jku-required", issuer=issuer.iss)

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
