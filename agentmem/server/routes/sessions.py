"""Routes of a user's conversation sessions, under ``/v1/users/{user_id}/sessions``: list, messages
(read, append) and the session's summary (read, write now), and deleting a session.

Whose sessions a request sees: a caller acting as an agent (``agent_id``, or a key bound to an agent)
sees only the sessions that agent started; another agent's session answers the very 404 a missing one
gets, as does another user's session id (sessions are looked up within the path's user). A caller acting
as no agent sees every session of the user, as ``MemoryManager.sessions`` reads without ``agent_id``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from ...errors import NotFoundError
from ...manager import MemoryManager
from ...scope import check_id
from ...store.sessions import MAX_MESSAGE_CHARS, SessionInfo
from ..auth import Caller, Principal, UserId, agent_for
from ..deps import Memory
from ..errors import not_found
from ..models import FromRecord

router = APIRouter()

MAX_LIMIT = 100_000
MAX_MESSAGES_PER_REQUEST = 1_000
"""Messages one POST may append (the body size limit applies too)."""

SessionId = Annotated[str, Path(description="The session (conversation) id, unique per user.")]
AgentQuery = Annotated[
    str | None,
    Query(description="Act as this agent: only its sessions. Default: the key's agent, else every session."),
]


class Session(FromRecord):
    """One conversation of a user."""

    session_id: str
    user_id: str
    agent_id: str | None = Field(description="The agent that started it; null: the user's own history.")
    messages: int = Field(description="How many messages it holds.")
    summary: str | None
    created_at: datetime
    updated_at: datetime


class SessionList(BaseModel):
    sessions: list[Session] = Field(description="Most recently active first.")


class Message(BaseModel):
    """An OpenAI-style chat message; secrets in it are redacted before it is stored."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = Field(
        default=None,
        description=f"Text (at most {MAX_MESSAGE_CHARS} characters), or OpenAI content parts "
        "(their text parts are kept).",
    )
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class MessagesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES_PER_REQUEST)


class Messages(BaseModel):
    messages: list[dict[str, Any]] = Field(
        description="Oldest first: role, content, and tool_calls/tool_call_id/name where a message had them."
    )


class Added(BaseModel):
    session_id: str
    added: int = Field(description="How many messages were appended.")


class Summary(BaseModel):
    session_id: str
    summary: str | None = Field(description="null: the session has no summary yet.")


def _acting(who: Principal, agent_id: str | None) -> str | None:
    """The agent the request acts as (see ``agent_for``), checked like any agent id (422 if invalid)."""
    return check_id(agent_for(who, agent_id), "agent_id", required=False)


def _session(memory: MemoryManager, user_id: str, session_id: str, acting: str | None) -> SessionInfo:
    """The session as the caller may see it; 404 for a missing one and for another agent's."""
    try:
        info = memory.sessions.get(session_id, user_id=user_id)
    except NotFoundError:
        raise not_found(f"no session {session_id!r}") from None
    if acting is not None and info.agent_id != acting:
        raise not_found(f"no session {session_id!r}")
    return info


@router.get("/users/{user_id}/sessions", summary="List the user's sessions")
def list_sessions(user_id: UserId, memory: Memory, who: Caller, agent_id: AgentQuery = None) -> SessionList:
    acting = _acting(who, agent_id)
    return SessionList(
        sessions=[Session.of(s) for s in memory.sessions.list(user_id=user_id, agent_id=acting)]
    )


@router.get("/users/{user_id}/sessions/{session_id}/messages", summary="A session's messages")
def read_messages(
    user_id: UserId,
    session_id: SessionId,
    memory: Memory,
    who: Caller,
    limit: Annotated[
        int | None, Query(ge=0, le=100_000, description="Only the last `limit` messages.")
    ] = None,
    agent_id: AgentQuery = None,
) -> Messages:
    acting = _acting(who, agent_id)
    _session(memory, user_id, session_id, acting)
    return Messages(messages=memory.sessions.messages(session_id, user_id=user_id, limit=limit))


@router.post(
    "/users/{user_id}/sessions/{session_id}/messages",
    status_code=201,
    summary="Append messages to a session (created on first use)",
)
def add_messages(
    user_id: UserId,
    session_id: SessionId,
    body: MessagesIn,
    memory: Memory,
    who: Caller,
    agent_id: Annotated[
        str | None,
        Query(description="The agent the session belongs to. Default: the key's agent, else none."),
    ] = None,
) -> Added:
    acting = _acting(who, agent_id)
    if acting is not None:
        # Another agent's session is not the caller's to see, let alone append to: the 404 of a missing
        # one. (Acting as no agent, the library's ScopeError (422) says the session is an agent's.)
        try:
            owner = memory.sessions.get(session_id, user_id=user_id).agent_id
        except NotFoundError:
            owner = acting  # a new session: created for the caller's agent
        if owner != acting:
            raise not_found(f"no session {session_id!r}")
    messages = [m.model_dump(exclude_none=True) for m in body.messages]
    added = memory.sessions.add(session_id, messages, user_id=user_id, agent_id=acting)
    return Added(session_id=session_id, added=added)


@router.get("/users/{user_id}/sessions/{session_id}/summary", summary="A session's summary")
def read_summary(
    user_id: UserId, session_id: SessionId, memory: Memory, who: Caller, agent_id: AgentQuery = None
) -> Summary:
    info = _session(memory, user_id, session_id, _acting(who, agent_id))
    return Summary(session_id=session_id, summary=info.summary)


@router.post(
    "/users/{user_id}/sessions/{session_id}/summary",
    summary="Write (or bring up to date) the session's summary now",
    description="Uses the server's model (offline: an extractive summary). 502 `model_error` when the "
    "model fails; the previous summary is kept.",
)
def summarize(
    user_id: UserId, session_id: SessionId, memory: Memory, who: Caller, agent_id: AgentQuery = None
) -> Summary:
    _session(memory, user_id, session_id, _acting(who, agent_id))
    try:
        text = memory.sessions.summarize(session_id, user_id=user_id)
    except NotFoundError:  # deleted meanwhile
        raise not_found(f"no session {session_id!r}") from None
    return Summary(session_id=session_id, summary=text)


@router.delete(
    "/users/{user_id}/sessions/{session_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a session: its messages, summary, variables and session-scoped memory",
)
def delete_session(
    user_id: UserId, session_id: SessionId, memory: Memory, who: Caller, agent_id: AgentQuery = None
) -> None:
    _session(memory, user_id, session_id, _acting(who, agent_id))
    memory.sessions.delete(session_id, user_id=user_id)
