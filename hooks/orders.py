"""Recognising what a medication or service request is, and reading an IVIG order's dose.

The same classifier serves the draft orders and the patient's medication history, so an IVIG
product recognised in a draft is recognised in the history too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from hooks import terminology as t
from hooks import units
from hooks.fhir_model import Resource


class OrderKind(StrEnum):
    IVIG = "ivig"
    SUBCUTANEOUS_IG = "subcutaneous-ig"
    PLATELET_TRANSFUSION = "platelet-transfusion"
    CORTICOSTEROID = "corticosteroid"  # systemic: the corticosteroid the rule book means
    LOCAL_CORTICOSTEROID = "local-corticosteroid"  # eye drops, cream, inhaler...: not systemic co-therapy
    HEPARIN = "heparin"
    ESTROGEN = "estrogen"
    URGENT_SURGERY = "urgent-surgery"
    SURGERY = "surgery"  # planned, not urgent: still a reason for platelets before it, not for a rapid rise
    OTHER = "other"


TARGET_KINDS = frozenset({OrderKind.IVIG, OrderKind.SUBCUTANEOUS_IG, OrderKind.PLATELET_TRANSFUSION})


@dataclass(frozen=True)
class Dose:
    """An IVIG dose as ordered: per kg, or absolute grams (converted with the dosing weight later).

    The schedule is read from `timing.repeat` (RULES.md v2 "Schedules"): `per_day` administrations
    on each dosing day, `days` dosing days in the course, `interval_days` from one dosing day to the
    next (1: consecutive days; 21: every 3 weeks). A course is its doses within the bounds, not its
    days: 1 g/kg every 3 weeks for 6 months is 9 doses of 1 g/kg, not 9 consecutive days.

    `days` is None when the order states a course length that cannot be read (unknown unit, open
    period). It is never guessed as one day: a week-long course read as a single dose would
    understate the total seven-fold. `open_ended`: a repeating schedule with no end stated (a
    maintenance order); its cycle is known, its number of doses is not.
    """

    g_per_kg: float | None
    grams: float | None
    days: int | None
    as_written: str
    per_day: int = 1
    interval_days: float = 1.0
    open_ended: bool = False

    @property
    def consecutive(self) -> bool:
        """Doses on consecutive days (one cycle), as opposed to one dose every few weeks."""
        return self.interval_days <= 1.0


@dataclass(frozen=True)
class DraftOrder:
    kind: OrderKind
    reference: str  # "MedicationRequest/abc", the id the EHR knows the draft by
    label: str
    dose: Dose | None
    priority: str | None
    iga_depleted: bool
    reason_codes: tuple[tuple[str | None, str | None], ...]
    resource: Mapping[str, Any]  # the draft as JSON, for an `update` suggestion
    # Why this order could not be judged, when its own text or codes suggest it is one this service
    # judges (a Medication it refers to could not be read, or the draft itself could not be read).
    unread: str | None = None
    unreadable: tuple[str, ...] = ()  # elements of the draft a rule reads that could not be read
    # What the order says about its dose, as written (its dosage text and dose quantity): quoted
    # when the dose cannot be read, so the clinician sees what the service could not read.
    dose_written: str = ""

    @property
    def dose_text(self) -> str:
        """The dose as read ("1 g/kg once"), else as written when it could not be read."""
        if self.dose is not None:
            return self.dose.as_written
        return f"dose not readable ({self.dose_written or 'no dose stated'})"


def medication_concept(resource: Resource, medications: Mapping[str, Resource]) -> object | None:
    """The CodeableConcept of a MedicationRequest/Administration, following a Medication reference."""
    concept = getattr(resource, "medicationCodeableConcept", None)
    if concept is not None:
        return concept
    reference = getattr(resource, "medicationReference", None)
    if reference is None:
        return None
    ref = reference.reference or ""
    for contained in getattr(resource, "contained", None) or ():
        if ref == f"#{contained.id}" and getattr(contained, "code", None) is not None:
            return contained.code
    medication = medications.get(ref)
    if medication is not None and getattr(medication, "code", None) is not None:
        return medication.code
    if reference.display:
        return _TextConcept(reference.display)
    return None


@dataclass(frozen=True)
class _TextConcept:
    text: str
    coding: tuple[()] = ()


SUBCUTANEOUS_ROUTE_WORDS = ("subcut", "subq")


def _route_is(resource: Resource, route_codes: frozenset[str], words: tuple[str, ...]) -> bool:
    for dosage in _dosages(resource):
        route = getattr(dosage, "route", None)
        if route is None:
            continue
        for system, code in t.codings_of(route):
            if system == t.SNOMED and code in route_codes:
                return True
        if any(word in t.concept_text(route).lower() for word in words):
            return True
    return False


def _dosages(resource: Resource) -> list[Any]:
    dosage = getattr(resource, "dosage", None)  # MedicationAdministration
    if dosage is not None:
        return [dosage]
    return list(getattr(resource, "dosageInstruction", None) or [])


def _all_text(concept: object) -> str:
    """The concept's text and every coding display, lower-cased: where product names are found."""
    displays = [str(c.display) for c in getattr(concept, "coding", None) or () if c.display]
    return " ".join([t.concept_text(concept), *displays]).lower()


