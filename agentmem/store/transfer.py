"""Export, import and deletion of everything one user has: items (live and closed), events, sessions
and messages, the learned-input log, pending extractions and memory variables (see export_format for
the document).

An import trusts nothing in the document: every value is validated by its layer (secrets refused, sizes
bounded), each item's ``key``, ``text`` and ``line`` are recomputed from its value the way the layer
computes them, messages are redacted and bounded like new ones, and variables pass a new one's checks.
All of it is checked before anything is written. Each record kind has one small ``_checked_*``
function. Last, every string the document still holds (ids, keys, layer names, metadata, event values,
dict keys) goes through the secret detector: one that holds a secret refuses the import, since an id or
a key cannot be redacted.
"""

from __future__ import annotations

import bisect
import hashlib
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import Connection, Row, select

from ..errors import ConflictError, InvalidInputError, ScopeError, SecretError
from ..layers import Layer
from ..layers.schema import check_value
from ..scope import AGENT_MEMORY_USER, Scope, check_id
from ..secret_filter import find_secret_in, redact
from ..validation import MAX_DEPTH, checked_json
from . import keys, search
from .export_format import (
    FORMAT,
    KINDS,
    VERSION,
    Export,
    ExportedEvent,
    ExportedItem,
    ExportedLearned,
    ExportedMessage,
    ExportedPending,
    ExportedSession,
    ExportedVariable,
    RecordKind,
)
from .rows import EVENTS, ITEMS, PENDING, owned
from .sessions import MAX_MESSAGE_CHARS, ROLES, checked_content, checked_extra
from .variables import MAX_VARIABLES, VARIABLES, check_name, checked_value
from .variables import TABLE as VARIABLE_TABLE

_KIND = {kind.name: kind for kind in KINDS}
RECORD_DEPTH = 3
"""How deep a record's fields sit in the document (document, list, record): each field may nest as
deep as a new write may."""


def _exported(kind: RecordKind, row: Row[Any]) -> dict[str, Any]:
    """One row as its JSON record: every exported column, datetimes in ISO form, ``""`` for none (an
    agent, a user-wide session scope, a variable's session) as null."""
    record: dict[str, Any] = {}
    for field in kind.fields:
        value = row._mapping[field]
        if isinstance(value, datetime):
            value = value.isoformat()
        elif field in kind.none_as_blank:
            value = value or None
        record[field] = value
    return record


def _export_rows(
    conn: Connection, scope: Scope, header: Mapping[str, Any], kinds: tuple[RecordKind, ...]
) -> dict[str, Any]:
    doc: dict[str, Any] = {"format": FORMAT, "version": VERSION, **header}
    rows: dict[str, list[Row[Any]]] = {}
    for kind in kinds:
        order = [kind.table.c[column] for column in kind.order]
        stmt = select(kind.table).where(owned(kind.table, scope)).order_by(*order)
        rows[kind.name] = list(conn.execute(stmt))
        doc[kind.name] = [_exported(kind, row) for row in rows[kind.name]]
    # A pending extraction's watermark is an event id (of any user); ids change on import, so it leaves
    # as how many of the user's events it had seen.
    ids = [row.id for row in rows["events"]]
    for record in doc["pending"]:
        mark = record["watermark"]
        if mark:
            record["watermark"] = bisect.bisect_right(ids, mark)
    return doc


def export_user(conn: Connection, user_id: str) -> dict[str, Any]:
    return _export_rows(conn, Scope.of(user_id), {"user_id": user_id}, KINDS)


AGENT_KINDS = tuple(kind for kind in KINDS if kind.name in ("items", "events", "learned", "pending"))
"""What an agent's own memory holds: no sessions or messages (those are a user's conversations)."""


