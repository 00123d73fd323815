"""Item embeddings: which items of an owner are pending, storing vectors, and the dense scan.

A vector lives in ``agentmem_vectors`` (schema 11) beside its item: deleted with the item (the foreign
key cascades), dropped by the writer when the item's text changes or the item closes. A live item
without a vector of the configured model is pending embedding.

The dense scan scores all of one owner's vectors (``Scope.owner``: a user's rows, or one agent's own
memory) in one matrix product, on every backend, with no index. Reading 5,000 vectors of 384
dimensions from SQLite costs ~8 ms, mostly copying blobs; so a store keeps each owner's matrix in
memory (:class:`VectorCache`) and checks it with one index-only query: an owner's vectors changed
exactly when their count or their largest ``id`` did, as ids only grow and every change of a vector
deletes its row and inserts a new one. A vector of an expired or just-deleted item may still be
stored or cached, so what is read is checked: ``dense_hits`` checks its best-scored items are live, and
compile and search rank only the rows their scope sees (``recall``), walking ``nearest`` until they
have enough.
(pgvector, or sqlite-vec where an interpreter can load extensions, would serve far larger owners; the
scan is what works everywhere.)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select, text

from ..embeddings import numpy, to_blob, unit_query
from ..scope import Scope
from .expiry import Expiry
from .rows import ITEMS, driver_rows, owned
from .tables import VectorRow, table

VECTORS = table(VectorRow)

# Stores a vector only while its item is live and still says the embedded text: a write that changed
# or closed the item while the model was called wins, and the item stays pending. A new row each time
# (never an update in place): ids only grow, which is what tells a cache the owner's vectors changed.
_STILL_SAYS = "SELECT pk FROM agentmem_items WHERE pk = :pk AND text = :text AND valid_to IS NULL"
_DELETE = text(f"DELETE FROM agentmem_vectors WHERE pk IN ({_STILL_SAYS})")
_STORE = text(
    "INSERT INTO agentmem_vectors (pk, user_id, agent_id, model, vector)"
    " SELECT pk, user_id, agent_id, :model, :vector FROM agentmem_items"
    " WHERE pk = :pk AND text = :text AND valid_to IS NULL"
).bindparams(bindparam("vector", type_=VECTORS.c.vector.type))


def pending(conn: Connection, owner: Scope, model: str, expiry: Expiry, limit: int) -> list[tuple[int, str]]:
    """(pk, text) of up to ``limit`` live items of the owner without a vector of ``model``, oldest
    first."""
    has_vector = select(VECTORS.c.pk).where(VECTORS.c.pk == ITEMS.c.pk, VECTORS.c.model == model).exists()
    stmt = (
        select(ITEMS.c.pk, ITEMS.c.text)
        .where(owned(ITEMS, owner), ITEMS.c.valid_to.is_(None), expiry.clause(), ~has_vector)
        .order_by(ITEMS.c.pk)
        .limit(limit)
    )
    return [(int(r.pk), str(r.text)) for r in conn.execute(stmt)]


def store(conn: Connection, model: str, embedded: Sequence[tuple[int, str, Any]]) -> int:
    """Store (pk, text, vector) where the item still holds that text; return how many were stored."""
    stored = 0
    for pk, item_text, vector in embedded:  # one by one: an executemany's rowcount is not reliable
        conn.execute(_DELETE, {"pk": pk, "text": item_text})
        row = {"pk": pk, "text": item_text, "model": model, "vector": to_blob(vector)}
        stored += conn.execute(_STORE, row).rowcount
    return stored


def drop(conn: Connection, item_ids: Sequence[str]) -> None:
    """Drop the vectors of these items (their text changed, or they closed): they are pending again."""
    for start in range(0, len(item_ids), 500):
        ids = list(item_ids[start : start + 500])
        conn.execute(VECTORS.delete().where(VECTORS.c.pk.in_(select(ITEMS.c.pk).where(ITEMS.c.id.in_(ids)))))


@dataclass(frozen=True)
class _Matrix:
    """One owner's vectors of one model as read: their row ids and item pks, one unit row each, and
    the version of that reading (count, largest id)."""

    version: tuple[int, int]
    ids: Any
    pks: Any
    rows: Any

    @property
    def size(self) -> int:
        return int(self.rows.nbytes + self.pks.nbytes + self.ids.nbytes)


# An owner's (count, largest id) of one model's vectors, for a user's and an agent's own memory (as
# ``owned`` states them): text, built once (a Core select cost SQLAlchemy as long as SQLite took to run it).
_VERSION = {
    agent: text(
        "SELECT count(*), max(id) FROM agentmem_vectors WHERE user_id = :user_id AND model = :model"
        + (" AND agent_id = :agent_id" if agent else "")
    )
    for agent in (False, True)
}


class VectorCache:
    """Owners' vector matrices, the least recently used dropped past ``max_bytes``. Thread-safe."""

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], _Matrix] = OrderedDict()
        self._bytes = 0

    def matrix(self, conn: Connection, scope: Scope, model: str) -> _Matrix:
        """The owner's current vectors: the cached ones while their version holds; after a change, the
        cached rows still stored plus the rows added since (ids only grow), else all read anew."""
        where = (owned(VECTORS, scope), VECTORS.c.model == model)
        version_of = _VERSION[scope.kind == "agent"]
        params = {"user_id": scope.user_id, "agent_id": scope.agent_key, "model": model}
        count, last = conn.execute(version_of, params).one()
        version = (int(count), int(last or 0))
        key = (scope.owner, model)
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None and cached.version == version:
                self._entries.move_to_end(key)
                return cached
        read = _refresh(conn, where, cached, version[0])
        with self._lock:
            old = self._entries.pop(key, None)
            self._bytes -= old.size if old is not None else 0
            if read.size <= self.max_bytes:
                self._entries[key] = read
                self._bytes += read.size
            while self._bytes > self.max_bytes:
                _key, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.size
        return read


