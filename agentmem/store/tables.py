"""SQLModel tables: what the code reads and writes. The migrations build them (tests check they agree)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Table,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from ..validation import checked_time

# The largest LIMIT every backend takes (a signed 64-bit int); a larger one means "all rows".
MAX_LIMIT = 2**63 - 1


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend and SQLModel version."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # The last guard: the writes check their datetimes (validation.checked_time) before any SQL.
        return checked_time(value, "a stored datetime").astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)


class ItemRow(SQLModel, table=True):
    """One live or closed item. ``agent_id == ""`` is the user's shared memory; ``session_scope == ""``
    is user-wide memory, any other value the one session that sees the item (``session_id`` is only
    where it was learned)."""

    __tablename__ = "agentmem_items"
    __table_args__ = (
        # Serves the scope read (user, agent, session[, layer]) of live items, and keeps one live item
        # per key in each scope: a user-wide item and a session's item of one key coexist (v9).
        Index(
            "ux_agentmem_items_live_key",
            "user_id",
            "agent_id",
            "session_scope",
            "layer",
            "key",
            unique=True,
            sqlite_where=text("valid_to IS NULL"),
            postgresql_where=text("valid_to IS NULL"),
        ),
        Index("ix_agentmem_items_user", "user_id", "agent_id", "layer"),
        # Serves compile's budgeted read: a scope's newest live items of one layer first (v8; v9 adds
        # the session, so each visible session's range is read in order on its own).
        Index(
            "ix_agentmem_items_recent",
            "user_id",
            "agent_id",
            "session_scope",
            "layer",
            "updated_at",
            sqlite_where=text("valid_to IS NULL"),
            postgresql_where=text("valid_to IS NULL"),
        ),
        # Serves finding a scope's live items past their own expiry date; holds only those that have one (v9).
        Index(
            "ix_agentmem_items_expiry",
            "user_id",
            "agent_id",
            "layer",
            "expires_at",
            sqlite_where=text("expires_at IS NOT NULL AND valid_to IS NULL"),
            postgresql_where=text("expires_at IS NOT NULL AND valid_to IS NULL"),
        ),
    )
    # Not modelled: the full-text index over ``text`` (and topics), which the code reads and writes
    # only as SQL of its own (see store/search.py): SQLite's FTS5 table, and on PostgreSQL the column
    # ``search_vector`` (v8, written by the code since v12) with its GIN index
    # ``ix_agentmem_items_search`` and the index its rank pools walk, ``ix_agentmem_items_user_pk``
    # (v10); and the words of each text for merge candidates (v9): SQLite's FTS5 row holds them, on
    # PostgreSQL the ``words`` array with its GIN index ``ix_agentmem_items_words``, written by
    # ``search.index_items``.

    pk: int | None = Field(default=None, primary_key=True)
    id: str = Field(max_length=40, unique=True)
    user_id: str = Field(max_length=255)
    agent_id: str = Field(default="", max_length=255)
    session_id: str | None = Field(default=None, max_length=255)
    session_scope: str = Field(default="", max_length=255, sa_column_kwargs={"server_default": ""})
    layer: str = Field(max_length=32)
    key: str = Field(max_length=300)
    value: Any = Field(sa_column=Column(JSON, nullable=True))
    text: str
    line: str
    """The item rendered as the model reads it, kept so compile is a read plus escaping."""
    source: str = Field(max_length=16)
    confidence: float = 1.0
    count: int = 1
    explicit: bool = True
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)
    valid_to: datetime | None = Field(default=None, sa_type=UtcDateTime)
    superseded_by: str | None = Field(default=None, max_length=40)
    expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    """When the item leaves the memory, set by a manual write; a layer's ttl applies as well (v9)."""


class EventRow(SQLModel, table=True):
    """An append-only record of one change to one item."""

    __tablename__ = "agentmem_events"
    __table_args__ = (Index("ix_agentmem_events_scope", "user_id", "agent_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    item_id: str = Field(max_length=40, index=True)
    user_id: str = Field(max_length=255)
    agent_id: str = Field(default="", max_length=255)
    session_id: str | None = Field(default=None, max_length=255)
    session_scope: str = Field(default="", max_length=255, sa_column_kwargs={"server_default": ""})
    """The changed item's ``session_scope`` (v9): a session's history stays with it."""
    layer: str = Field(max_length=32)
    key: str = Field(max_length=300)
    op: str = Field(max_length=16)
    old: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    new: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    reason: str | None = None
    source: str = Field(max_length=16)
    created_at: datetime = Field(sa_type=UtcDateTime)
    observed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    """For extracted changes: when their input was read, i.e. how current the information is; None
    for direct writes, which are as current as their own ``created_at`` (v4)."""


class LearnedRow(SQLModel, table=True):
    """An input already applied by ``learn`` for a scope: re-running it changes nothing (v2)."""

    __tablename__ = "agentmem_learned"
    __table_args__ = (Index("ux_agentmem_learned", "user_id", "agent_id", "key", unique=True),)

    pk: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=255)
    agent_id: str = Field(default="", max_length=255)
    key: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UtcDateTime)
    session_scope: str = Field(default="", max_length=255, sa_column_kwargs={"server_default": ""})
    """The session what was learned was kept in, if any (v9): deleting it forgets the input."""


