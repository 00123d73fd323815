"""Memory variables in the database: one named value per user, agent and session, each change an event.

A variable's history is kept in the events table, under the layer name ``VARIABLES`` (reserved: no layer
may take it). Events already carry the user, agent and session a change belongs to, are exported with
the user and erased with it, and ``MemoryManager.history`` shows them beside the items' changes; a table
of its own would repeat all of that. The event's ``item_id`` is the variable's id (a variable deleted and
set again gets a new one, as an item does) and its ``key`` the variable's name.

Stored ``agent_id`` and ``session_id`` are ``""`` for none (see ``VariableRow``). The checks a name and
a value pass live here too, as a new write and an import both need them.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from ..errors import InvalidInputError
from ..layers.schema import MAX_TEXT, check_value
from ..records import Change, MemoryEvent
from ..scope import Scope
from .rows import EVENTS, event_from_row
from .tables import VariableRow, table
from .writer import Writer

VARIABLES = "variables"
"""The layer name a variable's events are kept under."""
TABLE = table(VariableRow)
MAX_VARIABLES = 100
"""The most variables one exact scope (user, agent, session) holds."""

MAX_NAME = 64
MAX_VALUE = MAX_TEXT
"""The most characters a value holds (as much as one stored memory item)."""
_NAME = re.compile(rf"[A-Za-z][A-Za-z0-9_]{{0,{MAX_NAME - 1}}}")
RESERVED = frozenset(
    {
        # literals and operators: ``{{ none }}`` is Jinja's None, not a variable's value
        *("true", "false", "none", "True", "False", "None"),
        *("and", "or", "not", "in", "is", "if", "else"),
        # names Jinja binds itself inside templates, and its global functions
        *("self", "loop", "super", "caller", "varargs", "kwargs"),
        *("range", "dict", "lipsum", "cycler", "joiner", "namespace"),
    }
)
"""Names a variable may not have: each already means something in a Jinja template."""


def check_name(name: object) -> str:
    """``name`` when it is a valid variable name; else InvalidInputError saying why."""
    if not isinstance(name, str):
        raise InvalidInputError(f"a variable name must be a str, not {type(name).__name__}")
    if not _NAME.fullmatch(name):
        shown = name if len(name) <= MAX_NAME else f"{name[:MAX_NAME]}..."
        raise InvalidInputError(
            f"variable name {shown!r}: use an ASCII letter, then letters, digits or _ "
            f"(at most {MAX_NAME} characters), so that templates can use it as {{{{ name }}}}"
        )
    if name in RESERVED:
        raise InvalidInputError(f"variable name {name!r} already means something in a template; pick another")
    check_value(name, "variable name")  # a secret in a name is as stored as in a value
    return name


def checked_value(name: str, value: object) -> str:
    """``value`` when it is storable text within ``MAX_VALUE`` and holds no secret; else
    InvalidInputError (SecretError for a secret)."""
    if not isinstance(value, str):
        raise InvalidInputError(
            f"the value of variable {name!r} must be a str, not {type(value).__name__} (convert it first)"
        )
    if len(value) > MAX_VALUE:
        raise InvalidInputError(
            f"the value of variable {name!r} is {len(value)} characters; the limit is {MAX_VALUE}"
        )
    return str(check_value(value, f"the value of variable {name!r}"))


@dataclass(frozen=True, slots=True)
class Variable:
    """One memory variable as stored: its value and the exact scope it was set in."""

    name: str
    value: str
    user_id: str
    agent_id: str | None
    """``None``: set for the user, seen by every agent."""
    session_id: str | None
    """``None``: not bound to a session."""
    id: str
    """Names the variable in the history (``MemoryEvent.item_id``)."""
    created_at: datetime
    updated_at: datetime

    @property
    def precedence(self) -> tuple[bool, bool]:
        """Which of two values for one name a read uses: the higher one (session first, then agent)."""
        return (self.session_id is not None, self.agent_id is not None)


