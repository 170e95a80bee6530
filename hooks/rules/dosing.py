"""IVIG dose: the computed dose from the dosing weight, and the regimen when a rapid rise is needed."""

from __future__ import annotations

from collections.abc import Iterable

from hooks import suggestions as suggest
from hooks.citations import LABEL, S001, S002, S004
from hooks.facts import DataKind, Flag
from hooks.findings import Finding, Indicator
from hooks.orders import Dose, DraftOrder
from hooks.rules.base import DosingWeight, Rule, RuleContext, rule
from hooks.timeutil import describe_instant


def _near(value: float, target: float, tolerance: float) -> bool:
    """Within `tolerance` (a fraction) of `target`, the boundary included despite float rounding."""
    return abs(value - target) <= target * tolerance + 1e-9


def daily_g_per_kg(dose: Dose, weight: DosingWeight | None) -> float | None:
    """The daily dose in g/kg: as written per kg, or absolute grams ÷ the dosing weight (RULES.md "Dose").

    One function for every rule, so `dose-check` and `rapid-regimen` cannot read the same order
    differently. None for grams without a dosing weight: the dose cannot be put per kg.
    """
    if dose.g_per_kg is not None:
        return dose.g_per_kg
    if dose.grams is None or weight is None:
        return None
    return dose.grams / weight.kg


