"""Agent memory: what one agent learns across all its users, kept apart from each user's memory.

A video-tagging agent serves two creators, Sarah and Bob. Its own memory (``agent_id`` without a
``user_id``) holds a house rule written by hand, a lesson its model saves with the memory tools
(``write_agent_memory=True``), and the feedback its users give (``LayerConfig(learn_for_agent=True)``
on the feedback layer). Bob's context shows all of it under ``<agent_memory agent="tagger">`` but
nothing of Sarah's own memory; another agent sees none of it; deleting Sarah leaves it in place.

Run: python examples/agent_memory.py   (offline; set AGENTMEM_MODEL for a real model, see
examples/_support.py)
"""

from __future__ import annotations

import json
import re
from typing import Any

from _support import OFFLINE, agent_model, chat, memory_block, memory_model, show, system_message, temp_db

from agentmem import Agent, LayerConfig, MemoryManager
from agentmem.testing import ToolCall

LESSON = "Viewers search by game title first"


def tagger(messages: list[dict[str, Any]]) -> str | ToolCall:
    """The offline stand-in for the LLM: it tags, and saves a lesson for all users when told one."""
    last = messages[-1]
    if last["role"] == "tool":
        return "Noted for everyone." if json.loads(last["content"])["ok"] else "I could not save that."
    if re.search(r"viewers .*search", last["content"], re.IGNORECASE):
        return ToolCall("memory_remember", {"layer": "knowledge", "value": LESSON, "scope": "agent"})
    if "perfect" in last["content"]:
        return "Glad it helped!"
    found = re.search(r"Tag my (.+?)(?: video)?\.", last["content"])
    return "Tags: " + ", ".join(found.group(1).lower().split()) if found else "Happy to help."


def main() -> None:
    mem = MemoryManager(
        db=temp_db(),
        enable_agentic_memory=True,
        layers={"feedback": LayerConfig(learn_for_agent=True)},  # feedback generalises to the agent
        **memory_model(),
    )
    mem.policies.update(agent_id="tagger", rules=["Tags are lowercase, at most five"])  # by hand
    agent = Agent(**agent_model(tagger), memory=mem, agent_id="tagger", write_agent_memory=True)

    print("Sarah:")
    chat(agent, "sarah", "I'm Sarah. Tag my Zelda speedrun video.", session_id="s1")
    chat(agent, "sarah", "That was perfect, thanks!", session_id="s1")
    chat(agent, "sarah", "A tip for you: viewers mostly search by the game's title.", session_id="s1")
    agent.wait_for_memory()
    show("The tagger's own memory (shared by all its users):", mem.compile(agent_id="tagger"))

    print("\nBob:")
    chat(agent, "bob", "Tag my Mario Kart highlights.", session_id="b1")
    bob_sees = memory_block(system_message(agent) or "")
    show("What the tagger knows when it answers Bob:", bob_sees)
    other = mem.compile(user_id="bob", agent_id="title-writer")
    show("What another agent knows of Bob:", other)

    mem.delete_user("sarah")
    after = mem.get(agent_id="tagger")
    print("\nAfter deleting Sarah, the tagger keeps:", [item.text for item in after.items])

    # The isolation rules, whatever a model chose to say or store.
    assert "agent_memory" not in other  # another agent never sees the tagger's memory
    assert not any(item.user_id for item in after.items)  # agent memory belongs to no user
    assert not any("Sarah" in item.text for item in mem.get(user_id="bob", agent_id="tagger").items)
    if OFFLINE:  # what the scripted model and the offline extractor did
        assert "Tags are lowercase" in bob_sees
        assert LESSON in bob_sees
        assert "positive:\n- That was perfect, thanks" in bob_sees  # Sarah's feedback, generalised
        assert "Sarah" not in bob_sees  # her own memory (her name) stays hers
        assert {item.layer for item in after.items} == {"policies", "knowledge", "feedback"}
    agent.close()
    mem.close()


if __name__ == "__main__":
    main()
