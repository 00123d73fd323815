"""Conversation history: sessions of a user and their messages, always scoped by user_id."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from ..secret_filter import redact
from .tables import MessageRow, SessionRow, table

SESSIONS = table(SessionRow)
MESSAGES = table(MessageRow)
EXTRA_FIELDS = ("tool_calls", "tool_call_id", "name")


@dataclass(frozen=True)
class SessionInfo:
    """One conversation of a user."""

    session_id: str
    user_id: str
    agent_id: str | None
    messages: int
    summary: str | None
    created_at: datetime
    updated_at: datetime


def _where(user_id: str, session_id: str) -> Any:
    return (SESSIONS.c.user_id == user_id) & (SESSIONS.c.session_id == session_id)


def ensure_session(conn: Connection, user_id: str, session_id: str, agent_id: str, now: datetime) -> None:
    found = conn.execute(select(SESSIONS.c.pk).where(_where(user_id, session_id))).first()
    if found is None:
        conn.execute(
            SESSIONS.insert().values(
                user_id=user_id, session_id=session_id, agent_id=agent_id, created_at=now, updated_at=now
            )
        )
    else:
        conn.execute(SESSIONS.update().where(_where(user_id, session_id)).values(updated_at=now))


def add_messages(
    conn: Connection, user_id: str, session_id: str, messages: Sequence[Mapping[str, Any]], now: datetime
) -> int:
    rows = [
        {
            "user_id": user_id,
            "session_id": session_id,
            "role": m["role"],
            "content": redact(m.get("content") or ""),
            "extra": {k: m[k] for k in EXTRA_FIELDS if m.get(k) is not None},
            "created_at": now,
        }
        for m in messages
    ]
    if rows:
        conn.execute(MESSAGES.insert(), rows)
    return len(rows)


def get_messages(conn: Connection, user_id: str, session_id: str, limit: int | None) -> list[dict[str, Any]]:
    stmt = (
        select(MESSAGES.c.role, MESSAGES.c.content, MESSAGES.c.extra)
        .where(MESSAGES.c.user_id == user_id, MESSAGES.c.session_id == session_id)
        .order_by(MESSAGES.c.pk.desc())
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = list(conn.execute(stmt))[::-1]
    return [{"role": r.role, "content": r.content, **(r.extra or {})} for r in rows]


def count_messages(conn: Connection, user_id: str, session_id: str) -> int:
    stmt = select(func.count()).where(MESSAGES.c.user_id == user_id, MESSAGES.c.session_id == session_id)
    return int(conn.execute(stmt).scalar_one())


def list_sessions(conn: Connection, user_id: str, agent_id: str | None) -> list[SessionInfo]:
    counts = (
        select(MESSAGES.c.session_id, func.count().label("n"))
        .where(MESSAGES.c.user_id == user_id)
        .group_by(MESSAGES.c.session_id)
        .subquery()
    )
    stmt = (
        select(SESSIONS, func.coalesce(counts.c.n, 0).label("n"))
        .outerjoin(counts, counts.c.session_id == SESSIONS.c.session_id)
        .where(SESSIONS.c.user_id == user_id)
        .order_by(SESSIONS.c.updated_at.desc(), SESSIONS.c.pk.desc())
    )
    if agent_id is not None:
        stmt = stmt.where(SESSIONS.c.agent_id == agent_id)
    return [
        SessionInfo(
            session_id=r.session_id,
            user_id=r.user_id,
            agent_id=r.agent_id or None,
            messages=int(r.n),
            summary=r.summary,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in conn.execute(stmt)
    ]


def summary(conn: Connection, user_id: str, session_id: str) -> tuple[str | None, int] | None:
    row = conn.execute(
        select(SESSIONS.c.summary, SESSIONS.c.summarized_messages).where(_where(user_id, session_id))
    ).first()
    return None if row is None else (row.summary, int(row.summarized_messages))


def set_summary(
    conn: Connection, user_id: str, session_id: str, text: str, covered: int, now: datetime
) -> None:
    conn.execute(
        SESSIONS.update()
        .where(_where(user_id, session_id))
        .values(summary=text, summarized_messages=covered, updated_at=now)
    )


def delete_session(conn: Connection, user_id: str, session_id: str) -> int:
    deleted = conn.execute(
        MESSAGES.delete().where(MESSAGES.c.user_id == user_id, MESSAGES.c.session_id == session_id)
    ).rowcount
    conn.execute(SESSIONS.delete().where(_where(user_id, session_id)))
    return int(deleted or 0)
