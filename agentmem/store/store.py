"""The Store: every read of items and events goes through a :class:`Scope`; writes go through
:meth:`Store.write`, which holds the write lock (see :class:`Writer`)."""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, Float, bindparam, func, select
from sqlalchemy.exc import SQLAlchemyError

from ..embeddings import numpy
from ..errors import ClosedError, ConfigurationError, EmbeddingError, ErasedError, StoreError
from ..records import MemoryEvent, MemoryItem, SearchHit
from ..scope import Scope
from . import retention, vectors
from .engine import WRITE, is_ephemeral, make_engine
from .expiry import Expiry, before, typed
from .migrations import migrate
from .ranked import RankedRead, Top, TopicFilter
from .recall import DenseHits, relevance
from .rows import (
    EVENTS,
    GENERATIONS,
    ITEMS,
    PENDING,
    ContextRow,
    event_from_row,
    exact_live,
    exact_matching,
    generation_of,
    is_learned,
    item_from_row,
    owned,
    recent_ids,
    utcnow,
    visible,
)
from .tables import MAX_LIMIT
from .writer import AGENT_GENERATION, Writer, lock, owner_scope

if TYPE_CHECKING:
    from ..embeddings import Embedder

log = logging.getLogger(__name__)

EMBED_BACKLOG = 256
"""Pending items a write embeds besides its own (in batches): a backlog left by failed embedding calls
shrinks with every write, and no write waits on a whole memory's re-embedding."""
QUERY_VECTORS = 256
"""The last queries whose vectors are kept: one message is often compiled, searched and reported on, a
template compiles one block at a time, and each asks for the same vector (one model call in all)."""

_WATERMARK = select(  # built once, as the statements every learn runs are (see rows.py)
    select(GENERATIONS.c.token).where(GENERATIONS.c.user_id == bindparam("user_id")).scalar_subquery(),
    # The newest event of the whole database: ids grow with time on both backends, so anything written
    # after this read has a larger id. The maximum of the primary key is one index lookup; a user's
    # maximum would walk all of that user's events.
    select(func.max(EVENTS.c.id)).scalar_subquery(),
)


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


