"""The sync bridge: sync entry points run the async model-call path on one shared event-loop thread."""

from __future__ import annotations

import asyncio
import contextvars
import multiprocessing
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from agentmem.extraction.bridge import THREAD_NAME, on_bridge, run_sync, stream_on_bridge

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


async def where() -> tuple[str, bool]:
    """The thread the coroutine runs on, and whether a loop runs there."""
    await asyncio.sleep(0)
    return threading.current_thread().name, asyncio.get_running_loop().is_running()


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


def test_a_coroutine_runs_on_the_bridge_thread_and_its_result_comes_back() -> None:
    assert run_sync(where()) == (THREAD_NAME, True)


def test_an_exception_comes_back_as_itself() -> None:
    class Boom(Exception):
        pass

    async def fail() -> None:
        raise Boom("from the loop")

    with pytest.raises(Boom, match="from the loop"):
        run_sync(fail())


def test_it_works_from_a_thread_that_already_runs_an_event_loop() -> None:
    """As in Jupyter, or a sync call made inside async code: asyncio.run would refuse here."""

    async def caller() -> tuple[str, bool]:
        return run_sync(where())

    assert asyncio.run(caller()) == (THREAD_NAME, True)


def test_many_threads_at_once_share_one_loop_and_overlap() -> None:
    async def nap(i: int) -> int:
        await asyncio.sleep(0.2)
        return i

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda i: run_sync(nap(i)), range(32)))
    elapsed = time.perf_counter() - started

    assert results == list(range(32))
    assert elapsed < 1.0, f"32 calls of 0.2 s from 16 threads took {elapsed:.2f}s: they did not overlap"
    assert len(loop_threads()) == 1


def test_calls_leak_no_thread() -> None:
    run_sync(where())  # the loop thread exists from here on
    before = {t.ident for t in threading.enumerate()}

    for _ in range(5):
        threads = [threading.Thread(target=run_sync, args=(where(),)) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for _ in range(50):
            run_sync(where())

    assert {t.ident for t in threading.enumerate()} == before
    assert len(loop_threads()) == 1


def test_the_callers_context_variables_go_along() -> None:
    async def read() -> str:
        return request_id.get()

    token = request_id.set("req-42")
    try:
        assert run_sync(read()) == "req-42"
    finally:
        request_id.reset(token)


def test_a_sync_call_on_the_bridge_loop_itself_is_refused_not_deadlocked() -> None:
    async def nested() -> str:
        inner = where()
        try:
            run_sync(inner)
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    assert "use the async API" in run_sync(nested())


def _child(queue: multiprocessing.Queue[object]) -> None:
    queue.put(run_sync(where()))


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method"
)
def test_a_forked_child_gets_a_loop_thread_of_its_own() -> None:
    run_sync(where())  # the parent's loop thread exists and is not inherited
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[object] = context.Queue()
    child = context.Process(target=_child, args=(queue,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == (THREAD_NAME, True)


# ---- async callers on a loop of their own (a web server's, asyncio.run) --------------------------


def test_on_bridge_runs_the_coroutine_on_the_bridge_loop_from_another_loop() -> None:
    async def caller() -> tuple[str, bool]:
        return await on_bridge(where())

    assert asyncio.run(caller()) == (THREAD_NAME, True)


def test_on_bridge_on_the_bridge_loop_itself_awaits_directly() -> None:
    async def caller() -> tuple[asyncio.Task[object] | None, asyncio.Task[object] | None]:
        async def current() -> asyncio.Task[object] | None:
            return asyncio.current_task()

        return asyncio.current_task(), await on_bridge(current())

    outer, inner = run_sync(caller())
    assert outer is inner  # no second task: nothing to hop over


def test_on_bridge_gives_back_exceptions_and_context_variables() -> None:
    class Boom(Exception):
        pass

    async def fail() -> None:
        raise Boom(request_id.get())

    async def caller() -> None:
        request_id.set("req-7")
        await on_bridge(fail())

    with pytest.raises(Boom, match="req-7"):
        asyncio.run(caller())


def test_cancelling_the_caller_cancels_the_coroutine_and_waits_for_it_to_stop() -> None:
    started = threading.Event()
    seen: list[str] = []

    async def long_call() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen.append("cancelled")
            await asyncio.sleep(0.05)  # cleanup that takes a while: the caller waits for it
            seen.append("cleaned up")
            raise

    async def caller() -> None:
        task = asyncio.create_task(on_bridge(long_call()))
        await asyncio.to_thread(started.wait)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        seen.append("caller saw it")

    asyncio.run(caller())
    assert seen == ["cancelled", "cleaned up", "caller saw it"]


def test_a_timeout_on_the_caller_reaches_the_coroutine() -> None:
    seen: list[str] = []

    async def long_call() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def caller() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(on_bridge(long_call()), 0.1)

    asyncio.run(caller())
    assert seen == ["cancelled"]


async def numbers(count: int, log: list[str]) -> AsyncIterator[tuple[int, str]]:
    try:
        for i in range(count):
            log.append(f"made {i}")
            yield i, threading.current_thread().name
    finally:
        log.append(f"closed on {threading.current_thread().name}")


def test_stream_on_bridge_yields_every_item_in_order_made_on_the_bridge_loop() -> None:
    log: list[str] = []

    async def caller() -> list[tuple[int, str]]:
        return [item async for item in stream_on_bridge(numbers(3, log))]

    assert asyncio.run(caller()) == [(0, THREAD_NAME), (1, THREAD_NAME), (2, THREAD_NAME)]
    assert log == ["made 0", "made 1", "made 2", f"closed on {THREAD_NAME}"]


def test_stream_on_bridge_makes_an_item_only_when_asked_and_closes_when_the_consumer_stops() -> None:
    log: list[str] = []

    async def caller() -> None:
        stream = stream_on_bridge(numbers(10, log))
        async for i, _ in stream:
            log.append(f"used {i}")
            if i == 1:
                break
        await stream.aclose()

    asyncio.run(caller())
    assert log == ["made 0", "used 0", "made 1", "used 1", f"closed on {THREAD_NAME}"]


def test_stream_on_bridge_on_the_bridge_loop_itself_iterates_directly() -> None:
    log: list[str] = []

    async def caller() -> list[tuple[int, str]]:
        return [item async for item in stream_on_bridge(numbers(2, log))]

    assert run_sync(caller()) == [(0, THREAD_NAME), (1, THREAD_NAME)]
