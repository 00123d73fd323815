"""The document kind (profile, policies): one value per field, patched field by field.

One item per field. A value replaces the stored one unless the stored one is explicit and the new one
is only inferred; ``None`` and empty values never erase; list fields hold no duplicates (ignoring case
and punctuation), from their first value on; an inferred removal never deletes an explicit field. Every
replaced value stays in the history (the store writes an event per change).

A *keyed list* field (policies' ``rules``) is stored one item per element instead, under the key
``<field>:<element key>``, so each element has its own id, provenance and history: an element with the
same key replaces the stored one, removing one leaves the others, and an agent's own elements add to
the user's shared ones (``get()`` and ``compile`` prefer the agent's item only where keys are equal).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from pydantic import Field

from ..errors import ConfigurationError, InvalidInputError
from ..records import MemoryItem
from ..text import normalize, one_line
from .base import Layer, R, ReplyContext, Stored
from .changes import Add, Delete, FieldPatch, NewItem, Op, Patch, Update
from .handles import DocumentHandle, Writes
from .schema import MAX_LIST, bounded_key, display, is_empty, reply_model


def _union(old: list[Any], new: list[Any]) -> list[Any]:
    """Old and new elements, each once; over MAX_LIST the oldest go (they stay in the history)."""
    seen = {normalize(str(v)) for v in old}
    merged = list(old)
    for v in new:
        if normalize(str(v)) not in seen:
            seen.add(normalize(str(v)))
            merged.append(v)
    return merged[-MAX_LIST:]


class DocumentLayer(Layer):
    """A layer of named fields, one value each (see the module docstring for the merge policy)."""

    pinned = True
    bullets = False
    keyed_lists: ClassVar[frozenset[str]] = frozenset()
    """``list[str]`` fields stored one item per element (see the module docstring)."""
    retractable: ClassVar[bool] = False
    """The extraction reply may withdraw stored entries by number: ``{"set": {...}, "remove": [2]}``."""
    variable_prefix: ClassVar[str | None] = None
    """Templates name each field ``{{<prefix><field>}}``; ``None``: ``<layer name>_``."""

    def check_schema(self) -> None:
        for f in dataclasses.fields(self.schema.cls):
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigurationError(
                    f"{self.name} schema {self.schema.cls.__name__}: field {f.name!r} needs a default "
                    "(a document is filled in field by field)"
                )
        for name in self.keyed_lists & set(self.schema.fields):
            if typing.get_origin(self.schema.fields[name].annotation) is not list or typing.get_args(
                self.schema.fields[name].annotation
            ) != (str,):
                raise ConfigurationError(
                    f"{self.name} schema {self.schema.cls.__name__}: {name} must be list[str]"
                )

    # ---- keys and lines ---------------------------------------------------------------------

    def field_of(self, key: str) -> str:
        return key.split(":", 1)[0]

    def element_key(self, field: str, element: str) -> str:
        """The key of one element of a keyed list: equal keys are the same element."""
        return bounded_key(f"{field}:{normalize(element)}")

    def element_label(self, field: str) -> str:
        """How a keyed list's element is labelled in its line (``rule: never use emojis``)."""
        return field

    def label(self, key: str) -> str:
        field = self.field_of(key)
        return self.element_label(field) if key != field else key

    def line_of(self, key: str, value: Any) -> str:
        return f"{self.label(key)}: {display(value)}"

    def _is_element(self, key: str) -> bool:
        return key != self.field_of(key) and self.field_of(key) in self.keyed_lists

    def _stored_as(self, field: str, value: Any) -> dict[str, Any]:
        """How a field's validated value is stored: key -> value (one per element of a keyed list; of
        two elements with the same key the later one wins)."""
        if field in self.keyed_lists:
            return {self.element_key(field, element): element for element in value}
        return {field: value}

    # ---- extraction -------------------------------------------------------------------------

    def reply_field(self) -> tuple[Any, Any]:
        title = self.name.title().replace("_", "")
        values: Any = reply_model(f"{title}Values", self.schema.reply_fields(optional=True))
        if not self.retractable:
            return values | None, None
        change: Any = reply_model(
            f"{title}Change",
            {
                "set": (values | None, Field(None, description="Values the user explicitly stated.")),
                "remove": (
                    list[int],
                    Field(default_factory=list, description="Numbers of stored entries the user withdrew."),
                ),
            },
        )
        return change | None, None

    def to_patch(self, section: Any, context: ReplyContext) -> Patch | None:
        if section is None:
            return None
        given, aliases = (section.set, section.remove) if self.retractable else (section, [])
        values = {} if given is None else given.model_dump(exclude_none=True)
        clean: dict[str, Any] = {}
        for field, value in values.items():
            if field in self.keyed_lists:
                value = [v for v in value if not context.from_assistant(v)]
                if not value:
                    continue
            elif context.from_assistant(display(value)):
                continue
            checked = context.checked(self.schema.validate_field, field, value, self.name)
            if checked is not None:
                clean[field] = checked
        remove = tuple(item.key for alias in aliases if (item := context.item(alias)) is not None)
        return FieldPatch(clean, remove=remove) if clean or remove else None

    def prompt_text(self, item: MemoryItem) -> str:
        return one_line(self.line_of(item.key, item.value))

    # ---- merging ----------------------------------------------------------------------------

    def merge(self, current: Sequence[MemoryItem], change: Patch, now: datetime) -> list[Op]:
        if not isinstance(change, FieldPatch):
            raise TypeError(f"{self.name} takes a FieldPatch")
        stored = {item.key: item for item in current}
        ops: list[Op] = []
        touched: set[str] = set()
        for field, given in change.values.items():
            if is_empty(given):
                continue  # None never erases
            for key, value in self._stored_as(field, given).items():
                touched.add(key)
                op = self._set(stored.get(key), key, value, change)
                if op is not None:
                    ops.append(op)
        ops.extend(self._over_cap(current, ops, touched))
        for key in change.remove:
            whole = key in self.keyed_lists
            for old in current:
                # Like an inferred value, an inferred removal never overrides what the user said.
                hit = old.key == key or (whole and self.field_of(old.key) == key and old.key != key)
                if hit and (change.explicit or not old.explicit):
                    ops.append(Delete(old, reason="removed"))
        return ops

    def _set(self, old: MemoryItem | None, key: str, value: Any, change: FieldPatch) -> Op | None:
        is_list = not self._is_element(key) and self.schema.fields[self.field_of(key)].is_list
        if old is None:
            value = _union([], value) if is_list else value
            return Add(
                NewItem(
                    key=key,
                    value=value,
                    text=display(value),
                    line=self.line_of(key, value),
                    confidence=change.confidence,
                    explicit=change.explicit,
                )
            )
        if old.explicit and not change.explicit:
            return None  # an inferred value never overrides an explicit one
        value = _union(old.value, value) if is_list else value
        explicit = old.explicit or change.explicit
        # An element said again in other case or punctuation is the same element, kept as first said.
        same = normalize(value) == normalize(old.value) if self._is_element(key) else value == old.value
        if same and explicit == old.explicit:
            return None
        return Update(
            target=old,
            value=value,
            text=display(value),
            line=self.line_of(key, value),
            count=old.count,
            explicit=explicit,
            confidence=change.confidence,
            meta=old.meta,
        )

    def _over_cap(self, current: Sequence[MemoryItem], ops: list[Op], touched: set[str]) -> list[Op]:
        """A keyed list keeps at most MAX_LIST elements: the oldest ones the change did not touch go."""
        added = [op.item.key for op in ops if isinstance(op, Add)]
        evicted: list[Op] = []
        for field in self.keyed_lists:
            mine = [
                item for item in current if self._is_element(item.key) and self.field_of(item.key) == field
            ]
            excess = len(mine) + sum(self.field_of(k) == field for k in added) - MAX_LIST
            old = [item for item in mine if item.key not in touched][: max(excess, 0)]
            evicted += [Delete(item, reason=f"evicted: over the cap of {MAX_LIST} {field}") for item in old]
        return evicted

    def fresh(self, change: Patch, changed: Collection[str]) -> tuple[Patch | None, int]:
        assert isinstance(change, FieldPatch)
        values: dict[str, Any] = {}
        dropped = 0
        for field, value in change.values.items():
            if field in self.keyed_lists:
                kept = [v for v in value if self.element_key(field, v) not in changed]
                dropped += len(value) - len(kept)
                if kept:
                    values[field] = kept
            elif self.schema.fields[field].is_list or field not in changed:
                values[field] = value  # a list field only gains elements: unions commute
            else:
                dropped += 1
        remove = tuple(key for key in change.remove if key not in changed)
        dropped += len(change.remove) - len(remove)
        if not (values or remove):
            return None, dropped
        return dataclasses.replace(change, values=values, remove=remove), dropped

    def split(self, key: str, value: Any) -> list[tuple[str, Any]]:
        if key in self.keyed_lists and isinstance(value, list):  # stored as one list before schema v6
            return [(self.element_key(key, str(v)), v) for v in value]
        return [(key, value)]

    # ---- reading ----------------------------------------------------------------------------

    def _position(self, key: str) -> tuple[int, str]:
        fields = list(self.schema.fields)
        field = self.field_of(key)
        return (fields.index(field) if field in fields else len(fields), key)

    def order(self, rows: Sequence[R]) -> list[R]:
        return sorted(rows, key=lambda row: self._position(row.key))

    def typed(self, items: Sequence[MemoryItem]) -> Any:
        values: dict[str, Any] = {}
        for item in items:
            if self._is_element(item.key):
                values.setdefault(self.field_of(item.key), []).append(item.value)
            else:
                values[item.key] = item.value
        return self.schema.instance(values)

    def template_variables(self) -> tuple[str, ...]:
        prefix = f"{self.name}_" if self.variable_prefix is None else self.variable_prefix
        return tuple(prefix + field for field in self.schema.fields)

    def template_values(self, items: Sequence[MemoryItem]) -> dict[str, str]:
        document = self.typed(items)
        values = (getattr(document, field) for field in self.schema.fields)
        return {
            name: "" if is_empty(value) else display(value)
            for name, value in zip(self.template_variables(), values, strict=True)
        }

    def columns(self, items: Sequence[MemoryItem]) -> tuple[list[str], list[tuple[MemoryItem, list[str]]]]:
        ordered = sorted(items, key=lambda item: self._position(item.key))
        return ["field", "value"], [(item, [self.label(item.key), item.text]) for item in ordered]

    # ---- memory tools and manual writes ------------------------------------------------------

    def tool_hint(self) -> str:
        return f"'{self.name}' ({self.about}; fields: {', '.join(self.schema.fields)})"

    def tool_arguments(self) -> dict[str, dict[str, Any]]:
        return {"field": {"type": "string", "description": "the field to set"}}

    def remembered(self, value: str, arguments: Mapping[str, Any], occurrence: str | None) -> Patch:
        field = arguments.get("field")
        if not field:
            raise InvalidInputError(f"{self.name} needs a field: one of {', '.join(self.schema.fields)}")
        self.schema.check_known([field], self.name)
        raw: Any = [value] if self.schema.fields[field].is_list else value
        return FieldPatch({field: self.schema.validate_field(field, raw, self.name)})

    def revised(self, item: MemoryItem, text: str | None, fields: Mapping[str, Any]) -> Any:
        if fields or text is None:
            raise InvalidInputError(f"a {self.name} item has one value: give its new text, and no fields")
        if not self._is_element(item.key) and self.schema.fields[self.field_of(item.key)].is_list:
            # The whole list at once (a model sends it as one string): its elements comma-separated,
            # each once, as a merge would keep them.
            return _union([], [element.strip() for element in text.split(",") if element.strip()])
        return text

    def handle(self, writes: Writes) -> DocumentHandle:
        return DocumentHandle(writes, self)

    # ---- import -----------------------------------------------------------------------------

    def stored(self, key: str, value: Any, count: int, created_at: datetime) -> Stored:
        field = self.field_of(key)
        if field not in self.schema.fields:
            raise InvalidInputError(
                f"{self.name} has no field {field!r}; fields are {', '.join(self.schema.fields)}"
            )
        if is_empty(value):
            raise InvalidInputError("an empty value is never stored")
        if field in self.keyed_lists:
            if key == field:
                raise InvalidInputError(f"{self.name}.{field} is stored one item per element, not as a list")
            (element,) = self.schema.validate_field(field, [value], self.name)
            key = self.element_key(field, element)
            return Stored(key, element, display(element), self.line_of(key, element))
        checked = self.schema.validate_field(field, value, self.name)
        return Stored(field, checked, display(checked), self.line_of(field, checked))
