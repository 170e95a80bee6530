"""The IVIG boxed warning (thrombosis, renal dysfunction), renal baseline, and duplicate courses."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta

from hooks import suggestions as suggest
from hooks import terminology as t
from hooks.citations import INKER21, LABEL, SCHWARTZ09, Citation
from hooks.facts import DataKind, Flag
from hooks.findings import Finding, Indicator
from hooks.orders import OrderKind
from hooks.rules.base import Rule, RuleContext, rule
from hooks.timeutil import describe_instant

_FLAG_FACTORS = (
    (Flag.CKD, "chronic kidney disease"),
    (Flag.DIABETES, "diabetes"),
    (Flag.SEPSIS, "sepsis"),
    (Flag.VOLUME_DEPLETION, "volume depletion"),
    (Flag.THROMBOSIS_HISTORY, "prior thrombosis"),
    (Flag.HIT, "heparin-induced thrombocytopenia"),
    (Flag.PREGNANCY, "pregnancy"),
    (Flag.POSTPARTUM, "postpartum"),
)


def risk_factors(ctx: RuleContext) -> list[str]:
    """Boxed-warning risk factors present, each with the value or record that shows it."""
    s = ctx.settings
    factors = []
    egfr = ctx.renal_egfr  # the lab's, or computed from a creatinine sent without one (RULES.md v2 "eGFR")
    if egfr is not None and egfr[0] < s.egfr_risk_threshold:
        factors.append(f"eGFR {egfr[0]:g} mL/min/1.73 m² ({egfr[1]})")
    age = ctx.facts.age_years
    if age is not None and age > s.elderly_age_years:
        factors.append(f"age {age} (over {s.elderly_age_years})")
    for flag, label in _FLAG_FACTORS:
        evidence = ctx.facts.evidence_for(flag)
        if not ctx.facts.has(flag):
            continue
        if evidence is not None:
            since = f", since {evidence.since.isoformat()}" if evidence.since else ""
            factors.append(f"{label} ({evidence.text}{since})")
        elif flag is Flag.PREGNANCY and ctx.facts.expected_delivery is not None:
            factors.append(f"{label} (pregnancy status observation; expected delivery {ctx.delivery_date_text})")
        else:
            factors.append(label)
    if OrderKind.ESTROGEN in ctx.facts.active_medications or ctx.drafted(OrderKind.ESTROGEN):
        factors.append("estrogen therapy")
    return factors


@rule(
    "ivig-safety",
    title="IVIG boxed-warning risk factors (thrombosis, renal dysfunction)",
    trigger=(
        "any IVIG order with eGFR <{egfr_risk_threshold:g} (the lab's, or computed from a creatinine sent without "
        "one: CKD-EPI 2021 for adults, bedside Schwartz for children), CKD, diabetes, age >{elderly_age_years}, "
        "sepsis, volume depletion, prior thrombosis, HIT, pregnancy/postpartum or estrogens"
    ),
    indicator="warning",
    advice=(
        "list the factors; minimum practicable infusion rate, hydrate, monitor renal function; prefer sucrose-free "
        "products; without creatinine in {renal_lab_max_age_days} days suggest a creatinine ServiceRequest"
    ),
    citations=(LABEL,),
)
def ivig_safety(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    if not ctx.ivig_orders:
        return
    factors = risk_factors(ctx)
    if not factors:
        return
    suggestions = []
    if not ctx.recent_renal_lab and not ctx.lacks(DataKind.RENAL):
        suggestions.append(
            suggest.order_service(ctx.facts, t.CREATININE_TEST, "Order serum creatinine before the infusion")
        )
    summary = (
        f"IVIG thrombosis/renal risk: {', '.join(f.split(' (')[0] for f in factors)}. Infuse slowly, hydrate, monitor."
    )
    if len(summary) > 140:
        summary = (
            f"IVIG thrombosis/renal risk: {len(factors)} risk factors. Infuse slowly, hydrate, monitor renal function."
        )
    finding = r.finding(
        Indicator.WARNING,
        summary,
        [f"Risk factor: {factor}" for factor in factors],
        [
            "Use the minimum practicable infusion rate and ensure adequate hydration before infusion.",
            "Monitor renal function (creatinine, urine output) during and after the course.",
            "Prefer a sucrose-free product; watch for signs of thrombosis.",
        ],
        suggestions,
    )
    yield replace(finding, citations=finding.citations + _equation_cited(ctx, factors))


def _equation_cited(ctx: RuleContext, factors: list[str]) -> tuple[Citation, ...]:
    """The eGFR equation's source, on the card whose eGFR factor was computed with it."""
    computed = ctx.facts.computed_egfr
    if computed is None or not any("computed by" in factor for factor in factors):
        return ()
    return (INKER21,) if computed.equation == "CKD-EPI 2021" else (SCHWARTZ09,)


