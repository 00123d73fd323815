"""The field-patch merge policy shared by the document layers (profile and policies).

One item per field. A value replaces the stored one unless the stored one is explicit and the new one
is only inferred; ``None`` and empty values never erase; list fields hold no duplicates (ignoring case and
punctuation), from their first value on; an inferred removal never deletes an explicit field. Every
replaced value stays in the history (the store writes an event per change).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal

from ..errors import ConfigurationError
from ..records import MemoryItem
from ..text import normalize
from .base import MAX_LIST, Add, Delete, FieldPatch, Layer, NewItem, Op, Patch, Update, display


def _union(old: list[Any], new: list[Any]) -> list[Any]:
    """Old and new elements, each once; over MAX_LIST the oldest go (they stay in the history)."""
    seen = {normalize(str(v)) for v in old}
    merged = list(old)
    for v in new:
        if normalize(str(v)) not in seen:
            seen.add(normalize(str(v)))
            merged.append(v)
    return merged[-MAX_LIST:]


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == []


class DocumentLayer(Layer):
    kind: ClassVar[Literal["document", "collection"]] = "document"

    def check_schema(self) -> None:
        for f in dataclasses.fields(self.schema.cls):
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigurationError(
                    f"{self.name} schema {self.schema.cls.__name__}: field {f.name!r} needs a default "
                    "(a document is filled in field by field)"
                )

    def line(self, key: str, value: Any) -> str:
        return f"{key}: {display(value)}"

    def merge(self, current: Sequence[MemoryItem], change: Patch, now: datetime) -> list[Op]:
        assert isinstance(change, FieldPatch), f"{self.name} takes a FieldPatch"
        stored = {item.key: item for item in current}
        ops: list[Op] = []
        for key, value in change.values.items():
            if _is_empty(value):
                continue  # None never erases
            old = stored.get(key)
            if old is None:
                ops.append(Add(self._new(key, value, change)))
                continue
            if old.explicit and not change.explicit:
                continue  # an inferred value never overrides an explicit one
            if self.schema.fields[key].is_list:
                value = _union(old.value, value)
            explicit = old.explicit or change.explicit
            if value == old.value and explicit == old.explicit:
                continue
            ops.append(
                Update(
                    target=old,
                    value=value,
                    text=display(value),
                    line=self.line(key, value),
                    count=old.count,
                    explicit=explicit,
                    confidence=change.confidence,
                    meta=old.meta,
                )
            )
        for key in change.remove:
            old = stored.get(key)
            # Like an inferred value, an inferred removal never overrides what the user said.
            if old is not None and (change.explicit or not old.explicit):
                ops.append(Delete(old, reason="removed"))
        return ops

    def _new(self, key: str, value: Any, change: FieldPatch) -> NewItem:
        if self.schema.fields[key].is_list:
            value = _union([], value)
        return NewItem(
            key=key,
            value=value,
            text=display(value),
            line=self.line(key, value),
            confidence=change.confidence,
            explicit=change.explicit,
        )
