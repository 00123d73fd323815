"""Agent end to end over real HTTP: Agent -> litellm -> OpenAI client -> a LoopbackServer.

One server answers every request of a test; a router tells the agent's chat requests from the
memory's extraction and summary requests and answers each kind from its own queue, so every test
can check what the provider received as well as what was stored. Replies that must wait for the
test (to prove that something happens in the background, or that two writes overlap) are held by a
gate or a barrier, never by guessing how long a step takes.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentmem import Agent, MemoryManager
from agentmem.conversations import offline_summary
from agentmem.guides import MEMORY_GUIDE, TOOLS_GUIDE
from agentmem.testing import Fault, LoopbackServer, ServerReply, ToolCall

MODEL = "openai/test-model"  # the model id of the make_mem fixture (conftest.py)
MakeManager = Callable[..., MemoryManager]
MakeAgent = Callable[..., Agent]
EXTRACTION_MARK = "You maintain a long-term memory of one user"  # prompts/extract.jinja
SUMMARY_MARK = "Summarise this conversation"  # prompts/session_summary.jinja
HOLD_LIMIT = 30.0  # seconds a held reply waits for the test before it gives up


def kind_of(body: dict[str, Any]) -> str:
    """``extract``, ``summary`` or ``chat``: what a request to the server is for."""
    messages = body.get("messages") or [{}]
    first = str(messages[0].get("content") or "")
    if "response_format" in body or EXTRACTION_MARK in first:
        return "extract"
    if messages[0].get("role") == "user" and SUMMARY_MARK in first:
        return "summary"
    return "chat"


class Router:
    """The server's reply function: each kind of request is answered from its own queue and its
    bodies are kept in ``received[kind]``. A request with nothing queued fails at once (400)."""

    def __init__(self) -> None:
        self.queues: dict[str, deque[ServerReply]] = {k: deque() for k in ("chat", "extract", "summary")}
        self.received: dict[str, list[dict[str, Any]]] = {k: [] for k in self.queues}
        self._lock = threading.Lock()

    def add(self, kind: str, *replies: ServerReply) -> None:
        with self._lock:
            self.queues[kind].extend(replies)

    def __call__(self, body: dict[str, Any]) -> ServerReply:
        kind = kind_of(body)
        with self._lock:
            self.received[kind].append(body)
            if self.queues[kind]:
                return self.queues[kind].popleft()
        message = f"the test queued no {kind} reply for request {len(self.received[kind])}"
        return Fault(400, {"error": {"message": message, "type": "invalid_request_error"}})


class Gate:
    """Holds replies until the test opens it; ``arrived`` is set when a held request reaches the
    server. A reply still held after HOLD_LIMIT seconds fails, so a broken test cannot hang."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self._open = threading.Event()

    def hold(self, reply: ServerReply) -> Callable[[dict[str, Any]], ServerReply]:
        def held(body: dict[str, Any]) -> ServerReply:
            self.arrived.set()
            return reply if self._open.wait(HOLD_LIMIT) else Fault(504, "the test never opened the gate")

        return held

    def open(self) -> None:
        self._open.set()


@pytest.fixture
def router() -> Router:
    return Router()


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def server(router: Router) -> Iterator[LoopbackServer]:
    """Replaces conftest's server: this one answers through the router."""
    with LoopbackServer(router) as running:
        yield running


@pytest.fixture
def make_agent(server: LoopbackServer, gate: Gate, make_mem: MakeManager) -> Iterator[MakeAgent]:
    """Agents whose chat model is the loopback server; closed (background work finished) after the
    test, before the managers they use."""
    made: list[Agent] = []

    def make(memory: MemoryManager | None, **options: Any) -> Agent:
        agent = Agent(
            MODEL,
            memory=memory,
            model_options={"api_base": server.url, "api_key": "test-key"},
            **options,
        )
        made.append(agent)
        return agent

    yield make
    gate.open()
    for agent in made:
        agent.close()


def roles_and_contents(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], m.get("content") or "") for m in messages]


def section(system: str, tag: str) -> list[str]:
    found = re.search(rf"<{tag}>\n(.*?)\n</{tag}>", system, re.DOTALL)
    assert found, f"no <{tag}> in the system message"
    return found.group(1).splitlines()


