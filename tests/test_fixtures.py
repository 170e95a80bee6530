"""The committed scenario files are exactly what the definitions produce, and helpers behave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import fhir_fixtures
from fhir_fixtures import build
from hooks.fhir_model import parse_resource
from tests.conftest import SIGN


def test_committed_scenarios_match_their_definitions():
    rendered = build.render_all()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in fhir_fixtures.SCENARIO_DIR.glob("*.json")}
    assert set(on_disk) == set(rendered), "run: python -m fhir_fixtures.build"
    stale = [name for name in rendered if rendered[name] != on_disk[name]]
    assert not stale, f"regenerate with python -m fhir_fixtures.build: {stale}"


def test_every_fixture_resource_is_valid_fhir_r4():
    for scenario in fhir_fixtures.all_scenarios():
        for resource in scenario.resources():
            parse_resource(resource)
        for entry in scenario.draft_orders["entry"]:
            parse_resource(entry["resource"])


def test_rebase_moves_every_date_by_the_same_amount():
    scenario = fhir_fixtures.load("P12")
    later = scenario.as_of + timedelta(days=100, hours=5)
    moved = scenario.rebased(later)
    plt_before = next(r for r in scenario.resources() if r["id"].endswith("-plt"))
    plt_after = next(r for r in moved.resources() if r["id"].endswith("-plt"))
    before = datetime.fromisoformat(plt_before["effectiveDateTime"].replace("Z", "+00:00"))
    after = datetime.fromisoformat(plt_after["effectiveDateTime"].replace("Z", "+00:00"))
    assert after - before == timedelta(days=100, hours=5)
    assert moved.as_of == later and later.tzinfo is UTC


def test_transaction_puts_every_record_resource():
    scenario = fhir_fixtures.load("P01")
    transaction = scenario.transaction()
    assert transaction["type"] == "transaction"
    assert len(transaction["entry"]) == len(scenario.resources())
    assert all(e["request"]["method"] == "PUT" for e in transaction["entry"])


def test_prefetch_evaluator_selects_by_patient_and_code():
    scenario = fhir_fixtures.load("P24")
    request = scenario.prefetch_request(SIGN.prefetch)
    platelets = request["prefetch"]["platelets"]["entry"]
    codes = {e["resource"]["code"]["coding"][0]["code"] for e in platelets}
    assert codes == {"777-3", "71693-6"}
    assert request["prefetch"]["patient"]["resourceType"] == "Patient"
