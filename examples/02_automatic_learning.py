"""02 - Automatic learning: the agent learns about the user from ordinary conversation.

Priya talks to an assistant over a few turns: who she is, how she wants answers, what she is working
on, what helped. Every turn is learned in the background (``update_memory_on_run``, on by default; the
reply never waits for it). In a brand-new session the next day, the system message already knows her.

Run: python examples/02_automatic_learning.py   (offline; set AGENTMEM_MODEL for a real model, see
examples/_support.py)
"""

from __future__ import annotations

from typing import Any

from _support import (
    OFFLINE,
    agent_model,
    chat,
    last_user_message,
    memory_block,
    memory_model,
    remembered,
    show,
    show_changes,
    system_message,
    temp_db,
)

from agentmem import Agent, MemoryManager


def assistant(messages: list[dict[str, Any]]) -> str:
    """The offline stand-in for the LLM: it answers in the style the memory asks for."""
    said = last_user_message(messages)
    if "working on" in said:
        return "Go suits that well. Wrap each provider call in a retry loop with backoff."
    if not said.endswith("?"):
        return "Noted."
    if remembered(messages, "response_style") == "concise":
        return f"{remembered(messages, 'name')}: backoff with jitter, at most 3 tries, idempotency keys."
    return "There are several ways to structure retries; let me walk you through each of them..."


def main() -> None:
    mem = MemoryManager(db=temp_db(), **memory_model())
    agent = Agent(**agent_model(assistant), memory=mem, instructions="You are a senior engineer's sidekick.")

    print("Session 1 - Priya introduces herself:")
    turns = [
        "Hi! I'm Priya, a backend engineer at Northwind.",
        "I live in Lisbon and I speak Portuguese and English.",
        "Please keep answers short. Never use emojis.",
        "I'm working on a payments service in Go.",
        "That was perfect, thanks!",
    ]
    results = [chat(agent, "priya", text, session_id="day-1") for text in turns]

    # Learning runs in a background thread; wait for it before reading the memory.
    assert agent.wait_for_memory(timeout=60)
    print("\nWhat the memory learned (op, layer, what):")
    show_changes(change for result in results for change in result.memory_changes)

    state = mem.get(user_id="priya")
    if OFFLINE:  # exact outcomes of the offline extractor; a real model may word things differently
        assert (state.profile.name, state.profile.company, state.profile.location) == (
            "Priya",
            "Northwind",
            "Lisbon",
        )
        assert state.policies.response_style == "concise"
        assert state.policies.rules == ["never use emojis"]
        assert any("payments service" in fact.text for fact in state.knowledge)
        assert state.feedback[0].data.sentiment == "positive"

    print("\nSession 2, the next day - a new session id, no history, but the memory is there:")
    question = "How should I structure retries in the payments service?"
    reply = chat(agent, "priya", question, session_id="day-2")
    agent.wait_for_memory()
    context = mem.compile(user_id="priya", query=question, token_budget=agent.memory_token_budget)
    show("The memory block in the agent's system message:", context)

    system = system_message(agent)
    if system is not None:  # offline, the scripted model recorded the request it received
        assert memory_block(system) == context  # the system message carries exactly compile()
        assert "name: Priya" in system
        assert "payments service" in system
        assert reply.content.startswith("Priya:")  # and the (scripted) answer followed the policy
    assert mem.sessions.messages("day-2", user_id="priya")[0]["content"] == question  # only this session

    # Nobody else sees Priya's memory.
    assert mem.compile(user_id="someone-else") == ""
    agent.close()
    mem.close()


if __name__ == "__main__":
    main()
