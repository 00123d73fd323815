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


@dataclass(frozen=True, slots=True)
class Scope:
    """A user, optionally narrowed to one agent of that user; or one agent's own memory.

    ``agent_id=None`` means the user's shared memory, seen by all of the user's agents.
    Reading with an ``agent_id`` sees the shared memory plus that agent's private memory.
    ``Scope.for_agent(agent_id)`` is the agent's own memory, shared across all its users (stored with
    ``user_id == AGENT_MEMORY_USER``); it sees only itself.
    """

    user_id: str
    agent_id: str | None = None

    def __post_init__(self) -> None:
        if self.user_id == AGENT_MEMORY_USER and self.agent_id is None:
            raise ScopeError("user_id is required")  # agent memory without an agent is nobody's

    @classmethod
    def of(cls, user_id: object, agent_id: object = None) -> Scope:
        """A user's scope (``user_id`` required)."""
        user = check_id(user_id, "user_id", required=True)
        assert user is not None
        return cls(user, check_id(agent_id, "agent_id", required=False))

    @classmethod
    def for_agent(cls, agent_id: object) -> Scope:
        """An agent's own memory, shared across all its users."""
        agent = check_id(agent_id, "agent_id", required=True)
        assert agent is not None
        return cls(AGENT_MEMORY_USER, agent)

    @classmethod
    def addressed(cls, user_id: object, agent_id: object = None) -> Scope:
        """The scope a public call names: with a ``user_id``, that user's (as :meth:`of`); with only an
        ``agent_id``, that agent's own memory (as :meth:`for_agent`)."""
        if user_id is None and agent_id is not None:
            return cls.for_agent(agent_id)
        if user_id is None:
            raise ScopeError("user_id is required (or agent_id alone, for an agent's own memory)")
        return cls.of(user_id, agent_id)

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


S = TypeVar("S", bound=_Scoped)


def prefer_agent(items: Iterable[S]) -> list[S]:
    """Where an agent's private item and a shared item have the same (layer, key), keep the agent's.

    Order is kept (first appearance of each key). Shared items have ``agent_id`` None or "".
    """
    chosen: dict[tuple[str, str], S] = {}
    for item in items:
        current = chosen.get((item.layer, item.key))
        if current is None or (not current.agent_id and item.agent_id):
            chosen[(item.layer, item.key)] = item
    return list(chosen.values())
