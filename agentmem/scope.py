"""Who a memory belongs to: the :class:`Scope` value object and id validation."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from .errors import ScopeError
from .validation import text_problem

MAX_ID_LENGTH = 255
# Printable, no whitespace at the ends, no control characters: ids end up in logs, CLIs and SQL params.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_id(value: object, name: str, *, required: bool) -> str | None:
    """Validate one id and return it (``None`` when optional and absent)."""
    if value is None:
        if required:
            raise ScopeError(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise ScopeError(f"{name} must be a str, not {type(value).__name__}")
    if not value.strip():
        raise ScopeError(f"{name} must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise ScopeError(f"{name} is {len(value)} characters long; the limit is {MAX_ID_LENGTH}")
    if value != value.strip() or _CONTROL.search(value):
        raise ScopeError(f"{name} must not contain control characters or surrounding whitespace")
    problem = text_problem(value)  # what is left: a lone surrogate
    if problem:
        raise ScopeError(f"{name} {problem}")
    return value


def check_session_scoped(session_scoped: object, session_id: str | None) -> bool | None:
    """Validate a write's ``session_scoped`` (``None``: the layer decides) against its ``session_id``."""
    if session_scoped is not None and not isinstance(session_scoped, bool):
        raise ScopeError(f"session_scoped must be a bool or None, got {session_scoped!r}")
    if session_scoped and session_id is None:
        raise ScopeError("session_scoped=True needs a session_id")
    return session_scoped


@dataclass(frozen=True, slots=True)
class Scope:
    """A user, optionally narrowed to one agent of that user and to one session.

    ``agent_id=None`` means the user's shared memory, seen by all of the user's agents.
    Reading with an ``agent_id`` sees the shared memory plus that agent's private memory.
    ``session_id=None`` means user-wide memory only; reading with a ``session_id`` sees the user-wide
    memory plus that session's own (session-scoped) memory, and writing with one writes into that session.
    """

    user_id: str
    agent_id: str | None = None
    session_id: str | None = None

    @classmethod
    def of(cls, user_id: object, agent_id: object = None, session_id: object = None) -> Scope:
        user = check_id(user_id, "user_id", required=True)
        assert user is not None
        agent = check_id(agent_id, "agent_id", required=False)
        return cls(user, agent, check_id(session_id, "session_id", required=False))

    @property
    def agent_key(self) -> str:
        """The stored form of ``agent_id``: ``""`` is the user's shared memory."""
        return self.agent_id or ""

    @property
    def visible_agent_keys(self) -> tuple[str, ...]:
        """Stored agent keys this scope may read: shared, plus its own agent's."""
        return ("",) if self.agent_id is None else ("", self.agent_id)

    @property
    def session_key(self) -> str:
        """The stored form of ``session_id`` (column ``session_scope``): ``""`` is user-wide memory."""
        return self.session_id or ""

    @property
    def visible_session_keys(self) -> tuple[str, ...]:
        """Stored session keys this scope may read: user-wide, plus its own session's."""
        return ("",) if self.session_id is None else ("", self.session_id)

    def user_wide(self) -> Scope:
        """The same user and agent without the session: where user-wide memory is written."""
        return Scope(self.user_id, self.agent_id)

    def within(self, agent_id: str | None, session_id: str | None) -> Scope:
        """Another scope of the same user (where an item lives: its agent and its session)."""
        return Scope(self.user_id, agent_id, session_id)


class _Scoped(Protocol):
    @property
    def layer(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def agent_id(self) -> str | None: ...
    @property
    def session_scope(self) -> str | None: ...


S = TypeVar("S", bound=_Scoped)


def _narrowness(item: _Scoped) -> tuple[bool, bool]:
    """How narrow an item's scope is: a session's item over a user-wide one, then an agent's over a
    shared one (the order ``store.ranked`` applies in SQL)."""
    return bool(item.session_scope), bool(item.agent_id)


def prefer_agent(items: Iterable[S]) -> list[S]:
    """Where items of the same (layer, key) are visible from several scopes, keep the narrowest: a
    session's own item over a user-wide one, then an agent's private item over a shared one.

    Order is kept (first appearance of each key). Shared items have ``agent_id`` None or "";
    user-wide ones have ``session_scope`` None or "".
    """
    chosen: dict[tuple[str, str], S] = {}
    for item in items:
        current = chosen.get((item.layer, item.key))
        if current is None or _narrowness(item) > _narrowness(current):
            chosen[(item.layer, item.key)] = item
    return list(chosen.values())
