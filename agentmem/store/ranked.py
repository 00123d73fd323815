"""The compile read in SQL: a scope's live items scored by relevance, whole or only a layer's top rows.

A layer's priority order (what a token budget takes first) is score, then recency, then count (for
layers that rank by it), then id; best first. Its top ``limit`` rows are read as a few small parts,
each with its own LIMIT: the rows matching the query, ranked as the full-text pool is read, in that
order (a CTE, ``top_n``); then per visible agent key and session key, the rows not matching (score 0,
newest first: an index range of ``ix_agentmem_items_recent``), read only as far as the matched top
leaves room for them. The union of the parts holds the layer's top ``limit``, and the outer ORDER BY
puts them first, so the read is exact without ever scoring or sorting every row. A layer read whole
beside them is one index range, joined to the pool for its matched rows' scores; when every layer is
read whole (no budget), the rows are scored and ordered in Python instead (``every``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import attrgetter
from typing import Any, NamedTuple

from sqlalchemy import Connection

from ..scope import Scope
from . import search
from .expiry import Expiry, typed
from .rows import ContextRow, driver_rows
from .tables import MAX_LIMIT

_COLUMNS = "i.id, i.layer, i.key, i.line, i.agent_id, i.updated_at, i.count"  # ContextRow's
_ORDER = (("id", False), ("updated_at", True), ("score", True), ("layer", False))
"""``run``'s order of a whole read's rows (whose tie is 0), by ``ContextRow`` field, the least
significant first, and whether the greatest comes first."""


_NARROWER = (
    ("i.agent_id = '' AND i.session_scope = ''", "(o.agent_id <> '' OR o.session_scope <> '')"),
    ("i.agent_id <> '' AND i.session_scope = ''", "o.session_scope <> ''"),
    ("i.agent_id = '' AND i.session_scope <> ''", "o.agent_id <> '' AND o.session_scope <> ''"),
)
"""Each kind of row a narrower one may hide, and the rows narrower than it: a session's own row is
narrower than a user-wide one, then an agent's own row than a shared one (``narrowest``'s order)."""


class Top(NamedTuple):
    """Read only a layer's first ``limit`` rows in priority order; ``by_count``: count ranks them too."""

    limit: int
    by_count: bool = False


class TopicFilter(NamedTuple):
    """Of the rows of ``layers``, keep those whose value's ``topics`` list has one of ``topics``, compared
    lowercased (each given topic is matched by its lowercase form and by itself with only ASCII
    letters lowercased, as SQLite's ``lower`` folds a stored one); rows of other layers are kept."""

    topics: tuple[str, ...]
    layers: frozenset[str]

    @property
    def spellings(self) -> list[str]:
        return sorted({form for t in self.topics for form in (t.lower(), _ascii_lower(t))})


def _ascii_lower(text: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in text)


