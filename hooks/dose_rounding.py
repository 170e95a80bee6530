"""Dose arithmetic: a computed dose rounded to what a pharmacy can give, and weights shown one way.

Why a module of its own (RULES.md v2 "Dose arithmetic"): whole-gram and 5 mg rounding gave a 0.6 kg
infant "IVIG 1 g" (1.7 g/kg), a 0.4 kg infant "0 g" and a 2 kg infant "prednisone 0 mg". Every dose a
card shows or suggests goes through `round_dose`, so no rule can round its own way again:

- IVIG to 0.1 g below 10 g, to 0.5 g up to 50 g, to 5 g above;
- corticosteroids to 1 mg below 10 mg, to 5 mg from 10 mg (tablet strengths);
- never 0 and never more than 10 % off the mg/kg target because of rounding: when the usual step
  would be, a finer step is used (and said), since a tiny patient's dose is drawn up by volume.

`kg_text` is the one spelling of a weight, so a summary can never say "1 kg" where the detail says
"1.4 kg".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

#: Rounding may move a dose at most this far from its target (a fraction of the target).
MAX_ROUNDING_ERROR = 0.10

# (below this amount, step), in the dose's unit; the last band is open-ended. The IVIG bands are
# RULES.md's (0.1 g below 10 g, 0.5 g up to 50 g, 5 g above); 50 g itself is in the 0.5 g band.
IVIG_STEPS_G: tuple[tuple[float, float], ...] = ((10.0, 0.1), (50.0 + 1e-9, 0.5), (float("inf"), 5.0))
STEROID_STEPS_MG: tuple[tuple[float, float], ...] = ((10.0, 1.0), (float("inf"), 5.0))
# Finer steps tried in turn when the usual one would round to 0 or more than 10 % off.
FINER_STEPS: tuple[float, ...] = (1.0, 0.5, 0.1, 0.05, 0.01, 0.005, 0.001)


@dataclass(frozen=True)
class RoundedDose:
    """A dose as a pharmacy gives it, with the target it was rounded from and how."""

    amount: float
    unit: str  # "g" or "mg"
    target: float
    step: float

    @property
    def text(self) -> str:
        return f"{number_text(self.amount)} {self.unit}"

    usual_step: float = 0.0  # the band's step, when a finer one had to be used

    @property
    def rounding(self) -> str:
        """How it was rounded, for the card ("rounded to the nearest 0.5 g from 12.6 g")."""
        step = f"{number_text(self.step)} {self.unit}"
        if self.usual_step > self.step:
            why = f"; {number_text(self.usual_step)} {self.unit} steps would be 0 or over 10 % off"
        else:
            why = ""
        if _same(self.amount, self.target):
            return f"no rounding needed at {step} steps{why}"
        return f"rounded to the nearest {step} from {self.target:.3g} {self.unit}{why}"


def round_dose(target: float, unit: str, steps: tuple[tuple[float, float], ...]) -> RoundedDose:
    """`target` rounded by the band it falls in, or by a finer step when that band's would be 0 or
    more than `MAX_ROUNDING_ERROR` off. A target of 0 or less is a caller's error, never a dose."""
    if not target > 0:
        raise ValueError(f"a dose target must be positive, not {target!r}")
    usual = next(step for below, step in steps if target < below)
    for step in (usual, *(s for s in FINER_STEPS if s < usual)):
        amount = _to_step(target, step)
        if amount > 0 and abs(amount - target) <= target * MAX_ROUNDING_ERROR + 1e-12:
            return RoundedDose(amount, unit, target, step, usual)
    # Below a milligram's worth: two significant figures, never more than 5 % off.
    step = 10.0 ** (math.floor(math.log10(target)) - 1)
    return RoundedDose(_to_step(target, step), unit, target, step, usual)


def ivig_grams(g_per_kg: float, kg: float) -> RoundedDose:
    return round_dose(g_per_kg * kg, "g", IVIG_STEPS_G)


def steroid_mg(mg_per_kg: float, kg: float) -> RoundedDose:
    return round_dose(mg_per_kg * kg, "mg", STEROID_STEPS_MG)


def _to_step(value: float, step: float) -> float:
    """`value` to the nearest multiple of `step`, halves up, in decimal (0.1 × 7 is 0.7, not 0.7000000001)."""
    quantum = Decimal(str(step))
    multiple = (Decimal(repr(value)) / quantum).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return float(multiple * quantum)


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


def number_text(value: float, decimals: int = 6) -> str:
    """A number without float noise or trailing zeros: 0.6, 12.5, 80, 0.18."""
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    if text in ("", "0", "-0") and value != 0:
        return f"{value:.2g}"  # smaller than the decimals show: never print a dose as "0"
    return text or "0"


def kg_text(kg: float) -> str:
    """A weight as every card spells it: to 0.01 kg below 10 kg, to 0.1 kg from there (70, 70.4, 1.4, 0.62)."""
    return number_text(kg, 2 if kg < 10 else 1)


def g_per_kg_text(value: float) -> str:
    return number_text(value, 2)
