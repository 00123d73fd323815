"""RetryPolicy: how every model call is retried (extraction, session summaries, the Agent)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from tenacity import Retrying

from ..errors import ConfigurationError


@dataclass(frozen=True)
class RetryPolicy:
    """How agentmem retries model calls. One policy serves extraction, session summaries and the Agent.

    Two kinds of failure are retried, each on its own budget:

    - **transient**: a :class:`~agentmem.TransientModelError` (LiteLLMModel raises it for rate limits,
      timeouts, dropped connections and 5xx; your own model may raise it). The same request is sent
      again, up to ``attempts`` tries in all, after a random wait of up to
      ``backoff * 2 ** (try - 1)`` seconds, never more than ``max_backoff`` ("full jitter").
    - **invalid**: a reply that fails validation (an extraction that does not match the schema, an
      empty summary) is re-asked with the validation error appended, up to ``reasks`` times. Each
      re-ask has its own transient budget. The Agent's chat replies are not validated.

    Anything else (authentication, an unknown model, a bad request, a bug) fails at once.

    Attributes:
        attempts: tries per request for transient failures, the first included (1: no retry).
        backoff: seconds; the scale of the exponential backoff (0: no wait).
        max_backoff: seconds; the longest single wait.
        reasks: re-asks after an invalid reply, or a ``tenacity.Retrying`` whose ``stop`` (and
            ``wait``) decide instead. ``MemoryManager(max_retries=...)`` sets this.
    """

    attempts: int = 4
    backoff: float = 0.2
    max_backoff: float = 5.0
    reasks: int | Retrying = 2

    def __post_init__(self) -> None:
        if not _is_int(self.attempts) or self.attempts < 1:
            raise ConfigurationError(f"RetryPolicy.attempts must be an int >= 1, got {self.attempts!r}")
        for name in ("backoff", "max_backoff"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
                raise ConfigurationError(f"RetryPolicy.{name} must be a number >= 0, got {value!r}")
        check_reasks(self.reasks, "RetryPolicy.reasks")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_reasks(value: object, name: str) -> None:
    if isinstance(value, Retrying):
        return
    if not _is_int(value):
        raise ConfigurationError(f"{name} must be an int or a tenacity.Retrying, got {value!r}")
    assert isinstance(value, int)
    if value < 0:
        raise ConfigurationError(f"{name} must be >= 0, got {value}")


def retry_policy(retry: RetryPolicy | None, max_retries: int | Retrying | None) -> RetryPolicy:
    """The manager's policy: ``retry`` (or the default); ``max_retries``, when given, sets ``reasks``."""
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise ConfigurationError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
    policy = retry or RetryPolicy()
    if max_retries is None:
        return policy
    check_reasks(max_retries, "max_retries")
    return replace(policy, reasks=max_retries)