@rule(
    "renal-baseline",
    title="Baseline renal function before IVIG",
    trigger="any IVIG order without risk factors and no creatinine/eGFR in {renal_lab_max_age_days} days",
    indicator="info",
    advice="obtain baseline renal function; suggest creatinine",
    citations=(LABEL,),
)
def renal_baseline(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    if not ctx.ivig_orders or ctx.recent_renal_lab or ctx.lacks(DataKind.RENAL) or risk_factors(ctx):
        return
    latest = [m for m in (ctx.facts.creatinine, ctx.facts.egfr) if m is not None]
    evidence = [f"Latest renal result: {m.as_recorded} ({describe_instant(m.at, ctx.now)})" for m in latest] or [
        f"Creatinine/eGFR: none on record in the last {ctx.settings.renal_lab_max_age_days} days"
    ]
    yield r.finding(
        Indicator.INFO,
        f"No creatinine or eGFR in {ctx.settings.renal_lab_max_age_days} days: "
        "obtain baseline renal function before IVIG.",
        evidence,
        ["Do not give IVIG without monitoring renal function; draw a baseline creatinine."],
        [suggest.order_service(ctx.facts, t.CREATININE_TEST, "Order serum creatinine")],
    )


@rule(
    "duplicate-ivig",
    title="Possible duplicate IVIG",
    trigger=(
        "an active IVIG order, IVIG ordered or given within {duplicate_ivig_hours:g} hours, or two or more IVIG "
        "drafts in one signing"
    ),
    indicator="warning",
    advice="possible duplicate; check the post-dose platelet count",
    citations=(LABEL,),
)
def duplicate_ivig(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    if not ctx.ivig_orders:
        return
    window = timedelta(hours=ctx.settings.duplicate_ivig_hours)
    recent = [
        e
        for e in ctx.facts.ivig_events
        if e.may_have_been_given and (e.active or (e.at is not None and timedelta(0) <= ctx.now - e.at <= window))
    ]
    # RULES.md v2: several IVIG drafts of one signing add up and are a possible duplicate (one card).
    drafted = [o for o in ctx.drafts if o.kind is OrderKind.IVIG]
    if not recent and len(drafted) < 2:
        return
    evidence = [f"IVIG {e.kind}{' (active)' if e.active else ''}: {describe_instant(e.at, ctx.now)}" for e in recent]
    if len(drafted) >= 2:
        evidence += [f"IVIG draft of this signing: {o.label or o.reference}, {o.dose_text}" for o in drafted]
    yield r.finding(
        Indicator.WARNING,
        f"Possible duplicate: IVIG already {'active' if any(e.active for e in recent) else 'given or ordered'} "
        f"within {ctx.settings.duplicate_ivig_hours:g} h. Check the post-dose platelet count."
        if recent
        else f"Possible duplicate: {len(drafted)} IVIG orders in this signing add up. Check they are not one dose "
        "twice.",
        [*evidence, ctx.platelet_line()],
        [
            "Check whether this order repeats a dose already given or ordered.",
            "Judge the response by the post-dose platelet count before another dose.",
        ],
        order=ctx.ivig_orders[0].reference,
    )