# --- corticosteroids: systemic or local use -----------------------------------------------------
# RULES.md's corticosteroid is systemic ("prednisone 1–2 mg/kg/day or IV methylprednisolone"): eye
# drops, a cream or an inhaler do nothing for the platelet count and must not complete the critical-
# bleeding triad. The route decides when it is stated (oral, IV, IM, SC: systemic; eye, skin,
# airway...: local); without a route, local words in the medication's name (its dose form) decide;
# without either, a corticosteroid counts as systemic, as oral and IV orders often state no route.
# The dosage text is not read: it holds indications too ("prednisone 60 mg for eye inflammation").
# These constants are terminology and could move to hooks/terminology.py.

# SNOMED CT routes of administration (children of 284009009) that mean local use.
LOCAL_ROUTE_SNOMED = frozenset(
    {
        "54485002",  # ophthalmic route
        "6064005",  # topical route
        "10547007",  # otic route
        "46713006",  # nasal route
        "447694001",  # respiratory tract route (inhalation)
        "37161004",  # per rectum
        "16857009",  # per vagina
        "12130007",  # intra-articular route
    }
)
# ... and that mean systemic use: oral, intramuscular, with the intravenous and subcutaneous ones.
SYSTEMIC_ROUTE_SNOMED = frozenset({"26643006", "78421000"} | t.INTRAVENOUS_ROUTE_SNOMED | t.SUBCUTANEOUS_ROUTE_SNOMED)
# Whole words (or word beginnings, `\w*`) of a route or a medication name that mean local use.
# Whole words so that "ear" is not found in "year" nor "otic" in "antibiotic".
LOCAL_USE_WORDS = (
    r"ophth\w*",
    r"eyes?",
    r"eye\s?drops?",
    r"topical\w*",
    r"cutaneous",
    r"dermal",
    r"cream",
    r"ointment",
    r"lotion",
    r"gel",
    r"inhal\w*",
    r"nebuli[sz]\w*",
    r"nasal",
    r"intranasal",
    r"otic",
    r"ears?",
    r"auricular",
    r"rectal\w*",
    r"per rectum",
    r"enemas?",
    r"suppositor\w*",
    r"vaginal\w*",
    r"intra-?articular",
    r"intralesional",
    r"mouthwash",
)
# Whole words of a route's text that mean systemic use.
SYSTEMIC_ROUTE_WORDS = (
    r"oral\w*",
    r"by mouth",
    r"per os",
    r"po",
    r"intravenous\w*",
    r"iv",
    r"intramuscular\w*",
    r"im",
    r"subcutaneous\w*",
    r"sc",
    r"enteral",
    r"nasogastric",
    r"gastrostomy",
)


def _words(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(words) + r")\b", re.IGNORECASE)


_LOCAL_USE = _words(LOCAL_USE_WORDS)
_SYSTEMIC_ROUTE = _words(SYSTEMIC_ROUTE_WORDS)


def _local_use(concept: object, resource: Resource | None) -> bool:
    """Local use: said by the route (codes first, then its words), else by the medication's name."""
    for dosage in _dosages(resource) if resource is not None else ():
        route = getattr(dosage, "route", None)
        if route is None:
            continue
        codes = {code for system, code in t.codings_of(route) if system == t.SNOMED}
        if codes & LOCAL_ROUTE_SNOMED:
            return True
        if codes & SYSTEMIC_ROUTE_SNOMED:
            return False
        text = _all_text(route)
        if _LOCAL_USE.search(text):
            return True
        if _SYSTEMIC_ROUTE.search(text):
            return False
    return bool(_LOCAL_USE.search(_all_text(concept)))


