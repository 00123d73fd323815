"""The model: one async protocol for extraction, session summaries and the Agent.

A model is any object with ``async def generate(request: ModelRequest) -> ModelResponse``. A litellm
model id becomes a :class:`LiteLLMModel`; tests use :class:`agentmem.testing.ScriptedModel`.

litellm is imported only here, and only when a model id is first called: importing it takes seconds
(and, without ``LITELLM_LOCAL_MODEL_COST_MAP=True``, fetches a price map from the network).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..errors import TransientModelError as TransientModelError

Message = Mapping[str, Any]
"""An OpenAI-style chat message: ``{"role": ..., "content": ...}`` (plus ``tool_calls`` etc.)."""


@dataclass(frozen=True)
class ModelRequest:
    """What agentmem asks of a model.

    Attributes:
        messages: OpenAI-style chat messages, system message first.
        tools: tool definitions in OpenAI function format, or ``None`` (only the Agent sends tools).
        response_format: an OpenAI-style ``response_format`` (``{"type": "json_schema", ...}`` or
            ``{"type": "json_object"}``), or ``None`` for plain text. Extraction sends one.
    """

    messages: Sequence[Message]
    tools: Sequence[Mapping[str, Any]] | None = None
    response_format: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ToolRequest:
    """A tool call the model asked for."""

    id: str
    name: str
    arguments: str
    """The arguments as JSON text, as the model wrote them."""


@dataclass(frozen=True)
class ModelResponse:
    """A model's answer and what it cost.

    Attributes:
        text: the reply's text ("" when the model only called tools).
        tool_calls: tools the model asked to call, in order.
        prompt_tokens, completion_tokens: as the provider reported them (0 when unknown).
        cost: in USD, or ``None`` when unknown.
    """

    text: str = ""
    tool_calls: Sequence[ToolRequest] = field(default_factory=tuple)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None


@runtime_checkable
class Model(Protocol):
    """What agentmem needs of a model: answer one request, asynchronously.

    ``generate`` must not block the event loop (wrap a blocking client in ``asyncio.to_thread``).
    Raise :class:`~agentmem.TransientModelError` for a failure worth retrying; any other exception
    fails the call at once.

    Optionally a model may define ``supports_json_schema() -> bool``: when it returns ``False``,
    extraction sends ``{"type": "json_object"}`` and puts the JSON Schema in the prompt instead of in
    ``response_format``. Without the method, JSON Schema support is assumed.
    """

    async def generate(self, request: ModelRequest) -> ModelResponse: ...


_litellm_lock = threading.Lock()
_litellm_module: Any = None


def _litellm() -> Any:
    global _litellm_module
    with _litellm_lock:
        if _litellm_module is None:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import
            import litellm

            litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banner on errors
            _litellm_module = litellm
        return _litellm_module


async def _alitellm() -> Any:
    if _litellm_module is not None:
        return _litellm_module
    return await asyncio.to_thread(_litellm)  # seconds of import: not on the event loop


RETRYABLE_STATUS = frozenset({408, 409, 429})  # and every 5xx
_TRANSIENT = (
    "RateLimitError",
    "Timeout",
    "APIConnectionError",
    "InternalServerError",
    "ServiceUnavailableError",
    "BadGatewayError",
)
_PERMANENT = (  # checked first: some subclass a transient type
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "BadRequestError",
    "UnprocessableEntityError",
)


def _retryable(status: int) -> bool:
    return status in RETRYABLE_STATUS or status >= 500


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_transient(litellm: Any, exc: BaseException) -> bool:
    """Worth another try: the provider answered 408, 409, 429 or 5xx, or the connection failed or
    timed out. Not: the provider refused the request (400, 401, 403, 404, 422), or the client failed
    before sending it (litellm reports a missing API key as a 500, so its own status is not trusted
    when the exception chain shows what really happened)."""
    import httpx
    import openai

    for cause in _causes(exc):
        if type(cause).__module__.split(".")[0] == "litellm":
            continue  # litellm's wrappers carry a status of their own making
        if isinstance(cause, httpx.HTTPStatusError):
            return _retryable(cause.response.status_code)
        if isinstance(cause, openai.APIStatusError):
            return _retryable(cause.status_code)
        if isinstance(
            cause, httpx.TransportError | openai.APIConnectionError | ConnectionError | TimeoutError
        ):
            return True
        if isinstance(cause, openai.OpenAIError) and not isinstance(cause, openai.APIError):
            return False  # the SDK refused to send: no API key, a bad option
    if isinstance(exc, _types(litellm, _PERMANENT)):
        return False
    if isinstance(exc, _types(litellm, _TRANSIENT)):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and _retryable(status)


def _types(litellm: Any, names: Sequence[str]) -> tuple[type[BaseException], ...]:
    return tuple(getattr(litellm, n) for n in names if hasattr(litellm, n))


@contextmanager
def _translated(litellm: Any) -> Iterator[None]:
    """Provider failures worth another try become TransientModelError; others pass unchanged."""
    try:
        yield
    except Exception as exc:
        if _is_transient(litellm, exc):
            raise TransientModelError(f"{type(exc).__name__}: {exc}") from exc
        raise


class LiteLLMModel:
    """Any model litellm knows, e.g. ``"gpt-4o-mini"`` or ``"openai/qwen2.5-7b-instruct"`` with
    ``options={"api_base": "http://localhost:1234/v1"}``. Options pass through to
    ``litellm.acompletion``. Transient provider failures are raised as TransientModelError."""

    def __init__(self, model: str, options: Mapping[str, Any] | None = None) -> None:
        self.model = model
        # Retries are ours (RetryPolicy, under one concurrency limit); the SDK's own would hide attempts.
        self.options = {"max_retries": 0, **dict(options or {})}

    def __repr__(self) -> str:
        return f"LiteLLMModel({self.model!r})"

    def supports_json_schema(self) -> bool:
        """Whether litellm knows the model to accept a JSON Schema ``response_format``."""
        litellm = _litellm()
        try:
            return bool(litellm.supports_response_schema(model=self.model))
        except Exception:  # unknown models: fall back to JSON mode
            return False

    async def generate(self, request: ModelRequest) -> ModelResponse:
        litellm = await _alitellm()
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in request.messages],
            **self.options,
        }
        if request.tools:
            kwargs["tools"] = [dict(t) for t in request.tools]
        if request.response_format is not None:
            kwargs["response_format"] = dict(request.response_format)
        with _translated(litellm):
            response = await litellm.acompletion(**kwargs)
        return self._response(litellm, response)

    @staticmethod
    def _response(litellm: Any, response: Any) -> ModelResponse:
        usage = getattr(response, "usage", None)
        try:
            cost = float(litellm.completion_cost(completion_response=response))
        except Exception:  # litellm does not price every model (local ones in particular)
            cost = None
        message = response.choices[0].message
        calls = tuple(
            ToolRequest(id=c.id, name=c.function.name, arguments=c.function.arguments or "{}")
            for c in (getattr(message, "tool_calls", None) or [])
        )
        return ModelResponse(
            text=message.content or "",
            tool_calls=calls,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            cost=cost,
        )


def resolve_model(model: str | Model | None, options: Mapping[str, Any] | None) -> Model | None:
    """A litellm model id becomes a :class:`LiteLLMModel`; an object must implement :class:`Model`."""
    from ..errors import ConfigurationError

    if model is None:
        if options:
            raise ConfigurationError("model_options were given without a model")
        return None
    if isinstance(model, str):
        if not model.strip():
            raise ConfigurationError("model must be a non-empty litellm model id")
        return LiteLLMModel(model, options)
    if not inspect.iscoroutinefunction(getattr(model, "generate", None)):
        raise ConfigurationError(
            "model must be a litellm model id or an object with `async def generate(request)` "
            f"(see agentmem.Model); got {type(model).__name__}"
        )
    if options:
        raise ConfigurationError("model_options apply to litellm model ids, not to a model object")
    assert isinstance(model, Model)
    return model
