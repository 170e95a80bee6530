"""IVIG regimens by indication (RULES.md v2), and whether an ordered course fits one.

Why: IVIG is mostly given for CIDP, immunodeficiency, Guillain–Barré and Kawasaki disease, not ITP.
Judging every order against the ITP doses put a warning on every correct CIDP order, which teaches
clinicians to ignore the service. Each regimen here is the label's or the guideline's, checked
against the primary source it cites:

- ITP: 1 g/kg on 1–2 days, or 0.4 g/kg/day on 2–5 days (LABEL: 1 g/kg × 2 days; SMPC: 0.8–1 g/kg on
  day 1, may be repeated once within 3 days, or 0.4 g/kg/day × 2–5 days); children 0.8–1 g/kg once
  (ASH19). The ITP numbers are the deployment's settings.
- Guillain–Barré syndrome: 0.4 g/kg/day × 5 days (SMPC).
- Kawasaki disease: 2 g/kg once, or 1.6–2 g/kg divided over 2–5 days (AHA17; SMPC).
- CIDP: loading 2 g/kg over 2–5 consecutive days; maintenance 1 g/kg every 3 weeks over 1–2 days
  (LABEL, Privigen and Gamunex-C; SMPC).
- Primary immunodeficiency: 0.2–0.8 g/kg every 3–4 weeks (LABEL; SMPC).

An ordered course is per kg: the daily dose, the consecutive dosing days of one cycle, and for a
maintenance schedule the interval between cycles. A single infusion of a maintenance regimen's
cycle (one CIDP maintenance dose ordered on its own) fits that regimen: its interval is not stated,
not wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from hooks.citations import AHA17, ASH19, LABEL, SMPC, Citation
from hooks.dose_rounding import number_text
from hooks.settings import RuleSettings


class Indication(StrEnum):
    ITP = "ITP"
    GUILLAIN_BARRE = "Guillain–Barré syndrome"
    KAWASAKI = "Kawasaki disease"
    CIDP = "CIDP"
    PRIMARY_IMMUNODEFICIENCY = "primary immunodeficiency"


@dataclass(frozen=True)
class Course:
    """An ordered IVIG course per kg of dosing weight."""

    daily_g_per_kg: float
    days: int  # consecutive dosing days of one cycle
    interval_days: float | None  # from one cycle to the next; None: one cycle only
    cycles: int | None  # None: open-ended (a maintenance order with no end)

    @property
    def cycle_g_per_kg(self) -> float:
        return self.daily_g_per_kg * self.days


@dataclass(frozen=True)
class Regimen:
    indication: Indication
    name: str  # "CIDP maintenance"
    text: str  # "1 g/kg every 3 weeks over 1–2 days"
    citations: tuple[Citation, ...]
    days: tuple[int, int]
    daily: tuple[float, float] | None = None  # g/kg per dosing day
    cycle: tuple[float, float] | None = None  # g/kg per cycle
    interval: tuple[float, float] | None = None  # days between cycles; None: a single course
    children_only: bool = False

    def fits(self, course: Course, tolerance: float) -> bool:
        """Within the regimen, each amount allowed `tolerance` (a fraction) either way."""
        if not self.days[0] <= course.days <= self.days[1]:
            return False
        if self.daily and not _within(course.daily_g_per_kg, self.daily, tolerance):
            return False
        if self.cycle and not _within(course.cycle_g_per_kg, self.cycle, tolerance):
            return False
        repeats = course.interval_days is not None and course.cycles != 1
        if self.interval is None:
            return not repeats
        return not repeats or _within(course.interval_days or 0.0, self.interval, tolerance)


def _within(value: float, bounds: tuple[float, float], tolerance: float) -> bool:
    low, high = bounds
    return low * (1 - tolerance) - 1e-9 <= value <= high * (1 + tolerance) + 1e-9


@lru_cache(maxsize=8)
def regimens(settings: RuleSettings) -> tuple[Regimen, ...]:
    """Every label regimen; the ITP ones from the deployment's settings (built once per settings)."""
    rapid, standard = settings.rapid_dose_g_per_kg, settings.standard_daily_dose_g_per_kg
    child_low = settings.pediatric_min_dose_g_per_kg
    return (
        Regimen(
            Indication.ITP,
            "ITP",
            f"{number_text(rapid)} g/kg on 1–2 days",
            (LABEL, SMPC),
            days=(1, 2),
            daily=(rapid, rapid),
        ),
        Regimen(
            Indication.ITP,
            "ITP",
            f"{number_text(standard)} g/kg/day on 2–5 days",
            (SMPC,),
            days=(2, 5),
            daily=(standard, standard),
        ),
        Regimen(
            Indication.ITP,
            "ITP (child)",
            f"{number_text(child_low)}–{number_text(rapid)} g/kg once",
            (ASH19,),
            days=(1, 1),
            daily=(child_low, rapid),
            children_only=True,
        ),
        Regimen(
            Indication.GUILLAIN_BARRE,
            "Guillain–Barré",
            "0.4 g/kg/day × 5 days",
            (SMPC,),
            days=(5, 5),
            daily=(0.4, 0.4),
        ),
        Regimen(Indication.KAWASAKI, "Kawasaki", "2 g/kg once", (AHA17, SMPC), days=(1, 1), daily=(2.0, 2.0)),
        Regimen(
            Indication.KAWASAKI,
            "Kawasaki",
            "1.6–2 g/kg over 2–5 days",
            (SMPC,),
            days=(2, 5),
            cycle=(1.6, 2.0),
        ),
        Regimen(
            Indication.CIDP,
            "CIDP loading",
            "2 g/kg over 2–5 days",
            (LABEL, SMPC),
            days=(2, 5),
            cycle=(2.0, 2.0),
        ),
        Regimen(
            Indication.CIDP,
            "CIDP maintenance",
            "1 g/kg every 3 weeks over 1–2 days",
            (LABEL, SMPC),
            days=(1, 2),
            cycle=(1.0, 1.0),
            interval=(21.0, 21.0),
        ),
        Regimen(
            Indication.PRIMARY_IMMUNODEFICIENCY,
            "primary immunodeficiency",
            "0.2–0.8 g/kg every 3–4 weeks",
            (LABEL, SMPC),
            days=(1, 1),
            daily=(0.2, 0.8),
            interval=(21.0, 28.0),
        ),
    )


def regimens_for(indications: frozenset[Indication], settings: RuleSettings, *, child: bool) -> list[Regimen]:
    return [r for r in regimens(settings) if r.indication in indications and (child or not r.children_only)]


def fitting(
    course: Course, indications: frozenset[Indication], settings: RuleSettings, *, child: bool
) -> list[Regimen]:
    tolerance = settings.dose_tolerance_fraction
    return [r for r in regimens_for(indications, settings, child=child) if r.fits(course, tolerance)]


def describe(found: list[Regimen]) -> str:
    """ "ITP: 1 g/kg on 1–2 days, or 0.4 g/kg/day on 2–5 days" — regimens grouped by indication."""
    by_name: dict[str, list[str]] = {}
    for regimen in found:
        by_name.setdefault(regimen.name.split(" (")[0], []).append(regimen.text)
    return "; ".join(f"{name}: {', or '.join(texts)}" for name, texts in by_name.items())