def _variable(row: Any) -> Variable:
    return Variable(
        name=row.name,
        value=row.value,
        user_id=row.user_id,
        agent_id=row.agent_id or None,
        session_id=row.session_id or None,
        id=row.id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _exact(scope: Scope, session: str) -> Any:
    return (
        (TABLE.c.user_id == scope.user_id)
        & (TABLE.c.agent_id == scope.agent_key)
        & (TABLE.c.session_id == session)
    )


def visible(conn: Connection, scope: Scope, session: str, name: str | None = None) -> list[Variable]:
    """The variables a read in this scope uses, one per name (the highest ``precedence``), by name:
    the user's own, plus the agent's (with an agent) and the session's (with a session)."""
    sessions = ("", session) if session else ("",)
    stmt = select(TABLE).where(
        TABLE.c.user_id == scope.user_id,
        TABLE.c.agent_id.in_(scope.visible_agent_keys),
        TABLE.c.session_id.in_(sessions),
    )
    if name is not None:
        stmt = stmt.where(TABLE.c.name == name)
    chosen: dict[str, Variable] = {}
    for variable in map(_variable, conn.execute(stmt)):
        current = chosen.get(variable.name)
        if current is None or variable.precedence > current.precedence:
            chosen[variable.name] = variable
    return [chosen[key] for key in sorted(chosen)]


def _current(writer: Writer, session: str, name: str) -> Any:
    return writer.conn.execute(
        select(TABLE).where(_exact(writer.scope, session), TABLE.c.name == name)
    ).first()


def set_value(writer: Writer, session: str, name: str, value: str, source: str) -> Variable:
    """Set the variable in exactly the writer's scope and ``session``, with an event; returns it as
    stored. When it already has that value nothing changes and nothing is recorded.

    Raises:
        InvalidInputError: the scope already holds ``MAX_VARIABLES`` other variables.
    """
    row, conn, now = _current(writer, session, name), writer.conn, writer.now
    if row is not None and row.value == value:
        return _variable(row)
    if row is not None:
        conn.execute(TABLE.update().where(TABLE.c.pk == row.pk).values(value=value, updated_at=now))
        change = Change("update", VARIABLES, row.id, name, row.value, value)
    else:
        held = conn.execute(select(func.count()).where(_exact(writer.scope, session))).scalar_one()
        if held >= MAX_VARIABLES:
            raise InvalidInputError(
                f"this scope already holds {held} variables; the limit is {MAX_VARIABLES} (delete one first)"
            )
        change = Change("add", VARIABLES, "v_" + uuid.uuid4().hex[:24], name, None, value)
        conn.execute(
            TABLE.insert().values(
                id=change.item_id,
                user_id=writer.scope.user_id,
                agent_id=writer.scope.agent_key,
                session_id=session,
                name=name,
                value=value,
                created_at=now,
                updated_at=now,
            )
        )
    _record(writer, session, change, source)
    return _variable(_current(writer, session, name))


def delete_value(writer: Writer, session: str, name: str, source: str) -> Variable | None:
    """Delete the variable of exactly the writer's scope and ``session``, with an event; returns it as
    it was, ``None`` when there is none."""
    row = _current(writer, session, name)
    if row is None:
        return None
    writer.conn.execute(TABLE.delete().where(TABLE.c.pk == row.pk))
    change = Change("delete", VARIABLES, row.id, name, row.value, None)
    _record(writer, session, change, source)
    return _variable(row)


def _record(writer: Writer, session: str, change: Change, source: str) -> None:
    """The change's event in the variable's own scope: a session's variable is the session's, so its
    events stay out of the user-wide history and other sessions'."""
    owner = writer.scoped(writer.scope.within(writer.scope.agent_id, session or None))
    owner.record([(change, None)], source=source, session_id=session or None)


def history(conn: Connection, scope: Scope, session: str, name: str | None) -> list[MemoryEvent]:
    """The changes to the variables of exactly this scope and session (or to one name), oldest first."""
    stmt = (
        select(EVENTS)
        .where(
            EVENTS.c.user_id == scope.user_id,
            EVENTS.c.agent_id == scope.agent_key,
            EVENTS.c.layer == VARIABLES,
            EVENTS.c.session_id == session if session else EVENTS.c.session_id.is_(None),
        )
        .order_by(EVENTS.c.id)
    )
    if name is not None:
        stmt = stmt.where(EVENTS.c.key == name)
    return [event_from_row(row) for row in conn.execute(stmt)]


def delete_session(conn: Connection, user_id: str, session: str) -> int:
    """Part of deleting a session: its variables (of every agent) and their history, as its messages
    go; returns how many variables."""
    where = (TABLE.c.user_id == user_id) & (TABLE.c.session_id == session)
    deleted = conn.execute(TABLE.delete().where(where)).rowcount
    conn.execute(
        EVENTS.delete().where(
            EVENTS.c.user_id == user_id, EVENTS.c.layer == VARIABLES, EVENTS.c.session_id == session
        )
    )
    return int(deleted or 0)
