"""Units as clinicians read them: ×10⁹/L, ×10³/µL, g/dL, mL/min/1.73 m², not raw UCUM codes.

Why: a card read "10 10*3/uL" in the reference CDS client. The rules keep values exactly as the lab
sent them ("as recorded", for the audit trail and the clinician's cross-check against the chart);
the card spells each UCUM code the way a clinician writes it. A unit this table does not know is
shown as it was sent: an unknown spelling is never guessed into another.
"""

from __future__ import annotations

import re

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
