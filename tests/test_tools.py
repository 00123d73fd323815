"""The memory tools an agent's model calls: remember, update, forget, search.

A dispatcher is bound to one user (and agent) when it is made; whatever a model sends, it can neither
read nor change anyone else's memory, and bad arguments come back as ``{"ok": false, "error": ...}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from agentmem import MemoryManager, MemoryTools

SARAH = "sarah"
MARCO = "marco"


def call(tools: MemoryTools, name: str, arguments: str | dict[str, Any]) -> dict[str, Any]:
    result = json.loads(tools.dispatch(name, arguments))
    assert isinstance(result, dict)
    return result


def changed_ids(result: dict[str, Any]) -> list[str]:
    assert result["ok"] is True, result
    return [c["id"] for c in result["changes"]]


@pytest.fixture
def tools(mem: MemoryManager) -> MemoryTools:
    return mem.tools(user_id=SARAH, session_id="s1")


# ---- the definitions ------------------------------------------------------------------------------


def test_definitions_are_openai_functions_prefixed_memory(mem: MemoryManager, tools: MemoryTools) -> None:
    names = [d["function"]["name"] for d in tools.definitions]
    assert names == ["memory_remember", "memory_update", "memory_forget", "memory_search"]
    assert tools.names == frozenset(names)
    for definition in tools.definitions:
        assert definition["type"] == "function"
        function = definition["function"]
        assert set(function) == {"name", "description", "parameters"}
        assert function["description"].strip()
        parameters = function["parameters"]
        assert parameters["type"] == "object"
        assert set(parameters["required"]) <= set(parameters["properties"])
        for schema in parameters["properties"].values():
            assert schema["type"] in ("string", "array")  # topics are a list
        json.dumps(definition)  # sent to the provider as is

    remember = tools.definitions[0]["function"]
    assert remember["parameters"]["required"] == ["layer", "value"]
    assert remember["parameters"]["properties"]["layer"]["enum"] == list(mem.layers)
    # The model is told which fields the document layers have.
    assert "fields: name, role, company, location, languages, expertise" in remember["description"]
    assert "response_style, tone, language, format, rules" in remember["description"]
    update, forget, search = (d["function"]["parameters"] for d in tools.definitions[1:])
    assert update["required"] == ["item_id", "value"]
    assert forget["required"] == []
    assert set(forget["properties"]) == {"item_id", "description"}
    assert search["required"] == ["query"]


# ---- remember, each layer -------------------------------------------------------------------------


def test_remember_writes_each_layer(mem: MemoryManager, tools: MemoryTools) -> None:
    assert call(tools, "memory_remember", {"layer": "profile", "field": "name", "value": "Sarah"})["ok"]
    call(tools, "memory_remember", {"layer": "profile", "field": "expertise", "value": "pandas"})
    call(tools, "memory_remember", {"layer": "profile", "field": "expertise", "value": "SQL"})
    call(tools, "memory_remember", {"layer": "policies", "field": "response_style", "value": "concise"})
    call(tools, "memory_remember", {"layer": "policies", "field": "rules", "value": "never use emojis"})
    [fact_id] = changed_ids(
        call(tools, "memory_remember", {"layer": "knowledge", "value": "Builds a churn model for Acme"})
    )
    call(
        tools,
        "memory_remember",
        {"layer": "feedback", "value": "Liked the pandas examples", "sentiment": "positive"},
    )

    state = mem.get(user_id=SARAH)
    assert state.profile.name == "Sarah"
    assert state.profile.expertise == ["pandas", "SQL"]  # a list field gains the element
    assert state.policies.response_style == "concise"
    assert state.policies.rules == ["never use emojis"]
    assert [(i.id, i.text) for i in state.knowledge] == [(fact_id, "Builds a churn model for Acme")]
    assert [(i.text, i.data.sentiment) for i in state.feedback] == [("Liked the pandas examples", "positive")]
    assert {i.source for i in state.items} == {"agentic"}
    assert {i.session_id for i in state.items} == {"s1"}


def test_remember_something_already_known_changes_nothing(mem: MemoryManager, tools: MemoryTools) -> None:
    call(tools, "memory_remember", {"layer": "knowledge", "value": "Builds a churn model for Acme"})
    again = call(tools, "memory_remember", {"layer": "knowledge", "value": "builds a churn model for Acme."})
    assert again == {"ok": True, "changes": "already known"}
    assert len(mem.get(user_id=SARAH).knowledge) == 1


def test_changes_are_collected_and_carry_source_agentic_in_history(
    mem: MemoryManager, tools: MemoryTools
) -> None:
    call(tools, "memory_remember", {"layer": "profile", "field": "role", "value": "data scientist"})
    [fact_id] = changed_ids(
        call(tools, "memory_remember", {"layer": "knowledge", "value": "Lives in Lisbon"})
    )
    call(tools, "memory_forget", {"item_id": fact_id})

    assert [(c.op, c.layer) for c in tools.changes] == [
        ("add", "profile"),
        ("add", "knowledge"),
        ("delete", "knowledge"),
    ]
    history = mem.history(user_id=SARAH)
    assert [(e.op, e.layer, e.source) for e in history] == [
        ("add", "profile", "agentic"),
        ("add", "knowledge", "agentic"),
        ("delete", "knowledge", "agentic"),
    ]
    assert history[0].session_id == "s1"


# ---- update ---------------------------------------------------------------------------------------


def test_update_a_document_field(mem: MemoryManager, tools: MemoryTools) -> None:
    mem.profile.update(user_id=SARAH, role="data analyst")
    role = mem.get(user_id=SARAH).item("profile", "role")
    assert role is not None

    result = call(tools, "memory_update", {"item_id": role.id, "value": "data scientist"})

    assert result == {"ok": True, "changes": [{"op": "update", "id": role.id}]}
    assert mem.get(user_id=SARAH).profile.role == "data scientist"
    [added, updated] = mem.history(user_id=SARAH, item_id=role.id)
    assert (added.source, updated.op, updated.source) == ("manual", "update", "agentic")
    assert (updated.old, updated.new) == ("data analyst", "data scientist")


def test_update_a_list_field_replaces_the_list_in_place(mem: MemoryManager, tools: MemoryTools) -> None:
    mem.profile.update(user_id=SARAH, expertise=["pandas", "SQL"])
    expertise = mem.get(user_id=SARAH).item("profile", "expertise")
    assert expertise is not None
    assert expertise.text == "pandas, SQL"  # what memory_search shows the model

    result = call(tools, "memory_update", {"item_id": expertise.id, "value": "pandas, Polars"})

    assert result == {"ok": True, "changes": [{"op": "update", "id": expertise.id}]}
    assert mem.get(user_id=SARAH).profile.expertise == ["pandas", "Polars"]  # not [..., "pandas, Polars"]
    events = [(e.op, e.old, e.new, e.source) for e in mem.history(user_id=SARAH)]
    assert events[1:] == [("update", ["pandas", "SQL"], ["pandas", "Polars"], "agentic")]
    same = call(tools, "memory_update", {"item_id": expertise.id, "value": "pandas,Polars"})
    assert same == {"ok": True, "changes": "already known"}
    empty = call(tools, "memory_update", {"item_id": expertise.id, "value": " , "})
    assert empty["ok"] is False
    assert mem.get(user_id=SARAH).profile.expertise == ["pandas", "Polars"]


def test_update_a_fact_in_place_keeps_its_id_and_other_fields(mem: MemoryManager, tools: MemoryTools) -> None:
    berlin = mem.knowledge.add("Lives in Berlin", user_id=SARAH, topics=["home"])

    result = call(tools, "memory_update", {"item_id": berlin, "value": "Lives in Munich"})

    assert result == {"ok": True, "changes": [{"op": "update", "id": berlin}]}
    [munich] = mem.get(user_id=SARAH).knowledge
    assert (munich.id, munich.text) == (berlin, "Lives in Munich")
    assert munich.data.topics == ["home"]  # the other fields of the fact are kept
    [added, updated] = mem.history(user_id=SARAH, item_id=berlin)
    assert (added.op, added.source, updated.op, updated.source) == ("add", "manual", "update", "agentic")
    assert (updated.old["text"], updated.new["text"]) == ("Lives in Berlin", "Lives in Munich")
    assert updated.session_id == "s1"


def test_update_of_an_unknown_id_is_refused(mem: MemoryManager, tools: MemoryTools) -> None:
    result = call(tools, "memory_update", {"item_id": "m_doesnotexist", "value": "anything"})
    assert result["ok"] is False
    assert "m_doesnotexist" in result["error"]
    assert mem.get(user_id=SARAH).items == []


# ---- forget ---------------------------------------------------------------------------------------


def test_forget_by_id(mem: MemoryManager, tools: MemoryTools) -> None:
    fact = mem.knowledge.add("Works on computer vision", user_id=SARAH)
    assert call(tools, "memory_forget", {"item_id": fact}) == {"ok": True, "forgotten": fact}
    assert mem.get(user_id=SARAH).knowledge == []
    assert [c.op for c in tools.changes] == ["delete"]
    again = call(tools, "memory_forget", {"item_id": fact})
    assert again["ok"] is False


def test_forget_by_a_description_that_clearly_matches(mem: MemoryManager, tools: MemoryTools) -> None:
    vision = mem.knowledge.add("Works on computer vision at Acme", user_id=SARAH)
    mem.knowledge.add("Lives in Lisbon", user_id=SARAH)
    mem.knowledge.add("Reads about computer history", user_id=SARAH)

    result = call(tools, "memory_forget", {"description": "work on computer vision"})

    assert result == {"ok": True, "forgotten": vision}
    assert sorted(i.text for i in mem.get(user_id=SARAH).knowledge) == [
        "Lives in Lisbon",
        "Reads about computer history",
    ]


def test_forget_by_a_loose_description_is_refused(mem: MemoryManager, tools: MemoryTools) -> None:
    mem.knowledge.add("Works on computer vision at Acme", user_id=SARAH)
    before = mem.get(user_id=SARAH).items
    # "vision" finds the fact, but most of what the user described is not in it.
    assert [h.item.text for h in mem.search("vision for the office in Berlin", user_id=SARAH)] == [
        "Works on computer vision at Acme"
    ]

    result = call(tools, "memory_forget", {"description": "vision for the office in Berlin"})

    assert result["ok"] is False
    assert "no memory clearly matches" in result["error"]
    assert mem.get(user_id=SARAH).items == before
    assert tools.changes == []


def test_forget_needs_an_id_or_a_description(tools: MemoryTools) -> None:
    for arguments in ({}, {"description": "   "}, {"item_id": "", "description": ""}):
        result = call(tools, "memory_forget", arguments)
        assert result == {"ok": False, "error": "give item_id or description"}


# ---- search ---------------------------------------------------------------------------------------


def test_search_returns_ids_layers_and_texts(mem: MemoryManager, tools: MemoryTools) -> None:
    churn = mem.knowledge.add("Builds a churn model for Acme", user_id=SARAH)
    mem.knowledge.add("Plays the cello", user_id=SARAH)
    mem.profile.update(user_id=SARAH, expertise=["churn prediction"])

    result = call(tools, "memory_search", {"query": "churn"})

    assert result["ok"] is True
    found = {(r["layer"], r["text"]): r["id"] for r in result["results"]}
    assert found[("knowledge", "Builds a churn model for Acme")] == churn
    assert ("profile", "churn prediction") in found
    assert all("cello" not in r["text"] for r in result["results"])
    assert call(tools, "memory_search", {"query": "astronomy"}) == {"ok": True, "results": []}


# ---- scope: nothing a model sends reaches another user ------------------------------------------------


@pytest.fixture
def marco(mem: MemoryManager) -> dict[str, str]:
    mem.profile.update(user_id=MARCO, name="Marco", role="backend engineer")
    return {
        "fact": mem.knowledge.add("Maintains the billing service in Go", user_id=MARCO),
        "feedback": mem.feedback.add("Liked the goroutine diagram", user_id=MARCO, sentiment="positive"),
        "role": mem.get(user_id=MARCO).item("profile", "role").id,  # type: ignore[union-attr]
    }


def test_a_dispatcher_never_reads_or_changes_another_users_memory(
    mem: MemoryManager, tools: MemoryTools, marco: dict[str, str]
) -> None:
    before = mem.export_user(MARCO)
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("memory_forget", {"item_id": marco["fact"]}),
        ("memory_forget", {"item_id": marco["role"]}),
        ("memory_forget", {"description": "Maintains the billing service in Go"}),
        ("memory_update", {"item_id": marco["fact"], "value": "Maintains nothing"}),
        ("memory_update", {"item_id": marco["role"], "value": "unemployed"}),
        ("memory_remember", {"layer": "knowledge", "value": "Hacked", "user_id": MARCO}),
        ("memory_remember", {"layer": "profile", "field": "name", "value": "X", "scope": {"user_id": MARCO}}),
        ("memory_search", {"query": "billing Go goroutine", "user_id": MARCO}),
        ("memory_forget", {"item_id": marco["feedback"], "agent_id": None, "user_id": MARCO}),
    ]
    for name, arguments in attempts:
        assert call(tools, name, arguments)["ok"] is False, (name, arguments)

    found = call(tools, "memory_search", {"query": "billing Go goroutine Marco backend"})
    assert found == {"ok": True, "results": []}
    assert mem.export_user(MARCO) == before
    assert mem.get(user_id=SARAH).items == []
    assert tools.changes == []


def test_what_a_dispatcher_writes_lands_in_its_own_scope_only(
    mem: MemoryManager, marco: dict[str, str]
) -> None:
    before = mem.export_user(MARCO)
    sarahs = mem.tools(user_id=SARAH)
    call(sarahs, "memory_remember", {"layer": "knowledge", "value": "Maintains the billing service in Go"})
    call(sarahs, "memory_remember", {"layer": "profile", "field": "role", "value": "backend engineer"})
    assert mem.export_user(MARCO) == before
    assert {i.user_id for i in mem.get(user_id=SARAH).items} == {SARAH}
    assert len(mem.get(user_id=SARAH).items) == 2


def test_an_agents_tools_see_shared_memory_but_not_another_agents(mem: MemoryManager) -> None:
    shared = mem.knowledge.add("Lives in Lisbon", user_id=SARAH)
    private = mem.knowledge.add("Prefers table-driven tests", user_id=SARAH, agent_id="reviewer")
    planner = mem.tools(user_id=SARAH, agent_id="planner")

    texts = [r["text"] for r in call(planner, "memory_search", {"query": "Lisbon tests"})["results"]]
    assert texts == ["Lives in Lisbon"]
    assert call(planner, "memory_forget", {"item_id": private})["ok"] is False
    assert call(planner, "memory_update", {"item_id": private, "value": "Likes no tests"})["ok"] is False
    [written] = changed_ids(
        call(planner, "memory_remember", {"layer": "knowledge", "value": "Plans in sprints"})
    )

    assert [i.text for i in mem.get(user_id=SARAH, agent_id="reviewer").knowledge] == [
        "Lives in Lisbon",
        "Prefers table-driven tests",
    ]
    assert written not in {i.id for i in mem.get(user_id=SARAH).knowledge}  # private to the planner
    assert written in {i.id for i in mem.get(user_id=SARAH, agent_id="planner").knowledge}
    assert call(planner, "memory_forget", {"item_id": shared}) == {"ok": True, "forgotten": shared}


# ---- bad arguments go back to the model, never raise ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "arguments", "error"),
    [
        ("memory_remember", "not json", "Expecting value"),
        ("memory_remember", "[1, 2]", "arguments must be a JSON object"),
        ("memory_remember", {"value": "Sarah"}, "needs 'layer'"),
        ("memory_remember", {"layer": "hobbies", "value": "chess"}, "unknown layer 'hobbies'"),
        ("memory_remember", {"layer": "profile", "value": "Sarah"}, "profile needs a field"),
        ("memory_remember", {"layer": "profile", "field": "nickname", "value": "S"}, "nickname"),
        ("memory_remember", {"layer": "knowledge", "value": 42}, "value must be a string, not int"),
        ("memory_remember", {"layer": "knowledge", "value": "  "}, "value must not be empty"),
        ("memory_remember", {"layer": ["knowledge"], "value": "x"}, "layer must be a string"),
        ("memory_remember", {"layer": "feedback", "value": "Liked it", "sentiment": "angry"}, "sentiment"),
        ("memory_remember", {"layer": "knowledge", "value": "x" * 2001}, "the limit is 2000"),
        (
            "memory_remember",
            {"layer": "knowledge", "value": "My key is sk-proj-4fQx9TbLm2Wc7ZrK8vNd3HgYp6"},
            "secrets are never stored",
        ),
        ("memory_update", {"item_id": "m_1"}, "needs 'value'"),
        ("memory_update", {"item_id": "m_1", "value": ""}, "value must not be empty"),
        ("memory_forget", {"description": 7}, "description must be a string"),
        ("memory_forget", {"item_id": ["m_1"]}, "item_id must be a string"),
        ("memory_search", {"query": None}, "needs 'query'"),
        ("memory_search", {"query": "x" * 4001}, "the limit is 4000"),
        ("memory_search", {"query": "churn", "limit": 100}, "takes no argument(s) 'limit'"),
        ("memory_delete_everything", {}, "unknown memory tool"),
        ("memory_write", {"layer": "profile", "patch": {"name": "X"}}, "unknown memory tool"),
        ("remember", {"layer": "knowledge", "value": "x"}, "unknown memory tool"),
    ],
)
def test_bad_arguments_return_an_error_result(
    mem: MemoryManager, tools: MemoryTools, name: str, arguments: str | dict[str, Any], error: str
) -> None:
    result = call(tools, name, arguments)
    assert result["ok"] is False
    assert error in result["error"]
    assert mem.get(user_id=SARAH).items == []
    assert tools.changes == []


def test_arguments_may_be_json_text_or_a_mapping(mem: MemoryManager, tools: MemoryTools) -> None:
    as_text = call(tools, "memory_remember", '{"layer": "knowledge", "value": "Lives in Lisbon"}')
    as_dict = call(tools, "memory_remember", {"layer": "knowledge", "value": "Plays the cello"})
    assert as_text["ok"] is True
    assert as_dict["ok"] is True
    assert len(mem.get(user_id=SARAH).knowledge) == 2


def test_forgetting_through_a_tool_keeps_the_session_in_history(mem: MemoryManager) -> None:
    fact = mem.knowledge.add("Works on computer vision", user_id="ana")
    tools = mem.tools(user_id="ana", session_id="s-7")
    tools.dispatch("memory_forget", {"item_id": fact})
    deleted = mem.history(user_id="ana", item_id=fact)[-1]
    assert (deleted.op, deleted.source, deleted.session_id) == ("delete", "agentic", "s-7")


def test_forget_by_description_refuses_when_several_memories_match(mem: MemoryManager) -> None:
    mondays = mem.knowledge.add("Plays tennis on Mondays", user_id="ana")
    mem.knowledge.add("Plays tennis with Sam", user_id="ana")
    tools = mem.tools(user_id="ana")
    ambiguous = json.loads(tools.dispatch("memory_forget", {"description": "plays tennis"}))
    assert ambiguous["ok"] is False
    assert ambiguous["candidates"]  # the model is shown what matched, to pick by id
    loose = json.loads(tools.dispatch("memory_forget", {"description": "my sister's wedding in June"}))
    assert loose["ok"] is False
    assert len(mem.get(user_id="ana").knowledge) == 2  # nothing was deleted on a guess
    assert json.loads(tools.dispatch("memory_forget", {"description": "tennis on Mondays"}))["ok"] is True
    assert mondays not in {i.id for i in mem.get(user_id="ana").knowledge}


def test_an_agents_tool_corrects_a_shared_fact_where_it_lives(mem: MemoryManager) -> None:
    shared = mem.knowledge.add("Lives in Berlin", user_id="ana")
    tools = mem.tools(user_id="ana", agent_id="coach")
    result = json.loads(tools.dispatch("memory_update", {"item_id": shared, "value": "Lives in Munich"}))
    assert result["ok"] is True
    for agent_id in (None, "coach", "another-agent"):  # one truth, seen by every agent
        assert [i.text for i in mem.get(user_id="ana", agent_id=agent_id).knowledge] == ["Lives in Munich"]
    assert [e.op for e in mem.history(user_id="ana", item_id=shared)] == ["add", "update"]


def test_forgetting_an_item_twice_is_not_found_the_second_time(mem: MemoryManager) -> None:
    fact = mem.knowledge.add("Has a cat", user_id="ana")
    tools = mem.tools(user_id="ana")
    assert json.loads(tools.dispatch("memory_forget", {"item_id": fact}))["ok"] is True
    again = json.loads(tools.dispatch("memory_forget", {"item_id": fact}))
    assert again["ok"] is False
    assert "no live memory item" in again["error"]


def test_tool_definitions_without_a_user_are_those_of_bound_tools(
    make_mem: Callable[..., MemoryManager],
) -> None:
    mem = make_mem()
    assert mem.tool_definitions() == mem.tools(user_id="sarah").definitions
    with_agent = mem.tool_definitions(agent_memory=True)
    assert with_agent == mem.tools(user_id="sarah", agent_id="coach", agent_memory=True).definitions
    assert "scope" in with_agent[0]["function"]["parameters"]["properties"]
    assert "scope" not in mem.tool_definitions()[0]["function"]["parameters"]["properties"]
