"""The OpenAI Agents SDK adapter, driven by the real SDK over real HTTP.

Each run goes Runner -> OpenAIChatCompletionsModel -> AsyncOpenAI -> a LoopbackServer on 127.0.0.1.
The same server answers the memory's extraction requests (through litellm), so a test can check what
the model was sent and what was stored. Tracing is off: nothing leaves this machine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from agents import (
    Agent,
    OpenAIChatCompletionsModel,
    RunContextWrapper,
    RunHooks,
    Runner,
    RunResult,
    Session,
    TResponseInputItem,
    set_tracing_disabled,
)
from agents.run_context import AgentHookContext
from openai import AsyncOpenAI

from agentmem import LayerConfig, MemoryManager, UnsupportedError
from agentmem.errors import ConfigurationError, ScopeError
from agentmem.guides import MEMORY_GUIDE, TOOLS_GUIDE
from agentmem.integrations.openai_agents import AgentMemory, AgentMemorySession
from agentmem.testing import Fault, LoopbackServer, ServerReply, ToolCall

T = TypeVar("T")
EXTRACTION_MARK = "You maintain a long-term memory of one user"  # prompts/extract.jinja


Run = Callable[[Coroutine[Any, Any, T]], T]


class Router:
    """Answers the agent's chat requests and the memory's extraction requests from separate queues,
    keeping each kind's bodies; a request with nothing queued gets a 400, so a test fails loudly."""

    def __init__(self) -> None:
        self.queues: dict[str, deque[ServerReply]] = {"chat": deque(), "extract": deque()}
        self.received: dict[str, list[dict[str, Any]]] = {"chat": [], "extract": []}
        self._lock = threading.Lock()

    def add(self, kind: str, *replies: ServerReply) -> None:
        with self._lock:
            self.queues[kind].extend(replies)

    def __call__(self, body: dict[str, Any]) -> ServerReply:
        first = str((body.get("messages") or [{}])[0].get("content") or "")
        kind = "extract" if "response_format" in body or EXTRACTION_MARK in first else "chat"
        with self._lock:
            self.received[kind].append(body)
            if self.queues[kind]:
                return self.queues[kind].popleft()
        return Fault(400, {"error": {"message": f"no {kind} reply queued", "type": "invalid_request_error"}})


@dataclass
class Context:
    """An application's run context: who the user is."""

    user_id: str


@pytest.fixture(autouse=True)
def _offline_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    set_tracing_disabled(True)  # the SDK would export traces to OpenAI
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def run() -> Iterator[Run[Any]]:
    """Runs coroutines on one event loop for the whole test (the OpenAI client keeps its connections
    on the loop that opened them)."""
    with asyncio.Runner() as runner:
        yield runner.run


@pytest.fixture
def router() -> Router:
    return Router()


@pytest.fixture
def server(router: Router) -> Iterator[LoopbackServer]:
    with LoopbackServer(router) as running:
        yield running


@pytest.fixture
def make_mem(server: LoopbackServer, tmp_path: Path) -> Iterator[Callable[..., MemoryManager]]:
    """Managers on a SQLite file whose extraction model is the loopback server."""
    made: list[MemoryManager] = []

    def make(db: str | None = None, **options: Any) -> MemoryManager:
        made.append(
            MemoryManager(
                db=db or f"sqlite:///{tmp_path / 'memory.db'}",
                model="openai/test-model",
                model_options={"api_base": server.url, "api_key": "test-key"},
                **options,
            )
        )
        return made[-1]

    yield make
    for manager in made:
        manager.close()


def sdk_agent(server: LoopbackServer, **options: Any) -> Agent[Any]:
    client = AsyncOpenAI(base_url=server.url, api_key="test-key", max_retries=0)
    model = OpenAIChatCompletionsModel(model="test-model", openai_client=client)
    return Agent(name="assistant", model=model, **options)


