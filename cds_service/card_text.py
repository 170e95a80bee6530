"""Cards as a clinician reads them, in a terminal: indicator, summary, the detail's markdown rendered,
source, suggestions, links and override reasons.

Rendering is `rich`'s (its Markdown is markdown-it-py underneath): colours and bold on a terminal,
plain text when the output is piped. Links print with their URL, so nothing is hidden from a
reviewer reading a log or a ticket.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterable, Mapping
from typing import IO, Any

from rich.console import Console, Group
from rich.markdown import Markdown
from rich.padding import Padding
from rich.text import Text

INDICATOR_STYLES = {"critical": "bold white on red", "warning": "bold black on yellow", "info": "bold white on blue"}


def _card(card: Mapping[str, Any]) -> Group:
    indicator = str(card.get("indicator", "info"))
    parts: list[Any] = []
    title = Text()
    title.append(f" {indicator.upper()} ", style=INDICATOR_STYLES.get(indicator, "bold"))
    title.append("  ")
    title.append(str(card.get("summary", "")), style="bold")
    parts.append(title)
    if card.get("detail"):
        parts.append(Padding(Markdown(str(card["detail"]), hyperlinks=False), (0, 0, 0, 2)))
    source = card.get("source") or {}
    if source:
        line = Text("  Source: ", style="dim")
        line.append(str(source.get("label", "")))
        if source.get("url"):
            line.append(f" <{source['url']}>", style="cyan")
        parts.append(line)
    for suggestion in card.get("suggestions") or []:
        line = Text("  [ ", style="dim")
        line.append(
            str(suggestion.get("label", "")), style="bold green" if suggestion.get("isRecommended") else "green"
        )
        line.append(" ]", style="dim")
        if suggestion.get("isRecommended"):
            line.append("  recommended", style="dim")
        parts.append(line)
    for link in card.get("links") or []:
        parts.append(Text(f"  Link: {link.get('label', '')} <{link.get('url', '')}>", style="cyan"))
    reasons = [
        str((reason or {}).get("display") or (reason or {}).get("code")) for reason in card.get("overrideReasons") or []
    ]
    if reasons:
        parts.append(Text("  Override reasons: " + " · ".join(reasons), style="dim"))
    return Group(*parts)


def render_cards(cards: Iterable[Mapping[str, Any]], color: bool = False, width: int = 100) -> str:
    """The cards as terminal text, most urgent first as the service orders them, a blank line between."""
    console = Console(
        file=io.StringIO(), force_terminal=color, no_color=not color, highlight=False, width=width, soft_wrap=False
    )
    cards = list(cards)
    if not cards:
        console.print("(no cards)")
    for index, card in enumerate(cards):
        if index:
            console.print()
        console.print(_card(card))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"  # no padding to the width


def print_cards(cards: Iterable[Mapping[str, Any]], stream: IO[str], color: bool | None = None) -> None:
    """Print the cards; in colour on a terminal (or when `color` says so), at the terminal's width."""
    terminal = stream.isatty()
    width = shutil.get_terminal_size((100, 24)).columns if terminal else 100
    stream.write(render_cards(cards, color=terminal if color is None else color, width=width))
