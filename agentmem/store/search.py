"""Full-text search over item text, always scoped to one owner (a user, or an agent's own memory: see
``Scope.owner``), ranked in SQL on both backends.

A query matches the rows containing any of its words (OR), each row scored higher for better; the
ranking considers a bounded pool of the user's matches (see ``RANK_POOL``).

SQLite: an FTS5 index (BM25, porter stemming) whose every word is prefixed by its owner's tag, digits
derived from ``Scope.owner`` (see ``owner_tag``): a query's terms carry the same tag, so FTS5 only walks
that owner's rows of each term, and BM25 weighs a term by how many of the owner's rows have it. (Schema
9 and before scoped by a separate ``owner`` phrase ANDed to each term, whose frequency BM25 worked out
by walking all of the owner's rows once per term: 3 ms per term at 100k rows.)

PostgreSQL: the column ``search_vector`` (a ``tsvector`` of the ``english`` configuration) with a
GIN index, ranked by ``ts_rank``. The ``english`` configuration stems words as SQLite's porter
tokenizer does; it also leaves out stop words, which carry next to no relevance under BM25 either.
Since schema 12 the code writes it (``index_items``), as it writes the ``words`` array: from the text
plus what PostgreSQL's parser cannot make of it, the CJK parts of ``text.words`` (see ``cjk_parts``).

Both backends index an item's topics (``topics_of``) with its text, so a topic's word finds the item;
the words merge candidates are found by (``may_have_words``) stay those of the text alone on
PostgreSQL, and on SQLite a topic word only adds a candidate the caller then compares by its text.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    Text,
    and_,
    bindparam,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.dialects import postgresql

from ..scope import Scope
from ..text import cjk_words, word_set, words
from .expiry import text_rows

FTS_TABLE = "agentmem_items_fts"
TS_CONFIG = "english"
MAX_TERMS = 32


def uses_fts(conn: Connection) -> bool:
    """Whether the index is FTS5, written by the code (SQLite); PostgreSQL computes its own."""
    return conn.dialect.name == "sqlite"


def owner_token(owner: str) -> str:
    """The ``owner`` column of schema 9 and before (``owner_tag`` replaced it)."""
    return "u" + hashlib.sha256(owner.encode()).hexdigest()[:24]


def owner_tag(token: str) -> str:
    """The prefix of the owner's indexed words, from its ``owner_token``: 15 digits (48 bits of the
    hash). Digits only, so the porter stemmer stems ``<tag><word>`` exactly as ``<word>`` (it counts
    vowels, and a run of digits adds none). Two owners sharing a tag could only see each other's rows
    ranked or offered as merge candidates, never read: every use joins the rows back to their scope."""
    return f"{int(token[1:13], 16):015d}"


def tagged(owner_tag: str, text: str) -> str:
    """The text as its row of the index holds it: each of its words (``text.words``) tagged."""
    return " ".join(owner_tag + word for word in words(text))


def topics_of(value: Any) -> list[str]:
    """The topics an item's value lists (layers whose schema has a ``topics`` field); [] otherwise."""
    topics = value.get("topics") if isinstance(value, dict) else None
    return [t for t in topics if isinstance(t, str)] if isinstance(topics, list) else []


def searched_text(text: str, value: Any) -> str:
    """What full-text search finds an item by: its text, then its topics."""
    topics = topics_of(value)
    return "\n".join([text, " ".join(topics)]) if topics else text


def search_document(text: str, value: Any) -> str:
    """PostgreSQL's ``search_vector`` source: the searched text, then the CJK parts of its words."""
    searched = searched_text(text, value)
    return "\n".join([searched, *cjk_words(searched)])


