"""Rows to records: the table handles and the conversions every read shares."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, Select, String, and_, bindparam, func, or_, select, union
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from ..records import MemoryEvent, MemoryItem
from ..scope import Scope
from . import search
from .engine import fetched
from .expiry import ONE_LAYER_LIVE, ONE_LAYER_OUTLIVED, ONE_LAYER_PAST_DATE, Expiry
from .tables import EventRow, GenerationRow, ItemRow, LearnedRow, PendingRow, table

ITEMS = table(ItemRow)
EVENTS = table(EventRow)
LEARNED = table(LearnedRow)
PENDING = table(PendingRow)
GENERATIONS = table(GenerationRow)


def utcnow() -> datetime:
    return datetime.now(UTC)


def driver_rows(conn: Connection, stmt: Any, params: Mapping[str, Any] | None = None) -> list[Any]:
    """The driver's own rows (tuples) of a statement whose columns need no conversion: building
    SQLAlchemy rows for thousands of them (an owner's vectors, a compile's items) took longer than
    reading them."""
    return fetched(conn, conn.execute(stmt, params))


def item_from_row(row: Row[Any]) -> MemoryItem:
    m = row._mapping
    return MemoryItem(
        id=m["id"],
        layer=m["layer"],
        key=m["key"],
        text=m["text"],
        value=m["value"],
        user_id=m["user_id"],
        agent_id=m["agent_id"] or None,
        session_id=m["session_id"],
        source=m["source"],
        confidence=m["confidence"],
        count=m["count"],
        explicit=m["explicit"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        valid_to=m["valid_to"],
        superseded_by=m["superseded_by"],
        session_scope=m["session_scope"] or None,
        meta=dict(m["meta"] or {}),
        expires_at=m["expires_at"],
    )


def event_from_row(row: Row[Any]) -> MemoryEvent:
    m = row._mapping
    return MemoryEvent(
        id=m["id"],
        item_id=m["item_id"],
        layer=m["layer"],
        key=m["key"],
        op=m["op"],
        old=m["old"],
        new=m["new"],
        reason=m["reason"],
        source=m["source"],
        user_id=m["user_id"],
        agent_id=m["agent_id"] or None,
        session_id=m["session_id"],
        created_at=m["created_at"],
        session_scope=m["session_scope"] or None,
    )


class ContextRow(NamedTuple):
    """What compile needs of one live item: no JSON, no datetime parsing (a tuple: cheap to build)."""

    id: str
    layer: str
    key: str
    line: str
    agent_id: str
    updated_at: Any  # sortable within one backend
    times: int  # how often seen (feedback repeats)
    score: float  # relevance to the query; 0 when none


def visible(scope: Scope, rows: Any = ITEMS) -> Any:
    """The rows of this user that this scope may read (items, or the events of those items): shared,
    plus its own agent's; user-wide, plus its own session's."""
    return and_(
        rows.c.user_id == scope.user_id,
        rows.c.agent_id.in_(scope.visible_agent_keys),
        rows.c.session_scope.in_(scope.visible_session_keys),
    )


def owned(rows: Any, scope: Scope) -> Any:
    """The rows of a table that the scope's owner holds (export, erasure, cleanup): all of a user's, or
    one agent's own memory (the reserved user id and that agent: never a user's)."""
    if scope.kind == "agent":
        return and_(rows.c.user_id == scope.user_id, rows.c.agent_id == scope.agent_key)
    return rows.c.user_id == scope.user_id


# The statements every learn runs, built once: building a statement (and its cache key) costs SQLAlchemy
# several times what executing it does.
_GENERATION = select(GENERATIONS.c.token).where(GENERATIONS.c.user_id == bindparam("user_id"))
_LEARNED = select(LEARNED.c.pk).where(
    LEARNED.c.user_id == bindparam("user_id"),
    LEARNED.c.agent_id == bindparam("agent_id"),
    LEARNED.c.key == bindparam("key"),
)


# Open items of one layer in exactly one scope: a range of ``ux_agentmem_items_live_key``. Bound, so
# the statements using it are built (and their SQL cached) once, not on every learn.
def _exact_open(user_id: Any = ITEMS.c.user_id) -> Any:
    return and_(
        user_id == bindparam("scope_user"),
        ITEMS.c.agent_id == bindparam("scope_agent"),
        ITEMS.c.session_scope == bindparam("scope_session"),
        ITEMS.c.layer == bindparam("scope_layer"),
        ITEMS.c.valid_to.is_(None),
    )


_EXACT_OPEN = _exact_open()
# Live: open and not expired. An expired item is no merge candidate (see ``Writer.apply``).
_EXACT_LAYER = and_(_EXACT_OPEN, ONE_LAYER_LIVE)
# The same test on rows already picked by pk. SQLite's planner, which has no statistics, would rather
# walk the scope's whole range of an index than look up a short list of pks (14 ms against 0.2 ms for
# 40 rows of a 100k scope); every index on items starts with user_id, and a unary plus on it (SQLite's
# documented way) takes them all out of the choice. PostgreSQL has statistics and no unary plus on text.
_PICKED = {
    "sqlite": and_(_exact_open(UnaryExpression(ITEMS.c.user_id, operator=custom_op("+"))), ONE_LAYER_LIVE),
    "postgresql": _EXACT_LAYER,
}
_EXACT_LIVE = select(ITEMS).where(_EXACT_LAYER).order_by(ITEMS.c.pk)
# Open items counted through an index of live items only (both backends pick the partial
# ix_agentmem_items_recent); the expired ones are counted off, each part through an index of its own
# that holds next to nothing without them.
_LIVE_COUNT = select(
    select(func.count()).select_from(ITEMS).where(_EXACT_OPEN).scalar_subquery()
    - select(func.count()).select_from(ITEMS).where(_EXACT_OPEN, ONE_LAYER_OUTLIVED).scalar_subquery()
    - select(func.count()).select_from(ITEMS).where(_EXACT_OPEN, ONE_LAYER_PAST_DATE).scalar_subquery()
)


def exact_live(conn: Connection, scope: Scope, layer: str, expiry: Expiry) -> list[MemoryItem]:
    """Live items of ``layer`` in exactly this scope (what merges run against), oldest first."""
    return [item_from_row(r) for r in conn.execute(_EXACT_LIVE, exact_layer(scope, layer, expiry))]


def exact_layer(scope: Scope, layer: str, expiry: Expiry) -> dict[str, Any]:
    """The parameters of ``_EXACT_LAYER`` for ``layer`` in exactly this scope."""
    return {
        "scope_user": scope.user_id,
        "scope_agent": scope.agent_key,
        "scope_session": scope.session_key,
        "scope_layer": layer,
        **expiry.one_layer(layer),
    }


# Open but expired items of given keys (an edit keeps its own row, so ``kept`` ids are left out): the
# negation of ONE_LAYER_LIVE, built once like the other statements every learn runs.
_EXPIRED_OF_KEYS = (
    select(ITEMS)
    .where(
        _EXACT_OPEN,
        ITEMS.c.key.in_(bindparam("keys", expanding=True)),
        ITEMS.c.id.not_in(bindparam("kept", expanding=True)),
        or_(ONE_LAYER_OUTLIVED, ONE_LAYER_PAST_DATE),
    )
    .order_by(ITEMS.c.pk)
)


def expired_of_keys(
    conn: Connection, scope: Scope, layer: str, expiry: Expiry, keys: Collection[str], kept: Collection[str]
) -> list[MemoryItem]:
    """Open items of ``layer`` in exactly this scope that hold one of ``keys`` but have expired, except
    the ``kept`` ids."""
    params = {**exact_layer(scope, layer, expiry), "keys": sorted(keys), "kept": sorted(kept)}
    return [item_from_row(r) for r in conn.execute(_EXPIRED_OF_KEYS, params)]


def live_count(conn: Connection, scope: Scope, layer: str, expiry: Expiry) -> int:
    return int(conn.execute(_LIVE_COUNT, exact_layer(scope, layer, expiry)).scalar_one())


def sort_key(dialect: str, columns: Sequence[str], *, descending: bool = False) -> list[Any]:
    """ORDER BY terms for item columns that sort as Python sorts their values (text by code point)."""
    terms = []
    for name in columns:
        column: Any = ITEMS.c[name]
        if dialect == "postgresql" and isinstance(column.type, String):
            column = column.collate("C")
        terms.append(column.desc() if descending else column.asc())
    return terms


def exact_matching(
    conn: Connection,
    scope: Scope,
    layer: str,
    expiry: Expiry,
    *,
    keys: Collection[str] = (),
    ids: Collection[str] = (),
    similar: Sequence[Sequence[Sequence[str]]] = (),
    first: tuple[Sequence[str], int] | None = None,
) -> list[MemoryItem]:
    """Live items of ``layer`` in exactly this scope, oldest first, with one of ``keys`` or ``ids``,
    text that may have a word of each group of one of ``similar`` (see ``search.may_have_words``), or
    among the ``first[1]`` in the order of the columns ``first[0]``. One query, each of its conditions
    served by an index, which reads into Python only those rows."""
    params = exact_layer(scope, layer, expiry)
    probe = search.may_have_words(conn, scope, similar) if similar else None
    if probe is not None:
        params.update(probe.params)
    if keys:
        params["keys"] = sorted(keys)
    if ids:
        params["ids"] = sorted(ids)
    head = None
    if first is not None and first[1] > 0:
        head, params["first"] = tuple(first[0]), first[1]
    if not (keys or ids or probe or head):
        return []
    stmt = _matching(conn.dialect.name, bool(keys), bool(ids), probe.shape if probe else None, head)
    return [item_from_row(r) for r in conn.execute(stmt, params)]


@cache
def _matching(
    dialect: str, keys: bool, ids: bool, probe: str | tuple[int, ...] | None, head: tuple[str, ...] | None
) -> Select[Any]:
    """``exact_matching``'s statement for one shape of its arguments, built once (building it cost
    more than running it). Each way in is a SELECT of pks served by its own index; the rows are then
    read by pk. (One OR over the conditions would have the database walk the whole scope.)"""
    wanted: list[Select[Any]] = []
    if keys:
        wanted.append(
            select(ITEMS.c.pk).where(_EXACT_LAYER, ITEMS.c.key.in_(bindparam("keys", expanding=True)))
        )
    if ids:
        wanted.append(select(ITEMS.c.pk).where(ITEMS.c.id.in_(bindparam("ids", expanding=True))))
    if probe is not None:
        wanted.append(search.word_probe_pks(probe, ITEMS.c.pk))
    if head is not None:
        first = (
            select(ITEMS.c.pk)
            .where(_EXACT_LAYER)
            .order_by(*sort_key(dialect, head))
            .limit(bindparam("first"))
        )
        wanted.append(select(first.subquery().c.pk))
    pks = wanted[0] if len(wanted) == 1 else union(*wanted)
    return select(ITEMS).where(_PICKED.get(dialect, _EXACT_LAYER), ITEMS.c.pk.in_(pks)).order_by(ITEMS.c.pk)


def recent_ids(conn: Connection, scope: Scope, layer: str, limit: int, expiry: Expiry) -> list[str]:
    """Ids of the ``limit`` most recently updated live items of ``layer`` in exactly this scope."""
    stmt = _recent_ids(conn.dialect.name)
    return list(conn.execute(stmt, {**exact_layer(scope, layer, expiry), "limit": limit}).scalars())


@cache
def _recent_ids(dialect: str) -> Any:
    newest = sort_key(dialect, ("updated_at", "id"), descending=True)
    return select(ITEMS.c.id).where(_EXACT_LAYER).order_by(*newest).limit(bindparam("limit"))


def generation_of(conn: Connection, user_id: str) -> str | None:
    """The user's current generation (see ``Store.generation``); None when none was begun."""
    token = conn.execute(_GENERATION, {"user_id": user_id}).scalar()
    return None if token is None else str(token)


def is_learned(conn: Connection, scope: Scope, key: str) -> bool:
    """Whether ``learn`` already applied this input to this scope."""
    found = conn.execute(
        _LEARNED, {"user_id": scope.user_id, "agent_id": scope.agent_key, "key": key}
    ).first()
    return found is not None
