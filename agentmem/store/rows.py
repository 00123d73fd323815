"""Rows to records: the table handles and the conversions every read shares."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, and_, bindparam, select

from ..records import MemoryEvent, MemoryItem
from ..scope import Scope
from .tables import EventRow, GenerationRow, ItemRow, LearnedRow, PendingRow, table

ITEMS = table(ItemRow)
EVENTS = table(EventRow)
LEARNED = table(LearnedRow)
PENDING = table(PendingRow)
GENERATIONS = table(GenerationRow)


def utcnow() -> datetime:
    return datetime.now(UTC)


def item_from_row(row: Row[Any]) -> MemoryItem:
    m = row._mapping
    return MemoryItem(
        id=m["id"],
        layer=m["layer"],
        key=m["key"],
        text=m["text"],
        value=m["value"],
        user_id=m["user_id"],
        agent_id=m["agent_id"] or None,
        session_id=m["session_id"],
        source=m["source"],
        confidence=m["confidence"],
        count=m["count"],
        explicit=m["explicit"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        valid_to=m["valid_to"],
        superseded_by=m["superseded_by"],
        meta=dict(m["meta"] or {}),
    )


def event_from_row(row: Row[Any]) -> MemoryEvent:
    m = row._mapping
    return MemoryEvent(
        id=m["id"],
        item_id=m["item_id"],
        layer=m["layer"],
        key=m["key"],
        op=m["op"],
        old=m["old"],
        new=m["new"],
        reason=m["reason"],
        source=m["source"],
        user_id=m["user_id"],
        agent_id=m["agent_id"] or None,
        session_id=m["session_id"],
        created_at=m["created_at"],
    )


class ContextRow(NamedTuple):
    """What compile needs of one live item: no JSON, no datetime parsing (a tuple: cheap to build)."""

    id: str
    layer: str
    key: str
    line: str
    agent_id: str
    updated_at: Any  # sortable within one backend
    times: int  # how often seen (feedback repeats)
    score: float  # relevance to the query; 0 when none


def visible(scope: Scope) -> Any:
    """The rows of this user that this scope may read: shared, plus its own agent's."""
    return and_(ITEMS.c.user_id == scope.user_id, ITEMS.c.agent_id.in_(scope.visible_agent_keys))


# The statements every learn runs, built once: building a statement (and its cache key) costs SQLAlchemy
# several times what executing it does.
_EXACT_LIVE = (
    select(ITEMS)
    .where(ITEMS.c.user_id == bindparam("user_id"), ITEMS.c.agent_id == bindparam("agent_id"))
    .where(ITEMS.c.layer.in_(bindparam("layers", expanding=True)), ITEMS.c.valid_to.is_(None))
    .order_by(ITEMS.c.pk)
)
_GENERATION = select(GENERATIONS.c.token).where(GENERATIONS.c.user_id == bindparam("user_id"))
_LEARNED = select(LEARNED.c.pk).where(
    LEARNED.c.user_id == bindparam("user_id"),
    LEARNED.c.agent_id == bindparam("agent_id"),
    LEARNED.c.key == bindparam("key"),
)


def exact_live(conn: Connection, scope: Scope, layers: Sequence[str]) -> list[MemoryItem]:
    """Live items of exactly this scope (what merges run against), oldest first."""
    rows = conn.execute(
        _EXACT_LIVE, {"user_id": scope.user_id, "agent_id": scope.agent_key, "layers": list(layers)}
    )
    return [item_from_row(r) for r in rows]


def generation_of(conn: Connection, user_id: str) -> str | None:
    """The user's current generation (see ``Store.generation``); None when none was begun."""
    token = conn.execute(_GENERATION, {"user_id": user_id}).scalar()
    return None if token is None else str(token)


def is_learned(conn: Connection, scope: Scope, key: str) -> bool:
    """Whether ``learn`` already applied this input to this scope."""
    found = conn.execute(
        _LEARNED, {"user_id": scope.user_id, "agent_id": scope.agent_key, "key": key}
    ).first()
    return found is not None
