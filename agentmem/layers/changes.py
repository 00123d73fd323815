"""What flows through a merge policy: the changes it accepts (patches) and the operations it returns.

A merge policy is pure, deterministic code: given the write scope's live items of its layer and a patch
(from the manual API, memory tools or extraction), it returns operations. The store applies them, with
an event per item change, in one transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..records import MemoryItem

# ---- changes a merge policy accepts ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldPatch:
    """New values for fields of a document layer (profile, policies), already validated.

    ``remove`` names stored keys to retract: a field, one element of a keyed list field (its item key),
    or a keyed list field as a whole (every element).
    """

    values: Mapping[str, Any]
    remove: tuple[str, ...] = ()
    explicit: bool = True
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class Entry:
    """One new entry of a collection layer (knowledge, feedback), already validated.

    ``replaces`` names a live item this entry contradicts; ``occurrence`` identifies where it was
    said, so the same occurrence applied twice counts once.
    """

    value: Mapping[str, Any]
    replaces: str | None = None
    occurrence: str | None = None
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class NewEntries:
    entries: tuple[Entry, ...]


Patch = FieldPatch | NewEntries


# ---- operations a merge policy returns ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewItem:
    key: str
    value: Any
    text: str
    line: str
    confidence: float = 1.0
    count: int = 1
    explicit: bool = True
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Add:
    item: NewItem


@dataclass(frozen=True, slots=True)
class Update:
    target: MemoryItem
    value: Any
    text: str
    line: str
    count: int
    explicit: bool
    confidence: float
    meta: Mapping[str, Any]
    reason: str | None = None
    key: str | None = None
    """The item's new key, when an update in place changes what it is keyed by (None: unchanged)."""


@dataclass(frozen=True, slots=True)
class Supersede:
    """Close ``target`` (valid_to set, superseded_by linked) in favour of ``replacement``.

    The replacement is a new item, or a live one that already says the same thing.
    """

    target: MemoryItem
    replacement: NewItem | MemoryItem
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Expire:
    """Close ``target`` without a replacement (eviction by cap); it stays in history and exports."""

    target: MemoryItem
    reason: str


@dataclass(frozen=True, slots=True)
class Delete:
    target: MemoryItem
    reason: str | None = None


Op = Add | Update | Supersede | Expire | Delete
