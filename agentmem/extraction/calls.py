"""The one model-call path: every request to a model, from extraction, summaries and the Agent.

``ModelCaller.generate`` sends one request: transient failures are retried with backoff
(:class:`RetryPolicy`), each try passes through a concurrency limit shared by every thread and event
loop, and its tokens are counted. ``ModelCaller.ask`` adds validation: a reply that does not parse is
re-asked with the error appended to the conversation. tenacity's RetryError never leaks: ``ask``
raises an ExtractionError that says why the last reply was rejected.

Everything here is async; sync entry points reach it through :func:`~.bridge.run_sync`
(``call_text`` is that thin wrapper for a plain-text request, e.g. a session summary).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from ..errors import AgentMemError, ConfigurationError, ExtractionError, ModelError
from ..records import Cost
from .bridge import run_sync
from .model import Message, Model, ModelRequest, ModelResponse, TransientModelError
from .retry import RetryPolicy

T = TypeVar("T")


class Invalid(Exception):
    """The model's reply did not validate; the message is what the model is told."""


class Limiter:
    """One bound on concurrent model calls across threads and event loops (``None``: no bound)."""

    def __init__(self, limit: int | None) -> None:
        self._slots = threading.BoundedSemaphore(limit) if limit is not None else None

    async def __aenter__(self) -> None:
        if self._slots is None:
            return
        # Poll instead of blocking a thread: the slots are shared by every event loop (the sync
        # bridge's and the caller's own), and a task cancelled while waiting must not leave a thread
        # behind that takes a slot later and never gives it back.
        while not self._slots.acquire(blocking=False):
            await asyncio.sleep(0.005)

    async def __aexit__(self, *exc: object) -> None:
        if self._slots is not None:
            self._slots.release()


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)  # looked up at call time, so tests can record the waits


def _reask(messages: list[Message], raw: str, problem: str, *, json: bool) -> None:
    again = "Reply with the corrected JSON object only." if json else "Reply again, corrected."
    messages.append({"role": "assistant", "content": raw})
    messages.append({"role": "user", "content": f"That reply was not valid: {problem}. {again}"})


