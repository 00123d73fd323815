"""The export document (``agentmem.export``, version 4): everything one user has, one list per table.

Each record kind is a table's columns minus the ones deliberately left out, each with its reason, so a
column added to a table either appears in the export or is named here (a test checks this). Datetimes
are ISO 8601 strings in UTC, ``agent_id`` is ``null`` for the user's shared memory, and the user id is
stated once, in the header.

Versions: 1 had items and events; 2 added sessions and messages; 3 added each event's ``observed_at``,
the learned-input log and pending extractions; 4 added memory variables (their history is events of the
layer ``variables``), each item's ``expires_at``, and the ``session_scope`` of items, events and learned
inputs (``null``: user-wide). Older documents still import (the new parts empty, all user-wide).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import Table

from .tables import EventRow, ItemRow, LearnedRow, MessageRow, PendingRow, SessionRow, VariableRow, table

FORMAT = "agentmem.export"
VERSION = 4


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _utc(value: datetime) -> datetime:
    """The time in UTC (a time without a zone is UTC); a ValueError for one UTC cannot hold."""
    if value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-14:00 is past the year 9999 in UTC
        raise ValueError(f"{value.isoformat()} is out of range in UTC") from None


Time = Annotated[datetime, AfterValidator(_utc)]
"""A datetime of the document, in UTC once validated."""

COLUMN_MAX = 2**31 - 1
"""The largest integer the tables' integer columns hold (PostgreSQL's ``integer``)."""
Count = Annotated[int, Field(ge=0, le=COLUMN_MAX)]


class ExportedItem(_Strict):
    id: str = Field(min_length=1, max_length=40)
    agent_id: str | None
    session_id: str | None
    layer: str
    key: str
    value: Any
    text: str
    line: str
    source: str = Field(max_length=16)
    confidence: float = Field(ge=0, le=1)
    count: int = Field(ge=1, le=COLUMN_MAX)
    explicit: bool
    meta: dict[str, Any]
    created_at: Time
    updated_at: Time
    valid_to: Time | None
    superseded_by: str | None = Field(max_length=40)
    expires_at: Time | None = None  # version 4
    session_scope: str | None = None  # version 4


class ExportedEvent(_Strict):
    item_id: str = Field(max_length=40)
    agent_id: str | None
    session_id: str | None
    layer: str
    key: str = Field(max_length=300)
    op: Literal["add", "update", "supersede", "expire", "delete"]
    old: Any
    new: Any
    reason: str | None
    source: str = Field(max_length=16)
    created_at: Time
    observed_at: Time | None = None  # version 3
    session_scope: str | None = None  # version 4


class ExportedSession(_Strict):
    session_id: str
    agent_id: str | None
    summary: str | None
    summarized_messages: Count
    created_at: Time
    updated_at: Time


class ExportedMessage(_Strict):
    session_id: str
    role: str
    content: str
    extra: dict[str, Any]
    created_at: Time


class ExportedLearned(_Strict):
    """An input ``learn`` already applied to a scope (a hash: no content), so it is not applied twice."""

    agent_id: str | None
    key: str = Field(min_length=1, max_length=64)
    created_at: Time
    session_scope: str | None = None  # version 4


class ExportedPending(_Strict):
    """A failed extraction's input (secrets redacted), kept for ``retry_pending``."""

    id: str = Field(min_length=1, max_length=40)
    agent_id: str | None
    session_id: str | None
    key: str = Field(min_length=1, max_length=64)
    messages: list[dict[str, str]]
    error: str
    attempts: Count
    watermark: int | None = Field(ge=-1, le=COLUMN_MAX)
    """The user's newest event when the input was read, as its position (1-based) in ``events``;
    0: the user had none; -1: that event is gone (the user was deleted since, so a retry skips the
    input); null: not recorded (written before schema 5)."""
    read_at: Time | None
    created_at: Time
    updated_at: Time


class ExportedVariable(_Strict):
    """A memory variable (version 4); ``agent_id`` and ``session_id`` null for none."""

    id: str = Field(min_length=1, max_length=40)
    agent_id: str | None
    session_id: str | None
    name: str
    value: str
    created_at: Time
    updated_at: Time


class Export(_Strict):
    format: Literal["agentmem.export"]
    version: Literal[1, 2, 3, 4]
    user_id: str
    items: list[ExportedItem]
    events: list[ExportedEvent]
    sessions: list[ExportedSession] = []
    messages: list[ExportedMessage] = []
    learned: list[ExportedLearned] = []
    pending: list[ExportedPending] = []
    variables: list[ExportedVariable] = []


@dataclass(frozen=True)
class RecordKind:
    """One list of the document: the rows of ``table`` for the user, in ``order``."""

    name: str
    table: Table
    model: type[_Strict]
    order: tuple[str, ...]
    left_out: Mapping[str, str]
    """Columns not exported, each with the reason."""
    none_as_blank: tuple[str, ...] = ("agent_id", "session_scope")
    """Columns that store ``""`` for none: ``null`` in the document."""

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.table.columns if c.name not in self.left_out)


_HEADER = "the user id, stated once in the document's header"
_POSITION = "a surrogate key; the list keeps the order"
KINDS = (
    RecordKind(
        "items",
        table(ItemRow),
        ExportedItem,
        ("pk",),
        {"pk": "a surrogate key (items are known by id); the search index is rebuilt", "user_id": _HEADER},
    ),
    RecordKind(
        "events",
        table(EventRow),
        ExportedEvent,
        ("id",),
        {"id": f"{_POSITION}; a pending watermark refers to an event by position", "user_id": _HEADER},
    ),
    RecordKind(
        "sessions", table(SessionRow), ExportedSession, ("pk",), {"pk": _POSITION, "user_id": _HEADER}
    ),
    RecordKind(
        "messages", table(MessageRow), ExportedMessage, ("pk",), {"pk": _POSITION, "user_id": _HEADER}
    ),
    RecordKind("learned", table(LearnedRow), ExportedLearned, ("pk",), {"pk": _POSITION, "user_id": _HEADER}),
    RecordKind("pending", table(PendingRow), ExportedPending, ("created_at", "id"), {"user_id": _HEADER}),
    RecordKind(
        "variables",
        table(VariableRow),
        ExportedVariable,
        ("pk",),
        {"pk": _POSITION, "user_id": _HEADER},
        none_as_blank=("agent_id", "session_id"),
    ),
)
TABLES_LEFT_OUT = {
    "agentmem_meta": "the database's schema version: no user's data",
    "agentmem_generations": "a random token that stops writes begun before a delete_user: no user's data",
    "agentmem_api_keys": "the REST server's credentials, not memory; a user's own are erased with the user",
    "agentmem_vectors": "derived from each item's text by the embedding model; an imported item is pending "
    "embedding (the next write, retry_pending or reembed embeds it), and a model may change meanwhile",
}
