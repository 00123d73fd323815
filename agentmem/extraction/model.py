"""The model call, injectable: a litellm model id, or any object with ``complete``/``acomplete``.

litellm is imported only here, and only when a model id is first called: importing it takes seconds
(and, without ``LITELLM_LOCAL_MODEL_COST_MAP=True``, fetches a price map from the network).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

Message = Mapping[str, Any]


@dataclass(frozen=True)
class Completion:
    """One model answer and what it cost."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None


@dataclass(frozen=True)
class ToolRequest:
    """A tool call the model asked for."""

    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it


@dataclass(frozen=True)
class ChatReply:
    """An agent's model turn: text, and/or tool calls to run before the final answer."""

    content: str
    tool_calls: list[ToolRequest]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None


@runtime_checkable
class AgentModel(Protocol):
    """What the :class:`~agentmem.Agent` needs of a model: chat with optional tools."""

    def chat(
        self, messages: Sequence[Message], *, tools: Sequence[Mapping[str, Any]] | None
    ) -> ChatReply: ...

    async def achat(
        self, messages: Sequence[Message], *, tools: Sequence[Mapping[str, Any]] | None
    ) -> ChatReply: ...


class TransientModelError(Exception):
    """A failure worth retrying with backoff (rate limit, timeout, connection, 5xx)."""


@runtime_checkable
class ChatModel(Protocol):
    """What extraction needs of a model. ``response_format`` is an OpenAI-style dict or ``None``."""

    def complete(
        self, messages: Sequence[Message], *, response_format: Mapping[str, Any] | None
    ) -> Completion: ...

    async def acomplete(
        self, messages: Sequence[Message], *, response_format: Mapping[str, Any] | None
    ) -> Completion: ...

    def supports_json_schema(self) -> bool: ...


_litellm_lock = threading.Lock()


def _litellm() -> Any:
    with _litellm_lock:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import
        import litellm

        return litellm


RETRYABLE_STATUS = frozenset({408, 409, 429})  # and every 5xx


def _transient_types(litellm: Any) -> tuple[type[BaseException], ...]:
    names = (
        "RateLimitError",
        "Timeout",
        "APIConnectionError",
        "InternalServerError",
        "ServiceUnavailableError",
        "BadGatewayError",
    )
    return tuple(getattr(litellm, n) for n in names if hasattr(litellm, n))


def _is_transient(litellm: Any, exc: BaseException) -> bool:
    """Rate limits, timeouts, dropped connections and server-side errors are worth another try."""
    if isinstance(exc, _transient_types(litellm)):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status in RETRYABLE_STATUS or status >= 500)


class LiteLLMModel:
    """Any model litellm knows, e.g. ``"gpt-4o-mini"`` or ``"openai/qwen2.5-7b-instruct"`` with
    ``options={"api_base": "http://localhost:1234/v1"}``. Options pass through to litellm."""

    def __init__(self, model: str, options: Mapping[str, Any] | None = None) -> None:
        self.model = model
        # Retries are ours (with backoff and a shared limit); the SDK's own would hide attempts.
        self.options = {"max_retries": 0, **dict(options or {})}

    def __repr__(self) -> str:
        return f"LiteLLMModel({self.model!r})"

    def supports_json_schema(self) -> bool:
        litellm = _litellm()
        try:
            return bool(litellm.supports_response_schema(model=self.model))
        except Exception:  # unknown models: fall back to JSON mode
            return False

    def _kwargs(self, messages: Sequence[Message], extra: Mapping[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in messages],
            **self.options,
        }
        kwargs.update({name: value for name, value in extra.items() if value})
        return kwargs

    def _send(self, messages: Sequence[Message], **extra: Any) -> tuple[Any, Any]:
        litellm = _litellm()
        with _translated(litellm):
            return litellm, litellm.completion(**self._kwargs(messages, extra))

    async def _asend(self, messages: Sequence[Message], **extra: Any) -> tuple[Any, Any]:
        litellm = _litellm()
        with _translated(litellm):
            return litellm, await litellm.acompletion(**self._kwargs(messages, extra))

    def _completion(self, litellm: Any, response: Any) -> Completion:
        usage = getattr(response, "usage", None)
        try:
            cost = float(litellm.completion_cost(completion_response=response))
        except Exception:  # litellm does not price every model (local ones in particular)
            cost = None
        return Completion(
            text=response.choices[0].message.content or "",
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            cost=cost,
        )

    def _reply(self, litellm: Any, response: Any) -> ChatReply:
        completion = self._completion(litellm, response)
        calls = [
            ToolRequest(id=c.id, name=c.function.name, arguments=c.function.arguments or "{}")
            for c in (getattr(response.choices[0].message, "tool_calls", None) or [])
        ]
        return ChatReply(
            content=completion.text,
            tool_calls=calls,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            cost=completion.cost,
        )

    def complete(
        self, messages: Sequence[Message], *, response_format: Mapping[str, Any] | None
    ) -> Completion:
        return self._completion(*self._send(messages, response_format=_copy(response_format)))

    async def acomplete(
        self, messages: Sequence[Message], *, response_format: Mapping[str, Any] | None
    ) -> Completion:
        return self._completion(*await self._asend(messages, response_format=_copy(response_format)))

    def chat(self, messages: Sequence[Message], *, tools: Sequence[Mapping[str, Any]] | None) -> ChatReply:
        return self._reply(*self._send(messages, tools=[dict(t) for t in tools or ()]))

    async def achat(
        self, messages: Sequence[Message], *, tools: Sequence[Mapping[str, Any]] | None
    ) -> ChatReply:
        return self._reply(*await self._asend(messages, tools=[dict(t) for t in tools or ()]))


def _copy(response_format: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if response_format is None else dict(response_format)


@contextmanager
def _translated(litellm: Any) -> Iterator[None]:
    """Provider failures worth another try become TransientModelError; others pass unchanged."""
    try:
        yield
    except Exception as exc:
        if _is_transient(litellm, exc):
            raise TransientModelError(f"{type(exc).__name__}: {exc}") from exc
        raise


def resolve_model(
    model: str | ChatModel | AgentModel | None,
    options: Mapping[str, Any] | None,
    *,
    needs: type = ChatModel,
) -> Any:
    """A litellm model id becomes a :class:`LiteLLMModel`; an object must implement ``needs``."""
    from ..errors import ConfigurationError

    if model is None:
        if options:
            raise ConfigurationError("model_options were given without a model")
        return None
    if isinstance(model, str):
        if not model.strip():
            raise ConfigurationError("model must be a non-empty litellm model id")
        return LiteLLMModel(model, options)
    if isinstance(model, needs):
        if options:
            raise ConfigurationError("model_options apply to litellm model ids, not to a model object")
        return model
    methods = "chat/achat" if needs is AgentModel else "complete/acomplete/supports_json_schema"
    raise ConfigurationError(
        f"model must be a litellm model id or an object with {methods}; got {type(model).__name__}"
    )
