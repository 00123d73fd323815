"""The merge policy shared by the collection layers (knowledge, feedback).

Each entry of a change ends up as one item: the live item that already says it (same normalised key,
else, where the layer allows, the most similar by word set; ties go to the older item), or a new item.
Live items include the ones the same change adds, so a repeat within a change folds in
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
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from pydantic import Field, TypeAdapter

from ..errors import ConfigurationError, InvalidInputError
from ..records import MemoryItem
from ..text import could_reach, normalize, similarity
from .base import Layer, R, ReplyContext, Stored
from .changes import Add, Entry, Expire, NewEntries, NewItem, Op, Patch, Supersede, Update
from .handles import CollectionHandle, Writes
from .schema import bounded_key, reply_model

PROMPT_ITEMS = 40
"""Stored entries the extraction prompt shows per collection: the prompt must not grow with the memory."""
RESERVED = ("replaces",)


@dataclasses.dataclass(frozen=True, slots=True)
class Merged:
    """What a collection merge decided: the operations, and what each entry ended up as."""

    ops: list[Op]
    results: list[MemoryItem | NewItem | None]
    """Per entry: an item of ``current``, a new item that ``ops`` add, or None when the cap left the
    entry out (or, under a lowered cap, expired the item it restated)."""


class CollectionLayer(Layer):
    """A layer of entries with ids (see the module docstring for the merge policy). The schema is a
    dataclass with a ``text: str`` field; every other field needs a default."""

    prompt_items = PROMPT_ITEMS
    similarity_threshold: ClassVar[float | None] = None
    """Word-set Jaccard at or above which two texts count as the same entry (None: exact key only)."""
    rank_by_count: ClassVar[bool] = False
    """In ``compile``, among equally relevant items the more often repeated come first."""

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
        clash = [name for name in RESERVED if name in fields]
        if clash:
            raise ConfigurationError(f"{self.name} schema may not use the reserved field name(s) {clash}")

    # ---- the policy's parts, for subclasses to override ------------------------------------------

    def key_of(self, value: Mapping[str, Any]) -> str:
        """Entries with equal keys are the same entry (default: the normalised text)."""
        return bounded_key(normalize(value["text"]))

    def line(self, value: Mapping[str, Any], count: int, since: datetime) -> str:
        """The item as the model reads it in ``compile`` (escaped there); ``since``: when it was added."""
        return str(value["text"])

    def eviction_order(self, item: MemoryItem) -> tuple[Any, ...]:
        """Sort key: the first items in this order expire first when the layer is over its cap
        (default: least recently updated first)."""
        return (item.updated_at, item.id)

    def first_value(self, value: dict[str, Any]) -> dict[str, Any]:
        """The stored value of a new entry (default: as given)."""
        return value

    def merged_value(self, old: MemoryItem, new: dict[str, Any]) -> dict[str, Any]:
        """The stored value after the same entry is seen again (default: the stored one)."""
        return dict(old.value)

    def repeat(self, old: MemoryItem, entry: Entry) -> tuple[int, dict[str, Any]]:
        """Count and meta after the same entry is seen again (default: unchanged)."""
        return old.count, dict(old.meta)

    def first_meta(self, entry: Entry) -> dict[str, Any]:
        return {}

    def update_reason(self, old: MemoryItem, new: MemoryItem) -> str:
        """Why a stored entry changed when it was seen again (recorded in its history)."""
        return "repeated"

    # ---- extraction -------------------------------------------------------------------------

    def reply_field(self) -> tuple[Any, Any]:
        fields: dict[str, Any] = self.schema.reply_fields(optional=False)
        fields["replaces"] = (
            int | None,
            Field(None, description="Number of the stored entry this one contradicts and replaces, if any."),
        )
        entry: Any = reply_model(f"{self.name.title().replace('_', '')}Entry", fields)
        return list[entry], Field(default_factory=list)

    def to_patch(self, section: Any, context: ReplyContext) -> Patch | None:
        entries = []
        for given in section or []:
            data = given.model_dump(exclude={"replaces"})
            target = context.item(given.replaces)  # an unknown number goes; the entry stays, as new
            if not str(data.get("text", "")).strip():
                context.usage.drop("invalid")
                continue
            if self.from_user_only and context.misattributed(data["text"]):
                context.usage.drop("misattributed")
                continue
            value = context.checked(self.schema.validate_entry, data, self.name)
            if value is not None:
                replaces = target.id if target is not None else None
                entries.append(Entry(value=value, replaces=replaces, occurrence=context.occurrence))
        return NewEntries(tuple(entries)) if entries else None

    # ---- merging ----------------------------------------------------------------------------

    def fresh(self, change: Patch, changed: Collection[str]) -> tuple[Patch | None, int]:
        assert isinstance(change, NewEntries)
        entries = tuple(e for e in change.entries if self.key_of(e.value) not in changed)
        return (NewEntries(entries) if entries else None), len(change.entries) - len(entries)

    def merge(self, current: Sequence[MemoryItem], change: Patch, now: datetime) -> list[Op]:
        return self.merge_entries(current, change, now).ops

    def merge_entries(self, current: Sequence[MemoryItem], change: Patch, now: datetime) -> Merged:
        """``merge``, also telling which item each entry ended up as (the ids ``add_many`` returns)."""
        assert isinstance(change, NewEntries), f"{self.name} takes NewEntries"
        run = _Run(self, current, now)
        for entry in change.entries:
            run.take(entry)
        return run.finish()

    def duplicate_of(
        self,
        current: Sequence[MemoryItem],
        value: dict[str, Any],
        closed: set[str] | None = None,
        by_key: dict[str, MemoryItem] | None = None,
    ) -> MemoryItem | None:
        """The live item that already says what ``value`` says: same key, else similar enough.

        Among equally similar items the first in ``current`` (the oldest) wins, so that applying a
        change again picks the same item.
        """
        closed = closed or set()
        by_key = by_key if by_key is not None else {item.key: item for item in current}
        same = by_key.get(self.key_of(value))
        if same is not None and same.id not in closed:
            return same
        if self.similarity_threshold is None:
            return None
        best, score, text, threshold = None, 0.0, value["text"], self.similarity_threshold
        for item in current:
            if item.id in closed or not could_reach(text, item.text, threshold):
                continue
            if (s := similarity(text, item.text)) > score:
                best, score = item, s
        return best if score >= threshold else None

    # ---- reading ----------------------------------------------------------------------------

    def order(self, rows: Sequence[R]) -> list[R]:
        # Stable sorts, least significant key first: id, then recency, then count, then relevance.
        ranked = sorted(rows, key=lambda r: r.id)
        ranked.sort(key=lambda r: r.updated_at, reverse=True)
        if self.rank_by_count:
            ranked.sort(key=lambda r: r.times, reverse=True)
        ranked.sort(key=lambda r: r.score, reverse=True)
        return ranked

    def typed(self, items: Sequence[MemoryItem]) -> Any:
        return [dataclasses.replace(item, data=self.schema.instance(item.value)) for item in items]

    def columns(self, items: Sequence[MemoryItem]) -> tuple[list[str], list[tuple[MemoryItem, list[str]]]]:
        """The text, then every other field some item has a value for, then the count if any repeats."""
        others = [
            name
            for name in self.schema.fields
            if name != "text" and any(_shown(item.value.get(name)) for item in items)
        ]
        counted = any(item.count > 1 for item in items)
        headers = ["text", *others, *(["count"] if counted else [])]
        rows = [
            (
                item,
                [
                    item.text,
                    *(_shown(item.value.get(n)) for n in others),
                    *([str(item.count)] if counted else []),
                ],
            )
            for item in items
        ]
        return headers, rows

    # ---- memory tools and manual writes ------------------------------------------------------

    def tool_hint(self) -> str:
        return f"'{self.name}' ({self.about})"

    def tool_arguments(self) -> dict[str, dict[str, Any]]:
        """The schema's other fields, each with its JSON Schema and description."""
        arguments = {}
        for name, spec in self.schema.fields.items():
            if name != "text":
                schema = TypeAdapter(_not_none(spec.annotation)).json_schema()
                arguments[name] = {**_untitled(schema), "description": spec.description or name}
        return arguments

    def remembered(self, value: str, arguments: Mapping[str, Any], occurrence: str | None) -> Patch:
        given = {k: v for k, v in arguments.items() if k in self.schema.fields and v is not None}
        entry = self.schema.validate_entry({**given, "text": value}, self.name)
        return NewEntries((Entry(entry, occurrence=occurrence),))

    def corrected(self, item: MemoryItem, value: str, occurrence: str | None) -> list[Patch]:
        entry = self.schema.validate_entry({**item.value, "text": value}, self.name)
        return [NewEntries((Entry(entry, replaces=item.id, occurrence=occurrence),))]

    def handle(self, writes: Writes) -> CollectionHandle:
        return CollectionHandle(writes, self)

    # ---- import -----------------------------------------------------------------------------

    def stored(self, key: str, value: Any, count: int, created_at: datetime) -> Stored:
        if not isinstance(value, dict):
            raise InvalidInputError(f"a {self.name} value must be an object")
        try:
            checked = self.schema.validate_entry(value, self.name)
        except ConfigurationError as exc:  # an unknown field: the data's fault here, not the setup's
            raise InvalidInputError(str(exc)) from None
        if not str(checked["text"]).strip():
            raise InvalidInputError("an empty text is never stored")
        return Stored(self.key_of(checked), checked, checked["text"], self.line(checked, count, created_at))


