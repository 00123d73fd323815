"""The Agent with a ScriptedModel: what each request carries, tools, retries and background learning.

The HTTP path (litellm to a loopback server) is covered in tests/integration/test_agent_http.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agentmem import (
    Agent,
    AgentMemError,
    ConfigurationError,
    InvalidInputError,
    MemoryManager,
    ModelError,
    RetryPolicy,
    ScopeError,
    TransientModelError,
)
from agentmem.agent import FunctionTool
from agentmem.conversations import MAX_MESSAGE_CHARS
from agentmem.guides import MEMORY_GUIDE, TOOLS_GUIDE
from agentmem.testing import ScriptedModel, ToolCall


@pytest.fixture
def backend() -> str:
    """SQLite only: agent behaviour; the store is tested on both backends elsewhere."""
    return "sqlite"


MakeAgent = Callable[..., Agent]


@pytest.fixture
def make_agent() -> Iterator[MakeAgent]:
    made: list[Agent] = []

    def make(model: Any, **options: Any) -> Agent:
        agent = Agent(model, **options)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.close()


@pytest.fixture
def sarah(mem: MemoryManager) -> MemoryManager:
    """Sarah's memory, and Marco's, which must never show up in Sarah's runs."""
    mem.profile.update(user_id="sarah", name="Sarah", role="data scientist")
    mem.policies.update(user_id="sarah", response_style="concise, with code")
    mem.knowledge.add("Cleans messy survey data with pandas", user_id="sarah", topics=["data"])
    mem.knowledge.add("Plays the cello in an amateur orchestra", user_id="sarah")
    mem.profile.update(user_id="marco", name="Marco", role="backend engineer")
    mem.knowledge.add("Maintains the billing service in Go", user_id="marco")
    return mem


def system_of(model: ScriptedModel, index: int = 0) -> str:
    first = model.requests[index].messages[0]
    assert first["role"] == "system"
    return str(first["content"])


def tool_names(model: ScriptedModel, index: int) -> list[str] | None:
    tools = model.requests[index].tools
    return None if tools is None else [t["function"]["name"] for t in tools]


def get_weather(city: str, unit: str = "celsius") -> str:
    """The current weather in a city.

    Longer notes that the model does not need.
    """
    return f"Sunny, 21 degrees {unit} in {city}"


# ---- the system message ---------------------------------------------------------------------------


def test_the_system_message_has_instructions_memory_and_the_guide(
    sarah: MemoryManager, make_agent: MakeAgent
) -> None:
    model = ScriptedModel(["Use df.dropna() and df.drop_duplicates()."])
    agent = make_agent(model, memory=sarah, instructions="You are a data assistant.")

    result = agent.run("How do I clean data?", user_id="sarah")

    assert result.content == "Use df.dropna() and df.drop_duplicates()."
    [request] = model.requests
    block = sarah.compile(user_id="sarah", query="How do I clean data?", token_budget=1500)
    assert request.messages == [
        {
            "role": "system",
            "content": f"You are a data assistant.\n\n{MEMORY_GUIDE}\n<memory>\n{block}\n</memory>",
        },
        {"role": "user", "content": "How do I clean data?"},
    ]
    system = system_of(model)
    assert "<user_profile>\nname: Sarah\nrole: data scientist\n</user_profile>" in system
    assert "<user_policies>\nresponse_style: concise, with code\n</user_policies>" in system
    # Knowledge is ranked by the message: the data fact first, though it is the older one.
    assert system.index("Cleans messy survey data") < system.index("Plays the cello")
    assert "Marco" not in system
    assert "billing" not in system
    assert request.tools is None  # no user tools, no agentic memory
    assert result.usage.model_calls == 1
    assert result.usage.prompt_tokens > 0


def test_no_memory_block_for_a_user_without_memory(sarah: MemoryManager, make_agent: MakeAgent) -> None:
    model = ScriptedModel(["Hello!"])
    agent = make_agent(model, memory=sarah, instructions="  Be brief.  ")
    agent.run("Hello there", user_id="newcomer")
    assert system_of(model) == "Be brief."


