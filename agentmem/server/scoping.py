"""Which session a request may name: the one check every route (REST and inspector) makes before a
``session_id`` reaches the library.

The library lets any caller read a session's own memory by naming it; the server must not, or an
agent-bound key could read another agent's session memory just by knowing its id. A caller acting as an
agent may name a session that agent started, or one that does not exist yet (the library starts it);
another agent's session answers the very 404 a missing session gets, so the answer tells nothing about
whose it is. A caller acting as no agent (an admin or user key without ``agent_id``) sees every session
of the user, as ``GET /v1/users/{user_id}/sessions`` lists them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ..errors import NotFoundError
from ..manager import MemoryManager
from ..scope import MAX_ID_LENGTH
from .auth import Principal, agent_for
from .errors import not_found

ID_PATTERN = r"^[^\s\x00-\x1f\x7f/](?:[^\x00-\x1f\x7f/]*[^\s\x00-\x1f\x7f/])?$"
"""A user, agent, session or item id as the server takes it: the library's rule (no control characters,
no surrounding whitespace) and no ``/``. Ids travel in URL paths (``/v1/users/{user_id}/sessions/
{session_id}``, the inspector's links), where a ``/`` cannot be told from the path's own, so an id with
one could be written but never read, updated or erased over HTTP: the server refuses it (422) where it
enters. Memory the library wrote with such ids is reached through the library only."""

PathSafeId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]
"""A required id of a request body, checked as ``ID_PATTERN`` says (422 otherwise)."""


def session_for(
    memory: MemoryManager, who: Principal, user_id: str, agent_id: str | None, session_id: str | None
) -> str | None:
    """``session_id`` when the request may use it: ``None``, a session not started yet, or one of the
    acting agent (``agent_id``, else the key's own agent; see ``agent_for``).

    Raises:
        ApiError: 404 ``not_found`` (``no session ...``) for another agent's session.
        InvalidInputError: a malformed id (the library's own check).
    """
    if session_id is None:
        return None
    acting = agent_for(who, agent_id)
    if acting is None:
        return session_id
    try:
        owner = memory.sessions.get(session_id, user_id=user_id).agent_id
    except NotFoundError:
        return session_id  # a new session: the write starts it (for the acting agent)
    if owner != acting:
        raise not_found(f"no session {session_id!r}")
    return session_id
