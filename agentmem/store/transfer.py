"""Export, import and deletion of everything one user has: items (live and closed) and events.

An import trusts nothing in the document: every value is validated by its layer (secrets refused, sizes
bounded), each item's ``key``, ``text`` and ``line`` are recomputed from its value the way the layer
computes them, and messages are redacted and bounded like new ones. All of it is checked before anything
is written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import Connection, select

from ..errors import ConflictError, InvalidInputError
from ..layers import Layer
from ..layers.schema import check_value
from ..scope import Scope, check_id
from ..secret_filter import redact
from . import search
from .sessions import MAX_MESSAGE_CHARS, MESSAGES, ROLES, SESSIONS, checked_content, checked_extra
from .tables import EventRow, ItemRow, LearnedRow, PendingRow, table

ITEMS = table(ItemRow)
EVENTS = table(EventRow)
FORMAT = "agentmem.export"
VERSION = 2  # 2 added sessions and messages; version 1 documents still import
_TIMES = ("created_at", "updated_at", "valid_to")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    count: int = Field(ge=1)
    explicit: bool
    meta: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    valid_to: datetime | None
    superseded_by: str | None = Field(max_length=40)


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
    source: str = Field(max_length=16)
    created_at: datetime


class ExportedSession(_Strict):
    session_id: str
    agent_id: str | None
    summary: str | None
    summarized_messages: int = Field(ge=0)
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


def parse_export(data: object, layers: Mapping[str, Layer]) -> Export:
    """Validate an export document completely before anything is written.

    ``layers`` are the importing manager's layers, by name: they validate the items' values and
    recompute what is derived from them. Returns the document as it is to be stored.

    Raises:
        InvalidInputError: not an export, an unknown layer, a value the layer refuses, two live items
            for one key, a message over the size limits.
        SecretError: a value, an item's metadata or its history contains a secret.
        ScopeError: an invalid user, agent or session id.
    """
    try:
        doc = Export.model_validate(data)
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "document"
        raise InvalidInputError(f"not an agentmem export ({where}: {err['msg']})") from None
    Scope.of(doc.user_id)
    items = [_checked_item(doc.user_id, item, layers) for item in _split(doc.items, layers)]
    _check_unique(items)
    events = [_checked_event(doc.user_id, event, layers) for event in doc.events]
    sessions = [_checked_session(doc.user_id, session) for session in doc.sessions]
    known = {session.session_id for session in sessions}
    if len(known) != len(sessions):
        raise InvalidInputError("a session appears twice in the export")
    messages = [_checked_message(i, message, known) for i, message in enumerate(doc.messages)]
    return doc.model_copy(
        update={"items": items, "events": events, "sessions": sessions, "messages": messages}
    )


def _layer(layers: Mapping[str, Layer], name: str, where: str) -> Layer:
    layer = layers.get(name)
    if layer is None:
        raise InvalidInputError(f"{where}: unknown layer {name!r}; layers are {', '.join(layers)}")
    return layer


def _split(items: list[ExportedItem], layers: Mapping[str, Layer]) -> list[ExportedItem]:
    """Items of an older storage format as the layers store them now (one policy rule per item since
    schema v6); a split item's parts get ids derived from its own. Its history stays as it was."""
    out: list[ExportedItem] = []
    for item in items:
        layer = layers.get(item.layer)
        parts = layer.split(item.key, item.value) if layer is not None else [(item.key, item.value)]
        if len(parts) == 1 and parts[0][0] == item.key:
            out.append(item)
            continue
        for i, (key, value) in enumerate(parts):
            part_id = "m_" + hashlib.sha256(f"{item.id}.{i}".encode()).hexdigest()[:24]
            out.append(item.model_copy(update={"id": part_id, "key": key, "value": value}))
    return out


def _checked_item(user_id: str, item: ExportedItem, layers: Mapping[str, Layer]) -> ExportedItem:
    """The item with its value validated, and key, text and line as the layer computes them."""
    where = f"item {item.id}"
    Scope.of(user_id, item.agent_id)
    check_id(item.session_id, "session_id", required=False)
    layer = _layer(layers, item.layer, where)
    created = _utc(item.created_at)
    assert created is not None
    try:
        stored = layer.stored(item.key, item.value, item.count, created)
    except InvalidInputError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    meta = check_value(item.meta, f"{where} meta")
    return item.model_copy(
        update={
            "value": stored.value,
            "key": stored.key,
            "text": stored.text,
            "line": stored.line,
            "meta": meta,
        }
    )


def _check_unique(items: list[ExportedItem]) -> None:
    ids: set[str] = set()
    live: set[tuple[str, str, str]] = set()
    for item in items:
        if item.id in ids:
            raise InvalidInputError(f"item id {item.id!r} appears twice in the export")
        ids.add(item.id)
        if item.valid_to is not None:
            continue  # closed items may say what a live one says
        slot = (item.agent_id or "", item.layer, item.key)
        if slot in live:
            raise InvalidInputError(
                f"item {item.id}: a second live {item.layer} item for key {item.key!r}"
                f"{f' of agent {item.agent_id!r}' if item.agent_id else ''}; only one may be live"
            )
        live.add(slot)


def _checked_event(user_id: str, event: ExportedEvent, layers: Mapping[str, Layer]) -> ExportedEvent:
    where = f"event of item {event.item_id}"
    Scope.of(user_id, event.agent_id)
    check_id(event.session_id, "session_id", required=False)
    _layer(layers, event.layer, where)
    return event.model_copy(
        update={
            "old": check_value(event.old, f"{where} old"),
            "new": check_value(event.new, f"{where} new"),
            "reason": check_value(event.reason, f"{where} reason"),
        }
    )


def _checked_session(user_id: str, session: ExportedSession) -> ExportedSession:
    Scope.of(user_id, session.agent_id)
    check_id(session.session_id, "session_id", required=True)
    summary = session.summary
    if summary is not None:
        if len(summary) > MAX_MESSAGE_CHARS:
            raise InvalidInputError(
                f"the summary of session {session.session_id!r} is {len(summary)} characters; "
                f"the limit is {MAX_MESSAGE_CHARS}"
            )
        summary = redact(summary)
    return session.model_copy(update={"summary": summary})


def _checked_message(index: int, message: ExportedMessage, sessions: set[str]) -> ExportedMessage:
    where = f"messages[{index}]"
    if message.session_id not in sessions:
        raise InvalidInputError(f"{where}: session {message.session_id!r} is not in the export")
    if message.role not in ROLES:
        raise InvalidInputError(f"{where}: role must be one of {ROLES}, not {message.role!r}")
    return message.model_copy(
        update={
            "content": checked_content(message.content, where),
            "extra": checked_extra(message.extra, where),
        }
    )


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
