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
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigurationError, ModelError
from ..errors import TransientModelError as TransientModelError
from .bridge import on_bridge, stream_on_bridge
from .failures import model_error

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
    fails the call at once (and reaches the caller as a :class:`~agentmem.ModelError`, unless it is
    an :class:`~agentmem.AgentMemError` already).

    Optionally a model may define ``supports_json_schema() -> bool``: when it returns ``False``,
    extraction sends ``{"type": "json_object"}`` and puts the JSON Schema in the prompt instead of in
    ``response_format``. Without the method, JSON Schema support is assumed.
    """

    async def generate(self, request: ModelRequest) -> ModelResponse: ...


@runtime_checkable
class StreamingModel(Model, Protocol):
    """A :class:`Model` that can also stream its reply (``Agent.astream`` uses it; optional).

    ``stream`` is an async generator: it yields the reply's text in pieces as the model writes it,
    then, last, one :class:`ModelResponse` with the whole reply (its text, tool calls and tokens).
    A model without ``stream`` is streamed as one piece, after ``generate`` answers.
    """

    def stream(self, request: ModelRequest) -> AsyncIterator[str | ModelResponse]: ...


_litellm_lock = threading.Lock()
_litellm_module: Any = None


def _litellm() -> Any:
    global _litellm_module
    with _litellm_lock:
        if _litellm_module is None:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import
            import litellm

            # agentmem prints nothing: no "Provider List" or "Give Feedback / Get Help" banners on
            # errors (every failure reaches the caller as a ModelError instead). litellm's debug
            # output (set_verbose, LITELLM_LOG) stays off unless the user turns it on.
            litellm.suppress_debug_info = True
            _litellm_module = litellm
        return _litellm_module


async def _alitellm() -> Any:
    if _litellm_module is not None:
        return _litellm_module
    return await asyncio.to_thread(_litellm)  # seconds of import: not on the event loop


_RETRY_OPTIONS = ("max_retries", "num_retries")


class LiteLLMModel:
    """Any model litellm knows, e.g. ``"gpt-4o-mini"`` or ``"openai/qwen2.5-7b-instruct"`` with
    ``options={"api_base": "http://localhost:1234/v1"}``. Options pass through to
    ``litellm.acompletion``, except retries: those are :class:`~agentmem.RetryPolicy`'s.

    Every failure is raised as a :class:`~agentmem.ModelError`: :class:`~agentmem.TransientModelError`
    (or its :class:`~agentmem.RateLimitError`) for failures worth retrying, and
    :class:`~agentmem.AuthenticationError`, :class:`~agentmem.ModelNotFoundError`,
    :class:`~agentmem.ContextLengthError` or a plain ModelError for those no retry fixes.
    """

    def __init__(self, model: str, options: Mapping[str, Any] | None = None) -> None:
        self.model = model
        self._priced = True  # whether litellm knows this model's price, until it says it does not
        options = dict(options or {})
        for name in _RETRY_OPTIONS:
            if options.get(name):  # the SDK's own retries would hide attempts and skip our limit
                raise ConfigurationError(
                    f"model_options[{name!r}] is not supported: retries are set with "
                    "retry=RetryPolicy(attempts=...)"
                )
        self.options = {**options, "max_retries": 0}

    def __repr__(self) -> str:
        return f"LiteLLMModel({self.model!r})"

    def supports_json_schema(self) -> bool:
        """Whether litellm knows the model to accept a JSON Schema ``response_format``."""
        litellm = _litellm()
        try:
            return bool(litellm.supports_response_schema(model=self.model))
        except Exception:  # unknown models: fall back to JSON mode
            return False

    def _kwargs(self, request: ModelRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in request.messages],
            **self.options,
        }
        if request.tools:
            kwargs["tools"] = [dict(t) for t in request.tools]
        if request.response_format is not None:
            kwargs["response_format"] = dict(request.response_format)
        return kwargs

    # litellm binds its process-wide logging worker (and caches its async clients) to an event loop:
    # every call runs on the bridge's one loop, whichever loop awaits it (see bridge.py).

    async def generate(self, request: ModelRequest) -> ModelResponse:
        return await on_bridge(self._generate(request))

    def stream(self, request: ModelRequest) -> AsyncIterator[str | ModelResponse]:
        """The reply's text in pieces as the provider sends them (``stream=True``), then the whole
        reply, rebuilt from the chunks by litellm (tool calls and usage included)."""
        return stream_on_bridge(self._stream(request))

    async def _generate(self, request: ModelRequest) -> ModelResponse:
        litellm = await _alitellm()
        kwargs = self._kwargs(request)
        try:
            return self._response(litellm, await litellm.acompletion(**kwargs))
        except Exception as exc:
            raise model_error(litellm, exc, self.model, self.options) from exc

    async def _stream(self, request: ModelRequest) -> AsyncIterator[str | ModelResponse]:
        litellm = await _alitellm()
        kwargs = {**self._kwargs(request), "stream": True, "stream_options": {"include_usage": True}}
        chunks: list[Any] = []
        try:
            async for chunk in await litellm.acompletion(**kwargs):
                chunks.append(chunk)
                choices = getattr(chunk, "choices", None)
                text = getattr(choices[0].delta, "content", None) if choices else None
                if text:
                    yield text
            whole = litellm.stream_chunk_builder(chunks, messages=kwargs["messages"])
            if whole is None:
                raise ModelError(f"{self.model}: the stream ended without a reply")
            response = self._response(litellm, whole)
        except ModelError:
            raise
        except Exception as exc:
            raise model_error(litellm, exc, self.model, self.options) from exc
        yield response

    def _price(self, litellm: Any, response: Any) -> float | None:
        if not self._priced:
            return None
        try:
            return float(litellm.completion_cost(completion_response=response))
        except Exception:  # litellm has no price for this model (local ones in particular)
            self._priced = False  # nor will it have next time: failing to price costs more than pricing
            return None

    def _response(self, litellm: Any, response: Any) -> ModelResponse:
        usage = getattr(response, "usage", None)
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
            cost=self._price(litellm, response),
        )


def resolve_model(model: str | Model | None, options: Mapping[str, Any] | None) -> Model | None:
    """A litellm model id becomes a :class:`LiteLLMModel`; an object must implement :class:`Model`."""
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
