"""Bleeding with thrombocytopenia: the cards that matter most when minutes count."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from hooks import suggestions as suggest
from hooks.citations import ASH18, ASH19, ICR19, NEONATAL87, Citation
from hooks.facts import Bleeding, DataKind, Flag
from hooks.findings import Finding, Indicator, Suggestion
from hooks.orders import OrderKind
from hooks.rules.base import Rule, RuleContext, ctcae_grade, rule
from hooks.wording import and_join, first_fitting

_TREATMENTS = {
    OrderKind.IVIG: "IVIG",
    OrderKind.CORTICOSTEROID: "corticosteroid",
    OrderKind.PLATELET_TRANSFUSION: "platelet transfusion",
}


class Cause(StrEnum):
    """What the low count is, as far as the treatment of a critical bleed depends on it (RULES.md v2)."""

    IMMUNE = "immune thrombocytopenia"  # ITP, or thrombocytopenia no other cause on record explains
    HIT = "heparin-induced thrombocytopenia"
    NEONATE = "neonate"
    NON_IMMUNE = "sepsis or DIC"


def cause_of(ctx: RuleContext) -> Cause:
    flags = ctx.facts.flags
    if Flag.HIT in flags:
        return Cause.HIT
    if ctx.neonate:
        return Cause.NEONATE
    if Flag.ITP not in flags and flags & {Flag.SEPSIS, Flag.DIC}:
        return Cause.NON_IMMUNE
    return Cause.IMMUNE


# What a critical bleed is treated with, by cause: the IVIG + corticosteroid + platelets triad is the
# advice for immune thrombocytopenia; in HIT platelets for the bleed, no corticosteroid, IVIG only as
# hit-ivig frames it; in a neonate HPA-compatible platelets and IVIG, no corticosteroid; with sepsis or
# DIC platelets for the bleed while the cause is treated.
NEEDED: dict[Cause, tuple[OrderKind, ...]] = {
    Cause.IMMUNE: (OrderKind.IVIG, OrderKind.CORTICOSTEROID, OrderKind.PLATELET_TRANSFUSION),
    Cause.NEONATE: (OrderKind.IVIG, OrderKind.PLATELET_TRANSFUSION),
    Cause.HIT: (OrderKind.PLATELET_TRANSFUSION,),
    Cause.NON_IMMUNE: (OrderKind.PLATELET_TRANSFUSION,),
}


def _advice(ctx: RuleContext, cause: Cause) -> list[str]:
    cut = ctx.settings.critical_bleeding_platelets
    if cause is Cause.NEONATE:
        return [
            "Transfuse platelets now (HPA-compatible if alloimmune thrombocytopenia is suspected) with IVIG; "
            "no corticosteroid for a newborn.",
            "Do not withhold platelet transfusion during the IVIG infusion.",
            "Request an urgent neonatal hematology consultation.",
        ]
    if cause is Cause.HIT:
        return [
            "Transfuse platelets for the life-threatening bleed; in HIT a corticosteroid does not help.",
            "IVIG is not part of bleeding treatment in HIT: it is an adjunct for refractory HIT only "
            "(see the HIT card).",
            "Stop every heparin; decide on non-heparin anticoagulation with hematology given the bleed.",
        ]
    if cause is Cause.NON_IMMUNE:
        return [
            "Transfuse platelets for the life-threatening bleed and treat the sepsis or DIC.",
            "IVIG and corticosteroids treat immune thrombocytopenia, which is not on record here.",
            "Request an urgent hematology consultation.",
        ]
    return [
        f"Below {cut:g}: give IVIG 1 g/kg, a corticosteroid (prednisone 1–2 mg/kg/day or IV methylprednisolone) "
        "and a platelet transfusion simultaneously; do not use IVIG alone.",
        "Do not withhold platelet transfusion during the IVIG infusion.",
        "Request an urgent hematology consultation.",
    ]


_CITED: dict[Cause, tuple[Citation, ...]] = {
    Cause.IMMUNE: (ICR19,),
    Cause.NEONATE: (NEONATAL87,),
    Cause.HIT: (ASH18,),
    Cause.NON_IMMUNE: (ICR19,),
}


def _suggest_missing(ctx: RuleContext, kinds: Iterable[OrderKind]) -> list[Suggestion]:
    """An order for each of `kinds` that is neither drafted nor active, dosed by the dosing weight."""
    weight = ctx.dosing_weight.kg if ctx.dosing_weight else None
    s = ctx.settings
    make = {
        OrderKind.IVIG: lambda: suggest.new_ivig(ctx.facts, weight, s.rapid_dose_g_per_kg),
        OrderKind.CORTICOSTEROID: lambda: suggest.prednisone(ctx.facts, weight, s.prednisone_mg_per_kg_day),
        OrderKind.PLATELET_TRANSFUSION: lambda: suggest.platelet_transfusion(ctx.facts),
    }
    return [make[kind]() for kind in kinds if not ctx.ordered_or_active(kind)]


def _local_steroid_note(ctx: RuleContext) -> list[str]:
    """Why an ordered eye drop, cream or inhaler is not "the corticosteroid": said, so it reads as no oversight."""
    if not ctx.ordered_or_active(OrderKind.LOCAL_CORTICOSTEROID):
        return []
    return [
        "Not counted: a corticosteroid for local use (eye, skin, airway...) is ordered or active; "
        "a systemic one is needed"
    ]


@rule(
    "critical-bleeding",
    title="Life-threatening bleeding with low platelets",
    trigger=(
        "critical bleeding (intracranial, or flagged life-threatening) and platelet count below "
        "{critical_bleeding_platelets:g}, or no usable current count"
    ),
    indicator="critical; info when every treatment the cause calls for is ordered",
    advice=(
        "immune thrombocytopenia: IVIG 1 g/kg with a corticosteroid and a platelet transfusion simultaneously; "
        "HIT: platelet transfusion, no corticosteroid, IVIG only as hit-ivig frames it; neonate: HPA-compatible "
        "platelets and IVIG, no corticosteroid; sepsis or DIC: platelet transfusion and treat the cause; hematology "
        "consult; suggest whichever is missing"
    ),
    citations=(ICR19, ASH18, NEONATAL87),
)
def critical_bleeding(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    if ctx.bleeding is not Bleeding.CRITICAL:
        return
    if not (ctx.ivig_orders or ctx.targets_of(OrderKind.PLATELET_TRANSFUSION)):
        return
    count = ctx.latest_valid_platelets
    newest = ctx.latest_platelets
    # The newest count cannot be read (unknown unit, implausible value), or there is no count in the
    # window read (none on record, none recent, none retrievable): an older usable count says nothing
    # about now, so a critical bleed is carded with the count unknown, never left silent.
    if newest is None or newest.value is None:
        yield _critical_bleeding_unknown_count(ctx, r)
        return
    if count is None or count.value is None or count.value >= ctx.settings.critical_bleeding_platelets:
        return
    cause = cause_of(ctx)
    kinds, present = _triad(ctx, cause)
    missing = [name for name, ordered in present.items() if not ordered]
    suggestions = _suggest_missing(ctx, kinds)
    grade = ctcae_grade(count.value)
    evidence = [
        ctx.platelet_line(count) + (f", CTCAE grade {grade}" if grade else ""),
        ctx.bleeding_line,
        f"Cause on record: {cause.value}",
        _ordered_line(present),
        *_beside(ctx, cause),
    ]
    if present.get(_TREATMENTS[OrderKind.CORTICOSTEROID]) is False:
        evidence.extend(_local_steroid_note(ctx))
    if ctx.platelet_problem:
        evidence.append(f"Note: {ctx.platelet_problem}; a fresh CBC is needed but must not delay treatment")
    head = f"Life-threatening bleeding, platelets {count.value:g}: "
    if missing:
        summary = first_fitting(f"{head}add {and_join(missing)} now.")
        indicator = Indicator.CRITICAL
    else:
        summary = first_fitting(f"{head}{and_join(list(present))} ordered.")
        indicator = Indicator.INFO
    yield r.finding(indicator, summary, evidence, _advice(ctx, cause), suggestions, citations=_CITED[cause])


def _beside(ctx: RuleContext, cause: Cause) -> list[str]:
    """An IVIG order a cause's bleeding treatment does not include, said so it is not read as endorsed."""
    if cause is Cause.HIT and ctx.ordered_or_active(OrderKind.IVIG):
        return ["IVIG is ordered: in HIT it is not bleeding treatment (adjunct for refractory HIT only)"]
    if cause is Cause.NON_IMMUNE and ctx.ordered_or_active(OrderKind.IVIG):
        return ["IVIG is ordered: it does not treat thrombocytopenia of sepsis or DIC"]
    return []


