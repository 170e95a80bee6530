"""Every threshold, window and institutional policy choice the rules use, in one reviewed place.

Why one frozen object: a clinical governance committee changes a cut-off by editing one default
(or one `IVIG_CDS_RULE_*` environment variable), and a test can build a variant with
`dataclasses.replace` without touching global state. Defaults are those of RULES.md.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, timedelta, tzinfo
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True)
class RuleSettings:
    # Freshness and look-back windows.
    platelet_fresh_hours: float = 72.0  # RULES.md "Fresh": latest PLT ≤72 h old
    nadir_lookback_days: int = 90  # nadir outside pregnancy
    weight_max_age_days: int = 30  # weight usable for dosing
    renal_lab_max_age_days: int = 30  # creatinine/eGFR considered current
    duplicate_ivig_hours: float = 72.0  # IVIG given within this window → possible duplicate
    # How far back the record is read (hooks/data_needs.py says why each span is enough). The other
    # spans are the windows above and below: platelets the nadir window or the pregnancy, weight and
    # renal function their freshness windows, pregnancy observations their relevance window.
    height_lookback_days: int = 3653  # adult height is stable: ten years
    ivig_history_lookback_days: int = 1826  # "prior IVIG" and medication history: five years

    # Plausibility of a platelet count after unit conversion (10^9/L).
    platelet_min_plausible: float = 1.0
    platelet_max_plausible: float = 2000.0
    # Plausible weights by age (RULES.md v2 "Weight plausibility"), as "from-age:min-max" bands
    # (age in d or y, weights in kg) read in order: a weight outside its band is not used for
    # dosing. The neonatal maximum (10 kg), the 300 kg ceiling and the 0.3 kg floor are the rule
    # book's. The bands between are set far outside the extremes of the WHO Child Growth Standards
    # (0–5 years, ±3 SD) and the CDC growth charts (2–20 years), so a real child at an extreme
    # percentile is never refused: what they catch is grams typed as kilograms, pounds at the
    # extremes, and a dropped or added digit. Without a birth date the widest band applies.
    weight_plausible_bands: str = "0d:0.3-10; 28d:0.3-25; 1y:2-100; 6y:5-200; 12y:10-300"

    # Thresholds (10^9/L unless stated).
    critical_bleeding_platelets: float = 50.0  # critical/significant bleeding cut-off
    thrombocytopenia_scope_platelets: float = 100.0  # below this, thrombocytopenia rules apply
    corticosteroid_first_platelets: float = 30.0  # ASH19: <30 → corticosteroids first-line
    admission_platelets: float = 20.0  # ASH19: <20 newly diagnosed → consider admission
    rapid_rise_platelets: float = 20.0  # PLT <20 means a rapid rise is needed
    neuraxial_target_platelets: float = 70.0  # pregnancy: target for neuraxial anaesthesia
    egfr_risk_threshold: float = 60.0  # eGFR <60 is an IVIG renal risk factor
    iga_deficient_mg_dl: float = 7.0  # IgA <7 mg/dL is deficiency
    # Serum IgA is physiologically near absent in early infancy, so a screening result then cannot
    # show deficiency: iga-screening starts at this age (a departure from RULES.md, see the note).
    iga_screening_min_age_days: int = 183
    # HIT kept only on the allergy list is current HIT (not only a reason to avoid heparin) when the
    # reaction happened this recently: HIT antibodies are usually gone by about 100 days, and
    # heparin re-exposure within 100 days can bring rapid-onset HIT (Warkentin & Kelton, NEJM 2001).
    hit_allergy_current_days: int = 100
    # eGFR computed from creatinine in children (bedside Schwartz, JASN 2009): the equation was
    # derived from 1 year of age, and needs a height measured near the creatinine (a child grows).
    schwartz_min_age_days: int = 365
    child_height_max_age_days: int = 90
    elderly_age_years: int = 65  # age >65 (completed years, so from the 66th birthday): an IVIG risk factor

    # Populations and disease phase (RULES.md: `neonatal` age <28 days, `pediatric-itp` age <18).
    adult_age_years: int = 18  # adult thresholds and adjusted dosing weight from this age
    neonate_max_age_days: int = 28  # a neonate is younger than this
    newly_diagnosed_itp_days: int = 90  # ASH19: newly diagnosed ITP is <3 months from diagnosis

    # Dosing.
    rapid_dose_g_per_kg: float = 1.0
    standard_daily_dose_g_per_kg: float = 0.4
    dose_tolerance_fraction: float = 0.10  # within 10 % of 1 g/kg or 0.4 g/kg
    max_course_g_per_kg: float = 2.0
    pediatric_min_dose_g_per_kg: float = 0.8  # ASH19: children, IVIG 0.8–1 g/kg single dose
    prednisone_mg_per_kg_day: float = 1.0

    # Adjusted dosing weight policy (institutional): IBW + factor × (actual − IBW).
    adjusted_weight_enabled: bool = True
    adjusted_weight_bmi: float = 30.0  # BMI ≥ this → adjusted weight
    adjusted_weight_kg: float = 100.0  # or weight > this → adjusted weight
    adjusted_weight_factor: float = 0.4

    # Pregnancy.
    delivery_horizon_days: int = 14
    # A pregnancy-status observation older than this says nothing about now (a pregnancy lasts
    # at most about 300 days), and an expected delivery date further in the past than this
    # belongs to a pregnancy that has ended (42 weeks is post-term).
    pregnancy_status_max_age_days: int = 300
    delivery_overdue_max_days: int = 14
    # Khalife et al. 2025 (S000): the study's own cut-offs for a favourable IVIG response in
    # pregnancy. They describe its cohort, so change them only if the evidence changes.
    pregnancy_nadir_favourable_below: float = 30.0  # nadir <30 ×10^9/L (OR 6.29)
    pregnancy_ipf_favourable_below: float = 16.0  # IPF <16 % (OR 4.85)
    pregnancy_pre_ivig_favourable_below: float = 50.0  # pre-IVIG count <50 ×10^9/L (OR 8.67)
    pregnancy_less_likely_from: float = 70.0  # pre-IVIG 70–100: less likely to rise by ≥20

    # Local order codes for a platelet transfusion besides SNOMED CT 180208003, as "system|code".
    platelet_transfusion_codes: frozenset[str] = frozenset()

    # Presentation.
    minimum_indicator: str = "info"  # info | warning | critical: cards below are not shown
    disabled_rules: frozenset[str] = frozenset()
    # The deployment's time zone (an IANA name such as Europe/Paris): cards show times in it, and
    # "today" (days to delivery, age) is its calendar day. Values are compared as instants regardless.
    display_time_zone: str = "UTC"

    @property
    def platelet_fresh(self) -> timedelta:
        return timedelta(hours=self.platelet_fresh_hours)

    @property
    def platelet_transfusion_codings(self) -> frozenset[tuple[str, str]]:
        """`platelet_transfusion_codes` as the (system, code) pairs a draft's codings are matched against."""
        return frozenset(tuple(code.rsplit("|", 1)) for code in self.platelet_transfusion_codes)  # type: ignore[misc]

    @property
    def display_zone(self) -> tzinfo:
        return UTC if self.display_time_zone == "UTC" else ZoneInfo(self.display_time_zone)

    def weight_bounds(self, age_days: int | None) -> tuple[float, float]:
        """The plausible weight range (kg) at an age in days; the widest one when the age is unknown."""
        bands = parse_weight_bands(self.weight_plausible_bands)
        if age_days is None:
            return min(low for _, low, _ in bands), max(high for _, _, high in bands)
        low, high = bands[0][1], bands[0][2]
        for start, band_low, band_high in bands:
            if age_days >= start:
                low, high = band_low, band_high
        return low, high

    def with_overrides(self, overrides: dict[str, str]) -> RuleSettings:
        """A copy with string overrides (from the environment) converted to each field's type.

        Unknown names and unparseable values raise ValueError so a typo in deployment
        configuration stops the service at start instead of silently using the default.
        """
        known = {f.name: f for f in fields(self)}
        changes: dict[str, object] = {}
        for name, raw in overrides.items():
            if name not in known:
                raise ValueError(f"unknown rule setting {name!r}")
            current = getattr(self, name)
            changes[name] = _convert(name, raw, current)
        values = {f.name: getattr(self, f.name) for f in fields(self)} | changes
        result = RuleSettings(**values)  # type: ignore[arg-type]
        result.validate()
        return result

    def validate(self) -> None:
        if self.minimum_indicator not in ("info", "warning", "critical"):
            raise ValueError("minimum_indicator must be info, warning or critical")
        try:
            self.display_zone  # noqa: B018  (resolving the name is the check)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"display_time_zone {self.display_time_zone!r} is not an IANA time zone (e.g. Europe/Paris, UTC)"
            ) from None
        for code in self.platelet_transfusion_codes:
            system, _, value = code.rpartition("|")
            if not system or not value:
                raise ValueError(f"platelet_transfusion_codes entry {code!r} is not 'system|code'")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                raise ValueError(f"rule setting {f.name} must not be negative")
        parse_weight_bands(self.weight_plausible_bands)


