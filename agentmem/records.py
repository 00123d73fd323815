"""Typed records the public API returns: items, events, changes, search hits, snapshots, users and backups."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

Source = Literal["extracted", "agentic", "manual", "imported"]
EventOp = Literal["add", "update", "supersede", "expire", "delete"]


@dataclass(frozen=True, slots=True)
class MemoryItem:
    """One stored unit of a layer: a profile field, a policy, a fact or a feedback entry.

    ``value`` is the JSON form (the field's value for profile and policies, the entry's fields for
    knowledge and feedback); ``data`` is the same value typed by the layer's schema (a dataclass
    instance for knowledge and feedback) when the item comes from :meth:`MemoryManager.get`.
    """

    id: str
    layer: str
    key: str
    text: str
    value: Any
    user_id: str
    agent_id: str | None
    session_id: str | None
    source: str
    confidence: float
    count: int
    explicit: bool
    created_at: datetime
    updated_at: datetime
    valid_to: datetime | None = None
    superseded_by: str | None = None
    expires_at: datetime | None = None
    """When the item leaves the memory, as its write set it (``None``: never); a layer's ``ttl``
    (``LayerConfig``) also ends it that long after ``updated_at``, whichever comes first."""
    session_scope: str | None = None
    """The session this item belongs to, visible only within it; ``None``: user-wide. (``session_id``
    is where it was learned, whichever its scope.)"""
    meta: dict[str, Any] = field(default_factory=dict)
    """Bookkeeping of the merge policy (e.g. feedback occurrences); not shown to the model."""
    data: Any = field(default=None, compare=False)

    @property
    def is_live(self) -> bool:
        return self.valid_to is None


@dataclass(frozen=True, slots=True)
class MemoryEvent:
    """One change to one item, append-only: the audit history."""

    id: int
    item_id: str
    layer: str
    key: str
    op: EventOp
    old: Any
    new: Any
    reason: str | None
    source: str
    user_id: str
    agent_id: str | None
    session_id: str | None
    created_at: datetime
    session_scope: str | None = None
    """The session of the changed item, when it is session-scoped."""


@dataclass(frozen=True, slots=True)
class Change:
    """What one write did to one item (returned by writes, ``learn`` and memory tools)."""

    op: EventOp
    layer: str
    item_id: str
    key: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class SearchHit:
    item: MemoryItem
    score: float


@dataclass(frozen=True)
class MemoryState:
    """A typed snapshot of one scope's live memory.

    ``layers`` holds each configured layer's part, as the layer types it: for a document layer
    (profile, policies) an instance of its schema (a dataclass), for a collection layer (knowledge,
    feedback) a list of items whose ``data`` is a schema instance. ``state.profile`` is
    ``state.layers["profile"]``, and so on; a layer of your own is ``state.layers["goals"]`` (or
    ``state["goals"]``). ``items`` holds every live item, including profile and policy fields, for
    their ids.
    """

    user_id: str
    agent_id: str | None
    layers: Mapping[str, Any]
    items: list[MemoryItem]
    session_id: str | None = None
    """The session whose own memory the snapshot includes (``None``: user-wide memory only)."""

    def __getitem__(self, layer: str) -> Any:
        return self.layers[layer]

    @property
    def profile(self) -> Any:
        return self.layers["profile"]

    @property
    def policies(self) -> Any:
        return self.layers["policies"]

    @property
    def knowledge(self) -> list[MemoryItem]:
        items: list[MemoryItem] = self.layers["knowledge"]
        return items

    @property
    def feedback(self) -> list[MemoryItem]:
        items: list[MemoryItem] = self.layers["feedback"]
        return items

    def item(self, layer: str, key: str) -> MemoryItem | None:
        """The live item of ``layer`` stored under ``key`` (a field name for profile and policies,
        ``rules:<topic>`` for one policy rule)."""
        return next((i for i in self.items if i.layer == layer and i.key == key), None)


@dataclass
class Cost:
    """Model calls and what they cost.

    Attributes:
        model_calls: requests sent to the model (re-asks and transient retries included).
        prompt_tokens, completion_tokens: as the provider reported them.
        cost: in USD when litellm knows the model's price, else ``None``.
    """

    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None

    def add_tokens(self, prompt_tokens: int, completion_tokens: int, cost: float | None) -> None:
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost


@dataclass
class Usage(Cost):
    """What one ``learn`` cost and skipped.

    Attributes:
        skipped: why no model call was needed (salience gate, already learned, nothing enabled).
        dropped: extracted items not stored, by reason (secret, invalid, unknown_alias, misattributed,
            over_cap: beyond the changes one learn takes, stale).
        extractor: ``"model"`` or ``"offline"``.
    """

    skipped: str | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    extractor: str = "offline"

    def drop(self, reason: str, n: int = 1) -> None:
        if n:
            self.dropped[reason] = self.dropped.get(reason, 0) + n


@dataclass
class LearnResult:
    """What one ``learn`` changed, per layer, and what it cost.

    ``agent_changes``: what it also changed in the agent's own memory (layers configured with
    ``LayerConfig(learn_for_agent=True)``); not part of ``changes`` or ``all_changes``.
    """

    changes: dict[str, list[Change]]
    usage: Usage
    agent_changes: list[Change] = field(default_factory=list)

    @property
    def all_changes(self) -> list[Change]:
        return [change for changes in self.changes.values() for change in changes]


@dataclass
class RetryReport:
    """What ``retry_pending`` did: results of the extractions that now succeeded."""

    retried: int
    results: list[LearnResult]
    still_pending: int
    embedded: int = 0
    """Items pending embedding that were embedded (only with an ``embedding_model``)."""


@dataclass(frozen=True, slots=True)
class PendingLearn:
    """A learn whose extraction failed for good, kept for ``retry_pending`` (``MemoryManager.pending``).

    Its messages are the input as stored: secrets already redacted.
    """

    id: str
    user_id: str
    agent_id: str | None
    """The agent whose learn failed; ``None``: the user's shared memory."""
    session_id: str | None
    messages: list[dict[str, Any]]
    error: str
    """Why the last attempt failed."""
    attempts: int
    """Model calls made for it so far, retries included."""
    created_at: datetime
    updated_at: datetime
    """When it was kept, or last retried."""


@dataclass(frozen=True, slots=True)
class UserSummary:
    """One user with memory (``MemoryManager.list_users``)."""

    user_id: str
    items: int
    """Live items, shared and every agent's private ones."""
    sessions: int
    """Conversations (see ``MemoryManager.sessions``)."""
    last_activity: datetime | None
    """When the user's memory or a session of theirs last changed (None if neither ever did)."""


@dataclass(frozen=True, slots=True)
class Backup:
    """A backup ``MemoryManager.backup`` wrote: a SQLite database file (``"sqlite"``), or JSON lines of
    every user's export and every agent's own memory (``"logical"``, from PostgreSQL).
    ``MemoryManager.restore`` reads either."""

    path: Path
    kind: Literal["sqlite", "logical"]
    users: int
    agents: int = 0
    """Agents whose own memory (``export_agent``) the backup holds."""
