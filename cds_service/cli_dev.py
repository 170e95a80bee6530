"""Integration tools: development keys, scenarios loaded into a FHIR server, prefetch resolved for a patient.

What an integration engineer otherwise writes by hand before the first signed call: a key pair
with its JWKS and the issuer entry that trusts it (`dev-keys`), the scenarios in a sandbox FHIR
server dated as of today (`fixture load`), and the prefetch queries the services declare, filled
for one patient (`prefetch`). None of this is for production: development keys sign whatever the
holder of a file asks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

DEFAULT_KEY_DIR = ".ivig-cds-dev-keys"
DEFAULT_DEV_ISSUER = "https://dev-ehr.invalid"
CLIENT_FILE = "client.json"
KEY_FILE = "signing-key.pem"
JWKS_FILE = "jwks.json"
ISSUERS_FILE = "issuers.json"
DEFAULT_USER = "Practitioner/example-prescriber"
HTTP_TIMEOUT = (5.0, 60.0)  # seconds: connect, read (a transaction of a big scenario takes a moment)


class ToolError(Exception):
    """A failure the user can fix; printed as one line, exit status 1 (2 for usage errors)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def session(ca_bundle: str | None = None) -> requests.Session:
    """The tools' HTTP session: no proxy or trust settings inherited from the environment, as in the service."""
    http = requests.Session()
    http.trust_env = False
    if ca_bundle:
        http.verify = ca_bundle
    return http


def wait_reachable(http: requests.Session, url: str, seconds: float) -> None:
    """Poll `url` until anything answers (a server started a moment ago), for at most `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            http.get(url, timeout=(1.0, 5.0))
            return
        except requests.ConnectionError:
            if time.monotonic() >= deadline:
                return  # the real request says what is wrong
            time.sleep(0.2)


def describe_failure(error: requests.RequestException, what: str, url: str) -> str:
    if isinstance(error, requests.exceptions.SSLError):
        return f"{what} at {url}: its TLS certificate is not trusted (give --ca-bundle)"
    if isinstance(error, requests.Timeout):
        return f"{what} at {url} did not answer in time"
    if isinstance(error, requests.ConnectionError):
        return f"cannot reach {what} at {url}: is it running? (--wait SECONDS waits for it to start)"
    return f"{what} at {url}: {type(error).__name__}"


def run_tool(function: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn a ToolError into one line on stderr and its exit status."""

    def run(args: argparse.Namespace) -> int:
        try:
            return function(args)
        except ToolError as error:
            print(f"ivig-cds {args.command}: {error}", file=sys.stderr)
            return error.status

    return run


# --- dev-keys ---------------------------------------------------------------------------------------


def _dev_keys(args: argparse.Namespace) -> int:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    folder = Path(args.out).expanduser().resolve()
    files = [folder / name for name in (KEY_FILE, JWKS_FILE, ISSUERS_FILE, CLIENT_FILE)]
    if any(f.exists() for f in files) and not args.force:
        raise ToolError(f"{folder} already holds development keys (--force replaces them)", status=2)
    folder.mkdir(parents=True, exist_ok=True)
    if args.alg == "ES384":
        key: Any = ec.generate_private_key(ec.SECP384R1())
        public = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    kid = args.kid or f"dev-{datetime.now(UTC):%Y%m%d}-{uuid.uuid4().hex[:6]}"
    public.update({"kid": kid, "use": "sig", "alg": args.alg})
    jwks = {"keys": [public]}
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    key_path = folder / KEY_FILE
    key_path.unlink(missing_ok=True)
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    (folder / JWKS_FILE).write_text(json.dumps(jwks, indent=2) + "\n", encoding="utf-8")
    # The JWKS inline: the service trusts the key without any HTTPS server to fetch it from.
    issuers = [{"iss": args.iss, "jwks": jwks}]
    (folder / ISSUERS_FILE).write_text(json.dumps(issuers, indent=2) + "\n", encoding="utf-8")
    client = {"iss": args.iss, "kid": kid, "alg": args.alg, "key_file": KEY_FILE}
    (folder / CLIENT_FILE).write_text(json.dumps(client, indent=2) + "\n", encoding="utf-8")
    print(
        f"Development keys for issuer {args.iss} (kid {kid}, {args.alg}) in {folder}:\n"
        f"  {KEY_FILE}  the private key (mode 600; never commit it, never trust it in production)\n"
        f"  {JWKS_FILE}  the public key as a JWKS, for a CDS client that publishes one\n"
        f"  {ISSUERS_FILE}  an IVIG_CDS_JWT_ISSUERS_FILE trusting that key, inline (no JWKS server needed)\n"
        f"  {CLIENT_FILE}  what 'ivig-cds fire --sign {args.out}' signs with\n"
        "Trust it in the service (this command prints the line below on stdout, for eval):",
        file=sys.stderr,
    )
    print(f"export IVIG_CDS_JWT_ISSUERS_FILE={folder / ISSUERS_FILE}")
    return 0