@rule(
    "dose-check",
    title="IVIG dose computed from the dosing weight",
    trigger="any IVIG order",
    indicator=(
        "info; warning when there is no weight in 30 days, the daily dose is not within 10 % of 1 g/kg "
        "or 0.4 g/kg, or the course exceeds 2 g/kg"
    ),
    advice="show the dose in grams, the weight used and its date; 1 g/kg × 2 days: re-check platelets before dose 2",
    citations=(S001, LABEL),
)
def dose_check(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    for order in ctx.ivig_orders:
        yield _dose_finding(ctx, r, order)


def _dose_finding(ctx: RuleContext, r: Rule, order: DraftOrder) -> Finding:
    s = ctx.settings
    weight = ctx.dosing_weight
    dose = order.dose
    product = order.label or "IVIG"
    evidence = [f"Order: {product}, {dose.as_written if dose else 'dose not readable'}"]
    facts_weight = ctx.facts.weight
    if weight is None and ctx.implausible_weight is not None:  # RULES.md v2: never dose from it
        return r.finding(
            Indicator.WARNING,
            "The latest weight is implausible for the age: the IVIG dose is not computed. Weigh the patient.",
            [*evidence, ctx.implausible_weight_line(ctx.implausible_weight)],
            ["Weigh the patient, correct the record, and compute the dose (1 g/kg, or 0.4 g/kg/day) from it."],
            order=order.reference,
        )
    if weight is None:
        if facts_weight is not None:
            evidence.append(
                f"Weight: latest {facts_weight.value:.1f} kg is older than {s.weight_max_age_days} days "
                f"({describe_instant(facts_weight.at, ctx.now)})"
            )
        elif DataKind.WEIGHT in ctx.facts.unavailable:  # "could not be read" is never "not on record"
            evidence.append("Weight: could not be retrieved from the FHIR server")
        else:
            evidence.append(f"Weight: none on record in the last {s.weight_max_age_days} days")
        return r.finding(
            Indicator.WARNING,
            f"No weight in the last {s.weight_max_age_days} days: the IVIG dose cannot be verified. Weigh the patient."
            if DataKind.WEIGHT not in ctx.facts.unavailable
            else "The weight could not be retrieved: the IVIG dose cannot be verified.",
            evidence,
            ["Weigh the patient and recompute the dose (1 g/kg, or 0.4 g/kg/day) before infusion."],
            order=order.reference,
        )
    evidence.append(
        f"Dosing weight: {weight.explanation}; weighed {describe_instant(facts_weight.at, ctx.now)}"
        if facts_weight
        else f"Dosing weight: {weight.explanation}"
    )
    if dose is None:
        return r.finding(
            Indicator.WARNING,
            "The IVIG dose could not be read from the order: state it in g/kg or grams.",
            evidence,
            [f"At {s.rapid_dose_g_per_kg:g} g/kg the dose would be {s.rapid_dose_g_per_kg * weight.kg:.0f} g."],
            order=order.reference,
        )
    g_per_kg = daily_g_per_kg(dose, weight) or 0.0
    grams = g_per_kg * weight.kg
    course: float | None
    if dose.days is None:
        course = None
        course_line = "course length could not be read from the order's timing"
    else:
        course = g_per_kg * dose.days
        course_line = f"course {course:.2f} g/kg over {dose.days} day{'s' if dose.days > 1 else ''}"
    evidence.append(f"Computed: {grams:.1f} g per day = {g_per_kg:.2f} g/kg × {weight.kg:.1f} kg; {course_line}")
    problems = [weight.caveat] if weight.caveat else []
    tolerance = s.dose_tolerance_fraction
    # Children with ITP: a single dose of 0.8–1 g/kg is the guideline range (ASH19), not an error.
    pediatric = not ctx.adult and s.pediatric_min_dose_g_per_kg - 1e-9 <= g_per_kg <= s.rapid_dose_g_per_kg
    if not (
        pediatric
        or _near(g_per_kg, s.rapid_dose_g_per_kg, tolerance)
        or _near(g_per_kg, s.standard_daily_dose_g_per_kg, tolerance)
    ):
        problems.append(
            f"the daily dose {g_per_kg:.2f} g/kg is not within {tolerance:.0%} of "
            f"{s.rapid_dose_g_per_kg:g} or {s.standard_daily_dose_g_per_kg:g} g/kg"
        )
    if course is None:
        # A course stated but not readable (unknown unit, open period) is not assumed to be one day.
        problems.append("the course length could not be read (state the number of days)")
    elif course > s.max_course_g_per_kg * 1.001:
        problems.append(f"the course of {course:.2f} g/kg exceeds {s.max_course_g_per_kg:g} g/kg")
    advice = []
    if dose.days == 2 and _near(g_per_kg, s.rapid_dose_g_per_kg, tolerance):
        advice.append("1 g/kg on 2 days is a label regimen: re-check the platelet count before the second dose.")
    advice.append("Infuse at the minimum practicable rate; monitor for headache and infusion reactions.")
    if problems:
        return r.finding(
            Indicator.WARNING,
            f"Check IVIG dose: {problems[0]}."[:140],
            evidence + [f"Problem: {p}" for p in problems],
            advice,
            order=order.reference,
        )
    summary = f"IVIG dose {grams:.0f} g ({g_per_kg:.2f} g/kg × {weight.kg:.0f} kg {weight.basis} weight)" + (
        f" daily × {dose.days} days." if dose.days and dose.days > 1 else " once."
    )
    return r.finding(Indicator.INFO, summary, evidence, advice, order=order.reference)


@rule(
    "rapid-regimen",
    title="0.4 g/kg × 5 days ordered when a rapid rise is needed",
    trigger="IVIG 0.4 g/kg/day over several days while a rapid rise is needed (adult, no sepsis, not a neonate)",
    indicator="warning",
    advice="1 g/kg as a single dose (may repeat) is faster; suggestion updates the order to 1 g/kg × dosing weight",
    citations=(S001, S002, S004),
)
def rapid_regimen(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    s = ctx.settings
    if not ctx.adult or ctx.facts.has(Flag.SEPSIS) or not ctx.rapid_rise_reasons:
        return
    weight = ctx.dosing_weight
    for order in ctx.ivig_orders:
        dose = order.dose
        # An unreadable course length (days None) or grams without a weight: dose-check already warns.
        if dose is None or dose.days is None or dose.days < 2:
            continue
        g_per_kg = daily_g_per_kg(dose, weight)
        if g_per_kg is None or not _near(g_per_kg, s.standard_daily_dose_g_per_kg, s.dose_tolerance_fraction):
            continue
        amount = f"{s.rapid_dose_g_per_kg * weight.kg:.0f} g" if weight else f"{s.rapid_dose_g_per_kg:g} g/kg"
        written = dose.as_written if dose.g_per_kg is not None else f"{dose.as_written} ({g_per_kg:.2f} g/kg/day)"
        yield r.finding(
            Indicator.WARNING,
            f"Rapid rise needed: IVIG 1 g/kg once is faster than 0.4 g/kg × {dose.days} days. Change to {amount}."[
                :140
            ],
            [
                f"Order: {order.label or 'IVIG'}, {written}",
                "Rapid rise needed: " + "; ".join(ctx.rapid_rise_reasons),
                f"Dosing weight: {weight.explanation}" if weight else "Dosing weight: no weight in 30 days",
            ],
            [
                "1 g/kg as a single dose (repeat once if needed) raises the count within 24 hours in most patients;",
                "0.4 g/kg/day for 5 days is slower and should not be used when a rapid rise is needed.",
            ],
            [
                suggest.revised_ivig(
                    order.resource,
                    weight.kg if weight else None,
                    s.rapid_dose_g_per_kg,
                    label=f"Change to IVIG {amount} once (1 g/kg)",
                )
            ],
            order=order.reference,
        )
