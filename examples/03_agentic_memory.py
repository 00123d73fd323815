"""03 - Agentic memory: the model itself decides to remember and to forget.

With ``enable_agentic_memory=True`` the agent's model gets four tools bound to the current user:
memory_remember, memory_update, memory_forget and memory_search. Kenji tells the assistant he works on
computer vision and prefers PyTorch; later he asks it to forget the first. The model searches its
memory, forgets the fact by id, and the history records the delete with source "agentic".

Run: python examples/03_agentic_memory.py   (offline; set AGENTMEM_MODEL for a real model, see
examples/_support.py)
"""

from __future__ import annotations

import json
import re
from typing import Any

from _support import OFFLINE, agent_model, chat, memory_model, show, temp_db

from agentmem import Agent, MemoryManager
from agentmem.testing import ToolCall


def assistant(messages: list[dict[str, Any]]) -> str | ToolCall:
    """The offline stand-in for the LLM: it calls memory tools the way a tool-using model would."""
    last = messages[-1]
    if last["role"] == "tool":  # a tool answered; the arguments and results are JSON text
        result = json.loads(last["content"])
        if result.get("results"):  # memory_search found it: forget the best match by its id
            return ToolCall("memory_forget", {"item_id": result["results"][0]["id"]})
        return "Done - I've forgotten that." if "forgotten" in result else "Got it, I'll remember."
    said = last["content"].rstrip(".!")
    if found := re.match(r"forget that I (.+)", said, re.IGNORECASE):
        return ToolCall("memory_search", {"query": found.group(1)})
    if found := re.match(r"I work on (.+)", said):
        return ToolCall("memory_remember", {"layer": "knowledge", "value": f"Works on {found.group(1)}"})
    if found := re.match(r"remember that I (prefer .+)", said, re.IGNORECASE):
        return ToolCall("memory_remember", {"layer": "policies", "field": "rules", "value": found.group(1)})
    return "Happy to help."


def main() -> None:
    # Only the tools write here: no background learning, so every change is the model's own decision.
    mem = MemoryManager(
        db=temp_db(), update_memory_on_run=False, enable_agentic_memory=True, **memory_model()
    )
    agent = Agent(**agent_model(assistant), memory=mem)

    print("Monday:")
    chat(agent, "kenji", "I work on computer vision.", session_id="mon")
    chat(agent, "kenji", "Remember that I prefer PyTorch over TensorFlow.", session_id="mon")
    show("Kenji's memory:", mem.compile(user_id="kenji"))

    print("\nFriday:")
    result = chat(agent, "kenji", "Forget that I work on computer vision.", session_id="fri")
    show("Kenji's memory now:", mem.compile(user_id="kenji"))

    history = mem.history(user_id="kenji")
    print("\nHistory (oldest first):")
    for event in history:
        value = event.new if event.op != "delete" else event.old
        text = value.get("text") if isinstance(value, dict) else value
        print(f"    {event.op:<7} {event.layer:<9} source={event.source:<8} {text}")

    # Whatever the model decided, only the tools wrote, and only into Kenji's memory.
    assert {event.source for event in history} <= {"agentic"}
    assert mem.get(user_id="someone-else").items == []
    if OFFLINE:  # what the scripted model did; a real model may choose other (valid) tool calls
        assert result.tool_calls == ["memory_search", "memory_forget"]
        assert [change.op for change in result.memory_changes] == ["delete"]
        state = mem.get(user_id="kenji")
        assert not any("computer vision" in fact.text for fact in state.knowledge)
        assert state.policies.rules == ["prefer PyTorch over TensorFlow"]  # the other memory stays
        deleted = history[-1]
        assert (deleted.op, deleted.source, deleted.old["text"]) == (
            "delete",
            "agentic",
            "Works on computer vision",
        )
    agent.close()
    mem.close()


if __name__ == "__main__":
    main()
