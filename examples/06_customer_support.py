"""06 - Customer support: the agent remembers each customer's plan, last issue and feedback.

Three customers of a file-sync product contact support. Every turn is learned automatically (the
default, ``update_memory_on_run=True``): who they are, their plan, the issue they reported and whether
the fix helped. A week later each comes back in a new session, and the support agent starts from
what it knows about that customer, and only that customer.

Offline, the extraction model is a scripted stand-in that reads support chats with a few patterns;
set AGENTMEM_MODEL and a real model reads them with agentmem's extraction prompt (see
examples/_support.py).

Run: python examples/06_customer_support.py
"""

from __future__ import annotations

import re
from typing import Any

from _support import OFFLINE, agent_model, chat, conversation, last_user_message, memory_model, show, temp_db

from agentmem import Agent, MemoryManager

CUSTOMERS = {  # what each customer says in the first session
    "dana": ["Hi, I'm Dana from Brightside, on the Business plan.", "Our desktop app keeps crashing."],
    "eli": ["Hello, I'm Eli from Fernway, on the Starter plan.", "My uploads keep failing over 2 GB."],
    "fatima": ["Hi, I'm Fatima from Gridworks, on the Enterprise plan.", "Our SSO login stopped working."],
}
REACTIONS = {"dana": "That fixed it, thanks!", "eli": "That didn't help at all.", "fatima": "That fixed it!"}
FIXES = {
    "crashing": "Please clear the cache in the advanced settings and restart the app.",
    "uploads": "Turn on chunked uploads in the sync settings.",
    "SSO": "Your identity provider rotated its certificate; I've re-synced it on our side.",
}


def extraction_model(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Offline stand-in for the extraction LLM: the JSON a model would return for a support chat."""
    turns = conversation(messages)
    said = " ".join(text for role, text in turns if role == "user")
    answer = next((text for role, text in turns if role == "assistant"), None)  # what feedback is about
    out: dict[str, Any] = {"profile": None, "knowledge": [], "feedback": []}
    if found := re.search(r"I'm (\w+) from (\w+), on the (\w+) plan", said):
        out["profile"] = {"name": found.group(1), "company": found.group(2)}
        out["knowledge"].append({"text": f"On the {found.group(3)} plan", "topics": ["plan"]})
    if found := re.search(r"(?:My|Our) ([^.!?]+ (?:keeps?|stopped) [^.!?]+)", said):
        out["knowledge"].append({"text": f"Reported: {found.group(1)}", "topics": ["issue"]})
    if "That fixed it" in said:
        out["feedback"].append({"text": "The fix worked", "sentiment": "positive", "target": answer})
    if "That didn't help" in said:
        out["feedback"].append({"text": "The fix did not help", "sentiment": "negative", "target": answer})
    return out


def support_agent(messages: list[dict[str, Any]]) -> str:
    """Offline stand-in for the support LLM: it answers from the memory in its system message."""
    said, system = last_user_message(messages), messages[0]["content"]
    if fix := next((text for word, text in FIXES.items() if word in said), None):
        return fix
    if said.startswith("Hi again"):
        name, plan, issue = (
            found.group(1) if (found := re.search(pattern, system)) else "?"
            for pattern in (r"name: (\w+)", r"On the (\w+) plan", r"Reported: ([^\n]+)")
        )
        mood = "sorry our fix didn't help" if "negative:\n- The fix" in system else "glad it's fixed"
        return f"Hi {name} ({plan} plan): {issue}, {mood}."
    return "Thanks for the details." if "?" not in said else "Let me check."


def main() -> None:
    mem = MemoryManager(db=temp_db(), **memory_model(extraction_model))
    agent = Agent(**agent_model(support_agent), memory=mem, instructions="You are CloudSync support.")

    print("Week 1 - three tickets:")
    for customer, turns in CUSTOMERS.items():
        for text in [*turns, REACTIONS[customer]]:
            chat(agent, customer, text, session_id="ticket-1")
    agent.wait_for_memory()

    print("\nWeek 2 - each customer comes back in a new session:")
    greetings = {c: chat(agent, c, "Hi again, I have a billing question.", "ticket-2") for c in CUSTOMERS}
    agent.wait_for_memory()
    for customer in CUSTOMERS:
        show(f"What support remembers about {customer}:", mem.compile(user_id=customer))

    # Isolation, whatever the model extracted: no customer's memory mentions another customer.
    for customer in CUSTOMERS:
        context = mem.compile(user_id=customer).lower()
        assert not any(other in context for other in CUSTOMERS if other != customer)
        assert {event.user_id for event in mem.history(user_id=customer)} <= {customer}
    if OFFLINE:
        state = mem.get(user_id="eli")
        assert state.profile.company == "Fernway"
        assert [fact.text for fact in state.knowledge] == [
            "On the Starter plan",
            "Reported: uploads keep failing over 2 GB",
        ]
        assert [(f.data.sentiment, f.text) for f in state.feedback] == [("negative", "The fix did not help")]
        assert "Starter plan" in greetings["eli"].content
        assert "fix didn't help" in greetings["eli"].content
        assert "glad it's fixed" in greetings["dana"].content  # each customer's own feedback
    agent.close()
    mem.close()


if __name__ == "__main__":
    main()
