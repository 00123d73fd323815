"""One extraction request to the model: validated, re-asked, retried, bounded.

Two kinds of retry, both with tenacity: a reply that fails validation is re-asked with the error
appended to the conversation (``max_retries``, default 2); a transient provider failure (rate limit,
timeout, connection, 5xx) is retried with jittered exponential backoff. Every call, sync or async,
passes through one shared concurrency limit. tenacity's RetryError never leaks: the caller gets an
ExtractionError with the attempts and the last raw output.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from ..errors import ExtractionError
from ..records import Usage
from .model import ChatModel, Completion, Message, TransientModelError

TRANSIENT_ATTEMPTS = 4
T = TypeVar("T")


class Invalid(Exception):
    """The model's reply did not validate; the message is what the model is told."""


class Limiter:
    """One bound on concurrent model calls, shared by the sync and async paths."""

    def __init__(self, limit: int) -> None:
        self._slots = threading.BoundedSemaphore(limit)

    def __enter__(self) -> None:
        self._slots.acquire()

    def __exit__(self, *exc: object) -> None:
        self._slots.release()

    async def __aenter__(self) -> None:
        # Poll instead of blocking a worker thread: a task cancelled while waiting must not leave a
        # thread behind that takes a slot later and never gives it back.
        while not self._slots.acquire(blocking=False):
            await asyncio.sleep(0.005)

    async def __aexit__(self, *exc: object) -> None:
        self._slots.release()


def _reask(messages: list[Message], raw: str, problem: str) -> None:
    messages.append({"role": "assistant", "content": raw})
    messages.append(
        {
            "role": "user",
            "content": f"That reply was not valid: {problem}. Reply with the corrected JSON object only.",
        }
    )


class ModelCaller:
    def __init__(self, model: ChatModel, max_retries: int | Retrying, max_concurrency: int) -> None:
        self.model = model
        self.max_retries = max_retries
        self.limiter = Limiter(max_concurrency)
        self._native: bool | None = None

    def supports_json_schema(self) -> bool:
        if self._native is None:
            self._native = bool(self.model.supports_json_schema())
        return self._native

    def _validation(self) -> Retrying:
        if isinstance(self.max_retries, Retrying):
            return self.max_retries.copy(retry=retry_if_exception_type(Invalid), reraise=False)
        return Retrying(stop=stop_after_attempt(self.max_retries + 1), retry=retry_if_exception_type(Invalid))

    @staticmethod
    def _transient() -> dict[str, Any]:
        return {
            "stop": stop_after_attempt(TRANSIENT_ATTEMPTS),
            "wait": wait_random_exponential(multiplier=0.2, max=5),
            "retry": retry_if_exception_type(TransientModelError),
            "reraise": True,
        }

    def _failure(
        self, exc: BaseException, usage: Usage, last: str | None, layer: str | None
    ) -> ExtractionError:
        if isinstance(exc, RetryError):
            message = f"the model's reply did not validate after {usage.model_calls} call(s)"
        else:  # transient retries exhausted, or an error no retry fixes (auth, bad request)
            message = f"the model call failed: {type(exc).__name__}: {exc}"
        return ExtractionError(message, attempts=usage.model_calls, last_output=last, layer=layer)

    def _record(self, completion: Completion, usage: Usage) -> str:
        usage.add_tokens(completion.prompt_tokens, completion.completion_tokens, completion.cost)
        return completion.text

    def call_text(self, messages: list[Message], parse: Callable[[str], T], usage: Usage) -> T:
        """A plain-text request (no response format), e.g. a session summary."""
        return self.call(messages, None, parse, usage, layer=None)

    def call(
        self,
        messages: list[Message],
        fmt: Mapping[str, Any] | None,
        parse: Callable[[str], T],
        usage: Usage,
        *,
        layer: str | None,
    ) -> T:
        last: str | None = None
        try:
            for attempt in self._validation():
                with attempt:
                    for transient in Retrying(**self._transient()):
                        with transient, self.limiter:
                            usage.model_calls += 1
                            last = self._record(self.model.complete(messages, response_format=fmt), usage)
                    assert last is not None
                    try:
                        return parse(last)
                    except Invalid as exc:
                        _reask(messages, last, str(exc))
                        raise
        except Exception as exc:
            raise self._failure(exc, usage, last, layer) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def acall(
        self,
        messages: list[Message],
        fmt: Mapping[str, Any] | None,
        parse: Callable[[str], T],
        usage: Usage,
        *,
        layer: str | None,
    ) -> T:
        last: str | None = None
        validation = self._validation()
        try:
            async for attempt in AsyncRetrying(
                stop=validation.stop, wait=validation.wait, retry=validation.retry
            ):
                with attempt:
                    async for transient in AsyncRetrying(**self._transient()):
                        with transient:
                            async with self.limiter:
                                usage.model_calls += 1
                                completion = await self.model.acomplete(messages, response_format=fmt)
                                last = self._record(completion, usage)
                    assert last is not None
                    try:
                        return parse(last)
                    except Invalid as exc:
                        _reask(messages, last, str(exc))
                        raise
        except Exception as exc:
            raise self._failure(exc, usage, last, layer) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")
