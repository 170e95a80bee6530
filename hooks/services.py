"""The CDS services this product offers: one declaration each, and the one handler they share.

A declaration (id, hook, title, description, prefetch) is all discovery needs, and the plumbing
needs nothing else to call a service: adding a hook means adding a declaration here. Both services
judge the same orders with the same rules; they differ only in which draft orders they judge
(order-select: the `selections`; order-sign: every draft).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from hooks.data_needs import prefetch_templates
from hooks.drafts import ORDER_TYPES, Draft, suggests_target
from hooks.facts import DataKind, Flag, Partial, PatientFacts, build_facts
from hooks.fhir_model import Resource
from hooks.findings import Finding
from hooks.orders import (
    TARGET_KINDS,
    DraftOrder,
    OrderKind,
    classify_draft,
    immune_globulin_without_route,
    medication_concept,
)
from hooks.reconcile import reconcile
from hooks.rules import RuleContext, evaluate
from hooks.rules.data import unread_order_findings
from hooks.settings import DEFAULT_SETTINGS, RuleSettings

#: The prefetch templates of the default settings, CDS Hooks 2.0 tokens only (`hooks/data_needs.py`
#: derives them; a deployment's own settings may change the windows, see `Pipeline`).
PREFETCH: dict[str, str] = prefetch_templates(DEFAULT_SETTINGS, date_tokens=False)


@dataclass(frozen=True)
class HookCall:
    """Everything the knowledge needs from one CDS Hooks request, already read and fetched."""

    hook: str
    context: Mapping[str, Any]
    drafts: Sequence[Draft]
    # Medications the draft orders refer to (from the bundle, the prefetch or the FHIR server), and
    # the raw JSON of referenced Medications that could not be read (only to say so on a card).
    medications: Mapping[str, Resource] = field(default_factory=dict)
    unread_medications: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    resources: Sequence[Resource] = ()
    unavailable: frozenset[DataKind] = frozenset()
    partial: tuple[Partial, ...] = ()
    unreadable: tuple[str, ...] = ()  # elements of the record a rule reads that could not be read

    @property
    def left_out(self) -> frozenset[str]:
        """Drafts not judged (invalid, or of a type no rule reads): they may still be selected."""
        return frozenset(d.reference for d in self.drafts if d.reference and d.reading.resource is None)


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str
    prefetch: Mapping[str, str] = field(default_factory=lambda: dict(PREFETCH))

    def discovery(self, prefetch: Mapping[str, str] | None = None) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "prefetch": dict(self.prefetch if prefetch is None else prefetch),
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
    """The order drafts, classified; an order that cannot be judged but may be one is kept, marked.

    Medications resolve references: those read from the drafts, the prefetch or the FHIR server
    (`call.medications`) and those of the patient's record.
    """
    medications = dict(call.medications)
    named = [
        d.reading.resource for d in call.drafts if not d.reading.unreadable
    ]  # a Medication without its code names nothing
    for resource in (*named, *call.resources):
        if resource is not None and resource.get_resource_type() == "Medication" and resource.id:
            medications.setdefault(f"Medication/{resource.id}", resource)
    local = settings.platelet_transfusion_codings
    orders = []
    for draft in call.drafts:
        if draft.resource_type not in ORDER_TYPES:
            continue
        resource = draft.reading.resource
        if resource is None:
            if suggests_target(draft.raw):
                orders.append(_unread(draft, f"the draft could not be read ({draft.reading.problem})"))
            continue
        order = classify_draft(resource, draft.reading.data, medications, local)  # type: ignore[arg-type]
        order = replace(order, unreadable=tuple(draft.reading.unreadable))
        missing = _unresolved_medication(draft, medications)
        if (
            missing is not None
            and order.kind is OrderKind.OTHER
            and suggests_target(draft.raw, call.unread_medications.get(missing))
        ):
            order = replace(order, unread=f"the medication it refers to ({missing}) could not be read")
        elif order.kind is OrderKind.OTHER and immune_globulin_without_route(
            medication_concept(resource, medications), resource
        ):
            order = replace(
                order,
                unread="it names immune globulin but no route: state intravenous (IVIG) or subcutaneous",
            )
        orders.append(order)
    return tuple(orders)


def _unread(draft: Draft, reason: str) -> DraftOrder:
    concept = draft.raw.get("medicationCodeableConcept") or draft.raw.get("code")
    label = concept.get("text") if isinstance(concept, Mapping) else None
    return DraftOrder(
        kind=OrderKind.OTHER,
        reference=draft.reference or str(draft.resource_type),
        label=label if isinstance(label, str) else "",
        dose=None,
        priority=None,
        iga_depleted=False,
        reason_codes=(),
        resource=draft.raw,
        unread=reason,
    )


def _unresolved_medication(draft: Draft, medications: Mapping[str, Resource]) -> str | None:
    reference = draft.reading.data.get("medicationReference")
    target = reference.get("reference") if isinstance(reference, Mapping) else None
    if not isinstance(target, str) or not target.startswith("Medication/") or target in medications:
        return None
    return target


def targets_of(call: HookCall, drafts: Sequence[DraftOrder]) -> tuple[DraftOrder, ...]:
    """The orders to judge: order-select's selections, or every draft for order-sign.

    That every selection names a draft is the protocol's check (`drafts.check_drafts`), made once.
    """
    if call.hook != "order-select":
        return tuple(drafts)
    selections = set(call.context.get("selections") or ())
    return tuple(d for d in drafts if d.reference in selections)


def judged(targets: Sequence[DraftOrder]) -> bool:
    """Worth reading the patient's data for: IVIG, subcutaneous Ig, platelet transfusion, or heparin (HIT)."""
    return any(o.kind in TARGET_KINDS or o.kind is OrderKind.HEPARIN for o in targets)


def in_scope(targets: Sequence[DraftOrder]) -> bool:
    """Worth an answer: an order judged, or one that may be and could not be read."""
    return judged(targets) or any(o.unread for o in targets)


def judge(
    call: HookCall, *, settings: RuleSettings, now: datetime, orders: Sequence[DraftOrder] | None = None
) -> tuple[PatientFacts | None, list[Finding]]:
    """Facts in, findings out. Returns no findings when no draft order is this service's business.

    `orders`: the drafts as `classify_drafts` classified them, when the caller already did.
    """
    now = now.astimezone(settings.display_zone)  # cards speak the deployment's local time
    drafts = tuple(orders) if orders is not None else classify_drafts(call, settings)
    targets = targets_of(call, drafts)
    if not in_scope(targets):
        return None, []
    if not judged(targets):
        return None, unread_order_findings(targets, settings)
    facts = build_facts(
        call.resources,
        patient_id=str(call.context["patientId"]),
        encounter_id=call.context.get("encounterId"),
        now=now,
        settings=settings,
        unavailable=call.unavailable,
        partial=call.partial,
        unreadable=call.unreadable,
        draft_references=frozenset(d.reference for d in drafts),
    )
    heparin_only = not any(o.kind in TARGET_KINDS for o in targets)
    hit_readable = not facts.unavailable & {DataKind.CONDITIONS, DataKind.ALLERGIES}  # HIT may be kept in either
    if heparin_only and Flag.HIT_HISTORY not in facts.flags and hit_readable:
        return facts, unread_order_findings(targets, settings)  # heparin without HIT: not our business
    context = RuleContext(facts=facts, drafts=drafts, targets=targets, settings=settings, now=now)
    return facts, reconcile(evaluate(context), drafts)