def test_add_memory_to_context_false_leaves_the_memory_out(db_url: str, make_agent: MakeAgent) -> None:
    with MemoryManager(db=db_url, add_memory_to_context=False) as mem:
        mem.profile.update(user_id="sarah", name="Sarah")
        model = ScriptedModel(["Hi."])
        agent = make_agent(model, memory=mem, instructions="Be brief.")
        result = agent.run("Hi, do you know me?", user_id="sarah")
        assert system_of(model) == "Be brief."
        assert len(mem.sessions.messages(result.session_id, user_id="sarah")) == 2  # the turn is still kept


def test_memory_token_budget_bounds_the_block(sarah: MemoryManager, make_agent: MakeAgent) -> None:
    model = ScriptedModel(["ok"])
    make_agent(model, memory=sarah, memory_token_budget=25).run("How do I clean data?", user_id="sarah")
    system = system_of(model)
    assert sarah.compile(user_id="sarah", query="How do I clean data?", token_budget=25) in system
    assert "Plays the cello" not in system  # the lowest-ranked item dropped first


def test_agentic_memory_offers_the_memory_tools(db_url: str, make_agent: MakeAgent) -> None:
    with MemoryManager(db=db_url, enable_agentic_memory=True, update_memory_on_run=False) as mem:
        model = ScriptedModel(["Hi."])
        make_agent(model, memory=mem, tools=[get_weather]).run("Hi", user_id="u")
        assert system_of(model).endswith(f"\n\n{TOOLS_GUIDE}")
        assert tool_names(model, 0) == [
            "get_weather",
            "memory_remember",
            "memory_update",
            "memory_forget",
            "memory_search",
        ]
        assert model.requests[0].tools[1:] == mem.tools(user_id="u").definitions  # type: ignore[index]


def test_an_agent_without_memory_still_answers(make_agent: MakeAgent) -> None:
    model = ScriptedModel(["Paris.", "About 2.1 million."])
    agent = make_agent(model)
    first = agent.run("Capital of France?", user_id="u")
    second = agent.run("Its population?", user_id="u", session_id=first.session_id)
    assert (first.content, second.content) == ("Paris.", "About 2.1 million.")
    assert system_of(model) == "You are a helpful assistant."
    assert len(model.requests[1].messages) == 2  # nothing stored, so no history
    assert agent.wait_for_memory(timeout=1)


# ---- agent_id -------------------------------------------------------------------------------------


def test_agent_private_memory_is_seen_only_by_that_agents_runs(
    sarah: MemoryManager, make_agent: MakeAgent
) -> None:
    sarah.knowledge.add("Prefers table-driven tests", user_id="sarah", agent_id="reviewer")
    seen = {}
    for agent_id in ("reviewer", "planner", None):
        model = ScriptedModel(["ok"])
        make_agent(model, memory=sarah, agent_id=agent_id).run("Review my tests please", user_id="sarah")
        seen[agent_id] = system_of(model)
    assert "Prefers table-driven tests" in seen["reviewer"]
    assert "Prefers table-driven tests" not in seen["planner"]
    assert "Prefers table-driven tests" not in seen[None]
    assert all("name: Sarah" in system for system in seen.values())  # shared memory: every agent


def test_an_agents_memory_tools_write_its_private_memory(db_url: str, make_agent: MakeAgent) -> None:
    with MemoryManager(db=db_url, enable_agentic_memory=True, update_memory_on_run=False) as mem:
        model = ScriptedModel(
            [ToolCall("memory_remember", {"layer": "knowledge", "value": "Likes small PRs"}), "Noted."]
        )
        agent = make_agent(model, memory=mem, agent_id="reviewer")
        result = agent.run("Remember that I like small PRs.", user_id="sarah")

        assert [i.text for i in mem.get(user_id="sarah", agent_id="reviewer").knowledge] == [
            "Likes small PRs"
        ]
        assert mem.get(user_id="sarah").knowledge == []
        assert [(c.op, c.layer) for c in result.memory_changes] == [("add", "knowledge")]
        [session] = mem.sessions.list(user_id="sarah", agent_id="reviewer")
        assert session.session_id == result.session_id


