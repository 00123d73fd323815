"""Item embeddings: which items of an owner are pending, storing vectors, and the dense scan.

A vector lives in ``agentmem_vectors`` (schema 11) beside its item, keyed by the item's pk: deleted with
the item (the foreign key cascades), dropped by the writer when the item's text changes or the item
closes, so only live items of their current text have one. A live item without a vector of the
configured model is pending embedding.

The dense scan reads one owner's vectors (``Scope.owner``: a user's rows, or one agent's own memory)
in one query and scores them in one matrix product: at 5,000 vectors of 384 dimensions that is a few
milliseconds, no index needed, on every backend. (pgvector, or sqlite-vec where an interpreter can load
extensions, would serve far larger owners; the scan is what works everywhere.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, select, text

from ..embeddings import numpy, to_blob, unit_query
from ..scope import Scope
from .expiry import Expiry
from .rows import ITEMS, owned
from .tables import VectorRow, table

VECTORS = table(VectorRow)

# Stores a vector only while its item is live and still says the embedded text: a write that changed
# or closed the item while the model was called wins, and the item stays pending.
_STORE = text(
    "INSERT INTO agentmem_vectors (pk, user_id, agent_id, model, vector)"
    " SELECT pk, user_id, agent_id, :model, :vector FROM agentmem_items"
    " WHERE pk = :pk AND text = :text AND valid_to IS NULL"
    " ON CONFLICT (pk) DO UPDATE SET model = excluded.model, vector = excluded.vector"
)


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
    if not embedded:
        return 0
    params = [{"pk": pk, "text": t, "model": model, "vector": to_blob(v)} for pk, t, v in embedded]
    stored = 0
    for row in params:  # one by one: an executemany's rowcount is not reliable on every driver
        stored += conn.execute(
            _STORE.bindparams(bindparam("vector", type_=VECTORS.c.vector.type)), row
        ).rowcount
    return stored


def drop(conn: Connection, item_ids: Sequence[str]) -> None:
    """Drop the vectors of these items (their text changed, or they closed): they are pending again."""
    for start in range(0, len(item_ids), 500):
        ids = list(item_ids[start : start + 500])
        conn.execute(VECTORS.delete().where(VECTORS.c.pk.in_(select(ITEMS.c.pk).where(ITEMS.c.id.in_(ids)))))


def dense_hits(
    conn: Connection, scope: Scope, model: str, vector: Any, k: int, expiry: Expiry
) -> list[tuple[int, float]]:
    """(pk, cosine similarity) of the ``k`` live items of the scope's owner most similar to
    ``vector``, best first (ties: the older item first)."""
    np = numpy()
    if k <= 0:
        return []
    stmt = (
        select(VECTORS.c.pk, VECTORS.c.vector)
        .join(ITEMS, ITEMS.c.pk == VECTORS.c.pk)
        .where(owned(VECTORS, scope), VECTORS.c.model == model, ITEMS.c.valid_to.is_(None), expiry.clause())
    )
    rows = conn.execute(stmt).all()
    if not rows:
        return []
    blobs = [bytes(r.vector) for r in rows]
    width = len(blobs[0])
    # One model's vectors all have one length; a row of another (a model renamed without `reembed`)
    # cannot be compared and is left out.
    keep = [i for i, blob in enumerate(blobs) if len(blob) == width]
    query = unit_query(vector, width // 4)
    matrix = np.frombuffer(b"".join(blobs[i] for i in keep), dtype="<f4").reshape(len(keep), -1)
    pks = np.fromiter((rows[i].pk for i in keep), dtype=np.int64, count=len(keep))
    scores = matrix @ query
    if k < len(scores):
        best = np.argpartition(-scores, k - 1)[:k]
        scores, pks = scores[best], pks[best]
    order = np.lexsort((pks, -scores))
    return [(int(pks[i]), float(scores[i])) for i in order]
