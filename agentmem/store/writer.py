"""The write transaction: a scope's live items read under the lock, operations applied, one event each."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from ..errors import NotFoundError
from ..layers.changes import Add, Delete, Expire, NewItem, Op, Supersede, Update
from ..records import Change, MemoryItem
from ..scope import Scope
from . import search
from .rows import (
    EVENTS,
    GENERATIONS,
    ITEMS,
    LEARNED,
    PENDING,
    exact_live,
    exact_matching,
    generation_of,
    is_learned,
    item_from_row,
    live_count,
    visible,
)


class Writer:
    """A write transaction for one exact scope, holding the write lock."""

    def __init__(self, conn: Connection, scope: Scope, now: datetime) -> None:
        self.conn, self.scope, self.now = conn, scope, now
        self._observed_at: datetime | None = None

    def live(self, layer: str) -> list[MemoryItem]:
        """The live items of ``layer`` in exactly this scope (what a merge works against)."""
        return exact_live(self.conn, self.scope, [layer])

    def live_count(self, layer: str) -> int:
        return live_count(self.conn, self.scope, layer)

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
        return exact_matching(self.conn, self.scope, layer, keys=keys, ids=ids, similar=similar, first=first)

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
            select(ITEMS).where(visible(self.scope), ITEMS.c.valid_to.is_(None), ITEMS.c.id == item_id)
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

    def generation(self) -> str | None:
        """The user's current generation (see ``Store.generation``); None when none was begun since the
        user was last deleted."""
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
        return is_learned(self.conn, self.scope, key)

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