def test_an_agent_cannot_continue_another_agents_session(mem: MemoryManager, make_agent: MakeAgent) -> None:
    planner = make_agent(ScriptedModel(["Your launch plan is noted."]), memory=mem, agent_id="planner")
    session = planner.run("Our launch is secretly moved to May.", user_id="sarah").session_id

    for agent_id in ("reviewer", None):
        model = ScriptedModel(["never sent"])
        with pytest.raises(ScopeError, match="agent"):
            make_agent(model, memory=mem, agent_id=agent_id).run(
                "When is the launch?", user_id="sarah", session_id=session
            )
        assert model.requests == []
    assert len(mem.sessions.messages(session, user_id="sarah")) == 2

    model = ScriptedModel(["May."])
    make_agent(model, memory=mem, agent_id="planner").run(
        "When is the launch?", user_id="sarah", session_id=session
    )
    assert [m["content"] for m in model.requests[0].messages[1:]] == [
        "Our launch is secretly moved to May.",
        "Your launch plan is noted.",
        "When is the launch?",
    ]


# ---- configuration and input errors ------------------------------------------------------------------


def memory_lookup(query: str) -> str:
    return query


def test_the_memory_prefix_is_reserved_for_memory_tools(mem: MemoryManager) -> None:
    with pytest.raises(ConfigurationError, match="reserved"):
        Agent(ScriptedModel(), memory=mem, tools=[memory_lookup])


def test_tools_must_be_named_functions_with_distinct_names() -> None:
    def lookup(city: str) -> str:
        return city

    twin = lambda city: city  # noqa: E731
    with pytest.raises(ConfigurationError, match="named function"):
        Agent(ScriptedModel(), tools=[twin])
    with pytest.raises(ConfigurationError, match="named function"):
        Agent(ScriptedModel(), tools=["get_weather"])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="list of functions"):
        Agent(ScriptedModel(), tools=get_weather)  # type: ignore[arg-type]
    lookup.__name__ = "get_weather"
    with pytest.raises(ConfigurationError, match="share a name"):
        Agent(ScriptedModel(), tools=[get_weather, lookup])


def test_model_and_options_are_checked(mem: MemoryManager) -> None:
    with pytest.raises(ConfigurationError, match="model_options"):
        Agent(ScriptedModel(), model_options={"temperature": 0})
    with pytest.raises(ConfigurationError):
        Agent("  ")
    with pytest.raises(ConfigurationError):
        Agent(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="MemoryManager"):
        Agent(ScriptedModel(), memory="sqlite://")  # type: ignore[arg-type]
    # Refused when the agent is made, not as a bare AttributeError wrapped at its first run.
    with pytest.raises(ConfigurationError, match="instructions"):
        Agent(ScriptedModel(), instructions=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="history_messages"):
        Agent(ScriptedModel(), memory=mem, history_messages=-1)
    with pytest.raises(ConfigurationError, match="max_tool_rounds"):
        Agent(ScriptedModel(), memory=mem, max_tool_rounds=-1)
    # A bad budget is a set-up mistake, reported when the agent is made, not at its first run.
    with pytest.raises(ConfigurationError, match="memory_token_budget"):
        Agent(ScriptedModel(), memory=mem, memory_token_budget=-1)
    with pytest.raises(ConfigurationError, match="history_messages"):
        Agent(ScriptedModel(), memory=mem, history_messages=2.5)  # type: ignore[arg-type]
    with pytest.raises(ScopeError):
        Agent(ScriptedModel(), agent_id="")
    agent = Agent("openai/gpt-4o-mini", model_options={"temperature": 0})
    assert "openai/gpt-4o-mini" in repr(agent)
    agent.close()


