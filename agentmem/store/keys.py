"""The REST server's API keys in the database: create, find by secret, list, revoke, and erase a user's.

A key is ``am_`` and 43 characters of ``secrets.token_urlsafe(32)``: 256 random bits. Only the SHA-256 of
the whole key is stored. A slow password hash (bcrypt, scrypt) exists to make guessing a *human-chosen*
secret expensive; nobody can enumerate 2**256 random keys, so one fast hash is enough, and it lets a key
be looked up by its hash through the unique index (no scan, no secret compared byte by byte in Python).

Once a first key is created, ``agentmem_meta`` remembers it (``api_keys``): the server stays closed to
requests without a key from then on, even when every key is revoked or erased with its user.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select

from ..errors import InvalidInputError, NotFoundError
from ..scope import check_id
from .tables import ApiKeyRow, MetaRow, table

TABLE = table(ApiKeyRow)
META = table(MetaRow)
PREFIX = "am_"
"""How every key begins: recognisable in a config file or a secret scanner."""
_KEYS_MADE = "api_keys"  # the meta row that says a key was ever created
MAX_LABEL = 200


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret (which is never stored)."""

    id: str
    """What ``list`` shows and ``revoke`` takes."""
    user_id: str | None
    """The one user the key reaches; ``None``: every user (admin or agent keys)."""
    agent_id: str | None
    """The one agent the key acts as; ``None``: any."""
    admin: bool
    """Reaches every user and the admin routes (the user list, keys)."""
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class NewKey:
    """A key just created: ``secret`` is the key itself, shown this once and never again."""

    key: ApiKey
    secret: str


def hash_secret(secret: str) -> str:
    """The stored form of a key: its SHA-256, as hex (see the module docstring for why no slow hash)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _key(row: Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        user_id=row.user_id,
        agent_id=row.agent_id,
        admin=bool(row.admin),
        label=row.label,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def create(
    conn: Connection,
    *,
    now: datetime,
    user_id: str | None = None,
    agent_id: str | None = None,
    admin: bool = False,
    label: str | None = None,
) -> NewKey:
    """A new key. It is admin (reaching every user, optionally as one agent), or bound to a user, an
    agent, or both: a key bound to nothing would be an admin key that does not say so."""
    user_id = check_id(user_id, "user_id", required=False)
    agent_id = check_id(agent_id, "agent_id", required=False)
    if not isinstance(admin, bool):
        raise InvalidInputError(f"admin must be a bool, not {type(admin).__name__}")
    if admin and user_id is not None:
        raise InvalidInputError("an admin key reaches every user; it cannot also be bound to one user")
    if not admin and user_id is None and agent_id is None:
        raise InvalidInputError("a key needs a user, an agent, or admin rights (it would reach nothing)")
    if label is not None and (
        not isinstance(label, str) or len(label) > MAX_LABEL or not label.isprintable()
    ):
        raise InvalidInputError(f"a key's label must be printable text of at most {MAX_LABEL} characters")
    secret = PREFIX + secrets.token_urlsafe(32)
    key = ApiKey("k_" + uuid.uuid4().hex[:16], user_id, agent_id, admin, label, now, None)
    conn.execute(
        TABLE.insert().values(
            id=key.id, hash=hash_secret(secret), user_id=user_id, agent_id=agent_id, admin=admin,
            label=label, created_at=now, revoked_at=None,
        )
    )  # fmt: skip
    if conn.execute(select(META.c.key).where(META.c.key == _KEYS_MADE)).first() is None:
        conn.execute(META.insert().values(key=_KEYS_MADE, value="1"))
    return NewKey(key, secret)


def find(conn: Connection, secret: str) -> ApiKey | None:
    """The live (not revoked) key whose secret this is; ``None`` for any other text."""
    if not secret.startswith(PREFIX) or len(secret) > 100:
        return None  # not a key of ours: no query
    row = conn.execute(select(TABLE).where(TABLE.c.hash == hash_secret(secret))).first()
    if row is None or row.revoked_at is not None:
        return None
    return _key(row)


def keys_required(conn: Connection) -> bool:
    """Whether a key was ever created: then every request needs one (see the module docstring)."""
    return conn.execute(select(META.c.key).where(META.c.key == _KEYS_MADE)).first() is not None


def list_keys(conn: Connection) -> list[ApiKey]:
    """Every key, revoked ones too, oldest first."""
    return [_key(row) for row in conn.execute(select(TABLE).order_by(TABLE.c.created_at, TABLE.c.id))]


def revoke(conn: Connection, key_id: str, *, now: datetime) -> ApiKey:
    """Revoke the key (once; revoking it again changes nothing); NotFoundError for an unknown id, a
    malformed one too (no key has one; never a query, which PostgreSQL would refuse for a NUL)."""
    try:
        check_id(key_id, "key_id", required=True)
    except InvalidInputError:
        raise NotFoundError(f"no API key {key_id[:100]!r}") from None
    row = conn.execute(select(TABLE).where(TABLE.c.id == key_id)).first()
    if row is None:
        raise NotFoundError(f"no API key {key_id!r}")
    if row.revoked_at is None:
        conn.execute(TABLE.update().where(TABLE.c.id == key_id).values(revoked_at=now))
        row = conn.execute(select(TABLE).where(TABLE.c.id == key_id)).one()
    return _key(row)


def delete_user_keys(conn: Connection, user_id: str) -> int:
    """Erase the keys bound to the user (``delete_user``): the rows go, as the user's id is in them."""
    return conn.execute(TABLE.delete().where(TABLE.c.user_id == user_id)).rowcount