def export_agent(conn: Connection, scope: Scope) -> dict[str, Any]:
    """The agent's own memory as a document like ``export_user``'s, with ``agent_id`` for a header."""
    return _export_rows(conn, scope, {"agent_id": scope.agent_id}, AGENT_KINDS)


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
        SecretError: a string anywhere but in message text (redacted instead) contains a secret: a
            value, an id, a key, an item's metadata or its history.
        ScopeError: an invalid user, agent or session id.
    """
    doc = _validated(data)
    Scope.of(doc.user_id)
    return _checked(doc, layers)


def parse_agent_export(data: object, layers: Mapping[str, Layer]) -> tuple[Scope, Export]:
    """Validate an ``export_agent`` document as :func:`parse_export` validates a user's; return the
    agent's scope and the document as it is to be stored (its user id ``AGENT_MEMORY_USER``).

    Raises:
        InvalidInputError: as parse_export; also sessions, messages or variables (an agent's own memory
            has none), or a record of another agent.
        SecretError, ScopeError: as parse_export.
    """
    if not isinstance(data, Mapping) or "user_id" in data or "agent_id" not in data:
        raise InvalidInputError("not an agentmem agent export (it names an agent_id and no user_id)")
    scope = Scope.for_agent(data["agent_id"])
    doc = _validated({**{k: v for k, v in data.items() if k != "agent_id"}, "user_id": AGENT_MEMORY_USER})
    if doc.sessions or doc.messages or doc.variables:
        raise InvalidInputError("an agent's own memory has no sessions, messages or variables")
    named = [*(r.agent_id for r in doc.items), *(r.agent_id for r in doc.events)]
    named += [*(r.agent_id for r in doc.learned), *(r.agent_id for r in doc.pending)]
    others = set(named) - {scope.agent_id}
    if others:
        raise InvalidInputError(
            f"the export of agent {scope.agent_id!r} holds records of agent {sorted(map(str, others))[0]!r}"
        )
    return scope, _checked(doc, layers)


def _validated(data: object) -> Export:
    checked_json(data, "the export", max_depth=MAX_DEPTH + RECORD_DEPTH)  # unstorable text, deep nesting
    try:
        return Export.model_validate(data)
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "document"
        raise InvalidInputError(f"not an agentmem export ({where}: {err['msg']})") from None


def _record_scope(user_id: str, agent_id: str | None, session_scope: str | None = None) -> Scope:
    """The scope a record names: a user's, or (user id ``AGENT_MEMORY_USER``) an agent's own memory,
    which has no sessions."""
    if user_id != AGENT_MEMORY_USER:
        return Scope.of(user_id, agent_id, session_scope)
    if session_scope is not None:
        raise ScopeError("an agent's own memory has no sessions")
    return Scope.for_agent(agent_id)


def _checked(doc: Export, layers: Mapping[str, Layer]) -> Export:
    """Every record of a structurally valid document checked as a new write is (see parse_export)."""
    items = [_checked_item(doc.user_id, item, layers) for item in _split(doc.items, layers)]
    _check_unique(items)
    events = [_checked_event(doc.user_id, event, layers) for event in doc.events]
    sessions = [_checked_session(doc.user_id, session) for session in doc.sessions]
    known = {session.session_id for session in sessions}
    if len(known) != len(sessions):
        raise InvalidInputError("a session appears twice in the export")
    messages = [_checked_message(i, message, known) for i, message in enumerate(doc.messages)]
    learned = [_checked_learned(doc.user_id, record) for record in doc.learned]
    _check_distinct([(r.agent_id or "", r.key) for r in learned], "a learned input appears twice")
    pending = [_checked_pending(doc.user_id, record, len(events)) for record in doc.pending]
    _check_distinct([r.id for r in pending], "a pending extraction id appears twice")
    _check_distinct([(r.agent_id or "", r.key) for r in pending], "a pending input appears twice")
    variables = [_checked_variable(doc.user_id, record) for record in doc.variables]
    _check_variables(variables)
    checked = doc.model_copy(
        update={
            "items": items,
            "events": events,
            "sessions": sessions,
            "messages": messages,
            "learned": learned,
            "pending": pending,
            "variables": variables,
        }
    )
    _check_lengths(checked)
    found = find_secret_in(checked.model_dump(mode="json"))  # message text was redacted: it passes
    if found is not None:
        where, kind = found
        raise SecretError(f"{where} looks like it contains a {kind}; secrets are never stored")
    return checked


def _check_lengths(doc: Export) -> None:
    """Every string within its column's length, as a new write is (PostgreSQL would refuse it)."""
    for kind in KINDS:
        for i, record in enumerate(getattr(doc, kind.name)):
            for field in kind.fields:
                limit = getattr(kind.table.c[field].type, "length", None)
                value = getattr(record, field)
                if limit is not None and isinstance(value, str) and len(value) > limit:
                    raise InvalidInputError(
                        f"{kind.name}[{i}].{field} is {len(value)} characters; the limit is {limit}"
                    )


