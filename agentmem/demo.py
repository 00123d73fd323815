"""``agentmem demo``: three users' memory stored by hand, compiled, and kept apart. Offline, no API key.

Everything is written through the manual API (no model call), so the demo runs anywhere and prints the
same blocks every time, apart from the dates of knowledge items.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TextIO

from .errors import NotFoundError
from .manager import MemoryManager

DEMO_FILE = "agentmem-demo.db"
DEMO_USERS = ("sarah", "marco", "aiko")
BUDGET = 400
RULE_WIDTH = 72

# A typical question of each user: the query ranks their knowledge and feedback.
QUESTIONS = {
    "sarah": "How do I handle missing values before training the churn model?",
    "marco": "How should I add retries to the payments service client in Go?",
    "aiko": "How do I read my students' grades from a CSV file in Python?",
}
ISOLATION_WORD = "kubernetes"  # only marco's memory mentions it
AGENT = "code-review"  # the agent with private memory of marco


def _store_sarah(mem: MemoryManager) -> None:
    user = "sarah"
    mem.profile.update(
        user_id=user,
        name="Sarah",
        role="data scientist",
        company="Acme Retail",
        expertise=["python", "pandas", "scikit-learn"],
    )
    mem.policies.update(user_id=user, response_style="concise", format="code first, then short bullet points")
    mem.knowledge.add("Builds a churn prediction model for the marketing team", user_id=user, topics=["ml"])
    mem.knowledge.add("Her customer data lives in BigQuery", user_id=user, topics=["data"])
    mem.feedback.add(
        "Liked the short pandas snippet", user_id=user, sentiment="positive", target="code examples"
    )
    mem.feedback.add(
        "Found the long theory section unnecessary",
        user_id=user,
        sentiment="negative",
        target="answer length",
    )


def _store_marco(mem: MemoryManager) -> str:
    """Store marco's memory; return the id of one of his items (for the isolation check)."""
    user = "marco"
    mem.profile.update(
        user_id=user,
        name="Marco",
        role="backend engineer",
        location="Milan",
        languages=["Italian", "English"],
        expertise=["Go", "PostgreSQL", "Kubernetes"],
    )
    mem.policies.update(
        user_id=user, response_style="detailed, with examples", tone="direct", rules=["never use emojis"]
    )
    payments = mem.knowledge.add(
        "Maintains the payments service, written in Go", user_id=user, topics=["work", "go"]
    )
    mem.knowledge.add("Deploys services to Kubernetes with Helm", user_id=user, topics=["infra"])
    mem.feedback.add(
        "Appreciated the benchmark of the two retry strategies",
        user_id=user,
        sentiment="positive",
        target="benchmarks",
    )
    # Private to one of marco's agents: his other agents never see it.
    mem.policies.update(user_id=user, agent_id=AGENT, format="numbered review comments, most severe first")
    return payments


def _store_aiko(mem: MemoryManager) -> None:
    user = "aiko"
    mem.profile.update(
        user_id=user,
        name="Aiko",
        role="high-school teacher",
        location="Osaka",
        languages=["Japanese", "English"],
    )
    mem.policies.update(
        user_id=user, tone="friendly", language="simple English", response_style="step by step"
    )
    mem.knowledge.add(
        "Is learning Python to automate grading spreadsheets", user_id=user, topics=["python", "learning"]
    )
    mem.knowledge.add("Teaches physics to 16-year-olds", user_id=user, topics=["work"])
    mem.feedback.add(
        "Liked the analogy of variables as labelled boxes",
        user_id=user,
        sentiment="positive",
        target="explanations",
    )
    mem.feedback.add(
        "Got lost when the answer used list comprehensions",
        user_id=user,
        sentiment="negative",
        target="jargon",
    )


def _rule(title: str) -> str:
    head = f"-- {title} "
    return head + "-" * max(RULE_WIDTH - len(head), 3)


def _fresh_default_db() -> str:
    # Remove the database and its WAL side files so every run starts from the same state.
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(DEMO_FILE + suffix).unlink(missing_ok=True)
    return f"sqlite:///{DEMO_FILE}"


def run_demo(db_url: str | None, out: TextIO) -> None:
    """Store example memory for three users, print each user's compiled context, show isolation.

    Args:
        db_url: the database to use. ``None``: ``./agentmem-demo.db``, deleted and recreated first.
            Given: only the demo users (sarah, marco, aiko) are deleted from it first.
        out: where to print.
    """
    url = _fresh_default_db() if db_url is None else db_url
    with MemoryManager(db=url) as mem:
        if db_url is not None:
            for user in DEMO_USERS:
                mem.delete_user(user)
        _store_sarah(mem)
        marco_item = _store_marco(mem)
        _store_aiko(mem)

        print(
            f"agentmem demo: memory of {len(DEMO_USERS)} users stored by hand; no API key, no network.",
            file=out,
        )
        print(f"database: {url}", file=out)
        for user in DEMO_USERS:
            role = mem.profile.get(user_id=user).role
            print("", file=out)
            print(_rule(f"{user} ({role})"), file=out)
            print(f'query: "{QUESTIONS[user]}"  token_budget={BUDGET}', file=out)
            print(mem.compile(user_id=user, query=QUESTIONS[user], token_budget=BUDGET), file=out)

        print("", file=out)
        print(_rule("isolation"), file=out)
        in_marco = len(mem.search(ISOLATION_WORD, user_id="marco"))
        in_sarah = mem.search(ISOLATION_WORD, user_id="sarah")
        print(f"search {ISOLATION_WORD!r} in marco's memory: {in_marco} hit(s)", file=out)
        print(f"search {ISOLATION_WORD!r} in sarah's memory: {len(in_sarah) or 'nothing'}", file=out)
        try:
            mem.forget(marco_item, user_id="sarah")
            print(f"forget marco's item {marco_item} as sarah: deleted (isolation is BROKEN)", file=out)
        except NotFoundError as exc:
            print(f"forget marco's item {marco_item} as sarah: NotFoundError: {exc}", file=out)
        private = [i for i in mem.get(user_id="marco", agent_id=AGENT).items if i.agent_id == AGENT]
        other_ids = {i.id for i in mem.get(user_id="marco", agent_id="chat").items}
        for item in private:
            print(
                f'marco\'s {AGENT!r} agent sees its private {item.layer} {item.key}: "{item.text}"', file=out
            )
            seen = "yes (isolation is BROKEN)" if item.id in other_ids else "no"
            print(f"marco's other agents (e.g. 'chat') see it: {seen}", file=out)

    print("", file=out)
    print(f"Inspect it: agentmem --db {shlex.quote(url)} show sarah", file=out)
