"""The collection kind (knowledge, feedback): entries with ids, deduplicated, capped.

The merge policy is in :mod:`.collection_merge`; this module holds what else the kind does: the reply
shape (entries with an optional ``replaces`` number), ranking in ``compile``, typed reads, tool
arguments, corrections and import checks. A collection layer of your own overrides the policy's parts
(``key_of``, ``line``, ``merged_value``, ``repeat``, ``eviction_order``, ``update_reason`` ...).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from itertools import chain
from operator import attrgetter
from typing import Any, ClassVar

from pydantic import Field, TypeAdapter

from ..errors import ConfigurationError, InvalidInputError
from ..records import MemoryItem
from ..text import could_reach, normalize, similarity
from .base import Layer, LiveItems, R, ReplyContext, Stored, vouched_for
from .changes import Entry, NewEntries, Op, Patch
from .collection_merge import LiveSubset, Merged, Run, probe_groups
from .handles import CollectionHandle, Writes
from .meaning import same_meaning
from .schema import bounded_key, display, is_empty, reply_model, untitled

MAX_PROBE_WORDS = 1000
"""Above this many probe words in one change (a bulk ``add_many``), a merge reads every live item."""
PROMPT_ITEMS = 40
"""Stored entries the extraction prompt shows per collection: the prompt must not grow with the memory."""
RESERVED = ("replaces",)


class CollectionLayer(Layer):
    """A layer of entries with ids (see the module docstring for the merge policy). The schema is a
    dataclass with a ``text: str`` field; every other field needs a default."""

    prompt_items = PROMPT_ITEMS
    similarity_threshold: ClassVar[float | None] = None
    """Word-set Jaccard at or above which two texts may count as the same entry (None: exact key only);
    ``says_the_same`` has the last word."""
    ranked_in_sql = True  # ``order`` below is the store's ranked order
    merges_candidates: ClassVar[bool] = True
    """``merge`` needs only the live items a change can touch (``candidates``), not every live item. A
    subclass (or mixin) that brings its own ``merge`` or ``merge_entries`` gets every live item unless it
    sets this again."""
    eviction_columns: ClassVar[tuple[str, ...] | None] = ("updated_at", "id")
    """The item columns ``eviction_order`` sorts by, so that a merge over the cap reads only the first
    items in that order; None: not a plain sort by columns (then such a merge reads every live item).
    A subclass (or mixin) that brings its own ``eviction_order`` and does not set this gets None."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own_merge = not all(vouched_for(cls, "merges_candidates", m) for m in ("merge", "merge_entries"))
        if cls.merges_candidates and own_merge:
            cls.merges_candidates = False
        if cls.eviction_columns is not None and not vouched_for(cls, "eviction_columns", "eviction_order"):
            cls.eviction_columns = None

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

    def says_the_same(self, text: str, other: str) -> bool:
        """Whether two texts similar enough in words also say the same thing (default: same numbers,
        names, negations and direction; see :mod:`.meaning`). Must be symmetric."""
        return same_meaning(text, other)

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
            if context.from_assistant(data["text"]):
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

    def merge_live(self, live: LiveItems, change: Patch, now: datetime) -> list[Op]:
        return self.merge(self.candidates(live, change), change, now)

    def candidates(self, live: LiveItems, change: Patch) -> LiveSubset:
        """The live items ``change`` can touch, and how many are live: merged with those, a change
        makes the same operations as with every live item (see :mod:`.collection_merge`)."""
        assert isinstance(change, NewEntries), f"{self.name} takes NewEntries"
        values = [e.value for e in change.entries]
        threshold, cap = self.similarity_threshold, self.max_items
        similar = [probe_groups(v["text"], threshold) for v in values] if threshold is not None else []
        # A merge of its own may look at any item; a bulk write's query would outgrow one read of all.
        everything = not self.merges_candidates or sum(map(len, chain(*similar))) > MAX_PROBE_WORDS
        total = first = None
        if cap is not None and not everything:
            total = live.live_count(self.name)
            over = total + len(values) - cap
            # At most len(values) items are added; each entry closes or restates at most one item,
            # which eviction skips: the first this many in eviction order hold every item it expires.
            if over > 0 and self.eviction_columns is not None:
                first = (self.eviction_columns, over + 2 * len(values))
            everything = over > 0 and self.eviction_columns is None
        if everything:
            items = live.live(self.name)
            return LiveSubset(items, len(items))
        items = live.live_matching(
            self.name,
            keys={self.key_of(v) for v in values},
            ids={e.replaces for e in change.entries if e.replaces},
            similar=[groups for groups in similar if groups],
            first=first,
        )
        return LiveSubset(items, len(items) if total is None else total)

    def merge_entries(self, current: Sequence[MemoryItem], change: Patch, now: datetime) -> Merged:
        """``merge``, also telling which item each entry ended up as (the ids ``add_many`` returns)."""
        assert isinstance(change, NewEntries), f"{self.name} takes NewEntries"
        run = Run(self, current, now)
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
        """The live item that already says what ``value`` says: same key, else similar enough in words
        and the same in meaning (``says_the_same``).

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
            s = similarity(text, item.text)
            if s > score and s >= threshold and self.says_the_same(text, item.text):
                best, score = item, s
        return best

    # ---- reading ----------------------------------------------------------------------------

    def order(self, rows: Sequence[R]) -> list[R]:
        # Stable sorts, least significant key first: id, then recency, then count, then relevance.
        ranked = sorted(rows, key=attrgetter("id"))
        ranked.sort(key=attrgetter("updated_at"), reverse=True)
        if self.rank_by_count:
            ranked.sort(key=attrgetter("times"), reverse=True)
        ranked.sort(key=attrgetter("score"), reverse=True)
        return ranked

    def typed(self, items: Sequence[MemoryItem]) -> Any:
        return [dataclasses.replace(item, data=self.schema.instance(item.value)) for item in items]

    def columns(self, items: Sequence[MemoryItem]) -> tuple[list[str], list[tuple[MemoryItem, list[str]]]]:
        """The text, then every other field some item has a value for, then the count if any repeats."""
        others = [
            name
            for name in self.schema.fields
            if name != "text" and any(not is_empty(item.value.get(name)) for item in items)
        ]
        counted = any(item.count > 1 for item in items)
        headers = ["text", *others, *(["count"] if counted else [])]
        rows = [
            (
                item,
                [
                    item.text,
                    *(_cell(item.value.get(n)) for n in others),
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
                arguments[name] = {**untitled(schema), "description": spec.description or name}
        return arguments

    def remembered(self, value: str, arguments: Mapping[str, Any], occurrence: str | None) -> Patch:
        given = {k: v for k, v in arguments.items() if k in self.schema.fields and v is not None}
        entry = self.schema.validate_entry({**given, "text": value}, self.name)
        return NewEntries((Entry(entry, occurrence=occurrence),))

    def revised(self, item: MemoryItem, text: str | None, fields: Mapping[str, Any]) -> Any:
        if "text" in fields:
            raise InvalidInputError("give the new text as text, not as a field")
        return {**item.value, **fields, **({} if text is None else {"text": text})}

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


def _cell(value: Any) -> str:
    return "" if is_empty(value) else display(value)


def _not_none(annotation: Any) -> Any:
    """``X | None`` as ``X``: an argument left out keeps its default anyway."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation
