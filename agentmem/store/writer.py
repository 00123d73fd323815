"""The write transaction: a scope's live items read under the lock, operations applied, one event each."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from ..errors import NotFoundError
from ..layers.changes import Add, Delete, Expire, NewItem, Op, Supersede, Update
from ..records import Change, MemoryItem
from ..scope import Scope, prefer_agent
from . import search, vectors
from .expiry import Expiry
from .rows import (
    EVENTS,
    GENERATIONS,
    ITEMS,
    LEARNED,
    PENDING,
    exact_live,
    exact_matching,
    expired_of_keys,
    generation_of,
    is_learned,
    item_from_row,
    live_count,
    visible,
)
from .tables import UtcDateTime

AGENT_GENERATION = "agent"
"""The generation of every agent's own memory: no ``delete_user`` ends it (a user's are random hex)."""


def lock(conn: Connection, scope: Scope) -> None:
    """Take the scope owner's write lock for this transaction. SQLite: BEGIN IMMEDIATE already locked
    the whole database. PostgreSQL: an advisory lock per owner (a user, or an agent's own memory) and
    schema: it needs no row of the owner, and schemas don't contend."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "SELECT pg_advisory_xact_lock(hashtextextended("
            "'agentmem.user:' || coalesce(current_schema(), '') || ':' || %s, 0))",
            (scope.owner,),
        )


def owner_scope(scope: Scope) -> Scope:
    """The scope of all of the scope's owner's rows: the user's, or the agent's own memory."""
    return Scope(scope.user_id, scope.agent_id if scope.kind == "agent" else None)


