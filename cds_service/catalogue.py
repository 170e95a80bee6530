"""The rule catalogue for clinical governance (`ivig-cds rules`), as the deployment runs it.

Why generated here from the registered rules and the settings in force: a committee must read the
thresholds the service actually applies ("below 30" when the deployment set 30, not the rule book's
default "below 50") and see which rules this deployment has switched off, in every format.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import fields

from hooks.rules.base import Rule
from hooks.settings import RuleSettings

FORMATS = ("text", "markdown", "json")


def entries(rules: Iterable[Rule], settings: RuleSettings) -> list[dict]:
    """One entry per rule: its texts rendered from `settings`, whether it is enabled, its sources."""
    return [
        {
            "id": r.id,
            **r.describe(settings),
            "enabled": r.id not in settings.disabled_rules,
            "citations": [{"key": c.key, "label": c.label, "url": c.url} for c in r.citations],
        }
        for r in rules
    ]


def render(rules: Iterable[Rule], settings: RuleSettings, fmt: str = "text") -> str:
    catalogue = entries(rules, settings)
    if fmt == "json":
        return json.dumps(catalogue, indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        lines = ["| id | enabled | title | trigger | indicator | advice | sources |", "|---|---|---|---|---|---|---|"]
        for e in catalogue:
            sources = "; ".join(c["key"] for c in e["citations"])
            enabled = "yes" if e["enabled"] else "**disabled**"
            cells = [f"`{e['id']}`", enabled, e["title"], e["trigger"], e["indicator"], e["advice"], sources]
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        return "\n".join(lines) + "\n"
    if fmt != "text":
        raise ValueError(f"unknown catalogue format {fmt!r} (one of {', '.join(FORMATS)})")
    disabled = sum(1 for e in catalogue if not e["enabled"])
    lines = [f"ivig-cds rule catalogue: {len(catalogue)} rules" + (f", {disabled} disabled" if disabled else "")]
    for e in catalogue:
        lines += [
            "",
            f"{e['id']}{'  (disabled)' if not e['enabled'] else ''}",
            f"  title:     {e['title']}",
            f"  trigger:   {e['trigger']}",
            f"  indicator: {e['indicator']}",
            f"  advice:    {e['advice']}",
        ]
        for c in e["citations"]:
            lines.append(f"  source:    [{c['key']}] {c['label']}" + (f" <{c['url']}>" if c["url"] else ""))
    lines += ["", "Thresholds and policy in force (hooks/settings.py; override with IVIG_CDS_RULE_<NAME>):"]
    for f in fields(settings):
        value = getattr(settings, f.name)
        shown = (", ".join(sorted(value)) or "(none)") if isinstance(value, frozenset) else value
        lines.append(f"  {f.name} = {shown}")
    return "\n".join(lines) + "\n"