# ---- 1. memory in the system message ----------------------------------------------------------------


def test_the_users_memory_is_in_the_system_message_of_the_chat_request(
    router: Router, server: LoopbackServer, make_mem: MakeManager, make_agent: MakeAgent
) -> None:
    mem = make_mem(update_memory_on_run=False)
    mem.profile.update(user_id="sarah", name="Sarah", role="data scientist", expertise=["pandas", "SQL"])
    mem.policies.update(user_id="sarah", response_style="concise", format="code first")
    # The relevant fact is the oldest: without ranking by the message it would come last.
    mem.knowledge.add("Cleans messy survey data every week", user_id="sarah", topics=["data"])
    mem.knowledge.add("Plays the cello in an amateur orchestra", user_id="sarah")
    mem.knowledge.add("Is learning Japanese for a trip", user_id="sarah")
    mem.profile.update(user_id="marco", name="Marco", role="backend engineer")
    mem.knowledge.add("Maintains the billing service in Go", user_id="marco")
    mem.policies.update(user_id="marco", tone="blunt")
    router.add("chat", "Start with df.dropna() and df.drop_duplicates().")
    agent = make_agent(mem, instructions="You are a data assistant.")

    result = agent.run("How do I clean data?", user_id="sarah")

    assert result.content == "Start with df.dropna() and df.drop_duplicates()."
    [request] = server.requests
    assert request["model"] == "test-model"
    assert "tools" not in request  # no user tools and no agentic memory: none offered
    assert roles_and_contents(request["messages"])[1:] == [("user", "How do I clean data?")]
    system = request["messages"][0]["content"]
    assert request["messages"][0]["role"] == "system"
    assert system.startswith(f"You are a data assistant.\n\n{MEMORY_GUIDE}\n<memory>\n")
    assert system.endswith("\n</memory>")
    assert section(system, "user_profile") == [
        "name: Sarah",
        "role: data scientist",
        "expertise: pandas, SQL",
    ]
    assert section(system, "user_policies") == ["response_style: concise", "format: code first"]
    facts = [line.removeprefix("- ") for line in section(system, "user_knowledge")[1:]]  # under their date
    assert facts[0] == "Cleans messy survey data every week"
    assert sorted(facts[1:]) == ["Is learning Japanese for a trip", "Plays the cello in an amateur orchestra"]
    assert system.index("<user_policies>") < system.index("<user_profile>") < system.index("<user_knowledge>")
    sent = json.dumps(server.requests)
    for marcos in ("Marco", "backend engineer", "billing service", "blunt"):
        assert marcos not in sent
    assert result.usage.model_calls == 1
    assert result.usage.prompt_tokens == server.completions[0]["usage"]["prompt_tokens"]


# ---- 2. a memory tool call, round trip ------------------------------------------------------------------


def test_a_memory_tool_call_round_trip(
    router: Router, server: LoopbackServer, make_mem: MakeManager, make_agent: MakeAgent
) -> None:
    mem = make_mem(update_memory_on_run=False, enable_agentic_memory=True)
    vision = mem.knowledge.add("Works on computer vision at Acme", user_id="sarah")
    mem.knowledge.add("Lives in Lisbon", user_id="sarah")
    router.add(
        "chat",
        ToolCall("memory_forget", {"description": "work on computer vision"}),
        "Done: I've forgotten that you work on computer vision.",
    )
    agent = make_agent(mem)

    result = agent.run("Please forget that I work on computer vision.", user_id="sarah")

    assert result.content == "Done: I've forgotten that you work on computer vision."
    assert [i.text for i in mem.get(user_id="sarah").knowledge] == ["Lives in Lisbon"]
    assert result.tool_calls == ["memory_forget"]
    assert [(c.op, c.layer, c.item_id) for c in result.memory_changes] == [("delete", "knowledge", vision)]
    assert [(e.op, e.source) for e in mem.history(user_id="sarah", item_id=vision)] == [
        ("add", "manual"),
        ("delete", "agentic"),
    ]

    first, second = server.requests
    offered = [t["function"]["name"] for t in first["tools"]]
    assert offered == ["memory_remember", "memory_update", "memory_forget", "memory_search"]
    assert first["messages"][0]["content"].endswith(TOOLS_GUIDE)
    assert second["messages"][: len(first["messages"])] == first["messages"]
    asked, answered = second["messages"][len(first["messages"]) :]
    [call] = asked["tool_calls"]
    assert (asked["role"], call["function"]["name"]) == ("assistant", "memory_forget")
    assert json.loads(call["function"]["arguments"]) == {"description": "work on computer vision"}
    assert answered["role"] == "tool"
    assert answered["tool_call_id"] == call["id"]
    assert json.loads(answered["content"]) == {"ok": True, "forgotten": vision}
    assert result.usage.model_calls == 2
    # The session keeps the exchange; the tool traffic was for this run only.
    assert roles_and_contents(mem.sessions.messages(result.session_id, user_id="sarah")) == [
        ("user", "Please forget that I work on computer vision."),
        ("assistant", "Done: I've forgotten that you work on computer vision."),
    ]


