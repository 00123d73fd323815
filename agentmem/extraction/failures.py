"""What a failed litellm call means: which :class:`~agentmem.ModelError` it becomes.

litellm wraps the provider SDK's errors in types of its own, with a status of its own making (a
missing OpenAI key is a "500"), so the exception chain is read first: an HTTP status the provider
really sent, a connection that failed, or a client that refused to send. litellm's own types decide
only when the chain shows none of these.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..errors import (
    AuthenticationError,
    ContextLengthError,
    ModelError,
    ModelNotFoundError,
    RateLimitError,
    TransientModelError,
)

RETRYABLE_STATUS = frozenset({408, 409, 429})  # and every 5xx
_MISSING_KEY = re.compile(r"\bmissing\b.{0,40}\b(?:api[ _-]?key|credentials)\b", re.IGNORECASE | re.DOTALL)
_CONTEXT = re.compile(
    r"context[ _](?:length|window)|maximum context|prompt is too long|too many tokens", re.IGNORECASE
)
_BY_LITELLM_TYPE: Sequence[tuple[str, type[ModelError]]] = (  # first match wins: subclasses first
    ("ContextWindowExceededError", ContextLengthError),
    ("AuthenticationError", AuthenticationError),
    ("PermissionDeniedError", AuthenticationError),
    ("NotFoundError", ModelNotFoundError),
    ("RateLimitError", RateLimitError),
    ("BadRequestError", ModelError),
    ("UnprocessableEntityError", ModelError),
    ("Timeout", TransientModelError),
    ("APIConnectionError", TransientModelError),
    ("InternalServerError", TransientModelError),
    ("ServiceUnavailableError", TransientModelError),
    ("BadGatewayError", TransientModelError),
)


def by_status(status: int, text: str) -> type[ModelError]:
    """The error for an HTTP status a provider answered with (``text``: its message)."""
    if status in (401, 403):
        return AuthenticationError
    if status == 404:
        return ModelNotFoundError
    if status == 429:
        return RateLimitError
    if status in RETRYABLE_STATUS or status >= 500:
        return TransientModelError
    if _CONTEXT.search(text):
        return ContextLengthError
    return ModelError


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _from_chain(exc: BaseException) -> type[ModelError] | None:
    """The error the exception chain shows, below litellm's wrappers; ``None`` when it shows none."""
    import httpx
    import openai

    for cause in _causes(exc):
        if type(cause).__module__.split(".")[0] == "litellm":
            continue  # litellm's wrappers carry a status of their own making
        if isinstance(cause, httpx.HTTPStatusError):
            return by_status(cause.response.status_code, f"{cause} {_body(cause.response)}")
        if isinstance(cause, openai.APIStatusError):
            return by_status(cause.status_code, f"{cause} {cause.body}")
        if isinstance(
            cause, httpx.TransportError | openai.APIConnectionError | ConnectionError | TimeoutError
        ):
            return TransientModelError
        if _MISSING_KEY.search(str(cause)):
            return AuthenticationError  # the client refused to send without a key
        if isinstance(cause, openai.OpenAIError) and not isinstance(cause, openai.APIError):
            return ModelError  # the SDK refused to send: a bad option
    return None


def _body(response: Any) -> str:
    try:
        return str(response.text)
    except Exception:  # a streamed or unread body
        return ""


def model_error(litellm: Any, exc: Exception, model: str, options: Mapping[str, Any]) -> ModelError:
    """``exc`` (from ``litellm.acompletion``) as the ModelError to raise ``from`` it."""
    kind = _from_chain(exc)
    if kind is None:
        kind = next(
            (error for name, error in _BY_LITELLM_TYPE if isinstance(exc, getattr(litellm, name, ()))),
            None,
        )
    if kind is None:
        status = getattr(exc, "status_code", None)
        kind = by_status(status, str(exc)) if isinstance(status, int) else ModelError
    if kind is ModelError and _CONTEXT.search(str(exc)):
        kind = ContextLengthError
    if kind is ModelError and "LLM Provider NOT provided" in str(exc):
        kind = ModelNotFoundError
    # litellm's messages name their type already ("litellm.AuthenticationError: ...").
    detail = str(exc) if type(exc).__module__.startswith("litellm") else f"{type(exc).__name__}: {exc}"
    return kind(f"{model}: {_advice(litellm, kind, model, options)}{detail}")


def _advice(litellm: Any, kind: type[ModelError], model: str, options: Mapping[str, Any]) -> str:
    """What to do about it, where that is known: which environment variable a missing key goes in."""
    if kind is AuthenticationError and not options.get("api_key"):
        try:
            missing = list(litellm.validate_environment(model=model).get("missing_keys") or [])
        except Exception:  # litellm cannot tell for this provider
            missing = []
        if missing:
            return f"no API key: set {' or '.join(missing)}, or pass model_options={{'api_key': ...}}. "
    if kind is ModelNotFoundError:
        return "no such model, provider or endpoint (check the model id and api_base). "
    if kind is ContextLengthError:
        return "the request is longer than the model's context window. "
    return ""
