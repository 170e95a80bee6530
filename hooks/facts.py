"""One immutable picture of the patient, built from their FHIR resources at a given moment.

Why a single facts object: rules must not each re-read FHIR (and each get units, statuses or dates
slightly differently). Everything a rule may use is derived here once, normalised (platelets in
10^9/L, weight in kg, IgA in mg/dL), with the date of each value so cards can show it.
What could not be retrieved is recorded in `unavailable` so a rule never mistakes "unknown" for
"absent".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any

from hooks import renal, units
from hooks import terminology as t
from hooks.fhir_model import Resource
from hooks.orders import OrderKind, classify_medication, medication_concept
from hooks.settings import RuleSettings
from hooks.timeutil import completed_years, to_date, to_instant


class Flag(StrEnum):
    ITP = "ITP"
    THROMBOCYTOPENIA = "thrombocytopenia"
    HIT = "heparin-induced thrombocytopenia"
    # HIT in any clinical status, resolved included: enough to stop heparin (ASH 2018 advises against
    # re-exposure outside narrow exceptions), while the rules about a current HIT need HIT above.
    HIT_HISTORY = "heparin-induced thrombocytopenia on record"
    IGA_DEFICIENCY = "IgA deficiency"
    CKD = "chronic kidney disease"
    DIABETES = "diabetes"
    THROMBOSIS_HISTORY = "thrombosis history"
    SEPSIS = "sepsis"
    DIC = "disseminated intravascular coagulation"
    VOLUME_DEPLETION = "volume depletion"
    PREGNANCY = "pregnancy"
    POSTPARTUM = "postpartum"
    HCV = "hepatitis C"
    HIV = "HIV"
    # IVIG indications other than ITP (dose-check compares the dose with each one's regimen).
    GUILLAIN_BARRE = "Guillain-Barré syndrome"
    KAWASAKI = "Kawasaki disease"
    CIDP = "CIDP"
    PRIMARY_IMMUNODEFICIENCY = "primary immunodeficiency"


# Which flags need an *active* condition; the others (history) count whatever the clinical status.
_ACTIVE_FLAGS: dict[Flag, t.ConditionSet] = {
    Flag.ITP: t.ITP,
    Flag.THROMBOCYTOPENIA: t.THROMBOCYTOPENIA,
    Flag.HIT: t.HIT,
    Flag.CKD: t.CKD,
    Flag.DIABETES: t.DIABETES,
    Flag.SEPSIS: t.SEPSIS,
    Flag.DIC: t.DIC,
    Flag.VOLUME_DEPLETION: t.VOLUME_DEPLETION,
    Flag.POSTPARTUM: t.POSTPARTUM,
    Flag.PREGNANCY: t.PREGNANCY,
    Flag.HCV: t.HCV,
    Flag.HIV: t.HIV,
    Flag.GUILLAIN_BARRE: t.GUILLAIN_BARRE,
    Flag.KAWASAKI: t.KAWASAKI,
    Flag.CIDP: t.CIDP,
    Flag.PRIMARY_IMMUNODEFICIENCY: t.PRIMARY_IMMUNODEFICIENCY,
}
# ITP is a chronic immune disease: "in remission" still names the patient's diagnosis (FHIR: no longer
# symptomatic, "but there is a risk of the symptoms returning"). Whether to treat is the platelet
# count's question, so an IVIG order for a relapse recorded as "remission" is still ITP-directed.
_REMISSION_FLAGS: dict[Flag, t.ConditionSet] = {Flag.ITP: t.ITP}
_HISTORY_FLAGS: dict[Flag, t.ConditionSet] = {
    Flag.HIT_HISTORY: t.HIT,
    Flag.IGA_DEFICIENCY: t.IGA_DEFICIENCY,
    Flag.THROMBOSIS_HISTORY: t.THROMBOSIS,
}


class Bleeding(IntEnum):
    NONE = 0
    SIGNIFICANT = 2
    CRITICAL = 3


class DataKind(StrEnum):
    """The kinds of data a request may fail to obtain (one per prefetch key, hooks/data_needs.py)."""

    PATIENT = "patient"
    PLATELETS = "platelets"
    WEIGHT = "weight"
    HEIGHT = "height"
    RENAL = "renal"
    IGA = "iga"
    PREGNANCY = "pregnancy"
    CONDITIONS = "conditions"
    MEDICATIONS = "medications"
    ACTIVE_MEDICATIONS = "active-medications"
    ADMINISTRATIONS = "administrations"
    ALLERGIES = "allergies"


#: The kinds that together make the medication history (orders, orders still active, administrations).
MEDICATION_HISTORY = frozenset({DataKind.MEDICATIONS, DataKind.ACTIVE_MEDICATIONS, DataKind.ADMINISTRATIONS})


@dataclass(frozen=True)
class Partial:
    """A kind of data read only in part: complete back to `since` (None: the server did not return
    it newest first, so nothing is known about what is missing), and why the rest was not read."""

    kind: DataKind
    since: datetime | None
    reason: str


@dataclass(frozen=True)
class Measurement:
    value: float  # normalised to `unit`
    unit: str
    at: datetime | None
    as_recorded: str  # value and unit as the lab sent them, for display
    comparator: str | None = None


@dataclass(frozen=True)
class PlateletCount:
    value: float | None  # 10^9/L; None when the result cannot be used for thresholds
    at: datetime | None
    as_recorded: str
    problem: str | None  # why it cannot be used


@dataclass(frozen=True)
class IvigEvent:
    at: datetime | None
    kind: str  # "order" or "administration"
    active: bool  # an order still active (not completed/stopped)
    # Prior exposure counts every order (RULES.md "Prior IVIG"), but a cancelled order or an
    # unsigned draft of another session delivered nothing: it cannot be a duplicate dose.
    may_have_been_given: bool = True


@dataclass(frozen=True)
class Evidence:
    """A condition found on record, with the words and date a card shows.

    `since` is the onset (RULES.md v2 "Dates"): when the condition began. When it was written down
    (`recordedDate`) is never an onset; it is kept apart, as `recorded`, for display only.
    """

    flag: str
    text: str
    since: date | None
    recorded: date | None = None


@dataclass(frozen=True)
class IgaStatus:
    """Serum IgA judged as RULES.md v2 asks: on results drawn before the first IVIG.

    IVIG products carry IgA, so a result drawn after a dose can read normal in a deficient patient.
    - `deficient`: the newest result below the cut-off drawn at an age that can show deficiency,
      whenever it was drawn (a low result even after IVIG is deficiency all the more).
    - `pre_ivig`: the newest result drawn before the first IVIG: when it is normal (and no result
      is deficient) deficiency is excluded.
    - `post_ivig`: the newest normal result drawn after the first IVIG (or when the first IVIG is
      not known): it alone cannot exclude deficiency.
    "First IVIG" is the earliest IVIG ordered or given in the medication history read (RULES.md
    "Prior IVIG": `ivig_history_lookback_days`, five years) or the onset of an allergy to immune
    globulin; `first_ivig_known` is False when that history could not be read or an IVIG in it is
    undated, and then no normal result counts as drawn before it.
    """

    deficient: Measurement | None = None
    pre_ivig: Measurement | None = None
    post_ivig: Measurement | None = None
    first_ivig: datetime | None = None
    first_ivig_known: bool = True

    @property
    def excluded(self) -> bool:
        return self.deficient is None and self.pre_ivig is not None


@dataclass(frozen=True)
class ComputedEgfr:
    """An eGFR computed from a serum creatinine when the lab sent none (RULES.md v2 "eGFR")."""

    value: float  # mL/min/1.73 m²
    equation: str  # "CKD-EPI 2021" or "bedside Schwartz"
    creatinine: Measurement
    inputs: str  # what the equation used, for the card


@dataclass(frozen=True)
class ItpDiagnosis:
    """When ITP was diagnosed, as far as the record says (RULES.md v2 "Dates").

    `on_or_before`: the earliest onset of an ITP record, or the date an ITP record was written when
    that is earlier (a diagnosis is never written before it is made). `exact` is True when that
    date is an onset, or the first ITP record with no earlier IVIG or ITP on record; a record date
    alone only bounds the diagnosis from above.
    """

    on_or_before: date
    exact: bool
    basis: str


@dataclass(frozen=True)
class PatientFacts:
    patient_id: str
    encounter_id: str | None
    birth_date: date | None
    age_days: int | None
    age_years: int | None  # completed years (CQL AgeInYears): "age >65" is from the 66th birthday
    sex: str | None
    weight: Measurement | None
    height: Measurement | None
    platelets: tuple[PlateletCount, ...]  # newest first
    ipf: Measurement | None
    iga: Measurement | None
    creatinine: Measurement | None
    egfr: Measurement | None
    flags: frozenset[Flag]
    evidence: tuple[Evidence, ...]
    bleeding: Bleeding
    bleeding_evidence: str | None
    pregnant: bool
    expected_delivery: date | None
    pregnancy_start: date | None
    ivig_events: tuple[IvigEvent, ...]
    ivig_anaphylaxis: bool
    anti_iga_antibodies: bool
    active_medications: frozenset[OrderKind]
    # The newest weight in the record that is implausible for the age and newer than `weight` (the
    # newest plausible one): not used for dosing, and said by `data-quality`.
    implausible_weight: Measurement | None = None
    # An active bleed beyond the skin that is neither significant nor critical (a nosebleed, bleeding
    # gums, heavy menstrual bleeding, a bleed of unstated site): "no bleeding" is then not true.
    minor_bleeding: str | None = None
    # The expected delivery as recorded when it names only a month or a year ("2026-06"): the date
    # above is then the period's first day (the cautious side for "delivery within 14 days"), and a
    # card shows the month, never a count of days the record does not give.
    expected_delivery_partial: str | None = None
    iga_status: IgaStatus = field(default_factory=IgaStatus)
    computed_egfr: ComputedEgfr | None = None
    itp_diagnosis: ItpDiagnosis | None = None
    # Allergies to immune globulin that are a label contraindication (RULES.md "Prior IVIG
    # hypersensitivity"), as a card lists them.
    ivig_reactions: tuple[str, ...] = ()
    unavailable: frozenset[DataKind] = field(default_factory=frozenset)
    # What could not be read, as a card shows it: results newer than the value used whose unit or
    # value could not be read, and elements of the record a rule reads that were not valid FHIR.
    unreadable: tuple[str, ...] = ()
    partial: tuple[Partial, ...] = ()

    @property
    def latest_platelets(self) -> PlateletCount | None:
        return self.platelets[0] if self.platelets else None

    def has(self, flag: Flag) -> bool:
        return flag in self.flags

    def evidence_for(self, flag: Flag) -> Evidence | None:
        return next((e for e in self.evidence if e.flag == flag.value), None)


# --- building ------------------------------------------------------------------------------


def build_facts(
    resources: Iterable[Resource],
    *,
    patient_id: str,
    encounter_id: str | None,
    now: datetime,
    settings: RuleSettings,
    unavailable: Iterable[DataKind] = (),
    partial: Iterable[Partial] = (),
    unreadable: Iterable[str] = (),
    draft_references: frozenset[str] = frozenset(),
) -> PatientFacts:
    """Derive the facts from the patient's resources as they stand at `now`.

    Resources that belong to another patient, or that are drafts of this very request, are
    ignored: a prefetch from a careless client must not mix patients or count a draft as history.
    """
    by_type: dict[str, list[Resource]] = {}
    for resource in resources:
        if not _belongs_to(resource, patient_id):
            continue
        reference = f"{resource.get_resource_type()}/{resource.id}"
        if reference in draft_references:
            continue
        by_type.setdefault(resource.get_resource_type(), []).append(resource)

    patient = next(iter(by_type.get("Patient", [])), None)
    birth_date = to_date(getattr(patient, "birthDate", None)) if patient else None
    age_days = (now.date() - birth_date).days if birth_date else None

    observations = [o for o in by_type.get("Observation", []) if _usable_observation(o)]
    conditions = by_type.get("Condition", [])
    medications = {f"Medication/{m.id}": m for m in by_type.get("Medication", []) if m.id}

    allergies = by_type.get("AllergyIntolerance", [])
    flags, evidence = _condition_flags(conditions)
    _hit_allergies(allergies, now, settings, flags, evidence)
    bleeding, bleeding_text, minor_bleeding = _bleeding(conditions)
    pregnant, expected_delivery, pregnancy_start, delivery_partial = _pregnancy(
        observations, Flag.PREGNANCY in flags, conditions, now, settings
    )
    if pregnant:  # the newest pregnancy-status observation outranks the problem list, either way
        flags.add(Flag.PREGNANCY)
    else:
        flags.discard(Flag.PREGNANCY)

    events, active_kinds = _medication_history(
        by_type.get("MedicationRequest", []), by_type.get("MedicationAdministration", []), medications
    )

    unreadable_notes: list[str] = list(unreadable)
    unavailable = frozenset(unavailable)

    def latest(label: str, codes: frozenset[str], factors: Mapping[str, float], unit: str) -> Measurement | None:
        return _latest(observations, codes, factors, unit, label=label, unreadable=unreadable_notes)

    sex = getattr(patient, "gender", None) if patient else None
    weight, implausible_weight = _weights(observations, birth_date, settings, unreadable_notes)
    height = latest("Height", t.HEIGHT_LOINC, t.HEIGHT_UNIT_FACTORS, "cm")
    creatinine = latest("Creatinine", t.CREATININE_LOINC, t.CREATININE_UNIT_FACTORS, "mg/dL")
    reactions = _ivig_reactions(allergies)
    history_known = not (unavailable & MEDICATION_HISTORY)
    first_ivig, first_known = _first_ivig(events, allergies, history_known)
    return PatientFacts(
        patient_id=patient_id,
        encounter_id=encounter_id,
        birth_date=birth_date,
        age_days=age_days,
        age_years=completed_years(birth_date, now.date()) if birth_date else None,
        sex=sex,
        weight=weight,
        height=height,
        platelets=_platelets(observations, settings),
        ipf=latest("IPF", t.IPF_LOINC, t.IPF_UNIT_FACTORS, "%"),
        iga=latest("Serum IgA", t.IGA_LOINC, t.IGA_UNIT_FACTORS, "mg/dL"),
        creatinine=creatinine,
        egfr=latest("eGFR", t.EGFR_LOINC, t.EGFR_UNIT_FACTORS, "mL/min/1.73 m²"),
        flags=frozenset(flags),
        evidence=tuple(evidence),
        bleeding=bleeding,
        bleeding_evidence=bleeding_text,
        pregnant=pregnant,
        expected_delivery=expected_delivery,
        expected_delivery_partial=delivery_partial,
        pregnancy_start=pregnancy_start,
        ivig_events=tuple(events),
        ivig_anaphylaxis=bool(reactions),
        anti_iga_antibodies=_anti_iga(conditions, observations),
        active_medications=frozenset(active_kinds),
        implausible_weight=implausible_weight,
        minor_bleeding=minor_bleeding,
        iga_status=_iga_status(observations, birth_date, first_ivig, first_known, settings),
        computed_egfr=_computed_egfr(creatinine, birth_date, sex, height, settings),
        itp_diagnosis=_itp_diagnosis(conditions, events, history_known),
        ivig_reactions=reactions,
        unreadable=tuple(dict.fromkeys(unreadable_notes)),
        unavailable=unavailable,
        partial=tuple(partial),
    )


def _belongs_to(resource: Resource, patient_id: str) -> bool:
    resource_type = resource.get_resource_type()
    if resource_type == "Patient":
        return resource.id == patient_id
    if resource_type == "Medication":
        return True
    reference = getattr(resource, "subject", None) or getattr(resource, "patient", None)
    if reference is None or not reference.reference:
        return False
    ref = reference.reference
    return ref == f"Patient/{patient_id}" or ref.endswith(f"/Patient/{patient_id}")


_UNUSABLE_OBSERVATION_STATUS = frozenset({"entered-in-error", "cancelled", "registered"})


def _usable_observation(observation: Resource) -> bool:
    return observation.status not in _UNUSABLE_OBSERVATION_STATUS


def _observation_time(observation: Resource) -> datetime | None:
    for value in (
        getattr(observation, "effectiveDateTime", None),
        getattr(observation, "effectiveInstant", None),
        getattr(getattr(observation, "effectivePeriod", None), "end", None),
        getattr(getattr(observation, "effectivePeriod", None), "start", None),
        getattr(observation, "issued", None),
    ):
        instant = to_instant(value)
        if instant is not None:
            return instant
    return None


def _quantity_unit(quantity: Any) -> str | None:
    for candidate in (quantity.code, quantity.unit):
        if candidate and str(candidate).strip():
            return str(candidate).strip()
    return None


def _as_recorded(quantity: Any) -> str:
    unit = quantity.unit or quantity.code or "(no unit)"
    comparator = quantity.comparator or ""
    return f"{comparator}{Decimal(quantity.value):f} {unit}".strip() if quantity.value is not None else "no value"


def _convert(quantity: Any, factors: Mapping[str, float]) -> float | None:
    """The value in the target unit, by the UCUM code, else by the display unit (`units.factor_of`:
    "10^9/L", "lbs" or "mL/min/1.73m^2" written for the eye are read as the one unit they spell)."""
    if quantity is None or quantity.value is None:
        return None
    factor = units.factor_of(quantity.code, quantity.unit, factors)
    if factor is None:
        return None
    # In decimal: "<0.07 g/L" is exactly 7 mg/dL, where binary floats make it 7.000000000000001
    # and a result at the cut-off would fall on the wrong side of it.
    return float(Decimal(str(quantity.value)) * Decimal(repr(factor)))


_UNDATED = datetime.min.replace(tzinfo=UTC)  # undated results sort after every dated one


def _sorted_newest_first(observations: Sequence[Resource]) -> list[Resource]:
    """Newest first. Instants here are all zone-aware, so they compare correctly across offsets."""
    return sorted(observations, key=lambda o: _observation_time(o) or _UNDATED, reverse=True)


def _latest(
    observations: Sequence[Resource],
    codes: frozenset[str],
    factors: Mapping[str, float],
    unit: str,
    *,
    label: str = "Result",
    unreadable: list[str] | None = None,
) -> Measurement | None:
    """The newest observation of `codes` whose value converts.

    A newer result whose unit or value cannot be read is not used, but it is not hidden either:
    it is added to `unreadable` (a card says so), since the value it holds may be the one that
    matters (an IgA of 5 in "mg%" beside a normal result of last year).
    """
    candidates = [o for o in observations if t.has_loinc(o.code, codes)]
    for observation in _sorted_newest_first(candidates):
        quantity = getattr(observation, "valueQuantity", None)
        value = _convert(quantity, factors)
        if value is None:
            if unreadable is not None:
                recorded = _as_recorded(quantity) if quantity is not None else "no quantity"
                when = _observation_time(observation)
                dated = when.date().isoformat() if when else "undated"
                unreadable.append(f"{label} of {dated}: {recorded} (unit or value not readable)")
            continue
        return Measurement(
            value=value,
            unit=unit,
            at=_observation_time(observation),
            as_recorded=_as_recorded(quantity),
            comparator=quantity.comparator,
        )
    return None


def _platelets(observations: Sequence[Resource], settings: RuleSettings) -> tuple[PlateletCount, ...]:
    """All platelet counts, newest first, each normalised to 10^9/L or marked with its problem."""
    counts: list[PlateletCount] = []
    for observation in _sorted_newest_first([o for o in observations if t.has_loinc(o.code, t.PLATELET_COUNT_LOINC)]):
        at = _observation_time(observation)
        quantity = getattr(observation, "valueQuantity", None)
        if quantity is None or quantity.value is None:
            counts.append(PlateletCount(None, at, "no value", "the result has no numeric value"))
            continue
        recorded = _as_recorded(quantity)
        unit = _quantity_unit(quantity)
        if unit is None:
            counts.append(PlateletCount(None, at, recorded, "the result has no unit"))
            continue
        value = _convert(quantity, t.PLATELET_UNIT_FACTORS)
        if value is None:
            counts.append(PlateletCount(None, at, recorded, f"the unit '{unit}' is not recognised"))
            continue
        if not settings.platelet_min_plausible <= value <= settings.platelet_max_plausible:
            counts.append(PlateletCount(None, at, recorded, "the value is implausible"))
            continue
        if at is None:
            counts.append(PlateletCount(None, at, recorded, "the result has no date"))
            continue
        counts.append(PlateletCount(value, at, recorded, None))
    return tuple(counts)


_INACTIVE_VERIFICATION = frozenset({"refuted", "entered-in-error"})
_ACTIVE_CLINICAL = frozenset({"active", "recurrence", "relapse"})


def _status_code(concept: object) -> str | None:
    for _, code in t.codings_of(concept):
        return code
    return None


def _condition_valid(condition: Resource) -> bool:
    return _status_code(getattr(condition, "verificationStatus", None)) not in _INACTIVE_VERIFICATION


_ABATEMENTS = ("abatementDateTime", "abatementAge", "abatementPeriod", "abatementRange", "abatementString")


def _condition_active(condition: Resource) -> bool:
    """Active by its clinical status; with no status, active unless it records an abatement.

    FHIR R4 (con-4) allows an abatement only on a condition that is inactive, resolved or in
    remission, so an EHR that sends "abated 2020" without a status means an ended condition: a
    bleed of 2020 is not today's bleed. A stated status is trusted as stated.
    """
    if not _condition_valid(condition):
        return False
    status = _status_code(getattr(condition, "clinicalStatus", None))
    if status is None:
        return not any(getattr(condition, name, None) is not None for name in _ABATEMENTS)
    return status in _ACTIVE_CLINICAL


def _condition_since(condition: Resource) -> date | None:
    """When the condition began: `onsetDateTime` or `onsetPeriod.start`, never `recordedDate`
    (RULES.md v2 "Dates": the day a diagnosis is entered says nothing about when it began)."""
    return to_date(getattr(condition, "onsetDateTime", None)) or to_date(
        getattr(getattr(condition, "onsetPeriod", None), "start", None)
    )


def _condition_recorded(condition: Resource) -> date | None:
    return to_date(getattr(condition, "recordedDate", None))


def _matches(condition: Resource, concept_set: t.ConditionSet) -> bool:
    return any(concept_set.matches(system, code) for system, code in t.codings_of(condition.code))


def _condition_flags(conditions: Sequence[Resource]) -> tuple[set[Flag], list[Evidence]]:
    flags: set[Flag] = set()
    evidence: list[Evidence] = []
    for condition in conditions:
        if condition.code is None:
            continue
        codings = list(t.codings_of(condition.code))  # once, not once per concept set
        candidates: list[tuple[Flag, t.ConditionSet]] = []
        words = t.concept_text(condition.code)
        if _condition_active(condition):
            candidates.extend(_ACTIVE_FLAGS.items())
        elif _condition_valid(condition) and _status_code(getattr(condition, "clinicalStatus", None)) == "remission":
            candidates.extend(_REMISSION_FLAGS.items())
            words = f"{words} (recorded as in remission)"
        if _condition_valid(condition):
            candidates.extend(_HISTORY_FLAGS.items())
        postpartum = any(t.POSTPARTUM.matches(system, code) for system, code in codings)
        for flag, concept_set in candidates:
            if flag is Flag.PREGNANCY and postpartum:
                continue  # a puerperium code sits in the O chapter but means the pregnancy has ended
            if flag not in flags and any(concept_set.matches(system, code) for system, code in codings):
                flags.add(flag)
                evidence.append(
                    Evidence(
                        flag.value,
                        words if flag in _REMISSION_FLAGS else t.concept_text(condition.code),
                        _condition_since(condition),
                        _condition_recorded(condition),
                    )
                )
    return flags, evidence


def bleeding_class(pairs: Iterable[tuple[str | None, str | None]]) -> Bleeding:
    """Bleeding class of a set of codings (a Condition's code or an order's reasonCode)."""
    result = Bleeding.NONE
    for system, code in pairs:
        if t.CRITICAL_BLEEDING.matches(system, code):
            return Bleeding.CRITICAL
        if t.SIGNIFICANT_BLEEDING.matches(system, code):
            result = Bleeding.SIGNIFICANT
    return result


def _life_threatening(condition: Resource) -> bool:
    return any(
        system == t.SNOMED and code in t.LIFE_THREATENING_SEVERITY
        for system, code in t.codings_of(getattr(condition, "severity", None))
    )


def _bleeding(conditions: Sequence[Resource]) -> tuple[Bleeding, str | None, str | None]:
    """The worst active bleed (class and words), and the first minor bleed beyond the skin."""
    worst, text, minor = Bleeding.NONE, None, None
    for condition in conditions:
        if condition.code is None or not _condition_active(condition):
            continue
        codings = list(t.codings_of(condition.code))
        level = bleeding_class(codings)
        other = any(t.ANY_BLEEDING.matches(s, c) or t.MINOR_BLEEDING.matches(s, c) for s, c in codings)
        if (level is not Bleeding.NONE or other) and _life_threatening(condition):
            level = Bleeding.CRITICAL
        if level > worst:
            worst, text = level, t.concept_text(condition.code)
        elif level is Bleeding.NONE and other and minor is None:
            minor = t.concept_text(condition.code)
    return worst, text, minor


def _pregnancy(
    observations: Sequence[Resource],
    on_problem_list: bool,
    conditions: Sequence[Resource],
    now: datetime,
    settings: RuleSettings,
) -> tuple[bool, date | None, date | None, str | None]:
    """Pregnant now? From the newest recent pregnancy-status answer, else an active pregnancy condition.

    Only a status observation from the last `pregnancy_status_max_age_days` counts, and an
    "Unknown" answer is no answer: neither a "not pregnant" of last year nor an "Unknown" of
    yesterday may cancel a pregnancy on the problem list. An expected delivery date more than
    `delivery_overdue_max_days` past belongs to an earlier pregnancy and is not used. The start
    of the pregnancy (for the nadir window, RULES.md v2 "Dates") is the onset of an active
    pregnancy-state condition, else the expected delivery date minus 280 days, else unknown: the
    day the pregnancy was entered is not its start.
    """
    recent = now - timedelta(days=settings.pregnancy_status_max_age_days)
    status = [
        o
        for o in observations
        if t.has_loinc(o.code, t.PREGNANCY_STATUS_CODES) and (_observation_time(o) or _UNDATED) >= recent
    ]
    pregnant = on_problem_list
    for observation in _sorted_newest_first(status):
        answer = _pregnancy_answer(observation)
        if answer is None:
            continue  # "Unknown", or an answer this service cannot read: says nothing either way
        pregnant = answer
        break
    delivery, partial = None, None
    earliest = now.date() - timedelta(days=settings.delivery_overdue_max_days)
    for observation in _sorted_newest_first(
        [o for o in observations if t.has_loinc(o.code, frozenset({t.EXPECTED_DELIVERY_LOINC}))]
    ):
        value = getattr(observation, "valueDateTime", None)
        delivery = to_date(value)
        if delivery:
            # A month or a year only ("2026-06"): kept as written, for the cards to show.
            partial = value if isinstance(value, str) and len(value) < 10 else None
            break
    if delivery is not None and _period_end(delivery, partial) < earliest:
        delivery, partial = None, None  # past even the last day the record allows: an earlier pregnancy
    start = _pregnancy_onset(conditions, now, settings)
    if start is None and delivery is not None:
        start = delivery - timedelta(days=280)
    if not pregnant:
        return False, None, None, None
    return True, delivery, start, partial


def _period_end(first: date, partial: str | None) -> date:
    """The last day a (partial) date can mean: the month's or the year's last day, else the day itself."""
    if partial is None:
        return first
    if len(partial) == 4:
        return date(first.year, 12, 31)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return following - timedelta(days=1)


def _pregnancy_answer(observation: Resource) -> bool | None:
    """A pregnancy-status answer: pregnant, not pregnant, or None when it says neither (Unknown, or a
    code of another answer list): an answer that cannot be read never cancels a pregnancy on record."""
    answer = getattr(observation, "valueBoolean", None)
    if isinstance(answer, bool):
        return answer
    codings = set(t.codings_of(getattr(observation, "valueCodeableConcept", None)))
    if codings & t.PREGNANT_ANSWERS:
        return True
    if codings & t.NOT_PREGNANT_ANSWERS:
        return False
    return None


def _pregnancy_onset(conditions: Sequence[Resource], now: datetime, settings: RuleSettings) -> date | None:
    """The newest onset of an active pregnancy-state condition that can belong to a current
    pregnancy (not in the future, not older than a pregnancy lasts)."""
    earliest = now.date() - timedelta(days=settings.pregnancy_status_max_age_days)
    onsets = [
        onset
        for condition in conditions
        if condition.code is not None and _condition_active(condition) and _matches(condition, t.PREGNANCY_STATE)
        for onset in (_condition_since(condition),)
        if onset is not None and earliest <= onset <= now.date()
    ]
    return max(onsets, default=None)


def _medication_history(
    requests: Sequence[Resource],
    administrations: Sequence[Resource],
    medications: Mapping[str, Resource],
) -> tuple[list[IvigEvent], set[OrderKind]]:
    events: list[IvigEvent] = []
    active: set[OrderKind] = set()
    for request in requests:
        if request.status == "entered-in-error":
            continue
        kind = classify_medication(medication_concept(request, medications), request)
        if kind is OrderKind.IVIG:
            events.append(
                IvigEvent(
                    to_instant(getattr(request, "authoredOn", None)),
                    "order",
                    request.status in ("active", "on-hold"),
                    may_have_been_given=request.status not in ("cancelled", "draft"),
                )
            )
        if request.status == "active" and kind is not OrderKind.OTHER:
            active.add(kind)
    for administration in administrations:
        if administration.status in ("entered-in-error", "not-done"):
            continue
        kind = classify_medication(medication_concept(administration, medications), administration)
        if kind is OrderKind.IVIG:
            period = getattr(administration, "effectivePeriod", None)
            at = to_instant(getattr(administration, "effectiveDateTime", None)) or to_instant(
                getattr(period, "start", None)
            )
            events.append(IvigEvent(at, "administration", administration.status == "in-progress"))
    return events, active


def _is_immune_globulin(substance: object) -> bool:
    """IVIG or SCIG by code or product name, or immune globulin named generically (RULES.md "Prior IVIG
    hypersensitivity": text or the IVIG value set) but never a hyperimmune or anti-D globulin."""
    if classify_medication(substance) in (OrderKind.IVIG, OrderKind.SUBCUTANEOUS_IG):
        return True
    text = t.concept_text(substance).lower()
    if any(word in text for word in t.HYPERIMMUNE_IG_WORDS):
        return False
    words = t.standalone_words(text)
    return any(name in text for name in t.GENERIC_IG_NAMES) or any(a in words for a in t.IG_ABBREVIATIONS)


def _allergy_valid(allergy: Resource) -> bool:
    return _status_code(getattr(allergy, "verificationStatus", None)) not in _INACTIVE_VERIFICATION


def _allergy_onset(allergy: Resource) -> date | None:
    """When the reaction happened: the allergy's onset, a reaction's onset, or its last occurrence."""
    candidates = [
        to_date(getattr(allergy, "onsetDateTime", None)),
        to_date(getattr(getattr(allergy, "onsetPeriod", None), "start", None)),
        to_date(getattr(allergy, "lastOccurrence", None)),
        *(to_date(getattr(reaction, "onset", None)) for reaction in getattr(allergy, "reaction", None) or ()),
    ]
    dated = [d for d in candidates if d is not None]
    return max(dated, default=None)


def _allergy_substances(allergy: Resource) -> list[object]:
    """What the allergy is to: its code and each reaction's `substance`."""
    substances: list[object] = [allergy.code] if allergy.code is not None else []
    substances += [r.substance for r in getattr(allergy, "reaction", None) or () if getattr(r, "substance", None)]
    return substances


def _allergy_texts(allergy: Resource) -> list[str]:
    """Every free text of an allergy a clinician may have written a reaction into."""
    texts = [t.concept_text(allergy.code)] if allergy.code is not None else []
    for coding in getattr(allergy.code, "coding", None) or ():
        texts.append(str(coding.display or ""))
    for reaction in getattr(allergy, "reaction", None) or ():
        texts.append(str(getattr(reaction, "description", None) or ""))
        for manifestation in reaction.manifestation or ():
            texts.append(t.concept_text(manifestation))
            texts.extend(str(c.display or "") for c in getattr(manifestation, "coding", None) or ())
    texts.extend(str(getattr(note, "text", None) or "") for note in getattr(allergy, "note", None) or ())
    return [text for text in texts if text]


def _manifestations(allergy: Resource) -> list[object]:
    return [m for r in getattr(allergy, "reaction", None) or () for m in r.manifestation or ()]


def _ivig_reactions(allergies: Sequence[Resource]) -> tuple[str, ...]:
    """Allergies to immune globulin that contraindicate IVIG (RULES.md "Prior IVIG hypersensitivity"):
    a reaction of anaphylaxis (coded 39579001, or the word in the reaction's text) or a high
    criticality. Each as a card lists it, with its onset when known."""
    found = []
    for allergy in allergies:
        if not _allergy_valid(allergy) or not any(_is_immune_globulin(s) for s in _allergy_substances(allergy)):
            continue
        coded = any(
            t.ANAPHYLAXIS.matches(system, code) for m in _manifestations(allergy) for system, code in t.codings_of(m)
        )
        written = any(t.ANAPHYLAXIS_WORDS.search(text) for text in _allergy_texts(allergy))
        high = allergy.criticality == "high"
        if not (coded or written or high):
            continue
        why = "anaphylaxis" if coded or written else "criticality high"
        onset = _allergy_onset(allergy)
        substance = t.concept_text(allergy.code) or "immune globulin"
        found.append(f"{substance}: {why}" + (f" ({onset.isoformat()})" if onset else ""))
    return tuple(found)


def _hit_allergies(
    allergies: Sequence[Resource],
    now: datetime,
    settings: RuleSettings,
    flags: set[Flag],
    evidence: list[Evidence],
) -> None:
    """HIT kept on the allergy list (RULES.md v2 "HIT on record"): HIT on record whatever the
    allergy's clinical status (heparin is refused, as for a resolved HIT condition), and current
    HIT (`Flag.HIT`, read by the rules about HIT now) only when the reaction happened within
    `hit_allergy_current_days`: a heparin allergy of 2015 says to avoid heparin, not that the
    patient has HIT today."""
    for allergy in allergies:
        if not _allergy_valid(allergy) or not _is_hit_allergy(allergy):
            continue
        onset = _allergy_onset(allergy)
        substance = t.concept_text(allergy.code) or "heparin"
        record = Evidence(
            Flag.HIT_HISTORY.value,
            f"allergy to {substance} with heparin-induced thrombocytopenia",
            onset,
            to_date(getattr(allergy, "recordedDate", None)),
        )
        if Flag.HIT_HISTORY not in flags:
            flags.add(Flag.HIT_HISTORY)
            evidence.append(record)
        recent = onset is not None and (now.date() - onset).days <= settings.hit_allergy_current_days
        if recent and Flag.HIT not in flags:
            flags.add(Flag.HIT)
            evidence.append(Evidence(Flag.HIT.value, record.text, record.since, record.recorded))


def _is_hit_allergy(allergy: Resource) -> bool:
    """A reaction coded as HIT on any allergy, or HIT (or thrombocytopenia) in the words of an allergy
    to a heparin, unless the words say HIT was excluded."""
    for manifestation in _manifestations(allergy):
        if any(t.HIT.matches(system, code) for system, code in t.codings_of(manifestation)):
            return True
    if not any(classify_medication(s) is OrderKind.HEPARIN for s in _allergy_substances(allergy)):
        return False
    for manifestation in _manifestations(allergy):
        if any(t.THROMBOCYTOPENIA.matches(system, code) for system, code in t.codings_of(manifestation)):
            return True
    texts = _allergy_texts(allergy)
    if any(t.HIT_NEGATED.search(text) for text in texts):
        return False
    return any(
        t.HIT_WORDS.search(text) or t.HIT_WORDS_ANY_CASE.search(text) or t.THROMBOCYTOPENIA_WORDS.search(text)
        for text in texts
    )


# --- weights: plausible for the age, or not used for dosing -------------------------------------


def _weights(
    observations: Sequence[Resource],
    birth_date: date | None,
    settings: RuleSettings,
    unreadable: list[str],
) -> tuple[Measurement | None, Measurement | None]:
    """The newest weight plausible for the age it was taken at, and the newest implausible one
    newer than it (RULES.md v2 "Weight plausibility"): a weight of 3200 "kg" for a neonate is a
    unit slip, and a dose computed from it would be a thousandfold wrong."""
    implausible: Measurement | None = None
    candidates = [o for o in observations if t.has_loinc(o.code, t.WEIGHT_LOINC)]
    for observation in _sorted_newest_first(candidates):
        quantity = getattr(observation, "valueQuantity", None)
        value = _convert(quantity, t.WEIGHT_UNIT_FACTORS)
        at = _observation_time(observation)
        if value is None:
            recorded = _as_recorded(quantity) if quantity is not None else "no quantity"
            dated = at.date().isoformat() if at else "undated"
            unreadable.append(f"Weight of {dated}: {recorded} (unit or value not readable)")
            continue
        measurement = Measurement(value, "kg", at, _as_recorded(quantity), quantity.comparator)
        age_days = (at.date() - birth_date).days if at is not None and birth_date is not None else None
        low, high = settings.weight_bounds(age_days)
        if not low <= value <= high:
            implausible = implausible or measurement
            continue
        return measurement, implausible
    return None, implausible


# --- IgA before the first IVIG ------------------------------------------------------------------


def _first_ivig(
    events: Sequence[IvigEvent],
    allergies: Sequence[Resource],
    history_known: bool,
) -> tuple[datetime | None, bool]:
    """The earliest IVIG that may have been given, and whether that is known at all."""
    given = [e for e in events if e.may_have_been_given]
    known = history_known and all(e.at is not None for e in given)
    moments = [e.at for e in given if e.at is not None]
    for allergy in allergies:  # a reaction to immune globulin shows it was given by then
        onset = _allergy_onset(allergy)
        if (
            onset is not None
            and _allergy_valid(allergy)
            and any(_is_immune_globulin(s) for s in _allergy_substances(allergy))
        ):
            moments.append(datetime.combine(onset, datetime.min.time(), tzinfo=UTC))
    return min(moments, default=None), known


def _iga_status(
    observations: Sequence[Resource],
    birth_date: date | None,
    first_ivig: datetime | None,
    first_known: bool,
    settings: RuleSettings,
) -> IgaStatus:
    deficient = pre = post = None
    results = [o for o in observations if t.has_loinc(o.code, t.IGA_LOINC)]
    for observation in _sorted_newest_first(results):
        quantity = getattr(observation, "valueQuantity", None)
        value = _convert(quantity, t.IGA_UNIT_FACTORS)
        if value is None:
            continue  # said by `_latest` when newer than the result used
        at = _observation_time(observation)
        measurement = Measurement(value, "mg/dL", at, _as_recorded(quantity), quantity.comparator)
        low = value < settings.iga_deficient_mg_dl or (
            quantity.comparator in ("<", "<=") and value <= settings.iga_deficient_mg_dl
        )
        if low:
            # Serum IgA is physiologically near absent in early infancy: a low result then is no deficiency.
            infant = (
                at is not None
                and birth_date is not None
                and (at.date() - birth_date).days < settings.iga_screening_min_age_days
            )
            if not infant and deficient is None:
                deficient = measurement
            continue
        before_ivig = first_known and at is not None and (first_ivig is None or at < first_ivig)
        if before_ivig and pre is None:
            pre = measurement
        elif not before_ivig and post is None:
            post = measurement
    return IgaStatus(deficient, pre, post, first_ivig, first_known)


# --- eGFR computed from creatinine ----------------------------------------------------------------


def _computed_egfr(
    creatinine: Measurement | None,
    birth_date: date | None,
    sex: str | None,
    height: Measurement | None,
    settings: RuleSettings,
) -> ComputedEgfr | None:
    """eGFR from the newest serum creatinine (RULES.md v2 "eGFR"): CKD-EPI 2021 without a race term
    for adults, bedside Schwartz for children with a recent height. None when the equation's
    inputs are missing (no age, a child with no height, an infant below the equation's range)."""
    if creatinine is None or creatinine.at is None or birth_date is None or creatinine.value <= 0:
        return None
    taken = creatinine.at.date()
    age_days = (taken - birth_date).days
    years = completed_years(birth_date, taken)
    if years >= settings.adult_age_years:
        value, used = renal.ckd_epi_2021(creatinine.value, years, sex)
        return ComputedEgfr(value, "CKD-EPI 2021", creatinine, used)
    if age_days < settings.schwartz_min_age_days or height is None or height.at is None:
        return None
    if abs((creatinine.at - height.at).days) > settings.child_height_max_age_days:
        return None
    value = renal.bedside_schwartz(creatinine.value, height.value)
    return ComputedEgfr(value, "bedside Schwartz", creatinine, f"height {height.value:g} cm")


# --- ITP: when it was diagnosed -----------------------------------------------------------------


def _itp_diagnosis(
    conditions: Sequence[Resource], events: Sequence[IvigEvent], history_known: bool
) -> ItpDiagnosis | None:
    dated: list[tuple[date, bool]] = []  # (date, is an onset)
    for condition in conditions:
        if condition.code is None or not _condition_valid(condition) or not _matches(condition, t.ITP):
            continue
        onset, recorded = _condition_since(condition), _condition_recorded(condition)
        if onset is not None:
            dated.append((onset, True))
        if recorded is not None:
            dated.append((recorded, False))
    if not dated:
        return None
    first, is_onset = min(dated, key=lambda item: (item[0], not item[1]))
    if is_onset:
        return ItpDiagnosis(first, True, "onset")
    given = [e for e in events if e.may_have_been_given]
    earlier_ivig = any(e.at is None or e.at.date() < first for e in given)
    if history_known and not earlier_ivig:
        return ItpDiagnosis(first, True, "first ITP record, no earlier IVIG on record")
    return ItpDiagnosis(first, False, "recorded (onset not on record)")


def _anti_iga(conditions: Sequence[Resource], observations: Sequence[Resource]) -> bool:
    """Anti-IgA antibodies on record: a positive coded lab result, or a condition that says so."""
    for condition in conditions:
        if _condition_valid(condition) and "anti-iga" in t.concept_text(condition.code).lower():
            return True
    for observation in observations:
        if not (
            t.has_loinc(observation.code, t.ANTI_IGA_LOINC) or "anti-iga" in t.concept_text(observation.code).lower()
        ):
            continue
        answer = getattr(observation, "valueCodeableConcept", None)
        if any(code in t.POSITIVE_ANSWERS for _, code in t.codings_of(answer)):
            return True
        if "positive" in t.concept_text(answer).lower() or getattr(observation, "valueBoolean", None):
            return True
    return False