def load_signer(folder: str) -> Callable[[str], str]:
    """A function making a fresh CDS client JWT for an audience, from a `dev-keys` folder."""
    import jwt

    base = Path(folder).expanduser()
    try:
        client = json.loads((base / CLIENT_FILE).read_text(encoding="utf-8"))
        key = (base / client["key_file"]).read_bytes()
    except (OSError, ValueError, KeyError, TypeError):
        raise ToolError(
            f"{base} holds no development keys ('ivig-cds dev-keys --out {folder}' makes them)", 2
        ) from None

    def sign(audience: str) -> str:
        now = int(time.time())
        claims = {"iss": client["iss"], "aud": audience, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
        return jwt.encode(claims, key, algorithm=client["alg"], headers={"typ": "JWT", "kid": client["kid"]})

    return sign


# --- fixture load -----------------------------------------------------------------------------------


def _fixture_load(args: argparse.Namespace) -> int:
    import fhir_fixtures

    try:
        chosen = [fhir_fixtures.find(name) for name in args.scenarios] or list(fhir_fixtures.all_scenarios())
    except LookupError as error:
        raise ToolError(str(error), status=2) from None
    base = args.fhir_server.rstrip("/")
    http = session(args.ca_bundle)
    wait_reachable(http, f"{base}/metadata", args.wait)
    now = datetime.now(UTC)
    for scenario in chosen:
        if not args.as_recorded:
            scenario = scenario.rebased(now)
        bundle = scenario.transaction()
        try:
            response = http.post(
                base,
                json=bundle,
                headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"},
                timeout=HTTP_TIMEOUT,
                allow_redirects=False,
            )
        except requests.RequestException as error:
            raise ToolError(describe_failure(error, "the FHIR server", base)) from None
        if response.status_code not in (200, 201):
            raise ToolError(f"{scenario.id}: the FHIR server answered HTTP {response.status_code} to the transaction")
        dated = "as recorded" if args.as_recorded else "dated as of now"
        print(f"{scenario.id}  Patient/{scenario.patient_id}  {len(bundle['entry'])} resources  {dated}")
    print(f"loaded {len(chosen)} scenario(s) into {base}", file=sys.stderr)
    return 0


# --- prefetch ---------------------------------------------------------------------------------------


def service_for(hook: str) -> Any:
    from hooks.services import SERVICES

    return next(service for service in SERVICES if service.hook == hook)


def template_context(patient_id: str, user: str, encounter: str | None) -> dict[str, Any]:
    context: dict[str, Any] = {"patientId": patient_id, "userId": user}
    if encounter:
        context["encounterId"] = encounter
    return context


def resolve_queries(templates: Mapping[str, str], context: Mapping[str, Any]) -> dict[str, str]:
    """Each prefetch key's query for this call, by the templates the services declare.

    Date tokens (CDS Hooks 3.0 `{{today() - N days}}`) count from today in UTC, as the service does.
    """
    from cds_service.prefetch import PrefetchTemplateError, render

    today = datetime.now(UTC).date()
    try:
        return {key: render(template, context, today) for key, template in templates.items()}
    except PrefetchTemplateError as error:
        raise ToolError(str(error), status=2) from None


def fetch_prefetch(http: requests.Session, base: str, queries: Mapping[str, str], token: str | None) -> dict[str, Any]:
    """What an EHR sends as `prefetch`: each query's answer from the FHIR server (null when not found)."""
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    prefetch: dict[str, Any] = {}
    for key, query in queries.items():
        try:
            response = http.get(f"{base}/{query}", headers=headers, timeout=HTTP_TIMEOUT, allow_redirects=False)
        except requests.RequestException as error:
            raise ToolError(describe_failure(error, "the FHIR server", base)) from None
        if response.status_code in (404, 410):
            prefetch[key] = None
            continue
        if response.status_code != 200:
            raise ToolError(f"prefetch '{key}': the FHIR server answered HTTP {response.status_code}")
        try:
            prefetch[key] = response.json()
        except ValueError:
            raise ToolError(f"prefetch '{key}': the FHIR server's answer is not JSON") from None
    return prefetch


def _prefetch(args: argparse.Namespace) -> int:
    """The queries this deployment advertises: its look-backs and date-token setting (IVIG_CDS_*)."""
    from cds_service.config import ConfigError, load_settings
    from hooks.data_needs import prefetch_templates

    service = service_for(args.hook)
    try:
        settings = load_settings()
    except ConfigError as error:
        raise ToolError("; ".join(error.problems), status=2) from None
    templates = prefetch_templates(settings.rules, date_tokens=settings.prefetch_date_tokens)
    queries = resolve_queries(templates, template_context(args.patient, args.user, args.encounter))
    base = args.fhir_server.rstrip("/") if args.fhir_server else None
    if args.resolve:
        if base is None:
            raise ToolError("--resolve needs --fhir-server", status=2)
        http = session(args.ca_bundle)
        wait_reachable(http, f"{base}/metadata", args.wait)
        json.dump(fetch_prefetch(http, base, queries, args.fhir_token), sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    print(f"# {service.id} ({service.hook}): prefetch for Patient/{args.patient}", file=sys.stderr)
    width = max(len(key) for key in queries)
    for key, query in queries.items():
        print(f"{key:<{width}}  {base + '/' + query if base else query}")
    return 0


# --- registration -----------------------------------------------------------------------------------


def add_fhir_options(parser: argparse.ArgumentParser, wait_default: float = 0.0) -> None:
    parser.add_argument("--ca-bundle", help="PEM file of CAs to trust for https (default: the system's)")
    parser.add_argument(
        "--wait", type=float, default=wait_default, metavar="SECONDS", help="wait this long for a server still starting"
    )


def register_fixture_load(action: Callable[[str, str], argparse.ArgumentParser]) -> None:
    load = action("load", "load scenarios into a FHIR server (FHIR transactions), dated as of now")
    load.add_argument("scenarios", nargs="*", metavar="SCENARIO", help="scenario ids, in any case (default: all)")
    load.add_argument(
        "--fhir-server", required=True, help="the FHIR server's base URL, e.g. http://127.0.0.1:8090/fhir"
    )
    load.add_argument(
        "--as-recorded",
        action="store_true",
        help="keep the scenarios' own dates (their cards then speak of stale data)",
    )
    add_fhir_options(load)
    load.set_defaults(run=run_tool(_fixture_load))


def register(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    keys = command("dev-keys", "make a development key pair, its JWKS, and the issuer configuration trusting it")
    keys.add_argument("--out", default=DEFAULT_KEY_DIR, help="folder to write the key files to")
    keys.add_argument("--iss", default=DEFAULT_DEV_ISSUER, help="the issuer (iss) the tokens name")
    keys.add_argument("--alg", choices=["ES384", "RS384"], default="ES384", help="signature algorithm")
    keys.add_argument("--kid", help="key id (default: dev-<date>-<random>)")
    keys.add_argument("--force", action="store_true", help="replace keys already in the folder")
    keys.set_defaults(run=run_tool(_dev_keys))

    prefetch = command("prefetch", "show the services' prefetch templates resolved for a patient")
    prefetch.add_argument("patient", help="the patient's FHIR id (context.patientId)")
    prefetch.add_argument("--hook", choices=["order-sign", "order-select"], default="order-sign", help="which service")
    prefetch.add_argument("--user", default=DEFAULT_USER, help="context.userId")
    prefetch.add_argument("--encounter", help="context.encounterId")
    prefetch.add_argument("--fhir-server", help="FHIR base URL: print full URLs")
    prefetch.add_argument(
        "--resolve", action="store_true", help="read each query from --fhir-server; print the prefetch JSON"
    )
    prefetch.add_argument("--fhir-token", help="bearer token for the FHIR server")
    add_fhir_options(prefetch)
    prefetch.set_defaults(run=run_tool(_prefetch))
