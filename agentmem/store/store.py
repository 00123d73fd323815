"""The Store: every read and write of items and events, always through a :class:`Scope`."""

from __future__ import annotations

import os
import tempfile
import uuid
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, and_, func, select
from sqlalchemy.exc import SQLAlchemyError

from ..errors import NotFoundError, StoreError
from ..layers.base import Add, Delete, Expire, NewItem, Op, Supersede, Update
from ..records import Change, MemoryEvent, MemoryItem, SearchHit
from ..scope import Scope
from . import search
from .engine import WRITE, is_ephemeral, make_engine
from .migrations import migrate
from .tables import EventRow, ItemRow, LearnedRow, PendingRow, table

ITEMS = table(ItemRow)
EVENTS = table(EventRow)
LEARNED = table(LearnedRow)
PENDING = table(PendingRow)


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


def _visible(scope: Scope) -> Any:
    return and_(ITEMS.c.user_id == scope.user_id, ITEMS.c.agent_id.in_(scope.visible_agent_keys))


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


class Writer:
    """A write transaction for one exact scope, holding the write lock."""

    def __init__(self, conn: Connection, scope: Scope, now: datetime) -> None:
        self.conn, self.scope, self.now = conn, scope, now
        self._observed_at: datetime | None = None

    def live(self, layer: str) -> list[MemoryItem]:
        """The live items of ``layer`` in exactly this scope (what a merge works against)."""
        rows = self.conn.execute(
            select(ITEMS)
            .where(ITEMS.c.user_id == self.scope.user_id, ITEMS.c.agent_id == self.scope.agent_key)
            .where(ITEMS.c.layer == layer, ITEMS.c.valid_to.is_(None))
            .order_by(ITEMS.c.pk)
        )
        return [item_from_row(r) for r in rows]

    def apply(
        self,
        layer: str,
        ops: Sequence[Op],
        *,
        source: str,
        session_id: str | None,
        observed_at: datetime | None = None,
    ) -> list[Change]:
        """Apply a merge's operations, one event each. ``observed_at``: for extracted changes, when
        their input was read (see ``newer_than``)."""
        self._observed_at = observed_at
        changes: list[Change] = []
        for op in ops:
            if isinstance(op, Add):
                changes.append(self._add(layer, op.item, source, session_id))
            elif isinstance(op, Update):
                self._set(
                    op.target,
                    value=op.value,
                    text=op.text,
                    line=op.line,
                    count=op.count,
                    explicit=op.explicit,
                    confidence=op.confidence,
                    meta=dict(op.meta),
                )
                if op.text != op.target.text:
                    search.unindex_items(self.conn, [self._pk(op.target.id)])
                    search.index_item(self.conn, self._pk(op.target.id), self.scope.user_id, op.text)
                changes.append(
                    self._event(
                        "update",
                        op.target,
                        op.target.value,
                        op.value,
                        op.reason,
                        source,
                        session_id,
                    )
                )
            elif isinstance(op, Supersede):
                new = op.replacement
                if isinstance(new, NewItem):
                    added = self._add(layer, new, source, session_id)
                    changes.append(added)
                    new_id, new_value = added.item_id, new.value
                else:
                    new_id, new_value = new.id, new.value
                self._set(op.target, valid_to=self.now, superseded_by=new_id)
                changes.append(
                    self._event(
                        "supersede",
                        op.target,
                        op.target.value,
                        new_value,
                        op.reason,
                        source,
                        session_id,
                    )
                )
            elif isinstance(op, Expire):
                self._set(op.target, valid_to=self.now)
                changes.append(
                    self._event("expire", op.target, op.target.value, None, op.reason, source, session_id)
                )
            elif isinstance(op, Delete):
                search.unindex_items(self.conn, [self._pk(op.target.id)])
                self.conn.execute(ITEMS.delete().where(ITEMS.c.id == op.target.id))
                changes.append(
                    self._event("delete", op.target, op.target.value, None, op.reason, source, session_id)
                )
        return changes

    def item(self, item_id: str) -> MemoryItem:
        """A live item this scope sees, read under the write lock (so nothing changes it after). A
        shared item hidden by this agent's own item of the same key is not seen, as in ``get()``."""
        row = self.conn.execute(
            select(ITEMS).where(_visible(self.scope), ITEMS.c.valid_to.is_(None), ITEMS.c.id == item_id)
        ).first()
        hidden = row is not None and self.scope.agent_id is not None and not row.agent_id
        if hidden and row is not None:
            hidden = (
                self.conn.execute(
                    select(ITEMS.c.pk).where(
                        ITEMS.c.user_id == self.scope.user_id,
                        ITEMS.c.agent_id == self.scope.agent_key,
                        ITEMS.c.layer == row.layer,
                        ITEMS.c.key == row.key,
                        ITEMS.c.valid_to.is_(None),
                    )
                ).first()
                is not None
            )
        if row is None or hidden:
            raise NotFoundError(f"no live memory item {item_id!r} for user {self.scope.user_id!r}")
        return item_from_row(row)

    def in_scope(self, agent_id: str | None) -> Writer:
        """The same transaction, writing on behalf of another scope of the same user."""
        return Writer(self.conn, Scope(self.scope.user_id, agent_id), self.now)

    def has_event(self, event_id: int) -> bool:
        found = self.conn.execute(
            select(EVENTS.c.id).where(EVENTS.c.id == event_id, EVENTS.c.user_id == self.scope.user_id)
        ).first()
        return found is not None

    def newer_than(self, read_at: datetime) -> set[tuple[str, str]]:
        """(layer, key) of items of this scope changed by information newer than ``read_at``: direct
        writes made after it, and extractions of inputs read after it."""
        rows = self.conn.execute(
            select(EVENTS.c.layer, EVENTS.c.key).where(
                EVENTS.c.user_id == self.scope.user_id,
                EVENTS.c.agent_id.in_(self.scope.visible_agent_keys),
                func.coalesce(EVENTS.c.observed_at, EVENTS.c.created_at) > read_at,
            )
        )
        return {(r.layer, r.key) for r in rows}

    def learned(self, key: str) -> bool:
        """Whether ``learn`` already applied this input to this scope."""
        found = self.conn.execute(
            select(LEARNED.c.pk).where(
                LEARNED.c.user_id == self.scope.user_id,
                LEARNED.c.agent_id == self.scope.agent_key,
                LEARNED.c.key == key,
            )
        ).first()
        return found is not None

    def mark_learned(self, key: str) -> None:
        self.conn.execute(
            LEARNED.insert().values(
                user_id=self.scope.user_id, agent_id=self.scope.agent_key, key=key, created_at=self.now
            )
        )

    def _pk(self, item_id: str) -> int:
        return int(self.conn.execute(select(ITEMS.c.pk).where(ITEMS.c.id == item_id)).scalar_one())

    def _add(self, layer: str, new: NewItem, source: str, session_id: str | None) -> Change:
        item_id = "m_" + uuid.uuid4().hex[:24]
        now = self.now
        pk = self.conn.execute(
            ITEMS.insert().values(
                id=item_id,
                user_id=self.scope.user_id,
                agent_id=self.scope.agent_key,
                session_id=session_id,
                layer=layer,
                key=new.key,
                value=new.value,
                text=new.text,
                line=new.line,
                source=source,
                confidence=new.confidence,
                count=new.count,
                explicit=new.explicit,
                meta=dict(new.meta),
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key
        assert pk is not None
        search.index_item(self.conn, int(pk[0]), self.scope.user_id, new.text)
        self._insert_event(item_id, layer, new.key, "add", None, new.value, None, source, session_id)
        return Change("add", layer, item_id, new.key, None, new.value)

    def _set(self, target: MemoryItem, **values: Any) -> None:
        values.setdefault("updated_at", self.now)
        self.conn.execute(ITEMS.update().where(ITEMS.c.id == target.id).values(**values))

    def _event(
        self,
        op: Any,
        target: MemoryItem,
        old: Any,
        new: Any,
        reason: str | None,
        source: str,
        session_id: str | None,
    ) -> Change:
        self._insert_event(target.id, target.layer, target.key, op, old, new, reason, source, session_id)
        return Change(op, target.layer, target.id, target.key, old, new)

    def _insert_event(
        self,
        item_id: str,
        layer: str,
        key: str,
        op: str,
        old: Any,
        new: Any,
        reason: str | None,
        source: str,
        session_id: str | None,
    ) -> None:
        self.conn.execute(
            EVENTS.insert().values(
                item_id=item_id,
                user_id=self.scope.user_id,
                agent_id=self.scope.agent_key,
                session_id=session_id,
                layer=layer,
                key=key,
                op=op,
                old=old,
                new=new,
                reason=reason,
                source=source,
                created_at=self.now,
                observed_at=self._observed_at,
            )
        )


class Store:
    """Items and events in one database. Every read and write of memory takes a scope; the one
    exception is ``pending(None)``, the maintenance queue behind ``retry_pending()``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._ephemeral: Path | None = None
        if is_ephemeral(url):
            # An in-memory SQLite database is one connection shared by every thread, which breaks as
            # soon as a background writer runs; a private temporary file behaves like any database.
            fd, name = tempfile.mkstemp(prefix="agentmem-", suffix=".db")
            os.close(fd)
            self._ephemeral = Path(name)
            weakref.finalize(self, _remove_database, self._ephemeral)
            url = f"sqlite:///{name}"
        self.engine = make_engine(url)
        self._writer_engine = self.engine.execution_options(**{WRITE: True})
        try:
            # Under the write lock: processes opening a new file at once wait for each other.
            migrate(self._writer_engine)
        except SQLAlchemyError as exc:  # unreachable server, unreadable file, not a database
            self.engine.dispose()
            raise StoreError(f"cannot open database {url!r}: {exc.__class__.__name__}: {exc}") from exc

    def close(self) -> None:
        self.engine.dispose()
        if self._ephemeral is not None:
            _remove_database(self._ephemeral)

    @contextmanager
    def write(self, scope: Scope) -> Iterator[Writer]:
        """One transaction holding the write lock: read, merge and apply can't interleave."""
        with self._writer_engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (scope.user_id,)
                )
            yield Writer(conn, scope, utcnow())

    # ---- reads ---------------------------------------------------------------------------

    def live(self, scope: Scope, layers: Sequence[str] | None = None) -> list[MemoryItem]:
        stmt = select(ITEMS).where(_visible(scope), ITEMS.c.valid_to.is_(None)).order_by(ITEMS.c.pk)
        if layers is not None:
            stmt = stmt.where(ITEMS.c.layer.in_(layers))
        with self.engine.connect() as conn:
            return [item_from_row(r) for r in conn.execute(stmt)]

    def live_exact(self, scope: Scope, layers: Sequence[str]) -> dict[str, list[MemoryItem]]:
        """Live items of exactly this scope (what merges run against), by layer."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(ITEMS)
                .where(ITEMS.c.user_id == scope.user_id, ITEMS.c.agent_id == scope.agent_key)
                .where(ITEMS.c.layer.in_(layers), ITEMS.c.valid_to.is_(None))
                .order_by(ITEMS.c.pk)
            )
            items = [item_from_row(r) for r in rows]
        return {layer: [i for i in items if i.layer == layer] for layer in layers}

    def watermark(self, scope: Scope) -> int:
        """The user's newest event id (0 when none): how current a reading of the memory is."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(func.max(EVENTS.c.id)).where(EVENTS.c.user_id == scope.user_id)
            ).scalar()
        return int(value or 0)

    def was_learned(self, scope: Scope, key: str) -> bool:
        with self.engine.connect() as conn:
            return Writer(conn, scope, utcnow()).learned(key)

    def item(self, scope: Scope, item_id: str) -> MemoryItem:
        """A live item visible to ``scope``; any other id (another user's too) is not found."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(ITEMS).where(_visible(scope), ITEMS.c.valid_to.is_(None), ITEMS.c.id == item_id)
            ).first()
        if row is None:
            raise NotFoundError(f"no live memory item {item_id!r} for user {scope.user_id!r}")
        return item_from_row(row)

    def context_rows(self, scope: Scope, layers: Sequence[str], query: str | None) -> list[ContextRow]:
        """The compile read: one indexed query of the scope's live items, with relevance if asked."""
        agents = scope.visible_agent_keys
        marks = ", ".join("?" * len(agents))
        layer_marks = ", ".join("?" * len(layers))
        cols = "i.id, i.layer, i.key, i.line, i.agent_id, i.updated_at, i.count"
        where = (
            f"i.user_id = ? AND i.agent_id IN ({marks}) AND i.layer IN ({layer_marks}) AND i.valid_to IS NULL"
        )
        params: tuple[Any, ...] = (scope.user_id, *agents, *layers)
        with self.engine.connect() as conn:
            match = search.match_expression(scope.user_id, query) if query and search.uses_fts(conn) else None
            if match:
                sql = (
                    f"SELECT {cols}, -f.score FROM agentmem_items i LEFT JOIN "
                    f"(SELECT rowid AS pk, bm25({search.FTS_TABLE}) AS score FROM {search.FTS_TABLE} "
                    f"WHERE {search.FTS_TABLE} MATCH ?) f ON f.pk = i.pk WHERE {where}"
                )
                params = (match, *params)
            else:
                sql = f"SELECT {cols}, 0.0 FROM agentmem_items i WHERE {where}"
            if conn.dialect.name != "sqlite":
                sql = sql.replace("?", "%s")
            rows = conn.exec_driver_sql(sql, params).all()
        if query and not match:  # no full-text index on this backend: score the lines here
            terms = search.query_terms(query)
            scores = [search.scan_score(r[3], terms) for r in rows]
        else:
            scores = [r[7] or 0.0 for r in rows]
        return [
            ContextRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], s) for r, s in zip(rows, scores, strict=True)
        ]

    def search(self, scope: Scope, query: str, layers: Sequence[str], limit: int) -> list[SearchHit]:
        terms = search.query_terms(query)
        if not terms:
            return []
        with self.engine.connect() as conn:
            match = search.match_expression(scope.user_id, query) if search.uses_fts(conn) else None
            if match:
                ranked = search.fts_ranked()
                rows = conn.execute(
                    select(ITEMS, ranked.c.score)
                    .join(ranked, ranked.c.pk == ITEMS.c.pk)
                    .where(_visible(scope), ITEMS.c.valid_to.is_(None), ITEMS.c.layer.in_(layers))
                    .order_by(ranked.c.score, ITEMS.c.id)
                    .limit(limit),
                    {"match": match},
                ).all()
                return [SearchHit(item_from_row(r), -float(r.score)) for r in rows]
        hits = [SearchHit(item, search.scan_score(item.text, terms)) for item in self.live(scope, layers)]
        hits = sorted((h for h in hits if h.score > 0), key=lambda h: (-h.score, h.item.id))
        return hits[:limit]

    # ---- pending extractions -------------------------------------------------------------

    def save_pending(
        self,
        scope: Scope,
        session_id: str | None,
        key: str,
        messages: Any,
        error: str,
        attempts: int,
        watermark: int,
        read_at: datetime,
    ) -> str:
        """Keep a failed extraction's input for ``retry_pending``; one row per scope and input."""
        with self.write(scope) as writer:
            row = writer.conn.execute(
                select(PENDING.c.id, PENDING.c.attempts).where(
                    PENDING.c.user_id == scope.user_id,
                    PENDING.c.agent_id == scope.agent_key,
                    PENDING.c.key == key,
                )
            ).first()
            if row is not None:
                writer.conn.execute(
                    PENDING.update()
                    .where(PENDING.c.id == row.id)
                    .values(error=error, attempts=row.attempts + attempts, updated_at=writer.now)
                )
                return str(row.id)
            pending_id = "p_" + uuid.uuid4().hex[:24]
            writer.conn.execute(
                PENDING.insert().values(
                    id=pending_id,
                    user_id=scope.user_id,
                    agent_id=scope.agent_key,
                    session_id=session_id,
                    key=key,
                    messages=messages,
                    error=error,
                    attempts=attempts,
                    watermark=watermark,
                    read_at=read_at,
                    created_at=writer.now,
                    updated_at=writer.now,
                )
            )
            return pending_id

    def pending(self, user_id: str | None) -> list[dict[str, Any]]:
        """Pending extractions, oldest first: of one user, or of everyone (for maintenance jobs)."""
        stmt = select(PENDING).order_by(PENDING.c.created_at, PENDING.c.id)
        if user_id is not None:
            stmt = stmt.where(PENDING.c.user_id == user_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def drop_pending(self, scope: Scope, key: str) -> None:
        with self.write(scope) as writer:
            writer.conn.execute(
                PENDING.delete().where(
                    PENDING.c.user_id == scope.user_id,
                    PENDING.c.agent_id == scope.agent_key,
                    PENDING.c.key == key,
                )
            )

    def history(self, scope: Scope, item_id: str | None = None) -> list[MemoryEvent]:
        stmt = (
            select(EVENTS)
            .where(EVENTS.c.user_id == scope.user_id, EVENTS.c.agent_id.in_(scope.visible_agent_keys))
            .order_by(EVENTS.c.id)
        )
        if item_id is not None:
            stmt = stmt.where(EVENTS.c.item_id == item_id)
        with self.engine.connect() as conn:
            return [event_from_row(r) for r in conn.execute(stmt)]
