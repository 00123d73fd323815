"""08 - Advanced customization: your own schema, your own prompt, per-layer switches.

A language-learning app configures the memory for its students:

- profile: a custom ``StudentProfile`` dataclass; each field's docstring is what the model reads;
- policies: a custom extraction prompt that saves only explicit "I prefer / always / never" rules;
- knowledge: capped at 3 live facts, and at most 40% of a token budget;
- feedback: written by the app's thumbs-up/down buttons, so never extracted (``extract=False``) and
  never shown to the model (``inject=False``) - it is for the app's analytics.

Offline, a scripted model plays the extraction model, so we can look at the exact request it got.

Run: python examples/08_advanced_customization.py   (offline; set AGENTMEM_MODEL for a real model, see
examples/_support.py)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from _support import OFFLINE, conversation, memory_model, show, show_changes, temp_db

from agentmem import LayerConfig, MemoryManager
from agentmem.testing import ScriptedModel


@dataclass
class StudentProfile:
    """A student of a foreign language."""

    name: str | None = None
    """The student's first name."""
    native_language: str | None = None
    """The language the student grew up speaking."""
    level: Literal["A1", "A2", "B1", "B2", "C1", "C2"] | None = None
    """The student's CEFR level in the language they are learning."""
    interests: list[str] = field(default_factory=list)
    """Topics the student likes to read and talk about, for choosing texts."""


# A Jinja template for the policies section of the extraction prompt (variables: layer, fields, items).
POLICIES_PROMPT = """\
Key "{{ layer }}": save a rule ONLY when the student says "I prefer", "always" or "never".
A one-off request ("shorter this time") or a mood is not a rule: leave it out.
Fields:
{% for f in fields %}- {{ f.name }}: {{ f.description }}
{% endfor %}{% if items %}Stored now:
{% for item in items %}- {{ item.text }}
{% endfor %}{% endif %}"""


def extraction_model(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Offline stand-in for an extraction model that follows the prompt above."""
    said = " ".join(text for role, text in conversation(messages) if role == "user")
    profile = {
        "name": re.search(r"I'm ([A-Z]\w+)", said),
        "native_language": re.search(r"speaking ([A-Z]\w+)", said),
        "level": re.search(r"\b([ABC][12])\b", said),
    }
    found = {key: match.group(1) for key, match in profile.items() if match}
    rules = re.findall(r"\b(?:I )?((?:prefer|always|never) [^.!?]+)", said, flags=re.IGNORECASE)
    return {
        "profile": {**found, "interests": re.findall(r"I love (\w+)", said)},
        "policies": {"set": {"rules": [rule[0].lower() + rule[1:] for rule in rules]}},
    }


def main() -> None:
    mem = MemoryManager(
        db=temp_db(),
        profile_schema=StudentProfile,
        policies_extraction_prompt=POLICIES_PROMPT,
        layers={
            "knowledge": LayerConfig(max_items=3, budget_share=0.4),
            "feedback": LayerConfig(extract=False, inject=False),
        },
        **memory_model(extraction_model),
    )
    lesson = [
        {"role": "user", "content": "Ciao! I'm Sofia, I grew up speaking Italian. B1 level; I love cooking."},
        {"role": "assistant", "content": "Benvenuta, Sofia! Shall we start with a recipe text?"},
        {"role": "user", "content": "I prefer short texts over long ones. Shorter answers today, please."},
    ]
    result = mem.learn(lesson, user_id="sofia", session_id="lesson-1")
    print("Learned:")
    show_changes(result.all_changes)

    state = mem.get(user_id="sofia")
    assert isinstance(state.profile, StudentProfile)  # typed by your schema
    if OFFLINE:  # look at the request the (scripted) model received
        model = mem.model
        assert isinstance(model, ScriptedModel)
        request = model.requests[-1]
        prompt = request.messages[0]["content"]
        schema = (request.response_format or {})["json_schema"]["schema"]  # native JSON Schema mode
        assert "ONLY when the student says" in prompt  # our policies prompt, in the extraction request
        assert "The student's CEFR level" in prompt  # our field docstring (the schema is structure only)
        assert sorted(schema["properties"]) == ["knowledge", "policies", "profile"]  # no feedback
        profile = schema["properties"]["profile"]  # each part written in place, no $defs to look up
        print(
            f"\nProfile fields in the request's response_format JSON schema: {sorted(profile['properties'])}"
        )
        section = prompt[prompt.index('Key "policies"') :].split("\n\n")[0]
        show("The policies section of the extraction prompt:", section)
        assert state.profile.level == "B1"
        assert state.policies.rules == ["prefer short texts over long ones"]
        assert state.policies.response_style is None  # "shorter answers today" was a one-off request

    # The knowledge cap: a fourth fact expires the least recently updated one (kept in history).
    for text in ["Reads a cookbook in Spanish", "Has a trip to Madrid in May", "Watches Spanish series"]:
        mem.knowledge.add(text, user_id="sofia", topics=["learning"])
    mem.knowledge.add("Passed the A2 exam last year", user_id="sofia")
    live = [fact.text for fact in mem.get(user_id="sofia").knowledge]
    expired = [e.old["text"] for e in mem.history(user_id="sofia") if e.op == "expire"]
    print(f"\nLive facts ({len(live)}): {live}\nExpired by the cap: {expired}")
    assert len(live) == 3
    assert "Passed the A2 exam last year" in live
    assert expired
    if OFFLINE:  # a real model may also have extracted facts from the lesson, and those expire first
        assert expired == ["Reads a cookbook in Spanish"]

    # Feedback from the app's buttons is stored, but never shown to the model.
    mem.feedback.add("Thumbs up on the recipe text", user_id="sofia", sentiment="positive")
    assert len(mem.get(user_id="sofia").feedback) == 1

    full, budgeted = mem.compile(user_id="sofia"), mem.compile(user_id="sofia", token_budget=90)
    show("Context, no budget:", full)
    show("Context, 90 tokens (knowledge may take 40%):", budgeted)
    assert "<user_feedback>" not in full
    assert budgeted.count("\n- ") < full.count("\n- ")  # fewer facts fit; profile and policies stay
    mem.close()


if __name__ == "__main__":
    main()
