"""litellm used from two event loops in one process: the bridge's (sync ``learn``, an Agent's
background learning) and the caller's own (``alearn``, ``Agent.arun``/``astream`` under a web server or
``asyncio.run``). litellm binds its process-wide logging worker to one loop; every call runs on the
bridge's, so nothing is left pending on the other and the process ends with a clean stderr.

Run as a real process: Python reports a task destroyed while pending only when the process exits.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agentmem.extraction.bridge import run_sync
from agentmem.extraction.model import LiteLLMModel, ModelRequest
from agentmem.testing import LoopbackServer, Slow

from .conftest import MODEL

SCRIPT = """
import asyncio, sys
from agentmem import Agent, MemoryManager

url, db = sys.argv[1], sys.argv[2]
options = {"api_base": url, "api_key": "k"}
mem = MemoryManager(db, model="openai/test-model", model_options=options)
agent = Agent("openai/test-model", memory=mem, agent_id="helper", model_options=options)
said = [{"role": "user", "content": "I'm Carol from Oslo"}]

mem.learn(said, user_id="carol")  # the bridge's loop

async def on_a_loop_of_its_own():  # as uvicorn's routes do
    await mem.alearn(said, user_id="dan")
    await agent.arun("Hi", user_id="carol")
    async for _event in agent.astream("Hi again", user_id="carol"):
        pass

asyncio.run(on_a_loop_of_its_own())
assert agent.wait_for_memory(30)  # background learning: the bridge's loop again
asyncio.run(on_a_loop_of_its_own())  # and a second loop of the caller's
agent.close()
print("done")
"""


def reply(body: dict[str, object]) -> object:
    messages = body["messages"]
    assert isinstance(messages, list)
    if "response_format" in body or "long-term memory" in str(messages[0].get("content")):
        return {"profile": {"name": "Carol"}, "knowledge": [{"text": "Lives in Oslo"}]}
    return "Hello there."


def test_litellm_from_the_bridge_loop_and_other_loops_leaves_a_clean_stderr(tmp_path: Path) -> None:
    script = tmp_path / "two_loops.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_PROXY": "127.0.0.1"}
    with LoopbackServer(reply) as server:
        done = subprocess.run(
            [sys.executable, str(script), server.url, f"sqlite:///{tmp_path / 'm.db'}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        streamed = [r for r in server.requests if r.get("stream")]

    assert done.returncode == 0, done.stderr
    assert done.stdout == "done\n"
    assert len(streamed) == 2  # astream really streamed, on both loops
    assert "Task was destroyed" not in done.stderr
    assert "Traceback" not in done.stderr
    assert "Event loop is closed" not in done.stderr


def _litellm_calls_on_the_bridge() -> list[str]:
    """What the bridge loop's tasks are awaiting that belongs to a model call: LiteLLMModel's
    coroutine, or a step of a stream (its generator is not reachable from the step's ``anext``)."""

    async def look() -> list[str]:
        found = []
        for task in asyncio.all_tasks():
            awaited = task.get_coro()
            while awaited is not None:
                name = getattr(awaited, "__qualname__", "")
                if name.startswith(("LiteLLMModel.", "stream_on_bridge.")):
                    found.append(name)
                awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
        return found

    return run_sync(look())


@pytest.mark.parametrize("streamed", [False, True], ids=["generate", "stream"])
def test_cancelling_an_awaited_litellm_call_cancels_it_on_the_bridge(
    server: LoopbackServer, streamed: bool
) -> None:
    server.add(Slow(2.0, "too late"))
    model = LiteLLMModel(MODEL, {"api_base": server.url, "api_key": "k"})
    request = ModelRequest([{"role": "user", "content": "Hi"}])
    arrived = threading.Event()

    async def first_piece() -> object:
        async for item in model.stream(request):
            return item
        return None

    async def cancel_while_the_server_answers() -> list[str]:
        call = asyncio.create_task(first_piece() if streamed else model.generate(request))
        while not server.requests:
            await asyncio.sleep(0.01)
        arrived.set()
        assert _litellm_calls_on_the_bridge()  # the call is in flight there
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        return _litellm_calls_on_the_bridge()

    assert asyncio.run(cancel_while_the_server_answers()) == []
    assert arrived.is_set()
