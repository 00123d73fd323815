"""What every framework adapter does the same way: the memory part of the instructions, the query it
is compiled for, and a finished conversation made learnable.

Framework input is not checked the way ``Agent`` checks its own: a user's message may be longer than a
query, and a model's reply may hold characters no store keeps or run past a stored message's length.
Adapters pass text through here so a run never fails on memory's account.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..conversations import clipped
from ..guides import memory_section, tools_guide
from ..manager import MAX_QUERY, MemoryManager
from ..validation import cleaned_text


def query_of(text: str | None) -> str | None:
    """The query to compile for: a long message's end (where the question usually is), made storable."""
    if not text or not text.strip():
        return None
    return cleaned_text(text)[-MAX_QUERY:]


def memory_instructions(
    memory: MemoryManager,
    *,
    user_id: str,
    agent_id: str | None = None,
    session_id: str | None = None,
    query: str | None = None,
    token_budget: int | None = None,
    tools: bool = False,
) -> str:
    """The user's memory with its guide (and, with ``tools``, when to call the memory tools), for a
    system message; "" when nothing is remembered and there are no tools."""
    block = memory.compile(
        user_id=user_id,
        agent_id=agent_id,
        session_id=session_id,
        query=query_of(query),
        token_budget=token_budget,
    )
    parts = [memory_section(block), tools_guide() if tools else ""]
    return "\n\n".join(part for part in parts if part)


def learnable(turns: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    """``(role, text)`` turns as ``learn`` takes them: user and assistant text only, made storable,
    empty turns dropped, each cut to a stored message's length."""
    out = []
    for role, text in turns:
        if role in ("user", "assistant") and text and text.strip():
            out.append({"role": role, "content": clipped(cleaned_text(text))})
    return out
