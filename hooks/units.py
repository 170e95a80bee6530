"""Units as clinicians read them: ×10⁹/L, ×10³/µL, g/dL, mL/min/1.73 m², not raw UCUM codes.

Why: a card read "10 10*3/uL" in the reference CDS client. The rules keep values exactly as the lab
sent them ("as recorded", for the audit trail and the clinician's cross-check against the chart);
the card spells each UCUM code the way a clinician writes it. A unit this table does not know is
shown as it was sent: an unknown spelling is never guessed into another.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: UCUM code (or a common lab spelling) → how a clinician writes it. Never longer than the code, so
#: a summary that fits in 140 characters with the code still fits with the display.
CLINICIAN_UNITS: dict[str, str] = {
    "10*9/L": "×10⁹/L",
    "10*3/uL": "×10³/µL",
    "10*3/mm3": "×10³/mm³",
    "K/uL": "×10³/µL",
    "/uL": "/µL",
    "/mm3": "/mm³",
    "{cells}/uL": "cells/µL",
    "umol/L": "µmol/L",
    "mL/min/{1.73_m2}": "mL/min/1.73 m²",
    "mL/min/1.73m2": "mL/min/1.73 m²",
    "[lb_av]": "lb",
    "[in_i]": "in",
    "ug/mL": "µg/mL",
}

# A known unit right after a number (and not inside a longer unit): "10 10*3/uL", "2.1 mg/dL".
_AFTER_NUMBER = re.compile(
    r"(?<=\d )(" + "|".join(re.escape(u) for u in sorted(CLINICIAN_UNITS, key=len, reverse=True)) + r")(?![\w/*{\[])"
)


def clinician_unit(unit: str) -> str:
    return CLINICIAN_UNITS.get(unit, unit)


def readable(text: str) -> str:
    """`text` with every known unit that follows a number spelled as a clinician writes it."""
    if not any(mark in text for mark in _MARKS):  # most lines name no such unit: no regex at all
        return text
    return _AFTER_NUMBER.sub(lambda m: CLINICIAN_UNITS[m.group(1)], text)


# Every unit above contains one of these: a line without any cannot hold one.
_MARKS = ("/", "[")


# --- reading units written for the eye -----------------------------------------------------------
# Labs and EHRs often send a quantity's unit only as display text, spelled as the lab's screen shows
# it: "10^9/L", "x10E3/uL", "10³/µL", "K/mcL", "thou/cu mm", "mL/min/1.73m^2", "lbs", "grams". Each of
# these has exactly one UCUM reading, so `ucum_spelling` rewrites the spelling (never the value)
# before the unit tables are consulted; a spelling with no single reading is still refused.
_SUPERSCRIPT_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
_POWER_OF_TEN = re.compile(r"^[x×X*]?10(?:\^|\*\*|\*|[eE]|\()(\d+)\)?")
_SUPERSCRIPT_POWER = re.compile(r"10([⁰¹²³⁴⁵⁶⁷⁸⁹]+)")
_MICRO = re.compile(r"(?:\u00b5|\u03bc|mc)(?=L|l|g|mol)")
_CUBIC_MM = re.compile(r"(?:cumm|cu\.?mm|mm\^3|mm\*\*3)$")
_THOUSANDS = re.compile(r"^(?:thou|thous|thousand)(?=/)", re.IGNORECASE)
_UNIT_WORDS = {
    "lbs": "lb",
    "pound": "lb",
    "pounds": "lb",
    "kgs": "kg",
    "kilogram": "kg",
    "kilograms": "kg",
    "gm": "g",
    "gms": "g",
    "gram": "g",
    "grams": "g",
    "milligram": "mg",
    "milligrams": "mg",
    "day": "d",
    "days": "d",
}


def ucum_spelling(unit: str) -> str:
    """The UCUM spelling of a display unit ("x10^9/L" → "10*9/L", "lbs" → "lb"), or the unit as sent."""
    text = _SUPERSCRIPT_POWER.sub(lambda m: "10^" + m.group(1).translate(_SUPERSCRIPT_DIGITS), unit.strip())
    text = "".join(text.translate(_SUPERSCRIPT_DIGITS).split())
    text = _POWER_OF_TEN.sub(r"10*\1", text)
    text = _MICRO.sub("u", text)
    text = _CUBIC_MM.sub("mm3", _THOUSANDS.sub("10*3", text))
    text = text.replace("m^2", "m2").replace("sqm", "m2")
    return "/".join(_UNIT_WORDS.get(part.lower(), part) for part in text.split("/"))


def factor_of(code: str | None, unit: str | None, factors: Mapping[str, float]) -> float | None:
    """The conversion factor of a quantity's unit in `factors`: by the UCUM code, else by the display
    unit, each as sent and then as `ucum_spelling` reads it; a display unit in another case only where
    that spelling can mean one factor and nothing else (UCUM is case-sensitive: G/L is giga per litre)."""
    sent = [c.strip() for c in (code, unit) if c and c.strip()]
    for candidate in sent:  # the usual case, a UCUM code: one lookup, no rewriting
        if candidate in factors:
            return factors[candidate]
    spelled = [ucum_spelling(c) for c in sent]
    for candidate in spelled:
        if candidate in factors:
            return factors[candidate]
    for candidate in (*sent, *spelled):
        folded = {factor for known, factor in factors.items() if known.casefold() == candidate.casefold()}
        if len(folded) == 1:
            return folded.pop()
    return None
