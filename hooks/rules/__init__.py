"""The clinical rules. Importing this package registers every rule in `REGISTRY`, in reading order."""
# ruff: noqa: I001  (the import order below is the rule book's reading order, not alphabetical)

from __future__ import annotations

from hooks.findings import Finding, Indicator
from hooks.rules import (  # noqa: F401  (importing registers the rules)
    data,
    bleeding,
    thresholds,
    dosing,
    safety,
    screening,
    transfusion,
    pregnancy,
    hit,
    populations,
)
from hooks.rules.base import REGISTRY, Rule, RuleContext

__all__ = ["REGISTRY", "Rule", "RuleContext", "evaluate"]


def evaluate(ctx: RuleContext) -> list[Finding]:
    """Run every enabled rule; most urgent first, then in rule-book order; below the floor dropped."""
    floor = Indicator.from_label(ctx.settings.minimum_indicator)
    findings: list[Finding] = []
    for rule in REGISTRY.values():
        if rule.id in ctx.settings.disabled_rules:
            continue
        findings.extend(f for f in rule.evaluate(ctx, rule) if f.indicator >= floor)
    order = {rule_id: index for index, rule_id in enumerate(REGISTRY)}
    return sorted(findings, key=lambda f: (-f.indicator, order[f.rule]))
