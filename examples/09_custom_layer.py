"""09 - A layer of your own: goals with status tracking, next to the four built-in layers.

A coaching app wants the assistant to know what each user is working towards and how far they got.
Goals are not facts (a reached goal is not a wrong fact to close) and not a profile field: they get
a layer of their own, made of three parts and passed in with ``MemoryManager(layers=...)``:

- a dataclass schema: ``Goal`` (each field's docstring is what the extraction model reads);
- a Jinja extraction prompt: ``GoalsLayer.prompt``;
- a merge policy: the collection kind's (deduplicated entries with ids), plus one rule of its own -
  a goal said again with another status is the same goal, updated in place with the change in its
  history, instead of a second entry.

Nothing inside agentmem changes. The goals are extracted in the same single model call as the other
layers, rendered under their own ``<user_goals>`` tag within the token budget, reachable through the
memory tools and ``search``, and they survive export and import.

Offline, a scripted model plays the extraction model (run with AGENTMEM_MODEL for a real one, see
examples/_support.py).

Run: python examples/09_custom_layer.py
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from _support import OFFLINE, conversation, memory_model, show, show_changes, temp_db

from agentmem import MemoryItem, MemoryManager
from agentmem.layers import CollectionLayer
from agentmem.testing import ScriptedModel

Status = Literal["active", "done", "dropped"]


@dataclass
class Goal:
    """Something the user is working towards."""

    text: str
    """The goal as a short phrase in the user's words, e.g. "Run a half marathon"."""
    status: Status = "active"
    """Where the goal stands: active, done (reached) or dropped (given up)."""
    due: str | None = None
    """When the user wants to reach it, as YYYY-MM-DD, if they said."""


class GoalsLayer(CollectionLayer):
    name = "goals"
    tag = "user_goals"
    about = "goals the user works towards, with their status"
    default_schema = Goal
    default_max_items = 100
    similarity_threshold = 0.8  # "Run a half marathon" and "run a half-marathon" are one goal
    prompt = """\
Key "{{ layer }}": goals the user says they are working towards, and news about a stored goal: reached
("I finished ...") means status "done", given up ("I'm dropping ...") means "dropped". For news about a
stored goal, repeat that goal's text exactly, with the new status.
Entry fields:
{% for field in fields -%}
- {{ field.name }}: {{ field.description }}
{% endfor -%}
{% if items %}Stored goals:
{% for item in items -%}
{{ item.alias }}. {{ item.text }}
{% endfor -%}
{% endif %}"""

    def merged_value(self, old: MemoryItem, new: dict[str, Any]) -> dict[str, Any]:
        # The newest status wins; a due date, once given, stays unless a new one is given.
        return {**old.value, "status": new["status"], "due": new.get("due") or old.value.get("due")}

    def update_reason(self, old: MemoryItem, new: MemoryItem) -> str:
        before, after = old.value["status"], new.value["status"]
        return f"status: {before} -> {after}" if before != after else "repeated"

    def line(self, value: Mapping[str, Any], count: int, since: datetime) -> str:
        due = f" (due {value['due']})" if value.get("due") else ""
        return f"[{value['status']}] {value['text']}{due}"

    def eviction_order(self, item: MemoryItem) -> tuple[Any, ...]:
        # Over the cap, finished and dropped goals go before active ones, oldest first.
        return (item.value["status"] == "active", item.updated_at, item.id)


def extraction_model(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Offline stand-in for an extraction model following the prompts: one reply for every layer."""
    said = " ".join(text for role, text in conversation(messages) if role == "user")
    reply: dict[str, Any] = {"goals": []}
    if name := re.search(r"I'm ([A-Z]\w+)", said):
        reply["profile"] = {"name": name.group(1)}
    for text, due in re.findall(r"(?:goal is to|I want to) ([\w ]+?)(?: by (\d{4}-\d{2}-\d{2}))?[,.]", said):
        reply["goals"].append({"text": text[0].upper() + text[1:], "due": due or None})
    for text in re.findall(r"I finished (?:the )?([a-z ]+?)[!.]", said):
        reply["goals"].append({"text": "Run a " + text, "status": "done"})
    for text in re.findall(r"I'm dropping ([\w ]+?) for now", said):
        reply["goals"].append({"text": "Learn " + text, "status": "dropped"})
    return reply


def main() -> None:
    model = memory_model(extraction_model)
    mem = MemoryManager(db=temp_db(), layers={"goals": GoalsLayer(budget_share=0.5)}, **model)
    print("layers, in authority order:", ", ".join(mem.layers))

    first = mem.learn(
        [
            {
                "role": "user",
                "content": "I'm Dana. My goal is to run a half marathon by 2027-04-30, and I want "
                "to learn Spanish.",
            }
        ],
        user_id="dana",
    )
    print("\nturn 1 learned:")
    show_changes(first.all_changes)
    print(f"  model calls: {first.usage.model_calls}")  # one call for all five layers

    second = mem.learn(
        [{"role": "user", "content": "I finished the half marathon! I'm dropping spanish for now."}],
        user_id="dana",
    )
    print("\nturn 2 learned:")
    show_changes(second.all_changes)

    context = mem.compile(user_id="dana", query="training plan", token_budget=120)
    show("compiled for the system message (120 tokens at most):", context)

    tools = mem.tools(user_id="dana")
    print("\nthe model remembers a goal with the memory tools:")
    print(
        "  ",
        tools.dispatch("memory_remember", {"layer": "goals", "value": "Read 12 books", "due": "2027-12-31"}),
    )
    hits = mem.search("books", user_id="dana")
    print("  search 'books' ->", [(hit.item.layer, hit.item.text) for hit in hits])

    data = mem.export_user("dana")
    mem.delete_user("dana")
    mem.import_user(data)
    print("\nexport -> delete -> import -> export is identical:", mem.export_user("dana") == data)

    goals = mem.layer("goals").list(user_id="dana")
    marathon = next(goal for goal in goals if "marathon" in goal.text)
    history = mem.history(user_id="dana", item_id=marathon.id)
    print("the marathon goal's history:", [(event.op, event.reason) for event in history])

    if OFFLINE:  # a real model chooses its own words: check the exact outcome only offline
        assert first.usage.model_calls == 1
        extraction = model["model"]
        assert isinstance(extraction, ScriptedModel)
        request = extraction.requests[0]
        assert "goals the user says they are working towards" in request.messages[0]["content"]
        schema = request.response_format or {}
        assert "goals" in str(schema)  # the goals are part of the one response format
        assert [(g.data.text, g.data.status, g.data.due) for g in goals] == [
            ("Run a half marathon", "done", "2027-04-30"),
            ("Learn Spanish", "dropped", None),
            ("Read 12 books", "active", "2027-12-31"),
        ]
        assert [(e.op, e.reason) for e in history] == [("add", None), ("update", "status: active -> done")]
        assert "<user_goals>" in context
        assert "[done] Run a half marathon (due 2027-04-30)" in context
        assert mem.get(user_id="dana").profile.name == "Dana"
        assert [hit.item.layer for hit in hits] == ["goals"]
    assert mem.export_user("dana") == data
    mem.close()


if __name__ == "__main__":
    main()