def _shown(value: Any) -> str:
    if value is None or value == [] or value == "":
        return ""
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _not_none(annotation: Any) -> Any:
    """``X | None`` as ``X``: an argument left out keeps its default anyway."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _untitled(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "title"}


class _Run:
    """One collection merge in progress.

    ``live`` holds the layer's live items, by key, as the change leaves them so far: stored items
    (with the repeats folded in) and drafts of the new ones. Drafts are MemoryItems, with no id yet,
    so that ``duplicate_of``, ``merged_value`` and ``repeat`` treat them like stored items. Keys are
    unique among live items and never change, so an item is named by its key throughout.
    """

    def __init__(self, layer: CollectionLayer, current: Sequence[MemoryItem], now: datetime) -> None:
        self.layer, self.current, self.now = layer, current, now
        self.by_id = {item.id: item for item in current}
        self.stored = {item.key: item for item in current}
        self.live = dict(self.stored)
        self.new: dict[str, None] = {}  # keys of the drafts, in entry order
        self.touched: dict[str, None] = {}  # keys of the stored items an entry ended up as, in order
        self.closed: dict[str, str] = {}  # id of each replaced item -> key of its replacement
        self.links: dict[str, MemoryItem] = {}  # draft key -> the item its Supersede closes
        self.steps: list[str | MemoryItem] = []  # drafts (key) and replaced items, in entry order
        self.results: list[str] = []  # per entry, the key of the item it ended up as

    def take(self, entry: Entry) -> None:
        value = dict(entry.value)
        key = self.layer.key_of(value)
        target = self._target(entry, key)
        # Not the item it replaces: "X is not Y" is similar to "X is Y" and must still replace it.
        others = [item for item in self.live.values() if target is None or item.key != target.key]
        match = self.layer.duplicate_of(others, value, by_key=self.live)
        item = self._fold(match, value, entry) if match is not None else self._draft(key, value, entry)
        if target is not None:
            del self.live[target.key]
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
        cap = self.layer.max_items
        if cap is None or len(self.live) <= cap:
            return [], set()
        excess = len(self.live) - cap
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
