"""What every framework adapter does the same way: the memory part of the instructions, the query it
is compiled for, a finished conversation made learnable, and learning it in the background.

Framework input is not checked the way ``Agent`` checks its own: a user's message may be longer than a
query, and a model's reply may hold characters no store keeps or run past a stored message's length.
Adapters pass text through here so a run never fails on memory's account.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

from ..conversations import clipped
from ..errors import ExtractionError
from ..guides import memory_section, tools_guide
from ..manager import MAX_QUERY, MemoryManager
from ..validation import cleaned_text


def query_of(text: str | None) -> str | None:
    """The query to compile for: a long message's end (where the question usually is), made storable."""
    if not text or not text.strip():
        return None
    return cleaned_text(text)[-MAX_QUERY:]


def memory_instructions(
    memory: MemoryManager,
    *,
    user_id: str,
    agent_id: str | None = None,
    session_id: str | None = None,
    query: str | None = None,
    token_budget: int | None = None,
    tools: bool = False,
) -> str:
    """The user's memory with its guide (and, with ``tools``, when to call the memory tools), for a
    system message; "" when nothing is remembered and there are no tools."""
    block = memory.compile(
        user_id=user_id,
        agent_id=agent_id,
        session_id=session_id,
        query=query_of(query),
        token_budget=token_budget,
    )
    parts = [memory_section(block), tools_guide() if tools else ""]
    return "\n\n".join(part for part in parts if part)


def learnable(turns: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    """``(role, text)`` turns as ``learn`` takes them: user and assistant text only, made storable,
    empty turns dropped, each cut to a stored message's length."""
    out = []
    for role, text in turns:
        if role in ("user", "assistant") and text and text.strip():
            out.append({"role": role, "content": clipped(cleaned_text(text))})
    return out


@contextmanager
def learning_logged(log: logging.Logger, user_id: str) -> Iterator[None]:
    """Around learning from a finished run, whose reply is already there: a failure is logged, never
    raised (an extraction failure stays pending for ``retry_pending``)."""
    try:
        yield
    except ExtractionError as exc:
        log.warning("memory not learned yet (kept for retry_pending): %s", exc)
    except Exception:
        log.exception("learning from a run failed for user %r", user_id)


class BackgroundLearner:
    """One worker thread that learns finished runs in order, as ``Agent`` does: the run's reply never
    waits for it, and it outlives the event loop that ran the agent. A failed learn is logged to
    ``log`` (an extraction failure stays pending for ``retry_pending``), and so is a run submitted
    after ``close``, which is not learned."""

    def __init__(self, memory: MemoryManager, log: logging.Logger) -> None:
        self._memory = memory
        self._log = log
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentmem-learn")
        self._futures: set[Future[None]] = set()
        self._lock = threading.Lock()

    def submit(
        self,
        messages: list[dict[str, str]],
        *,
        user_id: str,
        agent_id: str | None,
        session_id: str | None,
        generation: str | None,
    ) -> None:
        def learn() -> None:
            with learning_logged(self._log, user_id):
                self._memory.learn(
                    messages, user_id=user_id, agent_id=agent_id, session_id=session_id, generation=generation
                )

        try:
            future = self._pool.submit(learn)
        except RuntimeError:  # closed: the run's reply must still reach its caller
            self._log.warning("background learning is closed: a run for user %r is not learned", user_id)
            return
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._futures.discard(future)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the learns submitted so far; ``False`` if ``timeout`` ran out first."""
        with self._lock:
            pending = set(self._futures)
        return not wait(pending, timeout=timeout).not_done

    def close(self) -> None:
        """Finish the learns submitted so far and stop the worker."""
        self._pool.shutdown(wait=True)


class LearningInBackground:
    """What an adapter that may learn on a :class:`BackgroundLearner` (its ``_learner``) offers."""

    _learner: BackgroundLearner | None

    async def _learn_finished(
        self,
        memory: MemoryManager,
        log: logging.Logger,
        messages: list[dict[str, str]],
        *,
        user_id: str,
        agent_id: str | None,
        session_id: str | None,
        generation: str | None,
    ) -> None:
        """Learn a finished run: handed to the learner when there is one, else now; never raises."""
        scope: dict[str, Any] = {
            "user_id": user_id,
            "agent_id": agent_id,
            "session_id": session_id,
            "generation": generation,
        }
        if self._learner is not None:
            self._learner.submit(messages, **scope)
            return
        with learning_logged(log, user_id):
            await memory.alearn(messages, **scope)

    def wait_for_learning(self, timeout: float | None = None) -> bool:
        """Wait for background learning started so far; ``False`` if ``timeout`` ran out first
        (always ``True`` without ``learn_in_background``)."""
        return self._learner.wait(timeout) if self._learner is not None else True

    async def await_learning(self, timeout: float | None = None) -> bool:
        """The async twin of :meth:`wait_for_learning`."""
        return await asyncio.to_thread(self.wait_for_learning, timeout)

    def close(self) -> None:
        """Finish background learning and stop its worker (the memory itself stays open); runs after
        this still work but learn nothing in the background."""
        if self._learner is not None:
            self._learner.close()
