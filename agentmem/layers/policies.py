"""Policies: how the user wants to be answered. Keyed rules; explicit beats inferred."""

from __future__ import annotations

from dataclasses import dataclass, field

from .document import DocumentLayer


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
    default_schema = Policies
    prompt_template = "policies.jinja"