class Writer:
    """A write transaction for one exact scope, holding the write lock. ``expiry``: the expiry rule at
    the transaction's moment, ``now``."""

    def __init__(
        self, conn: Connection, scope: Scope, expiry: Expiry, written: dict[Scope, int] | None = None
    ) -> None:
        self.conn, self.scope, self.expiry, self.now = conn, scope, expiry, expiry.now
        self._observed_at: datetime | None = None
        self.written: dict[Scope, int] = {} if written is None else written
        """How many items of each owner (see ``owner_scope``) this transaction gave new text, shared by
        every writer of the transaction: the store embeds them once it commits."""

    def live(self, layer: str) -> list[MemoryItem]:
        """The live items of ``layer`` in exactly this scope (what a merge works against)."""
        return exact_live(self.conn, self.scope, layer, self.expiry)

    def live_count(self, layer: str) -> int:
        return live_count(self.conn, self.scope, layer, self.expiry)

    def live_matching(
        self,
        layer: str,
        *,
        keys: Collection[str] = (),
        ids: Collection[str] = (),
        similar: Sequence[Sequence[Sequence[str]]] = (),
        first: tuple[Sequence[str], int] | None = None,
    ) -> list[MemoryItem]:
        """The live items of ``layer`` a change can touch (see ``rows.exact_matching``)."""
        return exact_matching(
            self.conn, self.scope, layer, self.expiry, keys=keys, ids=ids, similar=similar, first=first
        )

    def apply(
        self,
        layer: str,
        ops: Sequence[Op],
        *,
        source: str,
        session_id: str | None,
        observed_at: datetime | None = None,
        expires_at: datetime | None = None,
    ) -> list[Change]:
        """Apply a merge's operations, one event each, with one statement per kind of write (see
        :class:`_Batch`). ``observed_at``: for extracted changes, when their input was read (see
        ``newer_than``). ``expires_at``: when the items added leave the memory (None: never)."""
        self._observed_at = observed_at
        batch = _Batch()
        for op in ops:
            if isinstance(op, Add):
                self._add(batch, layer, op.item, source, session_id, expires_at)
            elif isinstance(op, Update):
                target = op.target
                batch.edited.append(
                    {
                        "_id": target.id,
                        "key": op.key or target.key,
                        "value": op.value,
                        "text": op.text,
                        "line": op.line,
                        "count": op.count,
                        "explicit": op.explicit,
                        "confidence": op.confidence,
                        "meta": dict(op.meta),
                        "updated_at": self.now,
                    }
                )
                if search.searched_text(op.text, op.value) != search.searched_text(target.text, target.value):
                    batch.reindexed.append((target.id, op.text, op.value))
                if op.text != target.text:
                    batch.rephrased.append(target.id)
                batch.event(
                    Change("update", target.layer, target.id, target.key, target.value, op.value), op.reason
                )
            elif isinstance(op, Supersede):
                new, target = op.replacement, op.target
                new_id = (
                    self._add(batch, layer, new, source, session_id, expires_at)
                    if isinstance(new, NewItem)
                    else new.id
                )
                batch.close(target, self.now, superseded_by=new_id)
                batch.event(
                    Change("supersede", target.layer, target.id, target.key, target.value, new.value),
                    op.reason,
                )
            elif isinstance(op, Expire):
                target = op.target
                batch.close(target, self.now, superseded_by=None)
                batch.event(
                    Change("expire", target.layer, target.id, target.key, target.value, None), op.reason
                )
            elif isinstance(op, Delete):
                target = op.target
                batch.deleted.append(target.id)
                batch.event(
                    Change("delete", target.layer, target.id, target.key, target.value, None), op.reason
                )
        self._remove_expired(batch, layer)
        self._write(batch, source, session_id)
        return [change for change, _reason in batch.events]

    def _remove_expired(self, batch: _Batch, layer: str) -> None:
        """Delete the expired items that hold the keys of items added or edited onto a new key (one
        live item per key, per exact scope: the live-key index includes the session, so only this
        scope's rows can conflict and only they are deleted, their events in this scope).

        An expired item is no merge candidate: it left the memory when it expired, so saying the same
        again makes a new item (with a fresh ttl). Were it a candidate, the repeat would revive it
        unseen (a ttl counts from the last update) or, past its own date, vanish into an item no read
        shows. It is deleted here, as cleanup would delete it, with its event first."""
        keys = sorted({row["key"] for row in [*batch.added, *batch.edited]})
        if not keys:
            return
        kept = [row["_id"] for row in batch.edited]
        gone = expired_of_keys(self.conn, self.scope, layer, self.expiry, keys, kept)
        batch.deleted[:0] = [item.id for item in gone]
        batch.events[:0] = [
            (Change("delete", item.layer, item.id, item.key, item.value, None), "expired") for item in gone
        ]

    def set_expiry(
        self, items: Sequence[MemoryItem], expires_at: datetime | None, *, source: str, session_id: str | None
    ) -> list[Change]:
        """Give live items of this scope's layer a new expiry date (None: never), one event each."""
        batch = _Batch()
        for item in items:
            if item.expires_at != expires_at:
                when = "never" if expires_at is None else expires_at.isoformat()
                change = Change("update", item.layer, item.id, item.key, item.value, item.value)
                batch.event(change, f"expires: {when}")
        changed = [change.item_id for change, _ in batch.events]
        if changed:
            self.conn.execute(ITEMS.update().where(ITEMS.c.id.in_(changed)).values(expires_at=expires_at))
        self._write(batch, source, session_id)
        return [change for change, _reason in batch.events]

    def item(self, item_id: str) -> MemoryItem:
        """A live item this scope sees, read under the write lock (so nothing changes it after). An
        item hidden by a narrower one of the same key (this session's, this agent's) is not seen, as in
        ``get()``."""
        live = (visible(self.scope), ITEMS.c.valid_to.is_(None), self.expiry.clause())
        row = self.conn.execute(select(ITEMS).where(*live, ITEMS.c.id == item_id)).first()
        hidden = False
        if row is not None and (self.scope.agent_id is not None or self.scope.session_id is not None):
            same_key = select(ITEMS).where(*live, ITEMS.c.layer == row.layer, ITEMS.c.key == row.key)
            narrowest = prefer_agent(item_from_row(r) for r in self.conn.execute(same_key))
            hidden = narrowest[0].id != row.id
        if row is None or hidden:
            raise NotFoundError(f"no live memory item {item_id!r} for {self.scope.describe()}")
        return item_from_row(row)

    def scoped(self, scope: Scope) -> Writer:
        """The same transaction, writing on behalf of another scope of the same user."""
        assert scope.user_id == self.scope.user_id
        return Writer(self.conn, scope, self.expiry, self.written)

    def in_scope(self, item: MemoryItem) -> Writer:
        """The same transaction, writing where ``item`` lives (its agent, its session)."""
        return self.scoped(self.scope.within(item.agent_id, item.session_scope))

    def for_agent_memory(self) -> Writer:
        """The same transaction, writing to the own memory of this scope's agent (its lock taken too:
        always after the user's, so two writers never wait for each other's)."""
        target = self.scope.agent_memory
        assert target is not None, "only a user's scope with an agent_id has an agent memory"
        lock(self.conn, target)
        return Writer(self.conn, target, self.expiry, self.written)

    def delete_session_items(self, session_id: str) -> list[Change]:
        """Delete every item of the user scoped to this session (of any agent): live ones with a
        ``delete`` event each, in their own scope; closed ones, already out of every read, with them.
        The inputs learned into the session are forgotten too: learned again, they are applied again."""
        rows = self.conn.execute(
            select(ITEMS)
            .where(ITEMS.c.user_id == self.scope.user_id, ITEMS.c.session_scope == session_id)
            .order_by(ITEMS.c.pk)
        )
        items = [item_from_row(r) for r in rows]
        changes: list[Change] = []
        for item in items:
            if item.is_live:
                reason = f"session {session_id!r} deleted"
                owner = self.in_scope(item)
                changes += owner.apply(
                    item.layer, [Delete(item, reason=reason)], source="manual", session_id=session_id
                )
        closed = [item.id for item in items if not item.is_live]
        search.unindex_ids(self.conn, closed)
        if closed:
            self.conn.execute(_DELETE_ITEMS, {"ids": closed})
        self.conn.execute(
            LEARNED.delete().where(
                LEARNED.c.user_id == self.scope.user_id, LEARNED.c.session_scope == session_id
            )
        )
        return changes

    def generation(self) -> str | None:
        """The user's current generation (see ``Store.generation``); None when none was begun since the
        user was last deleted."""
        if self.scope.kind == "agent":
            return AGENT_GENERATION
        return generation_of(self.conn, self.scope.user_id)

    def begin_generation(self) -> str:
        """The user's current generation, begun now when there is none."""
        token = self.generation()
        if token is None:
            token = uuid.uuid4().hex
            self.conn.execute(GENERATIONS.insert().values(user_id=self.scope.user_id, token=token))
        return token

    def end_generation(self) -> None:
        """Part of deleting the user: whatever began before writes nothing after (a random token, so a
        generation begun later never equals an ended one)."""
        self.conn.execute(GENERATIONS.delete().where(GENERATIONS.c.user_id == self.scope.user_id))

    def has_pending(self, pending_id: str) -> bool:
        found = self.conn.execute(
            select(PENDING.c.id).where(PENDING.c.id == pending_id, PENDING.c.user_id == self.scope.user_id)
        ).first()
        return found is not None

    def newer_than(self, read_at: datetime, after_event: int = 0) -> set[tuple[str, str]]:
        """(layer, key) of items of this scope changed by information newer than ``read_at``: direct
        writes made after it, and extractions of inputs read after it. ``after_event``: an event id
        taken before ``read_at`` (``Store.watermark``); every such change is written after it, so only
        the events after it are read, not the user's whole history."""
        rows = self.conn.execute(
            _NEWER_THAN,
            {
                "user_id": self.scope.user_id,
                "agents": list(self.scope.visible_agent_keys),
                "sessions": list(self.scope.visible_session_keys),
                "after_event": after_event,
                "read_at": read_at,
            },
        )
        return {(r.layer, r.key) for r in rows}

    def learned(self, key: str) -> bool:
        return is_learned(self.conn, self.scope, key)

    def mark_learned(self, key: str, session_id: str | None = None) -> None:
        """Note the input as applied; ``session_id``: what was learned was kept in that session."""
        self.conn.execute(
            _INSERT_LEARNED,
            {
                "user_id": self.scope.user_id,
                "agent_id": self.scope.agent_key,
                "key": key,
                "created_at": self.now,
                "session_scope": session_id or "",
            },
        )

    def _add(
        self,
        batch: _Batch,
        layer: str,
        new: NewItem,
        source: str,
        session_id: str | None,
        expires_at: datetime | None,
    ) -> str:
        item_id = "m_" + uuid.uuid4().hex[:24]
        batch.added.append(
            {
                "id": item_id,
                "user_id": self.scope.user_id,
                "agent_id": self.scope.agent_key,
                "session_id": session_id,
                "session_scope": self.scope.session_key,
                "layer": layer,
                "key": new.key,
                "value": new.value,
                "text": new.text,
                "line": new.line,
                "source": source,
                "confidence": new.confidence,
                "count": new.count,
                "explicit": new.explicit,
                "meta": dict(new.meta),
                "created_at": self.now,
                "updated_at": self.now,
                "expires_at": expires_at,
            }
        )
        batch.event(Change("add", layer, item_id, new.key, None, new.value), None)
        return item_id

    def _write(self, batch: _Batch, source: str, session_id: str | None) -> None:
        """The batch's statements, in an order the live-key index accepts whatever the ops' order:
        what leaves the live set (deleted, closed) goes before what joins it (added)."""
        conn = self.conn
        search.unindex_ids(conn, [*batch.deleted, *(item_id for item_id, _, _ in batch.reindexed)])
        # A changed text's vector no longer says it, and a closed item is out of every search: both
        # drop theirs (a deleted item's goes with its row). Only the text is embedded: new topics keep it.
        vectors.drop(conn, [*batch.rephrased, *(r["_id"] for r in batch.closed)])
        if batch.added or batch.rephrased:
            owner = owner_scope(self.scope)
            self.written[owner] = self.written.get(owner, 0) + len(batch.added) + len(batch.rephrased)
        if batch.deleted:
            conn.execute(_DELETE_ITEMS, {"ids": batch.deleted})
        if batch.closed:
            conn.execute(_CLOSE_ITEM, batch.closed)
        if batch.edited:
            conn.execute(_EDIT_ITEM, batch.edited)
        if batch.added:
            conn.execute(_INSERT_ITEM, batch.added)
        search.index_items(
            conn,
            self.scope.owner,
            [*((r["id"], r["text"], r["value"]) for r in batch.added), *batch.reindexed],
        )
        self.record(batch.events, source=source, session_id=session_id)

    def record(
        self, events: Sequence[tuple[Change, str | None]], *, source: str, session_id: str | None
    ) -> None:
        """One event per change (with its reason) in this scope, in the order given."""
        if events:  # one executemany: event ids ascend in the order of the changes
            self.conn.execute(
                _INSERT_EVENT,
                [
                    {
                        "item_id": change.item_id,
                        "user_id": self.scope.user_id,
                        "agent_id": self.scope.agent_key,
                        "session_id": session_id,
                        "session_scope": self.scope.session_key,
                        "layer": change.layer,
                        "key": change.key,
                        "op": change.op,
                        "old": change.old,
                        "new": change.new,
                        "reason": reason,
                        "source": source,
                        "created_at": self.now,
                        "observed_at": self._observed_at,
                    }
                    for change, reason in events
                ],
            )