# ---- 3. background learning ---------------------------------------------------------------------------


def test_learning_happens_in_the_background_after_the_reply(
    router: Router, gate: Gate, make_mem: MakeManager, make_agent: MakeAgent
) -> None:
    mem = make_mem(update_memory_on_run=True)
    router.add("chat", "Nice to meet you, Priya! Concise it is.")
    learned = {
        "profile": {"name": "Priya", "role": "backend engineer", "location": "Lisbon"},
        "policies": {"set": {"response_style": "concise"}, "remove": []},
        "knowledge": [{"text": "Is migrating the billing service to Go", "topics": ["work"]}],
    }
    router.add("extract", gate.hold(learned))
    agent = make_agent(mem)

    result = agent.run(
        "I'm Priya, a backend engineer in Lisbon, migrating our billing service to Go. Keep it concise.",
        user_id="priya",
    )

    # The reply is back while the extraction request is still waiting at the server.
    assert result.content == "Nice to meet you, Priya! Concise it is."
    assert gate.arrived.wait(HOLD_LIMIT), "no extraction request reached the server"
    assert agent.wait_for_memory(timeout=0.2) is False
    assert mem.get(user_id="priya").items == []
    assert result.memory_changes == []
    assert result.usage.model_calls == 1  # the reply's cost only

    gate.open()
    assert agent.wait_for_memory(timeout=60)

    state = mem.get(user_id="priya")
    assert (state.profile.name, state.profile.role, state.profile.location) == (
        "Priya",
        "backend engineer",
        "Lisbon",
    )
    assert state.policies.response_style == "concise"
    assert [i.text for i in state.knowledge] == ["Is migrating the billing service to Go"]
    assert {i.source for i in state.items} == {"extracted"}
    assert {i.session_id for i in state.items} == {result.session_id}
    assert len(result.memory_changes) == 5  # appended when learning finished
    [extraction] = router.received["extract"]
    assert "[user] \"I'm Priya, a backend engineer in Lisbon" in extraction["messages"][0]["content"]
    assert '[assistant] "Nice to meet you, Priya!' in extraction["messages"][0]["content"]


# ---- 4. a tool write and a background extraction for the same user, at once --------------------------


