"""The error family. Everything agentmem raises on purpose derives from :class:`AgentMemError`."""

from __future__ import annotations


class AgentMemError(Exception):
    """Root of every error agentmem raises on purpose."""


class ConfigurationError(AgentMemError):
    """A developer's mistake in how agentmem is set up (bad schema, unknown field, bad option)."""


class InvalidInputError(AgentMemError):
    """Input that cannot be stored: wrong type, empty, too large, not valid for the schema, or text
    that no database holds alike (a lone surrogate, a control character other than tab, newline and
    carriage return) or data nested deeper than ``agentmem.validation.MAX_DEPTH``."""


class ScopeError(InvalidInputError):
    """An invalid ``user_id``/``agent_id``/``session_id``, or an item outside the caller's scope."""


class SecretError(InvalidInputError):
    """The input looks like a secret (API key, password, card number, token); secrets are never stored."""


class NotFoundError(AgentMemError):
    """No item (or user) with that id in the caller's scope."""


class ErasedError(NotFoundError):
    """The user was deleted (``delete_user``) while this write was under way; nothing was written."""


class ConflictError(AgentMemError):
    """The operation would overwrite existing memory, e.g. importing a user that already exists."""


class StoreError(AgentMemError):
    """The database failed or is unusable: unreachable, locked, an unknown schema version, a failed
    migration. The database driver's own error is chained (``__cause__``)."""


class UnsupportedError(AgentMemError, NotImplementedError):
    """A framework asked for something agentmem cannot do (e.g. removing one message from a session's
    history)."""


class ClosedError(AgentMemError):
    """The :class:`~agentmem.MemoryManager` (or :class:`~agentmem.Agent`) was closed and cannot be used."""


class ModelError(AgentMemError):
    """A model call failed: the provider refused the request or could not answer it. The provider's
    (or litellm's) own error is chained (``__cause__``). A subclass says why where it is known."""


class TransientModelError(ModelError):
    """A model call failed in a way worth retrying with backoff: rate limit, timeout, dropped
    connection, server error (5xx). :class:`~agentmem.LiteLLMModel` raises it for those; raise it from
    your own model to have :class:`~agentmem.RetryPolicy` retry the call. Any other exception from a
    model fails the call at once."""


class RateLimitError(TransientModelError):
    """The provider refused the call for now (HTTP 429): retried; raised when the retries ran out."""


class AuthenticationError(ModelError):
    """No API key, or the provider refused the key (HTTP 401/403). Never retried."""


class ModelNotFoundError(ModelError):
    """The provider (or litellm) does not know the model, or the ``api_base`` has no such endpoint
    (HTTP 404). Never retried."""


class ContextLengthError(ModelError):
    """The request is longer than the model's context window. Never retried."""


class EmbeddingError(AgentMemError):
    """An embedding model failed or answered with vectors agentmem cannot use (wrong count, shape or
    dimension, not finite). A write never raises it: its items are stored and stay pending embedding
    (see ``MemoryManager.retry_pending``). The model's own error, if any, is chained (``__cause__``)."""


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
