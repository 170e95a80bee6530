"""The card preview page in a real browser (Debian's chromium driven by Playwright), served by the
real `ivig-cds serve`: what an integration engineer and a clinical reviewer see and click.

Skips where no browser is installed, except under CI=true, where it fails: `.ci/run` installs
chromium. Playwright never downloads a browser here; it drives /usr/bin/chromium.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import fhir_fixtures
from tests.conftest import SIGN
from tests.processes import running_service

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script> [click](javascript:alert(3))'


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not CHROMIUM.exists():
        missing = "playwright (pip install -e '.[test]')" if sync_playwright is None else str(CHROMIUM)
        if os.environ.get("CI"):
            pytest.fail(f"{missing} is missing; CI must run the browser test (.ci/run installs chromium)")
        pytest.skip(f"{missing} is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def preview_url(tmp_path_factory):
    folder = tmp_path_factory.mktemp("preview")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVIG_CDS_")}
    env.update(IVIG_CDS_PREVIEW="true", IVIG_CDS_DATABASE_URL=f"sqlite:///{folder / 'db.sqlite'}")
    with running_service(folder, env, cwd=folder) as base:
        yield base


def _style(page, selector: str, prop: str) -> str:
    return page.eval_on_selector(selector, f"e => getComputedStyle(e).getPropertyValue('{prop}')")


def test_a_scenarios_cards_look_as_an_ehr_draws_them(browser, preview_url, tmp_path):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{preview_url}/preview")
    assert "no patient data" in page.inner_text(".banner")
    page.click("a.scenario:text-is('P01')")
    page.wait_for_selector("article.card")

    critical, info = page.locator("article.card.critical"), page.locator("article.card.info")
    assert critical.count() == 1 and info.count() == 1
    assert _style(page, "article.card.critical", "border-left-color") == "rgb(198, 40, 40)"
    assert _style(page, "article.card.info", "border-left-color") == "rgb(21, 101, 192)"
    assert critical.locator(".indicator").inner_text().lower() == "critical"
    assert "Life-threatening bleeding" in critical.locator(".summary").inner_text()
    # The markdown detail is rendered: headings in bold, values as a list, sources as links.
    assert critical.locator(".detail strong").first.inner_text() == "Values used"
    assert critical.locator(".detail li").count() >= 5
    assert critical.locator(".detail a").first.get_attribute("href").startswith("https://")
    assert critical.locator("a.source-link").get_attribute("href").startswith("https://doi.org/")
    # Suggestions are buttons; one opens to show the FHIR resource it would order.
    buttons = critical.locator(".suggestion summary")
    assert buttons.count() == 2 and "recommended" in (buttons.first.get_attribute("class") or "")
    buttons.nth(1).click()
    assert '"resourceType": "ServiceRequest"' in critical.locator(".suggestion").nth(1).locator("pre").inner_text()
    reasons = critical.locator("select.override-reasons option").all_inner_texts()
    assert reasons == [
        "Already addressed",
        "Following hematology advice",
        "Data shown is not current",
        "Not applicable to this patient",
    ]
    page.screenshot(path=str(tmp_path / "preview-p01.png"), full_page=True)
    keep = os.environ.get("IVIG_CDS_TEST_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "preview-p01.png", Path(keep) / "preview-p01.png")
    assert not dialogs
    page.close()


def test_a_pasted_request_with_hostile_text_shows_it_as_text(browser, preview_url, tmp_path):
    request = fhir_fixtures.load("P01").prefetch_request(SIGN.prefetch)
    request["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"]["text"] = HOSTILE
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{preview_url}/preview")
    page.select_option("#service", SIGN.id)
    page.fill("#request", json.dumps(request))
    page.click("button.primary")
    page.wait_for_selector("article.card")
    dose = page.locator("article.card[data-rule='dose-check']")
    assert "<img src=x" in dose.locator(".detail").inner_text(), "the text is shown as written"
    assert page.locator("article img, article script, a[href^='javascript']").count() == 0
    assert not dialogs, "no script ran"
    page.screenshot(path=str(tmp_path / "preview-pasted.png"), full_page=True)
    keep = os.environ.get("IVIG_CDS_TEST_SCREENSHOTS")
    if keep:
        shutil.copy(tmp_path / "preview-pasted.png", Path(keep) / "preview-pasted.png")
    page.close()
