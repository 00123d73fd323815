"""The sync bridge: sync entry points (``learn``, ``sessions.summarize``, ``Agent.run``) run the async
model-call path on one event loop, kept on one daemon thread for the life of the process.

Why one long-lived loop rather than ``asyncio.run`` per call:

- litellm caches its async HTTP clients per event loop: a loop per call would open a client and a
  connection per call, and leave clients bound to loops that are closed ("Event loop is closed");
- ``asyncio.run`` refuses to run in a thread that already runs a loop (Jupyter, a sync call made
  inside async code); here the calling thread only waits;
- any number of threads share the one loop: no thread per call, nothing to leak.

The caller's context variables go along.
Code already running on the bridge's loop must use the async API: waiting there for the same loop
would deadlock, so it is refused with a RuntimeError.

Async code on another loop (a web server's, the user's ``asyncio.run``) reaches the same loop through
:func:`on_bridge` and :func:`stream_on_bridge`: litellm keeps one logging worker for the process,
bound to the loop it last ran on, and its async clients per loop, so calls from two loops in one
process would rebind the worker and leave its task pending on the other loop ("Task was destroyed
but it is pending!"). Every litellm call runs here instead, whichever loop awaits it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import os
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")
Item = TypeVar("Item")
THREAD_NAME = "agentmem-model-loop"


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.pid = os.getpid()
        self.thread = threading.Thread(target=self._serve, name=THREAD_NAME, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def usable(self) -> bool:
        return self.pid == os.getpid() and self.thread.is_alive()

    def stop(self, timeout: float) -> None:
        """Cancel what still runs (litellm's background tasks, say), then stop and close the loop,
        so the interpreter's exit reports no pending task."""

        async def cancel_the_rest() -> None:
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(cancel_the_rest(), self.loop).result(timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)
        if not self.thread.is_alive():
            self.loop.close()


_lock = threading.Lock()
_current: _LoopThread | None = None


def _loop_thread() -> _LoopThread:
    global _current
    current = _current
    if current is not None and current.usable():
        return current
    with _lock:
        if _current is None or not _current.usable():
            _current = _LoopThread()
        return _current


@atexit.register
def _stop_at_exit() -> None:
    current = _current
    if current is not None and current.usable():
        current.stop(timeout=2.0)


def _after_fork_in_child() -> None:
    # The parent's loop thread does not exist in a child process: start afresh there when needed.
    global _current, _lock
    _current, _lock = None, threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _start(bridge: _LoopThread, coro: Coroutine[Any, Any, T]) -> tuple[Future[T], Callable[[], None]]:
    """Start ``coro`` as a task on the bridge's loop, in a copy of the caller's context: its outcome
    (result, exception, or CancelledError) settles the future, and the callable cancels the task."""
    done: Future[T] = Future()
    # Running from the start: only the coroutine's end settles it, never a waiter that gives up.
    done.set_running_or_notify_cancel()
    tasks: list[asyncio.Task[None]] = []

    async def deliver() -> None:
        # The result goes to the caller the moment it exists, not after whatever else the loop has
        # queued meanwhile (litellm schedules its logging callbacks there).
        try:
            result = await coro
        except BaseException as exc:  # the caller raises it; the loop thread must go on
            done.set_exception(exc)
        else:
            done.set_result(result)

    def cancelled_before_it_began(task: asyncio.Task[None]) -> None:
        if not done.done():  # deliver never ran, so neither did coro
            coro.close()
            done.set_exception(asyncio.CancelledError())

    def begin() -> None:
        task = bridge.loop.create_task(deliver(), context=context)
        task.add_done_callback(cancelled_before_it_began)
        tasks.append(task)

    def cancel() -> None:
        bridge.loop.call_soon_threadsafe(lambda: [task.cancel() for task in tasks])

    context = contextvars.copy_context()  # the caller's context variables go along
    bridge.loop.call_soon_threadsafe(begin)
    return done, cancel


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the bridge's event loop and wait for its result in the calling thread.

    If the waiting thread is interrupted (KeyboardInterrupt), the coroutine is cancelled.
    """
    bridge = _loop_thread()
    if threading.current_thread() is bridge.thread:
        coro.close()
        raise RuntimeError(
            "a sync agentmem call was made on agentmem's own event loop (from an async model or tool); "
            "use the async API there (alearn, arun)"
        )
    done, cancel = _start(bridge, coro)
    try:
        return done.result()
    except BaseException:
        if not done.done():  # interrupted while waiting: stop the coroutine at its next await
            cancel()
        raise


async def on_bridge(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on the bridge's event loop, from any event loop (directly when already on it).

    Cancelling the awaiting task cancels the coroutine, and waits until it has stopped, so nothing of
    a cancelled call goes on behind its caller's back.
    """
    bridge = _loop_thread()
    if asyncio.get_running_loop() is bridge.loop:
        return await coro
    done, cancel = _start(bridge, coro)
    try:
        return await asyncio.wrap_future(done)
    except asyncio.CancelledError:
        if not done.done():
            cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):  # cancelled again: stop waiting
                await asyncio.wrap_future(done)
        raise


async def stream_on_bridge(events: AsyncIterator[Item]) -> AsyncIterator[Item]:
    """Iterate ``events`` (an async iterator, e.g. a streamed model reply) on the bridge's event loop,
    from any event loop, one item per step: the producer never runs ahead of its consumer, and a
    consumer that stops early (or is cancelled) closes it there."""
    bridge = _loop_thread()
    if asyncio.get_running_loop() is bridge.loop:
        async for item in events:
            yield item
        return

    async def step() -> tuple[Item] | None:
        try:
            return (await anext(events),)
        except StopAsyncIteration:
            return None

    try:
        while (got := await on_bridge(step())) is not None:
            yield got[0]
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await on_bridge(close())
