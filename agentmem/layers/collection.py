"""The merge policy shared by the collection layers (knowledge, feedback).

Entries are deduplicated by a normalised key (and, where the layer allows, by word-set similarity);
an entry that ``replaces`` a live item closes it; over the cap, items expire in the layer's
eviction order. Expired and superseded items stay in history and exports.
"""

from __future__ import annotations

import dataclasses
import hashlib
from abc import abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal

from ..errors import ConfigurationError
from ..records import MemoryItem
from ..text import normalize, similarity
from .base import Add, Entry, Expire, Layer, NewEntries, NewItem, Op, Patch, Supersede, Update

MAX_KEY = 200


def bounded_key(key: str) -> str:
    """Keys are indexed: keep them short, with a digest standing for an over-long tail."""
    if len(key) <= MAX_KEY:
        return key
    return key[: MAX_KEY - 17] + "#" + hashlib.sha256(key.encode()).hexdigest()[:16]


class CollectionLayer(Layer):
    kind: ClassVar[Literal["document", "collection"]] = "collection"
    similarity_threshold: ClassVar[float | None] = None
    """Word-set Jaccard at or above which two texts count as the same entry (None: exact key only)."""

    def check_schema(self) -> None:
        fields = {f.name: f for f in dataclasses.fields(self.schema.cls)}
        if "text" not in fields or self.schema.fields["text"].annotation is not str:
            raise ConfigurationError(
                f"{self.name} schema {self.schema.cls.__name__} needs a `text: str` field"
            )
        for f in fields.values():
            missing = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if f.name != "text" and missing:
                raise ConfigurationError(
                    f"{self.name} schema {self.schema.cls.__name__}: field {f.name!r} needs a default"
                )

    def key_of(self, value: dict[str, Any]) -> str:
        return bounded_key(normalize(value["text"]))

    @abstractmethod
    def line(self, value: dict[str, Any], count: int, since: datetime) -> str:
        """The item as the model reads it (the compiler escapes it)."""

    @abstractmethod
    def eviction_order(self, item: MemoryItem) -> tuple[Any, ...]:
        """Sort key: the first items in this order expire first when the layer is over its cap."""

    def merged_value(self, old: MemoryItem, new: dict[str, Any]) -> dict[str, Any]:
        """The stored value after the same entry is seen again."""
        return dict(old.value)

    def repeat(self, old: MemoryItem, entry: Entry) -> tuple[int, dict[str, Any]]:
        """Count and meta after the same entry is seen again (default: unchanged)."""
        return old.count, dict(old.meta)

    def first_meta(self, entry: Entry) -> dict[str, Any]:
        return {}

    def merge(self, current: Sequence[MemoryItem], change: Patch, now: datetime) -> list[Op]:
        assert isinstance(change, NewEntries), f"{self.name} takes NewEntries"
        live = {item.key: item for item in current}
        by_id = {item.id: item for item in current}
        updates: dict[str, Update] = {}  # one update per target, folding repeats within a change
        ops: list[Op] = []
        added: set[str] = set()
        closed: set[str] = set()
        for entry in change.entries:
            value = dict(entry.value)
            key = self.key_of(value)
            if key in added:
                continue
            target = by_id.get(entry.replaces) if entry.replaces else None
            if target is not None and target.id in closed:
                target = None
            dup = self.duplicate_of(current, value, closed, live)
            if dup is not None:
                if target is not None and target.id != dup.id:
                    ops.append(Supersede(target, dup, reason="contradicted"))
                    closed.add(target.id)
                self._fold_repeat(updates, dup, value, entry)
                continue
            new = NewItem(
                key=key,
                value=value,
                text=value["text"],
                line=self.line(value, 1, now),
                confidence=entry.confidence,
                meta=self.first_meta(entry),
            )
            ops.append(Supersede(target, new, reason="contradicted") if target else Add(new))
            if target is not None:
                closed.add(target.id)
            added.add(key)
        ops.extend(updates.values())
        ops.extend(self._evictions(current, closed, set(updates), len(added)))
        return ops

    def duplicate_of(
        self,
        current: Sequence[MemoryItem],
        value: dict[str, Any],
        closed: set[str] | None = None,
        by_key: dict[str, MemoryItem] | None = None,
    ) -> MemoryItem | None:
        """The live item that already says what ``value`` says: same key, else similar enough."""
        closed = closed or set()
        by_key = by_key if by_key is not None else {item.key: item for item in current}
        same = by_key.get(self.key_of(value))
        if same is not None and same.id not in closed:
            return same
        if self.similarity_threshold is None:
            return None
        scored = [(similarity(value["text"], i.text), i.id, i) for i in current if i.id not in closed]
        best = max(scored, default=None, key=lambda t: (t[0], t[1]))
        return best[2] if best and best[0] >= self.similarity_threshold else None

    def _fold_repeat(
        self, updates: dict[str, Update], dup: MemoryItem, value: dict[str, Any], entry: Entry
    ) -> None:
        seen = updates.get(dup.id)
        base = (
            dataclasses.replace(dup, value=seen.value, count=seen.count, meta=dict(seen.meta))
            if seen
            else dup
        )
        merged = self.merged_value(base, value)
        count, meta = self.repeat(base, entry)
        if (merged, count, meta) == (base.value, base.count, base.meta):
            return
        updates[dup.id] = Update(
            target=dup,
            value=merged,
            text=merged["text"],
            line=self.line(merged, count, dup.created_at),
            count=count,
            explicit=dup.explicit,
            confidence=max(dup.confidence, entry.confidence),
            meta=meta,
            reason="repeated",
        )

    def _evictions(
        self, current: Sequence[MemoryItem], closed: set[str], touched: set[str], added: int
    ) -> list[Op]:
        if self.max_items is None:
            return []
        live_after = len(current) - len(closed) + added
        excess = live_after - self.max_items
        if excess <= 0:
            return []
        # Items this change just confirmed are the freshest; they are never the ones to go.
        candidates = [item for item in current if item.id not in closed and item.id not in touched]
        oldest = sorted(candidates, key=self.eviction_order)[:excess]
        return [Expire(item, reason=f"evicted: over the cap of {self.max_items} items") for item in oldest]
