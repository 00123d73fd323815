"""Nothing ever crosses scopes: every public method, across user_id and agent_id."""

from __future__ import annotations

import pytest

from agentmem import MemoryManager, NotFoundError, ScopeError


@pytest.fixture
def two_users(mem: MemoryManager) -> dict[str, str]:
    """Sarah and Marco with shared and agent-private memory; returns item ids by label."""
    mem.profile.update(user_id="sarah", name="Sarah", role="data scientist")
    mem.profile.update(user_id="marco", name="Marco", role="backend engineer")
    mem.policies.update(user_id="marco", agent_id="reviewer", tone="blunt")
    return {
        "sarah_fact": mem.knowledge.add("Builds a churn model", user_id="sarah"),
        "marco_fact": mem.knowledge.add("Maintains the billing service in Go", user_id="marco"),
        "marco_private": mem.knowledge.add(
            "Prefers table-driven tests", user_id="marco", agent_id="reviewer"
        ),
        "marco_feedback": mem.feedback.add(
            "Liked the goroutine diagram", user_id="marco", sentiment="positive"
        ),
    }


def test_get_sees_only_the_users_own_memory(mem: MemoryManager, two_users: dict[str, str]) -> None:
    sarah = mem.get(user_id="sarah")
    assert sarah.profile.name == "Sarah"
    assert [i.text for i in sarah.knowledge] == ["Builds a churn model"]
    assert sarah.feedback == []
    assert {i.user_id for i in sarah.items} == {"sarah"}


def test_agent_private_memory_is_visible_only_to_that_agent(
    mem: MemoryManager, two_users: dict[str, str]
) -> None:
    shared = mem.get(user_id="marco")
    reviewer = mem.get(user_id="marco", agent_id="reviewer")
    other_agent = mem.get(user_id="marco", agent_id="planner")
    private = "Prefers table-driven tests"
    assert private not in [i.text for i in shared.knowledge]
    assert private in [i.text for i in reviewer.knowledge]
    assert private not in [i.text for i in other_agent.knowledge]
    # shared memory is seen by every agent of the user
    assert "Maintains the billing service in Go" in [i.text for i in other_agent.knowledge]
    assert reviewer.policies.tone == "blunt"
    assert shared.policies.tone is None


def test_agent_value_wins_over_shared_on_the_same_key(mem: MemoryManager) -> None:
    mem.policies.update(user_id="u", response_style="detailed")
    mem.policies.update(user_id="u", agent_id="chat", response_style="one line")
    assert mem.get(user_id="u", agent_id="chat").policies.response_style == "one line"
    assert mem.get(user_id="u").policies.response_style == "detailed"
    xml = mem.compile(user_id="u", agent_id="chat")
    assert "response_style: one line" in xml
    assert "detailed" not in xml


def test_compile_never_includes_another_users_memory(mem: MemoryManager, two_users: dict[str, str]) -> None:
    xml = mem.compile(user_id="sarah", query="billing Go goroutine tests")
    assert "Sarah" in xml
    for foreign in ("Marco", "billing", "goroutine", "table-driven", "blunt"):
        assert foreign not in xml
    assert "table-driven" not in mem.compile(user_id="marco", agent_id="planner")


def test_search_is_scoped(mem: MemoryManager, two_users: dict[str, str]) -> None:
    assert mem.search("billing", user_id="sarah") == []
    assert [h.item.text for h in mem.search("billing", user_id="marco")] == [
        "Maintains the billing service in Go"
    ]
    assert mem.search("table", user_id="marco") == []
    assert [h.item.id for h in mem.search("table", user_id="marco", agent_id="reviewer")] == [
        two_users["marco_private"]
    ]


def test_forget_refuses_items_outside_the_scope(mem: MemoryManager, two_users: dict[str, str]) -> None:
    with pytest.raises(NotFoundError):
        mem.forget(two_users["marco_fact"], user_id="sarah")
    with pytest.raises(NotFoundError):  # another agent's private item
        mem.forget(two_users["marco_private"], user_id="marco", agent_id="planner")
    with pytest.raises(NotFoundError):  # private items need their agent's scope
        mem.forget(two_users["marco_private"], user_id="marco")
    assert len(mem.get(user_id="marco", agent_id="reviewer").knowledge) == 2
    mem.forget(two_users["marco_private"], user_id="marco", agent_id="reviewer")
    assert len(mem.get(user_id="marco", agent_id="reviewer").knowledge) == 1


def test_replaces_cannot_target_another_users_item(mem: MemoryManager, two_users: dict[str, str]) -> None:
    with pytest.raises(NotFoundError):
        mem.knowledge.add("Moved to Rust", user_id="sarah", replaces=two_users["marco_fact"])
    assert [i.text for i in mem.get(user_id="marco").knowledge] == ["Maintains the billing service in Go"]
    assert [i.text for i in mem.get(user_id="sarah").knowledge] == ["Builds a churn model"]


