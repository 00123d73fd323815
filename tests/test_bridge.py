"""The sync bridge: sync entry points run the async model-call path on one shared event-loop thread."""

from __future__ import annotations

import asyncio
import contextvars
import multiprocessing
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from agentmem.extraction.bridge import THREAD_NAME, run_sync

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
