"""ScriptedModel: a model double for extraction and agents, with no network and no key."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from ..extraction.model import ModelRequest, ModelResponse, ToolRequest
from ..tokens import estimate_tokens


@dataclass(frozen=True)
class ToolCall:
    """A reply in which the model calls a tool: from ScriptedModel, a response with one tool call; from
    LoopbackServer, an assistant message with one ``tool_calls`` entry (``finish_reason``
    ``"tool_calls"``)."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


Reply: TypeAlias = "str | Mapping[str, Any] | ToolCall | BaseException"


@dataclass(frozen=True)
class ScriptedRequest:
    """One request the scripted model received (``tools`` only for an agent's chat requests)."""

    messages: list[dict[str, Any]]
    response_format: Mapping[str, Any] | None
    tools: list[dict[str, Any]] | None = None


class ScriptedModel:
    """A model double: answers from a queue of replies, or from a function of the request.

    A reply is a str (sent as is), a dict (sent as JSON), a :class:`ToolCall` (for an agent: the
    model asks to call a tool), an exception instance (raised, e.g. ``TransientModelError`` to
    exercise retries), or a function of the request's messages returning one of these (it runs in a
    worker thread, so it may block, e.g. to hold a reply until a test is ready). Every request is
    recorded in ``requests``. It implements :class:`agentmem.Model`, so it serves extraction, session
    summaries and the :class:`~agentmem.Agent` alike.

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

    async def generate(self, request: ModelRequest) -> ModelResponse:
        """Record the request and answer it with the next reply."""
        tools = [dict(t) for t in request.tools] if request.tools else None
        recorded = ScriptedRequest([dict(m) for m in request.messages], request.response_format, tools)
        with self._lock:
            self.requests.append(recorded)
            if self._respond is not None:
                reply: Reply | Callable[[list[dict[str, Any]]], Reply] = self._respond
            elif self._queue:
                reply = self._queue.popleft()
            else:
                raise RuntimeError("ScriptedModel has no reply left for this request")
        if callable(reply) and not isinstance(reply, BaseException | ToolCall):
            # In a worker thread: a reply function may block (to hold a reply until a test is ready)
            # and must not hold up the event loop, which other calls share.
            reply = await asyncio.to_thread(reply, recorded.messages)
        if isinstance(reply, BaseException):
            raise reply
        prompt = sum(estimate_tokens(str(m.get("content") or "")) for m in recorded.messages)
        if isinstance(reply, ToolCall):
            if request.response_format is not None:
                raise TypeError("a ToolCall reply is for an agent's chat, not for extraction")
            call = ToolRequest(f"call_{len(self.requests)}", reply.name, json.dumps(reply.arguments))
            return ModelResponse(tool_calls=(call,), prompt_tokens=prompt, completion_tokens=1)
        text = reply if isinstance(reply, str) else json.dumps(reply)
        return ModelResponse(text=text, prompt_tokens=prompt, completion_tokens=estimate_tokens(text))