@pytest.mark.parametrize("message", ["", "   \n", None, 42, ["hi"]])
def test_an_invalid_message_raises_before_any_model_call(
    mem: MemoryManager, make_agent: MakeAgent, message: Any
) -> None:
    model = ScriptedModel(["never sent"])
    agent = make_agent(model, memory=mem)
    with pytest.raises(InvalidInputError):
        agent.run(message, user_id="u")
    assert model.requests == []
    assert mem.sessions.list(user_id="u") == []


def test_an_oversized_message_raises_before_any_model_call(mem: MemoryManager, make_agent: MakeAgent) -> None:
    model = ScriptedModel(["never sent"])
    agent = make_agent(model, memory=mem)
    with pytest.raises(InvalidInputError, match=f"message is {MAX_MESSAGE_CHARS + 1} characters"):
        agent.run("x" * (MAX_MESSAGE_CHARS + 1), user_id="u")
    assert model.requests == []
    assert mem.sessions.list(user_id="u") == []


def test_a_long_message_within_the_limit_is_answered_with_memory(
    sarah: MemoryManager, make_agent: MakeAgent
) -> None:
    model = ScriptedModel(["Here is the cleaned data."])
    message = "id,answer\n" * 1000 + "Please clean this survey data with pandas."
    result = make_agent(model, memory=sarah).run(message, user_id="sarah")  # longer than a search query

    assert result.content == "Here is the cleaned data."
    assert "Cleans messy survey data with pandas" in system_of(model)
    assert mem_contents(sarah, result.session_id) == [message, "Here is the cleaned data."]


def mem_contents(mem: MemoryManager, session_id: str) -> list[str]:
    return [m["content"] for m in mem.sessions.messages(session_id, user_id="sarah")]


def test_an_oversized_reply_is_returned_whole_and_stored_truncated(
    mem: MemoryManager, make_agent: MakeAgent
) -> None:
    reply = "y" * (MAX_MESSAGE_CHARS + 5000)
    agent = make_agent(ScriptedModel([reply]), memory=mem)

    result = agent.run("Write a very long story.", user_id="u")

    assert result.content == reply
    stored = mem.sessions.messages(result.session_id, user_id="u")[1]["content"]
    assert len(stored) <= MAX_MESSAGE_CHARS
    text, marker = stored.split("\n[truncated: ")
    assert text == reply[: len(text)]
    assert len(text) > MAX_MESSAGE_CHARS - 100
    assert marker == f"the message was {len(reply)} characters; the first {len(text)} are kept]"


def test_invalid_ids_raise_scope_error(mem: MemoryManager, make_agent: MakeAgent) -> None:
    model = ScriptedModel(["never sent"])
    agent = make_agent(model, memory=mem)
    with pytest.raises(ScopeError):
        agent.run("hello there", user_id="")
    with pytest.raises(ScopeError):
        agent.run("hello there", user_id="u", session_id=" s1")
    assert model.requests == []


# ---- retries ----------------------------------------------------------------------------------------


def test_transient_errors_in_the_chat_are_retried(mem: MemoryManager, make_agent: MakeAgent) -> None:
    model = ScriptedModel([TransientModelError("429 rate limited"), TransientModelError("503"), "Hello!"])
    agent = make_agent(model, memory=mem)
    result = agent.run("Hello there", user_id="u")
    assert result.content == "Hello!"
    assert result.usage.model_calls == 3
    assert model.requests[0] == model.requests[1] == model.requests[2]
    assert len(mem.sessions.messages(result.session_id, user_id="u")) == 2


def test_a_chat_that_keeps_failing_raises_and_stores_nothing(
    mem: MemoryManager, make_agent: MakeAgent
) -> None:
    model = ScriptedModel([TransientModelError("503")] * 3)
    agent = make_agent(model, memory=mem, retry=RetryPolicy(attempts=3, backoff=0))
    with pytest.raises(TransientModelError):
        agent.run("Hello there", user_id="u", session_id="s1")
    assert len(model.requests) == 3
    assert mem.sessions.messages("s1", user_id="u") == []

    broken = ScriptedModel([ValueError("bad request"), "never"])
    with pytest.raises(ModelError, match="bad request") as raised:
        make_agent(broken, memory=mem).run("Hello there", user_id="u")
    assert isinstance(raised.value.__cause__, ValueError)
    assert len(broken.requests) == 1  # only transient errors are retried


