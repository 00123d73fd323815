"""05 - A team's coding assistant: one memory, three developers, two agents.

Ana (backend, wants short answers with Go examples), Ben (frontend, prefers TypeScript and detailed
explanations) and Chen (data engineer, no emojis) each talk to the team assistant over a few sessions.
The memory learns from every turn and, with agentic memory on, the model saves what it is asked to
remember. The same question then gets each developer's own context, and nothing leaks across users.

Agents: the team assistant has no ``agent_id``, so what it learns is shared by all of a user's agents.
The code-review agent (``agent_id="code-review"``) reads that shared memory plus its own private one.

Run: python examples/05_team_dev_assistant.py   (offline; set AGENTMEM_MODEL for a real model, see
examples/_support.py)
"""

from __future__ import annotations

import re
from typing import Any

from _support import OFFLINE, agent_model, chat, memory_model, show, system_message, temp_db

from agentmem import Agent, MemoryManager
from agentmem.testing import ToolCall

FIRST_SESSION = {
    "ana": ["Hi, I'm Ana, a backend engineer at Orbit.", "Keep answers short.", "Please always use Go."],
    "ben": [
        "Hey, I'm Ben, a frontend developer at Orbit.",
        "I prefer TypeScript over JavaScript. Give me detailed explanations.",
    ],
    "chen": ["Hi, I'm Chen, a data engineer at Orbit. Never use emojis."],
}
SECOND_SESSION = {
    "ben": "Remember: our design system is called Nebula.",
    "chen": "I'm building a Kafka pipeline.",
}
QUESTION = "How do I add retries to an HTTP call?"


def assistant(messages: list[dict[str, Any]]) -> str | ToolCall:
    """The offline stand-in for the LLM: it follows the policies in its system message."""
    if messages[-1]["role"] == "tool":
        return "Noted, I'll remember that."
    said, system = messages[-1]["content"], messages[0]["content"]
    if found := re.match(r"Remember: (.+?)\.?$", said):  # asked to remember: call the memory tool
        fact = found.group(1)
        if fact.startswith("in reviews"):  # how to lay out answers: the policies' "format" field
            return ToolCall("memory_remember", {"layer": "policies", "field": "format", "value": fact})
        return ToolCall("memory_remember", {"layer": "knowledge", "value": fact[0].upper() + fact[1:]})
    if not said.endswith("?"):
        return "Noted."
    language = "Go" if "use Go" in system else "TypeScript" if "TypeScript" in system else "Python"
    answer = f"Wrap the call in a retry loop with backoff ({language} example below)."
    if "response_style: detailed" in system:
        answer += " First, decide which errors are retryable: timeouts and 5xx, never 4xx. Then..."
    return answer if "never use emojis" in system else answer + " 🚀"


def main() -> None:
    mem = MemoryManager(db=temp_db(), enable_agentic_memory=True, **memory_model())
    team = Agent(**agent_model(assistant), memory=mem, instructions="You are Orbit's coding assistant.")
    review = Agent(**agent_model(assistant), memory=mem, agent_id="code-review")

    print("First sessions with the team assistant:")
    for dev, turns in FIRST_SESSION.items():
        for text in turns:
            chat(team, dev, text, session_id="monday")
    team.wait_for_memory()  # background learning done before the next sessions read memory
    for dev, text in SECOND_SESSION.items():
        chat(team, dev, text, session_id="tuesday")
    team.wait_for_memory()

    print("\nThe same question from each developer, in a new session:")
    contexts = {}
    for dev in FIRST_SESSION:
        reply = chat(team, dev, QUESTION, session_id="wednesday")
        contexts[dev] = mem.compile(user_id=dev, query=QUESTION)
        if OFFLINE:
            assert f"name: {dev.title()}" in (system_message(team) or "")
            assert ("🚀" in reply.content) == (dev != "chen")  # Chen's "never use emojis" is followed
    for dev, context in contexts.items():
        show(f"{dev}'s context:", context)

    print("\nAna tells the code-review agent something that only it should keep:")
    chat(review, "ana", "Remember: in reviews, list only blocking issues.", session_id="pr-42")
    review.wait_for_memory()
    shared, private = mem.compile(user_id="ana"), mem.compile(user_id="ana", agent_id="code-review")
    show("ana, as the code-review agent sees her:", private)

    # Isolation holds whatever the model stored: no developer's memory names another developer.
    for dev, context in contexts.items():
        assert not any(other.title() in context for other in FIRST_SESSION if other != dev)
    assert mem.search("Nebula", user_id="ana") == []
    assert mem.search("Nebula", user_id="chen") == []
    if OFFLINE:
        assert "use Go" in contexts["ana"]
        assert "response_style: concise" in contexts["ana"]
        assert "TypeScript" in contexts["ben"]
        assert "Nebula" in contexts["ben"]
        assert "never use emojis" in contexts["chen"]
        assert "Kafka" in contexts["chen"]
        # The review agent's private policy comes on top of Ana's shared memory; other agents don't see it.
        assert "blocking issues" in private
        assert "always use Go" in private
        assert "name: Ana" in private
        assert "blocking issues" not in shared
    for agent in (team, review):
        agent.close()
    mem.close()


if __name__ == "__main__":
    main()