class ModelCaller:
    """A model with its retry policy and concurrency limit."""

    def __init__(self, model: Model, retry: RetryPolicy, limiter: Limiter | None = None) -> None:
        self.model = model
        self.retry = retry
        self.limiter = limiter or Limiter(None)
        self._native: bool | None = None

    def supports_json_schema(self) -> bool:
        """The model's answer, asked once; a model without the method is assumed to support it."""
        if self._native is None:
            check = getattr(self.model, "supports_json_schema", None)
            self._native = bool(check()) if callable(check) else True
        return self._native

    def _transient(self) -> AsyncRetrying:
        policy = self.retry
        return AsyncRetrying(
            stop=stop_after_attempt(policy.attempts),
            wait=wait_random_exponential(multiplier=policy.backoff, max=policy.max_backoff),
            retry=retry_if_exception_type(TransientModelError),
            reraise=True,
            sleep=lambda seconds: _sleep(seconds),
        )

    def _validation(self) -> AsyncRetrying:
        reasks = self.retry.reasks
        if isinstance(reasks, Retrying):
            return AsyncRetrying(
                stop=reasks.stop, wait=reasks.wait, retry=retry_if_exception_type(Invalid), sleep=_sleep
            )
        return AsyncRetrying(stop=stop_after_attempt(reasks + 1), retry=retry_if_exception_type(Invalid))

    async def generate(self, request: ModelRequest, cost: Cost) -> ModelResponse:
        """One request, retried while it fails transiently; the last failure is raised as it is (a
        model's error that is not an AgentMemError as a ModelError, the original chained)."""
        async for attempt in self._transient():
            with attempt:
                async with self.limiter:
                    cost.model_calls += 1
                    with self._own_errors():  # a model of the user's own fails at once
                        response = await self.model.generate(request)
                if not isinstance(response, ModelResponse):
                    raise ConfigurationError(
                        f"{type(self.model).__name__}.generate returned {type(response).__name__}, "
                        "not a ModelResponse"
                    )
                cost.add_tokens(response.prompt_tokens, response.completion_tokens, response.cost)
                return response
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def stream(self, request: ModelRequest, cost: Cost) -> AsyncIterator[str | ModelResponse]:
        """One request, streamed: pieces of the reply's text, then the whole :class:`ModelResponse`.

        A model without ``stream`` (see :class:`~.model.StreamingModel`) answers through
        :meth:`generate` and its text comes as one piece. Failing transiently before the first piece
        is retried as :meth:`generate` is; once text has been handed on, a failure is raised as it is
        (the caller has shown that text already, so a retry could only repeat it).
        """
        opener = getattr(self.model, "stream", None)
        if not callable(opener):
            response = await self.generate(request, cost)
            if response.text:
                yield response.text
            yield response
            return
        async with self.limiter:
            events: AsyncIterator[str | ModelResponse] | None = None
            first: str | ModelResponse | None = None
            async for attempt in self._transient():
                with attempt:
                    cost.model_calls += 1
                    events = opener(request).__aiter__()
                    first = await self._next(events)
            assert events is not None
            assert first is not None
            item: str | ModelResponse | None = first
            while item is not None:
                if isinstance(item, ModelResponse):
                    cost.add_tokens(item.prompt_tokens, item.completion_tokens, item.cost)
                    yield item
                    return
                if not isinstance(item, str):
                    raise ConfigurationError(
                        f"{type(self.model).__name__}.stream yielded {type(item).__name__}, "
                        "not a str or a ModelResponse"
                    )
                yield item
                item = await self._next(events)

    async def _next(self, events: AsyncIterator[str | ModelResponse]) -> str | ModelResponse:
        """The stream's next item; its end before the whole reply, or a failure, as a ModelError."""
        with self._own_errors():
            try:
                return await anext(events)
            except StopAsyncIteration:
                raise ModelError(
                    f"{type(self.model).__name__}.stream ended without the whole reply (a ModelResponse)"
                ) from None

    @contextmanager
    def _own_errors(self) -> Iterator[None]:
        """A model's error that is not an AgentMemError raised as a ModelError, the original chained."""
        try:
            yield
        except AgentMemError:
            raise
        except Exception as exc:
            raise ModelError(f"{type(self.model).__name__}: {type(exc).__name__}: {exc}") from exc

    def call_text(self, messages: list[Message], parse: Callable[[str], T], cost: Cost) -> T:
        """A plain-text request (no response format, e.g. a session summary), from sync code."""
        return run_sync(self.ask(ModelRequest(messages), parse, cost, layer=None))

    async def ask(
        self, request: ModelRequest, parse: Callable[[str], T], cost: Cost, *, layer: str | None
    ) -> T:
        """A request whose reply must parse: re-asked with the problem until it does or the policy
        gives up. Raises ExtractionError (attempts, last output, why it was rejected)."""
        messages: list[Message] = list(request.messages)
        mine = Cost()  # this request's calls: others may share ``cost`` concurrently (per-layer)
        last: str | None = None
        problem: str | None = None
        try:
            async for attempt in self._validation():
                with attempt:
                    response = await self.generate(replace(request, messages=list(messages)), mine)
                    last = response.text
                    try:
                        return parse(last)
                    except Invalid as exc:
                        problem = str(exc)
                        _reask(messages, last, problem, json=request.response_format is not None)
                        raise
        except Exception as exc:
            calls = mine.model_calls
            if isinstance(exc, RetryError):
                message = f"the model's reply did not validate after {calls} call(s): {problem}"
            else:  # transient retries ran out, or an error no retry fixes (auth, bad request)
                message = f"the model call failed after {calls} call(s): {type(exc).__name__}: {exc}"
            raise ExtractionError(message, attempts=calls, last_output=last, layer=layer) from exc
        finally:
            cost.model_calls += mine.model_calls
            cost.add_tokens(mine.prompt_tokens, mine.completion_tokens, mine.cost)
        raise AssertionError("unreachable: tenacity either returns or raises")
