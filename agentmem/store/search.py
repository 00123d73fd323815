"""Full-text search over item text, always scoped to one user.

SQLite: an FTS5 index (BM25, porter stemming). Each row also carries an ``owner`` token derived from
the user id, and every query is ``owner:<token> AND (terms)``, so FTS5 only walks that user's rows.
Other databases fall back to scoring the scope's live items in Python until they get a native index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, Float, Integer, Subquery, text

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


def index_ids(conn: Connection, user_id: str, item_ids: Sequence[str]) -> None:
    """Index the stored text of these items of one user: one statement (per 500 items)."""
    if uses_fts(conn):
        for part in _parts(item_ids):
            conn.exec_driver_sql(
                f"INSERT INTO {FTS_TABLE}(rowid, text, owner) SELECT pk, text, ? FROM agentmem_items "
                f"WHERE id IN ({', '.join('?' * len(part))})",
                (owner_token(user_id), *part),
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
