"""What a clinical governance committee reads: the report's override reasons and the rule catalogue.

- A plain dismissal (no reason, no comment) is not "(comment only)"; a reason code sent without a
  display is shown by the service's own label for it, not as a raw code.
- `ivig-cds rules` renders each trigger from the settings in force ("below 30" when the deployment
  set 30) and marks disabled rules, in every format.
"""

from __future__ import annotations

import json

import pytest

import fhir_fixtures
from cds_service import report
from cds_service.cli import main
from cds_service.storage import Storage
from tests.conftest import SIGN, close_app, make_app

OWN = "urn:ivig-cds:override-reason"


def _override(card: dict, reason: dict | None) -> dict:
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-06-01T12:05:00Z"}
    if reason is not None:
        item["overrideReason"] = reason
    return item


@pytest.fixture
def reasons(tmp_path):
    """Overrides of P01's and P02's cards: dismissed plainly, with a comment only, and by a bare code."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    app = make_app(database_url=url)
    client = app.test_client()
    try:
        cards = {}
        for sid in ("P01", "P02"):
            request = fhir_fixtures.load(sid).prefetch_request(SIGN.prefetch)
            for card in client.post(f"/cds-services/{SIGN.id}", json=request).get_json()["cards"]:
                cards.setdefault(card["source"]["topic"]["code"], card)
        plain, bare, commented = cards["critical-bleeding"], cards["dose-check"], cards["bleeding-with-low-platelets"]
        feedback = [
            _override(plain, None),  # "dismiss": no reason object at all
            _override(bare, {"reason": {"system": OWN, "code": "hematology-advice"}}),  # code, no display
            _override(commented, {"userComment": "asked the family first"}),
        ]
        for item in feedback:
            response = client.post(f"/cds-services/{SIGN.id}/feedback", json={"feedback": [item]})
            assert response.status_code == 200, response.get_json()
    finally:
        close_app(app)
    storage = Storage(url)
    try:
        built = report.build(storage)
    finally:
        storage.close()
    return {r.rule: dict(r.top_override_reasons) for r in built.rules}


def test_a_plain_dismissal_is_not_a_comment(reasons):
    assert reasons["critical-bleeding"] == {report.NO_REASON: 1}
    assert reasons["bleeding-with-low-platelets"] == {report.COMMENT_ONLY: 1}


def test_a_bare_reason_code_shows_the_services_own_label(reasons):
    assert reasons["dose-check"] == {"Following hematology advice": 1}


# --- the rule catalogue ----------------------------------------------------------------------------

DEPLOYED = {"IVIG_CDS_RULE_CRITICAL_BLEEDING_PLATELETS": "30", "IVIG_CDS_RULE_DISABLED_RULES": "neonatal,sepsis"}


@pytest.fixture
def deployed(monkeypatch):
    for name, value in DEPLOYED.items():
        monkeypatch.setenv(name, value)


def test_the_json_catalogue_renders_thresholds_in_force_and_marks_disabled_rules(deployed, capsys):
    assert main(["rules", "--format", "json"]) == 0
    catalogue = {e["id"]: e for e in json.loads(capsys.readouterr().out)}
    assert "below 30" in catalogue["critical-bleeding"]["trigger"]
    assert "below 50" not in catalogue["critical-bleeding"]["trigger"]
    assert "below 30" in catalogue["bleeding-with-low-platelets"]["trigger"]
    assert catalogue["neonatal"]["enabled"] is False and catalogue["sepsis"]["enabled"] is False
    assert catalogue["dose-check"]["enabled"] is True
    assert not any("{" in e["trigger"] + e["indicator"] + e["advice"] for e in catalogue.values()), "no raw template"


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_the_readable_catalogues_render_thresholds_in_force_and_mark_disabled_rules(deployed, capsys, fmt):
    assert main(["rules", "--format", fmt]) == 0
    out = capsys.readouterr().out
    critical = next(line for line in out.splitlines() if "platelet count below" in line and "intracranial" in line)
    assert "below 30" in critical and "below 50" not in critical
    if fmt == "markdown":
        assert "| `neonatal` | **disabled** |" in out and "| `sepsis` | **disabled** |" in out
        assert "| `dose-check` | yes |" in out
    else:
        assert "\nneonatal  (disabled)\n" in out and "\nsepsis  (disabled)\n" in out
        assert "\ndose-check\n" in out
        assert "2 disabled" in out.splitlines()[0]


def test_the_default_catalogue_is_the_rule_book(monkeypatch, capsys):
    for name in DEPLOYED:
        monkeypatch.delenv(name, raising=False)
    assert main(["rules", "--format", "json"]) == 0
    catalogue = {e["id"]: e for e in json.loads(capsys.readouterr().out)}
    assert "below 50" in catalogue["critical-bleeding"]["trigger"]
    assert all(e["enabled"] for e in catalogue.values())