def system_of(body: dict[str, Any]) -> str:
    first = body["messages"][0]
    assert first["role"] == "system"
    return str(first["content"])


# ---- instructions ------------------------------------------------------------------------------


def test_the_users_memory_reaches_the_system_instructions(
    router: Router, server: LoopbackServer, make_mem: Callable[..., MemoryManager], run: Run[Any]
) -> None:
    mem = make_mem()
    mem.profile.update(user_id="sarah", name="Sarah", role="data scientist")
    mem.policies.update(user_id="sarah", response_style="concise")
    mem.profile.update(user_id="tom", name="Tom")
    am = AgentMemory(mem)
    agent = sdk_agent(server, instructions=am.instructions("You are a helpful assistant."))
    router.add("chat", "Hello Sarah.", "Hello Tom.")

    result = run(Runner.run(agent, "How do I clean data?", context=Context("sarah")))
    run(Runner.run(agent, "Hi", context=Context("tom")))

    assert result.final_output == "Hello Sarah."
    sarah, tom = (system_of(body) for body in router.received["chat"])
    assert sarah.startswith("You are a helpful assistant.\n\n" + MEMORY_GUIDE)
    assert "name: Sarah" in sarah
    assert "role: data scientist" in sarah
    assert "response_style: concise" in sarah
    assert TOOLS_GUIDE not in sarah  # the agent has no memory tools
    assert "name: Tom" in tom
    assert "Sarah" not in tom


def test_memory_is_compiled_for_the_latest_user_message(
    router: Router, server: LoopbackServer, make_mem: Callable[..., MemoryManager], run: Run[Any]
) -> None:
    mem = make_mem()
    for fact in ("Grows tomatoes on a balcony", "Builds a churn model in pandas", "Plays chess on Sundays"):
        mem.knowledge.add(fact, user_id="sarah")
    am = AgentMemory(mem, user_id="sarah", token_budget=30)  # room for one fact
    agent = sdk_agent(server, instructions=am.instructions())
    router.add("chat", "Use groupby.", "Water them daily.")

    run(Runner.run(agent, "How should I tune the churn model?"))
    run(Runner.run(agent, "My tomatoes look dry."))

    churn, tomatoes = (system_of(body) for body in router.received["chat"])
    assert "churn model" in churn
    assert "tomatoes" not in churn
    assert "tomatoes" in tomatoes
    assert "churn" not in tomatoes


def test_base_instructions_may_be_the_sdks_own_callable(
    router: Router, server: LoopbackServer, make_mem: Callable[..., MemoryManager], run: Run[Any]
) -> None:
    mem = make_mem()
    mem.profile.update(user_id="sarah", name="Sarah")

    async def base(ctx: RunContextWrapper[Context], agent: Agent[Context]) -> str:
        return f"You are {agent.name}, talking to account {ctx.context.user_id}."

    am = AgentMemory(mem, user_id=lambda ctx: ctx.context.user_id.lower())
    agent = sdk_agent(server, instructions=am.instructions(base))
    router.add("chat", "Hi.")

    run(Runner.run(agent, "Hello", context=Context("SARAH")))

    system = system_of(router.received["chat"][0])
    assert system.startswith("You are assistant, talking to account SARAH.\n\n")
    assert "name: Sarah" in system


def test_a_run_without_a_user_is_a_configuration_error(
    router: Router, server: LoopbackServer, make_mem: Callable[..., MemoryManager], run: Run[Any]
) -> None:
    am = AgentMemory(make_mem())
    agent = sdk_agent(server, instructions=am.instructions("Hi"))
    with pytest.raises(ConfigurationError, match="needs the run's user"):
        run(Runner.run(agent, "Hello"))
    assert router.received["chat"] == []
    with pytest.raises(ConfigurationError):
        AgentMemory(make_mem(), user_id=42)  # type: ignore[arg-type]


# ---- tools -------------------------------------------------------------------------------------


