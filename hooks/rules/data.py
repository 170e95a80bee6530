"""Rules about the data itself: what could not be retrieved, what is missing, stale or unreadable.

Why first: every threshold rule is only as good as the count it reads. A stale or unit-less count
must never silently drive advice, so these rules say so and the threshold rules stand down.
"""

from __future__ import annotations

from collections.abc import Iterable

from hooks import suggestions as suggest
from hooks import terminology as t
from hooks.citations import DATA_CHECK, ICR19
from hooks.facts import DataKind, Partial
from hooks.findings import Finding, Indicator
from hooks.orders import DraftOrder
from hooks.rules.base import REGISTRY, Rule, RuleContext, rule
from hooks.settings import RuleSettings
from hooks.timeutil import describe_instant
from hooks.wording import first_fitting

_DATA_LABELS = {
    DataKind.PATIENT: "demographics",
    DataKind.PLATELETS: "platelet counts and IPF",
    DataKind.WEIGHT: "weight",
    DataKind.HEIGHT: "height",
    DataKind.RENAL: "renal function (creatinine, eGFR)",
    DataKind.IGA: "serum IgA",
    DataKind.PREGNANCY: "pregnancy status and expected delivery",
    DataKind.CONDITIONS: "problem list (conditions)",
    DataKind.MEDICATIONS: "medication orders",
    DataKind.ACTIVE_MEDICATIONS: "active medication orders",
    DataKind.ADMINISTRATIONS: "medication administrations",
    DataKind.ALLERGIES: "allergies",
}


def fitting_summary(prefix: str, names: list[str], suffix: str, limit: int = 140) -> str:
    """`prefix` + the names + `suffix` within `limit` characters: as many names as fit, then "and N
    more", never a list cut mid-word (the card's detail lists them all)."""
    for shown in range(len(names), 0, -1):
        rest = len(names) - shown
        listed = ", ".join(names[:shown]) + (f" and {rest} more" if rest else "")
        text = f"{prefix}{listed}{suffix}"
        if len(text) <= limit:
            return text
    return f"{prefix}{len(names)} kinds of data{suffix}"[:limit]


def _partial_line(partial: Partial) -> str:
    label = _DATA_LABELS[partial.kind]
    if partial.since is None:
        return f"Read in part: {label}: {partial.reason}; which results are missing is not known"
    return f"Read in part: {label} back to {partial.since.date().isoformat()} only: {partial.reason}"


