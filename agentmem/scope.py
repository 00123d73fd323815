"""Who a memory belongs to: the :class:`Scope` value object and id validation."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from .errors import ScopeError
from .validation import text_problem

MAX_ID_LENGTH = 255
AGENT_MEMORY_USER = ""
"""The stored ``user_id`` of an agent's own memory (shared by all its users): no user id can be empty
(``check_id``), so no user's rows can be read as an agent's, nor an agent's as a user's."""
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
    """A user, optionally narrowed to one agent of that user and to one session; or one agent's own
    memory.

    ``agent_id=None`` means the user's shared memory, seen by all of the user's agents.
    Reading with an ``agent_id`` sees the shared memory plus that agent's private memory.
    ``session_id=None`` means user-wide memory only; reading with a ``session_id`` sees the user-wide
    memory plus that session's own (session-scoped) memory, and writing with one writes into that session.
    ``Scope.for_agent(agent_id)`` is the agent's own memory, shared across all its users (stored with
    ``user_id == AGENT_MEMORY_USER``); it sees only itself.
    """

    user_id: str
    agent_id: str | None = None
    session_id: str | None = None

    def __post_init__(self) -> None:
        if self.user_id == AGENT_MEMORY_USER and self.agent_id is None:
            raise ScopeError("user_id is required")  # agent memory without an agent is nobody's

    @classmethod
    def of(cls, user_id: object, agent_id: object = None, session_id: object = None) -> Scope:
        """A user's scope (``user_id`` required)."""
        user = check_id(user_id, "user_id", required=True)
        assert user is not None
        agent = check_id(agent_id, "agent_id", required=False)
        return cls(user, agent, check_id(session_id, "session_id", required=False))

    @classmethod
    def for_agent(cls, agent_id: object) -> Scope:
        """An agent's own memory, shared across all its users."""
        agent = check_id(agent_id, "agent_id", required=True)
        assert agent is not None
        return cls(AGENT_MEMORY_USER, agent)

    @classmethod
    def addressed(cls, user_id: object, agent_id: object = None, session_id: object = None) -> Scope:
        """The scope a public call names: with a ``user_id``, that user's (as :meth:`of`); with only an
        ``agent_id``, that agent's own memory (as :meth:`for_agent`), which has no sessions."""
        if user_id is None and agent_id is not None:
            if session_id is not None:
                raise ScopeError("an agent's own memory has no sessions: give a user_id with session_id")
            return cls.for_agent(agent_id)
        if user_id is None:
            raise ScopeError("user_id is required (or agent_id alone, for an agent's own memory)")
        return cls.of(user_id, agent_id, session_id)

    @property
    def kind(self) -> Literal["user", "agent"]:
        """``"agent"`` for an agent's own memory, ``"user"`` for a user's (shared or agent-private)."""
        return "agent" if self.user_id == AGENT_MEMORY_USER else "user"

    @property
    def agent_memory(self) -> Scope | None:
        """The agent's own memory this scope's compile adds, under its own tag (None without agent)."""
        if self.agent_id is None or self.kind == "agent":
            return None
        return Scope.for_agent(self.agent_id)

    @property
    def owner(self) -> str:
        """Who owns the scope's rows, as one string: the user id, or for an agent's own memory a string
        no user id can be (ids never hold control characters). Keys the write lock and the full-text
        index's partition."""
        return f"\x1fagent:{self.agent_id}" if self.kind == "agent" else self.user_id

    @property
    def agent_key(self) -> str:
        """The stored form of ``agent_id``: ``""`` is the user's shared memory."""
        return self.agent_id or ""

    @property
    def visible_agent_keys(self) -> tuple[str, ...]:
        """Stored agent keys this scope may read: shared, plus its own agent's; an agent's own memory
        reads only itself."""
        if self.kind == "agent":
            return (self.agent_key,)
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

    def describe(self) -> str:
        """The scope for messages: ``user 'sarah'`` or ``agent 'tagger' (its own memory)``."""
        if self.kind == "agent":
            return f"agent {self.agent_id!r} (its own memory)"
        return f"user {self.user_id!r}"


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
