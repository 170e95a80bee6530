"""The CDS services this product offers: one declaration each, and the one handler they share.

A declaration (id, hook, title, description, prefetch) is all discovery needs, and the plumbing
needs nothing else to call a service: adding a hook means adding a declaration here. Both services
judge the same orders with the same rules; they differ only in which draft orders they judge
(order-select: the `selections`; order-sign: every draft).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hooks import terminology as t
from hooks.facts import DataKind, Flag, PatientFacts, build_facts
from hooks.fhir_model import Resource
from hooks.findings import Finding
from hooks.orders import TARGET_KINDS, DraftOrder, OrderKind, classify_draft
from hooks.reconcile import reconcile
from hooks.rules import RuleContext, evaluate
from hooks.settings import RuleSettings


class UnknownSelectionError(ValueError):
    """An order-select `selections` entry names no resource in `draftOrders`."""


def _observation_query(codes: Sequence[str]) -> str:
    joined = ",".join(f"{t.LOINC}|{code}" for code in codes)
    return f"Observation?patient={{{{context.patientId}}}}&code={joined}&_sort=-date&_count=100"


# One prefetch key per kind of data, so a failure can be reported for exactly that data.
PREFETCH: dict[str, str] = {
    DataKind.PATIENT: "Patient/{{context.patientId}}",
    DataKind.PLATELETS: _observation_query(t.PLATELET_TEMPLATE_CODES),
    DataKind.LABS: _observation_query(t.LAB_TEMPLATE_CODES),
    DataKind.CONDITIONS: "Condition?patient={{context.patientId}}&_count=100",
    DataKind.MEDICATIONS: (
        "MedicationRequest?patient={{context.patientId}}&_include=MedicationRequest:medication&_count=100"
    ),
    DataKind.ADMINISTRATIONS: (
        "MedicationAdministration?patient={{context.patientId}}&_include=MedicationAdministration:medication&_count=100"
    ),
    DataKind.ALLERGIES: "AllergyIntolerance?patient={{context.patientId}}&_count=100",
}


@dataclass(frozen=True)
class HookCall:
    """Everything the knowledge needs from one CDS Hooks request, already parsed and fetched."""

    hook: str
    context: Mapping[str, Any]
    drafts: Sequence[tuple[Resource, Mapping[str, Any]]]  # parsed draft and its JSON
    resources: Sequence[Resource] = ()
    unavailable: frozenset[DataKind] = frozenset()
    left_out: frozenset[str] = frozenset()  # drafts not read (invalid, of a type no rule judges): may be selected


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str
    prefetch: Mapping[str, str] = field(default_factory=lambda: dict(PREFETCH))

    def discovery(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "prefetch": dict(self.prefetch),
        }


SERVICES: tuple[ServiceDefinition, ...] = (
    ServiceDefinition(
        id="ivig-platelets-order-select",
        hook="order-select",
        title="IVIG and platelet transfusion advisor (order selection)",
        description=(
            "When IVIG or a platelet transfusion is selected: indication and dose (1 g/kg when a rapid "
            "rise is needed), platelet transfusion and corticosteroids in life-threatening bleeding, "
            "IgA screening, renal and thrombosis safety."
        ),
    ),
    ServiceDefinition(
        id="ivig-platelets-order-sign",
        hook="order-sign",
        title="IVIG and platelet transfusion advisor (order signing)",
        description=(
            "Before IVIG, platelet transfusion or heparin orders are signed: the same checks on every "
            "draft order, including heparin in heparin-induced thrombocytopenia."
        ),
    ),
)


def classify_drafts(call: HookCall, settings: RuleSettings) -> tuple[DraftOrder, ...]:
    """The draft orders, classified; Medication resources in the drafts or the record resolve references."""
    meds = {
        f"Medication/{r.id}": r
        for r in [*(d for d, _ in call.drafts), *call.resources]
        if r.get_resource_type() == "Medication" and r.id
    }
    local = frozenset(tuple(code.rsplit("|", 1)) for code in settings.platelet_transfusion_codes)
    return tuple(
        classify_draft(resource, raw, meds, local)  # type: ignore[arg-type]
        for resource, raw in call.drafts
        if resource.get_resource_type() in ("MedicationRequest", "ServiceRequest")
    )


def targets_of(call: HookCall, drafts: Sequence[DraftOrder]) -> tuple[DraftOrder, ...]:
    """The orders to judge: order-select's selections, or every draft for order-sign."""
    if call.hook != "order-select":
        return tuple(drafts)
    selections = list(call.context.get("selections") or [])
    known = {d.reference for d in drafts} | {f"{r.get_resource_type()}/{r.id}" for r, _ in call.drafts if r.id}
    known |= call.left_out
    unknown = [s for s in selections if s not in known]
    if unknown:
        raise UnknownSelectionError(f"selections not found in draftOrders: {', '.join(unknown)}")
    return tuple(d for d in drafts if d.reference in selections)


def in_scope(targets: Sequence[DraftOrder]) -> bool:
    """Worth fetching data for: IVIG, subcutaneous Ig, platelet transfusion, or heparin (HIT check)."""
    return any(o.kind in TARGET_KINDS or o.kind is OrderKind.HEPARIN for o in targets)


def judge(call: HookCall, *, settings: RuleSettings, now: datetime) -> tuple[PatientFacts | None, list[Finding]]:
    """Facts in, findings out. Returns no findings when no draft order is this service's business."""
    drafts = classify_drafts(call, settings)
    targets = targets_of(call, drafts)
    if not in_scope(targets):
        return None, []
    facts = build_facts(
        call.resources,
        patient_id=str(call.context["patientId"]),
        encounter_id=call.context.get("encounterId"),
        now=now,
        settings=settings,
        unavailable=call.unavailable,
        draft_references=frozenset(d.reference for d in drafts),
    )
    heparin_only = not any(o.kind in TARGET_KINDS for o in targets)
    if heparin_only and Flag.HIT_HISTORY not in facts.flags and DataKind.CONDITIONS not in facts.unavailable:
        return facts, []  # heparin without HIT on record is not this service's business
    context = RuleContext(facts=facts, drafts=drafts, targets=targets, settings=settings, now=now)
    return facts, reconcile(evaluate(context), drafts)
