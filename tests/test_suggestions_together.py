"""Suggestions an EHR may accept together, through the HTTP endpoint.

A CDS Hooks `update` carries the whole revised resource and the EHR applies accepted suggestions one
after another, so two cards revising the same draft must not undo each other; and an `update` or
`delete` needs the id the EHR knows the draft by.
"""

from __future__ import annotations

from tests.conftest import SIGN
from tests.variants import variant


def cards(call, scenario) -> dict[str, dict]:
    status, body = call(SIGN.id, scenario.prefetch_request(SIGN.prefetch))  # `call` checks the response schema
    assert status == 200
    return {c["source"]["topic"]["code"]: c for c in body["cards"]}


def updates(card: dict) -> list[dict]:
    return [a for s in card.get("suggestions", []) for a in s["actions"] if a["type"] == "update"]


def test_two_revisions_of_one_draft_do_not_undo_each_other(call):
    """P23 (0.4 g/kg × 5 in a bleed at 15) with IgA 5 mg/dL: a new product and a new dose, both kept."""
    found = cards(call, variant("P23", iga=5))
    rapid, iga = updates(found["rapid-regimen"]), updates(found["iga-deficiency"])
    assert len(rapid) == len(iga) == 1
    assert rapid[0]["resource"] == iga[0]["resource"], "accepting both, in any order, gives one result"
    revised = rapid[0]["resource"]
    assert "IgA-depleted" in revised["medicationCodeableConcept"]["text"]
    (dosage,) = revised["dosageInstruction"]
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 70  # 1 g/kg × 70 kg, once
    assert revised["id"] == found["rapid-regimen"]["suggestions"][0]["actions"][0]["resource"]["id"]
    for rule in ("rapid-regimen", "iga-deficiency"):
        (suggestion,) = [s for s in found[rule]["suggestions"] if s["actions"][0]["type"] == "update"]
        assert "; also: " in suggestion["label"], "the label says the other card's change is included"


def test_a_single_revision_is_left_as_the_rule_wrote_it(call):
    found = cards(call, variant("P23"))
    (update,) = updates(found["rapid-regimen"])
    assert "IgA-depleted" not in update["resource"]["medicationCodeableConcept"].get("text", "")
    assert "also:" not in found["rapid-regimen"]["suggestions"][0]["label"]


def test_a_draft_without_an_id_gets_its_card_but_no_unusable_delete(call):
    scenario = variant("P27")
    for entry in scenario.draft_orders["entry"]:
        entry["resource"].pop("id", None)
    card = cards(call, scenario)["hit-platelet-transfusion"]
    assert card["indicator"] == "warning"
    assert not [a for s in card.get("suggestions", []) for a in s["actions"] if a["type"] == "delete"]


def test_an_ivig_draft_without_an_id_gets_no_unusable_update(call):
    scenario = variant("P23")
    for entry in scenario.draft_orders["entry"]:
        entry["resource"].pop("id", None)
    card = cards(call, scenario)["rapid-regimen"]
    assert card["indicator"] == "warning" and updates(card) == []
