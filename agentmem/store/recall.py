"""What a query recalls: each of the scope owner's relevant rows with its relevance, computed once per
compile or search, before the read that orders and cuts by it (``ranked.RankedRead``).

1. Lexical: the query's words (no stop words) scored per term by each backend's full-text index
   (``search.term_scores``).
2. Meaning (when an embedding model is configured): the rows nearest the query's vector, fused with
   the lexical ranking by reciprocal rank (each list counts by rank, not by its incomparable scores).
3. Pseudo-relevance feedback: the words the best few hits (of 1 and 2) share, which the query did not
   say, are searched too at a lower weight, and the lists fused anew. A question says "When did she go
   to the support group?"; the facts it needs say "LGBTQ support group", "group meeting",
   "transgender": the first hits bring them.
4. Neighbours: what was learned right before and after a strong hit, in the same session, scored just
   below it. A fact's context (the question before an answer, the turn that says when) is often in
   the turn next to it, in words the query does not share.

Only the rows the scope sees are ranked: hits, feedback words, neighbours and fused ranks come from
rows that pass the conditions ``RankedRead.live`` renders (live, of the scope's agents, sessions,
layers and topics), so another agent's or session's rows never change what this scope reads, nor a
visible row's rank. What the index knows of a word across the owner's rows (BM25's document
frequency; PostgreSQL's rarity weight) is the one statistic drawn from all of them.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice, takewhile
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from ..scope import Scope
from ..text import words
from . import search
from .expiry import Expiry, text_rows

if TYPE_CHECKING:
    from .ranked import TopicFilter

FEEDBACK_HITS = 3
"""How many of the best visible hits lend their words to the query."""
FEEDBACK_TERMS = 8
"""At most this many feedback words, the ones most of those hits share."""
FEEDBACK_POOL = 500
"""The rows the feedback words' pools consider (at least ``search.MIN_TERM_POOL`` each)."""
FEEDBACK_WEIGHT = 0.3
"""A feedback word counts this much of a query word (times the share of the hits that have it)."""
RRF_K = 10
"""Reciprocal rank fusion's constant: a row's fused score is the sum of 1 / (RRF_K + its rank)."""
DENSE_HITS = 200
"""How many of the nearest rows by meaning join the ranking."""
SEARCH_SIMILARITY = 0.3
"""The cosine similarity a row found by meaning alone needs to be a ``search`` hit (compile ranks all of
the nearest rows: the least near only fill a budget's end)."""
STRONG_HITS = 8
"""Of how many of the best visible hits the neighbours are recalled."""
NEIGHBOUR_SHARE = 0.7
"""A neighbour's relevance: this share of its hit's (when that is more than its own), for each row
between them."""
NEIGHBOUR_STEPS = 2
"""How many rows on each side of a strong hit are its neighbours."""
CONTEXT_POOL = 300
"""How many of the best rows by words are ranked (compile: with their neighbours, the best this many of
all); the others follow in recency order, as rows without a match do. More than a budget of several
thousand tokens holds, and the read joins only these to the items: 500 cost compile 2.5 ms more at
5,000 facts and recalled no more on LOCOMO (benchmarks/bench_locomo.py)."""

DenseHits = Callable[[Connection, Scope], Iterator[tuple[int, float]]]
"""The owner's rows by nearness to the query's vector (pk, similarity), best first, whatever their state
(the caller checks what it ranks)."""


def relevance(
    conn: Connection,
    scope: Scope,
    query: str,
    layers: Sequence[str],
    expiry: Expiry,
    dense: DenseHits | None = None,
    topics: TopicFilter | None = None,
    *,
    context: bool = True,
) -> dict[int, float]:
    """The relevance to ``query`` of the scope owner's rows that have any (pk: score, higher is better).

    ``layers``, ``topics``: those rows lend feedback words and neighbours (the rows the read shows).
    ``context``: for a context to read (compile), with feedback words and neighbours; without, only
    rows that match the query's own words or meaning (search: what it returns must show why)."""
    terms = [search.Term(word) for word in search.query_terms(query)]
    lexical = search.term_scores(conn, scope, terms)
    if not lexical and dense is None:
        return {}
    by_meaning = dense(conn, scope) if dense is not None else iter(())
    if not context:  # search: a row found by meaning alone must be near enough to show why
        by_meaning = takewhile(lambda hit: hit[1] >= SEARCH_SIMILARITY, by_meaning)
    # Only the rows the scope sees are ranked: a row another agent or session keeps (or the topics
    # filter leaves out, or that expired) must not change a visible row's rank or score, nor take the
    # place of one. Of the rows by words, the best CONTEXT_POOL visible are ranked (the read ranks no
    # more); of those by meaning, the nearest DENSE_HITS visible.
    visible = _Visible(conn, scope, layers, expiry, topics)
    best, nearest = visible.first(
        [_order(lexical, CONTEXT_POOL), (pk for pk, _ in by_meaning)], [CONTEXT_POOL, DENSE_HITS]
    )
    scores = _ranking(lexical, best, nearest, fused=dense is not None)
    if context and scores:  # the words the best hits (by words and meaning) share
        extra = _feedback_terms(terms, [visible.text_of[pk] for pk in _top(scores, FEEDBACK_HITS)])
        # A pool of their own, smaller: a feedback word counts less, and is often a common one.
        fed = search.term_scores(conn, scope, extra, FEEDBACK_POOL)
        for pk, score in fed.items():
            lexical[pk] = lexical.get(pk, 0.0) + score
        risen = {pk: lexical[pk] for pk in {*best, *fed}}  # no other visible row can rise above these
        [best] = visible.first([_order(risen, CONTEXT_POOL)], [CONTEXT_POOL])
        scores = _ranking(lexical, best, nearest, fused=dense is not None)
    if not context:
        return scores
    if scores:  # every scored row is one the scope sees: its best are the strong hits
        scores = _with_neighbours(scores, visible.neighbours(_top(scores, STRONG_HITS)))
    if len(scores) > CONTEXT_POOL:
        scores = {pk: scores[pk] for pk in _top(scores, CONTEXT_POOL)}
    return scores