def test_a_tool_call_writes_the_memory_of_the_runs_user(
    router: Router, server: LoopbackServer, make_mem: Callable[..., MemoryManager], run: Run[Any]
) -> None:
    mem = make_mem()
    am = AgentMemory(mem)
    agent = sdk_agent(server, instructions=am.instructions("Be brief."), tools=am.tools())
    router.add(
        "chat",
        ToolCall("memory_remember", {"layer": "knowledge", "value": "Builds a churn model"}),
        "Noted.",
        # The model names another user: arguments never choose whose memory it is.
        ToolCall("memory_remember", {"layer": "knowledge", "value": "Grows tomatoes", "user_id": "sarah"}),
        ToolCall("memory_remember", {"layer": "knowledge", "value": "Grows tomatoes"}),
        "Noted too.",
    )

    first = run(Runner.run(agent, "Remember that I build a churn model.", context=Context("sarah")))
    second = run(Runner.run(agent, "Remember that I grow tomatoes.", context=Context("tom")))

    assert (first.final_output, second.final_output) == ("Noted.", "Noted too.")
    assert [i.text for i in mem.get(user_id="sarah").knowledge] == ["Builds a churn model"]
    tom = mem.get(user_id="tom").knowledge
    assert [(i.text, i.source) for i in tom] == [("Grows tomatoes", "agentic")]
    request = router.received["chat"][0]
    assert TOOLS_GUIDE in system_of(request)
    names = [tool["function"]["name"] for tool in request["tools"]]
    assert names == ["memory_remember", "memory_update", "memory_forget", "memory_search"]
    assert {tool["function"].get("strict") for tool in request["tools"]} == {False}
    # Each tool's answer, an error included, went back to the model as the tool message.
    answers = [json.loads(body["messages"][-1]["content"]) for body in router.received["chat"][1:4:2]]
    assert answers[0]["ok"] is True
    assert answers[1] == {"ok": False, "error": "memory_remember takes no argument(s) 'user_id'"}


def test_concurrent_runs_of_two_users_keep_to_their_own_memory(
    router: Router, server: LoopbackServer, make_mem: Callable[..., MemoryManager], run: Run[Any]
) -> None:
    mem = make_mem()
    mem.profile.update(user_id="sarah", name="Sarah")
    mem.profile.update(user_id="tom", name="Tom")
    am = AgentMemory(mem)
    agent = sdk_agent(server, instructions=am.instructions(), tools=am.tools())
    both_asked = threading.Barrier(2, timeout=30)  # each run's first request waits for the other's

    def model(body: dict[str, Any]) -> ServerReply:
        last = body["messages"][-1]
        if last["role"] == "tool":
            return "Done."
        both_asked.wait()
        fact = str(last["content"]).removeprefix("Remember that I ")
        return ToolCall("memory_remember", {"layer": "knowledge", "value": fact})

    router.add("chat", model, model, model, model)

    async def both() -> list[RunResult]:
        return list(
            await asyncio.gather(
                Runner.run(agent, "Remember that I grow tomatoes", context=Context("tom")),
                Runner.run(agent, "Remember that I build churn models", context=Context("sarah")),
            )
        )

    results = run(both())

    assert [r.final_output for r in results] == ["Done.", "Done."]
    assert [i.text for i in mem.get(user_id="tom").knowledge] == ["grow tomatoes"]
    assert [i.text for i in mem.get(user_id="sarah").knowledge] == ["build churn models"]
    for body in router.received["chat"][:2]:
        asked = body["messages"][-1]["content"]
        assert ("name: Tom" in system_of(body)) == ("tomatoes" in asked)


