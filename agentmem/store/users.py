"""Who has memory: the user list with counts and last activity, and every user and agent id (for
backups).

``user_id == ""`` is never a user: rows of an agent's own memory (shared across its users) may carry it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, func, literal, select, union, union_all

from ..records import UserSummary
from ..scope import AGENT_MEMORY_USER
from .expiry import Expiry
from .export_format import KINDS
from .rows import EVENTS, ITEMS
from .sessions import SESSIONS
from .tables import UtcDateTime
from .transfer import AGENT_KINDS


def _newest_events() -> Select[Any]:
    """Each user's newest event: the largest id per user (a walk of the events' scope index, not of the
    events), then that one row read by primary key."""
    newest = select(EVENTS.c.user_id, func.max(EVENTS.c.id).label("id")).group_by(EVENTS.c.user_id).subquery()
    return select(
        EVENTS.c.user_id,
        literal(0).label("item_count"),
        literal(0).label("session_count"),
        EVENTS.c.created_at.label("last"),
    ).join_from(EVENTS, newest, EVENTS.c.id == newest.c.id)


def list_users(conn: Connection, expiry: Expiry) -> list[UserSummary]:
    """Every user with items, history or sessions, by user id (see ``list_users_query``)."""
    return [
        UserSummary(user_id, int(items), int(count), last)
        for user_id, items, count, last in conn.execute(list_users_query(expiry))
    ]


def list_users_query(expiry: Expiry) -> Select[Any]:
    """One grouped query: live items (open and not expired under ``expiry``, as ``get`` reads them)
    counted from the live-items index, each user's newest event (the last change to an item, deletions
    included) by the largest id per user, and sessions."""
    live = (
        select(
            ITEMS.c.user_id,
            func.count().label("item_count"),
            literal(0).label("session_count"),
            func.max(ITEMS.c.updated_at).label("last"),
        )
        .where(ITEMS.c.valid_to.is_(None), expiry.clause())
        .group_by(ITEMS.c.user_id)
    )
    sessions = select(
        SESSIONS.c.user_id,
        literal(0).label("item_count"),
        func.count().label("session_count"),
        func.max(SESSIONS.c.updated_at).label("last"),
    ).group_by(SESSIONS.c.user_id)
    parts = union_all(live, _newest_events(), sessions).subquery()
    return (
        select(
            parts.c.user_id,
            func.sum(parts.c.item_count),
            func.sum(parts.c.session_count),
            func.max(parts.c.last, type_=UtcDateTime),
        )
        .where(parts.c.user_id != "")
        .group_by(parts.c.user_id)
        .order_by(parts.c.user_id)
    )


def every_user_id(conn: Connection) -> list[str]:
    """Every user id any table of a user's data holds (what an export of everyone exports), sorted."""
    ids = union(*(select(kind.table.c.user_id) for kind in KINDS)).subquery()
    stmt = select(ids.c.user_id).where(ids.c.user_id != AGENT_MEMORY_USER).order_by(ids.c.user_id)
    return list(conn.execute(stmt).scalars())


def every_agent_id(conn: Connection) -> list[str]:
    """Every agent with its own memory (rows of the user id ``AGENT_MEMORY_USER``), sorted: what
    ``export_agent`` exports for a backup."""
    ids = union(
        *(
            select(kind.table.c.agent_id).where(kind.table.c.user_id == AGENT_MEMORY_USER)
            for kind in AGENT_KINDS
        )
    ).subquery()
    return list(conn.execute(select(ids.c.agent_id).order_by(ids.c.agent_id)).scalars())
