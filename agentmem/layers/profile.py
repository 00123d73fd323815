"""Profile: who the user is. One document per scope, patched field by field."""

from __future__ import annotations

from dataclasses import dataclass, field

from .document import DocumentLayer


@dataclass
class Profile:
    """Who the user is: identity and background."""

    name: str | None = None
    """The name the user goes by."""
    role: str | None = None
    """The user's job title or role, e.g. "data scientist"."""
    company: str | None = None
    """The organisation the user works for or studies at."""
    location: str | None = None
    """Where the user lives or works (city, country)."""
    languages: list[str] = field(default_factory=list)
    """Human languages the user speaks."""
    expertise: list[str] = field(default_factory=list)
    """Skills, tools and domains the user knows well."""


class ProfileLayer(DocumentLayer):
    name = "profile"
    tag = "user_profile"
    about = "who the user is"
    default_schema = Profile
    variable_prefix = "user_"  # {{user_name}}, {{user_role}} ...
