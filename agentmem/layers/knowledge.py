"""Knowledge: facts and context about the user, with time.

Deduplicated (normalised text, then word-set similarity where the two say the same thing: see
:mod:`.meaning`); a repeat adds its new topics (each topic once, ignoring case, in its first spelling);
a contradicted fact is closed (``valid_to``/``superseded_by``), never erased; over the cap the least
recently updated facts expire.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..records import MemoryItem
from .collection import CollectionLayer
from .schema import MAX_LIST


@dataclass
class Fact:
    """A durable fact about the user or their context: projects, stack, goals, events."""

    text: str
    """The fact as one short sentence about the user, e.g. "Builds a churn model for Acme"."""
    topics: list[str] = field(default_factory=list)
    """A few lowercase topic words, e.g. ["work", "ml"]."""


def _union(*topic_lists: list[Any]) -> list[Any]:
    """The topics of all the lists, each once ignoring case, in its first spelling; at most MAX_LIST
    (the first ones: a fact's topics are settled early)."""
    merged: dict[str, Any] = {}
    for topic in (t for topics in topic_lists for t in topics):
        merged.setdefault(str(topic).casefold(), topic)
    return list(merged.values())[:MAX_LIST]


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class KnowledgeLayer(CollectionLayer):
    name = "knowledge"
    tag = "user_knowledge"
    about = "facts, projects, goals"
    default_schema = Fact
    default_max_items = 5000
    similarity_threshold = 0.9

    def line(self, value: Mapping[str, Any], count: int, since: datetime) -> str:
        return f"{since.date().isoformat()}: {value['text']}"

    def heading(self, line: str) -> tuple[str, str] | None:
        """The date a fact was learned: facts of one day are rendered under it."""
        date, sep, rest = line.partition(": ")
        return (date + ":", rest) if sep and _DATE.fullmatch(date) else None

    def first_value(self, value: dict[str, Any]) -> dict[str, Any]:
        if "topics" not in value:  # a custom schema may have none
            return value
        return {**value, "topics": _union(value["topics"])}

    def merged_value(self, old: MemoryItem, new: dict[str, Any]) -> dict[str, Any]:
        if "topics" not in old.value and "topics" not in new:
            return dict(old.value)
        return {**old.value, "topics": _union(old.value.get("topics", []), new.get("topics", []))}