def _triad(ctx: RuleContext, cause: Cause) -> tuple[tuple[OrderKind, ...], dict[str, bool]]:
    """The treatments a critical bleed calls for given its cause, and which are ordered or active."""
    kinds = NEEDED[cause]
    return kinds, {_TREATMENTS[k]: ctx.ordered_or_active(k) for k in kinds}


def _ordered_line(present: dict[str, bool]) -> str:
    ordered = [n for n, ok in present.items() if ok]
    return f"Needed: {and_join(list(present))}; ordered or active: {and_join(ordered) if ordered else 'none'}"


def _critical_bleeding_unknown_count(ctx: RuleContext, r: Rule) -> Finding:
    """A critical bleed whose current count is not known: unreadable, none in the window, or the
    counts could not be retrieved. Each is said as it is; none is a reason for silence."""
    cause = cause_of(ctx)
    kinds, present = _triad(ctx, cause)
    older = ctx.latest_valid_platelets
    newest = ctx.latest_platelets
    if newest is not None:
        state, note = (
            "newest platelet count unreadable",
            f"Note: {ctx.platelet_problem or 'the newest count cannot be used'}",
        )
    elif ctx.lacks(DataKind.PLATELETS):
        state, note = "platelet counts not retrieved", "Note: the platelet counts could not be retrieved"
    else:
        state, note = "no recent platelet count", "Note: no platelet count in the window read"
    evidence = [
        ctx.platelet_line(),
        note,
        ctx.platelet_line(older).replace("Platelet count:", "Older usable count:") if older else "No usable count",
        ctx.bleeding_line,
        f"Cause on record: {cause.value}",
        _ordered_line(present),
        *_beside(ctx, cause),
    ]
    advice = ["Get a platelet count now; do not let it delay treatment of the bleed.", *_advice(ctx, cause)]
    cut = ctx.settings.critical_bleeding_platelets
    if all(present.values()):  # treatment is in hand: what is left is the count
        summary = first_fitting(f"Life-threatening bleeding, {state}: {and_join(list(present))} ordered; count now.")
        return r.finding(Indicator.INFO, summary, evidence, advice, citations=_CITED[cause])
    summary = f"Life-threatening bleeding, {state}: count now; treat if below {cut:g}."
    return r.finding(
        Indicator.CRITICAL, summary, evidence, advice, _suggest_missing(ctx, kinds), citations=_CITED[cause]
    )


