"""The rule registry and what every rule sees: one `RuleContext`, computed once per request.

Why a context object: "is the latest platelet count fresh?", "how much is bleeding?", "what is the
dosing weight?" are shared definitions of the rule book. Computing them once here means two rules
can never disagree about them, and a rule reads like its row in RULES.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from functools import cached_property

from hooks import terminology as t
from hooks.citations import Citation
from hooks.dose_rounding import kg_text
from hooks.facts import Bleeding, DataKind, Flag, Measurement, PatientFacts, PlateletCount, bleeding_class
from hooks.findings import Finding, Indicator, Suggestion
from hooks.orders import DraftOrder, OrderKind
from hooks.settings import RuleSettings
from hooks.timeutil import anniversary, describe_instant

RuleFunction = Callable[["RuleContext", "Rule"], Iterable[Finding]]
_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Rule:
    """One row of the rule book: its id, when it fires, how loud, what it advises, and why."""

    id: str
    title: str
    trigger: str
    indicator: str
    advice: str
    citations: tuple[Citation, ...]
    evaluate: RuleFunction = field(compare=False, repr=False)

    def describe(self, settings: RuleSettings) -> dict[str, str]:
        """Title, trigger, indicator and advice as the settings in force make them.

        The texts are templates over the settings ("below {critical_bleeding_platelets:g}"), so the
        catalogue a governance committee reads says "below 30" when the deployment set 30, not the
        rule book's default.
        """
        values = {f.name: getattr(settings, f.name) for f in fields(settings)}
        return {
            "title": self.title.format_map(values),
            "trigger": self.trigger.format_map(values),
            "indicator": self.indicator.format_map(values),
            "advice": self.advice.format_map(values),
        }

    def finding(
        self,
        indicator: Indicator,
        summary: str,
        evidence: Sequence[str],
        advice: Sequence[str],
        suggestions: Sequence[Suggestion] = (),
        order: str | None = None,
        citations: Sequence[Citation] | None = None,
    ) -> Finding:
        """One card's content. `citations` narrows the rule's sources to those this card's advice
        rests on (a Kawasaki dose cites the Kawasaki statement, not the ITP guideline); each source
        once, and only sources the rule catalogue lists for the rule."""
        cited = self.citations
        if citations is not None:
            if not set(citations) <= set(self.citations):
                raise ValueError(f"finding {self.id} cites a source its rule does not list")
            cited = tuple(c for c in self.citations if c in set(citations))  # in the catalogue's order
        return Finding(
            rule=self.id,
            indicator=indicator,
            summary=summary,
            evidence=tuple(evidence),
            advice=tuple(advice),
            citations=cited,
            suggestions=tuple(suggestions),
            order=order,
        )


REGISTRY: dict[str, Rule] = {}


def rule(
    id: str,
    *,
    title: str,
    trigger: str,
    indicator: str,
    advice: str,
    citations: tuple[Citation, ...],
) -> Callable[[RuleFunction], RuleFunction]:
    def register(function: RuleFunction) -> RuleFunction:
        if id in REGISTRY:
            raise ValueError(f"rule id {id!r} registered twice")
        REGISTRY[id] = Rule(id, title, trigger, indicator, advice, citations, function)
        return function

    return register


@dataclass(frozen=True)
class DosingWeight:
    kg: float
    basis: str  # "actual" or "adjusted"
    explanation: str
    # Why the adjusted-weight policy should have applied but could not (no adult height, sex
    # unknown): the dose on actual weight may then be too high, which dose-check must say.
    caveat: str | None = None


@dataclass(frozen=True)
class RuleContext:
    facts: PatientFacts
    drafts: tuple[DraftOrder, ...]  # every draft order of the request
    targets: tuple[DraftOrder, ...]  # the ones to judge (order-select: the selections)
    settings: RuleSettings
    now: datetime

    # --- orders ----------------------------------------------------------------------------
    def targets_of(self, kind: OrderKind) -> list[DraftOrder]:
        return [order for order in self.targets if order.kind is kind]

    def drafted(self, kind: OrderKind) -> bool:
        return any(order.kind is kind for order in self.drafts)

    def ordered_or_active(self, kind: OrderKind) -> bool:
        return self.drafted(kind) or kind in self.facts.active_medications

    @property
    def ivig_orders(self) -> list[DraftOrder]:
        return self.targets_of(OrderKind.IVIG)

    def lacks(self, *kinds: DataKind) -> bool:
        return any(kind in self.facts.unavailable for kind in kinds)

    # --- platelets -------------------------------------------------------------------------
    @cached_property
    def latest_platelets(self) -> PlateletCount | None:
        return self.facts.latest_platelets

    @cached_property
    def platelet_stale(self) -> bool:
        latest = self.latest_platelets
        if latest is None or latest.at is None:
            return False
        return self.now - latest.at > self.settings.platelet_fresh

    @cached_property
    def platelet_problem(self) -> str | None:
        """Why the latest count cannot be used for thresholds (None when it can, or there is none)."""
        latest = self.latest_platelets
        if latest is None:
            return None
        if latest.problem:
            return latest.problem
        if self.platelet_stale:
            hours = self.settings.platelet_fresh_hours
            return f"the latest count is older than {hours:g} hours"
        return None

    @cached_property
    def platelets(self) -> float | None:
        """The latest count in 10^9/L when it is usable and fresh; None otherwise."""
        latest = self.latest_platelets
        if latest is None or self.platelet_problem is not None:
            return None
        return latest.value

    @cached_property
    def latest_valid_platelets(self) -> PlateletCount | None:
        """The newest count with a usable value, whatever its age (critical bleeding uses it)."""
        return next((p for p in self.facts.platelets if p.value is not None), None)

    def platelet_line(self, count: PlateletCount | None = None) -> str:
        count = count or self.latest_platelets
        if count is None and self.lacks(DataKind.PLATELETS):
            return "Platelet count: could not be retrieved"
        if count is None:
            days = max(self.settings.nadir_lookback_days, self.settings.pregnancy_status_max_age_days)
            return f"Platelet count: none on record in the last {days} days"
        shown = f"{count.value:g} ×10⁹/L" if count.value is not None else "not usable"
        return f"Platelet count: {shown} (as recorded: {count.as_recorded}; {describe_instant(count.at, self.now)})"

    @cached_property
    def thrombocytopenia_context(self) -> bool:
        """Platelet advice applies: ITP/thrombocytopenia/HIT on record, or a count below 100."""
        if self.facts.flags & {Flag.ITP, Flag.THROMBOCYTOPENIA, Flag.HIT}:
            return True
        if self.drafted(OrderKind.PLATELET_TRANSFUSION):
            return True
        valid = self.latest_valid_platelets
        return (
            valid is not None
            and valid.value is not None
            and valid.value < self.settings.thrombocytopenia_scope_platelets
        )

    @cached_property
    def platelet_count_needed(self) -> bool:
        """Where thrombocytopenia rules apply and no count says so (RULES.md v2 `no-platelet-count`):
        ITP, thrombocytopenia or current HIT on record, a platelet transfusion drafted, bleeding, or
        an order whose reason is ITP or thrombocytopenia. When the problem list could not be read
        the indication is unknown, and a count is asked for."""
        if self.facts.flags & {Flag.ITP, Flag.THROMBOCYTOPENIA, Flag.HIT}:
            return True
        if self.drafted(OrderKind.PLATELET_TRANSFUSION) or self.bleeding >= Bleeding.SIGNIFICANT:
            return True
        if DataKind.CONDITIONS in self.facts.unavailable:
            return True
        return any(
            t.ITP.matches(system, code) or t.THROMBOCYTOPENIA.matches(system, code)
            for order in self.drafts
            for system, code in order.reason_codes
        )

    @cached_property
    def itp_directed(self) -> bool:
        """IVIG aimed at immune thrombocytopenia: ITP on record, or unexplained thrombocytopenia.

        Thrombocytopenia explained by HIT, sepsis or DIC, or in a neonate, is not ITP; those have
        their own rules, so the adult ITP framing (treatment thresholds) must not speak for them. A
        current HIT outranks an ITP on record: "corticosteroids first-line" beside "IVIG only for
        refractory HIT" would be two cards contradicting each other.
        """
        if not self.ivig_orders:
            return False
        flags = self.facts.flags
        if Flag.HIT in flags:
            return False  # RULES.md v2: in HIT, IVIG is framed by hit-ivig alone, never as ITP treatment
        if Flag.ITP in flags:
            return True
        explained = flags & {Flag.HIT, Flag.SEPSIS, Flag.DIC}
        return Flag.THROMBOCYTOPENIA in flags and not explained and not self.neonate

    @property
    def adult(self) -> bool:
        age = self.facts.age_years
        return age is None or age >= self.settings.adult_age_years

    @property
    def neonate(self) -> bool:
        return self.facts.age_days is not None and self.facts.age_days < self.settings.neonate_max_age_days

    @cached_property
    def rapid_rise_reasons(self) -> list[str]:
        """Why a rapid platelet rise is needed (RULES.md "Rapid rise needed"); empty when it is not."""
        reasons = []
        if self.bleeding >= Bleeding.SIGNIFICANT:
            reasons.append("critical bleeding" if self.bleeding is Bleeding.CRITICAL else "significant bleeding")
        if self.platelets is not None and self.platelets < self.settings.rapid_rise_platelets:
            reasons.append(f"platelets {self.platelets:g} < {self.settings.rapid_rise_platelets:g}")
        if self.drafted(OrderKind.URGENT_SURGERY):
            reasons.append("an urgent surgical procedure is ordered")
        if any(o.priority in t.URGENT_PRIORITIES for o in self.ivig_orders):
            reasons.append(f"the IVIG order's priority is {self.ivig_orders[0].priority}")
        # RULES.md v2: a delivery within the pregnancy horizon (overdue included) needs a rapid rise too.
        delivery = self.facts.expected_delivery
        if self.facts.pregnant and delivery is not None:
            days = (delivery - self.now.date()).days
            if days <= self.settings.delivery_horizon_days:
                when = self.delivery_when.replace(" (day not recorded)", ", day not recorded")
                reasons.append(f"delivery {when}" if when.startswith("overdue") else f"delivery expected {when}")
        return reasons

    @property
    def delivery_when(self) -> str:
        """ "in 5 days", "overdue by 3 days", or "in June 2026 (day not recorded)" for a date the record
        gives only to the month or year: never a count of days the record does not give."""
        delivery, partial = self.facts.expected_delivery, self.facts.expected_delivery_partial
        if delivery is None:
            return "date not on record"
        if partial is not None:
            period = delivery.strftime("%B %Y") if len(partial) > 4 else partial
            return f"in {period} (day not recorded)"
        days = (delivery - self.now.date()).days
        return f"in {days} days" if days >= 0 else f"overdue by {-days} days"

    @property
    def delivery_date_text(self) -> str:
        """The expected delivery as a card shows it: the date, or the month as recorded."""
        delivery, partial = self.facts.expected_delivery, self.facts.expected_delivery_partial
        if delivery is None:
            return "not on record"
        return f"{partial} (day not recorded)" if partial is not None else delivery.isoformat()

    @cached_property
    def nadir(self) -> PlateletCount | None:
        """Lowest usable count in the current pregnancy, else in the look-back window."""
        start = self.episode_start
        window = [p for p in self.facts.platelets if p.value is not None and p.at is not None and p.at >= start]
        return min(window, key=lambda p: p.value or 0.0, default=None)

    @cached_property
    def pregnancy_start_line(self) -> str | None:
        """Said on a card when the nadir window falls back to the look-back because the start of
        the pregnancy is not on record (RULES.md v2 "Dates")."""
        if not self.facts.pregnant or self.facts.pregnancy_start is not None:
            return None
        return (
            "Pregnancy start: not on record (no onset, no expected delivery date); counts are read "
            f"from the last {self.settings.nadir_lookback_days} days"
        )

    @cached_property
    def newly_diagnosed_itp(self) -> bool:
        """ITP diagnosed less than `newly_diagnosed_itp_days` ago, by an onset or a first ITP record with
        no earlier IVIG (RULES.md v2 "Dates"); a recent `recordedDate` alone is not a new diagnosis."""
        diagnosis = self.facts.itp_diagnosis
        if diagnosis is None or not diagnosis.exact:
            return False
        return (self.now.date() - diagnosis.on_or_before).days < self.settings.newly_diagnosed_itp_days

    @cached_property
    def itp_diagnosis_line(self) -> str | None:
        diagnosis = self.facts.itp_diagnosis
        if diagnosis is None:
            return None
        when = diagnosis.on_or_before.isoformat()
        if diagnosis.exact:
            line = f"ITP on record since {when} ({diagnosis.basis})"
        else:
            line = f"ITP on record, entered {when}; onset not on record"
        return line + (" (newly diagnosed)" if self.newly_diagnosed_itp else "")

    @cached_property
    def episode_start(self) -> datetime:
        """Where the current episode's values begin: the current pregnancy, else the look-back window."""
        if self.facts.pregnancy_start is not None:
            return datetime.combine(self.facts.pregnancy_start, datetime.min.time(), tzinfo=self.now.tzinfo)
        return self.now - timedelta(days=self.settings.nadir_lookback_days)

    def recent(self, at: datetime | None, days: int) -> bool:
        return at is not None and self.now - at <= timedelta(days=days)

    @cached_property
    def renal_egfr(self) -> tuple[float, str, datetime | None] | None:
        """The eGFR to judge renal risk by: the lab's, or one computed from a newer creatinine when
        the lab sent none with it (RULES.md v2 "eGFR"); with how it was obtained, for the card."""
        reported, computed = self.facts.egfr, self.facts.computed_egfr
        if computed is not None and (reported is None or (reported.at or _EPOCH) < (computed.creatinine.at or _EPOCH)):
            creatinine = computed.creatinine
            how = (
                f"computed by {computed.equation} from creatinine {creatinine.as_recorded} "
                f"({computed.inputs}; {describe_instant(creatinine.at, self.now)})"
            )
            return float(round(computed.value)), how, creatinine.at  # eGFR is reported in whole units
        if reported is not None:
            return reported.value, describe_instant(reported.at, self.now), reported.at
        return None

    @cached_property
    def recent_renal_lab(self) -> bool:
        days = self.settings.renal_lab_max_age_days
        return any(m is not None and self.recent(m.at, days) for m in (self.facts.creatinine, self.facts.egfr))

    # --- bleeding --------------------------------------------------------------------------
    @cached_property
    def bleeding(self) -> Bleeding:
        from_orders = max((bleeding_class(order.reason_codes) for order in self.drafts), default=Bleeding.NONE)
        return max(self.facts.bleeding, from_orders)

    @cached_property
    def no_bleeding(self) -> bool:
        """No bleeding on record *and* the problem list was read: advice that is only right without
        bleeding must not be given when the conditions could not be read (absence is not known)."""
        return self.bleeding is Bleeding.NONE and DataKind.CONDITIONS not in self.facts.unavailable

    @property
    def no_bleeding_words(self) -> str:
        """How a summary says there is no significant bleeding: "no bleeding" only when none at all is
        on record; beside a nosebleed or bleeding gums, "no significant bleeding"."""
        return "no significant bleeding" if self.facts.minor_bleeding else "no bleeding"

    @cached_property
    def bleeding_line(self) -> str:
        if self.bleeding is Bleeding.NONE and DataKind.CONDITIONS in self.facts.unavailable:
            return "Bleeding: unknown (the problem list could not be read)"
        if self.bleeding is Bleeding.NONE and self.facts.minor_bleeding:
            return f"Bleeding: minor (beyond the skin): {self.facts.minor_bleeding}; none significant"
        if self.bleeding is Bleeding.NONE:
            return "Bleeding: none recorded"
        where = self.facts.bleeding_evidence or "stated as the order's reason"
        level = "critical (life-threatening)" if self.bleeding is Bleeding.CRITICAL else "significant"
        return f"Bleeding: {level}: {where}"

    # --- weight ----------------------------------------------------------------------------
    @cached_property
    def implausible_weight(self) -> Measurement | None:
        """The newest weight of the dosing window when it is implausible for the age (RULES.md v2
        "Weight plausibility"): it is not used, and the cards say why."""
        weight = self.facts.implausible_weight
        if weight is None or weight.at is None:
            return None
        if self.now - weight.at > timedelta(days=self.settings.weight_max_age_days):
            return None
        return weight

    def implausible_weight_line(self, weight: Measurement) -> str:
        age = self.facts.age_days
        if age is None:
            who = "anyone"
        elif age < self.settings.neonate_max_age_days:
            who = f"a neonate ({age} days old)"
        elif age < 365:
            who = f"an infant of {age} days"
        else:
            who = f"age {self.facts.age_years}"
        at_age = (weight.at.date() - self.facts.birth_date).days if weight.at and self.facts.birth_date else None
        low, high = self.settings.weight_bounds(at_age)
        return (
            f"Weight {weight.as_recorded} ({describe_instant(weight.at, self.now)}) is implausible for {who} "
            f"(plausible {low:g}–{high:g} kg): not used for dosing"
        )

    @cached_property
    def current_weight(self) -> float | None:
        weight = self.facts.weight
        if weight is None or weight.at is None:
            return None
        if self.now - weight.at > timedelta(days=self.settings.weight_max_age_days):
            return None
        return weight.value

    @cached_property
    def adult_height(self) -> float | None:
        """The height in cm if it was measured in adulthood: a child's height would shrink the ideal weight."""
        height, born = self.facts.height, self.facts.birth_date
        if height is None:
            return None
        if born is not None:
            adult_from = anniversary(born, self.settings.adult_age_years)
            if height.at is None or height.at.date() < adult_from:
                return None
        return height.value

    @cached_property
    def dosing_weight(self) -> DosingWeight | None:
        """Actual weight; adjusted weight (IBW + factor × excess) for obesity in adults, by policy."""
        actual = self.current_weight
        if actual is None:
            return None
        s = self.settings
        facts = self.facts
        if not (s.adjusted_weight_enabled and self.adult):
            return DosingWeight(actual, "actual", f"actual weight {kg_text(actual)} kg")
        height = self.adult_height
        if height is None:
            if actual <= s.adjusted_weight_kg:
                explanation = f"actual weight {kg_text(actual)} kg (no adult height: BMI unknown)"
                return DosingWeight(actual, "actual", explanation)
            return DosingWeight(
                actual,
                "actual",
                f"actual weight {kg_text(actual)} kg",
                caveat=f"no adult height to apply the >{s.adjusted_weight_kg:g} kg adjusted-weight policy",
            )
        bmi = actual / (height / 100) ** 2
        if bmi < s.adjusted_weight_bmi and actual <= s.adjusted_weight_kg:
            return DosingWeight(actual, "actual", f"actual weight {kg_text(actual)} kg (BMI {bmi:.1f})")
        if facts.sex not in ("male", "female"):
            return DosingWeight(
                actual,
                "actual",
                f"actual weight {kg_text(actual)} kg (BMI {bmi:.1f}; sex unknown, no ideal weight)",
                caveat="sex unknown: the adjusted-weight policy needs it for the ideal weight",
            )
        # Ideal body weight by the Devine formula (Drug Intell Clin Pharm 1974;8:650), the one in
        # pharmacy use: 50 kg (men) or 45.5 kg (women) + 2.3 kg per inch of height over 5 feet.
        base = 50.0 if facts.sex == "male" else 45.5
        ibw = base + 2.3 * (height / 2.54 - 60)
        if ibw >= actual:
            return DosingWeight(actual, "actual", f"actual weight {kg_text(actual)} kg")
        adjusted = ibw + s.adjusted_weight_factor * (actual - ibw)
        return DosingWeight(
            adjusted,
            "adjusted",
            f"adjusted weight {kg_text(adjusted)} kg = IBW {kg_text(ibw)} kg + {s.adjusted_weight_factor:g} × "
            f"({kg_text(actual)} − {kg_text(ibw)}) kg (BMI {bmi:.1f}, height {height:.0f} cm)",
        )


def ctcae_grade(platelets: float) -> int | None:
    """CTCAE v5 platelet count decreased, half-open bands (RULES.md "Grade")."""
    if platelets < 25:
        return 4
    if platelets < 50:
        return 3
    if platelets < 75:
        return 2
    if platelets < 150:
        return 1
    return None
