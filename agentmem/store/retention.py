"""Retention: deleting what is older than a cutoff, kind by kind, and counting it.

Kinds (``CleanupKind``), each against ``cutoff`` (now minus ``older_than``):

- ``messages``: messages written before it (a session's summary still covers what it summarised);
- ``sessions``: sessions not added to since, deleted completely (as ``Sessions.delete`` does);
- ``pending``: failed extractions not retried since (``retry_pending`` no longer sees them);
- ``closed``: facts closed (superseded, or evicted over a cap) before it;
- ``expired``: items that had expired by then (see :mod:`.expiry`).

Items go through the writer like any deletion: one ``delete`` event each, whose reason says why
(``"retention"`` for a closed item, ``"expired"`` for an expired one); the history stays. Each owner
is cleaned on its own: a user, or one agent's own memory (``Scope.for_agent``), which has items and
pending inputs but no sessions.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import ColumnElement, Connection, Table, and_, case, func, literal, select, union

from ..errors import InvalidInputError
from ..layers.changes import Delete
from ..scope import AGENT_MEMORY_USER, Scope
from .expiry import Expiry
from .rows import ITEMS, PENDING, item_from_row, owned
from .sessions import MESSAGES, SESSIONS, delete_session
from .writer import Writer

CleanupKind = Literal["messages", "sessions", "pending", "closed", "expired"]
CLEANUP_KINDS: tuple[CleanupKind, ...] = get_args(CleanupKind)
DEFAULT_CLEANUP: frozenset[CleanupKind] = frozenset({"messages", "sessions", "pending", "expired"})
"""What ``cleanup`` removes unless told: everything but closed facts, which are the record of what the
memory used to say (and why it changed) and go only when asked for."""


@dataclass(frozen=True)
class CleanupReport:
    """How many of each kind ``cleanup`` deleted.

    Attributes:
        messages: messages deleted from sessions that remain.
        sessions: sessions deleted (their messages are not counted in ``messages``).
        pending: pending extractions deleted.
        closed: closed items deleted.
        expired: expired items deleted.
    """

    messages: int = 0
    sessions: int = 0
    pending: int = 0
    closed: int = 0
    expired: int = 0

    def __add__(self, other: CleanupReport) -> CleanupReport:
        return CleanupReport(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __iter__(self) -> Iterator[tuple[str, int]]:
        """``(kind, count)`` for every kind, in the order of ``CLEANUP_KINDS``."""
        return ((kind, getattr(self, kind)) for kind in CLEANUP_KINDS)

    @property
    def total(self) -> int:
        return sum(count for _, count in self)


def checked_kinds(what: object) -> frozenset[CleanupKind]:
    """``what`` (one kind, or a collection of kinds) as a set of kinds; InvalidInputError otherwise."""
    given = [what] if isinstance(what, str) else what
    if not isinstance(given, Collection) or isinstance(given, Mapping) or not given:
        raise InvalidInputError(f"what must be one or more of {', '.join(CLEANUP_KINDS)}; got {what!r}")
    unknown = [kind for kind in given if kind not in CLEANUP_KINDS]
    if unknown:
        raise InvalidInputError(
            f"unknown cleanup kind(s) {', '.join(map(repr, unknown))}; kinds are {', '.join(CLEANUP_KINDS)}"
        )
    return frozenset(kind for kind in CLEANUP_KINDS if kind in given)


def _conditions(cutoff: datetime, expiry: Expiry) -> dict[CleanupKind, tuple[Table, ColumnElement[bool]]]:
    """Per kind: its table, and the condition on its rows to delete."""
    return {
        "messages": (MESSAGES, MESSAGES.c.created_at < cutoff),
        "sessions": (SESSIONS, SESSIONS.c.updated_at < cutoff),
        "pending": (PENDING, PENDING.c.updated_at < cutoff),
        "closed": (ITEMS, and_(ITEMS.c.valid_to.is_not(None), ITEMS.c.valid_to < cutoff)),
        "expired": (ITEMS, and_(ITEMS.c.valid_to.is_(None), expiry.clause(expired=True))),
    }


def owners_to_clean(
    conn: Connection, kinds: Collection[CleanupKind], cutoff: datetime, expiry: Expiry, user_id: str | None
) -> list[Scope]:
    """The owners with something of ``kinds`` to delete (only the user ``user_id`` when given), sorted:
    users, and agents whose own memory has some (``Scope.for_agent``)."""
    conditions = _conditions(cutoff, expiry)
    parts = []
    for kind in CLEANUP_KINDS:
        if kind in kinds:
            table, condition = conditions[kind]
            # A user's rows of any agent are one owner; the agent matters only for agent memory (which
            # has no messages, the one table without an agent_id).
            agent: ColumnElement[str] = literal("")
            if "agent_id" in table.c:
                agent = case((table.c.user_id == AGENT_MEMORY_USER, table.c.agent_id), else_=agent)
            part = select(table.c.user_id.label("user_id"), agent.label("agent_id")).where(condition)
            parts.append(part.where(table.c.user_id == user_id) if user_id is not None else part)
    if not parts:
        return []
    found = union(*parts).subquery()
    rows = conn.execute(select(found.c.user_id, found.c.agent_id).order_by(found.c.user_id, found.c.agent_id))
    return [Scope.for_agent(agent) if user == AGENT_MEMORY_USER else Scope.of(user) for user, agent in rows]


def clean_owner(
    writer: Writer, kinds: Collection[CleanupKind], cutoff: datetime, expiry: Expiry
) -> CleanupReport:
    """Delete the rows of ``kinds`` of the writer's owner (a user, or an agent's own memory); the writer
    holds that owner's write lock."""
    conn, user = writer.conn, writer.scope.user_id
    conditions = _conditions(cutoff, expiry)
    counts = dict.fromkeys(CLEANUP_KINDS, 0)
    if "sessions" in kinds:  # before messages: a session's messages go with it, counted as the session
        stale = select(SESSIONS.c.session_id).where(owned(SESSIONS, writer.scope), conditions["sessions"][1])
        for session_id in list(conn.execute(stale).scalars()):
            delete_session(writer, session_id)
            counts["sessions"] += 1
    if "messages" in kinds:
        counts["messages"] = _delete_messages(conn, user, conditions["messages"][1])
    if "pending" in kinds:
        deleted = conn.execute(PENDING.delete().where(owned(PENDING, writer.scope), conditions["pending"][1]))
        counts["pending"] = int(deleted.rowcount or 0)
    for kind, reason in (("closed", "retention"), ("expired", "expired")):
        if kind in kinds:
            counts[kind] = _delete_items(writer, conditions[kind][1], reason)  # type: ignore[index]
    return CleanupReport(**counts)