def index_items(conn: Connection, owner: str, items: Sequence[tuple[str, str, Any]]) -> None:
    """Index these stored items (id, text, value) of one owner (``Scope.owner``): one statement.

    Both backends index the text's words as ``text.words`` splits them, the words merge candidates
    are looked up by (see ``may_have_words``): SQLite's FTS5 row holds them, and the topics' words
    (``searched_text``), tagged (``tagged``) and joined by spaces, which its tokenizer cuts exactly
    where it cuts each word alone; PostgreSQL keeps the text's as the array ``words`` (GIN-indexed,
    schema 9), beside the ``search_vector`` of ranked search (``search_document``).
    """
    if not items:
        return
    if uses_fts(conn):
        tag = owner_tag(owner_token(owner))
        conn.exec_driver_sql(
            f"INSERT INTO {FTS_TABLE}(rowid, text) SELECT pk, ? FROM agentmem_items WHERE id = ?",
            [(tagged(tag, searched_text(text, value)), item_id) for item_id, text, value in items],
        )
    else:
        conn.execute(
            _SET_WORDS,
            [
                {"_id": item_id, "words": sorted(word_set(text)), "document": search_document(text, value)}
                for item_id, text, value in items
            ],
        )


def unindex_ids(conn: Connection, item_ids: Sequence[str]) -> None:
    """Drop these items from the index (before they are deleted: their pk is found by id)."""
    if uses_fts(conn):
        for part in _parts(item_ids):
            conn.exec_driver_sql(
                f"DELETE FROM {FTS_TABLE} WHERE rowid IN "
                f"(SELECT pk FROM agentmem_items WHERE id IN ({', '.join('?' * len(part))}))",
                tuple(part),
            )


def _parts(item_ids: Sequence[str], size: int = 500) -> list[Sequence[str]]:
    """Bounded IN lists: far below SQLite's limit on bound parameters."""
    return [item_ids[i : i + size] for i in range(0, len(item_ids), size)]


# English function words: in most texts, so a query with them would match (and rank) nearly every row
# for next to no relevance. PostgreSQL's ``english`` configuration leaves out the same kind of words;
# leaving them out of every query makes both backends match alike.
_STOP_WORDS = """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just me more
    most my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves s t m re ve ll d don doesn didn isn wasn aren won"""
STOP_WORDS = frozenset(_STOP_WORDS.split())


def query_terms(query: str) -> list[str]:
    """Distinct words of the query that say something (no stop words), in order, bounded."""
    return list(dict.fromkeys(w for w in words(query) if w not in STOP_WORDS))[:MAX_TERMS]


class Term(NamedTuple):
    """A query word and how much a match of it counts (1 for the query's own words)."""

    word: str
    weight: float = 1.0


# Ranking scores every row it considers, so it considers a bounded pool: each query term's newest
# matches, RANK_POOL shared among the terms (at least MIN_TERM_POOL each). A term rarer than its share
# brings every row that has it; a common one, which says little about relevance, only its newest. Rows
# left out read as unmatched (still in the recency order). So a read costs the same however many of a
# large memory's rows share a common word, and an old fact is still found by its rarer words.
RANK_POOL = 2_000
MIN_TERM_POOL = 100