def _ranking(
    lexical: Mapping[int, float], best: Sequence[int], nearest: Sequence[int], *, fused: bool
) -> dict[int, float]:
    """The relevance of the ``best`` rows by words and the ``nearest`` by meaning (all visible): their
    words' scores, or both lists fused by rank when ``fused``."""
    by_words = {pk: lexical[pk] for pk in [*best, *(pk for pk in nearest if pk in lexical)]}
    return _fused(by_words, nearest) if fused else by_words


def _feedback_terms(terms: Sequence[search.Term], hits: Sequence[str]) -> list[search.Term]:
    """The words most of the hits share that the query does not have, each weighed by that share."""
    said = {term.word for term in terms}
    counts = Counter(
        word
        for text in hits
        for word in dict.fromkeys(words(text))  # in order: ties go to the better hit's words
        if word not in said and word not in search.STOP_WORDS and not word.isdigit()
    )
    shared = [(word, n) for word, n in counts.most_common(FEEDBACK_TERMS) if n > 1]
    room = search.MAX_TERMS - len(terms)
    return [search.Term(word, FEEDBACK_WEIGHT * n / len(hits)) for word, n in shared[:room]]


def _fused(lexical: Mapping[int, float], nearest: Sequence[int]) -> dict[int, float]:
    """Reciprocal rank fusion of the lexical scores and the nearest rows by meaning (best first)."""
    fused: dict[int, float] = {}
    for ranking in (_top(lexical, len(lexical)), nearest):
        for rank, pk in enumerate(ranking, 1):
            fused[pk] = fused.get(pk, 0.0) + 1 / (RRF_K + rank)
    return fused


def _with_neighbours(scores: Mapping[int, float], neighbours: Mapping[int, list[int]]) -> dict[int, float]:
    """Each neighbour at least NEIGHBOUR_SHARE of its hit's score, to the power of its distance in rows."""
    raised = dict(scores)
    for hit, near in neighbours.items():
        before = sorted((pk for pk in near if pk < hit), reverse=True)
        after = sorted(pk for pk in near if pk > hit)
        for side in (before, after):
            for step, pk in enumerate(side, 1):
                raised[pk] = max(raised.get(pk, 0.0), NEIGHBOUR_SHARE**step * scores[hit])
    return raised


def _top(scores: Mapping[int, float], n: int, among: Iterable[int] | None = None) -> list[int]:
    """The ``n`` best pks (of ``among``, default all), best first; among equal scores the newest (highest
    pk) first, as reads break ties."""
    # (score, pk) pairs: they compare without a call per item
    pairs = [(scores[pk], pk) for pk in (scores if among is None else among)]
    # A heap pays per item for a large n: sorting them all is then cheaper
    best = heapq.nlargest(n, pairs) if n * 8 < len(pairs) else sorted(pairs, reverse=True)[:n]
    return [pk for _, pk in best]


def _order(scores: Mapping[int, float], first: int) -> Iterator[int]:
    """The pks best first, as ``_top`` orders them: the first ``first`` at once, the rest sorted only
    when asked for."""
    head = _top(scores, first)
    yield from head
    if len(scores) > len(head):
        taken = set(head)
        yield from _top(scores, len(scores), [pk for pk in scores if pk not in taken])


def _rows_of(conn: Connection, pks: Iterable[int], alias: str = "i") -> tuple[str, str, Any]:
    """The FROM clause of the rows of ``pks`` as ``alias``, its condition ("" for none) and its one
    bound value (``:among``): a statement of one shape whatever the pks, parsed once. Each row is looked
    up by its pk (SQLite would rather walk the scope's every row and look each up in the list;
    PostgreSQL would hash-join a list it is given as a table)."""
    among = sorted(set(pks))
    if conn.dialect.name == "postgresql":
        return f"agentmem_items {alias}", f"{alias}.pk = ANY(CAST(:among AS bigint[]))", among
    rows = f"json_each(:among) a CROSS JOIN agentmem_items {alias} ON {alias}.pk = a.value"
    return rows, "", json.dumps(among)