def _delete_messages(conn: Connection, user: str, old: ColumnElement[bool]) -> int:
    """Delete the user's old messages; each session's summary then covers that many fewer of those
    left (the oldest messages go first, and a summary covers a session's first messages)."""
    per_session = conn.execute(
        select(MESSAGES.c.session_id, func.count())
        .where(MESSAGES.c.user_id == user, old)
        .group_by(MESSAGES.c.session_id)
    ).all()
    for session_id, deleted in per_session:
        left = SESSIONS.c.summarized_messages - deleted
        # The larger of two values: SQLite's max() with two arguments, PostgreSQL's greatest().
        covered: Any = func.greatest(left, 0) if conn.dialect.name == "postgresql" else func.max(left, 0)
        conn.execute(
            SESSIONS.update()
            .where(SESSIONS.c.user_id == user, SESSIONS.c.session_id == session_id)
            .values(summarized_messages=covered)
        )
    conn.execute(MESSAGES.delete().where(MESSAGES.c.user_id == user, old))
    return sum(int(n) for _, n in per_session)


def _delete_items(writer: Writer, condition: ColumnElement[bool], reason: str) -> int:
    """Delete the user's items matching ``condition``, one event each, in each item's own scope."""
    rows = writer.conn.execute(
        select(ITEMS).where(owned(ITEMS, writer.scope), condition).order_by(ITEMS.c.pk)
    )
    groups: dict[tuple[str | None, str | None, str], list[Delete]] = {}
    for item in map(item_from_row, rows):
        groups.setdefault((item.agent_id, item.session_scope, item.layer), []).append(
            Delete(item, reason=reason)
        )
    for (agent_id, session_scope, layer), deletes in groups.items():
        owner = writer.scoped(writer.scope.within(agent_id, session_scope))
        owner.apply(layer, deletes, source="manual", session_id=None)
    return sum(map(len, groups.values()))