def term_scores(
    conn: Connection, scope: Scope, terms: Sequence[Term], pool: int | None = None
) -> dict[int, float]:
    """The scope owner's rows in the terms' pools, by pk, each with its relevance (higher is better):
    the sum over the terms it has of the term's weight times its score for the term.

    SQLite: BM25 (FTS5, porter stems), which weighs a term by how few of the owner's rows have it.
    PostgreSQL: ``ts_rank`` (frequency in the row, ``english`` stems) times the term's rarity in its
    pool (``ts_rank`` alone knows nothing of how common a word is: "the user's name" would count as much
    as "kayak"). ``pool``: the rows considered, shared among the terms (default ``RANK_POOL``)."""
    if not terms:
        return {}
    share = max(MIN_TERM_POOL, (RANK_POOL if pool is None else pool) // len(terms))
    params: dict[str, Any]
    if uses_fts(conn):
        fts, tag = FTS_TABLE, owner_tag(owner_token(scope.owner))
        # words() yields only \w, "+" and "#", so quoting each term makes it a safe FTS5 string.
        pools = " UNION ALL ".join(
            f"SELECT * FROM (SELECT rowid, -bm25({fts}), {n} FROM {fts}"
            f" WHERE {fts} MATCH :fts_{n} ORDER BY rowid DESC LIMIT {share})"
            for n in range(len(terms))
        )
        params = {f"fts_{n}": f'"{tag}{term.word}"' for n, term in enumerate(terms)}
    else:
        # Each term on its own: a term that is only a stop word matches nothing instead of failing
        # the query, and no term is ever parsed as query syntax. Each pool is the planner's choice by
        # the term's frequency: a rare term's rows through the GIN index, a common term's by walking
        # the user's newest rows (``ix_agentmem_items_user_pk``) until its share is found.
        owned, params = _owned(scope)
        pools = " UNION ALL ".join(
            f"(SELECT pk, ts_rank(search_vector, q), {n} FROM agentmem_items,"
            f" plainto_tsquery('{TS_CONFIG}', :fts_{n}) q"
            f" WHERE {owned} AND search_vector @@ q ORDER BY pk DESC LIMIT {share})"
            for n in range(len(terms))
        )
        params |= {f"fts_{n}": term.word for n, term in enumerate(terms)}
    rows = text_rows(conn, pools, params)
    weights = [term.weight for term in terms]
    if not uses_fts(conn):  # BM25's inverse document frequency, of the pool (RANK_POOL rows at most)
        found = [0] * len(terms)
        for _, _, n in rows:
            found[n] += 1
        weights = [w * math.log(1 + RANK_POOL / max(1, f)) for w, f in zip(weights, found, strict=True)]
    scores: dict[int, float] = {}
    for pk, score, n in rows:
        scores[pk] = scores.get(pk, 0.0) + weights[n] * score
    return scores


class TextMatch(NamedTuple):
    """Relevance scores as SQL over ``agentmem_items`` aliased ``i`` (bound names start ``fts_``).

    ``with_`` starts the statement: it defines ``fts_hits``, the scored rows, each once with its rank.
    ``source`` is the FROM clause of those rows as ``i`` (on PostgreSQL only the columns of
    ``_POOLED``), ``score`` their relevance (higher is better) and ``unmatched`` the condition on ``i``
    alone for every other row.
    """

    with_: str
    source: str
    score: str
    unmatched: str
    params: dict[str, Any]


# The item columns a PostgreSQL rank pool keeps: what the compile read and search select, rank and
# filter on (``ranked.RankedRead``: its scope, liveness and narrowest-item conditions, its columns).
_POOLED = "i.pk, i.id, i.user_id, i.agent_id, i.session_scope, i.layer, i.key, i.line, i.updated_at, i.count,"
_POOLED += " i.valid_to, i.expires_at"


def scored(conn: Connection, scores: Mapping[int, float]) -> TextMatch:
    """The rows of ``scores`` (pk: relevance) as a statement's ``fts_hits``: two bound values, so a
    statement keeps its shape (and its place in the driver's statement cache) whatever the scores."""
    if uses_fts(conn):
        return TextMatch(
            # SQLite materializes a CTE used twice.
            with_="WITH fts_hits AS (SELECT CAST(key AS INTEGER) AS pk, value AS rank"
            " FROM json_each(:fts_pool)) ",
            # SQLite would rather walk the scope's index range (every row of a large scope) and probe
            # the pool for each; CROSS JOIN makes it read the pool first, as PostgreSQL's planner does.
            source="fts_hits f CROSS JOIN agentmem_items i ON i.pk = f.pk",
            score="f.rank",
            unmatched="i.pk NOT IN (SELECT pk FROM fts_hits)",
            params={"fts_pool": json.dumps(scores)},
        )
    return TextMatch(
        with_=(
            f"WITH fts_hits AS MATERIALIZED (SELECT {_POOLED}, v.rank FROM"  # once, however many parts use it
            " unnest(CAST(:fts_pks AS bigint[]), CAST(:fts_ranks AS float8[])) v(pk, rank)"
            " JOIN agentmem_items i ON i.pk = v.pk) "
        ),
        source="fts_hits i",
        score="i.rank",
        unmatched="i.pk NOT IN (SELECT pk FROM fts_hits)",
        params={"fts_pks": list(scores), "fts_ranks": list(scores.values())},
    )


class WordProbe(NamedTuple):
    """``may_have_words`` as a statement's shape and its values: statements of one shape are built
    once (see ``rows.exact_matching``). ``shape``: ``"fts"`` (SQLite: one MATCH of ``probe``),
    ``"all"`` (every row of the owner) or, on PostgreSQL, the number of word groups of each probe."""

    shape: str | tuple[int, ...]
    params: dict[str, Any]


def may_have_words(conn: Connection, scope: Scope, probes: Sequence[Sequence[Sequence[str]]]) -> WordProbe:
    """A probe for the scope owner's items whose text, as ``text.words`` splits it, has a word of each
    group of one of ``probes`` (and some others: the caller checks); ``word_probe_pks`` makes its SQL.

    Served by each backend's word index (see ``index_items``): SQLite looks each word up as the phrase
    its tokenizer makes of it (so "c++" as "c", which every text having "c++" has too); PostgreSQL
    compares the words themselves. A group with a stop word rules out next to nothing at a high cost
    (most rows have it), so it is left out while a probe has other groups.
    """
    found = [[g for g in groups if not STOP_WORDS.intersection(g)] or list(groups[:1]) for groups in probes]
    if not uses_fts(conn):
        params = {f"probe_{i}_{j}": sorted(g) for i, groups in enumerate(found) for j, g in enumerate(groups)}
        return WordProbe(tuple(len(groups) for groups in found), params)
    # A word of only "_", "+" or "#" makes no token to look up: its group rules nothing out.
    found = [[g for g in groups if all(map(_HAS_TOKEN.search, g))] for groups in found]
    if not all(found):
        return WordProbe("all", {})
    tag = owner_tag(owner_token(scope.owner))
    terms = (
        " AND ".join("(" + " OR ".join(f'"{tag}{w}"' for w in g) + ")" for g in groups) for groups in found
    )
    return WordProbe("fts", {"probe": " OR ".join(f"({t})" for t in terms)})


def word_probe_pks(shape: str | tuple[int, ...], pk: Any) -> Select[Any]:
    """The SELECT of pks of a ``WordProbe`` of this shape (the owner's user id bound as ``scope_user``)."""
    items = pk.table
    mine = items.c.user_id == bindparam("scope_user")
    if shape == "all":
        return select(pk).where(mine)
    if shape == "fts":
        matches = text(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :probe")
        return select(matches.columns(rowid=Integer).subquery().c.rowid)
    assert isinstance(shape, tuple)
    words = literal_column(f"{items.name}.words", _WORDS.type)  # not a model column (see index_items)
    matching = (
        and_(*(words.overlap(bindparam(f"probe_{i}_{j}", type_=_WORDS.type)) for j in range(groups)))
        for i, groups in enumerate(shape)
    )
    return select(pk).where(mine, or_(*matching))


def _owned(scope: Scope) -> tuple[str, dict[str, str]]:
    """The condition (and its parameters) on ``agentmem_items`` for the rows of the scope's owner, as
    ``rows.owned`` states it for the Core statements (this module's SQL is text)."""
    if scope.kind == "agent":  # every agent's own memory has the same user_id
        return "user_id = :fts_user AND agent_id = :fts_agent", {
            "fts_user": scope.user_id,
            "fts_agent": scope.agent_key,
        }
    return "user_id = :fts_user", {"fts_user": scope.user_id}


# What FTS5's unicode61 tokenizer keeps of a word of text.words: letters, digits (and marks).
_HAS_TOKEN = re.compile(r"[^_+#]")
_WORDS = column("words", postgresql.ARRAY(Text))
_SET_WORDS = (
    table("agentmem_items", column("id"), _WORDS, column("search_vector"))
    .update()
    .where(column("id") == bindparam("_id"))
    .values(
        words=bindparam("words", type_=_WORDS.type),
        search_vector=func.to_tsvector(literal_column(f"'{TS_CONFIG}'::regconfig"), bindparam("document")),
    )
)