def _corticosteroid(concept: object, resource: Resource | None) -> OrderKind:
    return OrderKind.LOCAL_CORTICOSTEROID if _local_use(concept, resource) else OrderKind.CORTICOSTEROID


def classify_medication(concept: object, resource: Resource | None = None) -> OrderKind:
    """IVIG, subcutaneous Ig, corticosteroid, heparin, or other, from codes first and names second.

    A corticosteroid for local use is `LOCAL_CORTICOSTEROID`, so the rules' "corticosteroid ordered
    or active" checks see only systemic ones.
    """
    if concept is None:
        return OrderKind.OTHER
    all_text = _all_text(concept)
    for system, code in t.codings_of(concept):
        if system == t.RXNORM and code in t.CORTICOSTEROID_RXNORM:
            return _corticosteroid(concept, resource)
        if system == t.RXNORM and code in t.HEPARIN_RXNORM:
            return OrderKind.HEPARIN
    if any(word in all_text for word in t.HYPERIMMUNE_IG_WORDS):
        return OrderKind.OTHER
    if any(name in all_text for name in t.SUBCUTANEOUS_IG_NAMES):
        return OrderKind.SUBCUTANEOUS_IG
    for system, code in t.codings_of(concept):
        if (
            (system == t.RXNORM and code in t.IVIG_RXNORM)
            or (system == t.CVX and code in t.IVIG_CVX)
            or (system == t.ATC and code in t.IVIG_ATC)
        ):
            return OrderKind.IVIG
    if any(name in all_text for name in t.IVIG_PRODUCT_NAMES):
        # Gammagard Liquid, Gamunex-C and Gammaked are labelled for IV or subcutaneous use in primary
        # immunodeficiency: an order that states a subcutaneous route is subcutaneous immune globulin.
        if resource is not None and _route_is(resource, t.SUBCUTANEOUS_ROUTE_SNOMED, SUBCUTANEOUS_ROUTE_WORDS):
            return OrderKind.SUBCUTANEOUS_IG
        return OrderKind.IVIG
    words = t.standalone_words(all_text)
    if words & set(t.SCIG_ABBREVIATIONS):
        return OrderKind.SUBCUTANEOUS_IG
    if words & set(t.IVIG_ABBREVIATIONS):
        return OrderKind.IVIG  # "IVIG 10 % solution": ordering screens often write no more
    if any(name in all_text for name in t.GENERIC_IG_NAMES):
        if "subcutaneous" in all_text or (
            resource is not None and _route_is(resource, t.SUBCUTANEOUS_ROUTE_SNOMED, SUBCUTANEOUS_ROUTE_WORDS)
        ):
            return OrderKind.SUBCUTANEOUS_IG
        if "intravenous" in all_text or (
            resource is not None and _route_is(resource, t.INTRAVENOUS_ROUTE_SNOMED, ("intravenous",))
        ):
            return OrderKind.IVIG
        return OrderKind.OTHER
    if any(name in all_text for name in t.CORTICOSTEROID_RXNORM.values()):
        return _corticosteroid(concept, resource)
    if any(name in t.without_heparin_negations(all_text) for name in t.LMWH_NAMES):  # not "heparin-free"
        return OrderKind.HEPARIN
    if any(name in all_text for name in t.ESTROGEN_NAMES):
        return OrderKind.ESTROGEN
    return OrderKind.OTHER


def immune_globulin_without_route(concept: object, resource: Resource) -> bool:
    """A generic immune globulin (not a hyperimmune or anti-D one) whose name and order say neither
    intravenous nor subcutaneous: RULES.md reads it as IVIG only with an intravenous route, so it is
    not judged, but it may be IVIG, and a card must say so rather than stay silent."""
    if classify_medication(concept, resource) is not OrderKind.OTHER:
        return False
    text = _all_text(concept)
    if not any(name in text for name in t.GENERIC_IG_NAMES) or any(w in text for w in t.HYPERIMMUNE_IG_WORDS):
        return False
    return not any(getattr(dosage, "route", None) is not None for dosage in _dosages(resource))


def is_platelet_transfusion(resource: Resource, local_codes: frozenset[tuple[str, str]] = frozenset()) -> bool:
    for system, code in t.codings_of(getattr(resource, "code", None)):
        if system == t.PLATELET_TRANSFUSION.system and code == t.PLATELET_TRANSFUSION.code:
            return True
        if (system, code) in local_codes:
            return True
    return False