def _refresh(conn: Connection, where: Sequence[Any], cached: _Matrix | None, count: int) -> _Matrix:
    """The owner's vectors: ``cached`` ones still stored and those added since, or all when nothing is
    cached. ``count``: how many the owner had when this read began."""
    np = numpy()
    if cached is not None and not len(cached.ids):
        cached = None  # nothing to keep: read whatever is there now
    after = cached.version[1] if cached is not None else -1
    stmt = select(VECTORS.c.id, VECTORS.c.pk, VECTORS.c.vector).where(*where, VECTORS.c.id > after)
    rows = driver_rows(conn, stmt.order_by(VECTORS.c.id))
    blobs = [bytes(r[2]) for r in rows]
    width = cached.rows.shape[1] * 4 if cached is not None else max((len(b) for b in blobs), default=0)
    # One model's vectors have one length; a row of another (a model renamed without `reembed`)
    # cannot be compared and is left out.
    keep = [i for i, blob in enumerate(blobs) if len(blob) == width]
    ids = np.array([rows[i][0] for i in keep], dtype=np.int64)
    pks = np.array([rows[i][1] for i in keep], dtype=np.int64)
    matrix = np.frombuffer(b"".join(blobs[i] for i in keep), dtype="<f4").reshape(len(keep), width // 4)
    if cached is not None:
        if count == len(cached.ids) + len(rows):  # none deleted (ids only grow): keep every cached row
            still = np.ones(len(cached.ids), dtype=bool)
        else:
            stored = driver_rows(conn, select(VECTORS.c.id).where(*where))
            still = np.isin(cached.ids, np.array([r[0] for r in stored], dtype=np.int64))
        ids = np.concatenate([cached.ids[still], ids])
        pks = np.concatenate([cached.pks[still], pks])
        matrix = np.concatenate([cached.rows[still], matrix]) if len(matrix) else cached.rows[still]
    # The version of what was read (not of the first query: a write may have committed since), so a
    # later check finds any change: an insert raises the largest id, a deletion alone lowers the count.
    return _Matrix((len(ids), int(ids.max()) if len(ids) else 0), ids, pks, matrix)


def _live(pks: Sequence[int], expiry: Expiry) -> Any:
    """Which of these items are live. Their rows are found by pk in a subquery the planner keeps
    apart (OFFSET 0): flattened, PostgreSQL would rather walk every live item of the database through
    a partial index whenever its statistics undercount them (after a bulk write, before ANALYZE)."""
    columns = (ITEMS.c.pk, ITEMS.c.valid_to, ITEMS.c.expires_at, ITEMS.c.updated_at, ITEMS.c.layer)
    rows = select(*columns).where(ITEMS.c.pk.in_(pks)).offset(0).subquery(ITEMS.name)
    # The expiry clause names ``agentmem_items.<column>``: the subquery's alias.
    return select(rows.c.pk).where(rows.c.valid_to.is_(None), expiry.clause())


def nearest(
    conn: Connection, scope: Scope, model: str, vector: Any, cache: VectorCache
) -> Iterator[tuple[int, float]]:
    """(pk, cosine similarity) of the scope owner's stored vectors, most similar to ``vector`` first
    (ties: the older item first), whatever their items' state now: a caller that checks what it reads
    (``recall.relevance`` ranks only what the scope sees) takes as many as it needs. Scored now: a
    vector that cannot be compared raises here, not while iterating."""
    found, scores, order = _ranked(conn, scope, model, vector, cache)
    return ((int(found.pks[i]), float(scores[i])) for i in order)


def dense_hits(
    conn: Connection, scope: Scope, model: str, vector: Any, k: int, expiry: Expiry, cache: VectorCache
) -> list[tuple[int, float]]:
    """``nearest``, of live items only."""
    found, scores, order = _ranked(conn, scope, model, vector, cache)
    hits: list[tuple[int, float]] = []
    # Only the best are checked to be live, a few more than needed at a time.
    for start in range(0, len(order) if k > 0 else 0, 2 * k + 16):
        part = order[start : start + 2 * k + 16]
        pks = [int(p) for p in found.pks[part]]
        live = set(conn.execute(_live(pks, expiry)).scalars())
        hits += [(pk, float(scores[i])) for pk, i in zip(pks, part, strict=True) if pk in live]
        if len(hits) >= k:
            break
    return hits[:k]


def _ranked(
    conn: Connection, scope: Scope, model: str, vector: Any, cache: VectorCache
) -> tuple[_Matrix, Any, Any]:
    """The owner's vectors, their similarity to ``vector`` and their order, best first."""
    np = numpy()
    found = cache.matrix(conn, scope, model)
    if len(found.pks) == 0:
        return found, np.zeros(0), np.zeros(0, dtype=np.int64)
    # einsum, not a BLAS product: BLAS would spread a product this small over threads, which only
    # wait on each other (and on other processes) on a busy machine: 0.3 ms steady became 2-10 ms.
    scores = np.einsum("ij,j->i", found.rows, unit_query(vector, found.rows.shape[1]))
    return found, scores, np.lexsort((found.pks, -scores))