def test_a_tool_write_during_a_background_extraction_is_not_lost(
    router: Router, server: LoopbackServer, gate: Gate, make_mem: MakeManager, make_agent: MakeAgent
) -> None:
    mem = make_mem(update_memory_on_run=True, enable_agentic_memory=True)
    mem.profile.update(user_id="dana", expertise=["pandas"])
    router.add(
        "chat",
        "Nice to meet you, Dana!",
        ToolCall("memory_remember", {"layer": "profile", "field": "expertise", "value": "Rust"}),
        "Noted: Rust.",
    )
    router.add(
        "extract",
        gate.hold(
            {
                "profile": {"role": "data scientist", "expertise": ["SQL"]},
                "knowledge": [{"text": "Cleans survey data for a public health team"}],
            }
        ),
        {},  # the second run's own extraction: nothing new
    )
    agent = make_agent(mem)

    first = agent.run(
        "I'm a data scientist; I clean survey data for a public health team in SQL.", user_id="dana"
    )
    # The extraction has read Dana's memory and is waiting for the model ...
    assert gate.arrived.wait(HOLD_LIMIT), "no extraction request reached the server"
    # ... while the next turn's tool call writes to the same profile field.
    second = agent.run("Please remember that I also know Rust.", user_id="dana", session_id=first.session_id)
    assert second.tool_calls == ["memory_remember"]
    assert second.content == "Noted: Rust."
    assert mem.get(user_id="dana").profile.expertise == ["pandas", "Rust"]
    assert server.peak_concurrency >= 2  # the extraction was in flight during the chat turn

    gate.open()
    assert agent.wait_for_memory(timeout=60)

    state = mem.get(user_id="dana")
    assert state.profile.expertise == ["pandas", "Rust", "SQL"]
    assert state.profile.role == "data scientist"
    assert [i.text for i in state.knowledge] == ["Cleans survey data for a public health team"]
    expertise = state.item("profile", "expertise")
    assert expertise is not None
    assert [(e.op, e.source, e.new) for e in mem.history(user_id="dana", item_id=expertise.id)] == [
        ("add", "manual", ["pandas"]),
        ("update", "agentic", ["pandas", "Rust"]),
        ("update", "extracted", ["pandas", "Rust", "SQL"]),
    ]
    assert len(router.received["extract"]) == 2


def test_a_tool_write_and_an_extraction_released_at_the_same_moment_both_land(
    router: Router, server: LoopbackServer, make_mem: MakeManager, make_agent: MakeAgent
) -> None:
    mem = make_mem(update_memory_on_run=True, enable_agentic_memory=True)
    # The server answers the extraction and the tool call only when both are waiting for it.
    together = threading.Barrier(2, timeout=HOLD_LIMIT)

    def at_once(reply: ServerReply) -> Callable[[dict[str, Any]], ServerReply]:
        def release(body: dict[str, Any]) -> ServerReply:
            together.wait()
            return reply

        return release

    router.add(
        "chat",
        "A bakery in Porto, lovely!",
        at_once(
            ToolCall("memory_remember", {"layer": "profile", "field": "expertise", "value": "sourdough"})
        ),
        ToolCall("memory_remember", {"layer": "knowledge", "value": "Is allergic to peanuts"}),
        "I'll remember both.",
    )
    router.add(
        "extract",
        at_once(
            {
                "profile": {"location": "Porto", "expertise": ["pastry"]},
                "knowledge": [{"text": "Runs a bakery in Porto"}],
            }
        ),
        {},
    )
    agent = make_agent(mem)

    first = agent.run("I run a bakery in Porto; pastry is my thing.", user_id="lea")
    second = agent.run(
        "Remember that I bake sourdough and that I'm allergic to peanuts.",
        user_id="lea",
        session_id=first.session_id,
    )
    assert agent.wait_for_memory(timeout=60)

    assert server.peak_concurrency >= 2  # the barrier only opens with both requests in flight
    assert second.tool_calls == ["memory_remember", "memory_remember"]
    results = [m["content"] for m in router.received["chat"][-1]["messages"] if m["role"] == "tool"]
    assert [json.loads(r)["ok"] for r in results] == [True, True]
    state = mem.get(user_id="lea")
    assert sorted(state.profile.expertise) == ["pastry", "sourdough"]
    assert state.profile.location == "Porto"
    assert sorted(i.text for i in state.knowledge) == ["Is allergic to peanuts", "Runs a bakery in Porto"]
    assert {i.source for i in state.knowledge} == {"agentic", "extracted"}


# ---- 5. session history -----------------------------------------------------------------------------


