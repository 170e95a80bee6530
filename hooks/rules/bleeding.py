"""Bleeding with thrombocytopenia: the cards that matter most when minutes count."""

from __future__ import annotations

from collections.abc import Iterable

from hooks import suggestions as suggest
from hooks.citations import ASH19, ICR19, S001, S004
from hooks.facts import Bleeding, DataKind
from hooks.findings import Finding, Indicator, Suggestion
from hooks.orders import OrderKind
from hooks.rules.base import Rule, RuleContext, ctcae_grade, rule

_TREATMENTS = {
    OrderKind.IVIG: "IVIG",
    OrderKind.CORTICOSTEROID: "corticosteroid",
    OrderKind.PLATELET_TRANSFUSION: "platelet transfusion",
}


def _suggest_missing(ctx: RuleContext, kinds: list[OrderKind]) -> list[Suggestion]:
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
    trigger="critical bleeding (intracranial, or flagged life-threatening) and platelet count below 50",
    indicator="critical; info when IVIG, corticosteroid and platelet transfusion are all ordered",
    advice=(
        "give IVIG 1 g/kg with a corticosteroid and a platelet transfusion simultaneously; hematology "
        "consult; suggest whichever of the three is missing"
    ),
    citations=(S001, S004, ICR19),
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
    kinds, present = _triad(ctx)
    missing = [name for name, ordered in present.items() if not ordered]
    suggestions = _suggest_missing(ctx, kinds)
    grade = ctcae_grade(count.value)
    evidence = [
        ctx.platelet_line(count) + (f", CTCAE grade {grade}" if grade else ""),
        ctx.bleeding_line,
        _ordered_line(present),
    ]
    if present.get(_TREATMENTS[OrderKind.CORTICOSTEROID]) is False:
        evidence.extend(_local_steroid_note(ctx))
    if ctx.platelet_problem:
        evidence.append(f"Note: {ctx.platelet_problem}; a fresh CBC is needed but must not delay treatment")
    if ctx.neonate:
        advice = [
            "Transfuse platelets now (HPA-compatible if alloimmune thrombocytopenia is suspected) with IVIG.",
            "Do not withhold platelet transfusion during the IVIG infusion.",
            "Request an urgent neonatal hematology consultation.",
        ]
    else:
        advice = [
            "Give IVIG 1 g/kg, a corticosteroid (prednisone 1–2 mg/kg/day or IV methylprednisolone) and a "
            "platelet transfusion simultaneously; do not use IVIG alone.",
            "Do not withhold platelet transfusion during the IVIG infusion.",
            "Request an urgent hematology consultation.",
        ]
    if missing:
        summary = f"Life-threatening bleeding, platelets {count.value:g}: add {' and '.join(missing)} now."
        indicator = Indicator.CRITICAL
    else:
        ordered = ", ".join(present)
        summary = f"Life-threatening bleeding, platelets {count.value:g}: {ordered} all ordered."
        indicator = Indicator.INFO
    yield r.finding(indicator, summary[:140], evidence, advice, suggestions)


def _triad(ctx: RuleContext) -> tuple[list[OrderKind], dict[str, bool]]:
    """The treatments critical bleeding calls for, and which are ordered or active.

    The triad is the seeds' advice for ITP; a neonate's bleed is treated with (HPA-compatible)
    platelets and IVIG, and no corticosteroid is suggested for a newborn.
    """
    kinds = [k for k in _TREATMENTS if not (ctx.neonate and k is OrderKind.CORTICOSTEROID)]
    return kinds, {_TREATMENTS[k]: ctx.ordered_or_active(k) for k in kinds}


def _ordered_line(present: dict[str, bool]) -> str:
    return "Ordered or active: " + (", ".join(n for n, ok in present.items() if ok) or "none of the three")


def _critical_bleeding_unknown_count(ctx: RuleContext, r: Rule) -> Finding:
    """A critical bleed whose current count is not known: unreadable, none in the window, or the
    counts could not be retrieved. Each is said as it is; none is a reason for silence."""
    kinds, present = _triad(ctx)
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
        _ordered_line(present),
    ]
    advice = [
        "Get a platelet count now; do not let it delay treatment of the bleed.",
        f"Below {ctx.settings.critical_bleeding_platelets:g}: give IVIG 1 g/kg, a corticosteroid and a platelet "
        "transfusion simultaneously (for a neonate, HPA-compatible platelets with IVIG).",
        "Request an urgent hematology consultation.",
    ]
    cut = ctx.settings.critical_bleeding_platelets
    if all(present.values()):  # treatment is in hand: what is left is the count
        ordered = " and ".join(present)
        summary = f"Life-threatening bleeding, {state}: {ordered} ordered; count now."
        return r.finding(Indicator.INFO, summary[:140], evidence, advice)
    summary = f"Life-threatening bleeding, {state}: count now; treat if below {cut:g}."
    return r.finding(Indicator.CRITICAL, summary, evidence, advice, _suggest_missing(ctx, kinds))


@rule(
    "bleeding-with-low-platelets",
    title="Significant bleeding with platelets below 50",
    trigger="significant bleeding (GI, genitourinary, other needing intervention) and platelet count below 50",
    indicator="warning",
    advice="IVIG 1 g/kg with corticosteroids; add a platelet transfusion if the bleeding becomes life-threatening",
    citations=(S001, S004, ASH19),
)
def bleeding_with_low_platelets(ctx: RuleContext, r: Rule) -> Iterable[Finding]:
    if ctx.bleeding is not Bleeding.SIGNIFICANT or not (
        ctx.ivig_orders or ctx.targets_of(OrderKind.PLATELET_TRANSFUSION)
    ):
        return
    platelets = ctx.platelets
    if platelets is None or platelets >= ctx.settings.critical_bleeding_platelets:
        return
    suggestions = _suggest_missing(ctx, [OrderKind.IVIG, OrderKind.CORTICOSTEROID])
    grade = ctcae_grade(platelets)
    steroid = "corticosteroid ordered" if ctx.ordered_or_active(OrderKind.CORTICOSTEROID) else "no corticosteroid yet"
    yield r.finding(
        Indicator.WARNING,
        f"Bleeding with platelets {platelets:g}: give IVIG 1 g/kg with a corticosteroid ({steroid})."[:140],
        [ctx.platelet_line() + (f", CTCAE grade {grade}" if grade else ""), ctx.bleeding_line],
        [
            "Give IVIG 1 g/kg together with a corticosteroid (prednisone 1–2 mg/kg/day): the combination "
            "raises the count faster than either alone.",
            "Add a platelet transfusion if the bleeding becomes life-threatening.",
            "Recheck the platelet count within 24 hours.",
        ],
        suggestions,
    )
