"""Turning FHIR date/dateTime values into instants, without ever guessing a time zone.

FHIR requires a zone on every dateTime that carries a time. One without is read as its date (the
tolerant reader repairs it so, and says so in the log): the zone the EHR meant is unknown, the day
is not. So the only imprecise values that reach here are dates and partial dates ("2026",
"2026-05"). They are read as the *start* of the period in UTC: for freshness that makes a result
look as old as it could be (the cautious side), and the card shows the value as it was recorded.
Raw JSON, read before parsing to choose what to parse (`parse_instant`), holds to the same. Cards
state each moment in the deployment's display time zone.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time


def to_instant(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    if isinstance(value, date):
        return datetime.combine(value, time.min, tzinfo=UTC)
    if isinstance(value, str):
        parsed = to_date(value)
        return datetime.combine(parsed, time.min, tzinfo=UTC) if parsed else None
    return None


def parse_instant(value: object) -> datetime | None:
    """A FHIR instant, dateTime or (partial) date given as JSON text; None when absent or not one.

    Used on raw JSON before any parsing, to decide what is worth parsing: a value the parser would
    refuse yields None here too (an undated resource), never an exception.
    """
    if not isinstance(value, str):
        return None
    if not _FHIR_DATE.fullmatch(value):
        zoneless = _ZONELESS.fullmatch(value)
        return to_instant(zoneless.group(1)) if zoneless else None
    if len(value) <= 10:
        return to_instant(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


# A time without its zone: read as the date alone (see above).
_ZONELESS = re.compile(r"(\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]))T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?")


# FHIR's date, dateTime and instant lexical forms (year, month, day, then an optional time and zone).
_FHIR_DATE = re.compile(
    r"\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01])"
    r"(T([01]\d|2[0-3]):[0-5]\d(:([0-5]\d|60)(\.\d{1,9})?)?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00)))?)?)?"
)


def to_date(value: object) -> date | None:
    """A calendar date from a FHIR date, dateTime or partial date (start of the period)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        parts = value[:10].split("-")
        try:
            year = int(parts[0])
            month = int(parts[1]) if len(parts) > 1 else 1
            day = int(parts[2]) if len(parts) > 2 else 1
            return date(year, month, day)
        except (ValueError, IndexError):
            return None
    return None


def anniversary(born: date, years: int) -> date:
    """The day `years` are completed (a 29 February birthday completes on 1 March in common years)."""
    try:
        return born.replace(year=born.year + years)
    except ValueError:
        return date(born.year + years, 3, 1)


def completed_years(born: date, today: date) -> int:
    """Age in whole years, completed on the birthday (as CQL's AgeInYears counts it).

    Why not days ÷ 365.25: on an 18th birthday that spanned four leap days it gives 17.998, and a
    new adult would still get the children's rules. Someone born on 29 February completes a year on
    1 March in common years.
    """
    years = today.year - born.year
    if (today.month, today.day) < (born.month, born.day):
        years -= 1
    return years


def describe_instant(at: datetime | None, now: datetime) -> str:
    """ "2026-05-31 18:00 UTC, 18 h ago" — the date a clinician needs beside every value.

    Shown in the zone `now` is given in: the deployment's display time zone (the judging moment is
    converted once, `hooks.services.judge`), so every card of one answer speaks one local time.
    """
    if at is None:
        return "date unknown"
    local = at.astimezone(now.tzinfo or UTC)
    stamp = local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or "UTC")
    return f"{stamp}, {describe_age(now - at)}"


def describe_age(delta: object) -> str:
    seconds = delta.total_seconds()  # type: ignore[attr-defined]
    if seconds < 0:
        return "in the future"
    hours = seconds / 3600
    if hours < 1:
        return f"{int(seconds // 60)} min ago"
    if hours < 72:
        return f"{int(hours)} h ago"
    days = hours / 24
    if days < 60:
        return f"{int(days)} days ago"
    return f"{int(days // 30.4)} months ago"
