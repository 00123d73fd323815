"""The write side the manager lends its helpers (layer handles, memory tools): every write is one
transaction that holds the write lock, reads what it merges with, and applies the layers' operations."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from .errors import ConflictError
from .layers import Delete, Layer, Patch, Update
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

    def update(
        self,
        scope: Scope,
        item_id: str,
        text: str | None,
        fields: Mapping[str, Any],
        *,
        source: str,
        session_id: str | None,
        generation: str | None = None,
    ) -> list[Change]:
        """Change one live item the scope sees in place, where it lives (shared or the agent's): same id,
        the old value in its ``update`` event. Checked like a new item; no change when it already says it.

        Raises:
            NotFoundError: no such live item in the scope.
            ConflictError: another live item already says what the item would say (the same key).
        """
        check_id(item_id, "item_id", required=True)
        with self._store.write(scope, generation=generation) as writer:
            item = writer.item(item_id)  # read under the lock, as forget does
            layer = self._layers[item.layer]
            new = layer.stored(item.key, layer.revised(item, text, fields), item.count, item.created_at)
            if new.key == item.key and new.value == item.value and item.explicit:
                return []
            owner = writer.in_scope(item)
            if new.key != item.key:
                clash = owner.live_matching(item.layer, keys=[new.key])
                if clash:
                    raise ConflictError(
                        f"memory item {clash[0].id!r} already says this; update or forget that one"
                    )
            update = Update(
                target=item,
                value=new.value,
                text=new.text,
                line=new.line,
                count=item.count,
                explicit=True,  # what a person (or their agent) set on purpose
                confidence=1.0,
                meta=item.meta,
                reason="updated",
                key=new.key,
            )
            return owner.apply(item.layer, [update], source=source, session_id=session_id)