def test_history_is_scoped(mem: MemoryManager, two_users: dict[str, str]) -> None:
    assert {e.user_id for e in mem.history(user_id="sarah")} == {"sarah"}
    assert mem.history(user_id="sarah", item_id=two_users["marco_fact"]) == []
    shared_ids = {e.item_id for e in mem.history(user_id="marco")}
    assert two_users["marco_private"] not in shared_ids
    assert two_users["marco_private"] in {
        e.item_id for e in mem.history(user_id="marco", agent_id="reviewer")
    }


def test_export_and_delete_touch_only_that_user(mem: MemoryManager, two_users: dict[str, str]) -> None:
    exported = mem.export_user("sarah")
    assert {i["id"] for i in exported["items"]} <= {i.id for i in mem.get(user_id="sarah").items}
    marco_before = mem.export_user("marco")
    assert mem.delete_user("sarah") == 3
    assert mem.get(user_id="sarah").items == []
    assert mem.export_user("marco") == marco_before


@pytest.mark.parametrize("bad", ["", "   ", "x" * 256, 42, None, "tab\there", " padded"])
def test_invalid_user_ids_raise_scope_error_everywhere(mem: MemoryManager, bad: object) -> None:
    calls = [
        lambda: mem.get(user_id=bad),  # type: ignore[arg-type]
        lambda: mem.compile(user_id=bad),  # type: ignore[arg-type]
        lambda: mem.search("x", user_id=bad),  # type: ignore[arg-type]
        lambda: mem.history(user_id=bad),  # type: ignore[arg-type]
        lambda: mem.forget("m_1", user_id=bad),  # type: ignore[arg-type]
        lambda: mem.profile.update(user_id=bad, name="x"),  # type: ignore[arg-type]
        lambda: mem.knowledge.add("x", user_id=bad),  # type: ignore[arg-type]
        lambda: mem.export_user(bad),  # type: ignore[arg-type]
        lambda: mem.delete_user(bad),  # type: ignore[arg-type]
        lambda: mem.variables.set("task", "x", user_id=bad),  # type: ignore[arg-type]
        lambda: mem.variables.list(user_id=bad),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(ScopeError):
            call()


@pytest.mark.parametrize("bad", ["", "y" * 256, 7, "new\nline"])
def test_invalid_agent_ids_raise_scope_error(mem: MemoryManager, bad: object) -> None:
    with pytest.raises(ScopeError):
        mem.compile(user_id="u", agent_id=bad)  # type: ignore[arg-type]
    with pytest.raises(ScopeError):
        mem.knowledge.add("fact", user_id="u", agent_id=bad)  # type: ignore[arg-type]
    with pytest.raises(ScopeError):
        mem.variables.set("task", "x", user_id="u", agent_id=bad)  # type: ignore[arg-type]
    assert mem.get(user_id="u").items == []
    assert mem.variables.list(user_id="u") == []


def test_an_agent_cannot_forget_a_shared_item_its_own_item_hides(mem: MemoryManager) -> None:
    mem.policies.update(user_id="u", response_style="detailed")
    mem.policies.update(user_id="u", agent_id="chat", response_style="one line")
    shared = mem.get(user_id="u").item("policies", "response_style")
    assert shared is not None
    with pytest.raises(NotFoundError):  # get(agent_id="chat") does not show it, so forget cannot see it
        mem.forget(shared.id, user_id="u", agent_id="chat")
    mem.forget(shared.id, user_id="u")
    assert mem.get(user_id="u").policies.response_style is None


def test_agents_lists_who_keeps_private_memory_of_a_user(mem: MemoryManager) -> None:
    mem.profile.update(user_id="u", name="U")  # shared: no agent
    mem.knowledge.add("Reviews Go code", user_id="u", agent_id="review")
    mem.policies.update(user_id="u", agent_id="chat", response_style="one line")
    mem.policies.update(user_id="u", agent_id="chat", tone="warm")  # a second item: still one agent
    gone = mem.knowledge.add("Plans a trip", user_id="u", agent_id="travel")
    mem.knowledge.add("Someone else's", user_id="other", agent_id="spy")
    mem.forget(gone, user_id="u", agent_id="travel")  # no live private item left: not listed
    assert mem.agents("u") == ["chat", "review"]
    assert mem.agents("other") == ["spy"]
    assert mem.agents("nobody") == []
    # What each listed agent keeps privately is what get(agent_id=...) adds to the shared memory.
    private = [i.text for i in mem.get(user_id="u", agent_id="review").items if i.agent_id == "review"]
    assert private == ["Reviews Go code"]
    with pytest.raises(ScopeError):
        mem.agents("")
