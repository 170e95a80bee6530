"""Platelet transfusion beside IVIG: together in critical bleeding, seldom alone in ITP."""

from __future__ import annotations

from collections.abc import Iterable

from hooks.citations import ICR19
from hooks.facts import Bleeding, Flag
from hooks.findings import Finding, Indicator
from hooks.orders import OrderKind
from hooks.rules.base import Rule, RuleContext, rule


@rule(
    "transfusion-with-ivig",
    title="Platelet transfusion with IVIG in critical bleeding",
    trigger="platelet transfusion ordered with IVIG in critical bleeding",
    indicator="info",
    advice="appropriate together; do not withhold the transfusion during the IVIG infusion",
    citations=(ICR19,),
)
def transfusion_with_ivig(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    if ctx.bleeding is not Bleeding.CRITICAL:
        return
    if not (ctx.targets_of(OrderKind.PLATELET_TRANSFUSION) or ctx.ivig_orders):
        return
    if not (ctx.drafted(OrderKind.PLATELET_TRANSFUSION) and ctx.ordered_or_active(OrderKind.IVIG)):
        return
    yield r.finding(
        Indicator.INFO,
        "Platelet transfusion with IVIG is appropriate in life-threatening bleeding: give both, do not wait.",
        [ctx.bleeding_line, ctx.platelet_line()],
        [
            "Platelets can be transfused during the IVIG infusion; IVIG helps the transfused platelets survive.",
            "Do not withhold the transfusion while IVIG runs.",
        ],
    )


@rule(
    "transfusion-without-bleeding",
    title="Platelet transfusion in ITP without bleeding or a procedure",
    trigger="platelet transfusion in ITP without bleeding or a procedure ordered",
    indicator="info",
    advice="the rise is short-lived in ITP; reserve transfusion for bleeding or procedures",
    citations=(ICR19,),
)
def transfusion_without_bleeding(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    if not ctx.targets_of(OrderKind.PLATELET_TRANSFUSION):
        return
    if not (ctx.facts.has(Flag.ITP) and not ctx.facts.has(Flag.HIT)):
        return
    if not ctx.no_bleeding or ctx.drafted(OrderKind.URGENT_SURGERY) or ctx.drafted(OrderKind.SURGERY):
        return  # RULES.md: "without bleeding or procedure"; platelets before surgery are not this card's business
    yield r.finding(
        Indicator.INFO,
        "ITP with minor bleeding only: transfused platelets are destroyed quickly. Reserve for serious bleeding."
        if ctx.facts.minor_bleeding
        else "ITP without bleeding: transfused platelets are destroyed quickly. Reserve for bleeding or procedures.",
        [ctx.platelet_line(), ctx.bleeding_line, "Procedure ordered: no"],
        [
            "In ITP the rise after a platelet transfusion is short-lived; it is not a treatment of the count.",
            "Reserve transfusion for bleeding or before a procedure; treat ITP itself (corticosteroids, IVIG).",
        ],
    )
