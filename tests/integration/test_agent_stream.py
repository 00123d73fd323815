"""Agent.astream over real HTTP: Agent -> litellm (stream=True) -> a LoopbackServer sending OpenAI-style
chunks; and the stream path of a model that cannot stream (a ScriptedModel)."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from agentmem import (
    Agent,
    MemoryManager,
    ModelError,
    RetryPolicy,
    RunEvent,
    RunFinished,
    RunStarted,
    ScopeError,
    TextDelta,
)
from agentmem.testing import Fault, LoopbackServer, ScriptedModel, ToolCall

MODEL = "openai/test-model"
MakeManager = Callable[..., MemoryManager]


def collect(agent: Agent, message: str, **scope: Any) -> list[RunEvent]:
    async def run() -> list[RunEvent]:
        return [event async for event in agent.astream(message, **scope)]

    return asyncio.run(run())


def stream_agent(server: LoopbackServer, memory: MemoryManager | None, **options: Any) -> Agent:
    return Agent(MODEL, memory=memory, model_options={"api_base": server.url, "api_key": "k"}, **options)


def test_the_loopback_server_streams_openai_chunks(server: LoopbackServer) -> None:
    server.add("Hello there,  world", ToolCall("lookup", {"q": 1}))
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    def post() -> list[dict[str, Any]]:
        request = urllib.request.Request(
            server.url + "/chat/completions", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Content-Type"] == "text/event-stream"
            events = response.read().decode().split("\n\n")
        assert events[-2:] == ["data: [DONE]", ""]
        return [json.loads(event.removeprefix("data: ")) for event in events[:-2]]

    text = post()
    assert {chunk["object"] for chunk in text} == {"chat.completion.chunk"}
    pieces = [c["choices"][0]["delta"].get("content") or "" for c in text if c["choices"]]
    assert pieces[1:4] == ["Hello ", "there,  ", "world"]
    assert "".join(pieces) == "Hello there,  world"
    assert text[-2]["choices"][0]["finish_reason"] == "stop"
    assert text[-1]["usage"] == server.completions[0]["usage"]

    call = post()
    [tool] = call[1]["choices"][0]["delta"]["tool_calls"]
    assert (tool["index"], tool["function"]) == (0, {"name": "lookup", "arguments": '{"q": 1}'})
    assert call[2]["choices"][0]["finish_reason"] == "tool_calls"


def test_astream_yields_start_pieces_and_the_run(server: LoopbackServer, make_mem: MakeManager) -> None:
    mem = make_mem(update_memory_on_run=False)
    mem.profile.update(user_id="sarah", name="Sarah")
    server.add("Hi Sarah, here is the plan for today.")
    agent = stream_agent(server, mem, agent_id="helper")

    events = collect(agent, "What's the plan?", user_id="sarah", session_id="s1")
    agent.close()

    assert events[0] == RunStarted("s1")
    assert isinstance(events[-1], RunFinished)
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == len(events) - 2 > 1
    result = events[-1].result
    assert "".join(deltas) == result.content == "Hi Sarah, here is the plan for today."
    assert "name: Sarah" in result.system_message
    assert result.usage.model_calls == 1
    assert result.usage.prompt_tokens == server.completions[0]["usage"]["prompt_tokens"]
    assert server.requests[0]["stream"] is True
    assert [(m["role"], m["content"]) for m in mem.sessions.messages("s1", user_id="sarah")] == [
        ("user", "What's the plan?"),
        ("assistant", "Hi Sarah, here is the plan for today."),
    ]


def test_astream_retries_a_transient_failure_before_the_first_piece(
    server: LoopbackServer, make_mem: MakeManager
) -> None:
    mem = make_mem(update_memory_on_run=False, retry=RetryPolicy(attempts=2, backoff=0))
    server.add(Fault(503), "Back again.")
    agent = stream_agent(server, mem)

    events = collect(agent, "hello", user_id="sarah")
    agent.close()

    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.result.content == "Back again."
    assert finished.result.usage.model_calls == 2
    assert len(server.requests) == 2


def test_astream_failures(server: LoopbackServer, make_mem: MakeManager) -> None:
    mem = make_mem(update_memory_on_run=False)
    server.add(Fault(400, {"error": {"message": "nope", "type": "invalid_request_error"}}))
    agent = stream_agent(server, mem, agent_id="helper")
    seen: list[RunEvent] = []

    async def run(message: str, **scope: Any) -> None:
        async for event in agent.astream(message, **scope):
            seen.append(event)

    with pytest.raises(ModelError, match="nope"):
        asyncio.run(run("hello", user_id="sarah", session_id="s1"))
    assert seen == [RunStarted("s1")]
    assert mem.sessions.messages("s1", user_id="sarah") == []  # a failed run stores nothing

    mem.sessions.add("theirs", [{"role": "user", "content": "hi"}], user_id="sarah", agent_id="other")
    with pytest.raises(ScopeError):  # before RunStarted: the model is not called
        asyncio.run(run("hello", user_id="sarah", session_id="theirs"))
    assert len(server.requests) == 1
    agent.close()


def test_a_model_that_cannot_stream_gives_its_reply_as_one_piece(make_mem: MakeManager) -> None:
    model = ScriptedModel([ToolCall("today", {}), "It is Monday."])

    def today() -> str:
        """Today's weekday."""
        return "Monday"

    mem = make_mem(update_memory_on_run=False)
    agent = Agent(model, memory=mem, tools=[today])

    events = collect(agent, "What day is it?", user_id="sarah")
    agent.close()

    assert [type(e) for e in events] == [RunStarted, TextDelta, RunFinished]
    assert events[1] == TextDelta("It is Monday.")
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.result.tool_calls == ["today"]
    assert model.requests[1].messages[-1] == {"role": "tool", "tool_call_id": "call_1", "content": "Monday"}
