"""A large learn holds the write lock only for its apply: on SQLite, while one process learns 50 changes
at a time into a user with thousands of facts, another process writing for other users never fails
(it waits on the busy timeout), and both finish.

Under the lock a learn reads only the candidates its changes can touch (same key, replaced ids, texts
sharing their words, the count and, over the cap, the first items in eviction order), merges at most
50 changes and applies them; the prompt, the model call and the validation happen before it.
Real processes, each with its own engine, like separate app servers sharing one file.
"""

from __future__ import annotations

import multiprocessing
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentmem import MemoryManager
from agentmem.layers import KnowledgeLayer
from agentmem.store import search
from agentmem.store.rows import ITEMS
from agentmem.testing import ScriptedModel

FACTS = 6000
CHANGES = 50
LEARNS = 6
WAIT = 120  # seconds: a hung process fails the test, never hangs it


SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ne",
    "ru",
    "sa",
    "ti",
    "vo",
    "be",
    "da",
    "fe",
    "gu",
    "ho",
    "ji",
    "ku",
    "le",
    "ma",
    "no",
    "pe",
    "ra",
    "se",
    "to",
    "vu",
]
WORDS = sorted({a + b + c for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES[:6]})


def fact(rng: random.Random, i: int) -> str:
    return f"Works on the {' '.join(rng.sample(WORDS, 4))} project number {i}"


def manager(url: str, **options: Any) -> MemoryManager:
    return MemoryManager(db=url, layers={"knowledge": KnowledgeLayer(max_items=200_000)}, **options)


def seed(mem: MemoryManager) -> None:
    """``FACTS`` facts of the user "big", inserted directly (as many merged at once take a while)."""
    layer, now = mem.layers["knowledge"], datetime.now(UTC)
    rows = []
    for i in range(FACTS):
        value = {"text": fact(random.Random(i), i), "topics": []}
        key = layer.key_of(value)
        rows.append(
            {
                "id": f"m_seed{i}",
                "user_id": "big",
                "agent_id": "",
                "layer": "knowledge",
                "key": key,
                "value": value,
                "text": value["text"],
                "line": value["text"],
                "source": "manual",
                "meta": {},
                "created_at": now,
                "updated_at": now,
            }
        )
    with mem._store.engine.begin() as conn:
        conn.execute(ITEMS.insert(), rows)
        search.index_items(conn, "big", [(row["id"], row["text"], row["value"]) for row in rows])


def learn_big(url: str, outcomes: Any) -> None:
    """In a process: learn ``LEARNS`` replies of ``CHANGES`` changes (half new, half restated)."""
    rng = random.Random(1)

    def reply(messages: list[dict[str, Any]]) -> dict[str, Any]:
        new = [{"text": fact(rng, FACTS + rng.randrange(10**6))} for _ in range(CHANGES // 2)]
        again = [{"text": fact(random.Random(i), i)} for i in rng.sample(range(FACTS), CHANGES // 2)]
        return {"knowledge": new + again}

    errors, changes = [], 0
    with manager(url, model=ScriptedModel(reply)) as mem:
        for i in range(LEARNS):
            try:
                said = f"Today I moved to the project number {i}."
                changes += len(
                    mem.learn([{"role": "user", "content": said}], user_id="big").changes["knowledge"]
                )
            except Exception as exc:  # reported to the test, which fails on any
                errors.append(f"{type(exc).__name__}: {exc}")
    outcomes.put(("learner", changes, errors))


def write_others(url: str, stop: Any, outcomes: Any) -> None:
    """In a process: add facts for other users until told to stop."""
    errors, written = [], 0
    with manager(url) as mem:
        while not stop.is_set() or written < 20:
            try:
                mem.knowledge.add(f"Likes the number {written}", user_id=f"other{written % 4}")
                written += 1
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                written += 1
    outcomes.put(("writer", written, errors))


def test_other_users_writes_never_fail_while_a_large_learn_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with manager(url) as mem:
        seed(mem)
    ctx = multiprocessing.get_context("spawn")
    stop, outcomes = ctx.Event(), ctx.Queue()
    learner = ctx.Process(target=learn_big, args=(url, outcomes))
    writer = ctx.Process(target=write_others, args=(url, stop, outcomes))
    writer.start()
    learner.start()
    try:
        first = outcomes.get(timeout=WAIT)
        stop.set()
        results = {name: (count, errors) for name, count, errors in [first, outcomes.get(timeout=WAIT)]}
    finally:
        for process in (learner, writer):
            process.join(timeout=WAIT)
            if process.is_alive():
                process.kill()
    learned, learn_errors = results["learner"]
    written, write_errors = results["writer"]
    assert learn_errors == []
    assert write_errors == []
    assert first[0] == "learner"  # the writer kept going until the learner was done
    assert learned >= LEARNS * CHANGES // 2  # every new fact added, every restated one found
    with manager(url) as mem:
        assert sum(len(mem.get(user_id=f"other{i}").items) for i in range(4)) == written
        assert len(mem.get(user_id="big").items) == FACTS + LEARNS * CHANGES // 2
