"""Rendering findings as CDS Hooks 2.0 cards.

One finding, one card. The rule id travels as `source.topic.code` so EHR analysts, feedback
analytics and tests can tell cards apart whatever the wording. The detail always lists the values
used (with their dates, units as clinicians write them), the advice, and each source once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from hooks.citations import Citation
from hooks.findings import Action, Finding, Indicator, Suggestion
from hooks.units import readable

RULE_SYSTEM = "urn:ivig-cds:rule"
OVERRIDE_SYSTEM = "urn:ivig-cds:override-reason"
SERVICE_LABEL = "ivig-cds"

OVERRIDE_REASONS: tuple[dict[str, str], ...] = (
    {"system": OVERRIDE_SYSTEM, "code": "already-addressed", "display": "Already addressed"},
    {"system": OVERRIDE_SYSTEM, "code": "hematology-advice", "display": "Following hematology advice"},
    {"system": OVERRIDE_SYSTEM, "code": "data-outdated", "display": "Data shown is not current"},
    {"system": OVERRIDE_SYSTEM, "code": "not-applicable", "display": "Not applicable to this patient"},
)


def _action(action: Action) -> dict[str, Any]:
    out: dict[str, Any] = {"type": action.type, "description": action.description}
    if action.resource is not None:
        out["resource"] = dict(action.resource)
    if action.resource_id is not None:
        out["resourceId"] = action.resource_id
    return out


def _suggestion(suggestion: Suggestion, new_uuid: Callable[[], str]) -> dict[str, Any]:
    return {
        "label": suggestion.label,
        "uuid": new_uuid(),
        "isRecommended": suggestion.recommended,
        "actions": [_action(a) for a in suggestion.actions],
    }


def _cited(finding: Finding) -> list[Citation]:
    """The card's sources, each once (a rule may reach one source by two paths)."""
    return list({c.key: c for c in finding.citations}.values())


def _detail(finding: Finding) -> str:
    lines = ["**Values used**", ""]
    lines += [f"- {readable(line)}" for line in finding.evidence] or ["- (none)"]
    lines += ["", "**Advice**", ""]
    lines += [f"- {line}" for line in finding.advice]
    lines += ["", "**Sources**", ""]
    for citation in _cited(finding):
        lines.append(f"- [{citation.label}]({citation.url})" if citation.url else f"- {citation.label}")
    lines += ["", f"Rule `{finding.rule}` · {SERVICE_LABEL}"]
    return "\n".join(lines)


def render_card(finding: Finding, new_uuid: Callable[[], str]) -> dict[str, Any]:
    cited = _cited(finding)
    # The card's source is the first primary source a clinician can open; its label and URL agree.
    # A card about the data itself (no clinical source) says so instead of naming one.
    primary = next((c for c in cited if c.url), cited[0])
    source: dict[str, Any] = {
        "label": f"{SERVICE_LABEL}: {primary.label}"[:200] if primary.clinical else f"{SERVICE_LABEL}: data check",
        "topic": {"system": RULE_SYSTEM, "code": finding.rule, "display": finding.rule},
    }
    if primary.url:
        source["url"] = primary.url
    card: dict[str, Any] = {
        "uuid": new_uuid(),
        "summary": readable(finding.summary),
        "indicator": finding.indicator.label,
        "detail": _detail(finding),
        "source": source,
        "overrideReasons": [dict(reason) for reason in OVERRIDE_REASONS],
    }
    links = [{"label": c.label[:200], "url": c.url, "type": "absolute"} for c in cited if c.url]
    if links:
        card["links"] = links  # every source a clinician can open, not just the card's primary one
    if finding.suggestions:
        card["suggestions"] = [_suggestion(s, new_uuid) for s in finding.suggestions]
        recommended = sum(1 for s in finding.suggestions if s.recommended)
        card["selectionBehavior"] = "any" if recommended > 1 or len(finding.suggestions) > 1 else "at-most-one"
    return card


def render(findings: Iterable[Finding], new_uuid: Callable[[], str]) -> list[dict[str, Any]]:
    return [render_card(f, new_uuid) for f in findings]


__all__ = ["Indicator", "render", "render_card"]
