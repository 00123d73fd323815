"""Full-text search over item text, always scoped to one owner (a user, or an agent's own memory: see
``Scope.owner``), ranked in SQL on both backends.

A query matches the rows containing any of its words (OR), each row scored higher for better.

SQLite: an FTS5 index (BM25, porter stemming). Each row also carries an ``owner`` token derived from
``Scope.owner``, and every query is ``owner:<token> AND (terms)``, so FTS5 only walks that owner's rows.

PostgreSQL: the generated column ``search_vector`` (``to_tsvector('english', text)``, schema 8) with a
GIN index, ranked by ``ts_rank``. The ``english`` configuration stems words as SQLite's porter
tokenizer does; it also leaves out stop words, which carry next to no relevance under BM25 either.
The column is computed by the database, so every write (and every row older than schema 8) is indexed
without the code writing it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Integer, LargeBinary, and_, cast, func, or_, text, true

from ..text import words

FTS_TABLE = "agentmem_items_fts"
TS_CONFIG = "english"
MAX_TERMS = 32


def uses_fts(conn: Connection) -> bool:
    """Whether the index is FTS5, written by the code (SQLite); PostgreSQL computes its own."""
    return conn.dialect.name == "sqlite"


def owner_token(owner: str) -> str:
    return "u" + hashlib.sha256(owner.encode()).hexdigest()[:24]


def index_ids(conn: Connection, owner: str, item_ids: Sequence[str]) -> None:
    """Index the stored text of these items of one owner: one statement (per 500 items)."""
    if uses_fts(conn):
        for part in _parts(item_ids):
            conn.exec_driver_sql(
                f"INSERT INTO {FTS_TABLE}(rowid, text, owner) SELECT pk, text, ? FROM agentmem_items "
                f"WHERE id IN ({', '.join('?' * len(part))})",
                (owner_token(owner), *part),
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


def match_expression(owner: str, query: str) -> str | None:
    """An FTS5 MATCH expression for the user's rows containing any query term, or None."""
    terms = query_terms(query)
    if not terms:
        return None
    # words() yields only \w characters, so quoting each term makes it a safe FTS5 string.
    return f"owner:{owner_token(owner)} AND (" + " OR ".join(f'"{t}"' for t in terms) + ")"


class TextMatch(NamedTuple):
    """A query's full-text match as SQL over ``agentmem_items`` aliased ``i`` (bound names start ``fts_``).

    ``source`` is the FROM clause in which ``matched`` keeps the matching rows and ``score`` is their
    relevance (higher is better, from the database's own ranking); ``unmatched`` is the condition on
    ``i`` alone for every other row. A statement using them starts with ``with_`` (maybe empty).
    """

    with_: str
    source: str
    matched: str
    score: str
    unmatched: str
    params: dict[str, Any]


def text_match(conn: Connection, owner: str, query: str) -> TextMatch | None:
    """The query's match on this connection's backend; None when the query has no words."""
    terms = query_terms(query)
    if not terms:
        return None
    if uses_fts(conn):
        # Matched once per statement however many parts use it: SQLite materializes a CTE used twice.
        fts = FTS_TABLE
        hits = f"SELECT rowid AS pk, bm25({fts}) AS rank FROM {fts} WHERE {fts} MATCH :fts_match"
        return TextMatch(
            with_=f"WITH fts_hits AS ({hits}) ",
            source="agentmem_items i JOIN fts_hits f ON f.pk = i.pk",
            matched="1 = 1",  # the join keeps only matching rows
            score="-f.rank",  # bm25: lower is better
            unmatched="i.pk NOT IN (SELECT pk FROM fts_hits)",
            params={"fts_match": match_expression(owner, query)},
        )
    # Each term on its own, OR-ed: a term that is only a stop word drops out instead of failing the
    # query, and no term is ever parsed as query syntax.
    tsquery = "(" + " || ".join(f"plainto_tsquery('{TS_CONFIG}', :fts_{n})" for n in range(len(terms))) + ")"
    return TextMatch(
        with_="",
        source="agentmem_items i",
        matched=f"i.search_vector @@ {tsquery}",
        score=f"ts_rank(i.search_vector, {tsquery})",
        unmatched=f"NOT (i.search_vector @@ {tsquery})",
        params={f"fts_{n}": term for n, term in enumerate(terms)},
    )


def may_have_words(
    conn: Connection, owner: str, probes: Sequence[Sequence[Sequence[str]]], pk: Any, text_column: Any
) -> Any:
    """A condition on items of ``owner``: true for every item whose text, as ``text.words`` splits
    it, has a word of each group of one of ``probes`` (and for some others: the caller checks).

    Text all in ASCII is matched in the database, where its tokens agree with ``text.words``: SQLite
    by its FTS5 index (a word the tokenizer splits, "c++" or "foo_bar", is looked up as its parts,
    which every text having it has too), other backends by a substring of the lowercased text. Other
    text is always included: NFKC and case folding can turn it into words no database token equals.
    """
    fts, found = uses_fts(conn), []
    for groups in probes:
        ascii_groups = [[w for w in group if w.isascii()] for group in groups]  # ASCII text has ASCII words
        if not all(ascii_groups):
            continue  # a group ASCII text cannot have a word of: this entry has no ASCII match
        if fts:  # a word FTS5 cannot look up ("_") could be anywhere: its group rules nothing out
            ascii_groups = [g for g in ascii_groups if all(_FTS_TERM.fullmatch(w) for w in g)]
        if not ascii_groups:
            return true()
        found.append(ascii_groups)
    kept = _not_ascii(conn, text_column)
    if not found:
        return kept
    # The one line a backend's own full-text index changes (PostgreSQL scans the scope's rows for now).
    return or_(kept, _fts5_match(owner, found, pk) if fts else _scanned(found, text_column))


def _fts5_match(owner: str, found: list[list[list[str]]], pk: Any) -> Any:
    terms = (" AND ".join("(" + " OR ".join(f'"{w}"' for w in g) + ")" for g in groups) for groups in found)
    probe = f"owner:{owner_token(owner)} AND (" + " OR ".join(f"({t})" for t in terms) + ")"
    matches = text(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :probe")
    return pk.in_(matches.bindparams(probe=probe).columns(rowid=Integer))


def _scanned(found: list[list[list[str]]], text_column: Any) -> Any:
    """The words as substrings of the lowercased text. One regular expression of every entry's first
    group rules out most rows in one pass; the substring tests then run on the few left."""
    lowered = func.lower(text_column)
    first = lowered.regexp_match("|".join(re.escape(w) for w in sorted({w for g in found for w in g[0]})))
    entries = [and_(*(or_(*(lowered.contains(w, autoescape=True) for w in g)) for g in gs)) for gs in found]
    return and_(first, or_(*entries))


_FTS_TERM = re.compile(r"[a-z0-9_+#]*[a-z0-9][a-z0-9_+#]*")  # ASCII words with a letter or digit to index


def _not_ascii(conn: Connection, text_column: Any) -> Any:
    # Characters against bytes of the UTF-8 text: 8 ms over 100k SQLite rows, where removing even a few
    # harmless punctuation marks first (curly quotes, dashes) took 200 ms.
    if conn.dialect.name == "sqlite":
        return func.length(text_column) != func.length(cast(text_column, LargeBinary))
    return func.char_length(text_column) != func.octet_length(text_column)
