"""When an item stops being live: the one place that says so.

An item is live while it is open (``valid_to IS NULL``) and not expired at the moment of reading. It
expires at its own ``expires_at`` (set by a manual write), or a layer's ``ttl`` after its last update
(``LayerConfig(ttl=...)``), whichever comes first. The ttl is read from the configuration, not stored,
so changing it applies to every item at once, those written before it too.

Every read of live items (compile, search, get, the memory tools, learn's prompt and merge candidates)
adds the condition this module renders; cleanup deletes what its negation finds. In compile and search
a layer without a ttl adds no term, so memory without expiring items is read through the same index
ranges as before, save a test of one column of rows read anyway; the merge reads of one layer, built
once for any layer, test ``updated_at > BEGINNING`` instead (true of every row).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Dialect, TextClause, bindparam, text

from .engine import fetched
from .tables import UtcDateTime

BEGINNING = datetime(1, 1, 1, tzinfo=UTC)
"""The cutoff of a layer without a ttl in the statements built once for any layer: nothing is older."""

ITEMS_PREFIX = "agentmem_items."
"""Columns of the items table in statements that do not alias it."""


def before(moment: datetime, period: timedelta) -> datetime:
    """``moment - period``, or ``BEGINNING`` when that is before any date (a ttl of centuries)."""
    try:
        return max(moment - period, BEGINNING)
    except OverflowError:
        return BEGINNING


class Expiry:
    """The expiry rule at one moment (``now``) for the layers' ttls. Its SQL binds ``exp_``-names."""

    def __init__(self, now: datetime, ttls: Mapping[str, timedelta]) -> None:
        self.now = now
        self._ttls = dict(sorted(ttls.items()))  # sorted: the SQL built from it is the same each time

    def since(self, layer: str) -> datetime:
        """Items of ``layer`` updated at or before this have outlived its ttl (``BEGINNING``: none)."""
        ttl = self._ttls.get(layer)
        return BEGINNING if ttl is None else before(self.now, ttl)

    def one_layer(self, layer: str) -> dict[str, datetime]:
        """The values of ``ONE_LAYER_LIVE`` and ``ONE_LAYER_EXPIRED`` for ``layer``."""
        return {"exp_now": self.now, "exp_since": self.since(layer)}

    def live(self, prefix: str, layers: Collection[str] | None, params: dict[str, Any]) -> str:
        """The condition on columns of ``prefix`` (``"i."``) true for items not expired, for items of
        ``layers`` (None: any layer); the values it binds are added to ``params``."""
        params["exp_now"] = self.now
        terms = [f"({prefix}expires_at IS NULL OR {prefix}expires_at > :exp_now)"]
        for n, (layer, ttl) in enumerate(self._ttls.items()):
            if layers is not None and layer not in layers:
                continue
            params[f"exp_since_{n}"] = before(self.now, ttl)
            if layers is not None and len(layers) == 1:  # a plain range: the recency index serves it
                terms.append(f"{prefix}updated_at > :exp_since_{n}")
            else:
                params[f"exp_layer_{n}"] = layer
                terms.append(f"({prefix}layer <> :exp_layer_{n} OR {prefix}updated_at > :exp_since_{n})")
        return " AND ".join(terms)

    def expired(self, prefix: str, params: dict[str, Any]) -> str:
        """The negation of ``live`` for items of any layer (what cleanup removes)."""
        params["exp_now"] = self.now
        terms = [f"{prefix}expires_at <= :exp_now"]
        for n, (layer, ttl) in enumerate(self._ttls.items()):
            params[f"exp_since_{n}"], params[f"exp_layer_{n}"] = before(self.now, ttl), layer
            terms.append(f"({prefix}layer = :exp_layer_{n} AND {prefix}updated_at <= :exp_since_{n})")
        return "(" + " OR ".join(terms) + ")"

    def clause(self, layers: Collection[str] | None = None, *, expired: bool = False) -> TextClause:
        """``live`` (or ``expired``) on the unaliased items table, values bound, for Core statements."""
        params: dict[str, Any] = {}
        sql = self.expired(ITEMS_PREFIX, params) if expired else self.live(ITEMS_PREFIX, layers, params)
        return typed(sql, params).bindparams(**params)


def typed(sql: str, params: Mapping[str, Any]) -> TextClause:
    """``text(sql)`` with its datetime parameters bound as stored datetimes (each backend's format).
    One per shape: parsing a read's text for its parameters cost more than running it."""
    return _text(sql, tuple(name for name, value in params.items() if isinstance(value, datetime)))


@lru_cache(maxsize=512)
def _text(sql: str, dated: tuple[str, ...]) -> TextClause:
    return text(sql).bindparams(*(bindparam(name, type_=UtcDateTime) for name in dated))


def text_rows(conn: Connection, sql: str, params: Mapping[str, Any]) -> list[Any]:
    """The rows of the text statement ``sql``. On SQLite the driver is handed the statement as written
    (its ``:name`` parameters are SQLite's own) and the datetimes as stored: a compile's recall runs
    several small statements, and SQLAlchemy's binding of each and its rows took a third of the time
    (30 rows: 113 us, 77 this way)."""
    if conn.dialect.name != "sqlite":
        return list(conn.execute(typed(sql, params), params).all())
    stored = _stored(conn.dialect)
    values = {name: stored(value) if isinstance(value, datetime) else value for name, value in params.items()}
    return fetched(conn, conn.exec_driver_sql(sql, values))


@lru_cache(maxsize=4)
def _stored(dialect: Dialect) -> Callable[[datetime], Any]:
    """A datetime as ``dialect`` stores it in a ``UtcDateTime`` column."""
    processor = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert processor is not None  # the type's own conversion, then its column type's
    return processor


# Built once, for the merge reads of one layer (see rows.py); ``Expiry.one_layer`` gives their values.
ONE_LAYER_LIVE = typed(
    f"({ITEMS_PREFIX}expires_at IS NULL OR {ITEMS_PREFIX}expires_at > :exp_now)"
    f" AND {ITEMS_PREFIX}updated_at > :exp_since",
    {"exp_now": BEGINNING, "exp_since": BEGINNING},
)
# Its negation in two parts, each one index range of a scope's live items (an OR of both would not be):
# past the layer's ttl (``ix_agentmem_items_recent``), and past the item's own date
# (``ix_agentmem_items_expiry``, which holds only items that have one).
ONE_LAYER_OUTLIVED = typed(f"{ITEMS_PREFIX}updated_at <= :exp_since", {"exp_since": BEGINNING})
ONE_LAYER_PAST_DATE = typed(
    f"{ITEMS_PREFIX}expires_at <= :exp_now AND {ITEMS_PREFIX}updated_at > :exp_since",
    {"exp_now": BEGINNING, "exp_since": BEGINNING},
)
