"""The one model-call path over real HTTP (litellm -> OpenAI client -> LoopbackServer): which failures
are retried, that litellm prints nothing, and that the sync bridge keeps litellm's cached async
clients working across sync calls, async calls, threads and running event loops."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest

from agentmem import Agent, ExtractionError, MemoryManager, RetryPolicy, TransientModelError
from agentmem.extraction.bridge import THREAD_NAME
from agentmem.testing import Fault, LoopbackServer

from .conftest import MODEL, MakeManager

SAID = [{"role": "user", "content": "I'm Priya, a backend engineer in Lisbon."}]
REPLY = {"profile": {"name": "Priya"}}
QUICK = RetryPolicy(backoff=0)  # the same attempts as the default, without the waits


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_a_refusal_is_never_retried(status: int, server: LoopbackServer, make_mem: MakeManager) -> None:
    server.add(Fault(status), REPLY)
    mem = make_mem(retry=QUICK)
    with pytest.raises(ExtractionError) as raised:
        mem.learn(SAID, user_id="priya")
    assert len(server.requests) == raised.value.attempts == 1
    assert f"after 1 call(s): {type(raised.value.__cause__).__name__}" in str(raised.value)


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_a_transient_status_is_retried(status: int, server: LoopbackServer, make_mem: MakeManager) -> None:
    server.add(Fault(status), Fault(status), REPLY)
    mem = make_mem(retry=QUICK)
    assert mem.learn(SAID, user_id="priya").usage.model_calls == 3
    assert mem.get(user_id="priya").profile.name == "Priya"


def test_a_missing_api_key_is_not_retried(monkeypatch: pytest.MonkeyPatch, db_url: str) -> None:
    """litellm reports a missing OpenAI key as a 500; it is a setup mistake, not a passing fault."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with MemoryManager(db=db_url, model="gpt-4o-mini", retry=QUICK) as mem:
        with pytest.raises(ExtractionError) as raised:
            mem.learn(SAID, user_id="priya")
        assert raised.value.attempts == 1
        assert "Missing credentials" in str(raised.value)

        agent = Agent(model="gpt-4o-mini", memory=mem)
        with pytest.raises(Exception) as failed:  # noqa: PT011 - litellm's own error type
            agent.run("Hello", user_id="priya")
        assert not isinstance(failed.value, TransientModelError)
        agent.close()


def test_a_refused_connection_is_retried(db_url: str) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mem = MemoryManager(
        db=db_url,
        model=MODEL,
        model_options={"api_base": f"http://127.0.0.1:{port}/v1", "api_key": "test-key"},
        retry=RetryPolicy(attempts=3, backoff=0),
    )
    with mem, pytest.raises(ExtractionError) as raised:
        mem.learn(SAID, user_id="priya")
    assert raised.value.attempts == 3
    assert "after 3 call(s): TransientModelError" in str(raised.value)


def test_litellm_prints_nothing_on_failures(server: LoopbackServer, db_url: str) -> None:
    server.add(Fault(401), Fault(400))
    script = textwrap.dedent(
        f"""
        import os
        from agentmem import ExtractionError, MemoryManager

        os.environ.pop("OPENAI_API_KEY", None)
        said = [{{"role": "user", "content": "I'm Priya, a backend engineer."}}]
        for model, options in [
            ({MODEL!r}, {{"api_base": {server.url!r}, "api_key": "k"}}),
            ({MODEL!r}, {{"api_base": {server.url!r}, "api_key": "k"}}),
            ("gpt-4o-mini", None),
            ("no-such-provider/model", None),
        ]:
            mem = MemoryManager(db={db_url!r}, model=model, model_options=options)
            try:
                mem.learn(said, user_id="priya")
            except ExtractionError as exc:
                assert exc.attempts == 1, exc
            mem.close()
        print("done")
        """
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_PROXY": "127.0.0.1,localhost"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "done\n", "")


def client_threads() -> list[str]:
    """Threads on this side of the wire (the server starts one per connection)."""
    server_side = ("LoopbackServer", "process_request_thread")
    return sorted(t.name for t in threading.enumerate() if not any(s in t.name for s in server_side))


def test_sync_and_async_calls_share_litellms_clients_without_breaking(db_url: str) -> None:
    """A fresh event loop per sync call would leave litellm's cached clients on closed loops; the
    bridge's one loop keeps them working, next to the caller's own loops, from many threads."""

    def reply(body: dict[str, Any]) -> Any:
        if "response_format" not in body:
            return "Hello!"
        return {"knowledge": [{"text": "Maintains the parser"}]}

    with LoopbackServer(reply) as server:
        options = {"api_base": server.url, "api_key": "test-key"}
        # No background learning: each agent.run is exactly one request, as counted below.
        mem = MemoryManager(db=db_url, model=MODEL, model_options=options, update_memory_on_run=False)
        agent = Agent(model=MODEL, model_options=options, memory=mem)

        def said(who: str) -> list[dict[str, str]]:
            return [{"role": "user", "content": f"I'm {who} and I maintain the parser."}]

        async def inside_a_running_loop(who: str) -> int:
            sync = mem.learn(said(who), user_id=who)  # a sync call made from async code
            await mem.alearn(said(f"{who}-async"), user_id=who)
            return sync.usage.model_calls

        def one_round(n: int) -> None:
            assert mem.learn(said(f"a{n}"), user_id="a").usage.model_calls == 1
            assert asyncio.run(inside_a_running_loop(f"b{n}")) == 1
            errors: list[BaseException] = []

            def in_thread(i: int) -> None:
                try:
                    assert mem.learn(said(f"t{n}-{i}"), user_id=f"t{i}").usage.model_calls == 1
                    assert agent.run("Hi there", user_id=f"t{i}").content == "Hello!"
                except BaseException as exc:  # reported below
                    errors.append(exc)

            threads = [threading.Thread(target=in_thread, args=(i,)) for i in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert errors == []

        one_round(1)
        before = client_threads()
        one_round(2)
        after = client_threads()
        # No thread per call: the bridge's one loop, plus its default executor's workers, which
        # asyncio grows on demand up to a fixed bound and then reuses.
        workers = [name for name in after if name.startswith("asyncio_")]
        assert [n for n in after if n not in workers] == [n for n in before if not n.startswith("asyncio_")]
        assert len(workers) <= min(32, (os.cpu_count() or 1) + 4)
        assert [t.name for t in threading.enumerate()].count(THREAD_NAME) == 1
        assert len(server.requests) == 2 * (1 + 2 + 8 * 2)
        agent.close()
        mem.close()
