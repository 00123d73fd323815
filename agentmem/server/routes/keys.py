"""The caller's own key (``GET /v1/me``) and, for admin keys, the server's keys: create (the key is in
the answer this once), list (never a secret), revoke. Non-admin keys get 404 on the admin routes. A key's
ids must be path-safe (no ``/``: ``server.scoping.ID_PATTERN``); a malformed ``key_id`` is the 404 of an
unknown one."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ...scope import MAX_ID_LENGTH
from ..auth import Admin, Caller
from ..deps import Keys
from ..models import FromRecord
from ..scoping import ID_PATTERN

router = APIRouter()


class Me(BaseModel):
    """What the request's key reaches."""

    key_id: str | None = Field(description="The key's id; null in open mode (no key exists yet).")
    user_id: str | None = Field(description="The only user the key reaches; null: every user.")
    agent_id: str | None = Field(description="The only agent the key acts as; null: any.")
    admin: bool = Field(description="Reaches every user and the admin routes.")


class KeyOut(FromRecord):
    """A stored key, without its secret."""

    id: str
    user_id: str | None
    agent_id: str | None
    admin: bool
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


class NewKeyOut(KeyOut):
    key: str = Field(description="The key itself: shown only in this answer; only its hash is stored.")


class KeyIn(BaseModel):
    """A key to create: admin, or bound to a user, an agent, or both."""

    user_id: str | None = Field(
        default=None,
        max_length=MAX_ID_LENGTH,
        pattern=ID_PATTERN,
        description="The only user the key will reach.",
    )
    agent_id: str | None = Field(
        default=None,
        max_length=MAX_ID_LENGTH,
        pattern=ID_PATTERN,
        description="The only agent the key will act as.",
    )
    admin: bool = Field(default=False, description="Reach every user and the admin routes.")
    label: str | None = Field(default=None, max_length=200, description="A note, e.g. who holds the key.")


class KeyList(BaseModel):
    keys: list[KeyOut]


@router.get("/me", summary="What this request's key reaches")
def me(who: Caller) -> Me:
    return Me(key_id=who.key_id, user_id=who.user_id, agent_id=who.agent_id, admin=who.admin)


@router.post("/keys", status_code=201, summary="Create an API key (admin)")
def create_key(body: KeyIn, _admin: Admin, keys: Keys) -> NewKeyOut:
    made = keys.create(user_id=body.user_id, agent_id=body.agent_id, admin=body.admin, label=body.label)
    return NewKeyOut(**KeyOut.of(made.key).model_dump(), key=made.secret)


@router.get("/keys", summary="List the API keys, never their secrets (admin)")
def list_keys(_admin: Admin, keys: Keys) -> KeyList:
    return KeyList(keys=[KeyOut.of(key) for key in keys.list()])


@router.delete("/keys/{key_id}", summary="Revoke an API key for good (admin)")
def revoke_key(key_id: str, _admin: Admin, keys: Keys) -> KeyOut:
    return KeyOut.of(keys.revoke(key_id))
