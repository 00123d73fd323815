"""The write side the manager lends its helpers (layer handles, memory tools): every write is one
transaction that holds the write lock, reads what it merges with, and applies the layers' operations."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

from .layers import Delete, Layer, Patch
from .records import Change, MemoryState
from .scope import Scope, check_id
from .store import Store, Writer


def apply_patches(
    writer: Writer,
    layers: Mapping[str, Layer],
    patches: Sequence[tuple[str, Patch]],
    *,
    source: str,
    session_id: str | None,
    observed_at: datetime | None = None,
) -> list[Change]:
    """Merge each patch with its layer's live items in the writer's scope (those it can touch), and
    apply the result."""
    changes: list[Change] = []
    for name, patch in patches:
        ops = layers[name].merge_live(writer, patch, writer.now)
        changes.extend(writer.apply(name, ops, source=source, session_id=session_id, observed_at=observed_at))
    return changes


class Writes:
    """Writes for the layer handles and memory tools, and the typed read they need."""

    def __init__(
        self, store: Store, layers: Mapping[str, Layer], read: Callable[[Scope], MemoryState]
    ) -> None:
        self._store, self._layers, self._read = store, layers, read

    def apply(
        self,
        scope: Scope,
        patches: Sequence[tuple[str, Patch]],
        *,
        source: str,
        session_id: str | None,
        generation: str | None = None,
    ) -> list[Change]:
        with self._store.write(scope, generation=generation) as writer:
            return apply_patches(writer, self._layers, patches, source=source, session_id=session_id)

    def transaction(self, scope: Scope) -> AbstractContextManager[Writer]:
        return self._store.write(scope)

    def state(self, scope: Scope) -> MemoryState:
        return self._read(scope)

    def forget(
        self,
        scope: Scope,
        item_id: str,
        *,
        source: str,
        session_id: str | None = None,
        generation: str | None = None,
    ) -> Change:
        """Delete one live item the scope sees; the event belongs to the item's own scope."""
        check_id(item_id, "item_id", required=True)
        with self._store.write(scope, generation=generation) as writer:
            item = writer.item(item_id)  # read under the lock: nothing can change it before the delete
            owner = writer.in_scope(item)
            changes = owner.apply(
                item.layer, [Delete(item, reason="forgotten")], source=source, session_id=session_id
            )
        return changes[0]

    def correct(
        self,
        scope: Scope,
        item_id: str,
        value: str,
        *,
        source: str,
        session_id: str | None,
        generation: str | None = None,
    ) -> list[Change]:
        """Correct one live item the scope sees to ``value``, where it lives (shared or the agent's)."""
        check_id(item_id, "item_id", required=True)
        with self._store.write(scope, generation=generation) as writer:
            item = writer.item(item_id)  # read under the lock, as forget does
            layer = self._layers[item.layer]
            patches = [(item.layer, patch) for patch in layer.corrected(item, value, session_id)]
            return apply_patches(
                writer.in_scope(item), self._layers, patches, source=source, session_id=session_id
            )
