"""``memory.update``: an item changed in place keeps its id, its old value goes to history, and bad input
changes nothing. Both backends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from agentmem import (
    ConflictError,
    InvalidInputError,
    MemoryManager,
    NotFoundError,
    ScopeError,
    SecretError,
)
from agentmem.testing import ManualClock

SARAH = "sarah"


def test_a_fact_keeps_its_id_and_history_holds_the_old_value(mem: MemoryManager) -> None:
    berlin = mem.knowledge.add("Lives in Berlin", user_id=SARAH, topics=["home"])

    change = mem.update(berlin, "Lives in Munich", user_id=SARAH, session_id="s9")

    assert change is not None
    assert (change.op, change.item_id) == ("update", berlin)
    [fact] = mem.get(user_id=SARAH).knowledge
    assert (fact.id, fact.text, fact.data.topics) == (berlin, "Lives in Munich", ["home"])
    [added, updated] = mem.history(user_id=SARAH, item_id=berlin)
    assert (added.op, updated.op, updated.source, updated.reason) == ("add", "update", "manual", "updated")
    assert updated.old == {"text": "Lives in Berlin", "topics": ["home"]}
    assert updated.new == {"text": "Lives in Munich", "topics": ["home"]}
    assert updated.session_id == "s9"
    # Every read path sees the new text only: compile, full-text search, the exported key.
    context = mem.compile(user_id=SARAH)
    assert "Munich" in context
    assert "Berlin" not in context
    assert [h.item.id for h in mem.search("Munich", user_id=SARAH)] == [berlin]
    assert mem.search("Berlin", user_id=SARAH) == []
    [exported] = mem.export_user(SARAH)["items"]
    assert (exported["key"], exported["valid_to"]) == ("lives in munich", None)


def test_fields_of_a_collection_item_change_without_its_text(mem: MemoryManager) -> None:
    fact = mem.knowledge.add("Runs a bakery", user_id=SARAH, topics=["work"])
    mem.update(fact, user_id=SARAH, topics=["work", "business"])
    [item] = mem.get(user_id=SARAH).knowledge
    assert (item.id, item.text, item.data.topics) == (fact, "Runs a bakery", ["work", "business"])


@pytest.mark.parametrize(
    ("fields", "text", "expected"),
    [
        ({"role": "data analyst"}, "data scientist", "data scientist"),
        ({"expertise": ["pandas", "SQL"]}, "pandas, Polars, polars", ["pandas", "Polars"]),
    ],
    ids=["scalar", "list"],
)
def test_a_profile_field_keeps_its_id(
    mem: MemoryManager, fields: dict[str, object], text: str, expected: object
) -> None:
    mem.profile.update(user_id=SARAH, **fields)
    [name] = fields
    before = mem.get(user_id=SARAH).item("profile", name)
    assert before is not None

    mem.update(before.id, text, user_id=SARAH)

    after = mem.get(user_id=SARAH).item("profile", name)
    assert after is not None
    assert (after.id, after.value) == (before.id, expected)
    assert [e.op for e in mem.history(user_id=SARAH, item_id=before.id)] == ["add", "update"]


def test_a_rule_reworded_to_another_topic_keeps_its_id(mem: MemoryManager) -> None:
    mem.policies.update(user_id=SARAH, rules=["never use emojis", "cite sources"])
    emojis = next(i for i in mem.get(user_id=SARAH).items if i.text == "never use emojis")

    mem.update(emojis.id, "always answer in English", user_id=SARAH)

    assert mem.get(user_id=SARAH).policies.rules == ["always answer in English", "cite sources"]
    reworded = next(i for i in mem.get(user_id=SARAH).items if i.id == emojis.id)
    assert reworded.key != emojis.key  # keyed by its new topic: a later "never answer in English" replaces it


def test_saying_what_another_live_item_says_is_a_conflict(mem: MemoryManager) -> None:
    mem.policies.update(user_id=SARAH, rules=["never use emojis", "cite sources"])
    fact = mem.knowledge.add("Lives in Berlin", user_id=SARAH)
    other = mem.knowledge.add("Has a dog", user_id=SARAH)
    emojis = next(i for i in mem.get(user_id=SARAH).items if i.text == "never use emojis")
    before = mem.export_user(SARAH)

    with pytest.raises(ConflictError, match=other):
        mem.update(fact, "has a dog", user_id=SARAH)
    with pytest.raises(ConflictError):
        mem.update(emojis.id, "Cite sources", user_id=SARAH)

    assert mem.export_user(SARAH) == before


def test_the_same_value_again_changes_nothing(mem: MemoryManager) -> None:
    fact = mem.knowledge.add("Lives in Berlin", user_id=SARAH)
    assert mem.update(fact, "  Lives in Berlin ", user_id=SARAH) is None
    assert [e.op for e in mem.history(user_id=SARAH)] == ["add"]


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"text": "My API key is sk-proj-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"}, SecretError, "secret"),
        ({"text": "   "}, InvalidInputError, "empty"),
        ({"text": "x" * 20_000}, InvalidInputError, "the limit is"),
        ({"text": 42}, InvalidInputError, "must be a str"),
        ({"text": "bad \x00 byte"}, InvalidInputError, "control character"),
        ({"mood": "happy"}, InvalidInputError, "mood"),
        ({"text": "Lives in Rome", "topics": "not a list"}, InvalidInputError, "topics"),
        ({}, InvalidInputError, "text or fields"),
    ],
    ids=["secret", "empty", "too-long", "not-text", "nul", "unknown-field", "bad-field", "nothing"],
)
def test_bad_input_is_refused_and_changes_nothing(
    mem: MemoryManager, arguments: dict[str, object], error: type[Exception], message: str
) -> None:
    fact = mem.knowledge.add("Lives in Berlin", user_id=SARAH, topics=["home"])
    before = mem.export_user(SARAH)
    with pytest.raises(error, match=message):
        mem.update(fact, user_id=SARAH, **arguments)
    assert mem.export_user(SARAH) == before


def test_a_profile_item_takes_text_only(mem: MemoryManager) -> None:
    mem.profile.update(user_id=SARAH, role="analyst")
    role = mem.get(user_id=SARAH).item("profile", "role")
    assert role is not None
    with pytest.raises(InvalidInputError, match="no fields"):
        mem.update(role.id, "engineer", user_id=SARAH, topics=["x"])


def test_only_items_the_scope_sees_can_be_updated(mem: MemoryManager) -> None:
    marcos = mem.knowledge.add("Maintains billing", user_id="marco")
    reviewers = mem.knowledge.add("Prefers small diffs", user_id=SARAH, agent_id="reviewer")
    shared = mem.knowledge.add("Lives in Berlin", user_id=SARAH)
    closed = mem.knowledge.add("Lives in Leeds", user_id=SARAH)
    mem.forget(closed, user_id=SARAH)

    for item_id, agent_id in [(marcos, None), (reviewers, None), (reviewers, "planner"), (closed, None)]:
        with pytest.raises(NotFoundError):
            mem.update(item_id, "Hacked", user_id=SARAH, agent_id=agent_id)
    with pytest.raises(ScopeError):
        mem.update(shared, "x", user_id="")

    # An agent corrects a shared item where it lives: every agent sees one truth.
    mem.update(shared, "Lives in Munich", user_id=SARAH, agent_id="planner")
    mem.update(reviewers, "Prefers tiny diffs", user_id=SARAH, agent_id="reviewer")
    assert [i.text for i in mem.get(user_id=SARAH).knowledge] == ["Lives in Munich"]
    private = mem.get(user_id=SARAH, agent_id="reviewer").knowledge
    assert {(i.id, i.text, i.agent_id) for i in private} == {
        (shared, "Lives in Munich", None),
        (reviewers, "Prefers tiny diffs", "reviewer"),
    }
    assert mem.get(user_id="marco").knowledge[0].text == "Maintains billing"


def test_an_update_onto_the_key_of_an_expired_item_replaces_it(
    make_mem: Callable[..., MemoryManager],
) -> None:
    """An expired item left the memory: its key is free for an edit as for an add (the expired row is
    deleted, with its event), not a conflict and not a database error."""
    clock = ManualClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    mem = make_mem(clock=clock)
    tea = mem.knowledge.add("Likes tea", user_id=SARAH, expires_at=clock() + timedelta(days=1))
    coffee = mem.knowledge.add("Likes coffee", user_id=SARAH)
    clock.advance(timedelta(days=2))
    change = mem.update(coffee, "Likes tea", user_id=SARAH)
    assert change is not None
    assert (change.op, change.item_id, change.old, change.new) == (
        "update",
        coffee,
        {"text": "Likes coffee", "topics": []},
        {"text": "Likes tea", "topics": []},
    )
    assert [(i.id, i.text) for i in mem.get(user_id=SARAH).items] == [(coffee, "Likes tea")]
    assert [(e.op, e.reason) for e in mem.history(user_id=SARAH, item_id=tea)] == [
        ("add", None),
        ("delete", "expired"),
    ]
