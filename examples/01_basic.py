"""01 - The basics: store what you know about a user, then give it to the model.

Sarah is a data scientist who likes short answers. We record that by hand, compile her memory into the
system message for a question about data cleaning, and look at the history of changes.

Run: python examples/01_basic.py   (no API key, no network)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from agentmem import MemoryManager, NotFoundError


def main() -> None:
    db = Path(tempfile.mkdtemp()) / "memory.db"
    mem = MemoryManager(db=f"sqlite:///{db}")

    mem.profile.update(user_id="sarah", name="Sarah", role="data scientist", company="Acme")
    mem.policies.update(user_id="sarah", response_style="concise", rules=["show code before prose"])
    churn = mem.knowledge.add("Builds a churn model for Acme", user_id="sarah", topics=["work"])
    mem.knowledge.add("Cleans messy CSV exports with pandas", user_id="sarah", topics=["data"])
    mem.feedback.add("Liked the pandas examples", user_id="sarah", sentiment="positive")

    # Later she says the churn project is done: the old fact is closed, not erased.
    mem.knowledge.add(
        "Finished the churn model; now builds a demand forecast", user_id="sarah", replaces=churn
    )

    context = mem.compile(user_id="sarah", query="how do I clean data?", token_budget=300)
    print("System message memory block:\n")
    print(context)

    state = mem.get(user_id="sarah")
    assert state.profile.role == "data scientist"
    assert [item.text for item in state.knowledge] == [
        "Cleans messy CSV exports with pandas",
        "Finished the churn model; now builds a demand forecast",
    ]
    assert context.index("pandas") < context.index("demand forecast")  # ranked by the query

    print("\nHistory:")
    for event in mem.history(user_id="sarah"):
        print(f"  {event.op:<9} {event.layer:<9} {event.key[:40]}")

    # Isolation: another user cannot see or touch Sarah's memory.
    assert mem.compile(user_id="marco") == ""
    try:
        mem.forget(state.knowledge[0].id, user_id="marco")
    except NotFoundError as exc:
        print(f"\nmarco cannot forget sarah's fact: {exc}")
    mem.close()


if __name__ == "__main__":
    main()