def test_a_tool_error_goes_back_to_the_model(
    router: Router, server: LoopbackServer, make_mem: Callable[..., MemoryManager], run: Run[Any]
) -> None:
    mem = make_mem()
    am = AgentMemory(mem, user_id="sarah")
    agent = sdk_agent(server, tools=am.tools())
    router.add("chat", ToolCall("memory_update", {"item_id": "m_missing", "value": "x"}), "Sorry.")

    result = run(Runner.run(agent, "Fix that."))

    assert result.final_output == "Sorry."
    answer = json.loads(router.received["chat"][1]["messages"][-1]["content"])
    assert "error" in answer
    assert mem.get(user_id="sarah").items == []


# ---- learning after the run --------------------------------------------------------------------


def test_the_hooks_learn_from_the_run_after_it_ends(
    router: Router, server: LoopbackServer, make_mem: Callable[..., MemoryManager], run: Run[Any]
) -> None:
    mem = make_mem()
    am = AgentMemory(mem)
    agent = sdk_agent(server, instructions=am.instructions())
    router.add("chat", "Nice to meet you, Priya! Concise it is.")
    router.add(
        "extract",
        {
            "profile": {"name": "Priya", "role": "backend engineer"},
            "policies": {"set": {"response_style": "concise"}, "remove": []},
        },
    )

    result = run(
        Runner.run(
            agent, "I'm Priya, a backend engineer. Keep it concise.", context=Context("priya"), hooks=am.hooks
        )
    )

    assert result.final_output == "Nice to meet you, Priya! Concise it is."
    state = mem.get(user_id="priya")
    assert (state.profile.name, state.profile.role) == ("Priya", "backend engineer")
    assert state.policies.response_style == "concise"
    assert {i.source for i in state.items} == {"extracted"}
    [extraction] = router.received["extract"]
    prompt = extraction["messages"][0]["content"]
    assert "I'm Priya, a backend engineer" in prompt
    assert "Nice to meet you, Priya!" in prompt
    assert mem.get(user_id="someone-else").items == []


def test_agent_hooks_learn_and_leave_the_run_hooks_to_the_application(
    router: Router, server: LoopbackServer, make_mem: Callable[..., MemoryManager], run: Run[Any]
) -> None:
    mem = make_mem()
    am = AgentMemory(mem)
    agent = sdk_agent(server, hooks=am.agent_hooks)
    ended: list[Any] = []

    class AppHooks(RunHooks[Any]):
        async def on_agent_end(self, context: AgentHookContext[Any], agent: Agent[Any], output: Any) -> None:
            ended.append(output)

    router.add("chat", "Hi Priya.")
    router.add("extract", {"profile": {"name": "Priya"}})

    run(Runner.run(agent, "I'm Priya.", context=Context("priya"), hooks=AppHooks()))

    assert ended == ["Hi Priya."]
    assert mem.get(user_id="priya").profile.name == "Priya"


def test_with_a_session_only_the_runs_new_turn_is_learned(
    router: Router, server: LoopbackServer, make_mem: Callable[..., MemoryManager], run: Run[Any]
) -> None:
    mem = make_mem()
    am = AgentMemory(mem)
    agent = sdk_agent(server)
    session = am.session("priya", "chat-1")
    router.add("chat", "Hi Priya! What are you working on?", "Go suits that.")
    router.add(
        "extract", {"profile": {"name": "Priya"}}, {"knowledge": [{"text": "Writes a payments service"}]}
    )

    run(Runner.run(agent, "I'm Priya.", context=Context("priya"), hooks=am.hooks, session=session))
    run(
        Runner.run(
            agent, "A payments service in Go.", context=Context("priya"), hooks=am.hooks, session=session
        )
    )

    # The second run's model call had the history; its learning read only the new turn and the
    # question it answers.
    assert [m["content"] for m in router.received["chat"][1]["messages"][-3:]] == [
        "I'm Priya.",
        "Hi Priya! What are you working on?",
        "A payments service in Go.",
    ]
    prompt = router.received["extract"][1]["messages"][0]["content"]
    assert "A payments service in Go." in prompt
    assert "What are you working on?" in prompt
    assert "I'm Priya." not in prompt
    assert [i.text for i in mem.get(user_id="priya").knowledge] == ["Writes a payments service"]


