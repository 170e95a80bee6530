"""Where the count stands against the ASH 2019 treatment thresholds for ITP (adults)."""

from __future__ import annotations

from collections.abc import Iterable

from hooks.citations import ASH11, ASH19, CTCAE5
from hooks.facts import Flag
from hooks.findings import Finding, Indicator
from hooks.rules.base import Rule, RuleContext, ctcae_grade, rule
from hooks.wording import first_fitting


@rule(
    "treatment-threshold",
    title="ITP treatment threshold (adults)",
    trigger=(
        "ITP-directed IVIG in an adult without significant bleeding, fresh platelet count below "
        "{thrombocytopenia_scope_platelets:g}"
    ),
    indicator="info",
    advice=(
        "below {corticosteroid_first_platelets:g}: corticosteroids first-line, IVIG when a rapid rise is needed "
        "(below {admission_platelets:g} and newly diagnosed: consider admission); {corticosteroid_first_platelets:g} "
        "to below {thrombocytopenia_scope_platelets:g}: observation favoured, IVIG only for a rapid need (procedure, "
        "delivery within {delivery_horizon_days} days); HIV-associated ITP: antiretrovirals first, then "
        "corticosteroids or IVIG; HCV-associated ITP: IVIG is the initial treatment"
    ),
    citations=(ASH19, ASH11, CTCAE5),
)
def treatment_threshold(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    s = ctx.settings
    platelets = ctx.platelets
    if not ctx.itp_directed or not ctx.adult or not ctx.no_bleeding:
        return
    if platelets is None or platelets >= s.thrombocytopenia_scope_platelets:
        return
    grade = ctcae_grade(platelets)
    evidence = [ctx.platelet_line() + (f", CTCAE grade {grade}" if grade else ""), ctx.bleeding_line]
    newly = ctx.newly_diagnosed_itp  # by onset, never by the day ITP was entered (RULES.md v2 "Dates")
    if ctx.itp_diagnosis_line:
        evidence.append(ctx.itp_diagnosis_line)
    rapid = ctx.rapid_rise_reasons
    if rapid:
        evidence.append("Rapid rise needed: " + "; ".join(rapid))
    head = f"Platelets {platelets:g} (grade {grade}), {ctx.no_bleeding_words}"
    low = platelets < s.corticosteroid_first_platelets
    # Secondary ITP changes the first-line treatment (ASH 2011): the framing must agree with the
    # secondary-itp card beside it, never "corticosteroids first-line" next to "antiretrovirals first".
    if ctx.facts.has(Flag.HIV):
        summary = f"{head}, HIV-associated ITP: antiretrovirals first; corticosteroids or IVIG once they are in place."
        advice = [
            "ASH: in HIV-associated ITP without significant bleeding, treat HIV with antiretrovirals first.",
            "If ITP treatment is needed once antiretrovirals are in place, corticosteroids, IVIG or anti-D are "
            "options.",
        ]
        cited = (ASH11, CTCAE5)
    elif ctx.facts.has(Flag.HCV):
        summary = f"{head}, HCV-associated ITP: IVIG is the initial treatment if ITP therapy is needed."
        advice = [
            "ASH: in HCV-associated ITP that needs treatment, IVIG is the initial treatment (corticosteroids may "
            "raise the viral load).",
            "Treat the hepatitis C itself.",
        ]
        cited = (ASH11, CTCAE5)
    elif low:
        summary = (
            f"{head}; rapid rise needed: corticosteroids with IVIG."
            if rapid
            else f"{head}: corticosteroids are first-line; IVIG for a rapid rise."
        )
        advice = [
            f"ASH 2019: below {s.corticosteroid_first_platelets:g} ×10⁹/L, treat; corticosteroids are first-line.",
            "IVIG (1 g/kg) is added when a rapid rise is needed, or used when corticosteroids are contraindicated.",
        ]
        cited = (ASH19, CTCAE5)
    elif rapid:
        # A procedure, an urgent order or a delivery within the horizon: "observation is favoured" would
        # contradict the reason the IVIG is ordered (and the pregnancy card beside it).
        summary = f"{head}; rapid rise needed ({rapid[0]}): IVIG is appropriate."
        advice = [
            f"ASH 2019: at {s.corticosteroid_first_platelets:g} ×10⁹/L or more without bleeding, IVIG is for a "
            "rapid-rise need, as here.",
            "IVIG raises the count within days for a procedure or delivery; recheck the count before it.",
        ]
        cited = (ASH19, CTCAE5)
    else:
        summary = f"{head}: observation is favoured; IVIG only for a rapid need."
        advice = [
            f"ASH 2019: at {s.corticosteroid_first_platelets:g} ×10⁹/L or more without bleeding, "
            "observation is favoured.",
            "IVIG is reserved for a rapid-rise need such as a procedure or delivery.",
        ]
        cited = (ASH19, CTCAE5)
    if low and platelets < s.admission_platelets and newly:
        advice.append(f"Newly diagnosed with a count below {s.admission_platelets:g}: consider admission.")
    yield r.finding(
        Indicator.INFO,
        first_fitting(summary, summary.replace(f" ({rapid[0]})", "") if rapid else summary),
        evidence,
        advice,
        citations=cited,
    )


@rule(
    "no-thrombocytopenia",
    title="ITP-directed IVIG with a normal platelet count",
    trigger="ITP-directed IVIG and fresh platelet count of {thrombocytopenia_scope_platelets:g} or more",
    indicator="info",
    advice="confirm the indication",
    citations=(ASH19,),
)
def no_thrombocytopenia(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    platelets = ctx.platelets
    if not ctx.itp_directed or platelets is None or platelets < ctx.settings.thrombocytopenia_scope_platelets:
        return
    yield r.finding(
        Indicator.INFO,
        f"Platelets {platelets:g}: no thrombocytopenia. Confirm the indication for IVIG.",
        [ctx.platelet_line()],
        [
            f"IVIG for ITP is given to raise a low count; at {ctx.settings.thrombocytopenia_scope_platelets:g} ×10⁹/L "
            "or more there is no thrombocytopenia to treat.",
            "If IVIG is for another indication, record it as the order's reason.",
        ],
    )