def _is_surgery(resource: Resource) -> bool:
    return any(
        system == t.SNOMED and code == t.SURGICAL_PROCEDURE_SNOMED
        for category in getattr(resource, "category", None) or ()
        for system, code in t.codings_of(category)
    )


def _is_urgent(resource: Resource) -> bool:
    return getattr(resource, "priority", None) in t.URGENT_PRIORITIES


def is_iga_depleted(concept: object) -> bool:
    return any(name in _all_text(concept) for name in t.IGA_DEPLETED_PRODUCT_NAMES)


_PER_KG_FACTORS = {"g/kg": 1.0, "mg/kg": 0.001}
_ABSOLUTE_FACTORS = {"g": 1.0, "mg": 0.001}
# A dose written per day ("1 g/kg/d", "400 mg/kg/day"): the amount of a whole dosing day, however many
# administrations the timing divides it into.
_PER_KG_PER_DAY_FACTORS = {"g/kg/d": 1.0, "mg/kg/d": 0.001}
_ABSOLUTE_PER_DAY_FACTORS = {"g/d": 1.0, "mg/d": 0.001}


def read_dose(resource: Resource) -> Dose | None:
    """The IVIG dose per administration and its schedule, from the first dosage instruction.

    A dose we cannot read returns None and the dose-check card says so rather than guessing.
    """
    dosages = _dosages(resource)
    if not dosages:
        return None
    dosage = dosages[0]
    quantity = _quantity(dosage)
    if quantity is None or quantity.value is None:
        return None
    unit = (quantity.code or quantity.unit or "").strip()
    value = float(Decimal(quantity.value))
    if value <= 0:
        return None
    schedule = read_schedule(dosage)
    written = f"{_fmt(value)} {unit} {schedule.text}"
    common = {
        "days": schedule.days,
        "as_written": written,
        "per_day": schedule.per_day,
        "interval_days": schedule.interval_days,
        "open_ended": schedule.open_ended,
    }
    # By the UCUM code, else the display unit as written for the eye ("grams", "gm/kg", "g/kg/day").
    code, shown = quantity.code, quantity.unit
    if (factor := units.factor_of(code, shown, _PER_KG_FACTORS)) is not None:
        return Dose(g_per_kg=value * factor, grams=None, **common)
    if (factor := units.factor_of(code, shown, _ABSOLUTE_FACTORS)) is not None:
        return Dose(g_per_kg=None, grams=value * factor, **common)
    per_administration = max(1, schedule.per_day)
    if (factor := units.factor_of(code, shown, _PER_KG_PER_DAY_FACTORS)) is not None:
        return Dose(g_per_kg=value * factor / per_administration, grams=None, **common)
    if (factor := units.factor_of(code, shown, _ABSOLUTE_PER_DAY_FACTORS)) is not None:
        return Dose(g_per_kg=None, grams=value * factor / per_administration, **common)
    return None


def _quantity(dosage: Any) -> Any:
    for dose_and_rate in getattr(dosage, "doseAndRate", None) or ():
        quantity = getattr(dose_and_rate, "doseQuantity", None)
        if quantity is not None:
            return quantity
    return getattr(dosage, "dose", None)  # MedicationAdministration.dosage.dose


def dose_written(resource: Resource) -> str:
    """What the first dosage instruction says, as written: its text and its dose quantity.

    Quoted on the card when the dose cannot be read ("2 vials IV once"), so the prescriber sees
    exactly what the service could not turn into grams.
    """
    dosages = _dosages(resource)
    if not dosages:
        return "no dosage instruction"
    dosage = dosages[0]
    parts = []
    text = getattr(dosage, "text", None)
    if text:
        parts.append(f"\u201c{str(text).strip()}\u201d")
    quantity = _quantity(dosage)
    if quantity is not None and quantity.value is not None:
        unit = (quantity.unit or quantity.code or "no unit").strip()
        parts.append(f"dose quantity {Decimal(quantity.value):f} {unit}")
    elif quantity is not None:
        parts.append("a dose quantity without a value")
    return "; ".join(parts) or "no dose stated"


@dataclass(frozen=True)
class Schedule:
    """When the doses of an order fall (RULES.md v2 "Schedules").

    `per_day` administrations on each dosing day; `interval_days` from one dosing day to the next
    (1: consecutive days); `days` the dosing days within the bounds, None when the bounds cannot be
    read; `open_ended` a repeat with no end stated (one cycle known, its number of doses not).
    """

    per_day: int
    interval_days: float
    days: int | None
    open_ended: bool
    text: str


