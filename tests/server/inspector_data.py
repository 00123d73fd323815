"""The memory the inspector's tests look at: one user with something on every screen (a closed fact
with its successor, an agent's private fact, feedback, a session, a pending learn), another user to
be kept out of, and a stored ``<script>`` payload that must render as text."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from agentmem import MemoryManager
from agentmem.errors import ExtractionError
from agentmem.testing import ScriptedModel

USER = "alice"
OTHER = "bob"
PAYLOAD = "<script>alert('pwned')</script>"


@dataclass(frozen=True)
class Seeded:
    old_fact: str
    new_fact: str
    payload_fact: str
    other_fact: str


def seed(db_url: str) -> Seeded:
    """Write the inspector's test data into ``db_url`` (closing the managers it used)."""
    with MemoryManager(db=db_url) as mem:
        mem.profile.update(user_id=USER, name="Alice")
        old = mem.knowledge.add("Works at Acme", user_id=USER, topics=["work"])
        new = mem.knowledge.add("Works at Globex", user_id=USER, topics=["work"], replaces=old)
        payload = mem.knowledge.add(f"Likes {PAYLOAD} in notes", user_id=USER)
        mem.knowledge.add("Runs marathons on weekends", user_id=USER, agent_id="coach")
        mem.feedback.add("Prefers short answers", user_id=USER)
        mem.sessions.add(
            "s1",
            [{"role": "user", "content": "Hi, plan my week"}, {"role": "assistant", "content": "Sure."}],
            user_id=USER,
        )
        other = mem.knowledge.add("Bob's secret plan", user_id=OTHER)
    # A learn whose model fails for good is kept as a pending learn; the served memory (offline
    # extractor) can retry it.
    with (
        MemoryManager(
            db=db_url, model=ScriptedModel([ValueError("the model is down")]), max_retries=0
        ) as bad,
        pytest.raises(ExtractionError),
    ):
        bad.learn([{"role": "user", "content": "I have a cat named Miso."}], user_id=USER)
    return Seeded(old, new, payload, other)
