"""Rules about the data itself: what could not be retrieved, what is missing, stale or unreadable.

Why first: every threshold rule is only as good as the count it reads. A stale or unit-less count
must never silently drive advice, so these rules say so and the threshold rules stand down.
"""

from __future__ import annotations

from collections.abc import Iterable

from hooks import suggestions as suggest
from hooks import terminology as t
from hooks.citations import RULE_BOOK, S001, S004
from hooks.facts import DataKind
from hooks.findings import Finding, Indicator
from hooks.rules.base import Rule, RuleContext, rule

_DATA_LABELS = {
    DataKind.PATIENT: "demographics",
    DataKind.PLATELETS: "platelet counts and IPF",
    DataKind.LABS: "weight, renal function, IgA and pregnancy observations",
    DataKind.CONDITIONS: "problem list (conditions)",
    DataKind.MEDICATIONS: "medication orders",
    DataKind.ADMINISTRATIONS: "medication administrations",
    DataKind.ALLERGIES: "allergies",
}


@rule(
    "data-unavailable",
    title="Patient data could not be retrieved or read",
    trigger=(
        "a prefetch key was neither supplied nor retrievable from the FHIR server, or a result newer than the "
        "one used has a unit or value that cannot be read"
    ),
    indicator="warning",
    advice="say which data is missing or unreadable; rules that depend on missing data do not fire",
    citations=(RULE_BOOK,),
)
def data_unavailable(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    missing = sorted(ctx.facts.unavailable - {DataKind.PATIENT})
    unreadable = ctx.facts.unreadable
    if not missing and not unreadable:
        return
    labels = [_DATA_LABELS[kind] for kind in missing]
    advice = []
    if missing:
        summary = f"Could not retrieve: {', '.join(labels)}. Advice that needs it is not shown."
        advice += [
            "The EHR did not send this data and it could not be read from the FHIR server in time.",
            "Review it in the chart before ordering; this service does not guess missing data.",
        ]
    else:
        names = dict.fromkeys(u.split(" of ")[0] for u in unreadable)  # in order, each once
        summary = f"Could not read: {', '.join(names)}. Check the newest result."
    if unreadable:
        advice.append(
            "A newer result with a unit or value this service cannot read was not used; where an older result "
            "exists the cards used it. Check the newest result in the chart."
        )
    yield r.finding(
        Indicator.WARNING,
        summary[:140],
        [f"Not retrieved: {label}" for label in labels] + [f"Not readable: {u}" for u in unreadable],
        advice,
    )


@rule(
    "no-platelet-count",
    title="No platelet count on record",
    trigger="IVIG order and no platelet count on record",
    indicator="warning",
    advice="obtain a CBC before treating; suggest ServiceRequest CBC (LOINC 58410-2)",
    citations=(S001, S004),
)
def no_platelet_count(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    if not ctx.ivig_orders or ctx.lacks(DataKind.PLATELETS) or ctx.facts.platelets:
        return
    yield r.finding(
        Indicator.WARNING,
        "No platelet count on record: obtain a CBC before IVIG.",
        ["Platelet count: none on record"],
        [
            "IVIG dosing and urgency in thrombocytopenia depend on the platelet count and bleeding.",
            "Order a CBC now; do not delay IVIG for life-threatening bleeding.",
        ],
        [suggest.order_service(ctx.facts, t.CBC_PANEL, "Order CBC (STAT)", priority="stat")],
    )


@rule(
    "data-quality",
    title="Latest platelet count is stale or unreadable",
    trigger="latest platelet count older than the freshness window, without a known unit, or implausible",
    indicator="warning",
    advice="show value and date; suggest STAT CBC; threshold rules other than critical-bleeding stand down",
    citations=(RULE_BOOK,),
)
def data_quality(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    problem = ctx.platelet_problem
    if problem is None or not (ctx.ivig_orders or ctx.targets) or not ctx.thrombocytopenia_context:
        return
    latest = ctx.latest_platelets
    if latest is None:
        return
    if ctx.platelet_stale and latest.problem is None:
        summary = f"Latest platelet count ({latest.value:g} ×10⁹/L) is {_age(ctx)} old: repeat a CBC before deciding."
    else:
        summary = f"Latest platelet count cannot be used: {problem}. Repeat a CBC."
    yield r.finding(
        Indicator.WARNING,
        summary[:140],
        [ctx.platelet_line(latest), f"Problem: {problem}"],
        [
            "Advice that depends on the platelet count is not given from this result.",
            "Order a CBC now; critical-bleeding advice still applies.",
        ],
        [suggest.order_service(ctx.facts, t.CBC_PANEL, "Order CBC (STAT)", priority="stat")],
    )


def _age(ctx: RuleContext) -> str:
    latest = ctx.latest_platelets
    if latest is None or latest.at is None:
        return "of unknown age"
    hours = (ctx.now - latest.at).total_seconds() / 3600
    return f"{hours / 24:.0f} days" if hours >= 48 else f"{hours:.0f} h"
