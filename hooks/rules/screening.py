"""Before a first infusion: IgA."""

from __future__ import annotations

from collections.abc import Iterable

from hooks import suggestions as suggest
from hooks import terminology as t
from hooks.citations import LABEL
from hooks.facts import MEDICATION_HISTORY, DataKind, Flag
from hooks.findings import Finding, Indicator
from hooks.rules.base import Rule, RuleContext, rule
from hooks.timeutil import describe_instant


@rule(
    "iga-screening",
    title="Screen serum IgA before a first IVIG",
    trigger="first IVIG (no prior IVIG on record) and no IgA result",
    indicator="info (never blocks)",
    advice=(
        "draw serum IgA before the infusion (the product's IgA falsifies later results); never delay "
        "an urgent dose; suggest ServiceRequest LOINC 2458-8"
    ),
    citations=(LABEL,),
)
def iga_screening(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    if not ctx.ivig_orders or ctx.lacks(DataKind.IGA):
        return
    if ctx.facts.iga is not None or ctx.facts.ivig_events or ctx.facts.has(Flag.IGA_DEFICIENCY):
        return
    age_days = ctx.facts.age_days
    if age_days is not None and age_days < ctx.settings.iga_screening_min_age_days:
        return  # infant: IgA is physiologically low, the result could not be interpreted
    history_known = not ctx.lacks(*MEDICATION_HISTORY)
    years = ctx.settings.ivig_history_lookback_days / 365.25
    evidence = [
        "Serum IgA: no result on record",
        f"Prior IVIG: none on record in the last {years:.0f} years"
        if history_known
        else "Prior IVIG: history could not be retrieved",
    ]
    yield r.finding(
        Indicator.INFO,
        f"No IVIG in the last {years:.0f} years and no IgA on record: draw serum IgA before the infusion.",
        evidence,
        [
            "Draw the sample before the first dose: IgA in the product makes later results unreliable.",
            "IgA deficiency with anti-IgA antibodies risks anaphylaxis; an IgA-depleted product is then used.",
            "Never delay an urgent dose for this result.",
        ],
        [suggest.order_service(ctx.facts, t.IGA_TEST, "Order serum IgA (before the infusion)")],
    )


@rule(
    "iga-deficiency",
    title="IgA deficiency and a product that is not IgA-depleted",
    trigger=(
        "known IgA deficiency (ICD-10 D80.2, SNOMED 190979003, or IgA <{iga_deficient_mg_dl:g} mg/dL) and a "
        "non-IgA-depleted IVIG"
    ),
    indicator="critical with anti-IgA antibodies or prior IVIG anaphylaxis, else warning",
    advice="use an IgA-depleted product (Gammagard S/D); the suggestion replaces the product",
    citations=(LABEL,),
)
def iga_deficiency(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    s = ctx.settings
    facts = ctx.facts
    iga = facts.iga
    low_iga = iga is not None and (
        iga.value < s.iga_deficient_mg_dl or (iga.comparator in ("<", "<=") and iga.value <= s.iga_deficient_mg_dl)
    )
    if not (facts.has(Flag.IGA_DEFICIENCY) or low_iga):
        return
    evidence = []
    if iga is not None:
        evidence.append(f"Serum IgA: {iga.as_recorded} ({describe_instant(iga.at, ctx.now)})")
    deficiency = facts.evidence_for(Flag.IGA_DEFICIENCY)
    if deficiency is not None:
        evidence.append(f"On record: {deficiency.text}")
    if facts.anti_iga_antibodies:
        evidence.append("Anti-IgA antibodies: present")
    if facts.ivig_anaphylaxis:
        evidence.append("Prior IVIG reaction: anaphylaxis or high-criticality allergy to immune globulin")
    severe = facts.anti_iga_antibodies or facts.ivig_anaphylaxis
    for order in ctx.ivig_orders:
        if order.iga_depleted:
            continue
        product = order.label or "this IVIG product"
        yield r.finding(
            Indicator.CRITICAL if severe else Indicator.WARNING,
            (
                "IgA deficiency with anti-IgA antibodies/prior anaphylaxis: use an IgA-depleted IVIG."
                if severe
                else "IgA deficiency: use an IgA-depleted IVIG product (e.g. Gammagard S/D)."
            ),
            [f"Order: {product}", *evidence],
            [
                "Products with more IgA risk anaphylaxis in IgA-deficient patients with anti-IgA antibodies.",
                "Switch to an IgA-depleted product (Gammagard S/D) and infuse slowly with anaphylaxis "
                "treatment at hand.",
            ],
            [
                suggest.replace_product(
                    order.resource, t.IGA_DEPLETED_IVIG_TEXT, label="Switch to IgA-depleted IVIG (Gammagard S/D)"
                )
            ],
            order=order.reference,
        )
