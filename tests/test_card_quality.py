"""What a clinician sees on every card of every scenario: short, numeric, dated, cited, actionable."""

from __future__ import annotations

import re

import pytest

import fhir_fixtures
from hooks.fhir_model import parse_resource
from hooks.findings import Indicator
from hooks.rules import REGISTRY
from tests.conftest import SIGN

ORDER = {"critical": 3, "warning": 2, "info": 1}


@pytest.mark.parametrize("sid", fhir_fixtures.names())
def test_cards_are_short_cited_dated_and_ordered(sid, call):
    scenario = fhir_fixtures.load(sid)
    _, body = call(SIGN.id, scenario.prefetch_request(SIGN.prefetch))
    indicators = [ORDER[c["indicator"]] for c in body["cards"]]
    assert indicators == sorted(indicators, reverse=True), "most urgent first"
    for card in body["cards"]:
        rule = REGISTRY[card["source"]["topic"]["code"]]
        assert len(card["summary"]) <= 140
        assert card["summary"][0].isupper()
        cited = [c for c in rule.citations if c.label in card["detail"]]
        assert cited, "every card names a source its rule lists"
        assert "Seed " not in card["detail"] and "RULES.md" not in card["detail"], "primary sources only"
        assert card["source"]["label"].startswith("ivig-cds: ")
        links = [link["url"] for link in card.get("links", [])]
        assert len(links) == len(set(links)), "each source once per card"
        # a finding cites its rule's sources that bear on it, then any equation a value on it was computed by
        assert links[: len([c for c in cited if c.url])] == [c.url for c in cited if c.url]
        assert all(card["detail"].count(f"({url})") == 1 for url in links)
        primary = next((c for c in cited if c.url), cited[0])
        assert card["source"]["label"] == (f"ivig-cds: {primary.label}" if primary.clinical else "ivig-cds: data check")
        assert card["source"].get("url") == primary.url
        assert "**Values used**" in card["detail"] and "**Advice**" in card["detail"]
        if "Platelet count:" in card["detail"] and "none on record" not in card["detail"]:
            assert re.search(r"Platelet count: .*\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", card["detail"])
        for suggestion in card.get("suggestions", []):
            for action in suggestion["actions"]:
                if action["type"] == "delete":
                    assert re.fullmatch(r"[A-Za-z]+/[A-Za-z0-9\-.]+", action["resourceId"])
                    continue
                resource = action["resource"]
                parse_resource(resource)  # valid FHIR R4
                assert resource["subject"]["reference"] == f"Patient/{scenario.patient_id}"
                assert resource["encounter"]["reference"] == f"Encounter/enc-{sid.lower()}"


def test_summaries_carry_the_numbers(call):
    expectations = {
        "P02": ("bleeding-with-low-platelets", "24"),
        "P15": ("dose-check", "80 g"),  # 82.4 g rounded to 5 g above 50 g (RULES.md v2 "Dose arithmetic")
        "P23": ("rapid-regimen", "70 g"),
        "P24": ("pregnancy-response-predictors", "3 of 3"),
        "P25": ("pregnancy", "45"),
        "P12": ("data-quality", "20"),
    }
    for sid, (rule_id, number) in expectations.items():
        _, body = call(SIGN.id, fhir_fixtures.load(sid).prefetch_request(SIGN.prefetch))
        card = next(c for c in body["cards"] if c["source"]["topic"]["code"] == rule_id)
        assert number in card["summary"], (sid, card["summary"])


def test_critical_findings_are_never_below_the_floor():
    assert Indicator.CRITICAL > Indicator.WARNING > Indicator.INFO


def test_hit_heparin_suggests_deleting_the_heparin_order(call):
    scenario = fhir_fixtures.load("P26")
    _, body = call(SIGN.id, scenario.prefetch_request(SIGN.prefetch))
    action = body["cards"][0]["suggestions"][0]["actions"][0]
    assert action == {
        "type": "delete",
        "description": "Remove the heparin order",
        "resourceId": f"MedicationRequest/{scenario.draft_orders['entry'][0]['resource']['id']}",
    }


def test_platelet_transfusion_only_in_critical_bleeding_suggests_ivig_and_steroid(call):
    _, body = call(SIGN.id, fhir_fixtures.load("P32").prefetch_request(SIGN.prefetch))
    card = body["cards"][0]
    created = [a["resource"] for s in card["suggestions"] for a in s["actions"]]
    texts = [r["medicationCodeableConcept"].get("text", "") for r in created]
    assert any("Immune globulin intravenous" in t for t in texts) and any("prednisone" in t for t in texts)
    ivig = next(r for r in created if "Immune globulin" in r["medicationCodeableConcept"].get("text", ""))
    assert ivig["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 70  # 1 g/kg × 70 kg


def test_pregnancy_predictor_detail_shows_each_value(call):
    _, body = call(SIGN.id, fhir_fixtures.load("P24").prefetch_request(SIGN.prefetch))
    card = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "pregnancy-response-predictors")
    assert "Nadir 28" in card["detail"] and "IPF 12 %" in card["detail"] and "Pre-IVIG count 45" in card["detail"]
    assert "49.4 %" in card["detail"] and "79" in card["detail"] and "not a computed probability" in card["detail"]
