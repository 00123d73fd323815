"""Agent-level memory through the memory tools and the Agent: written only when configured to."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agentmem import Agent, ConfigurationError, MemoryManager, ScopeError
from agentmem.testing import ScriptedModel, ToolCall

MakeAgent = Callable[..., Agent]
LESSON = "Viewers search by game title first"


@pytest.fixture
def make_agent() -> Iterator[MakeAgent]:
    made: list[Agent] = []

    def make(model: Any, **options: Any) -> Agent:
        made.append(Agent(model, **options))
        return made[-1]

    yield make
    for agent in made:
        agent.close()


def call(tools: Any, name: str, **arguments: Any) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(tools.dispatch(name, arguments))
    return result


def test_tools_write_agent_memory_only_when_configured(mem: MemoryManager) -> None:
    plain = mem.tools(user_id="sarah", agent_id="tagger")
    refused = call(plain, "memory_remember", layer="knowledge", value=LESSON, scope="agent")
    assert refused["ok"] is False
    assert "scope" in refused["error"]
    assert "scope" not in json.dumps(plain.definitions)
    assert mem.get(agent_id="tagger").items == []

    tools = mem.tools(user_id="sarah", agent_id="tagger", session_id="s1", agent_memory=True)
    assert call(tools, "memory_remember", layer="knowledge", value=LESSON, scope="agent")["ok"]
    assert call(tools, "memory_remember", layer="knowledge", value="Streams Zelda speedruns")["ok"]
    [lesson] = mem.get(agent_id="tagger").knowledge
    assert (lesson.text, lesson.session_id, lesson.source) == (LESSON, None, "agentic")
    assert [i.text for i in mem.get(user_id="sarah", agent_id="tagger").knowledge] == [
        "Streams Zelda speedruns"
    ]

    secret = "The admin password for the dashboard is hunter2-Xq9!"
    assert (
        "secrets are never stored"
        in call(tools, "memory_remember", layer="knowledge", value=secret, scope="agent")["error"]
    )
    assert len(mem.get(agent_id="tagger").items) == 1  # refused, memory untouched

    found = call(tools, "memory_search", query="game title zelda")["results"]
    assert {(r["text"], r["scope"]) for r in found} == {
        (LESSON, "agent"),
        ("Streams Zelda speedruns", "user"),
    }
    # Correct and forget where the item is: the agent's memory here.
    assert call(tools, "memory_update", item_id=lesson.id, value="Viewers search by game title, then year")[
        "ok"
    ]
    assert [i.text for i in mem.get(agent_id="tagger").knowledge] == [
        "Viewers search by game title, then year"
    ]
    [current] = mem.get(agent_id="tagger").knowledge
    assert call(tools, "memory_forget", item_id=current.id)["ok"]
    assert mem.get(agent_id="tagger").knowledge == []
    assert [i.text for i in mem.get(user_id="sarah", agent_id="tagger").knowledge] == [
        "Streams Zelda speedruns"
    ]


def test_tools_never_reach_another_agents_memory(mem: MemoryManager) -> None:
    other = mem.knowledge.add("Titles under sixty characters", agent_id="writer")
    tools = mem.tools(user_id="sarah", agent_id="tagger", agent_memory=True)
    assert call(tools, "memory_search", query="titles sixty characters")["results"] == []
    for name, arguments in [
        ("memory_forget", {"item_id": other}),
        ("memory_update", {"item_id": other, "value": "x"}),
    ]:
        result = call(tools, name, **arguments)
        assert result["ok"] is False
        assert "no live memory item" in result["error"]
    assert [i.text for i in mem.get(agent_id="writer").knowledge] == ["Titles under sixty characters"]


def test_tools_of_an_agent_alone_work_on_its_memory(mem: MemoryManager) -> None:
    tools = mem.tools(agent_id="tagger")
    assert call(tools, "memory_remember", layer="policies", field="rules", value="Tags are lowercase")["ok"]
    assert mem.get(agent_id="tagger").policies.rules == ["Tags are lowercase"]
    assert mem.get(user_id="sarah", agent_id="tagger").policies.rules == []
    with pytest.raises(ConfigurationError, match="agent_memory=True needs both"):
        mem.tools(agent_id="tagger", agent_memory=True)
    with pytest.raises(ConfigurationError, match="agent_memory=True needs both"):
        mem.tools(user_id="sarah", agent_memory=True)
    with pytest.raises(ScopeError):
        mem.tools()


def test_an_agent_sees_its_own_memory_and_no_other_agents(mem: MemoryManager, make_agent: MakeAgent) -> None:
    mem.knowledge.add(LESSON, agent_id="tagger")
    mem.knowledge.add("Titles under sixty characters", agent_id="writer")
    mem.profile.update(user_id="sarah", name="Sarah")
    seen = {}
    for agent_id in ("tagger", "writer", None):
        model = ScriptedModel(["ok"])
        make_agent(model, memory=mem, agent_id=agent_id).run("Tag my Zelda video", user_id="sarah")
        seen[agent_id] = str(model.requests[0].messages[0]["content"])
    assert '<agent_memory agent="tagger">' in seen["tagger"]
    assert LESSON in seen["tagger"]
    assert "sixty characters" not in seen["tagger"]
    assert "across all your users" in seen["tagger"]  # the guide says what the element is
    assert LESSON not in seen["writer"]
    assert "sixty characters" in seen["writer"]
    assert "agent_memory" not in seen[None]
    assert all("name: Sarah" in system for system in seen.values())


def test_an_agent_writes_its_memory_only_when_configured(db_url: str, make_agent: MakeAgent) -> None:
    with MemoryManager(db=db_url, enable_agentic_memory=True, update_memory_on_run=False) as mem:
        remember = ToolCall("memory_remember", {"layer": "knowledge", "value": LESSON, "scope": "agent"})
        plain = make_agent(ScriptedModel([remember, "Noted."]), memory=mem, agent_id="tagger")
        plain.run("Note for all: viewers search by title.", user_id="sarah")
        assert mem.get(agent_id="tagger").items == []

        model = ScriptedModel([remember, "Noted."])
        writer = make_agent(model, memory=mem, agent_id="tagger", write_agent_memory=True)
        result = writer.run("Note for all: viewers search by title.", user_id="sarah")
        assert [i.text for i in mem.get(agent_id="tagger").knowledge] == [LESSON]
        assert mem.get(user_id="sarah", agent_id="tagger").knowledge == []
        assert [(c.op, c.layer) for c in result.memory_changes] == [("add", "knowledge")]
        assert 'scope "agent"' in str(model.requests[0].messages[0]["content"])


def test_write_agent_memory_needs_an_agent_id(mem: MemoryManager) -> None:
    with pytest.raises(ConfigurationError, match="needs an agent_id"):
        Agent(ScriptedModel([]), memory=mem, write_agent_memory=True)
    with pytest.raises(ConfigurationError, match="must be a bool"):
        Agent(ScriptedModel([]), memory=mem, agent_id="tagger", write_agent_memory="yes")  # type: ignore[arg-type]
