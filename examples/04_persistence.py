"""04 - Persistence: memory and conversations survive a restart.

The script plays an app that is stopped and started again. It runs itself twice as a new process on
one SQLite file:

    python 04_persistence.py --phase 1 DB   # Tom chats; the memory learns; the process exits
    python 04_persistence.py --phase 2 DB   # a new process and MemoryManager on the same file

Phase 2 sees what phase 1 learned and continues the same session with its history. Each phase reports
what it saw as one JSON line; the parent checks both reports agree.

Run: python examples/04_persistence.py   (offline; set AGENTMEM_MODEL for a real model, see
examples/_support.py)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

from _support import (
    OFFLINE,
    agent_model,
    chat,
    last_user_message,
    memory_model,
    remembered,
    system_message,
    temp_db,
)

from agentmem import Agent, MemoryManager

SESSION = "spanish-practice"


def assistant(messages: list[dict[str, Any]]) -> str:
    said = last_user_message(messages)
    if said.startswith("Hi"):
        return "Nice to meet you. Let's start with greetings."
    if said.startswith("Can we continue"):  # the system message's memory block knows who is back
        return f"Welcome back, {remembered(messages, 'name')}! Last time: greetings. Now: travel phrases."
    return "Great, we'll focus on phrases for your trip."


def report(mem: MemoryManager) -> None:
    """What this process sees on disk, as one JSON line for the parent."""
    seen = {
        "pid": os.getpid(),
        "memory": mem.compile(user_id="tom"),
        "messages": len(mem.sessions.messages(SESSION, user_id="tom")),
    }
    print("REPORT " + json.dumps(seen))


def phase(number: int, db: str) -> None:
    mem = MemoryManager(db=db, **memory_model())
    agent = Agent(**agent_model(assistant), memory=mem, instructions="You are a language tutor.")
    if number == 1:
        chat(agent, "tom", "Hi, I'm Tom, a nurse from Leeds. I speak English.", session_id=SESSION)
        chat(agent, "tom", "I'm learning Spanish for a trip to Mexico in May.", session_id=SESSION)
        agent.wait_for_memory()  # let background learning finish before the process exits
        report(mem)
    else:
        report(mem)  # before this process changes anything
        chat(agent, "tom", "Can we continue?", session_id=SESSION)
        system = system_message(agent)
        if system is not None:  # offline: the request carried the memory and the old turns
            assert "name: Tom" in system
            assert "Spanish" in system
            sent = agent.model.requests[-1].messages  # type: ignore[attr-defined]
            assert [m["role"] for m in sent] == ["system", "user", "assistant", "user", "assistant", "user"]
    agent.close()  # waits for background learning too
    mem.close()


def run_phase(number: int, db: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--phase", str(number), db], capture_output=True, text=True, timeout=300
    )
    print(f"--- phase {number} (exit code {done.returncode}) ---")
    lines = done.stdout.splitlines()
    print("\n".join(line for line in lines if not line.startswith("REPORT ")))
    assert done.returncode == 0, done.stderr
    seen: dict[str, Any] = json.loads(next(line for line in lines if line.startswith("REPORT "))[7:])
    return seen


def main() -> None:
    db = temp_db("tom.db")
    first, second = run_phase(1, db), run_phase(2, db)
    print(f"\nOne database, two processes ({first['pid']} then {second['pid']}): {db}")
    print("Memory phase 2 loaded from disk:\n    " + second["memory"].replace("\n", "\n    "))

    assert first["pid"] != second["pid"]
    assert second["memory"] == first["memory"] != ""  # exactly what phase 1 left behind
    assert second["messages"] == first["messages"] == 4  # two turns: user + assistant each
    if OFFLINE:
        assert "name: Tom" in second["memory"]
        assert "Spanish" in second["memory"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", type=int, choices=(1, 2))
    parser.add_argument("db", nargs="?")
    args = parser.parse_args()
    if args.phase:
        phase(args.phase, args.db)
    else:
        main()
