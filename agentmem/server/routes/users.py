"""Routes of whole users: the user list (admin), export, import, erasure, pending (failed) learns and
their retry.

Who may do what, beyond what ``agentmem.server.auth`` says of every route:

- ``GET /users`` is for admin keys (404 for the others, like an unknown route).
- Export, import, erasure and retrying pending learns cover every agent's memory of the user, so a key
  bound to an agent cannot use them (404, like an admin route): an agent's key never reads or changes
  another agent's memory. A key bound to a user (and no agent) may do them for its own user.
- ``POST /users/import`` takes an ``export`` document as its body; an admin key imports any user, a
  user-bound key only its own (another ``user_id`` answers the 404 of a user it cannot reach). The
  document is checked completely before anything is written: a malformed one is 422 and writes nothing;
  a user who already has memory is 409.
- ``DELETE /users/{user_id}`` erases everything stored of the user, the API keys bound to the user
  included (the caller's own, when it is one of them).
- ``GET /users/{user_id}/pending`` lists the user's failed learns; acting as an agent (``agent_id``, or
  a key bound to one), only that agent's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field

from ...scope import check_id
from ..auth import Admin, Caller, Principal, UserId, agent_for, user_not_found
from ..deps import Memory
from ..errors import ApiError, not_found
from ..models import FromRecord

router = APIRouter()


class User(FromRecord):
    """One user with memory, history or sessions."""

    user_id: str
    items: int = Field(description="Live items, shared and every agent's private ones.")
    sessions: int = Field(description="Conversations.")
    last_activity: datetime | None = Field(description="When the user's memory or a session last changed.")


class UserList(BaseModel):
    users: list[User] = Field(description="By user id.")


class Imported(BaseModel):
    user_id: str
    items: int = Field(description="How many items (live and closed) were imported.")


class Erased(BaseModel):
    user_id: str
    items: int = Field(description="How many items were deleted (their history, sessions, keys went too).")


class Pending(FromRecord):
    """A learn whose extraction failed for good, kept for a retry (its messages redacted)."""

    id: str
    agent_id: str | None = Field(description="The agent whose learn failed; null: the user's shared memory.")
    session_id: str | None
    messages: list[dict[str, Any]]
    error: str = Field(description="Why the last attempt failed.")
    attempts: int = Field(description="Model calls made for it so far.")
    created_at: datetime
    updated_at: datetime


class PendingList(BaseModel):
    pending: list[Pending] = Field(description="Oldest first.")


class Retried(BaseModel):
    retried: int = Field(description="Pending learns that were run again.")
    succeeded: int = Field(description="Those that succeeded now (they left the queue).")
    still_pending: int = Field(description="Those that failed again (their attempts counted).")


ExportDocument = Annotated[
    dict[str, Any],
    Body(
        description="A document of `GET /v1/users/{user_id}/export` (or `MemoryManager.export_user`), "
        "as it was exported."
    ),
]


def whole_user(who: Principal) -> None:
    """Operations over every agent's memory of a user are not for a key bound to one agent."""
    if who.agent_id is not None and not who.admin:
        raise not_found("not found")


@router.get("/users", summary="List the users (admin)")
def list_users(_admin: Admin, memory: Memory) -> UserList:
    return UserList(users=[User.of(user) for user in memory.list_users()])


@router.get(
    "/users/{user_id}/export",
    summary="Everything stored of the user, as a document import takes back",
    description="Every agent's memory of the user, closed items, history, sessions, messages and "
    "pending learns. A user with nothing stored gets an empty document.",
)
def export_user(user_id: UserId, memory: Memory, who: Caller) -> dict[str, Any]:
    whole_user(who)
    return memory.export_user(user_id)


@router.post(
    "/users/import",
    status_code=201,
    summary="Restore an exported user (admin, or a user-bound key its own user)",
    description="Checked completely before anything is written: 422 for a malformed document, 409 when "
    "the user already has memory; the body size limit applies (413).",
)
def import_user(body: ExportDocument, memory: Memory, who: Caller) -> Imported:
    whole_user(who)
    if not who.admin:
        if who.user_id is None:  # a key bound to an agent only: refused by whole_user already
            raise not_found("not found")
        claimed = body.get("user_id")
        if not isinstance(claimed, str):
            raise ApiError(422, "invalid_input", "the document must name its user_id (a str)")
        if claimed != who.user_id:
            raise user_not_found(claimed)
    items = memory.import_user(body)
    return Imported(user_id=str(body["user_id"]), items=items)


@router.delete(
    "/users/{user_id}",
    summary="Erase the user: all memory, history, sessions, pending learns and the user's API keys",
)
def delete_user(user_id: UserId, memory: Memory, who: Caller) -> Erased:
    whole_user(who)
    return Erased(user_id=user_id, items=memory.delete_user(user_id))


@router.get("/users/{user_id}/pending", summary="The user's failed learns, kept for a retry")
def list_pending(
    user_id: UserId,
    memory: Memory,
    who: Caller,
    agent_id: Annotated[
        str | None, Query(description="Only this agent's. Default: the key's agent, else every one.")
    ] = None,
) -> PendingList:
    acting = check_id(agent_for(who, agent_id), "agent_id", required=False)
    found = memory.pending(user_id=user_id)
    if acting is not None:
        found = [p for p in found if p.agent_id == acting]
    return PendingList(pending=[Pending.of(p) for p in found])


@router.post(
    "/users/{user_id}/pending/retry",
    summary="Run the user's failed learns again",
    description="Each one that succeeds now is applied and leaves the queue; the others stay, their "
    "attempts counted.",
)
def retry_pending(user_id: UserId, memory: Memory, who: Caller) -> Retried:
    whole_user(who)
    report = memory.retry_pending(user_id=user_id)
    return Retried(retried=report.retried, succeeded=len(report.results), still_pending=report.still_pending)
