"""Patients whose thrombocytopenia is not adult primary ITP: sepsis, neonates, children, secondary ITP."""

from __future__ import annotations

from collections.abc import Iterable

from hooks.citations import ASH11, ASH19, ICR19, LABEL, NEONATAL87, SEPSIS91
from hooks.facts import Bleeding, Flag
from hooks.findings import Finding, Indicator
from hooks.orders import OrderKind
from hooks.rules.base import Rule, RuleContext, rule
from hooks.wording import with_free_text


@rule(
    "sepsis",
    title="IVIG for thrombocytopenia in sepsis",
    trigger=(
        "sepsis (SNOMED 91302008 or 76571007 septic shock; ICD-10 A41, R65.2, R57.2, P36) and IVIG for thrombocytopenia"
    ),
    indicator="info; warning with DIC (ICD-10 D65, SNOMED 67406007)",
    advice="only small trial data (0.4 g/kg × 3 days, without DIC); not a rapid-regimen case",
    citations=(SEPSIS91,),
)
def sepsis(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    if not ctx.facts.has(Flag.SEPSIS) or not ctx.ivig_orders or not ctx.thrombocytopenia_context:
        return
    dic = ctx.facts.has(Flag.DIC)
    evidence = [ctx.platelet_line(), "Sepsis: on record", "DIC: on record" if dic else "DIC: not on record"]
    advice = [
        "Evidence is a small trial of IVIG 0.4 g/kg daily for 3 days in septic patients without DIC.",
        "Treat the sepsis; IVIG is not an established treatment of septic thrombocytopenia.",
    ]
    if dic:
        advice.insert(0, "With DIC there is no trial support for IVIG; manage DIC (source control, blood products).")
    yield r.finding(
        Indicator.WARNING if dic else Indicator.INFO,
        (
            "Sepsis with DIC: no evidence supports IVIG for this thrombocytopenia."
            if dic
            else "Sepsis: IVIG for thrombocytopenia rests on small trial data (0.4 g/kg × 3 days, no DIC)."
        ),
        evidence,
        advice,
    )


@rule(
    "neonatal",
    title="Neonatal thrombocytopenia",
    trigger="age below {neonate_max_age_days} days and IVIG or a platelet transfusion ordered",
    indicator="info",
    advice=(
        "alloimmune thrombocytopenia: HPA-compatible platelets first, IVIG as adjunct; 0.4 g/kg/day × 5 is the "
        "regimen of the neonatal case series"
    ),
    citations=(NEONATAL87,),
)
def neonatal(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    if not ctx.neonate or not (ctx.ivig_orders or ctx.targets_of(OrderKind.PLATELET_TRANSFUSION)):
        return
    yield r.finding(
        Indicator.INFO,
        f"Neonate (day {ctx.facts.age_days}): HPA-compatible platelets first if alloimmune; IVIG is an adjunct.",
        [ctx.platelet_line(), f"Age: {ctx.facts.age_days} days"],
        [
            "In neonatal alloimmune thrombocytopenia give HPA-compatible platelets first; IVIG is an adjunct.",
            "IVIG 0.4 g/kg/day for 5 days raised counts by about 21 ×10⁹/L at 24 h and 33 ×10⁹/L at 48 h.",
            "Adult rapid-regimen advice does not apply to neonates.",
        ],
    )


@rule(
    "pediatric-itp",
    title="ITP in a child without significant bleeding",
    trigger="age below {adult_age_years}, ITP, no or skin-only bleeding (not in HIT)",
    indicator="info",
    advice="observation is advised regardless of count; if treating, IVIG 0.8–1 g/kg as a single dose",
    citations=(ASH19, ICR19),
)
def pediatric_itp(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    if ctx.adult or ctx.neonate or not ctx.facts.has(Flag.ITP) or not ctx.ivig_orders:
        return
    if ctx.facts.has(Flag.HIT):
        return  # HIT frames IVIG (hit-ivig): "observation is advised" would speak past it
    if not ctx.no_bleeding or ctx.facts.minor_bleeding:
        return  # ASH19's observation advice is for no or skin-only bleeding, not a nosebleed or bleeding gums
    yield r.finding(
        Indicator.INFO,
        "Child with ITP and no or skin-only bleeding: observation is advised whatever the count.",
        [ctx.platelet_line(), ctx.bleeding_line, f"Age: {ctx.facts.age_years} years"],
        [
            "ASH 2019 suggests observation for children with no or only skin bleeding, regardless of the count.",
            "If treatment is chosen, IVIG 0.8–1 g/kg as a single dose.",
        ],
    )


@rule(
    "secondary-itp",
    title="ITP secondary to HCV or HIV",
    trigger="HCV- or HIV-associated ITP and IVIG ordered",
    indicator="info",
    advice="HCV: IVIG as initial treatment; HIV: antiretrovirals first unless significant bleeding",
    citations=(ASH11,),
)
def secondary_itp(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    facts = ctx.facts
    if not ctx.ivig_orders or not (facts.has(Flag.ITP) or facts.has(Flag.THROMBOCYTOPENIA)):
        return
    if facts.has(Flag.HCV):
        evidence = facts.evidence_for(Flag.HCV)
        yield r.finding(
            Indicator.INFO,
            "HCV-associated ITP: IVIG is the preferred initial treatment if ITP therapy is needed.",
            [f"On record: {evidence.text if evidence else 'hepatitis C'}", ctx.platelet_line()],
            ["In HCV-associated ITP, IVIG is the initial treatment when ITP therapy is required; treat the HCV."],
        )
    if facts.has(Flag.HIV):
        significant = ctx.bleeding >= Bleeding.SIGNIFICANT
        yield r.finding(
            Indicator.INFO,
            (
                "HIV-associated ITP with significant bleeding: ITP treatment (IVIG) is appropriate now."
                if significant
                else "HIV-associated ITP: treat HIV with antiretrovirals first unless bleeding is significant."
            ),
            ["On record: HIV", ctx.bleeding_line, ctx.platelet_line()],
            [
                "Antiretroviral therapy treats HIV-associated ITP; corticosteroids, IVIG or anti-D if ITP "
                "treatment is needed."
            ],
        )


@rule(
    "subcutaneous-ig",
    title="Subcutaneous immune globulin ordered for ITP",
    trigger="subcutaneous immune globulin ordered for ITP or thrombocytopenia",
    indicator="info",
    advice="subcutaneous immune globulin is not a treatment for ITP; use IVIG",
    citations=(LABEL,),
)
def subcutaneous_ig(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    orders = ctx.targets_of(OrderKind.SUBCUTANEOUS_IG)
    if not orders or not ctx.thrombocytopenia_context:
        return
    for order in orders:
        yield r.finding(
            Indicator.INFO,
            with_free_text("", order.label or "Subcutaneous immune globulin", " is not indicated for ITP; IVIG is."),
            [f"Order: {order.label or order.reference}", ctx.platelet_line()],
            ["Subcutaneous immune globulin products are labelled for immunodeficiency, not for ITP."],
            order=order.reference,
        )
