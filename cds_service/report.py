"""The governance report: per rule, how its cards fared with clinicians.

    ivig-cds report [--since DATE] [--format table|csv|json] [--database-url URL]

For each rule id, over the invocations received since DATE (all by default):

- **shown**: cards of that rule returned to an EHR;
- **accepted** / **overridden**: of those cards, how many got at least one feedback report with
  that outcome (a card counts once per outcome however often the client retried);
- **acceptance rate**: accepted ÷ (accepted + overridden), i.e. among cards with feedback; cards
  with no feedback are not counted against the rule, because EHRs do not all send feedback;
- **top override reasons**: the three most frequent reason codes, shown by the display the client
  sent, else (a client may send the code alone) by the service's own label for a code its cards
  offer; "(comment only)" for overrides that gave only free text and "(no reason given)" for a
  plain dismissal; comments themselves are never printed, since they may name a patient;
- **median latency**: of the invocations that produced a card of that rule, in milliseconds.

Feedback for card uuids with no audit record (another deployment, a client bug, or rows dropped
under overload) is counted apart as `unknown_card_feedback`.

Aggregation happens in Python over one pass of the joined rows: the median is not portable SQL,
and a governance report over months of calls is still a few million small rows at most.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time

from sqlalchemy import func, select

from cds_service.storage import Storage
from cds_service.storage.schema import card, feedback, invocation
from hooks.cards import OVERRIDE_REASONS

TOP_REASONS = 3
COMMENT_ONLY = "(comment only)"
NO_REASON = "(no reason given)"
#: The service's own labels for the override reasons its cards offer (hooks/cards.py).
SERVICE_LABELS = {reason["code"]: reason["display"] for reason in OVERRIDE_REASONS}


@dataclass
class RuleReport:
    rule: str
    shown: int = 0
    accepted: int = 0
    overridden: int = 0
    acceptance_rate: float | None = None
    top_override_reasons: list[tuple[str, int]] = field(default_factory=list)
    median_latency_ms: float | None = None


@dataclass
class Report:
    since: datetime | None
    invocations: int
    rules: list[RuleReport]
    unknown_card_feedback: int


def parse_since(text: str) -> datetime:
    """A date (midnight UTC) or an ISO date-time; a date-time without zone is read as UTC."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0, 0), tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since expects YYYY-MM-DD or an ISO date-time, not {text!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def build(storage: Storage, since: datetime | None = None) -> Report:
    """Read the audit trail and the feedback and aggregate them per rule."""
    window = [invocation.c.received_at >= since] if since else []
    shown: dict[str, set[str]] = defaultdict(set)
    latencies: dict[str, dict[str, float]] = defaultdict(dict)
    outcomes: dict[str, dict[str, set[str]]] = defaultdict(lambda: {"accepted": set(), "overridden": set()})
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    labels: dict[str, str] = {}
    with storage.begin() as conn:
        invocations = int(conn.execute(select(func.count(invocation.c.id)).where(*window)).scalar() or 0)
        cards = conn.execute(
            select(card.c.card_uuid, card.c.rule_id, invocation.c.id, invocation.c.latency_ms)
            .join(invocation, card.c.invocation_id == invocation.c.id)
            .where(*window)
        )
        for card_uuid, rule, invocation_id, latency in cards:
            shown[rule].add(card_uuid)
            latencies[rule][invocation_id] = latency
        reports = conn.execute(
            select(
                card.c.rule_id,
                feedback.c.card_uuid,
                feedback.c.outcome,
                feedback.c.override_reason_code,
                feedback.c.override_reason_display,
                feedback.c.user_comment,
            )
            .join(card, card.c.card_uuid == feedback.c.card_uuid)
            .join(invocation, card.c.invocation_id == invocation.c.id)
            .where(*window)
        )
        for rule, card_uuid, outcome, code, display, comment in reports:
            outcomes[rule][outcome].add(card_uuid)
            if outcome == "overridden":
                # Counted by code: clients differ in display text. Without a code, a comment alone is
                # "(comment only)"; nothing at all is a plain dismissal, not a comment.
                reasons[rule][code or (COMMENT_ONLY if (comment or "").strip() else NO_REASON)] += 1
                if code and display:
                    labels.setdefault(code, display)
        orphans = (
            select(func.count(feedback.c.id))
            .select_from(feedback.outerjoin(card, card.c.card_uuid == feedback.c.card_uuid))
            .where(card.c.id.is_(None), *([feedback.c.received_at >= since] if since else []))
        )
        unknown = int(conn.execute(orphans).scalar() or 0)
    rules = []
    for rule in sorted(shown):
        accepted, overridden = len(outcomes[rule]["accepted"]), len(outcomes[rule]["overridden"])
        rules.append(
            RuleReport(
                rule=rule,
                shown=len(shown[rule]),
                accepted=accepted,
                overridden=overridden,
                acceptance_rate=accepted / (accepted + overridden) if accepted + overridden else None,
                top_override_reasons=[
                    (labels.get(code) or SERVICE_LABELS.get(code, code), n)
                    for code, n in sorted(reasons[rule].items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]
                ],
                median_latency_ms=statistics.median(latencies[rule].values()) if latencies[rule] else None,
            )
        )
    return Report(since=since, invocations=invocations, rules=rules, unknown_card_feedback=unknown)


def _reasons_text(reasons: list[tuple[str, int]]) -> str:
    return "; ".join(f"{reason} ({count})" for reason, count in reasons)


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def _latency(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


HEADERS = ("rule", "shown", "accepted", "overridden", "acceptance", "median ms", "top override reasons")


def render(report: Report, fmt: str = "table") -> str:
    """The report as an aligned table, CSV (one row per rule) or JSON."""
    if fmt == "json":
        out = asdict(report)
        out["since"] = report.since.isoformat() if report.since else None
        for rule in out["rules"]:
            rule["top_override_reasons"] = [{"reason": r, "count": n} for r, n in rule["top_override_reasons"]]
        return json.dumps(out, indent=2, ensure_ascii=False) + "\n"
    rows = [
        (
            r.rule,
            str(r.shown),
            str(r.accepted),
            str(r.overridden),
            _rate(r.acceptance_rate),
            _latency(r.median_latency_ms),
            _reasons_text(r.top_override_reasons),
        )
        for r in report.rules
    ]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(
            ["rule", "shown", "accepted", "overridden", "acceptance_rate", "median_latency_ms", "top_override_reasons"]
        )
        for r in report.rules:
            writer.writerow(
                [
                    r.rule,
                    r.shown,
                    r.accepted,
                    r.overridden,
                    "" if r.acceptance_rate is None else f"{r.acceptance_rate:.4f}",
                    _latency(r.median_latency_ms),
                    _reasons_text(r.top_override_reasons),
                ]
            )
        return buffer.getvalue()
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(HEADERS)]
    numeric = {1, 2, 3, 4, 5}

    def line(cells: tuple[str, ...]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        aligned = (c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in pairs)
        return "  ".join(aligned).rstrip()

    since = f" since {report.since.isoformat()}" if report.since else ""
    out = [f"{report.invocations} hook invocations{since}", "", line(HEADERS), line(tuple("-" * w for w in widths))]
    out += [line(row) for row in rows] or ["(no cards shown)"]
    if report.unknown_card_feedback:
        out += ["", f"feedback for cards with no audit record: {report.unknown_card_feedback}"]
    return "\n".join(out) + "\n"