# ---- tools ------------------------------------------------------------------------------------------


def test_a_function_tool_gets_a_schema_from_its_signature() -> None:
    tool = FunctionTool(get_weather)
    function = tool.definition["function"]
    assert tool.definition["type"] == "function"
    assert function["name"] == "get_weather"
    assert function["description"] == "The current weather in a city."
    parameters = function["parameters"]
    assert parameters["type"] == "object"
    assert parameters["required"] == ["city"]
    assert parameters["properties"]["city"]["type"] == "string"
    assert parameters["properties"]["unit"]["default"] == "celsius"
    assert parameters["additionalProperties"] is False
    assert tool.call('{"city": "Oslo"}') == "Sunny, 21 degrees celsius in Oslo"
    assert tool.call('{"city": "Oslo", "unit": "kelvin"}') == "Sunny, 21 degrees kelvin in Oslo"


def test_tool_errors_go_back_to_the_model(mem: MemoryManager, make_agent: MakeAgent) -> None:
    def divide(a: int, b: int) -> float:
        """Divide a by b."""
        return a / b

    model = ScriptedModel(
        [
            ToolCall("divide", {"a": 1, "b": 0}),
            ToolCall("divide", {"a": "one"}),
            ToolCall("no_such_tool", {}),
            ToolCall("divide", {"a": 6, "b": 3}),
            "6 / 3 = 2",
        ]
    )
    agent = make_agent(model, memory=mem, tools=[divide])
    result = agent.run("What is 6 / 3?", user_id="u")

    assert result.content == "6 / 3 = 2"
    assert result.tool_calls == ["divide", "divide", "no_such_tool", "divide"]
    outputs = [m["content"] for m in model.requests[-1].messages if m["role"] == "tool"]
    assert outputs[0] == "error: ZeroDivisionError: division by zero"
    assert outputs[1].startswith("error: invalid arguments: ")
    assert outputs[2] == "error: there is no tool named 'no_such_tool'"
    assert outputs[3] == "2.0"


def test_tool_calls_and_results_are_sent_back_in_order(mem: MemoryManager, make_agent: MakeAgent) -> None:
    model = ScriptedModel([ToolCall("get_weather", {"city": "Oslo"}), "It is sunny in Oslo."])
    agent = make_agent(model, memory=mem, tools=[get_weather])
    result = agent.run("Weather in Oslo?", user_id="u")

    second = model.requests[1].messages
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool"]
    [call] = second[2]["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": json.dumps({"city": "Oslo"})}
    assert second[3] == {
        "role": "tool",
        "tool_call_id": call["id"],
        "content": "Sunny, 21 degrees celsius in Oslo",
    }
    # The session keeps the exchange, not the tool traffic.
    assert mem.sessions.messages(result.session_id, user_id="u") == [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": "It is sunny in Oslo."},
    ]


def test_max_tool_rounds_sends_the_last_round_without_tools(
    mem: MemoryManager, make_agent: MakeAgent
) -> None:
    calls: list[str] = []

    def clock() -> str:
        """The time now."""
        calls.append("clock")
        return "12:00"

    model = ScriptedModel([ToolCall("clock"), ToolCall("clock"), "It is noon."])
    result = make_agent(model, memory=mem, tools=[clock], max_tool_rounds=2).run("Time?", user_id="u")

    assert result.content == "It is noon."
    assert [tool_names(model, i) for i in range(3)] == [["clock"], ["clock"], None]
    assert calls == ["clock", "clock"]

    no_rounds = ScriptedModel(["No tools for me."])
    make_agent(no_rounds, memory=mem, tools=[clock], max_tool_rounds=0).run("Time?", user_id="u")
    assert no_rounds.requests[0].tools is None


