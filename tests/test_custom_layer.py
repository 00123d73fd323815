"""A layer of one's own works end to end with no change inside agentmem: extracted in the same model
call, merged by its own policy, compiled under its own tag within the budget, reachable through the
memory tools, search and its handle, and kept by export/import. Also: a document-kind layer, the offline
hook, prompt precedence, replacing a built-in layer, and the configuration errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pytest

from agentmem import ConfigurationError, InvalidInputError, LayerConfig, MemoryItem, MemoryManager
from agentmem.layers import CollectionLayer, DocumentLayer, KnowledgeLayer
from agentmem.testing import ScriptedModel
from agentmem.tokens import default_counter

USER = "dana"


@dataclass
class Goal:
    """Something the user is working towards."""

    text: str
    """The goal, e.g. "Run a half marathon"."""
    status: Literal["active", "done", "dropped"] = "active"
    """active, done or dropped."""


class GoalsLayer(CollectionLayer):
    name = "goals"
    tag = "user_goals"
    about = "goals with their status"
    default_schema = Goal
    prompt = """Key "{{ layer }}": GOALS PROMPT.
{% for f in fields %}- {{ f.name }}: {{ f.description }}
{% endfor %}{% for item in items %}{{ item.alias }}. {{ item.text }}
{% endfor %}"""

    def merged_value(self, old: MemoryItem, new: dict[str, Any]) -> dict[str, Any]:
        return {**old.value, "status": new["status"]}

    def update_reason(self, old: MemoryItem, new: MemoryItem) -> str:
        return f"status: {old.value['status']} -> {new.value['status']}"

    def line(self, value: Mapping[str, Any], count: int, since: datetime) -> str:
        return f"[{value['status']}] {value['text']}"


@dataclass
class Diet:
    """What the user eats."""

    kind: str | None = None
    """e.g. "vegetarian"."""
    allergies: list[str] = field(default_factory=list)
    """Food allergies."""


class DietLayer(DocumentLayer):
    name = "diet"
    tag = "user_diet"
    about = "what the user eats"
    default_schema = Diet
    prompt = 'Key "{{ layer }}": DIET PROMPT.{% for item in items %} {{ item.text }}{% endfor %}'

    def offline(self, turns: Sequence[Mapping[str, str]], found: Any) -> Any:
        said = " ".join(t["content"] for t in turns if t["role"] == "user")
        return {"kind": "vegetarian"} if "vegetarian" in said else None


Factory = Callable[..., MemoryManager]


@pytest.fixture
def make(make_mem: Factory) -> Factory:
    """``make(model, **options)``: a manager with the goals and diet layers unless told otherwise."""

    def factory(model: Any = None, **options: Any) -> MemoryManager:
        options.setdefault("layers", {"goals": GoalsLayer(), "diet": DietLayer()})
        return make_mem(model=model, **options)

    return factory


TURN = [{"role": "user", "content": "I'm Dana, I'm vegetarian. My goal is to run a half marathon."}]
REPLY = {
    "profile": {"name": "Dana"},
    "diet": {"kind": "vegetarian"},
    "goals": [{"text": "Run a half marathon"}],
}


def test_the_layers_come_after_the_built_in_ones_in_the_order_given(make: Factory) -> None:
    mem = make()
    assert list(mem.layers) == ["policies", "profile", "knowledge", "feedback", "goals", "diet"]


def test_one_model_call_extracts_every_layer_including_the_custom_ones(make: Factory) -> None:
    model = ScriptedModel([REPLY])
    mem = make(model)

    result = mem.learn(TURN, user_id=USER)

    assert result.usage.model_calls == 1
    request = model.requests[0]
    prompt = str(request.messages[0]["content"])
    assert "GOALS PROMPT" in prompt
    assert "DIET PROMPT" in prompt
    fmt = request.response_format
    assert fmt is not None
    properties = fmt["json_schema"]["schema"]["properties"]
    assert {"goals", "diet", "profile"} <= set(properties)
    assert [(c.op, c.key) for c in result.changes["goals"]] == [("add", "run a half marathon")]
    state = mem.get(user_id=USER)
    assert state["diet"] == Diet(kind="vegetarian")
    assert [(g.data.text, g.data.status) for g in state["goals"]] == [("Run a half marathon", "active")]


def test_per_layer_extraction_makes_one_call_per_layer(make: Factory) -> None:
    model = ScriptedModel(lambda messages: REPLY)
    mem = make(model, extraction="per_layer")

    mem.learn(TURN, user_id=USER)

    assert len(model.requests) == 6
    goals_call = next(r for r in model.requests if "GOALS PROMPT" in str(r.messages[0]["content"]))
    assert goals_call.response_format is not None
    assert set(goals_call.response_format["json_schema"]["schema"]["properties"]) == {"goals"}


def test_the_layers_own_merge_policy_updates_the_status_in_place(make: Factory) -> None:
    model = ScriptedModel([REPLY, {"goals": [{"text": "Run a half marathon", "status": "done"}]}])
    mem = make(model)
    (added,) = mem.learn(TURN, user_id=USER).changes["goals"]

    (updated,) = mem.learn([{"role": "user", "content": "I ran the half marathon!"}], user_id=USER).changes[
        "goals"
    ]

    assert (updated.op, updated.item_id) == ("update", added.item_id)
    history = mem.history(user_id=USER, item_id=added.item_id)
    assert [(e.op, e.reason) for e in history] == [("add", None), ("update", "status: active -> done")]
    assert "1. Run a half marathon" in str(model.requests[1].messages[0]["content"])  # shown by number


def test_compile_renders_the_layer_under_its_own_tag_within_the_budget(make: Factory) -> None:
    mem = make(layers={"goals": GoalsLayer(budget_share=0.5)})
    goals = mem.layer("goals")
    for i in range(40):
        goals.add(f"Goal number {i} about training", user_id=USER)
    mem.profile.update(user_id=USER, name="Dana")

    full = mem.compile(user_id=USER)
    budgeted = mem.compile(user_id=USER, query="training", token_budget=120)

    root = ET.fromstring(f"<m>{full}</m>")
    assert [child.tag for child in root] == ["user_profile", "user_goals"]
    assert "- [active] Goal number 0 about training" in full
    count = default_counter()
    assert count(budgeted) <= 120
    assert "name: Dana" in budgeted
    goals_part = budgeted[budgeted.index("<user_goals>") :]
    assert count(goals_part) <= 60  # budget_share=0.5 of 120
    assert budgeted == mem.compile(user_id=USER, query="training", token_budget=120)


def test_the_memory_tools_and_search_reach_the_layer(make: Factory) -> None:
    mem = make()
    tools = mem.tools(user_id=USER)
    remember = tools.definitions[0]["function"]
    assert "'goals' (goals with their status)" in remember["description"]
    assert "'diet' (what the user eats; fields: kind, allergies)" in remember["description"]
    assert remember["parameters"]["properties"]["status"]["enum"] == ["active", "done", "dropped"]

    tools.dispatch("memory_remember", {"layer": "goals", "value": "Learn Spanish", "status": "dropped"})
    tools.dispatch("memory_remember", {"layer": "diet", "field": "allergies", "value": "peanuts"})
    (hit,) = mem.search("spanish", user_id=USER)
    assert (hit.item.layer, hit.item.value) == ("goals", {"text": "Learn Spanish", "status": "dropped"})
    assert mem.search("spanish", user_id=USER, layers=["knowledge"]) == []

    tools.dispatch("memory_update", {"item_id": hit.item.id, "value": "Learn Spanish to B1"})
    (goal,) = mem.layer("goals").list(user_id=USER)
    assert (goal.data.text, goal.data.status) == ("Learn Spanish to B1", "dropped")  # other fields kept
    assert goal.id == hit.item.id  # updated in place
    assert mem.get(user_id=USER)["diet"].allergies == ["peanuts"]
    tools.dispatch("memory_forget", {"item_id": goal.id})
    assert mem.layer("goals").list(user_id=USER) == []
    assert [(c.op, c.layer) for c in tools.changes] == [
        ("add", "goals"),
        ("add", "diet"),
        ("update", "goals"),
        ("delete", "goals"),
    ]


def test_export_and_import_keep_the_layer_exactly(make: Factory, tmp_path: Path) -> None:
    mem = make(ScriptedModel([REPLY]))
    mem.learn(TURN, user_id=USER)
    data = mem.export_user(USER)

    mem.delete_user(USER)
    mem.import_user(data)

    assert mem.export_user(USER) == data
    other = MemoryManager(db=f"sqlite:///{tmp_path / 'other.db'}")  # without the custom layers
    with pytest.raises(InvalidInputError, match="unknown layer 'goals'"):
        other.import_user(data)
    other.close()


def test_the_offline_hook_extracts_without_a_model(make: Factory) -> None:
    mem = make()

    result = mem.learn(TURN, user_id=USER)

    assert [(c.key, c.new) for c in result.changes["diet"]] == [("kind", "vegetarian")]
    assert result.changes["goals"] == []  # no offline hook: nothing without a model
    assert result.usage.model_calls == 0


def test_a_prompts_dir_file_wins_over_the_layers_own_prompt(make: Factory, tmp_path: Path) -> None:
    (tmp_path / "goals.jinja").write_text('Key "{{ layer }}": FROM THE FOLDER.')
    model = ScriptedModel(lambda messages: {})
    mem = make(model, prompts_dir=tmp_path)

    mem.learn(TURN, user_id=USER)

    prompt = str(model.requests[0].messages[0]["content"])
    assert "FROM THE FOLDER" in prompt
    assert "GOALS PROMPT" not in prompt


def test_a_built_in_layer_can_be_replaced_by_a_subclass(make: Factory) -> None:
    class TerseKnowledge(KnowledgeLayer):
        def line(self, value: Mapping[str, Any], count: int, since: datetime) -> str:
            return str(value["text"]).upper()

    mem = make(layers={"knowledge": TerseKnowledge(max_items=2)})
    for text in ("one fact", "two facts", "three facts"):
        mem.knowledge.add(text, user_id=USER)

    assert mem.compile(user_id=USER) == "<user_knowledge>\n- THREE FACTS\n- TWO FACTS\n</user_knowledge>"


def test_layer_handles_and_the_typed_snapshot(make: Factory) -> None:
    mem = make()
    assert mem.layer("profile") is mem.profile
    mem.layer("diet").update(user_id=USER, kind="vegan", allergies=["nuts"])
    assert mem.layer("diet").get(user_id=USER) == Diet(kind="vegan", allergies=["nuts"])
    assert mem.get(user_id=USER).layers["diet"] == Diet(kind="vegan", allergies=["nuts"])
    with pytest.raises(ConfigurationError, match="unknown layer 'nope'"):
        mem.layer("nope")


def test_configuration_mistakes_are_named(db_url: str) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"layers": {"targets": GoalsLayer()}}, "is a layer named 'goals'"),
        ({"layers": {"goals": LayerConfig()}}, "unknown layer 'goals'"),
        ({"layers": {"goals": object()}}, "must be a LayerConfig or a Layer"),
        (
            {"layers": {"knowledge": KnowledgeLayer()}, "knowledge_extraction_prompt": "x"},
            "configure it there",
        ),
    ]
    for options, message in cases:
        with pytest.raises(ConfigurationError, match=message):
            MemoryManager(db=db_url, **options)


def test_a_layer_class_is_checked_when_it_is_defined_or_made() -> None:
    with pytest.raises(ConfigurationError, match="layer name 'My Goals'"):
        type("Bad", (GoalsLayer,), {"name": "My Goals"})
    with pytest.raises(ConfigurationError, match="not a usable XML element name"):
        type("Bad", (GoalsLayer,), {"tag": "user goals"})

    @dataclass
    class NoText:
        title: str = ""

    with pytest.raises(ConfigurationError, match="needs a `text: str` field"):
        GoalsLayer(schema=NoText)
    with pytest.raises(ConfigurationError, match="unexpected keyword"):
        GoalsLayer(colour="red")
