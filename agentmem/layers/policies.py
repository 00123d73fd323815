"""Policies: how the user wants to be answered. Explicit beats inferred; a withdrawal removes.

The scalar fields (``response_style``, ``tone``, ``language``, ``format``) hold one value each. Each of
the ``rules`` is an item of its own, keyed by what it is about: "always use emojis" and "never use
emojis" share the key ``rules:emojis``, so the newer replaces the older (kept in history), while rules
about other things stand side by side. An agent's own rule joins the user's shared rules and wins only
over a shared rule with the same key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..text import normalize
from .document import DocumentLayer
from .schema import bounded_key

# Words that say whether or how firmly a rule holds, not what it is about.
_POLARITY = frozenset(
    {
        "always",
        "never",
        "don",
        "dont",
        "do",
        "not",
        "t",
        "no",
        "please",
        "ever",
        "avoid",
        "stop",
        "use",
        "using",
    }
)


@dataclass
class Policies:
    """How the user wants the assistant to answer, from the user's own explicit statements."""

    response_style: str | None = None
    """Length and depth of answers, e.g. "concise" or "detailed with examples"."""
    tone: str | None = None
    """The tone to use, e.g. "friendly", "formal", "blunt"."""
    language: str | None = None
    """The language to answer in."""
    format: str | None = None
    """Preferred layout, e.g. "bullet points", "code first", "no markdown"."""
    rules: list[str] = field(default_factory=list)
    """Other standing do/don't rules in the user's words, e.g. "never use emojis"."""


class PoliciesLayer(DocumentLayer):
    name = "policies"
    tag = "user_policies"
    about = "how to answer"
    default_schema = Policies
    keyed_lists = frozenset({"rules"})
    retractable = True
    variable_prefix = ""  # {{response_style}}, {{tone}} ...
    template_aliases = ("preferences",)

    def element_key(self, field: str, element: str) -> str:
        words = normalize(element).split()
        topic = [w for w in words if w not in _POLARITY] or words
        return bounded_key(f"{field}:{' '.join(topic)}")

    def element_label(self, field: str) -> str:
        return "rule" if field == "rules" else field
