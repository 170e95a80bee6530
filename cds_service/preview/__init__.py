"""The card preview page: the cards of a scenario, or of a request pasted in, as an EHR renders them.

For an integration engineer wiring an EHR and a clinical reviewer reading the advice: indicator
colours, the markdown detail rendered, the source and its link, suggestion buttons (each opens to
show the FHIR actions it would take), links, and the override reasons a clinician chooses from.

Off by default (`IVIG_CDS_PREVIEW=true` turns it on, with a loud warning at start) and built so
that it never serves patient data, even on a server that has some:
- it reads nothing from any FHIR server: a pasted request loses `fhirServer` and
  `fhirAuthorization`, and is judged by a pipeline whose FHIR allowlist is empty, so keys it
  omits are reported unavailable on a card, never fetched;
- it stores, audits, counts and logs nothing of what is pasted (it is not the hook endpoint);
- what it shows comes back only to the browser that sent it; scenarios are the public fixtures;
- card text can never become markup: the detail is rendered by markdown-it-py with HTML off (raw
  HTML is shown as text, `javascript:` links are not links), everything else is escaped by Jinja,
  and the Content-Security-Policy forbids every script, so even a bug there could run none.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from flask import Blueprint, Flask, Response, current_app, render_template, request
from markdown_it import MarkdownIt
from markupsafe import Markup
from werkzeug.exceptions import NotFound

from cds_service.config import Settings
from cds_service.errors import CdsError
from cds_service.fhir_client import FhirClient
from cds_service.pipeline import Pipeline

log = logging.getLogger(__name__)

PREVIEW_WARNING = (
    "IVIG_CDS_PREVIEW=true: the card preview page is served at /preview, to anyone who can reach this "
    "service. It shows fixture scenarios and requests pasted into it, reads no FHIR server and stores "
    "nothing; still, turn it off on a server that EHRs call with patient data."
)
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
EXTENSION = "ivig_cds.preview"

blueprint = Blueprint("preview", __name__, url_prefix="/preview", template_folder="templates")


@cache
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})

    def link_open(renderer: Any, tokens: Any, index: int, options: Any, env: Any) -> str:
        # Sources open beside the EHR, and the page they open learns nothing about this one.
        tokens[index].attrSet("target", "_blank")
        tokens[index].attrSet("rel", "noopener noreferrer")
        return str(renderer.renderToken(tokens, index, options, env))

    md.add_render_rule("link_open", link_open)
    return md


def render_markdown(text: str) -> Markup:
    """CDS Hooks card detail (GitHub-flavoured markdown in the spec; CommonMark here) as safe HTML."""
    return Markup(_markdown().render(text))  # safe: markdown-it escapes all raw HTML (html=False)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _pipeline() -> Pipeline:
    return current_app.extensions[EXTENSION]


def _services() -> list[dict[str, Any]]:
    return [service.discovery() for service in _pipeline().services.values()]


def _judge(service_id: str, body: Mapping[str, Any]) -> list[dict[str, Any]]:
    return _pipeline().call(service_id, json.dumps(body).encode("utf-8")).cards


def _page(template: str, status: int = 200, **values: Any) -> Response:
    response = Response(
        render_template(template, services=_services(), render_markdown=render_markdown, pretty=_pretty, **values),
        status=status,
        mimetype="text/html",
    )
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.get("")
def index() -> Response:
    import fhir_fixtures

    scenarios = [(s.id, s.title, s.hook) for s in fhir_fixtures.all_scenarios()]
    return _page("preview_index.html", scenarios=scenarios)


@blueprint.get("/scenarios/<scenario_id>")
def scenario(scenario_id: str) -> Response:
    import fhir_fixtures

    try:
        chosen = fhir_fixtures.find(scenario_id)
    except LookupError:
        raise NotFound() from None
    hook = request.args.get("hook", chosen.hook)
    service = next((s for s in _pipeline().services.values() if s.hook == hook), None)
    if service is None:
        raise NotFound()
    rebased = chosen.rebased(_pipeline().clock())  # the scenario as of now, as `fixture load` dates it
    cards = _judge(service.id, rebased.prefetch_request(service.prefetch, hook=hook))
    return _page(
        "preview_cards.html",
        title=f"{chosen.id}: {chosen.title}",
        hook=hook,
        service_id=service.id,
        cards=cards,
        expected=[(e.rule, e.indicator) for e in chosen.expected],
        scenario_id=chosen.id,
    )


@blueprint.post("/render")
def render_pasted() -> Response:
    service_id = request.form.get("service", "")
    pasted = request.form.get("request", "")
    problem = None
    cards: list[dict[str, Any]] = []
    if service_id not in _pipeline().services:
        problem = "choose one of the services listed"
    else:
        try:
            body = json.loads(pasted)
        except (ValueError, RecursionError):
            body, problem = None, "the pasted request is not valid JSON"
        if isinstance(body, dict):
            # Never a FHIR read from the preview: what is not in prefetch is shown as unavailable.
            body.pop("fhirServer", None)
            body.pop("fhirAuthorization", None)
        if problem is None:
            try:
                cards = _judge(service_id, body)
            except CdsError as error:  # the same value-free message an EHR would get
                problem = f"HTTP {error.status}: {error.message}"
    return _page(
        "preview_cards.html",
        status=400 if problem else 200,
        title="Pasted request",
        hook=_pipeline().services[service_id].hook if service_id in _pipeline().services else "",
        service_id=service_id,
        cards=cards,
        problem=problem,
        pasted=pasted,
    )


@blueprint.get("/style.css")
def style() -> Response:
    response = Response(_stylesheet(), mimetype="text/css")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@cache
def _stylesheet() -> bytes:
    return resources.files("cds_service").joinpath("preview", "style.css").read_bytes()


def init_app(app: Flask, settings: Settings) -> None:
    """Serve /preview when `IVIG_CDS_PREVIEW=true`; say so loudly. Its own pipeline reads no FHIR server."""
    if not settings.preview:
        return
    log.warning(PREVIEW_WARNING)
    main: Pipeline = app.extensions["ivig_cds.pipeline"]
    no_fhir = FhirClient(
        main.client.session,
        allowlist=(),
        allow_http=False,
        connect_timeout=settings.fhir_connect_timeout,
        read_timeout=settings.fhir_read_timeout,
        max_pages=settings.fhir_max_pages,
        max_bytes=settings.fhir_max_response_bytes,
    )
    app.extensions[EXTENSION] = Pipeline(settings, no_fhir, main.executor, main.clock)
    app.register_blueprint(blueprint)