def test_the_second_turn_carries_the_first_turns_history(
    router: Router, server: LoopbackServer, make_mem: MakeManager, make_agent: MakeAgent
) -> None:
    mem = make_mem(update_memory_on_run=False)
    router.add("chat", "Kyoto in April is cherry blossom season.", "Book a ryokan in Higashiyama early.")
    router.add("chat", "Hello! How can I help?", "I don't know where you are going yet.")
    agent = make_agent(mem)

    first = agent.run("I'm planning a trip to Kyoto in April.", user_id="sarah")
    assert re.fullmatch(r"[0-9a-f]{32}", first.session_id)
    assert [s.session_id for s in mem.sessions.list(user_id="sarah")] == [first.session_id]
    agent.run("Where should I stay?", user_id="sarah", session_id=first.session_id)
    other = agent.run("Hello", user_id="sarah")
    marcos = agent.run("Where should I stay?", user_id="marco", session_id=first.session_id)

    second_turn = server.requests[1]["messages"]
    assert second_turn[0]["role"] == "system"
    assert roles_and_contents(second_turn[1:]) == [
        ("user", "I'm planning a trip to Kyoto in April."),
        ("assistant", "Kyoto in April is cherry blossom season."),
        ("user", "Where should I stay?"),
    ]
    assert other.session_id not in (first.session_id, marcos.session_id)
    assert roles_and_contents(server.requests[2]["messages"][1:]) == [("user", "Hello")]
    # The same session id under another user is another session.
    assert marcos.session_id == first.session_id
    assert roles_and_contents(server.requests[3]["messages"][1:]) == [("user", "Where should I stay?")]
    assert "Kyoto" not in json.dumps(server.requests[3])
    assert len(mem.sessions.messages(first.session_id, user_id="sarah")) == 4
    assert len(mem.sessions.messages(first.session_id, user_id="marco")) == 2


# ---- 6. session summaries -----------------------------------------------------------------------------


def test_the_session_summary_is_written_by_the_model_after_enough_turns(
    router: Router, make_mem: MakeManager, make_agent: MakeAgent
) -> None:
    mem = make_mem(update_memory_on_run=False, enable_session_summaries=True)
    router.add("chat", "Day 1: Fushimi Inari.", "Day 2: Arashiyama.", "Day 3: Nara, a day trip.")
    summary = "The user is planning a three-day trip to Kyoto; a day-by-day itinerary was drafted."
    router.add("summary", summary)
    agent = make_agent(mem)

    session = agent.run("Plan day 1 of my Kyoto trip.", user_id="sarah").session_id
    agent.run("And day 2?", user_id="sarah", session_id=session)
    assert agent.wait_for_memory(timeout=60)
    assert router.received["summary"] == []  # 4 messages: not due yet
    assert mem.sessions.summary(session, user_id="sarah") is None

    agent.run("And day 3?", user_id="sarah", session_id=session)
    assert agent.wait_for_memory(timeout=60)

    [request] = router.received["summary"]
    assert "response_format" not in request
    [prompt] = request["messages"]
    assert prompt["role"] == "user"
    for line in (
        '[user] "Plan day 1 of my Kyoto trip."',
        '[assistant] "Day 1: Fushimi Inari."',
        '[user] "And day 3?"',
        '[assistant] "Day 3: Nara, a day trip."',
    ):
        assert line in prompt["content"]
    assert mem.sessions.summary(session, user_id="sarah") == summary
    assert [s.summary for s in mem.sessions.list(user_id="sarah")] == [summary]
    assert router.received["extract"] == []  # learning is off: summaries only


def test_offline_summaries_need_no_model(
    router: Router, server: LoopbackServer, db_path: Path, make_agent: MakeAgent
) -> None:
    with MemoryManager(
        db=f"sqlite:///{db_path.with_name('offline.db')}", enable_session_summaries=True
    ) as mem:
        router.add("chat", "Sure.", "Done.", "Here you go.")
        agent = make_agent(mem)
        session = agent.run("Plan my trip to Kyoto. Three days.", user_id="sarah").session_id
        agent.run("Add a day in Nara.", user_id="sarah", session_id=session)
        agent.run("Make it cheaper.", user_id="sarah", session_id=session)
        agent.close()  # finish the background summary before the manager closes

        expected = offline_summary(mem.sessions.messages(session, user_id="sarah"))
        assert expected == (
            '6 messages. The user said: "Plan my trip to Kyoto."; "Add a day in Nara."; "Make it cheaper.".'
        )
        assert mem.sessions.summary(session, user_id="sarah") == expected
        assert mem.sessions.summarize(session, user_id="sarah") == expected
        assert [kind_of(body) for body in server.requests] == ["chat"] * 3


