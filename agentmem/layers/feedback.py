"""Feedback: what worked and what didn't, and about what.

An append log; the same feedback given again (another occurrence) raises its count instead of adding
a duplicate; over the cap the least repeated, least recent entries expire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ..records import MemoryItem
from ..text import normalize
from .changes import Entry
from .collection import CollectionLayer
from .schema import bounded_key

MAX_OCCURRENCES = 20  # remembered per entry, to count each occurrence once


@dataclass
class FeedbackEntry:
    """The user's reaction to an answer: what worked or what didn't."""

    text: str
    """What the user liked or disliked, in a short sentence, e.g. "Liked the pandas examples"."""
    sentiment: Literal["positive", "negative", "neutral"] = "neutral"
    """Whether the reaction was positive, negative or neutral."""
    target: str | None = None
    """What the feedback is about, e.g. "code examples", "answer length"."""


class FeedbackLayer(CollectionLayer):
    name = "feedback"
    tag = "user_feedback"
    about = "reactions to answers"
    default_schema = FeedbackEntry
    default_max_items = 500
    from_user_only = False  # feedback is about the assistant's answer by nature
    rank_by_count = True
    eviction_columns = ("count", "updated_at", "id")

    def key_of(self, value: Mapping[str, Any]) -> str:
        return bounded_key(f"{value.get('sentiment', 'neutral')}:{normalize(value['text'])}")

    def line(self, value: Mapping[str, Any], count: int, since: datetime) -> str:
        about = f" (about: {value['target']})" if value.get("target") else ""
        times = f" [x{count}]" if count > 1 else ""
        return f"{value.get('sentiment', 'neutral')}: {value['text']}{about}{times}"

    def heading(self, line: str) -> tuple[str, str] | None:
        """The sentiment: feedback of one sentiment is rendered under it."""
        sentiment, sep, rest = line.partition(": ")
        return (sentiment + ":", rest) if sep and sentiment.isidentifier() else None

    def eviction_order(self, item: MemoryItem) -> tuple[Any, ...]:
        return (item.count, item.updated_at, item.id)

    def first_meta(self, entry: Entry) -> dict[str, Any]:
        return {"occurrences": [entry.occurrence]} if entry.occurrence else {}

    def repeat(self, old: MemoryItem, entry: Entry) -> tuple[int, dict[str, Any]]:
        seen = list(old.meta.get("occurrences", []))
        if entry.occurrence is not None and entry.occurrence in seen:
            return old.count, dict(old.meta)  # the same occurrence applied again counts once
        if entry.occurrence is not None:
            seen = [*seen, entry.occurrence][-MAX_OCCURRENCES:]
        return old.count + 1, {**old.meta, "occurrences": seen}

    def columns(self, items: Sequence[MemoryItem]) -> tuple[list[str], list[tuple[MemoryItem, list[str]]]]:
        """Sentiment and count first: a feedback log is read by how it went and how often."""
        about = any(item.value.get("target") for item in items)
        headers = ["sentiment", "count", "text", *(["about"] if about else [])]
        rows = [
            (
                item,
                [
                    item.value.get("sentiment", "neutral"),
                    str(item.count),
                    item.text,
                    *([item.value.get("target") or ""] if about else []),
                ],
            )
            for item in items
        ]
        return headers, rows
