"""ScriptedModel: a model double for extraction and agents, with no network and no key."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from ..extraction.model import ChatReply, Completion, Message, ToolRequest
from ..tokens import estimate_tokens


@dataclass(frozen=True)
class ToolCall:
    """A reply in which the model calls a tool: from ScriptedModel's chat, or from LoopbackServer as an
    assistant message with one ``tool_calls`` entry (``finish_reason`` ``"tool_calls"``)."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


Reply: TypeAlias = "str | Mapping[str, Any] | ToolCall | BaseException"


@dataclass(frozen=True)
class ScriptedRequest:
    """One request the scripted model received (``tools`` only for agent chat requests)."""

    messages: list[dict[str, Any]]
    response_format: Mapping[str, Any] | None
    tools: list[dict[str, Any]] | None = None


class ScriptedModel:
    """A model double: answers from a queue of replies, or from a function of the request.

    A reply is a str (sent as is), a dict (sent as JSON), a :class:`ToolCall` (for an agent: the
    model asks to call a tool), an exception instance (raised, e.g. ``TransientModelError`` to
    exercise retries), or a function of the request's messages returning one of these (a queued
    function may block, e.g. to hold a reply until a test is ready). Every request is recorded in
    ``requests``. It serves both extraction (``complete``) and :class:`~agentmem.Agent` (``chat``).

    Args:
        replies: the queue, or a function ``(messages) -> reply``.
        json_schema: whether to claim native JSON-Schema support (else extraction uses JSON mode).
    """

    def __init__(
        self,
        replies: Iterable[Reply | Callable[[list[dict[str, Any]]], Reply]]
        | Callable[[list[dict[str, Any]]], Reply] = (),
        *,
        json_schema: bool = True,
    ) -> None:
        self._respond = replies if callable(replies) else None
        self._queue: deque[Reply | Callable[[list[dict[str, Any]]], Reply]] = (
            deque() if callable(replies) else deque(replies)
        )
        self._lock = threading.Lock()
        self.json_schema = json_schema
        self.requests: list[ScriptedRequest] = []

    def add(self, *replies: Reply | Callable[[list[dict[str, Any]]], Reply]) -> None:
        """Queue more replies."""
        with self._lock:
            self._queue.extend(replies)

    def supports_json_schema(self) -> bool:
        return self.json_schema

    def _next(self, request: ScriptedRequest) -> str | ToolCall:
        with self._lock:
            self.requests.append(request)
            if self._respond is not None:
                reply: Reply | Callable[[list[dict[str, Any]]], Reply] = self._respond
            elif self._queue:
                reply = self._queue.popleft()
            else:
                raise RuntimeError("ScriptedModel has no reply left for this request")
        if callable(reply) and not isinstance(reply, BaseException | ToolCall):
            reply = reply(request.messages)  # outside the lock: a reply may wait, others go on
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, ToolCall | str):
            return reply
        return json.dumps(reply)

    def complete(
        self, messages: Sequence[Message], *, response_format: Mapping[str, Any] | None
    ) -> Completion:
        copied = [dict(m) for m in messages]
        reply = self._next(ScriptedRequest(copied, response_format))
        if isinstance(reply, ToolCall):
            raise TypeError("a ToolCall reply is for an agent's chat, not for extraction")
        prompt = sum(estimate_tokens(str(m.get("content") or "")) for m in copied)
        return Completion(text=reply, prompt_tokens=prompt, completion_tokens=estimate_tokens(reply))

    async def acomplete(
        self, messages: Sequence[Message], *, response_format: Mapping[str, Any] | None
    ) -> Completion:
        return self.complete(messages, response_format=response_format)

    def chat(self, messages: Sequence[Message], *, tools: Sequence[Mapping[str, Any]] | None) -> ChatReply:
        copied = [dict(m) for m in messages]
        reply = self._next(ScriptedRequest(copied, None, [dict(t) for t in tools] if tools else None))
        prompt = sum(estimate_tokens(str(m.get("content") or "")) for m in copied)
        if isinstance(reply, ToolCall):
            call = ToolRequest(f"call_{len(self.requests)}", reply.name, json.dumps(reply.arguments))
            return ChatReply(content="", tool_calls=[call], prompt_tokens=prompt, completion_tokens=1)
        return ChatReply(
            content=reply, tool_calls=[], prompt_tokens=prompt, completion_tokens=estimate_tokens(reply)
        )

    async def achat(
        self, messages: Sequence[Message], *, tools: Sequence[Mapping[str, Any]] | None
    ) -> ChatReply:
        return self.chat(messages, tools=tools)