class RankedRead:
    """Builds the arms of one compile read and runs them as one statement; ``search`` uses its parts."""

    def __init__(
        self,
        conn: Connection,
        scope: Scope,
        scores: Mapping[int, float] | None,
        expiry: Expiry,
        topics: TopicFilter | None = None,
    ) -> None:
        """``scores``: the relevance of the rows that have any (``recall.relevance``), by pk.
        ``topics``: keep only the rows the filter keeps (in every arm: see ``live``)."""
        self.conn = conn
        self.scope = scope
        self.expiry = expiry
        self.match = search.scored(conn, scores) if scores else None
        self.params: dict[str, Any] = {"user": scope.user_id, **(self.match.params if self.match else {})}
        self.postgres = conn.dialect.name == "postgresql"
        self.topics = topics
        if topics is not None:  # one parameter however many topics: a JSON array on SQLite
            self.params["topics"] = topics.spellings if self.postgres else json.dumps(topics.spellings)
        self.ctes: list[str] = []  # what ``top`` reads twice, defined once in the statement
        self._bound: dict[tuple[str, str], str] = {}

    def _bind(self, prefix: str, values: Iterable[str]) -> str:
        """Bound names for ``values``; a value bound before keeps its name, so a statement of many
        parts stays within psycopg's cache of parsed statements (at most 50 parameters)."""
        names = []
        for value in values:
            name = self._bound.get((prefix, value))
            if name is None:
                name = self._bound[prefix, value] = f"{prefix}{len(self.params)}"
                self.params[name] = value
            names.append(f":{name}")
        return ", ".join(names)

    def live(
        self, layers: Sequence[str], agents: Sequence[str], sessions: Sequence[str] | None = None
    ) -> str:
        """The condition on ``i`` for the user's live rows of ``layers``, ``agents`` and ``sessions``
        (default: every session key the scope sees). One range of the live-key index per key pair."""
        sessions = self.scope.visible_session_keys if sessions is None else sessions
        return (
            f"i.user_id = :user AND i.agent_id IN ({self._bind('a', agents)})"
            f" AND i.session_scope IN ({self._bind('s', sessions)})"
            f" AND i.layer IN ({self._bind('l', layers)}) AND i.valid_to IS NULL"
            f" AND {self.expiry.live('i.', layers, self.params)}{self._topical(layers)}"
        )

    def _topical(self, layers: Sequence[str]) -> str:
        """The topic filter's condition on ``i`` for rows of ``layers`` (empty when none applies). On
        PostgreSQL ``i`` may be the rank pool, without ``value``: the row is looked up by its pk."""
        filtered = [layer for layer in layers if self.topics is not None and layer in self.topics.layers]
        if not filtered:
            return ""
        if self.postgres:
            listed = "CASE WHEN json_typeof(v.value -> 'topics') = 'array' THEN v.value -> 'topics' END"
            has = (
                f"EXISTS (SELECT 1 FROM agentmem_items v, json_array_elements_text({listed}) t(topic)"
                " WHERE v.pk = i.pk AND lower(t.topic) = ANY(:topics))"
            )
        else:
            listed = "CASE json_type(i.value, '$.topics') WHEN 'array' THEN i.value END"
            has = (
                f"EXISTS (SELECT 1 FROM json_each({listed}, '$.topics') t"
                " WHERE lower(t.value) IN (SELECT value FROM json_each(:topics)))"
            )
        if len(filtered) == len(layers):
            return f" AND {has}"
        return f" AND (i.layer NOT IN ({self._bind('l', filtered)}) OR {has})"

    def narrowest(self, layers: Sequence[str], agents: Sequence[str], sessions: Sequence[str]) -> str:
        """A condition on ``i`` (empty when none is needed) keeping, of rows of one key the scope sees
        from several of its scopes, the narrowest: a session's own item hides a user-wide one, then an
        agent's own item hides a shared one (as ``scope.prefer_agent`` does). Each candidate is a
        lookup in the live-key index. Rows from the narrowest scope the scope has are never hidden; an
        expired item hides nothing: it is gone."""
        scope = self.scope
        if not self._broader(agents, sessions):
            return ""
        # Where the scope narrows only one way, the narrower item is one exact key of the index.
        agent_keys = (scope.agent_key,) if scope.session_id is None else scope.visible_agent_keys
        session_keys = (scope.session_key,) if scope.agent_id is None else scope.visible_session_keys
        # NOT (broader AND EXISTS ...), not a bare NOT EXISTS: PostgreSQL would plan that as an anti
        # join over the whole range, where this stays a per-row index lookup under the arm's LIMIT.
        return (
            " AND NOT ((i.session_scope = '' OR i.agent_id = '')"
            " AND EXISTS (SELECT 1 FROM agentmem_items o WHERE o.user_id = i.user_id"
            f" AND o.agent_id IN ({self._bind('a', agent_keys)})"
            f" AND o.session_scope IN ({self._bind('s', session_keys)})"
            " AND o.layer = i.layer AND o.key = i.key AND o.valid_to IS NULL"
            f" AND {self.expiry.live('o.', layers, self.params)}"
            " AND ((o.session_scope <> '' AND i.session_scope = '')"
            " OR (o.session_scope = i.session_scope AND o.agent_id <> '' AND i.agent_id = ''))))"
        )

    def _broader(self, agents: Sequence[str], sessions: Sequence[str]) -> bool:
        """Whether ``agents`` and ``sessions`` hold a key broader than the scope's own."""
        scope = self.scope
        return (scope.agent_id is not None and "" in agents) or (
            scope.session_id is not None and "" in sessions
        )

    def narrowest_listed(self, layers: Sequence[str]) -> str:
        """``narrowest`` for a read of every row of ``layers`` the scope sees. On SQLite the keys of
        the rows that hide others are listed once (a subquery run once) instead of looked up for each
        row: 1,200 rows, 0.4 ms less. The list holds at most the scope's rows of ``layers``. Each key is
        one string, "layer:key" (a layer's name has no ":"): SQLite checks a row value against
        such a list by walking all of it. PostgreSQL keeps the lookup per row: once a list outgrows
        its work_mem, it would walk the list for each row too."""
        agents, sessions = self.scope.visible_agent_keys, self.scope.visible_session_keys
        if self.postgres or not self._broader(agents, sessions):
            return self.narrowest(layers, agents, sessions)
        keys = (
            "SELECT o.layer || ':' || o.key FROM agentmem_items o WHERE o.user_id = :user"
            f" AND o.agent_id IN ({self._bind('a', agents)})"
            f" AND o.session_scope IN ({self._bind('s', sessions)})"
            f" AND o.layer IN ({self._bind('l', layers)}) AND o.valid_to IS NULL"
            f" AND {self.expiry.live('o.', layers, self.params)}"
        )
        shared, own_agent = "" in agents, any(agents)
        user_wide, own_session = "" in sessions, any(sessions)
        needed = (
            shared and user_wide,
            own_agent and user_wide and own_session,
            shared and own_session and own_agent,
        )
        hidden = " OR ".join(
            f"({row} AND i.layer || ':' || i.key IN ({keys} AND {narrower}))"
            for (row, narrower), wanted in zip(_NARROWER, needed, strict=True)
            if wanted
        )
        return f" AND NOT ({hidden})"

    def whole(self, layers: Sequence[str]) -> list[str]:
        """The SELECT of every live row of ``layers`` the scope sees, the narrowest of each key: one
        range of the live-key index, joined to the query's pool for the matched rows' scores."""
        agents, sessions = self.scope.visible_agent_keys, self.scope.visible_session_keys
        where = self.live(layers, agents, sessions) + self.narrowest(layers, agents, sessions)
        if self.match is None:
            return [f"SELECT {self._cols(self._zero, '0')} FROM agentmem_items i WHERE {where}"]
        score = f"COALESCE(f.rank, {self._zero})"
        return [
            f"SELECT {self._cols(score, '0')} FROM agentmem_items i"
            f" LEFT JOIN fts_hits f ON f.pk = i.pk WHERE {where}"
        ]

    def every(
        self, layers: Sequence[str], scores: Callable[[], Mapping[int, float] | None]
    ) -> list[ContextRow]:
        """Every live row of ``layers`` the scope sees, the narrowest of each key, in ``run``'s order,
        each scored from ``scores()`` (pk: relevance; not the read's own match), asked for only when
        there is a row to score. One range of the live-key index, scored and ordered here: a third of
        the cost of the database's join and sort (1,200 rows: 0.3 ms against 1.2), and the same
        order: floats, timestamps, ints and ids compare in SQL as in Python."""
        agents, sessions = self.scope.visible_agent_keys, self.scope.visible_session_keys
        sql = f"SELECT {_COLUMNS}, i.pk FROM agentmem_items i WHERE {self.live(layers, agents, sessions)}"
        sql += self.narrowest_listed(layers)
        found = driver_rows(self.conn, typed(sql, self.params), self.params)
        relevance = ((scores() if found else None) or {}).get
        rows = [
            ContextRow(id_, layer, key, line, agent, updated, count, relevance(pk, 0.0))
            for id_, layer, key, line, agent, updated, count, pk in found
        ]
        for key, best_first in _ORDER:  # stable sorts, the least significant key first
            rows.sort(key=attrgetter(key), reverse=best_first)
        return rows

    def top(self, layer: str, top: Top) -> list[str]:
        """SELECTs holding the first ``top.limit`` live rows of ``layer`` the scope sees in its priority
        order. Without a query, one arm per agent key and session key, each an index range in that
        order. With one, the matched rows' top (``top_n``, from the pool), then, per key pair, the
        unmatched rows (score 0, newest first) only as far as positive scores leave room: on
        PostgreSQL none when the top holds ``limit`` of them, on SQLite a LIMIT of what is left."""
        limit = min(int(top.limit), MAX_LIMIT)
        tie = "i.count" if top.by_count else "0"
        recent = f"i.updated_at DESC{', i.count DESC' if top.by_count else ''}, {self.id_order('i.')}"
        pairs = [(a, s) for a in self.scope.visible_agent_keys for s in self.scope.visible_session_keys]
        if self.match is None:
            return [
                f"SELECT {self._cols(self._zero, tie)} FROM agentmem_items i WHERE {self._where(layer, a, s)}"
                f" ORDER BY {recent} LIMIT {limit}"
                for a, s in pairs
            ]
        agents, sessions = self.scope.visible_agent_keys, self.scope.visible_session_keys
        matched = self.live([layer], agents, sessions) + self.narrowest([layer], agents, sessions)
        name = f"top_n{len(self.ctes)}"
        self.ctes.append(
            f"{name} AS (SELECT {self._cols(self.match.score, tie)} FROM {self.match.source}"
            f" WHERE {matched} ORDER BY score DESC, {recent} LIMIT {limit})"
        )
        positive = f"(SELECT count(*) FROM {name} WHERE score > 0)"
        room = (
            (f" AND {positive} < {limit}", str(limit))
            if self.postgres
            else ("", f"max(0, {limit} - {positive})")
        )
        return [f"SELECT * FROM {name}"] + [
            f"SELECT {self._cols(self._zero, tie)} FROM agentmem_items i WHERE {self.match.unmatched}"
            f" AND {self._where(layer, a, s)}{room[0]} ORDER BY {recent} LIMIT {room[1]}"
            for a, s in pairs
        ]

    @property
    def _zero(self) -> str:
        return "CAST(0 AS real)" if self.postgres else "0.0"  # ts_rank is a real

    @staticmethod
    def _cols(score: str, tie: str) -> str:
        """The columns every arm selects (``ContextRow``'s, then the tie breaker before the id)."""
        return f"{_COLUMNS}, {score} AS score, {tie} AS tie"

    def _where(self, layer: str, agent: str, session: str) -> str:
        return self.live([layer], (agent,), (session,)) + self.narrowest([layer], (agent,), (session,))

    def id_order(self, prefix: str) -> str:
        """Ids compared as Python compares str (PostgreSQL would use the database's collation)."""
        return f'{prefix}id COLLATE "C"' if self.postgres else f"{prefix}id"

    def run(self, arms: Sequence[str]) -> list[Any]:
        """The arms' rows, by layer, each layer's in priority order."""
        if not arms:
            return []
        union = " UNION ALL ".join(f"SELECT * FROM ({arm}) a{n}" for n, arm in enumerate(arms))
        # The compiler's priority: floats, timestamps, ints and ids compare in SQL as in Python.
        with_ = self.match.with_ if self.match else ""
        if self.ctes:
            with_ = (f"{with_.rstrip()}, " if with_ else "WITH ") + ", ".join(self.ctes) + " "
        order = f"layer, score DESC, updated_at DESC, tie DESC, {self.id_order('')}"
        sql = f"{with_}SELECT * FROM ({union}) u ORDER BY {order}"
        return driver_rows(self.conn, typed(sql, self.params), self.params)  # text: no types to apply