def _check_distinct(keys: list[Any], message: str) -> None:
    if len(set(keys)) != len(keys):
        raise InvalidInputError(f"{message} in the export")


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
    _record_scope(user_id, item.agent_id, item.session_scope)
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
    live: set[tuple[str, str, str, str]] = set()
    for item in items:
        if item.id in ids:
            raise InvalidInputError(f"item id {item.id!r} appears twice in the export")
        ids.add(item.id)
        if item.valid_to is not None:
            continue  # closed items may say what a live one says
        slot = (item.agent_id or "", item.session_scope or "", item.layer, item.key)
        if slot in live:
            raise InvalidInputError(
                f"item {item.id}: a second live {item.layer} item for key {item.key!r}"
                f"{f' of agent {item.agent_id!r}' if item.agent_id else ''}"
                f"{f' in session {item.session_scope!r}' if item.session_scope else ''}; only one may be live"
            )
        live.add(slot)


def _checked_event(user_id: str, event: ExportedEvent, layers: Mapping[str, Layer]) -> ExportedEvent:
    where = f"event of item {event.item_id}"
    _record_scope(user_id, event.agent_id, event.session_scope)
    check_id(event.session_id, "session_id", required=False)
    if event.layer == VARIABLES:  # a variable's history: its key is the variable's name
        check_name(event.key)
    else:
        _layer(layers, event.layer, where)
    return event.model_copy(
        update={
            "old": check_value(event.old, f"{where} old"),
            "new": check_value(event.new, f"{where} new"),
            "reason": check_value(event.reason, f"{where} reason"),
        }
    )


def _checked_session(user_id: str, session: ExportedSession) -> ExportedSession:
    _record_scope(user_id, session.agent_id)
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


def _checked_learned(user_id: str, record: ExportedLearned) -> ExportedLearned:
    _record_scope(user_id, record.agent_id, record.session_scope)
    return record


def _checked_pending(user_id: str, record: ExportedPending, events: int) -> ExportedPending:
    """Its input redacted and bounded like a new message; its watermark a position in ``events``."""
    where = f"pending extraction {record.id}"
    _record_scope(user_id, record.agent_id)
    check_id(record.session_id, "session_id", required=False)
    turns = []
    for i, turn in enumerate(record.messages):
        if set(turn) != {"role", "content"} or turn["role"] not in ROLES:
            raise InvalidInputError(
                f"{where}: messages[{i}] must be {{role, content}} with a role of {ROLES}"
            )
        turns.append(
            {"role": turn["role"], "content": checked_content(turn["content"], f"{where} messages[{i}]")}
        )
    if record.watermark is not None and record.watermark > events:
        raise InvalidInputError(f"{where}: watermark {record.watermark} is past the export's {events} events")
    error = checked_content(record.error, f"{where} error")
    return record.model_copy(update={"messages": turns, "error": error})


def _checked_variable(user_id: str, record: ExportedVariable) -> ExportedVariable:
    """A variable with the checks of a new one: its scope, name and value (secrets refused)."""
    _record_scope(user_id, record.agent_id)
    check_id(record.session_id, "session_id", required=False)
    try:
        checked_value(check_name(record.name), record.value)
    except InvalidInputError as exc:
        raise type(exc)(f"variable {record.id}: {exc}") from None
    return record


def _check_variables(variables: list[ExportedVariable]) -> None:
    _check_distinct([r.id for r in variables], "a variable id appears twice")
    _check_distinct(
        [(r.agent_id or "", r.session_id or "", r.name) for r in variables], "a variable appears twice"
    )
    held = Counter((r.agent_id or "", r.session_id or "") for r in variables).most_common(1)
    if held and held[0][1] > MAX_VARIABLES:
        raise InvalidInputError(f"one scope holds {held[0][1]} variables; the limit is {MAX_VARIABLES}")


