"""Making the suggestions of one answer safe to accept together.

Why this is a step of its own: each rule suggests what it alone knows, but an EHR applies accepted
suggestions one after another, and a CDS Hooks `update` carries the *whole* revised resource. Two
cards that each revise the same IVIG draft (one to an IgA-depleted product, one to 1 g/kg once)
would each silently undo the other: accepting both keeps whichever came last, and could put the
IgA-containing product back. So every `update` of one draft is made to carry all the changes the
answer proposes for it, and each label says so.

An `update` or `delete` needs the id the EHR knows the draft by (a relative reference); a draft sent
without an id cannot be targeted, so such actions are dropped (the card's advice still says what to
do) rather than sent unusable.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from hooks.findings import Action, Finding, Suggestion
from hooks.orders import DraftOrder


def reconcile(findings: Sequence[Finding], drafts: Sequence[DraftOrder]) -> list[Finding]:
    originals = {d.reference: d.resource for d in drafts if _targetable(d.reference)}
    combined = _combined_updates(findings, originals)
    return [_revise(f, combined) for f in findings]


def _targetable(reference: str | None) -> bool:
    kind, _, ident = (reference or "").partition("/")
    return bool(kind and ident)


def _target(action: Action) -> str | None:
    if action.type == "update" and action.resource is not None:
        resource = action.resource
        return f"{resource.get('resourceType')}/{resource['id']}" if resource.get("id") else None
    if action.type == "delete":
        return action.resource_id if _targetable(action.resource_id) else None
    return "new"  # a create needs no target


def _combined_updates(
    findings: Sequence[Finding], originals: Mapping[str, Mapping[str, Any]]
) -> dict[str, tuple[dict[str, Any], tuple[str, ...]]]:
    """Per draft updated by more than one suggestion: one resource with every change, and the labels."""
    updates: dict[str, list[tuple[Mapping[str, Any], str]]] = {}
    for finding in findings:
        for suggestion in finding.suggestions:
            for action in suggestion.actions:
                target = _target(action)
                if action.type == "update" and target in originals and action.resource is not None:
                    updates.setdefault(target, []).append((action.resource, suggestion.label))
    combined = {}
    for target, revisions in updates.items():
        if len({json.dumps(r, sort_keys=True) for r, _ in revisions}) < 2:
            continue
        original = originals[target]
        merged = copy.deepcopy(dict(original))
        for revision, _ in revisions:
            for key in set(original) | set(revision):
                if key not in revision:
                    merged.pop(key, None)  # the revision removed it (a product given by reference, say)
                elif revision[key] != original.get(key):
                    merged[key] = copy.deepcopy(revision[key])
        combined[target] = (merged, tuple(label for _, label in revisions))
    return combined


def _revise(finding: Finding, combined: Mapping[str, tuple[dict[str, Any], tuple[str, ...]]]) -> Finding:
    suggestions = []
    for suggestion in finding.suggestions:
        actions = [a for a in suggestion.actions if _target(a) is not None]
        if not actions:
            continue
        label = suggestion.label
        revised = []
        for action in actions:
            target = _target(action)
            if action.type == "update" and target in combined:
                resource, labels = combined[target]
                others = [other for other in labels if other != suggestion.label]
                if others:
                    label = f"{suggestion.label}; also: {'; '.join(others)}"
                action = replace(action, resource=resource)
            revised.append(action)
        suggestions.append(Suggestion(label=label, actions=tuple(revised), recommended=suggestion.recommended))
    return replace(finding, suggestions=tuple(suggestions))
