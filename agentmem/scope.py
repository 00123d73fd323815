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


@dataclass(frozen=True, slots=True)
class Scope:
    """A user, optionally narrowed to one agent of that user.

    ``agent_id=None`` means the user's shared memory, seen by all of the user's agents.
    Reading with an ``agent_id`` sees the shared memory plus that agent's private memory.
    """

    user_id: str
    agent_id: str | None = None

    @classmethod
    def of(cls, user_id: object, agent_id: object = None) -> Scope:
        user = check_id(user_id, "user_id", required=True)
        assert user is not None
        return cls(user, check_id(agent_id, "agent_id", required=False))

    @property
    def agent_key(self) -> str:
        """The stored form of ``agent_id``: ``""`` is the user's shared memory."""
        return self.agent_id or ""

    @property
    def visible_agent_keys(self) -> tuple[str, ...]:
        """Stored agent keys this scope may read: shared, plus its own agent's."""
        return ("",) if self.agent_id is None else ("", self.agent_id)


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
