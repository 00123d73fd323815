"""Each layer's manual API: ``mem.profile``, ``mem.policies``, ``mem.knowledge``, ``mem.feedback``, and
``mem.layer(name)`` for any layer. A layer makes its handle (``Layer.handle``); the manager lends it the
write side it needs (:class:`Writes`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import InvalidInputError, NotFoundError
from ..records import Change, MemoryItem, MemoryState
from ..scope import Scope, check_id
from ..validation import checked_text, checked_time
from .changes import Entry, FieldPatch, NewEntries, NewItem, Patch

if TYPE_CHECKING:
    from ..store import Writer
    from .base import Layer
    from .collection import CollectionLayer
    from .document import DocumentLayer


def write_scope(
    layer: Layer,
    user_id: str | None,
    agent_id: str | None,
    session_id: str | None,
    session_scoped: bool | None,
) -> Scope:
    """Where a manual write goes, ids checked: the scope's, or its session's own when the write (or the
    layer) keeps it there. An agent's own memory has no sessions."""
    scope = Scope.addressed(user_id, agent_id, session_id)
    written: Scope = layer.write_scope(scope.user_wide(), scope.session_id, session_scoped)
    return written


class Writes(Protocol):
    """What a layer's handle needs of the memory: writes in one transaction each, and reads."""

    def apply(
        self, scope: Scope, patches: Sequence[tuple[str, Patch]], *, source: str, session_id: str | None
    ) -> list[Change]:
        """Merge and apply patches to their layers in one transaction."""

    def transaction(self, scope: Scope) -> AbstractContextManager[Writer]:
        """One write transaction for the scope, holding the write lock."""

    def state(self, scope: Scope) -> MemoryState:
        """The scope's live memory, typed (as ``MemoryManager.get``)."""


def _clean_text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{where} must be a str, not {type(value).__name__}")
    if not value.strip():
        raise InvalidInputError(f"{where} must not be empty")
    return checked_text(value.strip(), where)


class DocumentHandle:
    """A document layer (profile, policies): one value per field, patched field by field."""

    def __init__(self, writes: Writes, layer: DocumentLayer) -> None:
        self._writes, self._layer = writes, layer

    def update(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        session_scoped: bool | None = None,
        explicit: bool = True,
        **fields: Any,
    ) -> list[Change]:
        """Set fields. ``None`` leaves a field as it is; list fields gain new elements.

        ``explicit=False`` marks the values as inferred: they never replace explicit ones.
        ``session_scoped=True`` keeps the values in the session ``session_id`` only (``None``: as the
        layer's ``LayerConfig(session_scoped=...)`` says); there they win over the user-wide ones.
        """
        scope = write_scope(self._layer, user_id, agent_id, session_id, session_scoped)  # ids checked there
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
        return self._writes.apply(scope, [(self._layer.name, patch)], source="manual", session_id=session_id)

    def remove(
        self,
        *fields: str,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        session_scoped: bool | None = None,
    ) -> list[Change]:
        """Remove fields (an explicit retraction); their old values stay in the history. A keyed list
        field (policies' ``rules``) goes as a whole; :meth:`withdraw` retracts single elements.
        ``session_scoped=True`` removes them from the session ``session_id``'s own values (as in
        :meth:`update`)."""
        scope = write_scope(self._layer, user_id, agent_id, session_id, session_scoped)
        for field in fields:
            if not isinstance(field, str):
                raise InvalidInputError(f"field names must be str, not {type(field).__name__}")
        self._layer.schema.check_known(list(fields), self._layer.name)
        patch = FieldPatch(values={}, remove=tuple(fields))
        return self._writes.apply(scope, [(self._layer.name, patch)], source="manual", session_id=session_id)

    def withdraw(
        self,
        field: str,
        *elements: str,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        session_scoped: bool | None = None,
    ) -> list[Change]:
        """Retract single elements of a keyed list field (one policy rule each), leaving the others.

        An element matches a stored one with the same key: ``withdraw("rules", "never use emojis")``
        retracts the stored "Never use emojis!" too. ``session_scoped``: as in :meth:`remove`.
        """
        scope = write_scope(self._layer, user_id, agent_id, session_id, session_scoped)
        if field not in self._layer.keyed_lists:
            raise InvalidInputError(f"{self._layer.name}.{field} is not a keyed list; use remove({field!r})")
        keys = tuple(self._layer.element_key(field, _clean_text(e, f"{field} element")) for e in elements)
        patch = FieldPatch(values={}, remove=keys)
        return self._writes.apply(scope, [(self._layer.name, patch)], source="manual", session_id=session_id)

    def get(
        self, *, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None
    ) -> Any:
        """The layer's schema instance for the scope (agent values over shared ones, a session's own
        values over user-wide ones)."""
        return self._writes.state(Scope.addressed(user_id, agent_id, session_id)).layers[self._layer.name]


