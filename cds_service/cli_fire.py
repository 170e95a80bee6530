"""`ivig-cds fire`: call a running service as an EHR would, and print its cards as a clinician reads them.

The request is built from a scenario (its record and draft orders, dated as of now) or from a
patient on a FHIR server (draft orders named with `--order`, or from a file). Prefetch is filled
as an EHR fills it (from the scenario, or by reading the services' templates from the FHIR
server), or left out with `--no-prefetch` so the service reads everything from `--fhir-server`
itself. The services and their templates come from the running service's own discovery, so the
tool follows whatever the service under test declares. With `--sign DIR` (from `ivig-cds
dev-keys`) every call carries a fresh CDS Hooks JWT whose `aud` is the URL called.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from cds_service.cli_dev import (
    DEFAULT_USER,
    HTTP_TIMEOUT,
    ToolError,
    add_fhir_options,
    describe_failure,
    fetch_prefetch,
    load_signer,
    resolve_queries,
    run_tool,
    session,
    template_context,
    wait_reachable,
)

DEFAULT_URL = "http://127.0.0.1:8080"
ORDER_KINDS = ("ivig", "platelets", "heparin")


def _drafts_for(kinds: list[str], patient_id: str) -> dict[str, Any]:
    """Draft orders of the named kinds, as an EHR's order entry would have them."""
    from fhir_fixtures import build

    makers = {
        "ivig": build.ivig_order,
        "platelets": build.platelet_order,
        "heparin": lambda: build.medication_order("5224", "heparin", "Heparin 5,000 units SC every 12 hours"),
    }
    entries = []
    for index, kind in enumerate(kinds):
        resource = makers[kind]()
        resource["id"] = f"draft-{index + 1}-{kind}"
        resource["subject"] = {"reference": f"Patient/{patient_id}"}
        entries.append({"resource": resource})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _read_drafts(path: str, patient_id: str) -> dict[str, Any]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ToolError(f"--draft-orders {path}: cannot be read as JSON ({type(error).__name__})", 2) from None
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        return document
    if isinstance(document, dict) and isinstance(document.get("resourceType"), str):
        document.setdefault("subject", {"reference": f"Patient/{patient_id}"})
        return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": document}]}
    raise ToolError(f"--draft-orders {path}: expected a FHIR Bundle or one order resource", 2)


def _discover(http: requests.Session, url: str, sign: Callable[[str], str] | None) -> list[dict[str, Any]]:
    headers = {"Accept": "application/json"}
    if sign:
        headers["Authorization"] = f"Bearer {sign(url + '/cds-services')}"
    try:
        response = http.get(f"{url}/cds-services", headers=headers, timeout=HTTP_TIMEOUT, allow_redirects=False)
    except requests.RequestException as error:
        raise ToolError(describe_failure(error, "the CDS service", url)) from None
    if response.status_code == 401:
        hint = "" if sign else " (sign with --sign DIR, made by 'ivig-cds dev-keys')"
        raise ToolError(f"the service refused discovery with 401{hint}; its log says which check failed")
    if response.status_code != 200:
        raise ToolError(f"discovery answered HTTP {response.status_code}")
    return list(response.json().get("services", []))


def _fhir_authorization(token: str) -> dict[str, Any]:
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "ivig-cds",
    }


def build_request(args: argparse.Namespace, service: dict[str, Any], http: requests.Session) -> dict[str, Any]:
    """The CDS Hooks request an EHR would send for this scenario or patient."""
    import fhir_fixtures

    hook = service["hook"]
    templates = service.get("prefetch") or {}
    base = args.fhir_server.rstrip("/") if args.fhir_server else None
    if args.scenario:
        try:
            scenario = fhir_fixtures.find(args.scenario)
        except LookupError as error:
            raise ToolError(str(error), 2) from None
        if not args.as_recorded:
            scenario = scenario.rebased(datetime.now(UTC))  # the same moment `fixture load` dates them to
        if args.no_prefetch:
            return scenario.fetch_request(base, token=args.fhir_token, hook=hook)
        request = scenario.prefetch_request(templates, hook=hook)
        if base:
            request["fhirServer"] = base
            request["fhirAuthorization"] = _fhir_authorization(args.fhir_token)
        return request
    patient = args.patient
    context = template_context(patient, args.user, args.encounter)
    drafts = (
        _read_drafts(args.draft_orders, patient) if args.draft_orders else _drafts_for(args.order or ["ivig"], patient)
    )
    context["draftOrders"] = drafts
    if hook == "order-select":
        context["selections"] = [
            f"{e['resource']['resourceType']}/{e['resource']['id']}"
            for e in drafts.get("entry", [])
            if e["resource"].get("id")
        ]
    request: dict[str, Any] = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context}
    if base:
        request["fhirServer"] = base
        request["fhirAuthorization"] = _fhir_authorization(args.fhir_token)
    if not args.no_prefetch:
        queries = resolve_queries(templates, context)
        request["prefetch"] = fetch_prefetch(http, base or "", queries, args.fhir_token)
    return request