def test_a_tool_call_in_the_forced_last_round_is_not_run(mem: MemoryManager, make_agent: MakeAgent) -> None:
    calls: list[str] = []

    def clock() -> str:
        """The time now."""
        calls.append("clock")
        return "12:00"

    # A model that asks for a tool although none was offered: the run still ends, without the call.
    model = ScriptedModel([ToolCall("clock"), ToolCall("clock")])
    result = make_agent(model, memory=mem, tools=[clock], max_tool_rounds=1).run("Time?", user_id="u")
    assert calls == ["clock"]
    assert result.tool_calls == ["clock"]
    assert result.content == ""
    assert len(mem.sessions.messages(result.session_id, user_id="u")) == 2


# ---- history --------------------------------------------------------------------------------------


def test_history_of_the_session_is_sent_and_bounded(mem: MemoryManager, make_agent: MakeAgent) -> None:
    model = ScriptedModel(["A1", "A2", "A3", "B1"])
    agent = make_agent(model, memory=mem, history_messages=3)
    first = agent.run("Q1", user_id="u")
    assert len(first.session_id) == 32
    agent.run("Q2", user_id="u", session_id=first.session_id)
    agent.run("Q3", user_id="u", session_id=first.session_id)
    other = agent.run("Other question", user_id="u")

    said = [[(m["role"], m["content"]) for m in r.messages[1:]] for r in model.requests]
    assert said[1] == [("user", "Q1"), ("assistant", "A1"), ("user", "Q2")]
    assert said[2] == [("assistant", "A1"), ("user", "Q2"), ("assistant", "A2"), ("user", "Q3")]  # last 3
    assert said[3] == [("user", "Other question")]
    assert other.session_id != first.session_id
    assert len(mem.sessions.messages(first.session_id, user_id="u")) == 6


# ---- background learning -----------------------------------------------------------------------------


def test_learning_runs_in_the_background_after_the_reply(db_url: str, make_agent: MakeAgent) -> None:
    learner = ScriptedModel(
        [
            {"profile": {"name": "Sarah", "role": "data scientist"}},
            {"knowledge": [{"text": "Is moving the team to Polars"}]},
        ]
    )
    with MemoryManager(db=db_url, model=learner, update_memory_on_run=True) as mem:
        chat = ScriptedModel(["Nice to meet you, Sarah!", "Polars is a good choice."])
        agent = make_agent(chat, memory=mem)
        first = agent.run("I'm Sarah, a data scientist.", user_id="sarah")
        assert agent.wait_for_memory(timeout=30)
        assert sorted(c.key for c in first.memory_changes) == ["name", "role"]
        second = agent.run("We are moving the team to Polars.", user_id="sarah", session_id=first.session_id)
        assert agent.wait_for_memory(timeout=30)

        state = mem.get(user_id="sarah")
        assert (state.profile.name, state.profile.role) == ("Sarah", "data scientist")
        assert [i.text for i in state.knowledge] == ["Is moving the team to Polars"]
        assert [c.layer for c in second.memory_changes] == ["knowledge"]
        assert {i.source for i in state.items} == {"extracted"}
        # The second extraction reads the new turn, with the reply it answers as context only.
        prompt = str(learner.requests[1].messages[0]["content"])
        assert '[assistant] "Nice to meet you, Sarah!"' in prompt
        assert '[user] "We are moving the team to Polars."' in prompt
        assert "I'm Sarah, a data scientist." not in prompt