ONCE = Schedule(per_day=1, interval_days=1.0, days=1, open_ended=False, text="once")


def read_schedule(dosage: Any) -> Schedule:
    """The schedule of one dosage instruction: `timing.repeat` frequency/period/periodUnit make the
    interval, `count` or the bounds the number of doses."""
    timing = getattr(dosage, "timing", None)
    repeat = getattr(timing, "repeat", None) if timing is not None else None
    if repeat is None:
        return ONCE
    interval = _dose_interval_days(repeat)
    if interval is None or interval <= 1.0 + 1e-9:
        per_day = max(1, round(1 / interval)) if interval else 1
        interval_days = 1.0
    else:
        per_day, interval_days = 1, interval
    every = _interval_text(repeat) if interval_days > 1 else ""
    if repeat.count:
        doses = int(repeat.count)
        days = max(1, doses // per_day) if interval_days == 1 else doses
        return Schedule(per_day, interval_days, days, False, _schedule_text(per_day, interval_days, days, every))
    period = getattr(repeat, "boundsPeriod", None)
    has_period_end = period is not None and getattr(period, "end", None) is not None
    # A period with only a start says when the order begins, not how long it runs: no course stated.
    if not (getattr(repeat, "boundsDuration", None) or has_period_end or getattr(repeat, "boundsRange", None)):
        if interval_days > 1:
            return Schedule(1, interval_days, 1, True, f"every {every} (no end stated)")
        return ONCE if per_day == 1 else Schedule(per_day, 1.0, 1, False, _schedule_text(per_day, 1.0, 1, ""))
    days = _course_days(repeat, interval_days)
    if days is None:
        text = f"every {every}, course length not readable" if every else "daily, course length not readable"
        return Schedule(per_day, interval_days, None, False, text)
    return Schedule(per_day, interval_days, days, False, _schedule_text(per_day, interval_days, days, every))


def _schedule_text(per_day: int, interval_days: float, days: int, every: str) -> str:
    if interval_days > 1:
        return f"every {every} × {days} dose{'s' if days != 1 else ''}"
    how_often = "daily" if per_day == 1 else f"{per_day} times a day"
    if days == 1:
        return "once" if per_day == 1 else f"{per_day} times in one day"
    return f"{how_often} × {days} days"


# Days in one unit of time: the UCUM codes of Timing (`s`, `min`, `h`, `d`, `wk`, `mo`, `a`; a month
# and a year are UCUM's mean Julian ones) and the words EHRs put in a Duration's `unit`.
DAYS_PER_TIME_UNIT: dict[str, float] = {
    **dict.fromkeys(("s", "sec", "second", "seconds"), 1 / 86400),
    **dict.fromkeys(("min", "minute", "minutes"), 1 / 1440),
    **dict.fromkeys(("h", "hr", "hour", "hours"), 1 / 24),
    **dict.fromkeys(("d", "day", "days"), 1.0),
    **dict.fromkeys(("wk", "week", "weeks"), 7.0),
    **dict.fromkeys(("mo", "month", "months"), 30.4375),
    **dict.fromkeys(("a", "year", "years"), 365.25),
}
_UNIT_NAMES = {"s": "second", "min": "minute", "h": "hour", "d": "day", "wk": "week", "mo": "month", "a": "year"}

# No course of consecutive IVIG days runs for more than a year, and no maintenance schedule is
# ordered for more than ten: longer bounds are typos, not courses.
MAX_COURSE_DAYS = 366.0
MAX_MAINTENANCE_DAYS = 3653.0


def _course_days(repeat: Any, interval_days: float) -> int | None:
    """Dosing days within `boundsDuration` or `boundsPeriod`; None when the bounds cannot be read.

    A dose falls on each day of the span, or every `interval_days` when the order repeats less
    often than daily (weekly for 4 weeks is 4 doses, as `count` 4 would say; every 3 weeks for 6
    months is 9). A part day counts as a dosing day. `boundsRange` (say 3 to 5 days) names no single
    course length and is unreadable by design.
    """
    span = _duration_days(getattr(repeat, "boundsDuration", None))
    period = getattr(repeat, "boundsPeriod", None)
    if span is None and period is not None:
        span = _period_days(period)
    longest = MAX_COURSE_DAYS if interval_days <= 1 else MAX_MAINTENANCE_DAYS
    if span is None or not math.isfinite(span) or span > longest:
        return None
    return max(1, math.ceil(span / interval_days - 1e-9))


def _duration_days(duration: Any) -> float | None:
    """A Duration in days: its UCUM `code`, else its `unit` words; None when absent or unreadable."""
    if duration is None or duration.value is None or Decimal(duration.value) <= 0:
        return None
    for unit in (duration.code, duration.unit):
        factor = DAYS_PER_TIME_UNIT.get((unit or "").strip().lower())
        if factor is not None:
            return float(Decimal(duration.value)) * factor
    return None


def _period_days(period: Any) -> float | None:
    """The days a Period spans; None when open or imprecise.

    Two instants (date-times) span the time between them: daily doses from 1 June 14:00 to 6 June
    13:59 are five, not six, and offsets are compared as instants. Two dates span the calendar days
    from the first to the last, both included, since FHIR reads an end date as the whole of that
    day (1–5 June is five days). A partial date ("2026-06") spans a month or a year: no course
    length can be read from it.
    """
    start, end = period.start, period.end
    if not isinstance(start, date) or not isinstance(end, date):
        return None
    if isinstance(start, datetime) and isinstance(end, datetime) and start.tzinfo and end.tzinfo:
        elapsed = (end - start).total_seconds() / 86400
        return elapsed if elapsed > 0 else None
    first = start.date() if isinstance(start, datetime) else start
    last = end.date() if isinstance(end, datetime) else end
    if isinstance(end, datetime) and end.time() == time.min and last > first:
        last -= timedelta(days=1)
    days = (last - first).days + 1
    return days if days >= 1 else None


def _dose_interval_days(repeat: Any) -> float | None:
    """Days from one dose to the next (`period` ÷ `frequency`); None when no period is stated."""
    factor = DAYS_PER_TIME_UNIT.get(repeat.periodUnit or "")
    if not repeat.period or factor is None or Decimal(repeat.period) <= 0:
        return None
    frequency = float(repeat.frequency) if repeat.frequency else 1.0
    return float(repeat.period) * factor / max(frequency, 1.0)


def _interval_text(repeat: Any) -> str:
    """ "3 weeks", "4 weeks", "21 days": the interval as the order states it."""
    per = float(repeat.period) / max(float(repeat.frequency or 1), 1.0)
    name = _UNIT_NAMES.get(repeat.periodUnit or "", repeat.periodUnit or "")
    return f"{_fmt(round(per, 2))} {name}{'' if per == 1 else 's'}"


def _fmt(value: float) -> str:
    return f"{value:g}"


def reason_codes(resource: Resource) -> tuple[tuple[str | None, str | None], ...]:
    pairs: list[tuple[str | None, str | None]] = []
    for concept in getattr(resource, "reasonCode", None) or ():
        pairs.extend(t.codings_of(concept))
    return tuple(pairs)


def classify_draft(
    resource: Resource,
    raw: Mapping[str, Any],
    medications: Mapping[str, Resource],
    local_platelet_codes: frozenset[tuple[str, str]] = frozenset(),
) -> DraftOrder:
    resource_type = resource.get_resource_type()
    reference = f"{resource_type}/{resource.id}" if resource.id else resource_type
    kind = OrderKind.OTHER
    label = ""
    dose = None
    written = ""
    iga_depleted = False
    if resource_type == "MedicationRequest":
        concept = medication_concept(resource, medications)
        kind = classify_medication(concept, resource)
        label = t.concept_text(concept)
        if kind in (OrderKind.IVIG, OrderKind.SUBCUTANEOUS_IG):
            dose = read_dose(resource)
            written = dose_written(resource)
            iga_depleted = is_iga_depleted(concept)
    elif resource_type == "ServiceRequest" and is_platelet_transfusion(resource, local_platelet_codes):
        kind = OrderKind.PLATELET_TRANSFUSION
        label = t.concept_text(resource.code) or "Platelet transfusion"
    elif resource_type == "ServiceRequest" and _is_surgery(resource):
        kind = OrderKind.URGENT_SURGERY if _is_urgent(resource) else OrderKind.SURGERY
        label = t.concept_text(resource.code) or "Surgical procedure"
    return DraftOrder(
        kind=kind,
        reference=reference,
        label=label,
        dose=dose,
        priority=getattr(resource, "priority", None),
        iga_depleted=iga_depleted,
        reason_codes=reason_codes(resource),
        resource=raw,
        dose_written=written,
    )