@rule(
    "bleeding-with-low-platelets",
    title="Significant bleeding with platelets below 50",
    trigger=(
        "significant bleeding (GI, genitourinary, other needing intervention) and platelet count below "
        "{critical_bleeding_platelets:g}, in immune thrombocytopenia"
    ),
    indicator="warning",
    advice="IVIG 1 g/kg with corticosteroids; add a platelet transfusion if the bleeding becomes life-threatening",
    citations=(ASH19, ICR19),
)
def bleeding_with_low_platelets(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    if ctx.bleeding is not Bleeding.SIGNIFICANT or not (
        ctx.ivig_orders or ctx.targets_of(OrderKind.PLATELET_TRANSFUSION)
    ):
        return
    if cause_of(ctx) is not Cause.IMMUNE:
        return  # IVIG with a corticosteroid treats immune thrombocytopenia; HIT, sepsis, neonates: their own cards
    platelets = ctx.platelets
    if platelets is None or platelets >= ctx.settings.critical_bleeding_platelets:
        return
    suggestions = _suggest_missing(ctx, [OrderKind.IVIG, OrderKind.CORTICOSTEROID])
    grade = ctcae_grade(platelets)
    steroid = "corticosteroid ordered" if ctx.ordered_or_active(OrderKind.CORTICOSTEROID) else "no corticosteroid yet"
    yield r.finding(
        Indicator.WARNING,
        f"Bleeding with platelets {platelets:g}: give IVIG 1 g/kg with a corticosteroid ({steroid}).",
        [ctx.platelet_line() + (f", CTCAE grade {grade}" if grade else ""), ctx.bleeding_line],
        [
            "Give IVIG 1 g/kg together with a corticosteroid (prednisone 1–2 mg/kg/day): the combination "
            "raises the count faster than either alone.",
            "Add a platelet transfusion if the bleeding becomes life-threatening.",
            "Recheck the platelet count within 24 hours.",
        ],
        suggestions,
    )
