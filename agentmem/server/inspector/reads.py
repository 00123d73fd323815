"""What the inspector reads that the public memory API does not hand out whole: every item of a user
(closed ones too, to show what replaced them, with the store's clock and expiry rules that say why one
is closed) and whether one user exists without listing them all. What the public API or the server's
shared reports hand out (pending learns, sessions, history, the context report) is read through them.
Reads only; nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import or_, select

from ...manager import MemoryManager
from ...records import MemoryItem, PendingLearn
from ...scope import Scope
from ...store.expiry import Expiry
from ...store.rows import EVENTS, ITEMS, item_from_row
from ...store.sessions import SESSIONS

SHARED = ""
"""The stored agent key of a user's shared memory."""


@dataclass
class ItemView:
    """One item as the layers screen shows it: live or closed, and what replaced it."""

    item: MemoryItem
    closed: str | None
    """``None`` while live; else why it is not: ``"superseded"``, ``"expired"`` or ``"deleted"``."""
    successor: MemoryItem | None = None


@dataclass
class LayerView:
    name: str
    live: list[ItemView] = field(default_factory=list)
    closed: list[ItemView] = field(default_factory=list)


@dataclass
class ScopeView:
    """The items of one part of a user's memory: shared (``agent_id`` ``None``) or one agent's."""

    agent_id: str | None
    layers: list[LayerView]

    @property
    def live_count(self) -> int:
        return sum(len(layer.live) for layer in self.layers)

    @property
    def closed_count(self) -> int:
        return sum(len(layer.closed) for layer in self.layers)


def _closed_reason(item: MemoryItem, expiry: Expiry) -> str | None:
    if item.superseded_by is not None:
        return "superseded"
    if item.valid_to is not None:
        return "deleted"
    if (item.expires_at is not None and item.expires_at <= expiry.now) or item.updated_at <= expiry.since(
        item.layer
    ):
        return "expired"
    return None


def user_items(mem: MemoryManager, user_id: str) -> list[MemoryItem]:
    """Every stored item of the user: shared and every agent's, live and closed, in write order."""
    Scope.of(user_id)  # a bad id is InvalidInputError, never a query
    stmt = select(ITEMS).where(ITEMS.c.user_id == user_id).order_by(ITEMS.c.pk)
    with mem._store.engine.connect() as conn:
        return [item_from_row(row) for row in conn.execute(stmt)]


def user_layers(mem: MemoryManager, user_id: str, agent_id: str | None = None) -> list[ScopeView]:
    """The user's memory by part (shared first, then each agent's, or only ``agent_id``'s with the
    shared part when given) and by layer, closed items beside the live ones with their successors."""
    items = user_items(mem, user_id)
    by_id = {item.id: item for item in items}
    expiry = mem._store.expiry()  # one moment for the whole page
    agents = sorted({item.agent_id for item in items if item.agent_id})
    if agent_id is not None:
        agents = [agent_id]
    views = []
    for agent in [None, *agents]:
        layers = {name: LayerView(name) for name in mem.layers}
        for item in items:
            if (item.agent_id or None) != agent:
                continue
            reason = _closed_reason(item, expiry)
            view = ItemView(item, reason, by_id.get(item.superseded_by) if item.superseded_by else None)
            layer = layers.setdefault(item.layer, LayerView(item.layer))
            (layer.closed if reason else layer.live).append(view)
        views.append(ScopeView(agent, list(layers.values())))
    return views


def pending(mem: MemoryManager, user_id: str, agent_id: str | None = None) -> list[PendingLearn]:
    """The user's pending (failed) learns, oldest first: every agent's, or only ``agent_id``'s (as
    ``GET /v1/users/{user_id}/pending`` filters them for a caller acting as an agent)."""
    found = mem.pending(user_id=user_id)
    return found if agent_id is None else [p for p in found if p.agent_id == agent_id]


def user_exists(mem: MemoryManager, user_id: str) -> bool:
    """Whether the user has items, history or sessions (what makes ``list_users`` list a user), asked
    with one ``EXISTS`` per table on its user index instead of listing every user."""
    Scope.of(user_id)  # a bad id is InvalidInputError, never a query
    probes = [
        select(table.c.user_id).where(table.c.user_id == user_id).exists()
        for table in (ITEMS, EVENTS, SESSIONS)
    ]
    with mem._store.engine.connect() as conn:
        return bool(conn.execute(select(or_(*probes))).scalar())
