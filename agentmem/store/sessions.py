"""Conversation history: sessions of a user and their messages, always scoped by user_id.

A session belongs to the agent that created it (``agent_id``, ``""`` for a session created without an
agent): only that agent may add to it or read it as an agent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from ..errors import InvalidInputError, ScopeError
from ..secret_filter import redact
from ..validation import checked_json, checked_text, cleaned_text
from . import variables
from .tables import MAX_LIMIT, MessageRow, SessionRow, table
from .writer import Writer

SESSIONS = table(SessionRow)
MESSAGES = table(MessageRow)
ROLES = ("system", "user", "assistant", "tool")
EXTRA_FIELDS = ("tool_calls", "tool_call_id", "name")
MAX_MESSAGE_CHARS = 100_000
MAX_EXTRA_CHARS = 20_000
"""The most characters a message's other fields (``tool_calls`` ...) may take, as JSON."""


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


def _redacted(value: Any) -> Any:
    """``value`` with secrets redacted from every string inside it (dict keys included)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {_redacted(k) if isinstance(k, str) else k: _redacted(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(v) for v in value]
    return value


def checked_extra(extra: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A message's other fields, secrets redacted; refused when not JSON, over ``MAX_EXTRA_CHARS``,
    nested too deep or holding unstorable text (see agentmem.validation)."""
    unknown = sorted(set(extra) - set(EXTRA_FIELDS))
    if unknown:
        raise InvalidInputError(f"{where} has unknown field(s) {', '.join(map(str, unknown))}")
    checked_json(extra, where)
    cleaned: dict[str, Any] = _redacted({k: v for k, v in extra.items() if v is not None})
    try:
        size = len(json.dumps(cleaned, ensure_ascii=False, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{where}: {', '.join(cleaned)} must be JSON data ({exc})") from None
    if size > MAX_EXTRA_CHARS:
        raise InvalidInputError(
            f"{where}: {', '.join(cleaned)} take {size} characters as JSON; the limit is {MAX_EXTRA_CHARS}"
        )
    return cleaned


def checked_content(content: str, where: str) -> str:
    """Message text, secrets redacted; refused over ``MAX_MESSAGE_CHARS`` or with text no backend stores
    alike (a NUL, other control characters, a lone surrogate: see agentmem.validation)."""
    checked_text(content, where)
    if len(content) > MAX_MESSAGE_CHARS:
        raise InvalidInputError(f"{where} is {len(content)} characters; the limit is {MAX_MESSAGE_CHARS}")
    return redact(content)


def _where(user_id: str, session_id: str) -> Any:
    return (SESSIONS.c.user_id == user_id) & (SESSIONS.c.session_id == session_id)


def check_owner(conn: Connection, user_id: str, session_id: str, agent_id: str) -> bool:
    """Whether the session exists; ScopeError when it belongs to another agent (``""``: none)."""
    owner = conn.execute(select(SESSIONS.c.agent_id).where(_where(user_id, session_id))).scalar()
    if owner is None:
        return False
    if owner != agent_id:
        whose = f"agent {owner!r}" if owner else "no agent (the user's own history)"
        caller = f"agent {agent_id!r}" if agent_id else "a caller without an agent_id"
        raise ScopeError(f"session {session_id!r} belongs to {whose}; {caller} cannot use it")
    return True


def ensure_session(conn: Connection, user_id: str, session_id: str, agent_id: str, now: datetime) -> None:
    """Create the session for ``agent_id``, or touch it; ScopeError when another agent owns it."""
    if not check_owner(conn, user_id, session_id, agent_id):
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
            "content": checked_content(m.get("content") or "", f"messages[{i}]"),
            "extra": checked_extra({k: m.get(k) for k in EXTRA_FIELDS}, f"messages[{i}]"),
            "created_at": now,
        }
        for i, m in enumerate(messages)
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
        stmt = stmt.limit(min(limit, MAX_LIMIT))
    rows = list(conn.execute(stmt))[::-1]
    return [{"role": r.role, "content": r.content, **(r.extra or {})} for r in rows]


def count_messages(conn: Connection, user_id: str, session_id: str) -> int:
    stmt = select(func.count()).where(MESSAGES.c.user_id == user_id, MESSAGES.c.session_id == session_id)
    return int(conn.execute(stmt).scalar_one())


def list_sessions(
    conn: Connection, user_id: str, agent_id: str | None, session_id: str | None = None
) -> list[SessionInfo]:
    """The user's sessions, most recently active first: only ``agent_id``'s, or only ``session_id``."""
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
    if session_id is not None:
        stmt = stmt.where(SESSIONS.c.session_id == session_id)
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
) -> str:
    """Store the session's summary, secrets redacted (a model may repeat or invent one); returns it
    as stored."""
    # A model's stray NUL or lone surrogate would fail the write (on PostgreSQL, or on both): repair it.
    stored = redact(cleaned_text(text))
    conn.execute(
        SESSIONS.update()
        .where(_where(user_id, session_id))
        .values(summary=stored, summarized_messages=covered, updated_at=now)
    )
    return stored


def delete_session(writer: Writer, session_id: str) -> int:
    """Delete the writer's user's session completely, as ``Sessions.delete`` and retention both do: its
    messages and summary, its variables (of every agent, with their history) and its session-scoped
    memory (each live item with a ``delete`` event, the inputs learned into it forgotten); returns the
    number of messages deleted."""
    conn, user_id = writer.conn, writer.scope.user_id
    variables.delete_session(conn, user_id, session_id)
    writer.delete_session_items(session_id)
    deleted = conn.execute(
        MESSAGES.delete().where(MESSAGES.c.user_id == user_id, MESSAGES.c.session_id == session_id)
    ).rowcount
    conn.execute(SESSIONS.delete().where(_where(user_id, session_id)))
    return int(deleted or 0)