def test_a_failed_learning_is_logged_and_the_run_still_succeeds(
    router: Router, server: LoopbackServer, make_mem: Callable[..., MemoryManager], caplog: Any, run: Run[Any]
) -> None:
    mem = make_mem()
    am = AgentMemory(mem, user_id="priya")
    agent = sdk_agent(server)
    router.add("chat", "Noted.")
    router.add("extract", Fault(400))

    with caplog.at_level(logging.WARNING, logger="agentmem.integrations.openai_agents"):
        result = run(Runner.run(agent, "I'm Priya, I live in Lisbon.", hooks=am.hooks))

    assert result.final_output == "Noted."
    assert "memory not learned yet (kept for retry_pending)" in caplog.text
    assert mem.get(user_id="priya").items == []
    assert len(mem.pending(user_id="priya")) == 1  # kept for retry_pending, as every failed learn


def test_a_user_deleted_during_the_run_is_not_recreated(
    router: Router, server: LoopbackServer, make_mem: Callable[..., MemoryManager], run: Run[Any]
) -> None:
    mem = make_mem()
    mem.profile.update(user_id="priya", name="Priya")
    am = AgentMemory(mem)
    agent = sdk_agent(server, tools=am.tools())
    session = am.session("priya", "chat-1")

    def delete_then_call(body: dict[str, Any]) -> ServerReply:
        mem.delete_user("priya")  # the user asks to be forgotten while the model is thinking
        return ToolCall("memory_remember", {"layer": "knowledge", "value": "Lives in Lisbon"})

    router.add("chat", delete_then_call, "Done.")
    router.add("extract", {"knowledge": [{"text": "Lives in Lisbon"}]})

    result = run(
        Runner.run(agent, "I live in Lisbon.", context=Context("priya"), hooks=am.hooks, session=session)
    )

    assert result.final_output == "Done."
    assert "error" in json.loads(router.received["chat"][1]["messages"][-1]["content"])
    assert mem.export_user("priya")["items"] == []
    assert mem.sessions.list(user_id="priya") == []
    # A later run starts the user afresh.
    router.add("chat", "Welcome back.")
    run(Runner.run(agent, "Hello again.", context=Context("priya"), session=am.session("priya", "chat-2")))
    assert [s.session_id for s in mem.sessions.list(user_id="priya")] == ["chat-2"]


def test_a_runs_session_brings_its_session_memory(
    router: Router, server: LoopbackServer, make_mem: Callable[..., MemoryManager], run: Run[Any]
) -> None:
    # Facts stay in the session they were learned in (README: Session memory).
    mem = make_mem(layers={"knowledge": LayerConfig(session_scoped=True)})
    am = AgentMemory(mem)
    agent = sdk_agent(server, instructions=am.instructions(), tools=am.tools())
    router.add(
        "chat",
        ToolCall("memory_remember", {"layer": "knowledge", "value": "The party is on Saturday"}),
        "Saturday it is.",
        "What about the cake?",
        "Your taxes are due in April.",
    )
    router.add("extract", {"knowledge": [{"text": "Plans a surprise party for Ana"}]}, {}, {})

    def turn(text: str, session_id: str) -> None:
        session = am.session("sam", session_id)
        run(Runner.run(agent, text, context=Context("sam"), hooks=am.hooks, session=session))

    turn("I'm planning a surprise party for Ana; it's on Saturday.", "party")
    turn("Any ideas?", "party")
    turn("When are my taxes due?", "taxes")

    party = mem.get(user_id="sam", session_id="party").knowledge
    assert sorted(i.text for i in party) == ["Plans a surprise party for Ana", "The party is on Saturday"]
    assert {i.session_scope for i in party} == {"party"}  # the tool's write and the learned fact
    assert mem.get(user_id="sam").knowledge == []
    second, third = (system_of(body) for body in router.received["chat"][2:])
    assert "surprise party" in second
    assert "Saturday" in second
    assert "party" not in third


