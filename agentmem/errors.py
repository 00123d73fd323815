"""The error family. Everything agentmem raises on purpose derives from :class:`AgentMemError`."""

from __future__ import annotations


class AgentMemError(Exception):
    """Root of every error agentmem raises on purpose."""


class ConfigurationError(AgentMemError):
    """A developer's mistake in how agentmem is set up (bad schema, unknown field, bad option)."""


class ScopeError(AgentMemError):
    """An invalid ``user_id``/``agent_id``/``session_id``, or an item outside the caller's scope."""


class InvalidInputError(AgentMemError):
    """Input that cannot be stored: wrong type, empty, too large, or not valid for the schema."""


class SecretError(InvalidInputError):
    """The input looks like a secret (API key, password, card number, token); secrets are never stored."""


class NotFoundError(AgentMemError):
    """No item (or user) with that id in the caller's scope."""


class ErasedError(NotFoundError):
    """The user was deleted (``delete_user``) while this write was under way; nothing was written."""


class ConflictError(AgentMemError):
    """The operation would overwrite existing memory, e.g. importing a user that already exists."""


class StoreError(AgentMemError):
    """The database is unusable: unknown schema version, failed migration."""


class TransientModelError(AgentMemError):
    """A model call failed in a way worth retrying with backoff: rate limit, timeout, dropped
    connection, server error (5xx). :class:`~agentmem.LiteLLMModel` raises it for those; raise it from
    your own model to have :class:`~agentmem.RetryPolicy` retry the call. Any other exception from a
    model fails the call at once."""


class ExtractionError(AgentMemError):
    """Extraction from a conversation failed for good; nothing was written.

    Attributes:
        attempts: how many model calls were made.
        last_output: the last raw model output, if any.
        layer: the layer being extracted, or ``None`` for a combined request.
        pending_id: the pending extraction that keeps the input for ``retry_pending``.
    """

    def __init__(
        self,
        message: str,
        *,
        attempts: int = 0,
        last_output: str | None = None,
        layer: str | None = None,
    ) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last_output = last_output
        self.layer = layer
        self.pending_id: str | None = None
