"""Where the default extraction prompts live, in a checkout and in an installed wheel."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from .errors import ConfigurationError

_PACKAGE = Path(__file__).resolve().parent


@cache
def default_prompts_dir() -> Path:
    """``agentmem/prompts`` in a wheel (packed there at build time), else the top-level ``prompts/``."""
    for candidate in (_PACKAGE / "prompts", _PACKAGE.parent / "prompts"):
        if candidate.is_dir():
            return candidate
    raise ConfigurationError("agentmem's default prompts are missing from this installation")


def default_template(name: str) -> str:
    """The text of one default template, e.g. ``default_template("profile.jinja")``."""
    path = default_prompts_dir() / name
    if not path.is_file():
        raise ConfigurationError(f"no default prompt template {name!r} in {default_prompts_dir()}")
    return path.read_text(encoding="utf-8")