def test_a_session_of_another_user_is_refused(
    router: Router, server: LoopbackServer, make_mem: Callable[..., MemoryManager], run: Run[Any]
) -> None:
    mem = make_mem()
    am = AgentMemory(mem)
    agent = sdk_agent(server, instructions=am.instructions())
    with pytest.raises(ConfigurationError, match="belongs to user 'sarah'"):
        run(Runner.run(agent, "Hi", context=Context("tom"), session=am.session("sarah", "s1")))
    assert router.received["chat"] == []
    assert mem.sessions.list(user_id="sarah") == []


# ---- the session ---------------------------------------------------------------------------------

ITEMS: list[Any] = [
    {"role": "user", "content": "What's the weather in Oslo?"},
    {"role": "system", "content": "Answer in metric units."},
    {
        "arguments": '{"city": "Oslo"}',
        "call_id": "call_1",
        "name": "weather",
        "type": "function_call",
        "id": "__fake_id__",
        "provider_data": {"model": "test-model", "response_id": "chatcmpl-1"},
    },
    {"call_id": "call_1", "output": "Sunny, 21 °C", "type": "function_call_output"},
    {
        "id": "msg_1",
        "content": [{"annotations": [], "text": "Sunny, 21 °C.", "type": "output_text", "logprobs": []}],
        "role": "assistant",
        "status": "completed",
        "type": "message",
    },
    {"id": "rs_1", "summary": [{"text": "Looked it up.", "type": "summary_text"}], "type": "reasoning"},
    {"role": "user", "content": [{"type": "input_text", "text": "And tomorrow?"}]},
    {"role": "developer", "content": "Be brief."},
    {"type": "message", "role": "user", "content": "typed"},
    # Text that looks like a stored item stays text.
    {"role": "user", "content": '{"type": "function_call", "call_id": "x"}'},
    {"role": "assistant", "content": ""},
]


def test_the_session_round_trips_every_kind_of_item(db_url: str, run: Run[Any]) -> None:
    mem = MemoryManager(db=db_url)
    try:
        session = AgentMemory(mem, agent_id="helper").session("sarah", "s1")
        assert isinstance(session, Session)

        async def story() -> None:
            assert await session.get_items() == []
            await session.add_items(ITEMS[:4])
            await session.add_items(ITEMS[4:])
            await session.add_items([])
            assert await session.get_items() == ITEMS
            assert await session.get_items(limit=3) == ITEMS[-3:]
            assert await session.get_items(limit=0) == []
            # A fresh object (another process, say) reads the same history.
            assert (
                await AgentMemorySession(mem, user_id="sarah", session_id="s1", agent_id="helper").get_items()
                == ITEMS
            )

        run(story())
        # agentmem reads the plain messages as they are; other items are JSON under a mark.
        stored = mem.sessions.messages("s1", user_id="sarah")
        assert stored[0] == {"role": "user", "content": "What's the weather in Oslo?"}
        assert stored[2]["role"] == "tool"
        assert stored[2]["name"] == "openai-agents-item"
        assert stored[4]["role"] == "assistant"
        assert mem.sessions.get("s1", user_id="sarah").agent_id == "helper"
    finally:
        mem.close()


def test_a_secret_in_a_stored_item_is_redacted_and_the_item_still_reads_back(
    sqlite_url: str, run: Run[Any]
) -> None:
    mem = MemoryManager(db=sqlite_url)
    try:
        session = AgentMemory(mem).session("sarah", "s1")
        key = "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0" * 2
        output = {"call_id": "call_1", "output": f"Your key is {key}", "type": "function_call_output"}
        run(session.add_items([output, {"role": "user", "content": f"my key: {key}"}]))

        stored, said = run(session.get_items())

        assert stored == {**output, "output": "Your key is [redacted]"}
        assert said == {"role": "user", "content": "my key: [redacted]"}
        assert key not in json.dumps(mem.export_user("sarah"))
    finally:
        mem.close()