@rule(
    "data-unavailable",
    title="Patient data could not be retrieved or read",
    trigger=(
        "data a rule reads was neither supplied nor retrievable from the FHIR server, was read only in part, "
        "or could not be read (an element that is not valid FHIR, a result newer than the one used whose unit "
        "or value cannot be read)"
    ),
    indicator="warning",
    advice="say which data is missing, partial or unreadable; rules that depend on missing data do not fire",
    citations=(DATA_CHECK,),
)
def data_unavailable(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    missing = sorted(ctx.facts.unavailable - {DataKind.PATIENT})
    unreadable = ctx.facts.unreadable
    partial = ctx.facts.partial
    if not missing and not unreadable and not partial:
        return
    labels = [_DATA_LABELS[kind] for kind in missing]
    advice = []
    if missing:
        summary = fitting_summary("Could not retrieve: ", labels, ". Advice that needs it is not shown.")
        advice += [
            "The EHR did not send this data and it could not be read from the FHIR server in time.",
            "Review it in the chart before ordering; this service does not guess missing data.",
        ]
    elif partial:
        names = [_DATA_LABELS[p.kind] for p in partial]
        summary = fitting_summary("Read only in part: ", names, ". Review older results in the chart.")
    else:
        names = list(dict.fromkeys(u.split(" of ")[0].split(":")[0] for u in unreadable))  # in order, each once
        summary = fitting_summary("Could not read: ", names, ". Check the record.")
    if partial:
        advice.append(
            "The FHIR server returned more results than this service reads within the time allowed; the cards "
            "use what was read, which is said above."
        )
    if unreadable:
        advice.append(
            "What could not be read was not used; where an older result exists the cards used it. Check it in "
            "the chart, and ask the EHR vendor to correct the record (the service's log names the element)."
        )
    yield r.finding(
        Indicator.WARNING,
        summary,
        [f"Not retrieved: {label}" for label in labels]
        + [_partial_line(p) for p in partial]
        + [f"Not readable: {u}" for u in unreadable],
        advice,
    )


@rule(
    "order-unreadable",
    title="An order that may be IVIG, platelets or heparin could not be read",
    trigger=(
        "a draft order could not be read (not valid FHIR even after repair), or the Medication it refers to "
        "could not be read, and its own text or codes suggest immune globulin, platelets or heparin"
    ),
    indicator="warning",
    advice="say which order and why; no other advice is given for it",
    citations=(DATA_CHECK,),
)
def order_unreadable(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    yield from _unread(ctx.targets, r)


def _unread(targets: Iterable[DraftOrder], r: Rule) -> Iterable[Finding]:
    for order in targets:
        if not order.unread:
            continue
        name = order.label or order.reference
        yield r.finding(
            Indicator.WARNING,
            fitting_summary("Could not read the order ", [name], ": IVIG, platelet and heparin checks were not done."),
            [f"Order: {name} ({order.reference})", f"Why: {order.unread}"],
            [
                "This order may be one this service checks, but it could not be read, so no advice is given for it.",
                "Check the order by hand; the service's log names the element that could not be read.",
            ],
            order=order.reference,
        )


def unread_order_findings(targets: Iterable[DraftOrder], settings: RuleSettings) -> list[Finding]:
    """The `order-unreadable` findings alone, for a call with nothing else to judge."""
    rule_ = REGISTRY["order-unreadable"]
    if rule_.id in settings.disabled_rules:
        return []
    floor = Indicator.from_label(settings.minimum_indicator)
    return [f for f in _unread(targets, rule_) if f.indicator >= floor]


@rule(
    "no-platelet-count",
    title="No platelet count on record",
    trigger=(
        "IVIG order and no platelet count on record, where thrombocytopenia rules apply: ITP, thrombocytopenia "
        "or HIT on record, a platelet transfusion ordered, bleeding, or ITP/thrombocytopenia as the order's "
        "reason (not an IVIG order for CIDP or immunodeficiency)"
    ),
    indicator="warning",
    advice="obtain a CBC before treating; suggest ServiceRequest CBC (LOINC 58410-2)",
    citations=(ICR19,),
)
def no_platelet_count(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    if not ctx.ivig_orders or ctx.lacks(DataKind.PLATELETS) or ctx.facts.platelets:
        return
    if not ctx.platelet_count_needed:  # RULES.md v2: a CIDP order is not asked for a count
        return
    yield r.finding(
        Indicator.WARNING,
        "No platelet count on record: obtain a CBC before IVIG.",
        [ctx.platelet_line()],
        [
            "IVIG dosing and urgency in thrombocytopenia depend on the platelet count and bleeding.",
            "Order a CBC now; do not delay IVIG for life-threatening bleeding.",
        ],
        [suggest.order_service(ctx.facts, t.CBC_PANEL, "Order CBC (STAT)", priority="stat")],
    )


@rule(
    "data-quality",
    title="Latest platelet count or weight cannot be used",
    trigger=(
        "latest platelet count older than {platelet_fresh_hours:g} hours, without a known unit, or outside "
        "{platelet_min_plausible:g}–{platelet_max_plausible:g} ×10⁹/L; or, for an IVIG order, the latest weight "
        "implausible for the age (not used for dosing)"
    ),
    indicator="warning",
    advice=(
        "show value and date; suggest STAT CBC (threshold rules other than critical-bleeding stand down), or "
        "re-weigh (the dose is computed only from a plausible weight)"
    ),
    citations=(DATA_CHECK,),
)
def data_quality(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    yield from _platelet_quality(ctx, r)
    yield from _weight_quality(ctx, r)


def _weight_quality(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    """RULES.md v2 "Weight plausibility": a weight outside the range for the age is not used for dosing."""
    weight = ctx.implausible_weight
    if weight is None or not ctx.ivig_orders:
        return
    used = ctx.dosing_weight
    evidence = [ctx.implausible_weight_line(weight)]
    if used is not None and ctx.facts.weight is not None:
        evidence.append(
            f"Weight used instead: {ctx.facts.weight.as_recorded} ({describe_instant(ctx.facts.weight.at, ctx.now)})"
        )
    else:
        evidence.append(f"No plausible weight in the last {ctx.settings.weight_max_age_days} days: no dose computed")
    yield r.finding(
        Indicator.WARNING,
        fitting_summary(
            "Implausible weight ",
            [weight.as_recorded],
            " for the age: not used for dosing. Re-weigh and correct the record.",
        ),
        evidence,
        [
            "A weight far outside the range for the age is usually a unit slip (grams as kilograms) or a typo.",
            "Weigh the patient and correct the record before the dose is computed from it.",
        ],
    )


def _platelet_quality(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
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
        first_fitting(summary, "Latest platelet count cannot be used. Repeat a CBC."),
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