class Store:
    """Items and events in one database. Every read and write of memory takes a scope; the exceptions
    are ``pending(None)``, the maintenance queue behind ``retry_pending()``, and ``cleanup``.

    ``clock``: what time it is (aware datetimes), for every timestamp written and every expiry read;
    ``ttls``: per layer name, how long its items live after their last update; ``embedder``: embeds
    the items each write gives new text, once it commits (None: no embeddings, no model calls).
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], datetime] = utcnow,
        ttls: Mapping[str, timedelta] | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.url = url
        self.embedder = embedder
        self._vectors = vectors.VectorCache()
        # Over the embedder, not the store: a cache holding the store would keep it from being freed.
        self._query_vector = lru_cache(maxsize=QUERY_VECTORS)(partial(_query_vector, embedder))
        self._clock = clock
        self._ttls = dict(ttls or {})
        self._ephemeral: Path | None = None
        if is_ephemeral(url):
            # An in-memory SQLite database is one connection shared by every thread, which breaks as
            # soon as a background writer runs; a private temporary file behaves like any database.
            fd, name = tempfile.mkstemp(prefix="agentmem-", suffix=".db")
            os.close(fd)
            self._ephemeral = Path(name)
            weakref.finalize(self, _remove_database, self._ephemeral)
            url = f"sqlite:///{name}"
        self._engine = make_engine(url)
        self._writer_engine = self._engine.execution_options(**{WRITE: True})
        self._closed = False
        try:
            # Under the write lock: processes opening a new file at once wait for each other.
            migrate(self._writer_engine)
        except (SQLAlchemyError, StoreError) as exc:  # unreachable server, unreadable file, not a database
            self._engine.dispose()
            raise StoreError(f"cannot open database {url!r}: {exc}") from exc

    @property
    def engine(self) -> Engine:
        """The database engine; ClosedError once the store is closed (a disposed engine would quietly
        open new connections, or fail with the database's own error)."""
        self._require_open()
        return self._engine

    @property
    def writer_engine(self) -> Engine:
        """The engine whose transactions take the write lock before anything else (on SQLite), for a
        write to the whole database (a restore); ClosedError once the store is closed."""
        self._require_open()
        return self._writer_engine

    def now(self) -> datetime:
        """The clock's time; ConfigurationError when it is not a timezone-aware datetime."""
        now = self._clock()
        if not isinstance(now, datetime) or now.utcoffset() is None:
            raise ConfigurationError(f"the clock must return timezone-aware datetimes, got {now!r}")
        return now

    def expiry(self, at: datetime | None = None) -> Expiry:
        """The expiry rule at ``at`` (default: now)."""
        return Expiry(self.now() if at is None else at, self._ttls)

    def _require_open(self) -> None:
        if self._closed:
            raise ClosedError("this MemoryManager is closed; create a new one to use the database")

    def close(self) -> None:
        self._closed = True
        self._engine.dispose()
        if self._ephemeral is not None:
            _remove_database(self._ephemeral)

    @contextmanager
    def write(self, scope: Scope, *, generation: str | None = None) -> Iterator[Writer]:
        """One transaction holding the user's write lock: read, merge and apply can't interleave.

        ``generation``: the user's generation when the caller's work began (``generation()``); when the
        user was deleted since, ErasedError and nothing is written.
        """
        self._require_open()
        with self._writer_engine.begin() as conn:
            lock(conn, scope)
            writer = Writer(conn, scope, self.expiry())
            if generation is not None and writer.generation() != generation:
                raise ErasedError(
                    f"user {scope.user_id!r} was deleted while this write was under way; nothing was written"
                )
            yield writer
        # Committed, the write lock released: a slow embedding model holds up this call only, and
        # nothing it meets (a model's error, a busy database) may fail a write that has been made.
        for owner, count in sorted(writer.written.items(), key=lambda o: o[0].owner):
            try:
                self.embed_pending(owner, count + EMBED_BACKLOG, quiet=True)
            except Exception:
                log.exception(
                    "embedding after a write of %s failed; its items stay pending", owner.describe()
                )

    # ---- embeddings ----------------------------------------------------------------------

    def embed_pending(self, owner: Scope, limit: int, *, quiet: bool = False) -> int:
        """Embed up to ``limit`` of the owner's live items pending embedding, oldest first, a batch per
        model call, each batch stored in a short transaction of its own; return how many were stored.

        ``quiet``: a failed call is logged and ends the work (its items stay pending) instead of
        raising EmbeddingError: what a write does, whose items are stored whatever the model says.
        """
        embedder = self.embedder
        if embedder is None:
            return 0
        from ..embeddings import BATCH_SIZE

        owner = owner_scope(owner)
        stored = 0
        while stored < limit:
            with self.engine.connect() as conn:
                batch = vectors.pending(
                    conn, owner, embedder.name, self.expiry(), min(BATCH_SIZE, limit - stored)
                )
            if not batch:
                break
            try:
                embedded = embedder.embed([text for _pk, text in batch])
            except EmbeddingError as exc:
                if not quiet:
                    raise
                log.warning(
                    "embedding %d item(s) of %s failed; they stay pending: %s",
                    len(batch),
                    owner.describe(),
                    exc,
                )
                break
            with self.write(owner) as writer:
                count = vectors.store(
                    writer.conn,
                    embedder.name,
                    [(pk, t, v) for (pk, t), v in zip(batch, embedded, strict=True)],
                )
            stored += count
            if count < len(batch):  # changed meanwhile: the next write embeds their new text
                break
        return stored

    def pending_owners(self, user_id: str | None, *, every: bool = False) -> list[Scope]:
        """Owners with live items pending embedding (``every``: with live items at all): the user, or
        every user and agent memory."""
        embedder = self.embedder
        if embedder is None:
            return []
        has_vector = (
            select(vectors.VECTORS.c.pk)
            .where(vectors.VECTORS.c.pk == ITEMS.c.pk, vectors.VECTORS.c.model == embedder.name)
            .exists()
        )
        stmt = (
            select(ITEMS.c.user_id, ITEMS.c.agent_id)
            .distinct()
            .where(ITEMS.c.valid_to.is_(None), self.expiry().clause())
        )
        if not every:
            stmt = stmt.where(~has_vector)
        if user_id is not None:
            stmt = stmt.where(ITEMS.c.user_id == user_id)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return sorted(
            {owner_scope(Scope(r.user_id, r.agent_id or None)) for r in rows}, key=lambda o: o.owner
        )

    def drop_vectors(self, owner: Scope) -> None:
        """Drop every vector of the owner: all of its items are pending (``reembed``)."""
        owner = owner_scope(owner)
        with self.write(owner) as writer:
            writer.conn.execute(vectors.VECTORS.delete().where(owned(vectors.VECTORS, owner)))

    def dense_for(self, query: str | None) -> DenseHits | None:
        """The owner's rows by nearness to the query's meaning (``vectors.nearest``: not checked to be
        live, as the read checks what it ranks), for a read to call with its connection and scope: the
        query is embedded now, once for the whole read (and kept: see ``QUERY_VECTORS``). None without
        an embedding model or a query, or when the model fails (logged): the read then ranks by words
        alone."""
        embedder = self.embedder
        if embedder is None or query is None or not query.strip():
            return None
        try:
            vector = self._query_vector(query)
        except EmbeddingError as exc:
            log.warning("embedding the query failed; ranking by its words alone: %s", exc)
            return None

        def nearest(conn: Connection, scope: Scope) -> Iterator[tuple[int, float]]:
            try:
                return vectors.nearest(conn, scope, embedder.name, vector, self._vectors)
            except EmbeddingError as exc:  # e.g. a model of the same name that changed its length
                log.warning("the query's vector cannot be compared; ranking by its words alone: %s", exc)
                return iter(())

        return nearest

    def dense_hits(self, conn: Connection, scope: Scope, vector: Any, k: int) -> list[tuple[int, float]]:
        """(pk, cosine similarity) of the ``k`` live items of the scope's owner (``Scope.owner``: all of
        a user's rows, every agent's and session's of the user included, or one agent's own memory)
        nearest to ``vector``, best first. Items pending embedding are not among them.

        Raises:
            ConfigurationError: no embedding model is configured.
            EmbeddingError: ``vector`` does not have the stored vectors' length, or is all zeros.
        """
        if self.embedder is None:
            raise ConfigurationError(
                "dense_hits needs an embedding model (MemoryManager(embedding_model=...))"
            )
        return vectors.dense_hits(conn, scope, self.embedder.name, vector, k, self.expiry(), self._vectors)

    def generation(self, scope: Scope) -> str:
        """The user's current generation, begun now if there is none. Work that spans a model call takes
        it before it reads anything and hands it to ``write``: ``delete_user`` ends the generation, so
        nothing begun before a deletion is written after it, a user's first-ever write included. An
        agent's own memory belongs to no user: its generation never ends (and has no row)."""
        if scope.kind == "agent":
            return AGENT_GENERATION
        with self.engine.connect() as conn:
            token = generation_of(conn, scope.user_id)
        if token is not None:
            return token
        with self.write(scope) as writer:
            return writer.begin_generation()

    # ---- reads ---------------------------------------------------------------------------

    def live(self, scope: Scope, layers: Sequence[str] | None = None) -> list[MemoryItem]:
        live = self.expiry().clause(layers)
        stmt = select(ITEMS).where(visible(scope), ITEMS.c.valid_to.is_(None), live).order_by(ITEMS.c.pk)
        if layers is not None:
            stmt = stmt.where(ITEMS.c.layer.in_(layers))
        with self.engine.connect() as conn:
            return [item_from_row(r) for r in conn.execute(stmt)]

    @contextmanager
    def reading(self, conn: Connection | None = None) -> Iterator[Connection]:
        """A connection for reads: ``conn`` when given, else a new one. Several reads on one connection
        (the ``conn`` of the read methods) check out and begin once, and see one snapshot."""
        if conn is not None:
            yield conn
            return
        with self.engine.connect() as own:
            yield own

    def live_item(self, scope: Scope, item_id: str) -> MemoryItem | None:
        """The live item ``item_id`` if the scope sees it (shared, its agent's, its session's), else
        ``None``: one indexed read, for a server answering about one item of a large memory."""
        stmt = select(ITEMS).where(
            ITEMS.c.id == item_id, visible(scope), ITEMS.c.valid_to.is_(None), self.expiry().clause()
        )
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        return item_from_row(row) if row is not None else None

    def live_exact(
        self, scope: Scope, layers: Sequence[str], *, conn: Connection | None = None
    ) -> dict[str, list[MemoryItem]]:
        """Live items of exactly this scope (what merges run against), by layer."""
        expiry = self.expiry()
        with self.reading(conn) as c:
            return {layer: exact_live(c, scope, layer, expiry) for layer in layers}

    def recent_ids(
        self, scope: Scope, layer: str, limit: int, *, conn: Connection | None = None
    ) -> list[str]:
        """Ids of the ``limit`` most recently updated live items of ``layer`` in exactly this scope."""
        with self.reading(conn) as c:
            return recent_ids(c, scope, layer, limit, self.expiry())

    def live_ids(
        self, scope: Scope, layer: str, ids: Sequence[str], *, conn: Connection | None = None
    ) -> list[MemoryItem]:
        """The live items of ``layer`` in exactly this scope among ``ids``, oldest first."""
        if not ids:
            return []
        with self.reading(conn) as c:
            return exact_matching(c, scope, layer, self.expiry(), ids=ids)

    def agents(self, scope: Scope) -> list[str]:
        """Agents with live private items of the scope's user."""
        stmt = (
            select(ITEMS.c.agent_id)
            .distinct()
            .where(ITEMS.c.user_id == scope.user_id, ITEMS.c.agent_id != "", ITEMS.c.valid_to.is_(None))
            .where(self.expiry().clause())
            .order_by(ITEMS.c.agent_id)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(stmt).scalars())

    def watermark(self, scope: Scope, *, conn: Connection | None = None) -> tuple[str | None, int]:
        """How current a reading of the memory is, in one query: the user's generation (None when none
        was begun) and the newest event id in the database (0 when none)."""
        with self.reading(conn) as c:
            generation, event_id = c.execute(_WATERMARK, {"user_id": scope.user_id}).one()
        return generation, int(event_id or 0)

    def was_learned(self, scope: Scope, key: str, *, conn: Connection | None = None) -> bool:
        with self.reading(conn) as c:
            return is_learned(c, scope, key)

    def context_rows(
        self,
        scope: Scope,
        layers: Sequence[str],
        query: str | None,
        top: Mapping[str, Top] | None = None,
        *,
        topics: TopicFilter | None = None,
        conn: Connection | None = None,
        dense: DenseHits | None = None,
        known: dict[Any, dict[int, float]] | None = None,
    ) -> list[ContextRow]:
        """The compile read: the scope's live items of ``layers``, scored by relevance to ``query``
        (``recall.relevance``), where the narrowest scope's item of a key hides the others (as
        ``prefer_agent`` does).

        ``top``: layers of which only the first ``limit`` rows in the budget's priority order are read
        (score, recency, then count when ``by_count``, then id; the best first); the others are read whole.
        ``topics``: only the rows the filter keeps. ``conn``: read on this connection (see
        ``context_reader``), not a new one.
        ``dense``: the owner's rows nearest the query by meaning, fused into the ranking.
        ``known``: relevance worked out by an earlier read of the same compile, kept there for the next.
        """
        known = {} if known is None else known
        with self.reading(conn) as c:
            expiry = self.expiry()

            def scores() -> Mapping[int, float] | None:
                if not query:
                    return None
                key = (scope, query, tuple(layers))
                if key not in known:
                    known[key] = relevance(c, scope, query, layers, expiry, dense, topics)
                return known[key]

            return _context_rows(c, scope, layers, scores, top or {}, expiry, topics)

    @contextmanager
    def context_reader(
        self, dense: DenseHits | None = None, topics: TopicFilter | None = None
    ) -> Iterator[ContextReader]:
        """``context_rows`` for several scopes on one connection: one compile of a user's memory and
        an agent's own memory reads them in one transaction, and opens one connection. A scope's
        relevance is worked out once, however many reads a budget takes."""
        known: dict[Any, dict[int, float]] = {}
        with self.reading() as conn:
            yield lambda scope, layers, query, top: self.context_rows(
                scope, layers, query, top, topics=topics, conn=conn, dense=dense, known=known
            )

    def search(
        self,
        scope: Scope,
        query: str,
        layers: Sequence[str],
        limit: int,
        *,
        topics: TopicFilter | None = None,
        conn: Connection | None = None,
        dense: DenseHits | None = None,
    ) -> list[SearchHit]:
        if not layers:  # an empty IN () is not SQL everywhere
            return []
        with self.reading(conn) as conn:
            expiry = self.expiry()
            scores = relevance(conn, scope, query, layers, expiry, dense, topics, context=False)
            ranked = RankedRead(conn, scope, scores, expiry, topics)
            match = ranked.match
            if match is None:
                return []
            live = ranked.live(layers, scope.visible_agent_keys)
            # The best pks first (the match's source may hold only the columns ranking needs), then
            # their whole rows.
            best = (
                f"SELECT i.pk, {match.score} AS score FROM {match.source} WHERE {live}"
                f" ORDER BY score DESC, {ranked.id_order('i.')} LIMIT :limit"
            )
            sql = (
                f"{match.with_}SELECT {', '.join(f'x.{c.name}' for c in ITEMS.c)}, b.score"
                f" FROM ({best}) b JOIN agentmem_items x ON x.pk = b.pk"
                f" ORDER BY b.score DESC, {ranked.id_order('x.')}"
            )
            params = {**ranked.params, "limit": min(limit, MAX_LIMIT)}
            rows = conn.execute(typed(sql, params).columns(*ITEMS.c, score=Float), params).all()
        return [SearchHit(item_from_row(r), float(r.score)) for r in rows]

    # ---- pending extractions -------------------------------------------------------------

    def save_pending(
        self,
        scope: Scope,
        session_id: str | None,
        key: str,
        messages: Any,
        error: str,
        attempts: int,
        watermark: int,
        read_at: datetime,
        *,
        generation: str,
    ) -> str:
        """Keep a failed extraction's input for ``retry_pending``; one row per scope and input.
        ErasedError when the user was deleted since ``generation`` (when the learn began)."""
        with self.write(scope, generation=generation) as writer:
            row = writer.conn.execute(
                select(PENDING.c.id, PENDING.c.attempts).where(
                    PENDING.c.user_id == scope.user_id,
                    PENDING.c.agent_id == scope.agent_key,
                    PENDING.c.key == key,
                )
            ).first()
            if row is not None:
                writer.conn.execute(
                    PENDING.update()
                    .where(PENDING.c.id == row.id)
                    .values(error=error, attempts=row.attempts + attempts, updated_at=writer.now)
                )
                return str(row.id)
            pending_id = "p_" + uuid.uuid4().hex[:24]
            writer.conn.execute(
                PENDING.insert().values(
                    id=pending_id,
                    user_id=scope.user_id,
                    agent_id=scope.agent_key,
                    session_id=session_id,
                    key=key,
                    messages=messages,
                    error=error,
                    attempts=attempts,
                    watermark=watermark,
                    read_at=read_at,
                    created_at=writer.now,
                    updated_at=writer.now,
                )
            )
            return pending_id

    def count_retry(self, scope: Scope, pending_id: str, error: str, attempts: int) -> bool:
        """Record a failed retry on its pending extraction; False when the row is gone (its user was
        deleted): a retry's claim is its row, which is never made again."""
        with self.write(scope) as writer:
            updated = writer.conn.execute(
                PENDING.update()
                .where(PENDING.c.id == pending_id, PENDING.c.user_id == scope.user_id)
                .values(error=error, attempts=PENDING.c.attempts + attempts, updated_at=writer.now)
            )
            return bool(updated.rowcount)

    def pending(self, user_id: str | None) -> list[dict[str, Any]]:
        """Pending extractions, oldest first: of one user, or of everyone (for maintenance jobs)."""
        stmt = select(PENDING).order_by(PENDING.c.created_at, PENDING.c.id)
        if user_id is not None:
            stmt = stmt.where(PENDING.c.user_id == user_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def drop_pending(self, scope: Scope, pending_id: str) -> None:
        """Drop a retried extraction by id: were its user deleted and the same input kept again
        since, that newer row stays."""
        with self.write(scope) as writer:
            writer.conn.execute(
                PENDING.delete().where(PENDING.c.id == pending_id, PENDING.c.user_id == scope.user_id)
            )

    # ---- retention -------------------------------------------------------------------------

    def cleanup(
        self, older_than: timedelta, kinds: frozenset[retention.CleanupKind], user_id: str | None
    ) -> retention.CleanupReport:
        """Delete what is older than ``older_than`` of each kind, of one user or of everyone; each
        owner's part (a user's, or an agent's own memory) in one transaction holding its write lock (see
        ``retention``)."""
        cutoff = before(self.now(), older_than)
        expiry = self.expiry(cutoff)  # what had expired by then
        with self.engine.connect() as conn:
            owners = retention.owners_to_clean(conn, kinds, cutoff, expiry, user_id)
        report = retention.CleanupReport()
        for owner in owners:
            with self.write(owner) as writer:
                report += retention.clean_owner(writer, kinds, cutoff, expiry)
        return report

    def history(self, scope: Scope, item_id: str | None = None) -> list[MemoryEvent]:
        stmt = select(EVENTS).where(visible(scope, EVENTS)).order_by(EVENTS.c.id)
        if item_id is not None:
            stmt = stmt.where(EVENTS.c.item_id == item_id)
        with self.engine.connect() as conn:
            return [event_from_row(r) for r in conn.execute(stmt)]


ContextReader = Callable[[Scope, Sequence[str], "str | None", Mapping[str, Top]], list[ContextRow]]


def _context_rows(
    conn: Connection,
    scope: Scope,
    layers: Sequence[str],
    scores: Callable[[], Mapping[int, float] | None],
    top: Mapping[str, Top],
    expiry: Expiry,
    topics: TopicFilter | None = None,
) -> list[ContextRow]:
    """``scores``: the relevance of the rows that have any (or None), worked out when asked for."""
    whole = [name for name in layers if name not in top]
    if whole and len(whole) == len(layers):  # every layer whole: no top to cut
        return RankedRead(conn, scope, None, expiry, topics).every(layers, scores)
    ranked = RankedRead(conn, scope, scores(), expiry, topics)
    arms = ranked.whole(whole) if whole else []
    arms += [arm for name, slice_ in top.items() if name in layers for arm in ranked.top(name, slice_)]
    rows = ranked.run(arms)
    taken: dict[str, int] = {}
    kept = []
    for row in rows:  # ordered by layer, then priority: the first ``limit`` of each are its top
        n = taken[row[1]] = taken.get(row[1], 0) + 1
        if row[1] not in top or n <= top[row[1]].limit:
            kept.append(ContextRow(*row[:8]))
    return kept


def _query_vector(embedder: Embedder | None, query: str) -> Any:
    """A query's vector, read-only (the store keeps it for the next reads of that query)."""
    assert embedder is not None  # Store.dense_for asks only with one
    vector = numpy().array(embedder.embed([query])[0], dtype="float32")
    vector.setflags(write=False)
    return vector