def test_a_named_password_in_a_tool_calls_json_is_redacted_and_the_item_stays_json(
    sqlite_url: str, run: Run[Any], caplog: Any
) -> None:
    mem = MemoryManager(db=sqlite_url)
    try:
        session = AgentMemory(mem).session("sarah", "s1")
        arguments = json.dumps({"username": "bob", "password": "Hunter2pass!"})
        call = {"type": "function_call", "call_id": "c1", "name": "login", "arguments": arguments}
        said = "the password for the VPN is Hunter2pass!"
        output = {"type": "function_call_output", "call_id": "c1", "output": said}
        huge = {"type": "function_call_output", "call_id": "c2", "output": "x" * 150_000}
        run(session.add_items([call, output]))
        with caplog.at_level(logging.WARNING, logger="agentmem.integrations.openai_agents"):
            run(session.add_items([huge, {"role": "user", "content": "nul\x00 here"}]))  # never fails the run

        stored_call, stored_output = run(session.get_items())

        assert "Hunter2pass" not in json.dumps(mem.export_user("sarah"))
        assert json.loads(stored_call["arguments"])["username"] == "bob"  # still JSON, still a call
        # Without a secret, JSON text in an item is kept to the letter, not re-formatted.
        compact = {"type": "function_call", "call_id": "c3", "name": "find", "arguments": '{"q":[1.10,2.50]}'}
        run(session.add_items([compact]))
        assert run(session.get_items(limit=1)) == [compact]
        assert stored_output["call_id"] == "c1"
        assert "are not stored" in caplog.text
    finally:
        mem.close()


def test_sessions_are_isolated_between_users_sessions_and_agents(db_url: str, run: Run[Any]) -> None:
    mem = MemoryManager(db=db_url)
    try:
        am = AgentMemory(mem, agent_id="helper")
        sarah, tom = am.session("sarah", "s1"), am.session("tom", "s1")
        other = am.session("sarah", "s2")
        stranger = AgentMemory(mem, agent_id="other-agent").session("sarah", "s1")

        async def story() -> None:
            await sarah.add_items([ITEMS[0], ITEMS[2]])
            await tom.add_items([{"role": "user", "content": "Tom here."}])
            await other.add_items([{"role": "user", "content": "Another chat."}])
            assert await sarah.get_items() == [ITEMS[0], ITEMS[2]]
            assert await tom.get_items() == [{"role": "user", "content": "Tom here."}]
            with pytest.raises(ScopeError):
                await stranger.get_items()
            with pytest.raises(ScopeError):
                await stranger.add_items([{"role": "user", "content": "x"}])
            with pytest.raises(ScopeError):
                await stranger.clear_session()
            await sarah.clear_session()
            assert await sarah.get_items() == []
            assert await tom.get_items() == [{"role": "user", "content": "Tom here."}]
            assert await other.get_items() == [{"role": "user", "content": "Another chat."}]
            await sarah.clear_session()  # clearing an empty session is fine

        run(story())
        assert {s.session_id for s in mem.sessions.list(user_id="sarah")} == {"s2"}
    finally:
        mem.close()


def test_pop_item_is_refused_with_a_clear_error(sqlite_url: str, run: Run[Any]) -> None:
    mem = MemoryManager(db=sqlite_url)
    try:
        session = AgentMemory(mem).session("sarah", "s1")
        run(session.add_items([ITEMS[0]]))
        with pytest.raises(UnsupportedError, match="cannot pop"):
            run(session.pop_item())
        with pytest.raises(NotImplementedError):
            run(session.pop_item())
        assert run(session.get_items()) == [ITEMS[0]]
    finally:
        mem.close()


