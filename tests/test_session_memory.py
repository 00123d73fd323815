"""Session-scoped memory: a session's own facts are seen only by reads with its session_id (compile,
search, get, the handles' reads, memory tools, history), never by another session or user-wide reads;
learn keeps them there per layer; deleting the session deletes them. Both backends."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from test_upgrade import load

from agentmem import Agent, LayerConfig, MemoryManager, NotFoundError, ScopeError
from agentmem.testing import ScriptedModel

TRIP = "Is planning a surprise party for Ana"
OTHER = "Is debugging the flaky login test"


@pytest.fixture
def sessions(mem: MemoryManager) -> dict[str, str]:
    """User-wide memory plus one fact in each of two sessions; item ids by label."""
    mem.profile.update(user_id="u", name="Sam")
    return {
        "wide": mem.knowledge.add("Works as a nurse", user_id="u"),
        "s1": mem.knowledge.add(TRIP, user_id="u", session_id="s1", session_scoped=True),
        "s2": mem.knowledge.add(OTHER, user_id="u", session_id="s2", session_scoped=True),
    }


def texts(items: object) -> set[str]:
    return {i.text for i in items}  # type: ignore[attr-defined]


def test_get_and_list_see_user_wide_memory_plus_only_their_own_session(
    mem: MemoryManager, sessions: dict[str, str]
) -> None:
    assert texts(mem.get(user_id="u").knowledge) == {"Works as a nurse"}
    assert texts(mem.get(user_id="u", session_id="s1").knowledge) == {"Works as a nurse", TRIP}
    assert texts(mem.knowledge.list(user_id="u", session_id="s2")) == {"Works as a nurse", OTHER}
    assert texts(mem.knowledge.list(user_id="u", session_id="s3")) == {"Works as a nurse"}
    state = mem.get(user_id="u", session_id="s1")
    assert state.session_id == "s1"
    assert {i.id: i.session_scope for i in state.knowledge} == {sessions["wide"]: None, sessions["s1"]: "s1"}
    assert mem.get(user_id="u", session_id="s1").profile.name == "Sam"
    # another user's session of the same id sees nothing of this user's
    assert mem.get(user_id="other", session_id="s1").items == []


@pytest.mark.parametrize("budget", [None, 200])
def test_compile_sees_only_its_own_session(
    mem: MemoryManager, sessions: dict[str, str], budget: int | None
) -> None:
    """Whole reads and budgeted (top-rows) reads, with and without a query."""
    for query in (None, "party login nurse"):
        wide = mem.compile(user_id="u", query=query, token_budget=budget)
        s1 = mem.compile(user_id="u", session_id="s1", query=query, token_budget=budget)
        assert "nurse" in wide
        assert TRIP not in wide
        assert OTHER not in wide
        assert "nurse" in s1
        assert TRIP in s1
        assert OTHER not in s1
        assert "Sam" in s1


def test_compile_without_sessions_is_unchanged(mem: MemoryManager, sessions: dict[str, str]) -> None:
    """A user-wide read gives exactly what it gave before the session's facts existed."""
    before = mem.compile(user_id="u", query="nurse")
    mem.sessions.delete("s1", user_id="u")
    mem.sessions.delete("s2", user_id="u")
    assert mem.compile(user_id="u", query="nurse") == before


def test_search_and_history_see_only_their_own_session(mem: MemoryManager, sessions: dict[str, str]) -> None:
    assert mem.search("party", user_id="u") == []
    assert [h.item.id for h in mem.search("party", user_id="u", session_id="s1")] == [sessions["s1"]]
    assert mem.search("party", user_id="u", session_id="s2") == []
    wide = {e.item_id for e in mem.history(user_id="u")}
    s1 = {e.item_id for e in mem.history(user_id="u", session_id="s1")}
    assert sessions["s1"] not in wide
    assert sessions["s2"] not in wide
    assert sessions["s1"] in s1
    assert sessions["s2"] not in s1
    assert sessions["wide"] in s1
    (event,) = mem.history(user_id="u", session_id="s1", item_id=sessions["s1"])
    assert (event.op, event.session_scope, event.session_id) == ("add", "s1", "s1")


