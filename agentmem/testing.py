"""Test doubles for your own tests: a scripted model that needs no network and no key.

from agentmem import MemoryManager
from agentmem.testing import ScriptedModel

model = ScriptedModel([{"profile": {"name": "Sarah"}}])
mem = MemoryManager(db="sqlite://", model=model)
mem.learn([{"role": "user", "content": "I'm Sarah"}], user_id="sarah")
assert model.requests[0].messages[0]["role"] == "system"
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .extraction.model import Completion, Message
from .tokens import estimate_tokens

Reply = str | Mapping[str, Any] | BaseException


@dataclass(frozen=True)
class ScriptedRequest:
    """One request the scripted model received."""

    messages: list[dict[str, Any]]
    response_format: Mapping[str, Any] | None


class ScriptedModel:
    """A model double: answers from a queue of replies, or from a function of the request.

    A reply is a str (sent as is), a dict (sent as JSON) or an exception instance (raised, e.g.
    ``TransientModelError`` to exercise retries). Every request is recorded in ``requests``.

    Args:
        replies: the queue, or a function ``(messages) -> reply``.
        json_schema: whether to claim native JSON-Schema support (else extraction uses JSON mode).
    """

    def __init__(
        self,
        replies: Iterable[Reply] | Callable[[list[dict[str, Any]]], Reply] = (),
        *,
        json_schema: bool = True,
    ) -> None:
        self._respond = replies if callable(replies) else None
        self._queue: deque[Reply] = deque() if callable(replies) else deque(replies)
        self._lock = threading.Lock()
        self.json_schema = json_schema
        self.requests: list[ScriptedRequest] = []

    def add(self, *replies: Reply) -> None:
        """Queue more replies."""
        with self._lock:
            self._queue.extend(replies)

    def supports_json_schema(self) -> bool:
        return self.json_schema

    def complete(
        self, messages: Sequence[Message], *, response_format: Mapping[str, Any] | None
    ) -> Completion:
        copied = [dict(m) for m in messages]
        with self._lock:
            self.requests.append(ScriptedRequest(copied, response_format))
            if self._respond is not None:
                reply = self._respond(copied)
            elif self._queue:
                reply = self._queue.popleft()
            else:
                raise RuntimeError("ScriptedModel has no reply left for this request")
        if isinstance(reply, BaseException):
            raise reply
        text = reply if isinstance(reply, str) else json.dumps(reply)
        prompt = sum(estimate_tokens(str(m.get("content", ""))) for m in copied)
        return Completion(text=text, prompt_tokens=prompt, completion_tokens=estimate_tokens(text))

    async def acomplete(
        self, messages: Sequence[Message], *, response_format: Mapping[str, Any] | None
    ) -> Completion:
        return self.complete(messages, response_format=response_format)


__all__ = ["ScriptedModel", "ScriptedRequest"]