def test_the_session_keeps_a_tool_using_run_for_the_next_run(
    router: Router,
    server: LoopbackServer,
    make_mem: Callable[..., MemoryManager],
    backend: str,
    db_url: str,
    run: Run[Any],
) -> None:
    mem = make_mem(db=db_url)
    am = AgentMemory(mem, agent_id="helper")
    agent = sdk_agent(server, instructions=am.instructions(), tools=am.tools())
    session = am.session("sarah", "chat-1")
    router.add(
        "chat",
        ToolCall("memory_remember", {"layer": "profile", "field": "name", "value": "Sarah"}),
        "Hi Sarah.",
        "You told me your name.",
    )
    router.add("extract", {}, {})

    first: RunResult = run(
        Runner.run(agent, "Call me Sarah.", context=Context("sarah"), hooks=am.hooks, session=session)
    )
    history: list[TResponseInputItem] = run(session.get_items())
    run(Runner.run(agent, "What do you know?", context=Context("sarah"), hooks=am.hooks, session=session))

    assert history == first.to_input_list()
    assert [item.get("type") for item in history] == [
        None,
        "function_call",
        "function_call_output",
        "message",
    ]
    # The next run sent the whole exchange, tool call and output included, back to the model.
    sent = router.received["chat"][2]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert sent[2]["tool_calls"][0]["function"]["name"] == "memory_remember"
    assert "name: Sarah" in sent[0]["content"]
    assert mem.get(user_id="sarah", agent_id="helper").profile.name == "Sarah"


def test_a_streamed_run_gets_memory_learns_and_keeps_its_session(
    router: Router, server: LoopbackServer, make_mem: Callable[..., MemoryManager], run: Run[Any]
) -> None:
    mem = make_mem()
    mem.profile.update(user_id="priya", name="Priya")
    am = AgentMemory(mem)
    agent = sdk_agent(server, instructions=am.instructions())
    session = am.session("priya", "chat-1")
    router.add("chat", "Lisbon is lovely in spring.")
    router.add("extract", {"profile": {"location": "Lisbon"}})

    async def stream() -> tuple[str, Any]:
        result = Runner.run_streamed(
            agent, "I live in Lisbon.", context=Context("priya"), hooks=am.hooks, session=session
        )
        deltas = [
            event.data.delta
            async for event in result.stream_events()
            if event.type == "raw_response_event" and event.data.type == "response.output_text.delta"
        ]
        return "".join(deltas), result.final_output

    text, final = run(stream())

    assert text == final == "Lisbon is lovely in spring."
    assert router.received["chat"][0]["stream"] is True
    assert "name: Priya" in system_of(router.received["chat"][0])
    assert mem.get(user_id="priya").profile.location == "Lisbon"
    assert [item.get("role") for item in run(session.get_items())] == ["user", "assistant"]


def test_learning_in_the_background_does_not_hold_the_run(
    router: Router, server: LoopbackServer, make_mem: Callable[..., MemoryManager], run: Run[Any]
) -> None:
    mem = make_mem()
    am = AgentMemory(mem, user_id="priya", learn_in_background=True)
    agent = sdk_agent(server)
    arrived, release = threading.Event(), threading.Event()

    def held(body: dict[str, Any]) -> ServerReply:
        arrived.set()
        assert release.wait(30), "the test never released the extraction"
        return {"profile": {"name": "Priya"}}

    router.add("chat", "Hi Priya.")
    router.add("extract", held)

    result = run(Runner.run(agent, "I'm Priya.", hooks=am.hooks))

    # The run is back while its extraction still waits at the server.
    assert result.final_output == "Hi Priya."
    assert arrived.wait(30)
    assert am.wait_for_learning(timeout=0.2) is False
    assert mem.get(user_id="priya").items == []
    release.set()
    assert run(am.await_learning(timeout=30)) is True
    assert mem.get(user_id="priya").profile.name == "Priya"
    am.close()
    assert AgentMemory(mem, user_id="priya").wait_for_learning(timeout=0) is True
