"""Card summaries that fit in 140 characters without being cut mid-word or mid-list.

Why: a summary cut with `[:140]` can end in the middle of a drug name or a number ("IVIG 1 g/k"),
and `Finding` refuses a longer one (a 500 in production). A rule states its summary from the most
to the least detailed, and the first that fits is used; a free-text part (a product name as the
EHR wrote it) is shortened at a word with an ellipsis. Lists use `hooks.rules.data.fitting_summary`
("A, B and 2 more").
"""

from __future__ import annotations

SUMMARY_LIMIT = 140


def first_fitting(*candidates: str, limit: int = SUMMARY_LIMIT) -> str:
    """The first candidate that fits; the last one clipped at a word if none does."""
    for candidate in candidates:
        if len(candidate) <= limit:
            return candidate
    return clip(candidates[-1], limit)


def clip(text: str, limit: int) -> str:
    """`text` within `limit` characters, cut at a word boundary and marked with an ellipsis."""
    if len(text) <= limit:
        return text
    if limit < 2:
        return "…"[:limit]
    cut = text[: limit - 1].rstrip()
    space = cut.rfind(" ")
    if space > 0:
        cut = cut[:space]
    return cut.rstrip(" ,;:(") + "…"


def with_free_text(prefix: str, free_text: str, suffix: str, limit: int = SUMMARY_LIMIT) -> str:
    """`prefix` + `free_text` + `suffix`, the free text (a name as written) shortened to fit."""
    room = max(1, limit - len(prefix) - len(suffix))
    return f"{prefix}{clip(free_text, room)}{suffix}"


def and_join(names: list[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    if len(names) < 2:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"