def test_tools_see_and_write_only_their_own_session(mem: MemoryManager, sessions: dict[str, str]) -> None:
    other = mem.tools(user_id="u", session_id="s2")
    found = json.loads(other.dispatch("memory_search", {"query": "party"}))
    assert found == {"ok": True, "results": []}
    # another session's item cannot be forgotten or corrected by id
    forgot = json.loads(other.dispatch("memory_forget", {"item_id": sessions["s1"]}))
    assert forgot["ok"] is False
    fixed = json.loads(other.dispatch("memory_update", {"item_id": sessions["s1"], "value": "x"}))
    assert fixed["ok"] is False

    own = mem.tools(user_id="u", session_id="s1", session_scoped=True)
    found = json.loads(own.dispatch("memory_search", {"query": "party"}))
    assert [r["id"] for r in found["results"]] == [sessions["s1"]]
    said = json.loads(own.dispatch("memory_remember", {"layer": "knowledge", "value": "Ana likes lilies"}))
    assert said["ok"] is True
    assert "Ana likes lilies" in texts(mem.knowledge.list(user_id="u", session_id="s1"))
    assert "Ana likes lilies" not in texts(mem.knowledge.list(user_id="u"))
    assert json.loads(own.dispatch("memory_forget", {"item_id": sessions["s1"]}))["ok"] is True
    assert TRIP not in texts(mem.knowledge.list(user_id="u", session_id="s1"))

    # by default the tools store user-wide, the session kept as provenance
    plain = mem.tools(user_id="u", session_id="s1")
    plain.dispatch("memory_remember", {"layer": "knowledge", "value": "Has a cat named Miso"})
    (item,) = [i for i in mem.knowledge.list(user_id="u") if "Miso" in i.text]
    assert (item.session_scope, item.session_id) == (None, "s1")


def test_session_value_and_user_wide_value_of_one_key_coexist(mem: MemoryManager) -> None:
    mem.policies.update(user_id="u", response_style="concise")
    mem.policies.update(user_id="u", session_id="s1", session_scoped=True, response_style="detailed")
    mem.policies.update(user_id="u", agent_id="bot", response_style="one line")
    assert mem.get(user_id="u").policies.response_style == "concise"
    assert mem.get(user_id="u", session_id="s1").policies.response_style == "detailed"
    assert mem.policies.get(user_id="u", session_id="s2").response_style == "concise"
    # the session's value wins over the agent's too: it is the narrower, newer context
    assert mem.get(user_id="u", agent_id="bot", session_id="s1").policies.response_style == "detailed"
    assert mem.get(user_id="u", agent_id="bot").policies.response_style == "one line"
    s1 = mem.compile(user_id="u", agent_id="bot", session_id="s1")
    assert "response_style: detailed" in s1
    assert "concise" not in s1
    assert "one line" not in s1
    assert "response_style: concise" in mem.compile(user_id="u")
    # removing the session's value uncovers the user-wide one there
    mem.policies.update(user_id="u", session_id="s1", session_scoped=True, rules=["Use metric units"])
    assert mem.get(user_id="u", session_id="s1").policies.rules == ["Use metric units"]
    mem.policies.withdraw("rules", "use metric units", user_id="u", session_id="s1", session_scoped=True)
    assert mem.get(user_id="u", session_id="s1").policies.rules == []
    mem.policies.remove("response_style", user_id="u", session_id="s1", session_scoped=True)
    assert mem.get(user_id="u", session_id="s1").policies.response_style == "concise"
    mem.policies.update(user_id="u", session_id="s1", session_scoped=True, response_style="detailed")
    # the user-wide value hidden in the session cannot be reached through it
    wide_id = mem.get(user_id="u").item("policies", "response_style")
    assert wide_id is not None
    with pytest.raises(NotFoundError):
        mem.forget(wide_id.id, user_id="u", session_id="s1")


def test_learn_keeps_a_session_scoped_layer_in_the_session(make_mem: Callable[..., MemoryManager]) -> None:
    mem = make_mem(layers={"knowledge": LayerConfig(session_scoped=True)})
    said = [{"role": "user", "content": "I'm planning a surprise party for Ana. I prefer short answers."}]
    result = mem.learn(said, user_id="u", session_id="s1")
    assert [c.op for c in result.all_changes] == ["add", "add"]
    assert texts(mem.knowledge.list(user_id="u", session_id="s1")) == {TRIP}
    assert mem.knowledge.list(user_id="u") == []
    assert mem.knowledge.list(user_id="u", session_id="s2") == []
    # policies are not session-scoped: user-wide, with the session as provenance
    assert mem.get(user_id="u", session_id="s2").policies.response_style == "concise"
    # the same words in another session are learned there too, and once per session only
    assert mem.learn(said, user_id="u", session_id="s2").all_changes != []
    assert mem.learn(said, user_id="u", session_id="s2").usage.skipped == "this input was already learned"
    assert texts(mem.knowledge.list(user_id="u", session_id="s2")) == {TRIP}
    # without a session_id, learn stores user-wide
    mem.learn([{"role": "user", "content": "I'm learning Rust."}], user_id="u")
    assert texts(mem.knowledge.list(user_id="u")) == {"Is learning Rust"}


