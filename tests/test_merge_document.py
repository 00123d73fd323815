"""The field-patch merge policy of the document layers: profile and policies.

One item per field. A new explicit value replaces the stored one; ``None`` and empty values never
erase; list fields merge without duplicates; an inferred value never overrides an explicit one; removal
is an explicit retraction. Every replaced value stays in the history.

The first half calls ``layer.merge`` directly and reads the operations it returns; the second half goes
through ``mem.profile`` / ``mem.policies`` on a real SQLite file and reads the stored state and history.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agentmem import Change, InvalidInputError, MemoryManager
from agentmem.layers import Add, Delete, FieldPatch, NewItem, Op, PoliciesLayer, ProfileLayer, Update
from agentmem.layers.document import DocumentLayer
from agentmem.layers.schema import display
from agentmem.records import MemoryItem

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=30)

profile = ProfileLayer()
policies = PoliciesLayer()


def stored(
    layer: DocumentLayer, key: str, value: Any, *, explicit: bool = True, confidence: float = 1.0
) -> MemoryItem:
    """A live field item as the store would hand it to ``merge``."""
    return MemoryItem(
        id=f"m_{layer.name}_{key}",
        layer=layer.name,
        key=key,
        text=display(value),
        value=value,
        user_id="sarah",
        agent_id=None,
        session_id=None,
        source="manual",
        confidence=confidence,
        count=1,
        explicit=explicit,
        created_at=T0,
        updated_at=T0,
    )


def the_update(ops: list[Op]) -> Update:
    """The single operation of ``ops``, which must be an Update."""
    assert len(ops) == 1, ops
    assert isinstance(ops[0], Update), ops
    return ops[0]


# ---- profile, pure merge -------------------------------------------------------------------------


def test_a_first_value_is_added_as_a_new_item() -> None:
    ops = profile.merge([], FieldPatch({"role": "data scientist"}), NOW)

    assert ops == [
        Add(
            NewItem(
                key="role",
                value="data scientist",
                text="data scientist",
                line="role: data scientist",
                explicit=True,
            )
        )
    ]


def test_a_new_explicit_value_replaces_the_old_one() -> None:
    old = stored(profile, "role", "data scientist")

    update = the_update(profile.merge([old], FieldPatch({"role": "ML engineer"}), NOW))

    assert update.target == old
    assert (update.value, update.text, update.line) == ("ML engineer", "ML engineer", "role: ML engineer")
    assert update.explicit is True
    assert update.count == old.count


@pytest.mark.parametrize(
    ("key", "empty"),
    [("role", None), ("role", ""), ("languages", [])],
    ids=["None", "empty string", "empty list"],
)
def test_empty_values_never_erase_a_field(key: str, empty: Any) -> None:
    old = stored(profile, key, ["English"] if key == "languages" else "data scientist")

    assert profile.merge([old], FieldPatch({key: empty}), NOW) == []


def test_empty_values_do_not_create_a_field_either() -> None:
    assert profile.merge([], FieldPatch({"name": None, "company": "", "expertise": []}), NOW) == []


def test_list_fields_gain_only_new_elements_ignoring_case_and_punctuation() -> None:
    old = stored(profile, "expertise", ["Python", "SQL"])

    update = the_update(profile.merge([old], FieldPatch({"expertise": ["python!", "Rust", "sql"]}), NOW))

    # The stored spelling of known elements wins; new elements are appended in the order given.
    assert update.value == ["Python", "SQL", "Rust"]
    assert update.line == "expertise: Python, SQL, Rust"


def test_a_list_already_holding_every_element_is_left_alone() -> None:
    old = stored(profile, "languages", ["English", "German"])

    assert profile.merge([old], FieldPatch({"languages": ["GERMAN", "english."]}), NOW) == []


def test_repeated_elements_within_one_update_are_kept_once() -> None:
    old = stored(profile, "languages", ["English"])

    update = the_update(profile.merge([old], FieldPatch({"languages": ["French", "french", "FRENCH!"]}), NOW))

    assert update.value == ["English", "French"]


def test_a_first_list_value_is_stored_without_duplicates() -> None:
    ops = profile.merge([], FieldPatch({"languages": ["English", "english", "French"]}), NOW)

    assert len(ops) == 1
    assert isinstance(ops[0], Add)
    assert ops[0].item.value == ["English", "French"]


def test_an_inferred_value_never_overrides_an_explicit_one() -> None:
    role = stored(profile, "role", "data scientist", explicit=True)
    languages = stored(profile, "languages", ["English"], explicit=True)
    guess = FieldPatch({"role": "analyst", "languages": ["Spanish"]}, explicit=False)

    # Not even a list field gains inferred elements: the user said what they speak.
    assert profile.merge([role, languages], guess, NOW) == []


def test_an_inferred_value_fills_a_field_nobody_set_and_is_marked_inferred() -> None:
    (op,) = profile.merge([], FieldPatch({"location": "Berlin"}, explicit=False, confidence=0.6), NOW)

    assert isinstance(op, Add)
    assert (op.item.value, op.item.explicit, op.item.confidence) == ("Berlin", False, 0.6)


def test_an_explicit_value_overrides_an_inferred_one() -> None:
    guess = stored(profile, "location", "Berlin", explicit=False, confidence=0.6)

    update = the_update(profile.merge([guess], FieldPatch({"location": "Munich"}), NOW))

    assert (update.value, update.explicit, update.confidence) == ("Munich", True, 1.0)


def test_confirming_an_inferred_value_explicitly_marks_it_explicit() -> None:
    guess = stored(profile, "location", "Berlin", explicit=False)

    update = the_update(profile.merge([guess], FieldPatch({"location": "Berlin"}), NOW))

    assert (update.value, update.explicit) == ("Berlin", True)


def test_a_newer_inference_replaces_an_older_inference() -> None:
    guess = stored(profile, "company", "Acme", explicit=False)

    update = the_update(profile.merge([guess], FieldPatch({"company": "Globex"}, explicit=False), NOW))

    assert (update.value, update.explicit) == ("Globex", False)


@pytest.mark.parametrize("explicit", [True, False], ids=["explicit", "inferred"])
def test_the_same_value_again_changes_nothing(explicit: bool) -> None:
    old = stored(profile, "name", "Sarah", explicit=explicit)

    assert profile.merge([old], FieldPatch({"name": "Sarah"}, explicit=explicit), NOW) == []


def test_remove_deletes_the_field() -> None:
    old = stored(profile, "company", "Acme")

    assert profile.merge([old], FieldPatch({}, remove=("company",)), NOW) == [Delete(old, reason="removed")]


def test_an_inferred_removal_deletes_only_inferred_fields() -> None:
    said = stored(profile, "company", "Acme", explicit=True)
    guessed = stored(profile, "location", "Berlin", explicit=False)

    ops = profile.merge([said, guessed], FieldPatch({}, remove=("company", "location"), explicit=False), NOW)

    assert ops == [Delete(guessed, reason="removed")]


def test_removing_a_field_that_is_not_set_does_nothing() -> None:
    assert profile.merge([], FieldPatch({}, remove=("company",)), NOW) == []


def test_each_field_of_a_patch_is_merged_on_its_own() -> None:
    name = stored(profile, "name", "Sarah")
    role = stored(profile, "role", "analyst", explicit=False)
    patch = FieldPatch({"name": "Sarah", "role": "data scientist", "company": "Acme", "location": None})

    ops = profile.merge([name, role], patch, NOW)

    # name: unchanged; role: explicit over inferred; company: new; location: None leaves it unset.
    assert [(type(op).__name__, op.item.key if isinstance(op, Add) else op.target.key) for op in ops] == [
        ("Update", "role"),
        ("Add", "company"),
    ]


# ---- policies, pure merge: the same field-patch policy ---------------------------------------------


def test_a_newer_explicit_policy_supersedes_the_older() -> None:
    old = stored(policies, "tone", "formal")

    update = the_update(policies.merge([old], FieldPatch({"tone": "friendly"}), NOW))

    assert (update.target, update.value, update.line) == (old, "friendly", "tone: friendly")


def test_an_inferred_policy_never_overrides_an_explicit_one() -> None:
    old = stored(policies, "response_style", "concise")

    assert policies.merge([old], FieldPatch({"response_style": "detailed"}, explicit=False), NOW) == []


def test_an_explicit_policy_overrides_an_inferred_one() -> None:
    old = stored(policies, "format", "bullet points", explicit=False)

    update = the_update(policies.merge([old], FieldPatch({"format": "no markdown"}), NOW))

    assert (update.value, update.explicit) == ("no markdown", True)


def test_each_rule_is_an_item_of_its_own_keyed_by_its_topic() -> None:
    emojis = stored(policies, "rules:emojis", "Never use emojis")

    ops = policies.merge([emojis], FieldPatch({"rules": ["never use emojis!", "Cite sources"]}), NOW)

    # The restated rule is no change; the new one is an item of its own.
    assert len(ops) == 1
    assert isinstance(ops[0], Add)
    item = ops[0].item
    assert (item.key, item.value, item.line) == ("rules:cite sources", "Cite sources", "rule: Cite sources")


def test_a_rule_about_the_same_thing_replaces_the_older_one() -> None:
    emojis = stored(policies, "rules:emojis", "Never use emojis")
    sources = stored(policies, "rules:cite sources", "Cite sources")

    update = the_update(policies.merge([emojis, sources], FieldPatch({"rules": ["Always use emojis"]}), NOW))

    assert (update.target, update.value, update.line) == (
        emojis,
        "Always use emojis",
        "rule: Always use emojis",
    )


def test_an_inferred_rule_never_overrides_an_explicit_one() -> None:
    emojis = stored(policies, "rules:emojis", "Never use emojis")

    assert policies.merge([emojis], FieldPatch({"rules": ["Use emojis"]}, explicit=False), NOW) == []


def test_an_explicit_retraction_removes_one_rule_or_all_of_them() -> None:
    tone = stored(policies, "tone", "formal")
    emojis = stored(policies, "rules:emojis", "Never use emojis")
    sources = stored(policies, "rules:cite sources", "Cite sources")
    current = [tone, emojis, sources]

    assert policies.merge(current, FieldPatch({}, remove=("rules:emojis",)), NOW) == [
        Delete(emojis, reason="removed")
    ]
    assert policies.merge(current, FieldPatch({}, remove=("rules",)), NOW) == [
        Delete(emojis, reason="removed"),
        Delete(sources, reason="removed"),
    ]


def test_rules_are_capped_and_the_oldest_untouched_ones_go() -> None:
    rules = [f"Rule about topic {i}" for i in range(50)]
    current = [stored(policies, policies.element_key("rules", rule), rule) for rule in rules]

    ops = policies.merge(current, FieldPatch({"rules": ["Rule about topic 0", "A new rule"]}), NOW)

    # Topic 0 was restated (no change), so topic 1 is the oldest untouched rule.
    assert [type(op).__name__ for op in ops] == ["Add", "Delete"]
    assert ops[1] == Delete(current[1], reason="evicted: over the cap of 50 rules")


# ---- through the API, on a real SQLite file -----------------------------------------------------------


def events_of(changes: list[Change]) -> list[tuple[str, str, Any, Any]]:
    return [(c.op, c.item_id, c.old, c.new) for c in changes]


def live_item(mem: MemoryManager, layer: str, key: str) -> MemoryItem:
    item = mem.get(user_id="sarah").item(layer, key)
    assert item is not None, f"no live {layer}.{key}"
    return item


def test_a_replaced_profile_value_stays_in_the_history(mem: MemoryManager) -> None:
    (added,) = mem.profile.update(user_id="sarah", role="data scientist")
    (updated,) = mem.profile.update(user_id="sarah", role="ML engineer")

    assert mem.profile.get(user_id="sarah").role == "ML engineer"
    assert updated.item_id == added.item_id  # one item per field, updated in place
    history = mem.history(user_id="sarah", item_id=added.item_id)
    assert [(e.op, e.old, e.new) for e in history] == [
        ("add", None, "data scientist"),
        ("update", "data scientist", "ML engineer"),
    ]


def test_none_and_empty_values_leave_the_profile_as_it_is(mem: MemoryManager) -> None:
    mem.profile.update(user_id="sarah", name="Sarah", languages=["English"])

    assert mem.profile.update(user_id="sarah", name=None) == []
    assert mem.profile.update(user_id="sarah", name="   ", languages=[]) == []

    state = mem.profile.get(user_id="sarah")
    assert (state.name, state.languages) == ("Sarah", ["English"])
    assert len(mem.history(user_id="sarah")) == 2


def test_profile_lists_merge_across_updates(mem: MemoryManager) -> None:
    mem.profile.update(user_id="sarah", expertise=["pandas", "SQL"])
    (change,) = mem.profile.update(user_id="sarah", expertise=["Pandas", "dbt"])

    assert (change.old, change.new) == (["pandas", "SQL"], ["pandas", "SQL", "dbt"])
    assert mem.profile.get(user_id="sarah").expertise == ["pandas", "SQL", "dbt"]


def test_inferred_policies_yield_to_explicit_ones(mem: MemoryManager) -> None:
    mem.policies.update(user_id="sarah", tone="formal")

    assert mem.policies.update(user_id="sarah", tone="casual", explicit=False) == []
    assert mem.policies.get(user_id="sarah").tone == "formal"

    # The other way round, the explicit statement wins and the item becomes explicit.
    mem.policies.update(user_id="sarah", response_style="detailed", explicit=False)
    assert live_item(mem, "policies", "response_style").explicit is False
    mem.policies.update(user_id="sarah", response_style="concise")
    item = live_item(mem, "policies", "response_style")
    assert (item.value, item.explicit) == ("concise", True)


def test_removing_a_policy_deletes_it_and_keeps_its_history(mem: MemoryManager) -> None:
    (added,) = mem.policies.update(user_id="sarah", tone="formal")

    (removed,) = mem.policies.remove("tone", user_id="sarah")

    assert (removed.op, removed.item_id, removed.old, removed.new) == (
        "delete",
        added.item_id,
        "formal",
        None,
    )
    assert mem.policies.get(user_id="sarah").tone is None
    assert mem.get(user_id="sarah").item("policies", "tone") is None
    history = mem.history(user_id="sarah", item_id=added.item_id)
    assert [(e.op, e.reason) for e in history] == [("add", None), ("delete", "removed")]
    # Removing it again is a no-op, not an error.
    assert mem.policies.remove("tone", user_id="sarah") == []


def test_withdrawing_one_rule_leaves_the_others(mem: MemoryManager) -> None:
    emojis, sources = mem.policies.update(user_id="sarah", rules=["Never use emojis", "Cite sources"])

    (removed,) = mem.policies.withdraw("rules", "never use emojis!", user_id="sarah")

    assert (removed.op, removed.item_id, removed.old) == ("delete", emojis.item_id, "Never use emojis")
    assert mem.policies.get(user_id="sarah").rules == ["Cite sources"]
    assert [(e.op, e.reason) for e in mem.history(user_id="sarah", item_id=emojis.item_id)] == [
        ("add", None),
        ("delete", "removed"),
    ]
    assert sources.item_id == live_item(mem, "policies", "rules:cite sources").id
    with pytest.raises(InvalidInputError, match="not a keyed list"):
        mem.policies.withdraw("tone", "formal", user_id="sarah")


def test_each_rule_has_its_own_id_provenance_and_history(mem: MemoryManager) -> None:
    (first,) = mem.policies.update(user_id="sarah", rules=["Never use emojis"], session_id="s1")
    (second,) = mem.policies.update(user_id="sarah", rules=["Cite sources"], session_id="s2")
    (changed,) = mem.policies.update(user_id="sarah", rules=["Always use emojis"])

    assert first.item_id != second.item_id
    assert (changed.op, changed.item_id) == ("update", first.item_id)  # same topic: the same rule
    assert mem.policies.get(user_id="sarah").rules == ["Always use emojis", "Cite sources"]
    rule = live_item(mem, "policies", "rules:cite sources")
    assert (rule.session_id, rule.source) == ("s2", "manual")


def test_an_agents_rule_adds_to_the_shared_rules_and_wins_only_on_its_topic(mem: MemoryManager) -> None:
    mem.policies.update(user_id="sarah", rules=["Never use emojis", "Never use bullet points"])
    mem.policies.update(user_id="sarah", agent_id="coder", rules=["Always use bullet points"])

    assert mem.policies.get(user_id="sarah", agent_id="coder").rules == [
        "Never use emojis",
        "Always use bullet points",
    ]
    assert mem.policies.get(user_id="sarah").rules == ["Never use emojis", "Never use bullet points"]
    context = mem.compile(user_id="sarah", agent_id="coder")
    assert "rule: Never use emojis" in context
    assert "rule: Always use bullet points" in context
    assert "Never use bullet points" not in context


def test_every_document_change_writes_exactly_one_event_in_order(mem: MemoryManager) -> None:
    changes: list[Change] = []
    changes += mem.profile.update(user_id="sarah", name="Sarah", role="analyst", explicit=False)
    changes += mem.profile.update(user_id="sarah", role="data scientist", languages=["English"])
    changes += mem.profile.update(user_id="sarah", role="data scientist")  # nothing new
    changes += mem.policies.update(user_id="sarah", tone="friendly")
    changes += mem.policies.update(user_id="sarah", tone="blunt", explicit=False)  # ignored
    changes += mem.profile.remove("name", user_id="sarah")

    assert [c.op for c in changes] == ["add", "add", "update", "add", "add", "delete"]
    history = mem.history(user_id="sarah")
    assert [(e.op, e.item_id, e.old, e.new) for e in history] == events_of(changes)


def test_writing_the_same_update_twice_changes_nothing_the_second_time(mem: MemoryManager) -> None:
    patch: dict[str, Any] = {"name": "Sarah", "languages": ["English", "German"], "company": None}
    first = mem.profile.update(user_id="sarah", **patch)
    events = len(mem.history(user_id="sarah"))

    assert mem.profile.update(user_id="sarah", **patch) == []
    assert len(first) == 2
    assert len(mem.history(user_id="sarah")) == events


def test_a_list_field_never_grows_past_the_input_limit(mem: MemoryManager) -> None:
    for start in range(0, 80, 20):
        mem.profile.update(user_id="u", expertise=[f"skill {i}" for i in range(start, start + 20)])
    expertise = mem.get(user_id="u").profile.expertise
    assert len(expertise) == 50
    assert expertise[-1] == "skill 79"  # the newest stay; the oldest are in the history
    first = mem.history(user_id="u")[0]
    assert first.new[0] == "skill 0"


def test_an_export_from_before_keyed_rules_imports_one_item_per_rule(mem: MemoryManager) -> None:
    mem.policies.update(user_id="sarah", tone="formal", rules=["Never use emojis", "Cite sources"])
    data = mem.export_user("sarah")
    mem.delete_user("sarah")
    rules = [item for item in data["items"] if item["key"].startswith("rules:")]
    # Before schema v6 the rules were one item holding a list.
    legacy = {**rules[0], "key": "rules", "value": ["Never use emojis", "Cite sources"]}
    legacy.update(text="Never use emojis, Cite sources", line="rules: Never use emojis, Cite sources")
    old = {**data, "items": [i for i in data["items"] if i not in rules] + [legacy]}

    assert mem.import_user(old) == 3

    state = mem.get(user_id="sarah")
    assert state.policies.rules == ["Never use emojis", "Cite sources"]
    keys = sorted(i.key for i in state.items if i.key.startswith("rules"))
    assert keys == ["rules:cite sources", "rules:emojis"]
    assert len({i.id for i in state.items}) == 3
    assert "rule: Cite sources" in mem.compile(user_id="sarah")
