"""What a request may name besides its user: the session a ``session_id`` parameter points at.

A key bound to an agent must not read another agent's session-scoped memory by naming its session, so
every route (and inspector page) that takes ``session_id`` resolves it through :func:`session_for`
first. Another agent's session answers exactly as a missing one does, so the key cannot learn that it
exists.
"""

from __future__ import annotations

from ..errors import NotFoundError
from ..manager import MemoryManager
from .auth import Principal, agent_for
from .errors import not_found


def session_for(
    memory: MemoryManager, who: Principal, user_id: str, agent_id: str | None, session_id: str | None
) -> str | None:
    """``session_id`` when the caller may use it: ``None`` (no session), a session the user does not
    have yet (it will be the caller's), or a session of the agent the request acts as. Acting as no
    agent, any session of the user is the caller's (as ``MemoryManager.sessions`` reads).

    Args:
        agent_id: the request's ``agent_id``, or the acting agent already resolved by ``agent_for``
            (resolved again here; it is the same).

    Raises:
        ApiError: 404 ``not_found`` "no session ..." (the answer a missing session gets) when the
            session is another agent's (or, acting as an agent, the user's own history).
        AgentMemError: an invalid ``session_id`` or ``user_id`` (422), as the library answers.
    """
    if session_id is None:
        return None
    acting = agent_for(who, agent_id)
    if acting is None:
        return session_id
    try:
        owner = memory.sessions.get(session_id, user_id=user_id).agent_id
    except NotFoundError:
        return session_id  # a new session: it will be created for the acting agent
    if owner != acting:
        raise not_found(f"no session {session_id!r}")
    return session_id
