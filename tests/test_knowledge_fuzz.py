"""Whatever valid FHIR a chart holds, judging it never crashes and every card stays well-formed.

Property-based: hypothesis mutates a public scenario (platelet values, units and dates, weights,
dropped resources, dose quantities and schedules, bleeding codes, ages) and the knowledge must
answer with findings that render into schema-valid cards, never an exception.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fhir_fixtures
from cds_service.protocol import first_error
from hooks.cards import render
from hooks.drafts import read_drafts
from hooks.fhir_model import parse_resource
from hooks.services import HookCall, judge
from hooks.settings import DEFAULT_SETTINGS
from tests.conftest import SIGN, resources_of

AS_OF = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BASES = ["P01", "P04", "P13", "P19", "P23", "P24", "P26", "P30", "P31", "P33", "P36", "P38", "P46"]
UNITS = [None, "10*3/uL", "10*9/L", "/uL", "K/uL", "G/L", "mg/dL", "%", "{cells}/uL", "x"]
DOSE_UNITS = ["g/kg", "mg/kg", "g", "mg", "mL", "kg"]
CODES = [
    ("http://snomed.info/sct", "1386000"),
    ("http://snomed.info/sct", "74474003"),
    ("http://hl7.org/fhir/sid/icd-10-cm", "I61.9"),
    ("http://hl7.org/fhir/sid/icd-10-cm", "D75.822"),
    ("http://hl7.org/fhir/sid/icd-10-cm", "A41.9"),
    ("http://hl7.org/fhir/sid/icd-10-cm", "O90.89"),
    ("http://hl7.org/fhir/sid/icd-10-cm", "D80.2"),
    ("http://snomed.info/sct", "32273002"),
]


def stamp(hours_ago: float) -> str:
    return (AS_OF - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")


@st.composite
def charts(draw):
    scenario = fhir_fixtures.load(draw(st.sampled_from(BASES)))
    record = copy.deepcopy(scenario.resources())
    keep = [r for r in record if r["resourceType"] == "Patient" or draw(st.booleans()) or draw(st.booleans())]
    for resource in keep:
        quantity = resource.get("valueQuantity")
        if quantity is not None and draw(st.booleans()):
            quantity["value"] = draw(
                st.floats(min_value=0, max_value=300000, allow_nan=False).map(lambda v: round(v, 2))
            )
            unit = draw(st.sampled_from(UNITS))
            for key in ("unit", "code", "system"):
                quantity.pop(key, None)
            if unit is not None:
                quantity.update(unit=unit, code=unit, system="http://unitsofmeasure.org")
        if "effectiveDateTime" in resource and draw(st.booleans()):
            resource["effectiveDateTime"] = stamp(draw(st.floats(min_value=-48, max_value=24 * 400)))
        if resource["resourceType"] == "Patient" and draw(st.booleans()):
            resource["birthDate"] = (AS_OF - timedelta(days=draw(st.integers(0, 36500)))).date().isoformat()
    for system, code in draw(st.lists(st.sampled_from(CODES), max_size=3)):
        keep.append(
            {
                "resourceType": "Condition",
                "id": f"fuzz-{code}",
                "code": {"coding": [{"system": system, "code": code}]},
                "subject": {"reference": f"Patient/{scenario.patient_id}"},
            }
        )
    drafts = copy.deepcopy(scenario.draft_orders)
    for entry in drafts["entry"]:
        resource = entry["resource"]
        for dosage in resource.get("dosageInstruction", []):
            if draw(st.booleans()):
                dosage["doseAndRate"] = [
                    {
                        "doseQuantity": {
                            "value": draw(
                                st.floats(min_value=0, max_value=5000, allow_nan=False).map(lambda v: round(v, 3))
                            ),
                            "code": draw(st.sampled_from(DOSE_UNITS)),
                        }
                    }
                ]
                dosage["timing"] = {"repeat": {"count": draw(st.integers(1, 10))}}
        if draw(st.booleans()):
            resource["priority"] = draw(st.sampled_from(["routine", "urgent", "asap", "stat"]))
    return scenario, keep, drafts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(charts())
def test_any_chart_is_judged_without_error_into_valid_cards(chart):
    scenario, record, drafts = chart
    context = scenario.context()
    context["draftOrders"] = drafts
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in record]}
    resources = resources_of(bundle)
    call = HookCall(SIGN.hook, context, read_drafts(context).drafts, resources=resources)
    _, findings = judge(call, settings=DEFAULT_SETTINGS, now=AS_OF)
    counter = iter(range(10_000))
    cards = render(findings, lambda: f"00000000-0000-4000-8000-{next(counter):012d}")
    assert first_error("cds-response.json", {"cards": cards}) is None
    for card in cards:  # the strict writer: every suggested resource is valid FHIR R4
        for suggestion in card.get("suggestions", ()):
            for action in suggestion["actions"]:
                if "resource" in action:
                    parse_resource(action["resource"])
    rules = [f.rule for f in findings]
    assert not {"critical-bleeding", "treatment-threshold"} <= set(rules)