def test_deleting_a_session_deletes_its_memory_with_events(
    mem: MemoryManager, sessions: dict[str, str]
) -> None:
    mem.sessions.add("s1", [{"role": "user", "content": "hi"}], user_id="u")
    mem.policies.update(user_id="u", agent_id="bot", session_id="s1", session_scoped=True, tone="warm")
    assert mem.sessions.delete("s1", user_id="u") == 1
    assert texts(mem.knowledge.list(user_id="u", session_id="s1")) == {"Works as a nurse"}
    assert mem.get(user_id="u", agent_id="bot", session_id="s1").policies.tone is None
    assert texts(mem.knowledge.list(user_id="u", session_id="s2")) == {"Works as a nurse", OTHER}
    deleted = [e for e in mem.history(user_id="u", agent_id="bot", session_id="s1") if e.op == "delete"]
    assert {(e.layer, e.session_scope, e.agent_id) for e in deleted} == {
        ("knowledge", "s1", None),
        ("policies", "s1", "bot"),
    }
    assert all(e.reason == "session 's1' deleted" for e in deleted)


def test_a_deleted_session_learns_its_input_again(make_mem: Callable[..., MemoryManager]) -> None:
    """Deleting the session forgets that its input was learned into it: a new session of the same id
    starts clean, while what was learned without the session stays learned."""
    mem = make_mem(layers={"knowledge": LayerConfig(session_scoped=True)})
    said = [{"role": "user", "content": "I'm planning a surprise party for Ana."}]
    wide = [{"role": "user", "content": "I prefer short answers."}]
    assert mem.learn(said, user_id="u", session_id="s1").all_changes
    assert mem.learn(wide, user_id="u").all_changes
    mem.sessions.delete("s1", user_id="u")
    assert mem.knowledge.list(user_id="u", session_id="s1") == []
    assert mem.learn(said, user_id="u", session_id="s1").all_changes
    assert texts(mem.knowledge.list(user_id="u", session_id="s1")) == {TRIP}
    again = mem.learn(wide, user_id="u")
    assert again.usage.skipped == "this input was already learned"


def test_export_import_carries_the_session_scope(mem: MemoryManager, sessions: dict[str, str]) -> None:
    mem.policies.update(user_id="u", response_style="concise")
    mem.policies.update(user_id="u", session_id="s1", session_scoped=True, response_style="detailed")
    data = mem.export_user("u")
    scopes = {i["id"]: i["session_scope"] for i in data["items"]}
    assert scopes[sessions["wide"]] is None
    assert scopes[sessions["s1"]] == "s1"
    before = {s: mem.compile(user_id="u", session_id=s) for s in (None, "s1", "s2")}
    mem.delete_user("u")
    mem.import_user(data)
    assert {s: mem.compile(user_id="u", session_id=s) for s in (None, "s1", "s2")} == before
    assert mem.export_user("u") == data


def test_bad_session_arguments_are_refused(mem: MemoryManager) -> None:
    with pytest.raises(ScopeError, match="needs a session_id"):
        mem.knowledge.add("x y z", user_id="u", session_scoped=True)
    with pytest.raises(ScopeError, match="needs a session_id"):
        mem.tools(user_id="u", session_scoped=True)
    with pytest.raises(ScopeError, match="session_scoped must be a bool"):
        mem.profile.update(user_id="u", session_id="s", session_scoped="yes", name="A")  # type: ignore[arg-type]
    with pytest.raises(ScopeError):
        mem.compile(user_id="u", session_id=" s ")
    assert mem.get(user_id="u").items == []


def test_a_database_of_schema_8_gets_session_memory(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Its items stay user-wide (seen by every session), and a session's item of a key it already has
    is stored beside it (the live-key index now includes the session)."""
    with MemoryManager(db=load(8, backend, tmp_path, request)) as mem:
        before = mem.get(user_id="sarah")
        assert before.policies.response_style is not None
        assert before.items
        assert all(i.session_scope is None for i in before.items)
        assert texts(mem.get(user_id="sarah", session_id="new").items) == texts(before.items)
        mem.policies.update(user_id="sarah", session_id="new", session_scoped=True, response_style="detailed")
        assert mem.get(user_id="sarah", session_id="new").policies.response_style == "detailed"
        assert mem.get(user_id="sarah").policies == before.policies


def test_an_agent_run_sees_its_own_sessions_memory(make_mem: Callable[..., MemoryManager]) -> None:
    mem = make_mem(update_memory_on_run=False)
    mem.knowledge.add(TRIP, user_id="u", session_id="s1", session_scoped=True)
    model = ScriptedModel(["Sure.", "Sure."])
    agent = Agent(model, memory=mem)
    try:
        assert TRIP in agent.run("What am I planning?", user_id="u", session_id="s1").system_message
        assert TRIP not in agent.run("What am I planning?", user_id="u", session_id="s2").system_message
    finally:
        agent.close()