# ---- 7. arun ------------------------------------------------------------------------------------------


def test_arun_with_a_tool_call_over_http(
    router: Router, server: LoopbackServer, make_mem: MakeManager, make_agent: MakeAgent
) -> None:
    mem = make_mem(update_memory_on_run=False, enable_agentic_memory=True)
    router.add(
        "chat",
        ToolCall("memory_remember", {"layer": "policies", "field": "tone", "value": "friendly but direct"}),
        "Got it: friendly but direct.",
    )
    agent = make_agent(mem)

    async def main() -> Any:
        result = await agent.arun("Please be friendly but direct with me.", user_id="sarah")
        assert await agent.await_memory(timeout=30)
        return result

    result = asyncio.run(main())

    assert result.content == "Got it: friendly but direct."
    assert result.tool_calls == ["memory_remember"]
    assert mem.get(user_id="sarah").policies.tone == "friendly but direct"
    assert [(c.op, c.layer, c.key) for c in result.memory_changes] == [("add", "policies", "tone")]
    tool_message = server.requests[1]["messages"][-1]
    assert tool_message["role"] == "tool"
    assert json.loads(tool_message["content"])["ok"] is True
    assert len(mem.sessions.messages(result.session_id, user_id="sarah")) == 2


# ---- 8. the user's own tools --------------------------------------------------------------------------


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    if city.lower() == "atlantis":
        raise LookupError(f"no weather station in {city}")
    return f"Sunny and 21°C in {city}"


def test_a_python_function_is_offered_called_and_answered(
    router: Router, server: LoopbackServer, make_mem: MakeManager, make_agent: MakeAgent
) -> None:
    mem = make_mem(update_memory_on_run=False)
    router.add(
        "chat",
        ToolCall("get_weather", {"town": "Oslo"}),  # a wrong argument name
        ToolCall("get_weather", {"city": "Atlantis"}),  # the function raises
        ToolCall("get_weather", {"city": "Oslo"}),
        "It's sunny and 21°C in Oslo.",
    )
    agent = make_agent(mem, tools=[get_weather])

    result = agent.run("What's the weather in Oslo?", user_id="sarah")

    assert result.content == "It's sunny and 21°C in Oslo."
    assert result.tool_calls == ["get_weather"] * 3
    [offered] = server.requests[0]["tools"]
    assert offered["type"] == "function"
    function = offered["function"]
    assert (function["name"], function["description"]) == (
        "get_weather",
        "Get the current weather for a city.",
    )
    assert function["parameters"]["type"] == "object"
    assert function["parameters"]["required"] == ["city"]
    assert function["parameters"]["properties"]["city"]["type"] == "string"
    assert TOOLS_GUIDE not in server.requests[0]["messages"][0]["content"]  # no memory tools

    results = [m for m in server.requests[-1]["messages"] if m["role"] == "tool"]
    calls = [c for m in server.requests[-1]["messages"] if m.get("tool_calls") for c in m["tool_calls"]]
    assert [r["tool_call_id"] for r in results] == [c["id"] for c in calls]
    assert results[0]["content"].startswith("error: invalid arguments: ")
    assert results[1]["content"] == "error: LookupError: no weather station in Atlantis"
    assert results[2]["content"] == "Sunny and 21°C in Oslo"
    assert all("tools" in r for r in server.requests)  # within max_tool_rounds, tools stay offered


def test_a_transient_http_error_in_the_chat_is_retried(
    router: Router, server: LoopbackServer, make_mem: MakeManager, make_agent: MakeAgent
) -> None:
    mem = make_mem(update_memory_on_run=False)
    router.add("chat", Fault(503), Fault(429), "Hello!")
    agent = make_agent(mem)
    result = agent.run("Hello there", user_id="sarah")
    assert result.content == "Hello!"
    assert result.usage.model_calls == 3
    assert server.requests[0] == server.requests[1] == server.requests[2]
    assert len(mem.sessions.messages(result.session_id, user_id="sarah")) == 2
