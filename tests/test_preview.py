"""The card preview page, in process: off by default, never a FHIR read, never a record, never markup
from card text. (What a browser shows is tested in test_preview_browser.py.)"""

from __future__ import annotations

import json

import responses
from sqlalchemy import func, select

import fhir_fixtures
from cds_service.preview import render_markdown
from cds_service.storage.schema import invocation as invocation_table
from tests.conftest import SIGN, make_app

P01 = fhir_fixtures.load("P01")
HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script> [click](javascript:alert(3))'


def test_the_preview_is_off_by_default():
    client = make_app().test_client()
    assert client.get("/preview").status_code == 404
    assert client.get("/preview/scenarios/P01").status_code == 404


def test_a_scenarios_cards_are_shown_and_the_page_forbids_scripts():
    response = make_app(preview=True).test_client().get("/preview/scenarios/p1")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert page.count('<article class="card critical"') == 1 and page.count('<article class="card info"') == 1
    assert "<strong>Values used</strong>" in page, "the detail's markdown is rendered"
    assert "Preview only — no patient data." in page
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script" not in policy.replace("default-src 'none'", "")


def test_card_text_cannot_become_markup():
    html = str(render_markdown(f"**Values used**\n\n- Order: {HOSTILE}"))
    assert "<strong>Values used</strong>" in html
    assert "<img" not in html and "<script" not in html and "javascript:" not in html.split("&lt;")[0]
    assert 'href="javascript' not in html and "&lt;img" in html and "&lt;script&gt;" in html


def test_a_pasted_request_is_judged_on_its_prefetch_alone_and_leaves_no_trace():
    app = make_app(preview=True, fhir_allowlist=["https://fhir.example.org/r4"])
    request = P01.prefetch_request(SIGN.prefetch, omit=("weight",))
    request["fhirServer"] = "https://fhir.example.org/r4"  # allowed for the hook endpoint, never for the preview
    request["fhirAuthorization"] = {
        "access_token": "t",
        "token_type": "Bearer",
        "expires_in": 60,
        "scope": "patient/*.read",
        "subject": "y",
    }
    request["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"]["text"] = HOSTILE
    with responses.RequestsMock() as rsps:  # any HTTP request would fail the test
        response = app.test_client().post("/preview/render", data={"service": SIGN.id, "request": json.dumps(request)})
        assert len(rsps.calls) == 0
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-rule="data-unavailable"' in page, "the omitted key is unavailable, not fetched"
    assert "<img" not in page and "<script" not in page and 'href="javascript' not in page
    app.extensions["ivig_cds.audit"].flush(10)
    with app.extensions["ivig_cds.storage"].begin() as conn:
        assert conn.execute(select(func.count()).select_from(invocation_table)).scalar() == 0


def test_a_bad_paste_is_a_400_page_with_the_reason():
    client = make_app(preview=True).test_client()
    response = client.post("/preview/render", data={"service": SIGN.id, "request": "{not json"})
    assert response.status_code == 400 and "not valid JSON" in response.get_data(as_text=True)
    response = client.post("/preview/render", data={"service": SIGN.id, "request": json.dumps({"hook": "order-sign"})})
    assert response.status_code == 400 and "HTTP 400" in response.get_data(as_text=True)
