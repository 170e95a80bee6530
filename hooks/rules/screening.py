"""Before an infusion: IgA (screening, deficiency judged before the first IVIG) and a prior
anaphylaxis to immune globulin."""

from __future__ import annotations

from collections.abc import Iterable

from hooks import suggestions as suggest
from hooks import terminology as t
from hooks.citations import LABEL
from hooks.facts import MEDICATION_HISTORY, DataKind, Flag, Measurement
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
        "known IgA deficiency (ICD-10 D80.2, SNOMED 190979003, or an IgA result <{iga_deficient_mg_dl:g} mg/dL drawn "
        "past early infancy, judged before the first IVIG: a normal result after IVIG does not undo it) and a "
        "non-IgA-depleted IVIG"
    ),
    indicator="critical with anti-IgA antibodies or prior IVIG anaphylaxis, else warning",
    advice="use an IgA-depleted product (Gammagard S/D); the suggestion replaces the product",
    citations=(LABEL,),
)
def iga_deficiency(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    facts = ctx.facts
    status = facts.iga_status
    if not (facts.has(Flag.IGA_DEFICIENCY) or status.deficient is not None):
        return
    evidence = _deficient_result_lines(ctx) if status.deficient is not None else []
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


def _deficient_result_lines(ctx: RuleContext) -> list[str]:
    """The deficient result, and why a later normal one does not undo it (RULES.md v2 "IgA deficiency")."""
    status = ctx.facts.iga_status
    deficient = status.deficient
    assert deficient is not None
    lines = [f"Serum IgA: {deficient.as_recorded} ({describe_instant(deficient.at, ctx.now)}): deficient"]
    later = [m for m in (status.post_ivig, status.pre_ivig) if m is not None and _after(m, deficient)]
    for result in later:
        if result is status.post_ivig:
            lines.append(
                f"Later result {result.as_recorded} ({describe_instant(result.at, ctx.now)}) was drawn after IVIG"
                f"{_first_ivig_words(ctx)}: IgA in the product raises it, so it does not undo the deficiency"
            )
        else:
            lines.append(
                f"Later result {result.as_recorded} ({describe_instant(result.at, ctx.now)}): a normal result does "
                "not undo a deficient one; ask immunology to confirm"
            )
    return lines


def _after(result: Measurement, other: Measurement) -> bool:
    return result.at is not None and other.at is not None and result.at > other.at


def _first_ivig_words(ctx: RuleContext) -> str:
    status = ctx.facts.iga_status
    if not status.first_ivig_known:
        return " (or cannot be shown to precede IVIG: the IVIG history is incomplete)"
    if status.first_ivig is None:
        return ""
    years = ctx.settings.ivig_history_lookback_days / 365.25
    return f" (first IVIG on record {status.first_ivig.date().isoformat()}; history read back {years:.0f} years)"


def iga_line(ctx: RuleContext) -> str:
    """What is known of IgA deficiency, as a card about a reaction to immune globulin shows it."""
    facts = ctx.facts
    status = facts.iga_status
    if status.deficient is not None:
        return f"Serum IgA: {status.deficient.as_recorded} (deficient): see the IgA deficiency card"
    if facts.has(Flag.IGA_DEFICIENCY):
        return "IgA deficiency on record: see the IgA deficiency card"
    if status.pre_ivig is not None:
        result = status.pre_ivig
        return (
            f"Serum IgA: {result.as_recorded} ({describe_instant(result.at, ctx.now)}), drawn before any IVIG: normal"
        )
    if status.post_ivig is not None:
        result = status.post_ivig
        return (
            f"Serum IgA: {result.as_recorded} ({describe_instant(result.at, ctx.now)}) was drawn after IVIG"
            f"{_first_ivig_words(ctx)}: it cannot exclude IgA deficiency"
        )
    if ctx.lacks(DataKind.IGA):
        return "Serum IgA: could not be retrieved"
    return "Serum IgA: no result on record"


@rule(
    "prior-ivig-anaphylaxis",
    title="Prior anaphylaxis or severe reaction to human immune globulin",
    trigger=(
        "IVIG ordered and an allergy to human immune globulin (not a hyperimmune or anti-D globulin) with "
        "anaphylaxis (SNOMED 39579001, or the word in the reaction) or high criticality on record, whatever the IgA"
    ),
    indicator="critical",
    advice=(
        "a label contraindication: do not give without specialist review; if IgA-deficient the iga-deficiency card "
        "shows too"
    ),
    citations=(LABEL,),
)
def prior_ivig_anaphylaxis(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    reactions = ctx.facts.ivig_reactions
    if not reactions:
        return
    anaphylaxis = any("anaphylaxis" in reaction for reaction in reactions)
    summary = (
        "Prior anaphylaxis to immune globulin: IVIG is contraindicated. Do not give without specialist review."
        if anaphylaxis
        else "High-risk allergy to immune globulin on record: IVIG is contraindicated without specialist review."
    )
    iga = iga_line(ctx)
    advice = [
        "IVIG labels contraindicate it after an anaphylactic or severe systemic reaction to human immune globulin.",
        "Do not infuse without allergy/immunology review; if it is given, be ready to treat anaphylaxis.",
    ]
    if "cannot exclude" in iga or "no result" in iga:
        advice.append(
            "Serum IgA (and anti-IgA antibodies) belong to the review; only a pre-IVIG result rules out IgA deficiency."
        )
    for order in ctx.ivig_orders:
        yield r.finding(
            Indicator.CRITICAL,
            summary,
            [f"Order: {order.label or 'IVIG'}", *(f"Allergy: {reaction}" for reaction in reactions), iga],
            advice,
            order=order.reference,
        )
