"""Shared helpers for the examples (a file starting with "_" is not an example itself).

Every example runs offline by default: the agent's model is a ``ScriptedModel`` answering from a small
function, and the memory learns with the built-in offline extractor (or a scripted model where a story
needs one). Set environment variables to run the same stories with a real model instead:

    AGENTMEM_MODEL           a litellm model id for the agent and the memory, e.g. "gpt-4o-mini"
                             (with OPENAI_API_KEY set) or "openai/qwen2.5-7b-instruct" for a local server
    AGENTMEM_MODEL_API_BASE  optional: the server's base URL, e.g. "http://localhost:1234/v1"
    AGENTMEM_MODEL_API_KEY   optional: the key to send to that server

    AGENTMEM_MODEL=gpt-4o-mini python examples/02_automatic_learning.py

With a real model the examples check only what does not depend on what the model chooses to say or
store: isolation between users, persistence, the structure of what was stored.
"""

from __future__ import annotations

import os
import re
import tempfile
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from agentmem import Agent, Change, RunResult
from agentmem.testing import ScriptedModel

REAL_MODEL = os.environ.get("AGENTMEM_MODEL", "").strip() or None
OFFLINE = REAL_MODEL is None
"""True when no real model is configured: scripted replies, so exact outcomes can be asserted."""

Script = Callable[[list[dict[str, Any]]], Any]  # messages -> str, dict or ToolCall


def _real() -> dict[str, Any]:
    options = {
        key: value
        for key, value in (
            ("api_base", os.environ.get("AGENTMEM_MODEL_API_BASE")),
            ("api_key", os.environ.get("AGENTMEM_MODEL_API_KEY")),
        )
        if value
    }
    return {"model": REAL_MODEL, "model_options": options or None}


def agent_model(script: Script) -> dict[str, Any]:
    """Keyword arguments for ``Agent(...)``: the scripted assistant offline, else the real model."""
    return {"model": ScriptedModel(script)} if OFFLINE else _real()


def memory_model(script: Script | None = None) -> dict[str, Any]:
    """Keyword arguments for ``MemoryManager(...)``: offline, ``script`` as the extraction model (or
    ``None``: the built-in offline extractor); else the real model."""
    if not OFFLINE:
        return _real()
    return {"model": ScriptedModel(script) if script is not None else None}


def temp_db(name: str = "memory.db") -> str:
    """A SQLite URL for a new file in a fresh temporary folder."""
    return f"sqlite:///{Path(tempfile.mkdtemp(prefix='agentmem-example-')) / name}"


def last_user_message(messages: list[dict[str, Any]]) -> str:
    return next(str(m["content"]) for m in reversed(messages) if m["role"] == "user")


def remembered(messages: list[dict[str, Any]], field: str) -> str | None:
    """A ``field: value`` line of the memory block in the system message, e.g. the user's name."""
    found = re.search(rf"^{field}: (.+)$", str(messages[0]["content"]), flags=re.MULTILINE)
    return found.group(1) if found else None


def conversation(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(role, text) of each turn in the <conversation> of an extraction prompt: what a scripted
    extraction model reads."""
    found = re.search(r"<conversation>\n(.*?)</conversation>", str(messages[0]["content"]), re.DOTALL)
    return re.findall(r"^\[(user|assistant)\] (.*)$", found.group(1), re.MULTILINE) if found else []


def system_message(agent: Agent) -> str | None:
    """The system message of the agent's last model request (recorded offline only)."""
    model = agent.model
    if isinstance(model, ScriptedModel) and model.requests:
        return str(model.requests[-1].messages[0]["content"])
    return None


def memory_block(system: str) -> str:
    """The ``<memory>`` part of a system message ("" when there is none)."""
    found = re.search(r"<memory>\n(.*)\n</memory>", system, flags=re.DOTALL)
    return found.group(1) if found else ""


def chat(agent: Agent, user_id: str, message: str, session_id: str | None = None) -> RunResult:
    """Run one turn and print it compactly."""
    result = agent.run(message, user_id=user_id, session_id=session_id)
    print(f"  {user_id} > {message}")
    tools = f"  [tools: {', '.join(result.tool_calls)}]" if result.tool_calls else ""
    print(f"  {'agent':>{len(user_id)}} < {textwrap.shorten(result.content, 96)}{tools}")
    return result


def show(title: str, text: str) -> None:
    """Print a titled, indented block (e.g. a compiled memory)."""
    print(f"\n{title}")
    print(textwrap.indent(text or "(empty)", "    "))


def show_changes(changes: Iterable[Change]) -> None:
    """Print changes one a line: profile and policies as ``field = value``, facts and feedback as text."""
    for change in changes:
        if isinstance(change.new, dict):  # a knowledge or feedback entry
            what = change.new.get("text", change.new)
        else:
            what = f"{change.key} = {change.old if change.new is None else change.new}"
        print(f"    {change.op:<7} {change.layer:<9} {what}")
