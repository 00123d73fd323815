"""Export, import and deletion of everything one user has: items (live and closed) and events."""

from __future__ import annotations

from datetime import UTC, datetime
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import Connection, select

from ..errors import ConflictError, InvalidInputError, SecretError
from ..scope import Scope
from ..secret_filter import find_secret
from . import search
from .sessions import MESSAGES, SESSIONS
from .tables import EventRow, ItemRow, LearnedRow, PendingRow, table

ITEMS = table(ItemRow)
EVENTS = table(EventRow)
FORMAT = "agentmem.export"
VERSION = 2  # 2 added sessions and messages; version 1 documents still import
_TIMES = ("created_at", "updated_at", "valid_to")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExportedItem(_Strict):
    id: str
    agent_id: str | None
    session_id: str | None
    layer: str
    key: str
    value: Any
    text: str
    line: str
    source: str
    confidence: float
    count: int
    explicit: bool
    meta: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    valid_to: datetime | None
    superseded_by: str | None


class ExportedEvent(_Strict):
    item_id: str
    agent_id: str | None
    session_id: str | None
    layer: str
    key: str
    op: Literal["add", "update", "supersede", "expire", "delete"]
    old: Any
    new: Any
    reason: str | None
    source: str
    created_at: datetime


class ExportedSession(_Strict):
    session_id: str
    agent_id: str | None
    summary: str | None
    summarized_messages: int
    created_at: datetime
    updated_at: datetime


class ExportedMessage(_Strict):
    session_id: str
    role: str
    content: str
    extra: dict[str, Any]
    created_at: datetime


class Export(_Strict):
    format: Literal["agentmem.export"]
    version: Literal[1, 2]
    user_id: str
    items: list[ExportedItem]
    events: list[ExportedEvent]
    sessions: list[ExportedSession] = []
    messages: list[ExportedMessage] = []


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def export_user(conn: Connection, user_id: str) -> dict[str, Any]:
    items = conn.execute(select(ITEMS).where(ITEMS.c.user_id == user_id).order_by(ITEMS.c.pk)).all()
    events = conn.execute(select(EVENTS).where(EVENTS.c.user_id == user_id).order_by(EVENTS.c.id)).all()
    sessions = conn.execute(
        select(SESSIONS).where(SESSIONS.c.user_id == user_id).order_by(SESSIONS.c.pk)
    ).all()
    messages = conn.execute(
        select(MESSAGES).where(MESSAGES.c.user_id == user_id).order_by(MESSAGES.c.pk)
    ).all()
    return {
        "format": FORMAT,
        "version": VERSION,
        "user_id": user_id,
        "items": [
            {
                **{f: r._mapping[f] for f in ExportedItem.model_fields if f not in _TIMES},
                "agent_id": r.agent_id or None,
                "meta": dict(r.meta or {}),
                **{f: _iso(r._mapping[f]) for f in _TIMES if f in ExportedItem.model_fields},
            }
            for r in items
        ],
        "events": [
            {
                **{f: r._mapping[f] for f in ExportedEvent.model_fields if f != "created_at"},
                "agent_id": r.agent_id or None,
                "created_at": _iso(r.created_at),
            }
            for r in events
        ],
        "sessions": [
            {
                "session_id": r.session_id,
                "agent_id": r.agent_id or None,
                "summary": r.summary,
                "summarized_messages": r.summarized_messages,
                "created_at": _iso(r.created_at),
                "updated_at": _iso(r.updated_at),
            }
            for r in sessions
        ],
        "messages": [
            {
                "session_id": r.session_id,
                "role": r.role,
                "content": r.content,
                "extra": dict(r.extra or {}),
                "created_at": _iso(r.created_at),
            }
            for r in messages
        ],
    }


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)


def parse_export(data: object, layers: Mapping[str, Any] | None = None) -> Export:
    """Validate an export document completely before anything is written."""
    try:
        doc = Export.model_validate(data)
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "document"
        raise InvalidInputError(f"not an agentmem export ({where}: {err['msg']})") from None
    Scope.of(doc.user_id)
    for item in doc.items:
        Scope.of(doc.user_id, item.agent_id)
        kind = find_secret(item.text)
        if kind:
            raise SecretError(f"item {item.id} looks like it contains a {kind}; secrets are never stored")
    return doc


def user_exists(conn: Connection, user_id: str) -> bool:
    for tbl in (ITEMS, EVENTS, SESSIONS):
        if conn.execute(select(tbl.c.user_id).where(tbl.c.user_id == user_id).limit(1)).first():
            return True
    return False


def import_user(conn: Connection, doc: Export) -> int:
    if user_exists(conn, doc.user_id):
        raise ConflictError(f"user {doc.user_id!r} already has memory; delete_user first to replace it")
    ids = [i.id for i in doc.items]
    taken = conn.execute(select(ITEMS.c.id).where(ITEMS.c.id.in_(ids))).first() if ids else None
    if taken is not None:
        raise ConflictError(f"item id {taken[0]!r} already exists in this database")
    for item in doc.items:
        values = item.model_dump()
        values.update(
            user_id=doc.user_id,
            agent_id=item.agent_id or "",
            **{f: _utc(getattr(item, f)) for f in _TIMES},
        )
        pk = conn.execute(ITEMS.insert().values(**values)).inserted_primary_key
        assert pk is not None
        search.index_item(conn, int(pk[0]), doc.user_id, item.text)
    for event in doc.events:
        values = event.model_dump()
        values.update(user_id=doc.user_id, agent_id=event.agent_id or "", created_at=_utc(event.created_at))
        conn.execute(EVENTS.insert().values(**values))
    for session in doc.sessions:
        values = session.model_dump()
        values.update(
            user_id=doc.user_id,
            agent_id=session.agent_id or "",
            created_at=_utc(session.created_at),
            updated_at=_utc(session.updated_at),
        )
        conn.execute(SESSIONS.insert().values(**values))
    for message in doc.messages:
        values = message.model_dump()
        values.update(user_id=doc.user_id, created_at=_utc(message.created_at))
        conn.execute(MESSAGES.insert().values(**values))
    return len(doc.items)


def delete_user(conn: Connection, user_id: str) -> int:
    pks = [r[0] for r in conn.execute(select(ITEMS.c.pk).where(ITEMS.c.user_id == user_id))]
    search.unindex_items(conn, pks)
    for bookkeeping in (ITEMS, EVENTS, table(LearnedRow), table(PendingRow), SESSIONS, MESSAGES):
        conn.execute(bookkeeping.delete().where(bookkeeping.c.user_id == user_id))
    return len(pks)