class PendingRow(SQLModel, table=True):
    """An extraction that failed for good, kept (secrets redacted) for ``retry_pending`` (v2)."""

    __tablename__ = "agentmem_pending"
    __table_args__ = (Index("ux_agentmem_pending", "user_id", "agent_id", "key", unique=True),)

    id: str = Field(primary_key=True, max_length=40)
    user_id: str = Field(max_length=255)
    agent_id: str = Field(default="", max_length=255)
    session_id: str | None = Field(default=None, max_length=255)
    key: str = Field(max_length=64)
    messages: Any = Field(sa_column=Column(JSON, nullable=False))
    error: str
    attempts: int = 0
    watermark: int | None = None
    """The user's newest event id when the input was first read (to notice a deleted user)."""
    read_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    """When the input was first read: anything the user changed after it wins over it."""
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class SessionRow(SQLModel, table=True):
    """One conversation of a user with an agent, and its running summary (v3)."""

    __tablename__ = "agentmem_sessions"
    __table_args__ = (Index("ux_agentmem_sessions", "user_id", "session_id", unique=True),)

    pk: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=255)
    session_id: str = Field(max_length=255)
    agent_id: str = Field(default="", max_length=255)
    summary: str | None = None
    summarized_messages: int = 0
    """How many of the session's messages the summary covers."""
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class MessageRow(SQLModel, table=True):
    """One message of a session, secrets redacted (v3)."""

    __tablename__ = "agentmem_messages"
    __table_args__ = (Index("ix_agentmem_messages_session", "user_id", "session_id", "pk"),)

    pk: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=255)
    session_id: str = Field(max_length=255)
    role: str = Field(max_length=16)
    content: str
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    """Other message fields worth replaying: tool_calls, tool_call_id, name."""
    created_at: datetime = Field(sa_type=UtcDateTime)


class VariableRow(SQLModel, table=True):
    """A memory variable: a named value of a user, an agent of the user and/or a session (v9).

    ``agent_id`` and ``session_id`` are ``""`` for none (user-wide, not session-bound), so the unique
    index holds one value per name and scope on every backend (NULLs would all be distinct). Its history
    is kept as events under the reserved layer name ``variables`` (see agentmem/variables.py).
    """

    __tablename__ = "agentmem_variables"
    __table_args__ = (
        Index("ux_agentmem_variables", "user_id", "agent_id", "session_id", "name", unique=True),
    )

    pk: int | None = Field(default=None, primary_key=True)
    id: str = Field(max_length=40, unique=True)
    user_id: str = Field(max_length=255)
    agent_id: str = Field(default="", max_length=255)
    session_id: str = Field(default="", max_length=255)
    name: str = Field(max_length=64)
    value: str
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class GenerationRow(SQLModel, table=True):
    """A user's current generation (v7): a random token that ``delete_user`` deletes with the rest of the
    user's rows. Work that spans a model call notes it when it starts and writes only if it is unchanged
    then, so nothing begun before a deletion is written after it (see ``Store.generation``)."""

    __tablename__ = "agentmem_generations"

    user_id: str = Field(primary_key=True, max_length=255)
    token: str = Field(max_length=32)


class ApiKeyRow(SQLModel, table=True):
    """A key of the REST server (v10): only the SHA-256 of its secret is stored (see store/keys.py).
    ``admin`` reaches every user and the admin routes; ``user_id`` binds the key to one user,
    ``agent_id`` to one agent. A revoked key keeps its row (the list shows it) but opens nothing."""

    __tablename__ = "agentmem_api_keys"

    id: str = Field(primary_key=True, max_length=40)
    hash: str = Field(max_length=64, unique=True)
    user_id: str | None = Field(default=None, max_length=255, index=True)
    agent_id: str | None = Field(default=None, max_length=255)
    admin: bool
    label: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class VectorRow(SQLModel, table=True):
    """An item's embedding for semantic search (v11): float32 little-endian bytes of the model ``model``
    (see agentmem/embeddings.py). Deleted with its item; a live item of an owner without a vector of
    the configured model is pending embedding. ``user_id`` and ``agent_id`` are the item's, so one
    owner's vectors are read through the index alone. ``id`` only grows (a changed vector is a new
    row), so an owner's (count, largest id) tells whether its vectors changed (see store/vectors.py)."""

    __tablename__ = "agentmem_vectors"
    __table_args__ = (
        UniqueConstraint("pk", name="ux_agentmem_vectors_pk"),
        Index("ix_agentmem_vectors_owner", "user_id", "model", "agent_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    pk: int = Field(
        sa_column=Column(Integer, ForeignKey("agentmem_items.pk", ondelete="CASCADE"), nullable=False)
    )
    user_id: str = Field(max_length=255)
    agent_id: str = Field(max_length=255)
    model: str = Field(max_length=255)
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class MetaRow(SQLModel, table=True):
    __tablename__ = "agentmem_meta"

    key: str = Field(primary_key=True, max_length=64)
    value: str


def table(model: type[SQLModel]) -> Table:
    """The Core table of a SQLModel class (for the read path's plain SELECTs)."""
    result = model.__table__  # type: ignore[attr-defined]
    assert isinstance(result, Table)
    return result
