"""MemoryCapability with real pydantic-ai agents (FunctionModel): what reaches the model, tools bound
to the run's user, learning after the run, on both backends where the store matters."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic_ai import Agent
from pydantic_ai.messages import (
    CachePoint,
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextContent,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from agentmem import MemoryManager
from agentmem.errors import ConfigurationError
from agentmem.guides import MEMORY_GUIDE, TOOLS_GUIDE
from agentmem.integrations.common import memory_instructions
from agentmem.integrations.pydantic_ai import MemoryCapability, MemoryToolset, openai_messages
from agentmem.testing import LoopbackServer, ScriptedModel, ServerReply, ToolCall


@dataclass
class Deps:
    user_id: str


@dataclass
class Seen:
    """What the model was sent, per request."""

    instructions: list[str | None]
    tools: list[list[str]]
    messages: list[list[ModelMessage]]


def recording(
    reply: Callable[[list[ModelMessage], AgentInfo], ModelResponse] | None = None,
) -> tuple[FunctionModel, Seen]:
    """A FunctionModel that records each request and answers with ``reply`` (default: "ok")."""
    seen = Seen([], [], [])

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.instructions.append(info.instructions)
        seen.tools.append([t.name for t in info.function_tools])
        seen.messages.append(list(messages))
        return reply(messages, info) if reply else ModelResponse(parts=[TextPart("ok")])

    return FunctionModel(model), seen


def prompt_of(messages: list[ModelMessage]) -> str:
    return next(
        str(p.content)
        for m in reversed(messages)
        if isinstance(m, ModelRequest)
        for p in m.parts
        if isinstance(p, UserPromptPart)
    )


def answered(messages: list[ModelMessage]) -> bool:
    return any(isinstance(p, ToolReturnPart) for p in messages[-1].parts)


@pytest.fixture
def manager(db_url: str) -> Iterator[Callable[..., MemoryManager]]:
    made: list[MemoryManager] = []

    def make(**options: Any) -> MemoryManager:
        made.append(MemoryManager(db=db_url, **options))
        return made[-1]

    yield make
    for m in made:
        m.close()


# ---- instructions -----------------------------------------------------------------------------------


def test_the_runs_user_memory_reaches_the_models_instructions(mem: MemoryManager) -> None:
    mem.profile.update(user_id="sarah", name="Sarah", role="data scientist")
    mem.profile.update(user_id="marco", name="Marco")
    model, seen = recording()
    agent = Agent(
        model,
        deps_type=Deps,
        instructions="Be brief.",
        capabilities=[MemoryCapability(mem, user_id=lambda ctx: ctx.deps.user_id)],
    )

    agent.run_sync("Hi", deps=Deps("sarah"))

    [instructions] = seen.instructions
    assert instructions is not None
    assert instructions.startswith("Be brief.")
    assert MEMORY_GUIDE in instructions
    assert "name: Sarah" in instructions
    assert "role: data scientist" in instructions
    assert "Marco" not in instructions
    assert TOOLS_GUIDE in instructions
    assert seen.tools == [["memory_remember", "memory_update", "memory_forget", "memory_search"]]


def test_memory_is_compiled_for_the_users_prompt(sqlite_url: str) -> None:
    mem = MemoryManager(db=sqlite_url)
    facts = [
        "Keeps three beehives in the garden",
        "Drives a blue hatchback to work",
        "Collects vinyl records of jazz",
        "Runs a marathon every spring",
        "Speaks Portuguese with the grandparents",
        "Grows tomatoes on the balcony",
    ]
    for fact in facts:
        mem.knowledge.add(fact, user_id="u")
    prompt = "How do I keep my beehives healthy over winter?"
    budget = 62  # a few facts: the one the query names, or the newest ones
    ranked = memory_instructions(mem, user_id="u", query=prompt, token_budget=budget, tools=True)
    unranked = memory_instructions(mem, user_id="u", token_budget=budget, tools=True)
    assert "beehives" in ranked
    assert "beehives" not in unranked  # else this test could not tell the query was used
    model, seen = recording()
    agent = Agent(model, capabilities=[MemoryCapability(mem, user_id="u", token_budget=budget)])

    agent.run_sync(prompt)

    assert seen.instructions == [ranked]
    mem.close()


def test_instructions_are_compiled_once_per_run(sqlite_url: str) -> None:
    mem = MemoryManager(db=sqlite_url)

    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if answered(messages) or prompt_of(messages) == "Where do I live?":
            return ModelResponse(parts=[TextPart("Noted.")])
        args = {"layer": "profile", "value": "Lisbon", "field": "location"}
        return ModelResponse(parts=[ToolCallPart("memory_remember", args)])

    model, seen = recording(reply)
    agent = Agent(model, capabilities=[MemoryCapability(mem, user_id="u", learn=False)])

    agent.run_sync("Remember that I live in Lisbon")
    agent.run_sync("Where do I live?")

    # The tool wrote during the first run; its second request still carries the memory it began
    # with (the tool result tells the model), and the next run sees the write.
    assert len(seen.instructions) == 3
    assert seen.instructions[0] == seen.instructions[1]
    assert "Lisbon" not in str(seen.instructions[1])
    assert "location: Lisbon" in str(seen.instructions[2])
    mem.close()


def test_a_memory_forgotten_between_runs_of_a_conversation_is_not_sent_again(sqlite_url: str) -> None:
    mem = MemoryManager(db=sqlite_url)
    mem.knowledge.add("Is planning a surprise party for Ben", user_id="u")
    model, seen = recording()
    agent = Agent(model, capabilities=[MemoryCapability(mem, user_id="u", learn=False)])

    first = agent.run_sync("Hi")
    [item] = mem.get(user_id="u").items
    mem.forget(item.id, user_id="u")
    agent.run_sync("Hi again", message_history=first.all_messages())

    assert "surprise party" in str(seen.instructions[0])
    assert "surprise party" not in str(seen.instructions[1])  # rewritten, not appended to the history
    mem.close()


def test_without_tools_and_memory_there_are_no_memory_instructions(sqlite_url: str) -> None:
    mem = MemoryManager(db=sqlite_url)
    model, seen = recording()
    agent = Agent(
        model, instructions="Be brief.", capabilities=[MemoryCapability(mem, user_id="u", tools=False)]
    )

    agent.run_sync("Hi")

    assert seen.instructions == ["Be brief."]
    assert seen.tools == [[]]
    mem.close()


# ---- tools --------------------------------------------------------------------------------------------


def test_concurrent_runs_of_one_agent_write_each_users_own_memory(
    manager: Callable[..., MemoryManager],
) -> None:
    mem = manager()
    both_asking = asyncio.Barrier(2)

    async def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if answered(messages):
            return ModelResponse(parts=[TextPart("Noted.")])
        await both_asking.wait()  # both runs are under way at once before either writes
        fact = prompt_of(messages).removeprefix("Remember: ")
        return ModelResponse(parts=[ToolCallPart("memory_remember", {"layer": "knowledge", "value": fact})])

    agent = Agent(
        FunctionModel(model),
        deps_type=Deps,
        capabilities=[MemoryCapability(mem, user_id=lambda ctx: ctx.deps.user_id, learn=False)],
    )

    async def both() -> None:
        await asyncio.gather(
            agent.run("Remember: I keep bees", deps=Deps("ana")),
            agent.run("Remember: I keep goats", deps=Deps("ben")),
        )

    asyncio.run(both())

    assert [i.text for i in mem.get(user_id="ana").items] == ["I keep bees"]
    assert [i.text for i in mem.get(user_id="ben").items] == ["I keep goats"]


def test_a_model_cannot_choose_whose_memory_a_tool_writes(manager: Callable[..., MemoryManager]) -> None:
    mem = manager()

    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if answered(messages):
            return ModelResponse(parts=[TextPart("ok")])
        args = {"layer": "knowledge", "value": "I keep bees", "user_id": "victim"}
        return ModelResponse(parts=[ToolCallPart("memory_remember", args)])

    model, seen = recording(reply)
    agent = Agent(model, capabilities=[MemoryCapability(mem, user_id="attacker", learn=False)])

    agent.run_sync("Remember I keep bees")

    [result] = [p for p in seen.messages[1][-1].parts if isinstance(p, ToolReturnPart)]
    error = json.loads(str(result.content))
    assert error["ok"] is False
    assert "user_id" in error["error"]
    assert mem.get(user_id="victim").items == []
    assert mem.get(user_id="attacker").items == []


def test_the_memory_tools_search_and_forget_the_runs_user(manager: Callable[..., MemoryManager]) -> None:
    mem = manager()
    mem.knowledge.add("Allergic to peanuts", user_id="u")
    mem.knowledge.add("Allergic to peanuts", user_id="other")

    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        calls = sum(isinstance(p, ToolReturnPart) for m in messages for p in m.parts)
        if calls == 0:
            return ModelResponse(parts=[ToolCallPart("memory_search", {"query": "peanuts"})])
        if calls == 1:
            found = json.loads(str(messages[-1].parts[0].content))  # type: ignore[union-attr]
            item_id = found["results"][0]["id"]
            return ModelResponse(parts=[ToolCallPart("memory_forget", {"item_id": item_id})])
        return ModelResponse(parts=[TextPart("Forgotten.")])

    model, _ = recording(reply)
    agent = Agent(model, capabilities=[MemoryCapability(mem, user_id="u", learn=False)])

    assert agent.run_sync("Forget my peanut allergy").output == "Forgotten."
    assert mem.get(user_id="u").items == []
    assert [i.text for i in mem.get(user_id="other").items] == ["Allergic to peanuts"]


def test_the_toolset_alone_serves_an_agent_that_binds_the_user_itself(sqlite_url: str) -> None:
    mem = MemoryManager(db=sqlite_url)

    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if answered(messages):
            return ModelResponse(parts=[TextPart("Noted.")])
        args = {"layer": "knowledge", "value": "I keep bees"}
        return ModelResponse(parts=[ToolCallPart("memory_remember", args)])

    model, seen = recording(reply)
    agent = Agent(model)

    agent.run_sync("Remember I keep bees", toolsets=[MemoryToolset(mem.tools(user_id="u"))])

    assert seen.tools[0] == ["memory_remember", "memory_update", "memory_forget", "memory_search"]
    assert [i.text for i in mem.get(user_id="u").items] == ["I keep bees"]
    mem.close()


# ---- learning -----------------------------------------------------------------------------------------


def test_a_finished_run_is_learned_from(manager: Callable[..., MemoryManager]) -> None:
    extractor = ScriptedModel([{"profile": {"name": "Sarah", "location": "Munich"}}])
    mem = manager(model=extractor)
    model, _ = recording(lambda messages, info: ModelResponse(parts=[TextPart("Nice to meet you, Sarah!")]))
    agent = Agent(model, instructions="Be brief.", capabilities=[MemoryCapability(mem, user_id="sarah")])

    result = agent.run_sync("I'm Sarah and I live in Munich.")

    assert result.output == "Nice to meet you, Sarah!"
    profile = mem.get(user_id="sarah").profile
    assert (profile.name, profile.location) == ("Sarah", "Munich")
    [request] = extractor.requests
    sent = json.dumps(request.messages)
    assert "I'm Sarah and I live in Munich." in sent
    assert "Nice to meet you, Sarah!" in sent
    assert "Be brief." not in sent  # the agent's instructions are not the user's words


def test_over_http_the_agent_and_the_extraction_reach_one_server(
    manager: Callable[..., MemoryManager],
) -> None:
    def reply(body: dict[str, Any]) -> ServerReply:
        if "response_format" in body:  # the extraction, after the run
            return {"profile": {"name": "Sarah"}}
        if body["messages"][-1]["role"] == "tool":
            return "Noted, Sarah."
        return ToolCall("memory_remember", {"layer": "knowledge", "value": "I keep bees"})

    with LoopbackServer(reply) as server:
        mem = manager(model="openai/extractor", model_options={"api_base": server.url, "api_key": "k"})
        mem.policies.update(user_id="sarah", response_style="concise")
        provider = OpenAIProvider(base_url=server.url, api_key="k")
        agent = Agent(
            OpenAIChatModel("assistant", provider=provider),
            deps_type=Deps,
            capabilities=[MemoryCapability(mem, user_id=lambda ctx: ctx.deps.user_id)],
        )

        result = agent.run_sync("I'm Sarah. Remember that I keep bees.", deps=Deps("sarah"))

    assert result.output == "Noted, Sarah."
    first = server.requests[0]
    assert first["model"] == "assistant"
    assert "response_style: concise" in first["messages"][0]["content"]
    assert [t["function"]["name"] for t in first["tools"]] == [
        "memory_remember",
        "memory_update",
        "memory_forget",
        "memory_search",
    ]
    assert server.requests[-1]["model"] == "extractor"
    state = mem.get(user_id="sarah")
    assert state.profile.name == "Sarah"
    assert [fact.text for fact in state.knowledge] == ["I keep bees"]


def test_learning_reads_the_reply_the_user_reacts_to(sqlite_url: str) -> None:
    extractor = ScriptedModel([{}, {"policies": {"response_style": "short"}}])
    mem = MemoryManager(db=sqlite_url, model=extractor)
    replies = iter(["Here is a long, detailed answer about sourdough.", "Understood."])
    model, _ = recording(lambda messages, info: ModelResponse(parts=[TextPart(next(replies))]))
    agent = Agent(model, capabilities=[MemoryCapability(mem, user_id="u", tools=False)])

    first = agent.run_sync("I like to bake sourdough bread, how do I start?")
    agent.run_sync("That is far too long, I prefer short answers.", message_history=first.all_messages())

    second = json.dumps(extractor.requests[1].messages)
    assert "That is far too long" in second
    assert "long, detailed answer about sourdough" in second  # the reply it reacts to
    assert "how do I start?" not in second  # the earlier run was learned already
    mem.close()


def test_a_failed_learn_does_not_fail_the_run_and_is_kept_for_retry(
    manager: Callable[..., MemoryManager], caplog: pytest.LogCaptureFixture
) -> None:
    extractor = ScriptedModel([ValueError("401 invalid api key")])
    mem = manager(model=extractor)
    model, _ = recording(lambda messages, info: ModelResponse(parts=[TextPart("Hello Sarah.")]))
    agent = Agent(
        model,
        capabilities=[MemoryCapability(mem, user_id="sarah", session_id=lambda ctx: ctx.conversation_id)],
    )

    with caplog.at_level(logging.WARNING, logger="agentmem.integrations.pydantic_ai"):
        result = agent.run_sync("I'm Sarah and I live in Munich.")

    assert result.output == "Hello Sarah."
    [pending] = mem.pending(user_id="sarah")
    assert pending.session_id == result.conversation_id
    assert pending.messages[0]["content"] == "I'm Sarah and I live in Munich."
    assert "kept for retry_pending" in caplog.text
    extractor.add({"profile": {"name": "Sarah"}})
    assert mem.retry_pending(user_id="sarah").still_pending == 0
    assert mem.get(user_id="sarah").profile.name == "Sarah"


def test_learning_in_the_background_does_not_hold_the_result(
    manager: Callable[..., MemoryManager], caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()

    def extract(messages: list[dict[str, Any]]) -> dict[str, Any]:
        assert release.wait(10), "the test never released the extraction"
        return {"profile": {"name": "Sarah"}}

    mem = manager(model=ScriptedModel(extract))
    model, _ = recording()
    memory = MemoryCapability(mem, user_id="sarah", learn_in_background=True)
    agent = Agent(model, capabilities=[memory])

    assert agent.run_sync("I'm Sarah.").output == "ok"  # returned while the extraction is held

    assert mem.get(user_id="sarah").items == []
    assert memory.wait_for_learning(timeout=0.05) is False
    release.set()
    assert memory.wait_for_learning(timeout=10) is True
    assert mem.get(user_id="sarah").profile.name == "Sarah"

    memory.close()
    with caplog.at_level(logging.WARNING, logger="agentmem.integrations.pydantic_ai"):
        assert agent.run_sync("I'm Sarah again.").output == "ok"  # closed: the run still answers
    assert "background learning is closed" in caplog.text


def test_a_failed_background_learn_is_logged_and_kept_for_retry(
    manager: Callable[..., MemoryManager], caplog: pytest.LogCaptureFixture
) -> None:
    mem = manager(model=ScriptedModel([ValueError("401 invalid api key")]))
    model, _ = recording()
    memory = MemoryCapability(mem, user_id="sarah", learn_in_background=True)
    agent = Agent(model, capabilities=[memory])

    with caplog.at_level(logging.WARNING, logger="agentmem.integrations.pydantic_ai"):
        assert agent.run_sync("I'm Sarah and I live in Munich.").output == "ok"
        assert memory.wait_for_learning(timeout=10) is True

    assert "kept for retry_pending" in caplog.text
    [pending] = mem.pending(user_id="sarah")
    assert pending.messages[0]["content"] == "I'm Sarah and I live in Munich."
    memory.close()


def test_learn_false_learns_nothing(sqlite_url: str) -> None:
    extractor = ScriptedModel([{"profile": {"name": "Sarah"}}])
    mem = MemoryManager(db=sqlite_url, model=extractor)
    model, _ = recording()
    agent = Agent(model, capabilities=[MemoryCapability(mem, user_id="sarah", learn=False)])

    agent.run_sync("I'm Sarah.")

    assert extractor.requests == []
    assert mem.get(user_id="sarah").items == []
    mem.close()


def test_agent_iter_gets_memory_and_learns(manager: Callable[..., MemoryManager]) -> None:
    extractor = ScriptedModel([{"profile": {"name": "Ana"}}])
    mem = manager(model=extractor)
    mem.policies.update(user_id="ana", response_style="concise")
    model, seen = recording(lambda messages, info: ModelResponse(parts=[TextPart("Hi Ana.")]))
    agent = Agent(
        model, deps_type=Deps, capabilities=[MemoryCapability(mem, user_id=lambda c: c.deps.user_id)]
    )

    async def run() -> str:
        async with agent.iter("I'm Ana.", deps=Deps("ana")) as agent_run:
            async for _node in agent_run:
                pass
        assert agent_run.result is not None
        return agent_run.result.output

    assert asyncio.run(run()) == "Hi Ana."
    assert "response_style: concise" in str(seen.instructions[0])
    assert mem.get(user_id="ana").profile.name == "Ana"


def test_agent_run_stream_gets_memory_and_learns(sqlite_url: str) -> None:
    extractor = ScriptedModel([{"profile": {"name": "Ana"}}])
    mem = MemoryManager(db=sqlite_url, model=extractor)
    mem.policies.update(user_id="ana", response_style="concise")
    instructions: list[str | None] = []

    async def stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
        instructions.append(info.instructions)
        yield "Hi "
        yield "Ana."

    agent = Agent(FunctionModel(stream_function=stream), capabilities=[MemoryCapability(mem, user_id="ana")])

    async def run() -> str:
        async with agent.run_stream("I'm Ana.") as streamed:
            return await streamed.get_output()

    assert asyncio.run(run()) == "Hi Ana."
    assert "response_style: concise" in str(instructions[0])
    assert mem.get(user_id="ana").profile.name == "Ana"
    assert "Hi Ana." in json.dumps(extractor.requests[0].messages)
    mem.close()


def test_a_user_deleted_during_the_run_gets_nothing_written(manager: Callable[..., MemoryManager]) -> None:
    extractor = ScriptedModel([{"profile": {"name": "Sarah"}}])
    mem = manager(model=extractor)
    mem.profile.update(user_id="sarah", name="Sarah")

    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if answered(messages):
            return ModelResponse(parts=[TextPart("ok")])
        mem.delete_user("sarah")  # erased while the run is under way
        args = {"layer": "knowledge", "value": "I keep bees"}
        return ModelResponse(parts=[ToolCallPart("memory_remember", args)])

    model, seen = recording(reply)
    agent = Agent(model, capabilities=[MemoryCapability(mem, user_id="sarah")])

    assert agent.run_sync("I'm Sarah, remember that I keep bees.").output == "ok"

    [result] = [p for p in seen.messages[1][-1].parts if isinstance(p, ToolReturnPart)]
    assert json.loads(str(result.content))["ok"] is False
    assert mem.get(user_id="sarah").items == []
    assert mem.pending(user_id="sarah") == []


# ---- configuration and helpers ------------------------------------------------------------------------


def test_a_user_id_that_does_not_resolve_fails_the_run_before_the_model_is_asked(sqlite_url: str) -> None:
    mem = MemoryManager(db=sqlite_url)
    model, seen = recording()
    agent = Agent(
        model, deps_type=Deps, capabilities=[MemoryCapability(mem, user_id=lambda ctx: ctx.deps.user_id)]
    )

    with pytest.raises(ConfigurationError, match="user_id must resolve"):
        agent.run_sync("Hi", deps=Deps(""))
    assert seen.instructions == []
    mem.close()


def test_bad_configuration_fails_when_the_capability_is_made(sqlite_url: str) -> None:
    mem = MemoryManager(db=sqlite_url)
    with pytest.raises(ConfigurationError, match="memory must be a MemoryManager"):
        MemoryCapability("memory", user_id="u")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="user_id"):
        MemoryCapability(mem, user_id=42)  # type: ignore[arg-type]
    mem.close()


def test_openai_messages_keep_user_prompts_and_model_text_only() -> None:
    messages: list[ModelMessage] = [
        ModelRequest(parts=[UserPromptPart("I keep bees")], instructions="secret instructions"),
        ModelResponse(parts=[ToolCallPart("memory_remember", {"layer": "knowledge", "value": "bees"})]),
        ModelRequest(parts=[ToolReturnPart("memory_remember", '{"ok": true}', tool_call_id="c1")]),
        ModelResponse(parts=[TextPart("Noted, "), TextPart("bees it is.")]),
        ModelRequest(parts=[UserPromptPart(["Look:", TextContent("what is this?"), CachePoint()])]),
    ]

    assert openai_messages(messages) == [
        {"role": "user", "content": "I keep bees"},
        {"role": "assistant", "content": "Noted, bees it is."},
        {"role": "user", "content": "Look:\nwhat is this?"},
    ]