class CollectionHandle:
    """A collection layer (knowledge, feedback): entries with ids."""

    def __init__(self, writes: Writes, layer: CollectionLayer) -> None:
        self._writes, self._layer = writes, layer

    def add(
        self,
        text: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        session_scoped: bool | None = None,
        replaces: str | None = None,
        expires_at: datetime | None = None,
        **fields: Any,
    ) -> str:
        """Add an entry and return its id (the existing item's id when it is a duplicate).

        ``replaces`` names a live item this entry contradicts: that item is closed, not erased.
        ``expires_at`` (a timezone-aware datetime in the future): when the entry leaves the memory;
        given for a duplicate, it becomes the existing item's expiry.
        ``session_scoped=True`` keeps the entry in the session ``session_id`` only (``None``: as the
        layer's ``LayerConfig(session_scoped=...)`` says).
        """
        return self.add_many(
            [{"text": text, **fields}],
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            session_scoped=session_scoped,
            replaces=replaces,
            expires_at=expires_at,
        )[0]

    def add_many(
        self,
        entries: Iterable[str | Mapping[str, Any]],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        session_scoped: bool | None = None,
        replaces: str | None = None,
        expires_at: datetime | None = None,
    ) -> list[str]:
        """Add several entries in one transaction; return their ids in order. ``expires_at`` and
        ``session_scoped``: as in :meth:`add`, for every entry."""
        scope = write_scope(self._layer, user_id, agent_id, session_id, session_scoped)
        session = session_id  # checked by write_scope: where the entries were written, kept as provenance
        name = self._layer.name
        # A str is iterable too: taken as entries it would store one entry per character.
        if isinstance(entries, str | Mapping) or not isinstance(entries, Iterable):
            raise InvalidInputError(
                f"{name} entries must be a list of texts or dicts, not {type(entries).__name__}"
            )
        values = []
        for raw in entries:
            if not isinstance(raw, str | Mapping):
                raise InvalidInputError(f"a {name} entry must be a text or a dict, not {type(raw).__name__}")
            entry = {"text": raw} if isinstance(raw, str) else dict(raw)
            entry["text"] = _clean_text(entry.get("text"), f"{name} text")
            values.append(self._layer.schema.validate_entry(entry, name))
        if replaces is not None:
            check_id(replaces, "replaces", required=True)
        if expires_at is not None:
            checked_time(expires_at, "expires_at")
        # Each manual call is one occurrence (feedback counts occurrences); a session is one too.
        occurrence = session or uuid.uuid4().hex
        patch = NewEntries(
            tuple(
                Entry(value=v, replaces=replaces if i == 0 else None, occurrence=occurrence)
                for i, v in enumerate(values)
            )
        )

        with self._writes.transaction(scope) as writer:
            if expires_at is not None and expires_at <= writer.now:
                raise InvalidInputError(f"expires_at {expires_at.isoformat()} is not in the future")
            current = self._layer.candidates(writer, patch)
            if replaces is not None and replaces not in {item.id for item in current}:
                raise NotFoundError(f"no live {name} item {replaces!r} in this scope to replace")
            merged = self._layer.merge_entries(current, patch, writer.now)
            if any(result is None for result in merged.results):
                # Raised inside the transaction: nothing is written.
                raise InvalidInputError(
                    f"{len(values)} entries do not fit the {name} cap of {self._layer.max_items} items"
                )
            changes = writer.apply(
                name, merged.ops, source="manual", session_id=session, expires_at=expires_at
            )
            if expires_at is not None:
                existing = list({r.id: r for r in merged.results if isinstance(r, MemoryItem)}.values())
                writer.set_expiry(existing, expires_at, source="manual", session_id=session)
        added = {c.key: c.item_id for c in changes if c.op == "add"}  # new items' keys are unique
        return [added[r.key] if isinstance(r, NewItem) else r.id for r in merged.results if r is not None]

    def list(
        self, *, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None
    ) -> list[MemoryItem]:
        """Live entries of the scope, oldest first, typed by the schema (``item.data``); with
        ``session_id``, that session's own entries too."""
        scope = Scope.addressed(user_id, agent_id, session_id)
        items: list[MemoryItem] = self._writes.state(scope).layers[self._layer.name]
        return items