def _where(*conditions: str) -> str:
    present = [c for c in conditions if c]
    return f" WHERE {' AND '.join(present)}" if present else ""


_NEXT = (
    "(SELECT o.pk FROM agentmem_items o WHERE o.user_id = h.user_id AND o.agent_id = h.agent_id"
    " AND o.layer = h.layer AND o.pk {op} h.pk ORDER BY o.pk {order} LIMIT 1 OFFSET {step})"
)
"""The pk of the row ``step`` rows after (``op`` ">", ``order`` ASC) or before ``h`` of its owner,
agent key and layer."""


class _Visible:
    """Reads of the best-scored rows the scope sees live in ``layers``."""

    def __init__(
        self,
        conn: Connection,
        scope: Scope,
        layers: Sequence[str],
        expiry: Expiry,
        topics: TopicFilter | None,
    ) -> None:
        from .ranked import RankedRead  # it reads what this module computes

        self.conn = conn
        read = RankedRead(conn, scope, None, expiry, topics)
        agents, sessions = scope.visible_agent_keys, scope.visible_session_keys
        self.where = (
            read.live(layers, agents, sessions) + read.narrowest(layers, agents, sessions) if layers else ""
        )
        self.params: dict[str, Any] = read.params
        # SQLite's CROSS JOIN keeps the order of the tables as written (PostgreSQL's has no ON), and
        # PostgreSQL's planner would otherwise fold a CTE into the statement
        self.join, self.materialized = ("JOIN", "MATERIALIZED ") if read.postgres else ("CROSS JOIN", "")
        self.checked: set[int] = set()
        self.text_of: dict[int, str] = {}
        """The text of each checked row the scope sees."""

    def first(self, orders: Sequence[Iterator[int]], counts: Sequence[int]) -> list[list[int]]:
        """Of each order (pks, best first), its first ``count`` rows the scope sees. Rows are checked
        ``count`` at a time, every order's together: one statement when the first rows are visible."""
        found: list[list[int]] = [[] for _ in orders]
        open_ = set(range(len(orders))) if self.where else set()  # no layer: nothing to see
        while open_:
            chunks = {n: list(islice(orders[n], counts[n])) for n in open_}
            self.check(pk for chunk in chunks.values() for pk in chunk)
            for n, chunk in chunks.items():
                found[n] += [pk for pk in chunk if pk in self.text_of][: counts[n] - len(found[n])]
                if len(chunk) < counts[n] or len(found[n]) == counts[n]:
                    open_.discard(n)  # the order ran out, or gave enough
        return found

    def neighbours(self, hits: Sequence[int]) -> dict[int, list[int]]:
        """Of each hit, the rows the scope sees of the same owner, agent key and layer learned right
        before and after it, when in the same session, or in the same write (one learn, one
        ``add_many``) for rows of no session. Only the very next rows are looked at (on SQLite each one
        step of ``ix_agentmem_items_user``): one of another session ends the walk."""
        found: dict[int, list[int]] = {pk: [] for pk in hits}
        if not self.where:
            return found
        near = ", ".join(
            _NEXT.format(op=op, order=order, step=step)
            for op, order in (("<", "DESC"), (">", "ASC"))
            for step in range(NEIGHBOUR_STEPS)
        )
        rows, among, value = _rows_of(self.conn, hits, "h")
        pairs = (
            f"SELECT h.pk AS hit, n.pk FROM {rows} {self.join} agentmem_items n ON n.pk IN ({near})"
            " AND (n.session_id = h.session_id OR (h.session_id IS NULL AND n.session_id IS NULL"
            f" AND n.created_at = h.created_at)){_where(among)}"
        )
        # The pairs first, then each neighbour by its pk: under the scope's conditions the planners
        # would rather walk the scope's rows and look for neighbours among them (SQLite: 8 ms at
        # 1,000 facts, PostgreSQL: seconds at 5,000).
        sql = (
            f"WITH pairs AS {self.materialized}({pairs}) SELECT p.hit, i.pk FROM pairs p"
            f" {self.join} agentmem_items i ON i.pk = p.pk{_where(self.where)}"
        )
        for hit, pk in text_rows(self.conn, sql, {**self.params, "among": value}):
            found[hit].append(pk)
        return found

    def check(self, pks: Iterable[int]) -> None:
        """Check the rows of ``pks`` not checked yet (``checked``); those the scope sees (live, of its
        layers and topics) join ``text_of``."""
        asked = {pk for pk in pks if pk not in self.checked}
        self.checked |= asked
        if not asked or not self.where:
            return
        rows, among, value = _rows_of(self.conn, asked)
        sql = f"SELECT i.pk, i.text FROM {rows}{_where(among, self.where)}"
        params = {**self.params, "among": value}
        self.text_of.update(text_rows(self.conn, sql, params))