def test_a_learning_failure_never_fails_the_run_and_stays_pending(
    db_url: str, make_agent: MakeAgent, caplog: pytest.LogCaptureFixture
) -> None:
    learner = ScriptedModel([RuntimeError("the memory model is down")])
    with MemoryManager(db=db_url, model=learner, update_memory_on_run=True) as mem:
        agent = make_agent(ScriptedModel(["Nice to meet you!"]), memory=mem)
        with caplog.at_level(logging.WARNING, logger="agentmem.agent"):
            result = agent.run("I'm Sarah, a data scientist in Lisbon.", user_id="sarah")
            assert agent.wait_for_memory(timeout=30)

        assert result.content == "Nice to meet you!"
        assert result.memory_changes == []
        assert mem.get(user_id="sarah").items == []
        assert "memory not learned yet" in caplog.text
        assert len(mem.sessions.messages(result.session_id, user_id="sarah")) == 2

        learner.add({"profile": {"name": "Sarah", "location": "Lisbon"}})
        report = mem.retry_pending(user_id="sarah")
        assert (report.retried, report.still_pending) == (1, 0)
        assert mem.get(user_id="sarah").profile.location == "Lisbon"


def test_an_unexpected_background_error_is_logged_not_raised(
    db_url: str, make_agent: MakeAgent, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with MemoryManager(db=db_url, update_memory_on_run=True) as mem:

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("bug in learn")

        monkeypatch.setattr(mem, "learn", broken)
        agent = make_agent(ScriptedModel(["Hi!"]), memory=mem)
        with caplog.at_level(logging.ERROR, logger="agentmem.agent"):
            assert agent.run("I'm Sarah.", user_id="sarah").content == "Hi!"
            assert agent.wait_for_memory(timeout=30)
        assert "background memory update failed" in caplog.text
        assert "bug in learn" in caplog.text


def test_a_learning_failure_does_not_skip_the_session_summary(db_url: str, make_agent: MakeAgent) -> None:
    def memory_model(messages: list[dict[str, Any]]) -> Any:
        if messages[0]["role"] == "system":  # an extraction request
            return RuntimeError("extraction is down")
        return "The user introduced themselves three times."

    learner = ScriptedModel(memory_model)
    with MemoryManager(
        db=db_url, model=learner, update_memory_on_run=True, enable_session_summaries=True
    ) as mem:
        agent = make_agent(ScriptedModel(["Hi!", "Hello!", "Hey!"]), memory=mem)
        session = agent.run("I'm Sarah, a data scientist.", user_id="sarah").session_id
        agent.run("I live in Lisbon, by the way.", user_id="sarah", session_id=session)
        agent.run("And I play the cello.", user_id="sarah", session_id=session)
        assert agent.wait_for_memory(timeout=30)

        assert mem.sessions.summary(session, user_id="sarah") == "The user introduced themselves three times."
        assert mem.get(user_id="sarah").items == []


def test_wait_for_memory_times_out_while_learning_is_pending(db_url: str, make_agent: MakeAgent) -> None:
    release = threading.Event()

    def slow(messages: list[dict[str, Any]]) -> Any:
        assert release.wait(30)
        return {"profile": {"name": "Sarah"}}

    with MemoryManager(db=db_url, model=ScriptedModel(slow), update_memory_on_run=True) as mem:
        agent = make_agent(ScriptedModel(["Hi Sarah!"]), memory=mem)
        result = agent.run("I'm Sarah.", user_id="sarah")
        assert result.content == "Hi Sarah!"
        assert agent.wait_for_memory(timeout=0.05) is False
        release.set()
        assert agent.wait_for_memory(timeout=30) is True
        assert mem.get(user_id="sarah").profile.name == "Sarah"


# ---- print_response and arun ------------------------------------------------------------------------


def test_print_response_prints_the_reply_and_memory_changes(
    db_url: str, make_agent: MakeAgent, capsys: pytest.CaptureFixture[str]
) -> None:
    with MemoryManager(db=db_url, enable_agentic_memory=True, update_memory_on_run=False) as mem:
        model = ScriptedModel(
            [
                "Hello, Sarah!",
                ToolCall("memory_remember", {"layer": "profile", "field": "name", "value": "Sarah"}),
                "I'll remember that.",
            ]
        )
        agent = make_agent(model, memory=mem)
        result = agent.print_response("Hi", user_id="sarah")
        assert capsys.readouterr().out == "Hello, Sarah!\n"
        assert result.content == "Hello, Sarah!"

        out = io.StringIO()
        agent.print_response("Call me Sarah.", user_id="sarah", file=out)
        assert out.getvalue() == "I'll remember that.\n  [memory: add profile name]\n"


def test_arun_answers_with_async_and_sync_tools(mem: MemoryManager, make_agent: MakeAgent) -> None:
    async def convert(amount: float, currency: str) -> dict[str, Any]:
        """Convert euros to a currency."""
        await asyncio.sleep(0)
        return {"amount": amount * 2, "currency": currency}

    model = ScriptedModel(
        [
            ToolCall("convert", {"amount": 10, "currency": "USD"}),
            ToolCall("get_weather", {"city": "Oslo"}),
            "10 EUR is 20 USD, and Oslo is sunny.",
        ]
    )
    agent = make_agent(model, memory=mem, tools=[convert, get_weather])

    async def main() -> Any:
        result = await agent.arun("Convert 10 EUR and check Oslo", user_id="u")
        assert await agent.await_memory(timeout=5)
        return result

    result = asyncio.run(main())
    assert result.content == "10 EUR is 20 USD, and Oslo is sunny."
    assert result.tool_calls == ["convert", "get_weather"]
    outputs = [m["content"] for m in model.requests[-1].messages if m["role"] == "tool"]
    assert outputs == ['{"amount": 20.0, "currency": "USD"}', "Sunny, 21 degrees celsius in Oslo"]
    assert len(mem.sessions.messages(result.session_id, user_id="u")) == 2


def test_run_result_carries_the_system_message_the_model_saw() -> None:
    memory = MemoryManager(db="sqlite://")
    memory.profile.update(user_id="ana", name="Ana")
    model = ScriptedModel(["Hi Ana."])
    run = Agent(model, memory=memory, instructions="Be kind.").run("Hello there", user_id="ana")
    assert run.system_message == model.requests[0].messages[0]["content"]
    assert run.system_message.startswith("Be kind.")
    assert "name: Ana" in run.system_message
    memory.close()


def test_a_closed_agent_refuses_to_run() -> None:
    agent = Agent(ScriptedModel(["unused"]))
    agent.close()
    with pytest.raises(AgentMemError, match="closed"):
        agent.run("Hello", user_id="ana")


def test_closing_the_agent_during_a_run_keeps_the_reply(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with MemoryManager(db=db_url, update_memory_on_run=True) as mem:
        agents: list[Agent] = []

        def reply(messages: list[dict[str, Any]]) -> str:
            agents[0].close()  # another thread shuts the agent down while the model answers
            return "Hi Sarah!"

        agents.append(Agent(ScriptedModel(reply), memory=mem))
        with caplog.at_level(logging.WARNING, logger="agentmem.agent"):
            result = agents[0].run("I'm Sarah, a data scientist.", user_id="sarah")

        assert result.content == "Hi Sarah!"
        assert "closed" in caplog.text
        assert [m["content"] for m in mem.sessions.messages(result.session_id, user_id="sarah")] == [
            "I'm Sarah, a data scientist.",
            "Hi Sarah!",
        ]
        assert result.memory_changes == []
        assert mem.learn(
            [{"role": "user", "content": "I'm Sarah, a data scientist."}], user_id="sarah"
        ).changes["profile"]  # learning can be re-run


def test_arun_runs_blocking_tools_off_the_event_loop() -> None:
    loop_threads: list[bool] = []

    def blocking_lookup(term: str) -> str:
        """Look a term up."""
        try:
            asyncio.get_running_loop()
            loop_threads.append(True)
        except RuntimeError:
            loop_threads.append(False)
        return f"found {term}"

    model = ScriptedModel([ToolCall("blocking_lookup", {"term": "x"}), "done"])
    agent = Agent(model, tools=[blocking_lookup])
    result = asyncio.run(agent.arun("look up x", user_id="ana"))
    assert result.content == "done"
    assert loop_threads == [False]  # it ran in a worker thread, not on the loop
