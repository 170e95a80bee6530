"""IVIG dose: the computed dose against the regimen of the indication, and the regimen when a rapid rise is needed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hooks import suggestions as suggest
from hooks import terminology as t
from hooks.citations import AHA17, ASH19, ICR19, LABEL, SMPC, Citation
from hooks.dose_rounding import g_per_kg_text, ivig_grams, kg_text, number_text
from hooks.facts import DataKind, Flag
from hooks.findings import Finding, Indicator, Suggestion
from hooks.orders import Dose, DraftOrder, OrderKind
from hooks.regimens import Course, Indication, Regimen, describe, fitting, regimens_for
from hooks.rules.base import DosingWeight, Rule, RuleContext, rule
from hooks.timeutil import describe_instant
from hooks.wording import first_fitting, with_free_text


def _near(value: float, target: float, tolerance: float) -> bool:
    """Within `tolerance` (a fraction) of `target`, the boundary included despite float rounding."""
    return abs(value - target) <= target * tolerance + 1e-9


def per_dose_g_per_kg(dose: Dose, weight: DosingWeight | None) -> float | None:
    """One administration in g/kg: as written per kg, or absolute grams ÷ the dosing weight."""
    if dose.g_per_kg is not None:
        return dose.g_per_kg
    if dose.grams is None or weight is None:
        return None
    return dose.grams / weight.kg


def daily_g_per_kg(dose: Dose, weight: DosingWeight | None) -> float | None:
    """The dose of one dosing day in g/kg (RULES.md "Dose"): every administration of that day.

    One function for every rule, so `dose-check` and `rapid-regimen` cannot read the same order
    differently. None for grams without a dosing weight: the dose cannot be put per kg.
    """
    per_dose = per_dose_g_per_kg(dose, weight)
    return None if per_dose is None else per_dose * dose.per_day


def course_of(dose: Dose, daily: float) -> Course | None:
    """The ordered course per kg; None when its length cannot be read."""
    if dose.days is None:
        return None
    if dose.consecutive:
        return Course(daily, dose.days, None, 1)
    return Course(daily, 1, dose.interval_days, None if dose.open_ended else dose.days)


# --- indications ---------------------------------------------------------------------------------
_INDICATION_FLAGS = {
    Flag.ITP: Indication.ITP,
    Flag.GUILLAIN_BARRE: Indication.GUILLAIN_BARRE,
    Flag.KAWASAKI: Indication.KAWASAKI,
    Flag.CIDP: Indication.CIDP,
    Flag.PRIMARY_IMMUNODEFICIENCY: Indication.PRIMARY_IMMUNODEFICIENCY,
}
_INDICATION_CODES = (
    (t.ITP, Indication.ITP),
    (t.GUILLAIN_BARRE, Indication.GUILLAIN_BARRE),
    (t.KAWASAKI, Indication.KAWASAKI),
    (t.CIDP, Indication.CIDP),
    (t.PRIMARY_IMMUNODEFICIENCY, Indication.PRIMARY_IMMUNODEFICIENCY),
)


@dataclass(frozen=True)
class OrderIndications:
    found: frozenset[Indication]
    evidence: tuple[str, ...]  # where each was found, for the card


def indications_of(ctx: RuleContext, order: DraftOrder) -> OrderIndications:
    """The label indications of this order: active conditions on record and the order's reasonCode.

    Unexplained thrombocytopenia counts as ITP (`itp_directed`), as the ITP rules read it.
    """
    found: dict[Indication, str] = {}
    for flag, indication in _INDICATION_FLAGS.items():
        evidence = ctx.facts.evidence_for(flag)
        if ctx.facts.has(flag):
            found.setdefault(indication, f"{evidence.text if evidence else flag.value} (on record)")
    if Indication.ITP not in found and ctx.itp_directed:
        evidence = ctx.facts.evidence_for(Flag.THROMBOCYTOPENIA)
        found[Indication.ITP] = f"{evidence.text if evidence else 'thrombocytopenia'} (on record, read as ITP)"
    for system, code in order.reason_codes:
        for concept_set, indication in _INDICATION_CODES:
            if concept_set.matches(system, code):
                found.setdefault(indication, f"{code} (the order's reason)")
    return OrderIndications(frozenset(found), tuple(f"{i.value}: {where}" for i, where in found.items()))


# --- dose-check --------------------------------------------------------------------------------


@rule(
    "dose-check",
    title="IVIG dose against the regimen of its indication",
    trigger="any IVIG order",
    indicator=(
        "info when the dose is within a label regimen of the indication on record (or, with none on record, "
        "within the ITP regimen or another label regimen); warning when it is outside the indication's "
        "regimens, no weight in {weight_max_age_days} days, the course cannot be read, or a cycle exceeds "
        "{max_course_g_per_kg:g} g/kg"
    ),
    advice=(
        "show the dose in grams (rounded as a pharmacy gives it: 0.1 g below 10 g, 0.5 g up to 50 g, 5 g above), "
        "the weight used and its date, the regimen it fits; ITP {rapid_dose_g_per_kg:g} g/kg on 1–2 days or "
        "{standard_daily_dose_g_per_kg:g} g/kg/day on 2–5 days, Guillain–Barré 0.4 g/kg/day × 5, Kawasaki 2 g/kg "
        "once, CIDP 2 g/kg loading then 1 g/kg every 3 weeks, primary immunodeficiency 0.2–0.8 g/kg every 3–4 "
        "weeks; an unreadable dose is quoted and the computed dose offered as an update of the draft"
    ),
    citations=(LABEL, SMPC, AHA17, ASH19),
)
def dose_check(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    for order in ctx.ivig_orders:
        yield _dose_finding(ctx, r, order)


def _others_line(ctx: RuleContext, order: DraftOrder) -> tuple[str | None, str]:
    """Other IVIG drafts of this signing: an evidence line, and a summary tail ("" when none)."""
    others = [o for o in ctx.drafts if o.kind is OrderKind.IVIG and o.reference != order.reference]
    if not others:
        return None, ""
    weight = ctx.dosing_weight
    described = []
    total = 0.0
    complete = weight is not None
    for other in [order, *others]:
        daily = daily_g_per_kg(other.dose, weight) if other.dose else None
        if daily is None or other.dose is None or other.dose.days is None:
            complete = False
            continue
        total += daily * other.dose.days
        if other is not order:
            described.append(f"{other.label or 'IVIG'}, {other.dose.as_written}")
    together = f"{g_per_kg_text(total)} g/kg" if complete else "not computable"
    if complete and weight is not None:
        together = f"{ivig_grams(total, weight.kg).text} ({together})"
    line = (
        f"Also drafted in this signing: {len(others)} other IVIG order(s): {'; '.join(described) or 'dose not read'}; "
        f"all together {together}"
    )
    tail = (
        f" With {len(others)} other IVIG draft: {together.split(' (')[0]} together."
        if complete
        else (f" With {len(others)} other IVIG draft.")
    )
    return line, tail


def _signing_cycle_g_per_kg(ctx: RuleContext, order: DraftOrder) -> float | None:
    """One cycle of every IVIG draft of this signing added up (g/kg); None with no other IVIG draft or
    one whose dose or course cannot be read (dose-check then says so on that draft's own card)."""
    drafted = [o for o in ctx.drafts if o.kind is OrderKind.IVIG]
    if len(drafted) < 2 or order not in drafted:
        return None
    total = 0.0
    for other in drafted:
        daily = daily_g_per_kg(other.dose, ctx.dosing_weight) if other.dose else None
        course = course_of(other.dose, daily) if other.dose and daily is not None else None
        if course is None:
            return None
        total += course.cycle_g_per_kg
    return total


def _dose_finding(ctx: RuleContext, r: Rule, order: DraftOrder) -> Finding:
    s = ctx.settings
    weight = ctx.dosing_weight
    dose = order.dose
    product = order.label or "IVIG"
    written = dose.as_written if dose else f"dose not readable: {order.dose_written or 'no dose stated'}"
    evidence = [f"Order: {product}, {written}"]
    indications = indications_of(ctx, order)
    evidence.append(
        "Indication: " + "; ".join(indications.evidence)
        if indications.evidence
        else "Indication: none on record (shown against the ITP regimen)"
    )
    facts_weight = ctx.facts.weight
    others_line, others_tail = _others_line(ctx, order)
    if others_line:
        evidence.append(others_line)
    if weight is None and ctx.implausible_weight is not None:  # RULES.md v2: never dose from it
        return r.finding(
            Indicator.WARNING,
            "The latest weight is implausible for the age: the IVIG dose is not computed. Weigh the patient.",
            [*evidence, ctx.implausible_weight_line(ctx.implausible_weight)],
            ["Weigh the patient, correct the record, and compute the dose (1 g/kg, or 0.4 g/kg/day) from it."],
            order=order.reference,
            citations=(LABEL,),
        )
    if weight is None:
        if facts_weight is not None:
            evidence.append(
                f"Weight: latest {kg_text(facts_weight.value)} kg is older than {s.weight_max_age_days} days "
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
            ["Weigh the patient and recompute the dose in g/kg before infusion."],
            order=order.reference,
            citations=(LABEL,),
        )
    evidence.append(
        f"Dosing weight: {weight.explanation}; weighed {describe_instant(facts_weight.at, ctx.now)}"
        if facts_weight
        else f"Dosing weight: {weight.explanation}"
    )
    if dose is None:
        return _unreadable_dose(ctx, r, order, indications, evidence)
    per_dose = per_dose_g_per_kg(dose, weight) or 0.0
    daily = daily_g_per_kg(dose, weight) or 0.0
    course = course_of(dose, daily)
    grams = ivig_grams(per_dose, weight.kg)
    evidence.append(
        f"Computed: {grams.text} per dose = {g_per_kg_text(per_dose)} g/kg × {kg_text(weight.kg)} kg ({grams.rounding})"
    )
    evidence.append("Course: " + _course_line(dose, daily))
    problems = [weight.caveat] if weight.caveat else []
    child = not ctx.adult
    itp_only = frozenset({Indication.ITP})
    cited: list[Citation] = [LABEL]
    fits: list[Regimen] = []
    other_label: list[Regimen] = []
    if course is None:
        # A course stated but not readable (unknown unit, open period) is not assumed to be one day.
        problems.append("the course length could not be read (state the number of days)")
    else:
        if course.cycle_g_per_kg > s.max_course_g_per_kg * 1.001:
            problems.append(
                f"the course of {g_per_kg_text(course.cycle_g_per_kg)} g/kg exceeds {s.max_course_g_per_kg:g} g/kg"
            )
        elif (together := _signing_cycle_g_per_kg(ctx, order)) is not None and together > s.max_course_g_per_kg * 1.001:
            # RULES.md v2 "Several IVIG drafts in one signing add up": each may fit its regimen alone.
            others = sum(1 for o in ctx.drafts if o.kind is OrderKind.IVIG) - 1
            problems.append(
                f"with {others} other IVIG draft{'s' if others > 1 else ''} the course is "
                f"{g_per_kg_text(together)} g/kg ({ivig_grams(together, weight.kg).text}), over "
                f"{s.max_course_g_per_kg:g} g/kg"
            )
            others_tail = ""  # the problem already says what the drafts come to together
        wanted = indications.found or itp_only
        fits = fitting(course, wanted, s, child=child)
        if not fits and not indications.found:
            other_label = fitting(course, frozenset(Indication) - itp_only, s, child=child)
        if fits:
            evidence.append(f"Regimen: within {describe(fits)}")
        else:
            expected = regimens_for(wanted, s, child=child)
            names = " / ".join(dict.fromkeys(x.name.split(" (")[0] for x in expected))
            evidence.append(f"Regimens of the indication: {describe(expected)}")
            if other_label:
                evidence.append(f"Fits another label regimen: {describe(other_label)}")
            else:
                outside = f"{g_per_kg_text(daily)} g/kg {_schedule(dose)} is outside the {names} regimen"
                texts = ", or ".join(x.text for x in expected)
                problems.append(first_fitting(f"{outside} ({texts})", outside, limit=120))
            cited += [c for x in expected for c in x.citations]
        cited += [c for x in fits + other_label for c in x.citations]
    advice = []
    itp_like = not indications.found or Indication.ITP in indications.found
    rapid_daily = _near(daily, s.rapid_dose_g_per_kg, s.dose_tolerance_fraction)
    two_rapid_days = dose.consecutive and dose.days == 2 and rapid_daily
    if itp_like and two_rapid_days:
        advice.append("1 g/kg on 2 days is a label regimen: re-check the platelet count before the second dose.")
    if Indication.KAWASAKI in indications.found:
        advice.append("Kawasaki disease: give with aspirin; a single 2 g/kg infusion is the standard (AHA 2017).")
        cited.append(AHA17)
    if others_line:
        advice.append("Check that the IVIG drafts of this signing are not the same dose twice: they add up.")
    advice.append("Infuse at the minimum practicable rate; monitor for headache and infusion reactions.")
    amount = f"IVIG {grams.text} ({g_per_kg_text(per_dose)} g/kg × {kg_text(weight.kg)} kg {weight.basis} weight)"
    schedule = _schedule(dose)
    if problems:
        return r.finding(
            Indicator.WARNING,
            first_fitting(
                f"Check IVIG dose: {problems[0]}.{others_tail}",
                f"Check IVIG dose: {problems[0]}.",
            ),
            evidence + [f"Problem: {p}" for p in problems],
            advice,
            order=order.reference,
            citations=cited,
        )
    if fits:
        summary = first_fitting(
            f"{amount} {schedule}: within the {fits[0].name} regimen.{others_tail}",
            f"{amount} {schedule}: within the {fits[0].name} regimen.",
            f"{amount} {schedule}.",
        )
    else:
        summary = first_fitting(
            f"{amount} {schedule}: not an ITP dose; fits the {other_label[0].name} label regimen.{others_tail}",
            f"{amount} {schedule}: not an ITP dose; fits the {other_label[0].name} label regimen.",
        )
        advice.insert(0, "Record the indication as the order's reason so the dose is checked against its regimen.")
    return r.finding(Indicator.INFO, summary, evidence, advice, order=order.reference, citations=cited)


def _schedule(dose: Dose) -> str:
    """The schedule in a summary: "once", "daily × 5 days", "every 3 weeks × 9 doses"."""
    return dose.as_written.split(" ", 2)[2] if dose.as_written.count(" ") >= 2 else dose.as_written


def _course_line(dose: Dose, daily: float) -> str:
    if dose.days is None:
        return "the course length could not be read from the order's timing"
    if dose.consecutive:
        total = daily * dose.days
        return f"{g_per_kg_text(total)} g/kg over {dose.days} day{'s' if dose.days > 1 else ''}"
    interval = number_text(dose.interval_days, 1)
    if dose.open_ended:
        return f"{g_per_kg_text(daily)} g/kg every {interval} days, no end stated"
    return (
        f"{dose.days} dose{'s' if dose.days != 1 else ''} of {g_per_kg_text(daily)} g/kg, one every {interval} days "
        f"({g_per_kg_text(daily * dose.days)} g/kg in all); each dose is one cycle"
    )


# Per indication, the dose a draft with an unreadable dose is offered (daily g/kg, days): only where
# the label gives one regimen. CIDP (loading or maintenance?) and immunodeficiency (0.2–0.8 g/kg) have
# no single dose to offer: the card names their regimens instead.
def _offered(indication: Indication, ctx: RuleContext) -> tuple[float, int] | None:
    s = ctx.settings
    return {
        Indication.ITP: (s.rapid_dose_g_per_kg, 1),
        Indication.GUILLAIN_BARRE: (0.4, 5),
        Indication.KAWASAKI: (2.0, 1),
    }.get(indication)


def _unreadable_dose(
    ctx: RuleContext, r: Rule, order: DraftOrder, indications: OrderIndications, evidence: list[str]
) -> Finding:
    """The dose could not be read: quote what was written, and offer the computed dose as an update."""
    weight = ctx.dosing_weight
    assert weight is not None
    wanted = indications.found or frozenset({Indication.ITP})
    offers = {offer for i in wanted if (offer := _offered(i, ctx)) is not None}
    expected = regimens_for(wanted, ctx.settings, child=not ctx.adult)
    advice = [f"Regimens: {describe(expected)}."]
    suggestions: list[Suggestion] = []
    computed = ""
    if len(offers) == 1 and len(wanted) == 1:
        g_per_kg, days = offers.pop()
        grams = ivig_grams(g_per_kg, weight.kg)
        schedule = "once" if days == 1 else f"daily × {days} days"
        computed = f"{grams.text} {schedule}"
        label = f"Set the dose: IVIG {grams.text} {schedule} ({g_per_kg:g} g/kg × {kg_text(weight.kg)} kg)"
        advice.insert(0, f"At {g_per_kg:g} g/kg the dose is {grams.text} {schedule} ({grams.rounding}).")
        suggestions.append(suggest.revised_ivig(order.resource, weight.kg, g_per_kg, label=label, days=days))
    else:
        advice.insert(0, "State the dose in g/kg or grams, with the number of days.")
    written = order.dose_written or "no dose stated"
    cited = [LABEL, *(c for x in expected for c in x.citations)]
    return r.finding(
        Indicator.WARNING,
        first_fitting(
            with_free_text("IVIG dose not readable (", written, f"): state g/kg or grams; computed {computed}.")
            if computed
            else with_free_text("IVIG dose not readable (", written, "): state it in g/kg or grams."),
            "IVIG dose not readable: state it in g/kg or grams.",
        ),
        [*evidence, f"Dose as written: {written}"],
        advice,
        suggestions,
        order=order.reference,
        citations=cited,
    )


# --- rapid-regimen -------------------------------------------------------------------------------


@rule(
    "rapid-regimen",
    title="0.4 g/kg × 5 days ordered when a rapid rise is needed",
    trigger=(
        "ITP-directed IVIG {standard_daily_dose_g_per_kg:g} g/kg/day over several days while a rapid rise is "
        "needed (adult, no sepsis, not a neonate)"
    ),
    indicator="warning",
    advice=(
        "{rapid_dose_g_per_kg:g} g/kg as a single dose (may repeat) is faster; the suggestion updates the order to "
        "{rapid_dose_g_per_kg:g} g/kg × dosing weight, rounded as a pharmacy gives it"
    ),
    citations=(ICR19, ASH19),
)
def rapid_regimen(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    s = ctx.settings
    # A rapid platelet rise is an ITP aim: a Guillain–Barré course of 0.4 g/kg × 5 is right as it is.
    if not ctx.adult or ctx.facts.has(Flag.SEPSIS) or not ctx.rapid_rise_reasons or not ctx.itp_directed:
        return
    weight = ctx.dosing_weight
    for order in ctx.ivig_orders:
        dose = order.dose
        # An unreadable course length (days None) or grams without a weight: dose-check already warns.
        if dose is None or dose.days is None or dose.days < 2 or not dose.consecutive:
            continue
        g_per_kg = daily_g_per_kg(dose, weight)
        if g_per_kg is None or not _near(g_per_kg, s.standard_daily_dose_g_per_kg, s.dose_tolerance_fraction):
            continue
        amount = suggest.ivig_amount(weight.kg if weight else None, s.rapid_dose_g_per_kg)
        written = dose.as_written if dose.g_per_kg is not None else f"{dose.as_written} ({g_per_kg:.2f} g/kg/day)"
        yield r.finding(
            Indicator.WARNING,
            first_fitting(
                f"Rapid rise needed: IVIG 1 g/kg once is faster than 0.4 g/kg × {dose.days} days. Change to {amount}.",
                f"Rapid rise needed: IVIG 1 g/kg once is faster. Change to {amount}.",
            ),
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
                    label=f"Change to IVIG {amount} once ({s.rapid_dose_g_per_kg:g} g/kg)",
                )
            ],
            order=order.reference,
        )
