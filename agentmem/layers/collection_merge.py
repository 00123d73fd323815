"""The merge policy of the collection kind (knowledge, feedback, and collection layers of your own).

Each entry of a change ends up as one item: the live item that already says it (same normalised key,
else, where the layer allows, the most similar by word set among those that say the same thing
(``says_the_same``: same numbers, names, negations and direction); ties go to the older item), or a
new item. Live items include the ones the same change adds, so a repeat within a change folds in
(``merged_value``, ``repeat``) exactly as a repeat across changes does.

An entry that ``replaces`` a live item closes it (a Supersede), unless it restates it word for word (the
same key: a repeat). Similarity to the replaced item itself does not count: "is not on the team" is
close to "is on the team" in words. An item the change has already restated is not replaced by a later
entry of the same change.

The cap: after a change at most ``max_items`` items are live. To get there, in this order,
1. items the change did not touch expire, in the layer's eviction order;
2. the change's new items are left out, last entry first (an item one of them replaces is still closed);
3. restated items expire, in eviction order (only when the cap is below what the change restates).

Expired and superseded items stay in history and exports.

Similar items are looked up in a word index built once per merge (:class:`WordIndex`), so a merge costs
about the entries times the items sharing their rarest words, not the entries times every live item.

The merge needs only the live items a change can touch (same key, replaced, or having a word of each
of an entry's :func:`probe_groups`; over the cap, the first in eviction order) and how many are live
(``total``): the store reads just those, and the operations are the same as over every live item.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..records import MemoryItem
from ..text import word_set
from .changes import Add, Entry, Expire, NewItem, Op, Supersede, Update

if TYPE_CHECKING:
    from datetime import datetime

    from .collection import CollectionLayer


@dataclasses.dataclass(frozen=True, slots=True)
class Merged:
    """What a collection merge decided: the operations, and what each entry ended up as."""

    ops: list[Op]
    results: list[MemoryItem | NewItem | None]
    """Per entry: an item of ``current``, a new item that ``ops`` add, or None when the cap left the
    entry out (or, under a lowered cap, expired the item it restated)."""


class LiveSubset(list[MemoryItem]):
    """Some of a layer's live items, oldest first: those a change can touch, and how many are live
    (for a layer without a cap, which needs no count: how many these are)."""

    def __init__(self, items: Sequence[MemoryItem], total: int) -> None:
        super().__init__(items)
        self.total = total


class WordIndex:
    """Live items by word, to find those an entry could be similar enough to without scanning them all.

    Items are named by key; ``candidates`` returns them in the order they became live (the oldest
    first), the order ``duplicate_of`` breaks ties by.
    """

    def __init__(self) -> None:
        self.postings: dict[str, set[str]] = {}
        self.words: dict[str, frozenset[str]] = {}
        self.since: dict[str, int] = {}
        self.clock = itertools.count()

    def put(self, key: str, text: str) -> None:
        """Index the item under its (possibly new) text; an item already live keeps its place."""
        since = self.since.get(key)
        self.discard(key)
        self.since[key] = next(self.clock) if since is None else since
        self.words[key] = word_set(text)
        for word in self.words[key]:
            self.postings.setdefault(word, set()).add(key)

    def discard(self, key: str) -> None:
        for word in self.words.pop(key, ()):
            self.postings[word].discard(key)
        self.since.pop(key, None)

    def candidates(self, text: str, threshold: float) -> list[str]:
        """Keys of every item whose word-set Jaccard with ``text`` can reach ``threshold``, oldest first.

        Jaccard ``shared / union >= threshold`` needs at least ``ceil(threshold * n)`` of the text's
        ``n`` words shared, so a match shares one of any ``n - need + 1`` of them: the rarest are probed.
        """
        words = word_set(text)
        rarest = sorted(words, key=lambda w: len(self.postings.get(w, ())))[: _probes(len(words), threshold)]
        keys = {key for word in rarest for key in self.postings.get(word, ())}
        return sorted(keys, key=self.since.__getitem__)


def _probes(n: int, threshold: float) -> int:
    """How many of a text's ``n`` words an item must share one of to reach ``threshold``: Jaccard
    ``shared / union >= threshold`` needs ``ceil(threshold * n)`` of them shared."""
    return n - max(1, math.ceil(threshold * n - 1e-9)) + 1


def probe_groups(text: str, threshold: float) -> list[tuple[str, ...]]:
    """Groups of words of ``text``: every item similar enough to it has a word of each group. Any
    ``n - need + 1`` of its ``n`` words form such a group, so its words are cut into groups that size
    (the last one takes the rest). Empty when the text has no words: then no item is similar.

    A group rules out as much as its commonest word does: longer words, rarer as a rule, are grouped
    together, away from the short ones ("the", "on") that most texts have."""
    words = sorted(word_set(text), key=lambda w: (-len(w), w))
    size = _probes(len(words), threshold)
    if not size:
        return []
    groups = [tuple(words[i : i + size]) for i in range(0, len(words) - size + 1, size)]
    return [*groups[:-1], tuple(words[(len(groups) - 1) * size :])]


class Run:
    """One collection merge in progress.

    ``live`` holds the layer's live items, by key, as the change leaves them so far: stored items
    (with the repeats folded in) and drafts of the new ones. Drafts are MemoryItems, with no id yet,
    so that ``duplicate_of``, ``merged_value`` and ``repeat`` treat them like stored items. Keys are
    unique among live items and never change, so an item is named by its key throughout.

    ``current``: every live item, or a :class:`LiveSubset` of them (see the module docstring).
    """

    def __init__(self, layer: CollectionLayer, current: Sequence[MemoryItem], now: datetime) -> None:
        self.layer, self.current, self.now = layer, current, now
        self.total = current.total if isinstance(current, LiveSubset) else len(current)
        self.by_id = {item.id: item for item in current}
        self.stored = {item.key: item for item in current}
        self.live = dict(self.stored)
        self.new: dict[str, None] = {}  # keys of the drafts, in entry order
        self.touched: dict[str, None] = {}  # keys of the stored items an entry ended up as, in order
        self.closed: dict[str, str] = {}  # id of each replaced item -> key of its replacement
        self.links: dict[str, MemoryItem] = {}  # draft key -> the item its Supersede closes
        self.steps: list[str | MemoryItem] = []  # drafts (key) and replaced items, in entry order
        self.results: list[str] = []  # per entry, the key of the item it ended up as
        self.index = WordIndex()
        for item in current:
            self.index.put(item.key, item.text)

    def take(self, entry: Entry) -> None:
        value = dict(entry.value)
        key = self.layer.key_of(value)
        target = self._target(entry, key)
        # Not the item it replaces: "X is not Y" is similar to "X is Y" and must still replace it.
        threshold = self.layer.similarity_threshold
        near = self.index.candidates(value["text"], threshold) if threshold is not None else []
        others = [self.live[k] for k in near if target is None or k != target.key]
        match = self.layer.duplicate_of(others, value, by_key=self.live)
        item = self._fold(match, value, entry) if match is not None else self._draft(key, value, entry)
        if target is not None:
            del self.live[target.key]
            self.index.discard(target.key)
            self.closed[target.id] = item.key
            self.steps.append(target)
            if item.key in self.new:
                self.links.setdefault(item.key, target)
        self.results.append(item.key)

    def _target(self, entry: Entry, key: str) -> MemoryItem | None:
        """The live item the entry replaces; None when it says that item again, word for word."""
        target = self.by_id.get(entry.replaces) if entry.replaces else None
        if target is None or target.key == key or target.id in self.closed or target.key in self.touched:
            return None
        return target

    def _draft(self, key: str, value: dict[str, Any], entry: Entry) -> MemoryItem:
        value = self.layer.first_value(value)
        draft = MemoryItem(
            id="",
            layer=self.layer.name,
            key=key,
            text=value["text"],
            value=value,
            user_id="",
            agent_id=None,
            session_id=None,
            source="",
            confidence=entry.confidence,
            count=1,
            explicit=True,
            created_at=self.now,
            updated_at=self.now,
            meta=self.layer.first_meta(entry),
        )
        self.live[key] = draft
        self.index.put(key, draft.text)
        self.new[key] = None
        self.steps.append(key)
        return draft

    def _fold(self, item: MemoryItem, value: dict[str, Any], entry: Entry) -> MemoryItem:
        merged = self.layer.merged_value(item, value)
        count, meta = self.layer.repeat(item, entry)
        confidence = max(item.confidence, entry.confidence)
        folded = dataclasses.replace(
            item, value=merged, text=merged["text"], count=count, meta=meta, confidence=confidence
        )
        self.live[item.key] = folded
        self.index.put(item.key, folded.text)
        if item.key not in self.new:
            self.touched[item.key] = None
        return folded

    def finish(self) -> Merged:
        expired, left_out = self._fit()
        news = {key: self._new_item(self.live[key]) for key in self.new if key not in left_out}
        ops = [op for step in self.steps if (op := self._op(step, news)) is not None]
        gone = {item.key for item in expired}
        ops.extend(self._update(key) for key in self.touched if key not in gone and self._changed(key))
        reason = f"evicted: over the cap of {self.layer.max_items} items"
        ops.extend(Expire(item, reason=reason) for item in expired)
        results = [news.get(key) if key in self.new else self.stored[key] for key in self.results]
        return Merged(ops, [None if r is None or r.key in gone else r for r in results])

    def _op(self, step: str | MemoryItem, news: dict[str, NewItem]) -> Op | None:
        """The operation of a step: a draft (its key) is added, a replaced item is closed."""
        if isinstance(step, str):
            if step not in news:
                return None  # left out by the cap
            link = self.links.get(step)
            return Supersede(link, news[step], reason="contradicted") if link else Add(news[step])
        key = self.closed[step.id]
        if key not in self.new:
            return Supersede(step, self.stored[key], reason="contradicted")
        if key in news and self.links[key] is step:
            return None  # the draft's own Supersede closes it
        # Its replacement is left out, or already replaces another item: there is nothing to link to.
        return Expire(step, reason="contradicted")

    def _fit(self) -> tuple[list[MemoryItem], set[str]]:
        """Items to expire and drafts to leave out so that at most ``max_items`` stay live."""
        cap, size = self.layer.max_items, self.total + len(self.live) - len(self.stored)
        if cap is None or size <= cap:
            return [], set()
        excess = size - cap
        untouched = [i for i in self.current if i.id not in self.closed and i.key not in self.touched]
        expired = sorted(untouched, key=self.layer.eviction_order)[:excess]
        left_out = list(reversed(self.new))[: excess - len(expired)]
        restated = sorted((self.stored[key] for key in self.touched), key=self.layer.eviction_order)
        expired += restated[: excess - len(expired) - len(left_out)]
        return expired, set(left_out)

    def _changed(self, key: str) -> bool:
        old, new = self.stored[key], self.live[key]
        return (new.value, new.count, new.meta) != (old.value, old.count, old.meta)

    def _update(self, key: str) -> Update:
        old, new = self.stored[key], self.live[key]
        return Update(
            target=old,
            value=new.value,
            text=new.value["text"],
            line=self.layer.line(new.value, new.count, old.created_at),
            count=new.count,
            explicit=old.explicit,
            confidence=new.confidence,
            meta=new.meta,
            reason=self.layer.update_reason(old, new),
        )

    def _new_item(self, draft: MemoryItem) -> NewItem:
        return NewItem(
            key=draft.key,
            value=draft.value,
            text=draft.value["text"],
            line=self.layer.line(draft.value, draft.count, self.now),
            confidence=draft.confidence,
            count=draft.count,
            meta=draft.meta,
        )