def _fire(args: argparse.Namespace) -> int:
    from cds_service.card_text import print_cards

    if bool(args.scenario) == bool(args.patient):
        raise ToolError("name a scenario (ivig-cds fixture list) or --patient ID, not both", 2)
    if args.patient and not args.fhir_server:
        raise ToolError("--patient needs --fhir-server (the patient's data is read from it)", 2)
    if args.no_prefetch and not args.fhir_server:
        raise ToolError("--no-prefetch needs --fhir-server: the service reads the data from it", 2)
    url = args.url.rstrip("/")
    http = session(args.ca_bundle)
    sign = load_signer(args.sign) if args.sign else None
    if not args.print_request:
        wait_reachable(http, f"{url}/healthz", args.wait)
    services = _discover(http, url, sign) if not args.print_request else [_local_service(args)]
    import fhir_fixtures

    hook = args.hook or (fhir_fixtures.find(args.scenario).hook if args.scenario else "order-sign")
    service = next((s for s in services if s.get("hook") == hook), None)
    if service is None:
        raise ToolError(f"the service at {url} declares no service for the {hook} hook")
    request = build_request(args, service, http)
    if args.print_request:
        json.dump(request, sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    endpoint = f"{url}/cds-services/{service['id']}"
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if sign:
        headers["Authorization"] = f"Bearer {sign(endpoint)}"
    started = time.perf_counter()
    try:
        response = http.post(endpoint, data=json.dumps(request), headers=headers, timeout=HTTP_TIMEOUT)
    except requests.RequestException as error:
        raise ToolError(describe_failure(error, "the CDS service", url)) from None
    elapsed = (time.perf_counter() - started) * 1000
    try:
        body = response.json()
    except ValueError:
        raise ToolError(f"HTTP {response.status_code}, and the body is not JSON") from None
    if args.json:
        json.dump(body, sys.stdout, indent=2, ensure_ascii=False)
        print()
    mode = "prefetch filled" if "prefetch" in request else "no prefetch: the service read the FHIR server"
    print(
        f"{hook} -> {service['id']}: HTTP {response.status_code} in {elapsed:.0f} ms ({mode}; "
        f"X-Request-Id {response.headers.get('X-Request-Id', '-')})",
        file=sys.stderr,
    )
    if response.status_code != 200:
        issues = body.get("issue") or [{}] if isinstance(body, dict) else [{}]
        raise ToolError(f"refused: {issues[0].get('diagnostics', body)}")
    if not args.json:
        print_cards(body.get("cards") or [], sys.stdout, color=None if args.color == "auto" else args.color == "always")
    return 0


def _local_service(args: argparse.Namespace) -> dict[str, Any]:
    """For --print-request: the service declared in this installation (no service is called)."""
    import fhir_fixtures
    from hooks.services import SERVICES

    hook = args.hook or (fhir_fixtures.find(args.scenario).hook if args.scenario else "order-sign")
    return next(s.discovery() for s in SERVICES if s.hook == hook)


def register(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    fire = command("fire", "call a running service as an EHR would and print its cards as a clinician reads them")
    fire.add_argument("scenario", nargs="?", help="a scenario id, in any case (P01, p1); or use --patient")
    fire.add_argument("--patient", help="a patient id on --fhir-server instead of a scenario")
    fire.add_argument("--url", default=DEFAULT_URL, help="the service's base URL")
    fire.add_argument(
        "--hook", choices=["order-sign", "order-select"], help="(default: the scenario's, else order-sign)"
    )
    fire.add_argument("--fhir-server", help="FHIR base URL sent as fhirServer (needed by --patient and --no-prefetch)")
    fire.add_argument("--no-prefetch", action="store_true", help="send no prefetch: the service reads the FHIR server")
    fire.add_argument("--fhir-token", default="example-access-token", help="access token sent in fhirAuthorization")
    fire.add_argument(
        "--order", action="append", choices=ORDER_KINDS, help="a draft order for --patient (repeatable; default: ivig)"
    )
    fire.add_argument(
        "--draft-orders", metavar="FILE", help="draft orders for --patient: a FHIR Bundle or one order, JSON"
    )
    fire.add_argument("--user", default=DEFAULT_USER, help="context.userId")
    fire.add_argument("--encounter", help="context.encounterId")
    fire.add_argument(
        "--sign", metavar="DIR", help="sign each call with the development key in DIR (ivig-cds dev-keys)"
    )
    fire.add_argument(
        "--as-recorded", action="store_true", help="keep the scenario's own dates instead of moving them to now"
    )
    fire.add_argument("--json", action="store_true", help="print the service's answer as JSON")
    fire.add_argument("--color", choices=["auto", "always", "never"], default="auto", help="colour the cards")
    fire.add_argument("--print-request", action="store_true", help="print the request instead of sending it")
    add_fhir_options(fire)
    fire.set_defaults(run=run_tool(_fire))
