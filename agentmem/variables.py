"""Memory variables: named values (``current_task``, ``conversation_goal``) set, read, listed and deleted
per user, agent and session: ``MemoryManager.variables``.

Scopes and precedence. A variable is set in one exact scope: the user's (no ``agent_id``, no
``session_id``), an agent's (``agent_id``), a session's (``session_id``), or an agent's in a session
(both). A read in a scope uses the variables that scope sees, and where several set the same name, the
most specific wins:

    the agent's in the session  >  the session's  >  the agent's  >  the user's

So a session overrides an agent, an agent overrides the user, and a read without a session or an agent
sees the user's variables only. Another user, another agent or another session never sees a variable.

Names are usable as ``{{ name }}`` in a Jinja template: an ASCII letter, then letters, digits or ``_``,
at most ``MAX_NAME`` characters, none of the words Jinja itself gives a meaning (``RESERVED``) and none
of the memory's built-in template variables (``MemoryManager.template_variables``).
Values are text of at most ``MAX_VALUE`` characters; a value that looks like a secret is refused with a
``SecretError``. Every change is an event in the history (see agentmem/store/variables.py); deleting a
session deletes its variables with their history, as it deletes its messages.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from .errors import InvalidInputError, NotFoundError
from .records import MemoryEvent
from .scope import Scope, check_id
from .store import variables as stored
from .store.variables import MAX_NAME as MAX_NAME
from .store.variables import MAX_VALUE as MAX_VALUE
from .store.variables import MAX_VARIABLES as MAX_VARIABLES
from .store.variables import RESERVED as RESERVED
from .store.variables import Variable, check_name, checked_value

if TYPE_CHECKING:
    from .store import Store

SOURCE = "manual"


def _scope(user_id: object, agent_id: object, session_id: object) -> tuple[Scope, str]:
    """The scope and the stored session key (``""``: none)."""
    scope = Scope.of(user_id, agent_id)
    return scope, check_id(session_id, "session_id", required=False) or ""


class Variables:
    """Named values of users, agents and sessions (``mem.variables``); see the module docstring for
    names, values and which value a read uses. ``builtins``: the memory's built-in template variables,
    which no variable may be named (a template could not use it)."""

    def __init__(self, store: Store, builtins: Collection[str] = ()) -> None:
        self._store = store
        self._builtins = frozenset(builtins)

    def set(
        self,
        name: str,
        value: str,
        *,
        user_id: str,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> Variable:
        """Set ``name`` to ``value`` in exactly this scope; returns the variable as stored. Setting the
        value it already has changes nothing (and records nothing).

        Raises:
            InvalidInputError: a bad name (a built-in template variable's too), a value that is not a
                str or is over ``MAX_VALUE`` characters, or the scope already holds ``MAX_VARIABLES``
                others; nothing was stored.
            SecretError: the value (or name) looks like a secret; nothing was stored.
            ScopeError: an invalid ``user_id``, ``agent_id`` or ``session_id``.
        """
        scope, session = _scope(user_id, agent_id, session_id)
        name = check_name(name)
        if name in self._builtins:  # only new values: one stored before stays readable and deletable
            raise InvalidInputError(
                f"variable name {name!r} is a built-in template variable of this memory; pick another"
            )
        value = checked_value(name, value)
        with self._store.write(scope) as writer:
            return stored.set_value(writer, session, name, value, SOURCE)

    def get(
        self, name: str, *, user_id: str, agent_id: str | None = None, session_id: str | None = None
    ) -> str | None:
        """The value a read in this scope uses for ``name`` (the most specific one), or ``None``."""
        scope, session = _scope(user_id, agent_id, session_id)
        name = check_name(name)
        with self._store.engine.connect() as conn:
            found = stored.visible(conn, scope, session, name)
        return found[0].value if found else None

    def delete(
        self, name: str, *, user_id: str, agent_id: str | None = None, session_id: str | None = None
    ) -> Variable:
        """Delete ``name`` from exactly this scope (a less specific value of it, if any, is used from
        then on); returns the variable as it was. Its history stays.

        Raises:
            NotFoundError: this exact scope has no variable of that name.
        """
        scope, session = _scope(user_id, agent_id, session_id)
        name = check_name(name)
        with self._store.write(scope) as writer:
            deleted = stored.delete_value(writer, session, name, SOURCE)
        if deleted is None:
            raise NotFoundError(f"no variable {name!r} in this scope of user {scope.user_id!r}")
        return deleted

    def history(
        self,
        name: str | None = None,
        *,
        user_id: str,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> list[MemoryEvent]:
        """Every change to the variables of exactly this scope (or to one name), oldest first: ``add``,
        ``update`` and ``delete`` events with the old and new values."""
        scope, session = _scope(user_id, agent_id, session_id)
        checked = None if name is None else check_name(name)
        with self._store.engine.connect() as conn:
            return stored.history(conn, scope, session, checked)

    def list(
        self, *, user_id: str, agent_id: str | None = None, session_id: str | None = None
    ) -> list[Variable]:
        """The variables this scope sees, by name: one per name, the one a read uses; each says the
        scope it was set in."""
        scope, session = _scope(user_id, agent_id, session_id)
        with self._store.engine.connect() as conn:
            return stored.visible(conn, scope, session)

    def values(
        self, *, user_id: str, agent_id: str | None = None, session_id: str | None = None
    ) -> dict[str, str]:
        """Every variable this scope sees, name to value (what a template of this scope is given)."""
        return {v.name: v.value for v in self.list(user_id=user_id, agent_id=agent_id, session_id=session_id)}
