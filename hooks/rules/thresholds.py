"""Where the count stands against the ASH 2019 treatment thresholds for ITP (adults)."""

from __future__ import annotations

from collections.abc import Iterable

from hooks.citations import ASH19, CTCAE5, S000, S001, S004
from hooks.findings import Finding, Indicator
from hooks.rules.base import Rule, RuleContext, ctcae_grade, rule


@rule(
    "treatment-threshold",
    title="ITP treatment threshold (adults)",
    trigger="ITP-directed IVIG in an adult without significant bleeding, fresh platelet count below 100",
    indicator="info",
    advice=(
        "below 30: corticosteroids first-line, IVIG when a rapid rise is needed (below 20 and newly diagnosed: "
        "consider admission); 30 to below 100: observation favoured, IVIG only for a rapid need (procedure, delivery)"
    ),
    citations=(ASH19, S001, S004, CTCAE5),
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
    if ctx.rapid_rise_reasons:
        evidence.append("Rapid rise needed: " + "; ".join(ctx.rapid_rise_reasons))
    if platelets < s.corticosteroid_first_platelets:
        summary = (
            f"Platelets {platelets:g} (grade {grade}), no bleeding: corticosteroids are first-line; "
            "IVIG for a rapid rise."
        )
        advice = [
            f"ASH 2019: below {s.corticosteroid_first_platelets:g} ×10⁹/L, treat; corticosteroids are first-line.",
            "IVIG (1 g/kg) is added when a rapid rise is needed, or used when corticosteroids are contraindicated.",
        ]
        if platelets < s.admission_platelets and newly:
            advice.append(f"Newly diagnosed with a count below {s.admission_platelets:g}: consider admission.")
    else:
        summary = (
            f"Platelets {platelets:g} (grade {grade}), no bleeding: observation is favoured; "
            "IVIG only for a rapid need."
        )
        advice = [
            f"ASH 2019: at {s.corticosteroid_first_platelets:g} ×10⁹/L or more without bleeding, "
            "observation is favoured.",
            "IVIG is reserved for a rapid-rise need such as a procedure or delivery.",
        ]
    yield r.finding(Indicator.INFO, summary[:140], evidence, advice)


@rule(
    "no-thrombocytopenia",
    title="ITP-directed IVIG with a normal platelet count",
    trigger="ITP-directed IVIG and fresh platelet count of 100 or more",
    indicator="info",
    advice="confirm the indication",
    citations=(S000, ASH19),
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
            "IVIG for ITP is given to raise a low count; at 100 ×10⁹/L or more there is no thrombocytopenia to treat.",
            "If IVIG is for another indication, record it as the order's reason.",
        ],
    )
