"""Per-layer entry points: ``mem.profile``, ``mem.policies``, ``mem.knowledge``, ``mem.feedback``."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import InvalidInputError, NotFoundError
from .layers.base import Entry, FieldPatch, NewEntries, NewItem
from .layers.collection import CollectionLayer
from .layers.document import DocumentLayer
from .records import Change, MemoryItem
from .scope import Scope, check_id

if TYPE_CHECKING:
    from .manager import MemoryManager


def _clean_text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{where} must be a str, not {type(value).__name__}")
    if not value.strip():
        raise InvalidInputError(f"{where} must not be empty")
    return value.strip()


class DocumentHandle:
    """A document layer (profile, policies): one value per field, patched field by field."""

    def __init__(self, manager: MemoryManager, layer: DocumentLayer) -> None:
        self._manager, self._layer = manager, layer

    def update(
        self,
        *,
        user_id: str,
        agent_id: str | None = None,
        session_id: str | None = None,
        explicit: bool = True,
        **fields: Any,
    ) -> list[Change]:
        """Set fields. ``None`` leaves a field as it is; list fields gain new elements.

        ``explicit=False`` marks the values as inferred: they never replace explicit ones.
        """
        scope = Scope.of(user_id, agent_id)
        session = check_id(session_id, "session_id", required=False)
        schema = self._layer.schema
        schema.check_known(list(fields), self._layer.name)
        values = {
            name: schema.validate_field(
                name, value.strip() if isinstance(value, str) else value, self._layer.name
            )
            for name, value in fields.items()
            if value is not None
        }
        patch = FieldPatch(values=values, explicit=explicit)
        return self._manager._write(scope, [(self._layer.name, patch)], source="manual", session_id=session)

    def remove(self, *fields: str, user_id: str, agent_id: str | None = None) -> list[Change]:
        """Remove fields (an explicit retraction); their old values stay in the history."""
        scope = Scope.of(user_id, agent_id)
        self._layer.schema.check_known(list(fields), self._layer.name)
        patch = FieldPatch(values={}, remove=tuple(fields))
        return self._manager._write(scope, [(self._layer.name, patch)], source="manual", session_id=None)

    def get(self, *, user_id: str, agent_id: str | None = None) -> Any:
        """The layer's schema instance for the scope (agent values over shared ones)."""
        state = self._manager.get(user_id=user_id, agent_id=agent_id)
        return getattr(state, self._layer.name)


class CollectionHandle:
    """A collection layer (knowledge, feedback): entries with ids."""

    def __init__(self, manager: MemoryManager, layer: CollectionLayer) -> None:
        self._manager, self._layer = manager, layer

    def add(
        self,
        text: str,
        *,
        user_id: str,
        agent_id: str | None = None,
        session_id: str | None = None,
        replaces: str | None = None,
        **fields: Any,
    ) -> str:
        """Add an entry and return its id (the existing item's id when it is a duplicate).

        ``replaces`` names a live item this entry contradicts: that item is closed, not erased.
        """
        return self.add_many(
            [{"text": text, **fields}],
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            replaces=replaces,
        )[0]

    def add_many(
        self,
        entries: Iterable[str | Mapping[str, Any]],
        *,
        user_id: str,
        agent_id: str | None = None,
        session_id: str | None = None,
        replaces: str | None = None,
    ) -> list[str]:
        """Add several entries in one transaction; return their ids in order."""
        scope = Scope.of(user_id, agent_id)
        session = check_id(session_id, "session_id", required=False)
        name = self._layer.name
        values = []
        for raw in entries:
            entry = {"text": raw} if isinstance(raw, str) else dict(raw)
            entry["text"] = _clean_text(entry.get("text"), f"{name} text")
            values.append(self._layer.schema.validate_entry(entry, name))
        if replaces is not None:
            check_id(replaces, "replaces", required=True)
        # Each manual call is one occurrence (feedback counts occurrences); a session is one too.
        occurrence = session or uuid.uuid4().hex
        patch = NewEntries(
            tuple(
                Entry(value=v, replaces=replaces if i == 0 else None, occurrence=occurrence)
                for i, v in enumerate(values)
            )
        )

        with self._manager._store.write(scope) as writer:
            current = writer.live(name)
            if replaces is not None and replaces not in {item.id for item in current}:
                raise NotFoundError(f"no live {name} item {replaces!r} in this scope to replace")
            merged = self._layer.merge_entries(current, patch, writer.now)
            if any(result is None for result in merged.results):
                # Raised inside the transaction: nothing is written.
                raise InvalidInputError(
                    f"{len(values)} entries do not fit the {name} cap of {self._layer.max_items} items"
                )
            changes = writer.apply(name, merged.ops, source="manual", session_id=session)
        added = {c.key: c.item_id for c in changes if c.op == "add"}  # new items' keys are unique
        return [added[r.key] if isinstance(r, NewItem) else r.id for r in merged.results if r is not None]

    def list(self, *, user_id: str, agent_id: str | None = None) -> list[MemoryItem]:
        """Live entries of the scope, oldest first, typed by the schema (``item.data``)."""
        state = self._manager.get(user_id=user_id, agent_id=agent_id)
        items: list[MemoryItem] = getattr(state, self._layer.name)
        return items
