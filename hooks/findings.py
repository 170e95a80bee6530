"""The fixed shape every rule returns, kept apart from how a card looks.

Why: rules decide *what* to say (rule id, severity, the values used, the advice, the sources and
the suggested orders); `cards.py` decides how CDS Hooks spells it. A rule cannot forget a citation
or produce a card the schema rejects, and tests assert on findings without parsing markdown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Literal

from hooks.citations import Citation


class Indicator(IntEnum):
    """CDS Hooks card urgency, ordered so that `max()` picks the most urgent."""

    INFO = 1
    WARNING = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Indicator:
        return cls[label.upper()]


@dataclass(frozen=True)
class Action:
    type: Literal["create", "update", "delete"]
    description: str
    resource: Mapping[str, Any] | None = None
    resource_id: str | None = None  # "MedicationRequest/123", for delete


@dataclass(frozen=True)
class Suggestion:
    label: str
    actions: tuple[Action, ...]
    recommended: bool = False


@dataclass(frozen=True)
class Finding:
    rule: str
    indicator: Indicator
    summary: str
    evidence: tuple[str, ...]  # the values used, each with its date and unit
    advice: tuple[str, ...]
    citations: tuple[Citation, ...]
    suggestions: tuple[Suggestion, ...] = ()
    order: str | None = None  # the draft order the finding is about, if any

    def __post_init__(self) -> None:
        if not self.citations:
            raise ValueError(f"finding {self.rule} has no citation")
        if len(self.summary) > 140:
            raise ValueError(f"finding {self.rule} summary exceeds 140 characters")
