"""The public scenarios of SCENARIOS.md, each a fixture bundle, judged through the HTTP endpoint.

Each scenario's `expected` lists the exact cards (rule id and indicator) the rule book gives, and
the comparison is exact: a missing card or an extra one fails.
"""

from __future__ import annotations

import pytest

import fhir_fixtures
from hooks.rules import REGISTRY
from tests.conftest import SELECT, SIGN, rule_set

SCENARIOS = fhir_fixtures.names()


def expected(scenario: fhir_fixtures.Scenario) -> set[tuple[str, str]]:
    return {(e.rule, e.indicator) for e in scenario.expected}


@pytest.mark.parametrize("service", [SIGN, SELECT], ids=lambda s: s.hook)
@pytest.mark.parametrize("sid", SCENARIOS)
def test_scenario_through_http_from_prefetch(sid, service, call):
    """order-sign judges every draft; order-select the selections (here: every draft)."""
    scenario = fhir_fixtures.load(sid)
    status, body = call(service.id, scenario.prefetch_request(service.prefetch, hook=service.hook))
    assert status == 200
    assert rule_set(body) == expected(scenario)


def test_critical_card_of_p01_suggests_the_missing_treatments(call):
    scenario = fhir_fixtures.load("P01")
    _, body = call(SIGN.id, scenario.prefetch_request(SIGN.prefetch))
    card = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "critical-bleeding")
    assert body["cards"][0] is card, "critical cards come first"
    created = [a["resource"] for s in card["suggestions"] for a in s["actions"]]
    kinds = {
        (r["resourceType"], (r.get("code") or r.get("medicationCodeableConcept"))["coding"][0]["code"]) for r in created
    }
    assert kinds == {("ServiceRequest", "180208003"), ("MedicationRequest", "8640")}
    prednisone = next(r for r in created if r["resourceType"] == "MedicationRequest")
    assert prednisone["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 70  # 1 mg/kg × 70 kg
    assert all(r["subject"]["reference"] == f"Patient/{scenario.patient_id}" for r in created)
    assert "10 ×10⁹/L" in card["detail"] and "2026-06-01 06:00 UTC" in card["detail"]
    assert card["summary"].startswith("Life-threatening bleeding, platelets 10")


def test_order_select_judges_only_the_selected_orders(call):
    scenario = fhir_fixtures.load("P01")
    request = scenario.prefetch_request(SELECT.prefetch, hook="order-select")
    request["context"]["draftOrders"]["entry"].append(
        {
            "resource": {
                "resourceType": "MedicationRequest",
                "id": "other-draft",
                "status": "draft",
                "intent": "order",
                "medicationCodeableConcept": {"text": "Amoxicillin 500 mg"},
                "subject": {"reference": f"Patient/{scenario.patient_id}"},
            }
        }
    )
    request["context"]["selections"] = ["MedicationRequest/other-draft"]
    status, body = call(SELECT.id, request)
    assert status == 200
    assert body["cards"] == []


def test_every_expected_rule_exists():
    """Guards the filter above: every rule a scenario expects is implemented, so nothing is filtered out."""
    named = {e.rule for s in fhir_fixtures.all_scenarios() for e in s.expected}
    assert named <= set(REGISTRY), sorted(named - set(REGISTRY))