_AGE_UNITS = {"d": 1, "y": 365.25}


def parse_weight_bands(text: str) -> list[tuple[int, float, float]]:
    """ "0d:0.3-10; 28d:0.3-25" as [(from age in days, min kg, max kg)], in increasing age.

    A ValueError names what is wrong, so a mistyped band stops the service at start."""
    bands = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        try:
            age, _, limits = part.partition(":")
            age = age.strip()
            start = round(float(age[:-1]) * _AGE_UNITS[age[-1]])
            low, _, high = limits.partition("-")
            bands.append((start, float(low), float(high)))
        except (KeyError, ValueError, IndexError):
            raise ValueError(f"weight band {part!r} is not 'age(d|y):min-max'") from None
    if not bands or bands[0][0] != 0:
        raise ValueError("weight_plausible_bands must start with a band from age 0d")
    if any(a[0] >= b[0] for a, b in pairwise(bands)):
        raise ValueError("weight_plausible_bands must be in increasing age")
    if any(not 0 < low < high for _, low, high in bands):
        raise ValueError("each weight band needs 0 < min < max")
    return bands


def parse_text(raw: str, like: object) -> object:
    """`raw` (an environment value) as the type of `like`; the ValueError says what was expected.

    Shared with the service configuration, so a boolean, number or list is spelled the same way in
    every `IVIG_CDS_*` variable.
    """
    text = raw.strip()
    if isinstance(like, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expects true or false, got {raw!r}")
    if isinstance(like, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expects a whole number, got {raw!r}") from None
    if isinstance(like, float):
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expects a number, got {raw!r}") from None
    if isinstance(like, frozenset):
        return frozenset(part.strip() for part in text.split(",") if part.strip())
    return text


def _convert(name: str, raw: str, current: object) -> object:
    try:
        return parse_text(raw, current)
    except ValueError as error:
        raise ValueError(f"rule setting {name} {error}") from None


DEFAULT_SETTINGS = RuleSettings()
