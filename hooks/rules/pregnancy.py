"""Pregnancy: first-line options and the IVIG response predictors of Khalife et al. 2025."""

from __future__ import annotations

from collections.abc import Iterable

from hooks.citations import ASH19, KH25
from hooks.findings import Finding, Indicator
from hooks.rules.base import Rule, RuleContext, rule
from hooks.timeutil import describe_instant
from hooks.wording import first_fitting


@rule(
    "pregnancy",
    title="IVIG in pregnancy",
    trigger="pregnant and IVIG ordered",
    indicator=(
        "info; warning when delivery is expected within {delivery_horizon_days} days and platelets are below "
        "{critical_bleeding_platelets:g}"
    ),
    advice=(
        "corticosteroids and IVIG are both first-line in pregnancy; pregnancy is not a steroid contraindication; "
        "a count of {neuraxial_target_platelets:g} or more allows neuraxial anaesthesia"
    ),
    citations=(ASH19,),
)
def pregnancy(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    facts = ctx.facts
    if not facts.pregnant or not ctx.ivig_orders:
        return
    s = ctx.settings
    platelets = ctx.platelets
    evidence = [ctx.platelet_line()]
    days_to_delivery = None
    if facts.expected_delivery is not None:
        days_to_delivery = (facts.expected_delivery - ctx.now.date()).days
        if facts.expected_delivery_partial is not None:
            evidence.append(
                f"Expected delivery: {ctx.delivery_date_text}: read as possibly within {s.delivery_horizon_days} days"
                if days_to_delivery <= s.delivery_horizon_days
                else f"Expected delivery: {ctx.delivery_date_text}"
            )
        else:
            when = f"in {days_to_delivery} days" if days_to_delivery >= 0 else f"{-days_to_delivery} days ago: overdue"
            evidence.append(f"Expected delivery: {facts.expected_delivery.isoformat()} ({when})")
    else:
        evidence.append("Expected delivery: not on record")
    # Overdue counts as near: delivery can come any day (facts drop dates past the post-term limit).
    near = days_to_delivery is not None and days_to_delivery <= s.delivery_horizon_days
    advice = [
        "Corticosteroids and IVIG are both first-line in pregnancy; pregnancy is not a contraindication to steroids.",
        f"Aim for at least {s.neuraxial_target_platelets:g} ×10⁹/L before delivery for neuraxial anaesthesia.",
    ]
    if near and platelets is not None and platelets < s.critical_bleeding_platelets:
        advice.insert(0, "Delivery is near: plan with obstetrics, anaesthesia and hematology now; recheck the count.")
        when = ctx.delivery_when
        head = "Delivery overdue" if when.startswith("overdue") else f"Delivery expected {when}"
        summary = first_fitting(
            f"{head} with platelets {platelets:g}: aim ≥{s.neuraxial_target_platelets:g} for neuraxial anaesthesia.",
            f"{head}, platelets {platelets:g}: aim ≥{s.neuraxial_target_platelets:g} before delivery.",
        )
        yield r.finding(Indicator.WARNING, summary, evidence, advice)
        return
    yield r.finding(
        Indicator.INFO,
        "Pregnancy: corticosteroids and IVIG are both first-line; steroids are not contraindicated.",
        evidence,
        advice,
    )


@rule(
    "pregnancy-response-predictors",
    title="Predictors of IVIG response in pregnancy (Khalife et al. 2025)",
    trigger="pregnant, IVIG ordered, platelets below {thrombocytopenia_scope_platelets:g}",
    indicator="info",
    advice=(
        "which favourable features are present (nadir <{pregnancy_nadir_favourable_below:g}, IPF "
        "<{pregnancy_ipf_favourable_below:g} %, pre-IVIG count <{pregnancy_pre_ivig_favourable_below:g}), with "
        "values; {pregnancy_less_likely_from:g}–100 less likely to rise ≥20; retrospective single-centre cohort of "
        "79; no computed probability"
    ),
    citations=(KH25,),
)
def pregnancy_response_predictors(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    facts = ctx.facts
    platelets = ctx.platelets
    s = ctx.settings
    if not facts.pregnant or not ctx.ivig_orders or platelets is None:
        return
    if platelets >= s.thrombocytopenia_scope_platelets:
        return
    nadir, ipf = ctx.nadir, facts.ipf
    if ipf is not None and (ipf.at is None or ipf.at < ctx.episode_start):
        ipf = None  # an IPF from before this pregnancy says nothing about its platelets
    where = "this pregnancy" if facts.pregnancy_start else f"the last {s.nadir_lookback_days} days"
    features = [
        _feature(
            f"Nadir {nadir.value:g} in {where} ({describe_instant(nadir.at, ctx.now)})",
            nadir.value,
            s.pregnancy_nadir_favourable_below,
        )
        if nadir is not None and nadir.value is not None
        else (False, "Nadir: no usable count on record"),
        _feature(
            f"IPF {ipf.value:g} % ({describe_instant(ipf.at, ctx.now)})",
            ipf.value,
            s.pregnancy_ipf_favourable_below,
            " %",
        )
        if ipf is not None
        else (False, f"IPF: not measured in {where}"),
        _feature(f"Pre-IVIG count {platelets:g}", platelets, s.pregnancy_pre_ivig_favourable_below),
    ]
    count = sum(1 for ok, _ in features if ok)
    evidence = [("Favourable: " if ok else "Not present: ") + text for ok, text in features]
    if ctx.pregnancy_start_line:  # the nadir window is then the look-back, and the card says so
        evidence.append(ctx.pregnancy_start_line)
    advice = [
        "In a retrospective single-centre cohort of 79 pregnancies (Khalife 2025), 49.4 % reached ≥80 ×10⁹/L "
        "and 46.8 % rose by ≥20 after IVIG; nadir <30 (OR 6.29), IPF <16 % (OR 4.85) and pre-IVIG <50 "
        "(OR 8.67) predicted a response.",
        "These are associations, not a computed probability for this patient.",
    ]
    if s.pregnancy_less_likely_from <= platelets < s.thrombocytopenia_scope_platelets:
        advice.insert(0, f"A pre-IVIG count of {s.pregnancy_less_likely_from:g}–100 was less likely to rise by ≥20.")
    yield r.finding(
        Indicator.INFO,
        f"IVIG response in pregnancy: {count} of 3 favourable predictors present (Khalife 2025).",
        evidence,
        advice,
    )


def _feature(observed: str, value: float, favourable_below: float, unit: str = "") -> tuple[bool, str]:
    """One KH25 predictor: whether it is present, and the value set against the study's cut-off."""
    present = value < favourable_below
    return present, f"{observed}: {'<' if present else '≥'} {favourable_below:g}{unit}"
