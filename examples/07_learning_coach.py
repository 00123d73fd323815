"""07 - A learning coach: two students, four weekly sessions, progress remembered.

Lena prepares an AWS certification, Omar wants to read Spanish novels. Each week is a session
(``week-1`` ... ``week-4``). The memory learns goals, topics and reactions from every turn; with
``enable_session_summaries=True`` each session also keeps a short summary (written by the model, or
offline, extractively from the student's own words). In week 4 the coach plans a review from what
each student worked on, and ``sessions.list`` shows the four weeks.

Run: python examples/07_learning_coach.py   (offline; set AGENTMEM_MODEL for a real model, see
examples/_support.py)
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

from _support import OFFLINE, agent_model, chat, last_user_message, memory_model, show, temp_db

from agentmem import Agent, MemoryManager

WEEKS = {  # per student, per week: what the student says
    "lena": [
        [
            "Hi, I'm Lena. My goal is to pass the AWS Solutions Architect exam.",
            "Where to start?",
            "Be brief.",
        ],
        ["I'm learning VPC networking this week.", "How do subnets work?", "That was perfect."],
        ["I'm studying IAM policies now.", "How do permission boundaries work?", "That didn't help."],
        ["I'm planning a full practice exam on Friday.", "What should I review?", "Thanks, bye!"],
    ],
    "omar": [
        ["Hello, I'm Omar. My goal is to read Spanish novels.", "How many words?", "I speak Arabic."],
        ["I'm learning the past tenses this week.", "When do I use the imperfect?", "That was perfect."],
        ["I'm studying the subjunctive now.", "Why is it so hard?", "That helped."],
        ["I'm planning to start my first novel.", "What should I review?", "Thanks, bye!"],
    ],
}


def coach(messages: list[dict[str, Any]]) -> str:
    """The offline stand-in for the LLM: it plans the review from the knowledge in its memory."""
    said, system = last_user_message(messages), messages[0]["content"]
    if said == "What should I review?":
        topics = re.findall(r"^- Is (?:learning|studying) (.+?)(?: this week| now)?$", system, re.MULTILINE)
        retry = " - with a new explanation, since last week's didn't land" if "negative:" in system else ""
        return f"Review {' and '.join(topics)}{retry}."
    return f"Walkthrough: {said.rstrip('?')}, step by step." if said.endswith("?") else "Great, noted!"


def main() -> None:
    mem = MemoryManager(db=temp_db(), enable_session_summaries=True, **memory_model())
    agent = Agent(**agent_model(coach), memory=mem, instructions="You are a patient learning coach.")

    plans: dict[str, str] = {}
    for week in range(1, 5):
        print(f"\nweek-{week}:")
        for student, weeks in WEEKS.items():
            for text in weeks[week - 1]:
                reply = chat(agent, student, text, session_id=f"week-{week}")
                if text == "What should I review?":
                    plans[student] = reply.content
        agent.wait_for_memory()  # a week later: learning and summaries are long done
    # A session's summary is refreshed in the background every 6 new messages (3 turns here); for a
    # shorter session, call mem.sessions.summarize(session_id, user_id=...) when it ends.

    for student in WEEKS:
        show(f"{student}'s memory after four weeks:", mem.compile(user_id=student))
        sessions = sorted(mem.sessions.list(user_id=student), key=lambda s: s.session_id)
        print(f"  {student}'s sessions:")
        for session in sessions:
            print(f"    {session.session_id}  {textwrap.shorten(session.summary or '-', 94)}")
        assert [s.session_id for s in sessions] == ["week-1", "week-2", "week-3", "week-4"]
        assert all(s.summary for s in sessions), "every week has a summary"
        other = "Omar" if student == "lena" else "Lena"
        assert other not in mem.compile(user_id=student)  # each student's progress is their own

    if OFFLINE:
        assert plans["lena"].startswith("Review IAM policies and VPC networking - with a new explanation")
        assert plans["omar"] == "Review the subjunctive and the past tenses."
        lena = mem.get(user_id="lena")
        assert any("AWS Solutions Architect" in fact.text for fact in lena.knowledge)
        summary = mem.sessions.summary("week-2", user_id="lena") or ""
        assert summary.startswith("6 messages. The user said: \"I'm learning VPC networking")
    agent.close()
    mem.close()


if __name__ == "__main__":
    main()
