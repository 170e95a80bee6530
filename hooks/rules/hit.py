"""Heparin-induced thrombocytopenia: no heparin, no prophylactic platelets, IVIG only as an adjunct."""

from __future__ import annotations

from collections.abc import Iterable

from hooks import suggestions as suggest
from hooks.citations import ASH18, PADMANABHAN17
from hooks.facts import Flag
from hooks.findings import Finding, Indicator
from hooks.orders import OrderKind
from hooks.rules.base import Rule, RuleContext, rule
from hooks.wording import with_free_text


def _hit_line(ctx: RuleContext) -> str:
    evidence = ctx.facts.evidence_for(Flag.HIT) or ctx.facts.evidence_for(Flag.HIT_HISTORY)
    if evidence is None:
        return "HIT on record"
    return f"HIT on record: {evidence.text}" + (f" (since {evidence.since.isoformat()})" if evidence.since else "")


@rule(
    "hit-heparin",
    title="Heparin ordered in heparin-induced thrombocytopenia",
    trigger=(
        "HIT on record (SNOMED 73397007, ICD-10-CM D75.82: D75.821/822/828/829, and D75.82 itself as coded "
        "before FY2023) and any heparin or LMWH order"
    ),
    indicator="critical",
    advice="stop all heparin, including flushes; use a non-heparin anticoagulant; the suggestion deletes the order",
    citations=(ASH18,),
)
def hit_heparin(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    if not ctx.facts.has(Flag.HIT_HISTORY):  # resolved HIT too: heparin must not be given again
        return
    for order in ctx.targets_of(OrderKind.HEPARIN):
        yield r.finding(
            Indicator.CRITICAL,
            with_free_text("HIT on record: do not give heparin (", order.label or "heparin order", ")."),
            [_hit_line(ctx), f"Order: {order.label or order.reference}"],
            [
                "Stop all heparin, including flushes and heparin-coated lines; LMWH is also contraindicated.",
                "Anticoagulate with a non-heparin agent (argatroban, bivalirudin, fondaparinux or a DOAC).",
            ],
            [suggest.delete_order(order.reference, label="Remove the heparin order")],
            order=order.reference,
        )


@rule(
    "hit-ivig",
    title="IVIG in heparin-induced thrombocytopenia",
    trigger="IVIG ordered in a patient with HIT",
    indicator="warning",
    advice=(
        "IVIG helped refractory HIT in a case series of 3 patients; it does not replace anticoagulation and adds "
        "thrombosis risk"
    ),
    citations=(PADMANABHAN17, ASH18),
)
def hit_ivig(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    if not ctx.facts.has(Flag.HIT) or not ctx.ivig_orders:
        return
    yield r.finding(
        Indicator.WARNING,
        "HIT: IVIG is an adjunct for refractory cases only; continue non-heparin anticoagulation.",
        [_hit_line(ctx), ctx.platelet_line()],
        [
            "Evidence is a case series of 3 patients with refractory HIT who improved after IVIG.",
            "IVIG does not replace non-heparin anticoagulation and adds to the thrombosis risk.",
        ],
    )


@rule(
    "hit-platelet-transfusion",
    title="Prophylactic platelet transfusion in heparin-induced thrombocytopenia",
    trigger="platelet transfusion ordered in HIT without bleeding",
    indicator="warning",
    advice="the guideline suggests against prophylactic platelet transfusion in HIT",
    citations=(ASH18,),
)
def hit_platelet_transfusion(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    if not ctx.facts.has(Flag.HIT) or not ctx.no_bleeding:
        return
    for order in ctx.targets_of(OrderKind.PLATELET_TRANSFUSION):
        yield r.finding(
            Indicator.WARNING,
            f"HIT without {'significant ' if ctx.facts.minor_bleeding else ''}bleeding: prophylactic platelet "
            "transfusion is advised against.",
            [_hit_line(ctx), ctx.platelet_line(), ctx.bleeding_line],
            [
                "ASH 2018 suggests against prophylactic platelet transfusion in HIT at average bleeding risk.",
                "Reserve platelets for active bleeding or a high-bleeding-risk procedure.",
            ],
            [suggest.delete_order(order.reference, label="Cancel the platelet transfusion order")],
            order=order.reference,
        )
