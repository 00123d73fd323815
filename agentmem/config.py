"""Per-layer configuration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from .errors import ConfigurationError


@dataclass(frozen=True)
class LayerConfig:
    """How one layer behaves.

    Attributes:
        schema: a dataclass replacing the layer's default schema (fields for profile and policies;
            an entry with a ``text: str`` field for knowledge and feedback).
        extract: whether ``learn`` extracts this layer from conversations.
        inject: whether ``compile`` puts this layer into the context.
        budget_share: the most this layer may take of a ``token_budget`` (0..1); ``None``: no cap.
        max_items: cap on live items (knowledge, feedback); over it, items expire by the layer's
            stated rule. ``None``: the layer's default.
        extraction_prompt: a Jinja template (text) replacing the layer's default extraction prompt.
        learn_for_agent: when ``learn`` runs with a ``user_id`` and an ``agent_id``, what it extracts
            for this layer also goes into the agent's own memory, shared by all its users (new values
            and entries only; never retractions, links to the user's items, or the session). Off by
            default: a user's memory never flows into agent memory unless a layer is configured so.
        ttl: how long the layer's items live after their last update (a ``timedelta``); then they
            leave the context at once, and ``cleanup`` deletes them. ``None``: they never expire
            (an item may still have its own ``expires_at``). Read, not stored: a new ttl applies to
            the items already stored too.
        session_scoped: what ``learn(..., session_id=...)`` extracts for this layer, and what manual
            writes and memory tools given a ``session_id`` store, belongs to that session: seen only by
            reads with the same ``session_id``, deleted with the session. ``False`` (default): stored
            user-wide, the session kept only as where it was learned. Manual writes may override it
            with ``session_scoped=``.
    """

    schema: type | None = None
    extract: bool = True
    inject: bool = True
    budget_share: float | None = None
    max_items: int | None = None
    extraction_prompt: str | None = None
    learn_for_agent: bool = False
    ttl: timedelta | None = None
    session_scoped: bool = False

    def __post_init__(self) -> None:
        if self.budget_share is not None and not 0 < self.budget_share <= 1:
            raise ConfigurationError(f"budget_share must be in (0, 1], got {self.budget_share}")
        if not isinstance(self.learn_for_agent, bool):
            raise ConfigurationError(f"learn_for_agent must be a bool, got {self.learn_for_agent!r}")
        if self.max_items is not None and self.max_items < 1:
            raise ConfigurationError(f"max_items must be at least 1, got {self.max_items}")
        if self.ttl is not None and (not isinstance(self.ttl, timedelta) or self.ttl <= timedelta(0)):
            raise ConfigurationError(f"ttl must be a positive timedelta, got {self.ttl!r}")
