"""Full-text search over item text, always scoped to one user.

SQLite: an FTS5 index (BM25, porter stemming). Each row also carries an ``owner`` token derived from
the user id, and every query is ``owner:<token> AND (terms)``, so FTS5 only walks that user's rows.
Other databases fall back to scoring the scope's live items in Python until they get a native index.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Float, Integer, LargeBinary, Subquery, and_, cast, func, or_, text, true

from ..text import words

FTS_TABLE = "agentmem_items_fts"
MAX_TERMS = 32


def uses_fts(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def owner_token(user_id: str) -> str:
    return "u" + hashlib.sha256(user_id.encode()).hexdigest()[:24]


def index_item(conn: Connection, pk: int, user_id: str, text: str) -> None:
    if uses_fts(conn):
        conn.exec_driver_sql(
            f"INSERT INTO {FTS_TABLE}(rowid, text, owner) VALUES (?, ?, ?)",
            (pk, text, owner_token(user_id)),
        )


def unindex_items(conn: Connection, pks: Iterable[int]) -> None:
    if uses_fts(conn):
        for pk in pks:
            conn.exec_driver_sql(f"DELETE FROM {FTS_TABLE} WHERE rowid = ?", (pk,))


def query_terms(query: str) -> list[str]:
    """Distinct words of the query, in order, bounded."""
    return list(dict.fromkeys(words(query)))[:MAX_TERMS]


def match_expression(user_id: str, query: str) -> str | None:
    """An FTS5 MATCH expression for the user's rows containing any query term, or None."""
    terms = query_terms(query)
    if not terms:
        return None
    # words() yields only \w characters, so quoting each term makes it a safe FTS5 string.
    return f"owner:{owner_token(user_id)} AND (" + " OR ".join(f'"{t}"' for t in terms) + ")"


def scan_score(text: str, terms: list[str]) -> float:
    """Fallback relevance: query terms found in ``text`` (prefix match stands in for stemming)."""
    if not terms:
        return 0.0
    have = words(text)
    return float(sum(1 for t in terms if any(w.startswith(t[:5]) for w in have)))


def ranked_sql(param: str) -> str:
    """``(pk, score)`` of rows matching the MATCH expression bound as ``param``; BM25, lower is better."""
    return f"SELECT rowid AS pk, bm25({FTS_TABLE}) AS score FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH {param}"


def fts_ranked() -> Subquery:
    """:func:`ranked_sql` as a subquery for SQLAlchemy statements, matching the bound ``:match``."""
    return text(ranked_sql(":match")).columns(pk=Integer, score=Float).subquery("ranked")


def may_have_words(
    conn: Connection, user_id: str, probes: Sequence[Sequence[Sequence[str]]], pk: Any, text_column: Any
) -> Any:
    """A condition on items of ``user_id``: true for every item whose text, as ``text.words`` splits
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
    return or_(kept, _fts5_match(user_id, found, pk) if fts else _scanned(found, text_column))


def _fts5_match(user_id: str, found: list[list[list[str]]], pk: Any) -> Any:
    terms = (" AND ".join("(" + " OR ".join(f'"{w}"' for w in g) + ")" for g in groups) for groups in found)
    probe = f"owner:{owner_token(user_id)} AND (" + " OR ".join(f"({t})" for t in terms) + ")"
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
    if conn.dialect.name == "sqlite":  # characters, then bytes of the UTF-8 text
        return func.length(text_column) != func.length(cast(text_column, LargeBinary))
    return func.char_length(text_column) != func.octet_length(text_column)