def user_exists(conn: Connection, user_id: str) -> bool:
    for kind in KINDS:
        tbl = kind.table
        if conn.execute(select(tbl.c.user_id).where(tbl.c.user_id == user_id).limit(1)).first():
            return True
    return False


def _stored(kind: RecordKind, record: Any, user_id: str) -> dict[str, Any]:
    """A validated record as the row to insert."""
    values: dict[str, Any] = {"user_id": user_id}
    for field in kind.fields:
        value = getattr(record, field)
        if isinstance(value, datetime):
            value = _utc(value)
        elif field in kind.none_as_blank:
            value = value or ""
        values[field] = value
    return values


def _taken(conn: Connection, column: Any, ids: list[str]) -> bool:
    return bool(ids) and conn.execute(select(column).where(column.in_(ids)).limit(1)).first() is not None


def import_user(conn: Connection, doc: Export) -> int:
    if user_exists(conn, doc.user_id):
        raise ConflictError(f"user {doc.user_id!r} already has memory; delete_user first to replace it")
    return _import(conn, doc, Scope.of(doc.user_id))


def import_agent(conn: Connection, scope: Scope, doc: Export) -> int:
    """Store a :func:`parse_agent_export` document as ``scope``'s own memory, which must have none yet,
    with import_user's checks; return the number of items."""
    for kind in AGENT_KINDS:
        if conn.execute(select(kind.table.c.user_id).where(owned(kind.table, scope)).limit(1)).first():
            raise ConflictError(
                f"agent {scope.agent_id!r} already has its own memory; "
                "delete_agent_memory first to replace it"
            )
    return _import(conn, doc, scope)


def _import(conn: Connection, doc: Export, scope: Scope) -> int:
    # Ids are kept on import, and unique in the whole database. The error names no id: the id taken
    # may be another user's, and an importer limited to one user must not learn which ids exist.
    for what, column, ids in (
        ("an item", ITEMS.c.id, [i.id for i in doc.items]),
        ("a pending extraction", PENDING.c.id, [p.id for p in doc.pending]),
        ("a variable", VARIABLE_TABLE.c.id, [v.id for v in doc.variables]),
    ):
        if _taken(conn, column, ids):
            raise ConflictError(
                f"{what} id in the document is already taken in this database "
                "(imports keep ids: import a document once per database)"
            )
    if doc.items:
        conn.execute(ITEMS.insert(), [_stored(_KIND["items"], item, doc.user_id) for item in doc.items])
        search.index_items(conn, scope.owner, [(item.id, item.text, item.value) for item in doc.items])
    event_ids: list[int] = []
    for event in doc.events:
        inserted = conn.execute(EVENTS.insert().values(**_stored(_KIND["events"], event, doc.user_id)))
        assert inserted.inserted_primary_key is not None
        event_ids.append(int(inserted.inserted_primary_key[0]))
    for name in ("sessions", "messages", "learned", "variables"):
        kind = _KIND[name]
        rows = [_stored(kind, record, doc.user_id) for record in getattr(doc, name)]
        if rows:
            conn.execute(kind.table.insert(), rows)
    for pending in doc.pending:
        values = _stored(_KIND["pending"], pending, doc.user_id)
        mark = pending.watermark
        if mark is not None and mark > 0:
            values["watermark"] = event_ids[mark - 1]
        conn.execute(PENDING.insert().values(**values))
    return len(doc.items)


def delete_user(conn: Connection, user_id: str) -> int:
    # The REST server's keys bound to the user name them: erased with the rest (no export holds keys).
    keys.delete_user_keys(conn, user_id)
    return _delete(conn, Scope.of(user_id), KINDS)


def delete_agent_memory(conn: Connection, scope: Scope) -> int:
    return _delete(conn, scope, AGENT_KINDS)


def _delete(conn: Connection, scope: Scope, kinds: tuple[RecordKind, ...]) -> int:
    ids = list(conn.execute(select(ITEMS.c.id).where(owned(ITEMS, scope))).scalars())
    search.unindex_ids(conn, ids)
    for kind in kinds:
        conn.execute(kind.table.delete().where(owned(kind.table, scope)))
    return len(ids)