# Built once: constructing a statement costs more than executing it.
_INSERT_ITEM = ITEMS.insert()
_INSERT_EVENT = EVENTS.insert()
_INSERT_LEARNED = LEARNED.insert()
_NEWER_THAN = select(EVENTS.c.layer, EVENTS.c.key).where(
    EVENTS.c.user_id == bindparam("user_id"),
    EVENTS.c.agent_id.in_(bindparam("agents", expanding=True)),
    EVENTS.c.session_scope.in_(bindparam("sessions", expanding=True)),
    EVENTS.c.id > bindparam("after_event"),
    func.coalesce(EVENTS.c.observed_at, EVENTS.c.created_at) > bindparam("read_at", type_=UtcDateTime),
)
_DELETE_ITEMS = ITEMS.delete().where(ITEMS.c.id.in_(bindparam("ids", expanding=True)))
_CLOSE_ITEM = (
    ITEMS.update()
    .where(ITEMS.c.id == bindparam("_id"))
    .values(
        valid_to=bindparam("valid_to"),
        superseded_by=bindparam("superseded_by"),
        updated_at=bindparam("updated_at"),
    )
)
_EDITED = ("key", "value", "text", "line", "count", "explicit", "confidence", "meta", "updated_at")
_EDIT_ITEM = ITEMS.update().where(ITEMS.c.id == bindparam("_id")).values({c: bindparam(c) for c in _EDITED})


@dataclass
class _Batch:
    """One apply's writes, gathered by kind so each kind is one statement (an executemany)."""

    added: list[dict[str, Any]] = field(default_factory=list)
    edited: list[dict[str, Any]] = field(default_factory=list)
    closed: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    reindexed: list[tuple[str, str, Any]] = field(default_factory=list)  # (id, new text, new value)
    """Edited items whose text or topics changed: their full-text rows are rebuilt."""
    rephrased: list[str] = field(default_factory=list)
    """Edited items whose text changed: their vectors are dropped, to be embedded anew."""
    events: list[tuple[Change, str | None]] = field(default_factory=list)
    """Every change with its reason, in the order of the operations."""

    def event(self, change: Change, reason: str | None) -> None:
        self.events.append((change, reason))

    def close(self, target: MemoryItem, now: datetime, *, superseded_by: str | None) -> None:
        # A live item has no superseded_by, so an expiry may set it to None like any close.
        self.closed.append(
            {"_id": target.id, "valid_to": now, "superseded_by": superseded_by, "updated_at": now}
        )
