"""``agentmem demo``: three users talk to an assistant; agentmem learns from each turn, then shows each
user's memory block and that the users are kept apart.

Learning uses the built-in offline extractor, so the demo needs no API key and no network. Set
``AGENTMEM_MODEL`` (any litellm model id, e.g. ``gpt-4o-mini``) to learn with a real model instead.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sqlalchemy import make_url

from .errors import ExtractionError, NotFoundError
from .manager import MemoryManager
from .records import LearnResult

DEMO_FILE = "agentmem-demo.db"
BUDGET = 400
RULE_WIDTH = 72
AGENT = "code-review"  # one of marco's agents, with memory private to it
ISOLATION_WORD = "payments"  # only marco's memory mentions it


@dataclass(frozen=True)
class Turn:
    user: str
    assistant: str
    agent_id: str | None = None


CONVERSATIONS: dict[str, list[Turn]] = {
    "sarah": [
        Turn("Hi, I'm Sarah, a data scientist at Acme Retail. Keep answers short.", "Hi Sarah! Will do."),
        Turn(
            "I'm working on a churn prediction model for the marketing team.",
            "Nice. What does your customer data look like?",
        ),
        Turn(
            "How do I fill missing values in pandas?",
            "Use df.fillna(df.median()) for numeric columns; drop rows only when few are missing.",
        ),
        Turn("That was perfect, thanks!", "Glad it helped."),
    ],
    "marco": [
        Turn(
            "I'm Marco, a backend engineer at Finly. I live in Milan and I speak Italian and English.",
            "Ciao Marco, nice to meet you.",
        ),
        Turn("Please always include tests in code examples. Never use emojis.", "Understood."),
        Turn("I'm building a payments service in Go.", "Great choice for that. Which database?"),
        Turn("ok", "Let me know when you want to dig in."),
        Turn(
            "Always number review comments, most severe first.",
            "Got it: numbered, by severity.",
            agent_id=AGENT,
        ),
    ],
    "aiko": [
        Turn(
            "Hello! My name is Aiko. I work as a teacher at Osaka High School.",
            "Hello Aiko! How can I help?",
        ),
        Turn("I'm learning Python to automate grading spreadsheets.", "A great first project."),
        Turn(
            "Can you show me how to double every grade?",
            "Use a list comprehension: [g * 2 for g in grades] builds a new list.",
        ),
        Turn("That didn't help, it was confusing.", "Sorry! Let's go step by step with a loop."),
        Turn("I prefer step-by-step explanations over long paragraphs.", "Step by step it is."),
    ],
}

QUESTIONS = {  # what each user asks next: the query ranks their knowledge and feedback
    "sarah": "How should I split the data for the churn model?",
    "marco": "How do I add retries to the payments client?",
    "aiko": "How do I read grades from a CSV file?",
}


def _rule(title: str) -> str:
    head = f"-- {title} "
    return head + "-" * max(RULE_WIDTH - len(head), 3)


def _fresh_default_db() -> str:
    # Remove the database and its WAL side files so every run starts from the same state.
    path = Path(DEMO_FILE).absolute()
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    # An absolute path: the command printed at the end works from any folder.
    return f"sqlite:///{path}"


def _from_any_folder(url: str) -> str:
    """The URL with a relative SQLite path made absolute, so a command naming it works from any folder."""
    parsed = make_url(url)
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:" or Path(path).is_absolute():
        return url
    return parsed.set(database=str(Path(path).absolute())).render_as_string(hide_password=False)


def _learned(result: LearnResult) -> str:
    if result.usage.skipped:
        return f"nothing to learn ({result.usage.skipped}; {result.usage.model_calls} model calls)"
    parts = []
    for change in result.all_changes:
        value = change.new["text"] if isinstance(change.new, dict) else change.new
        value = ", ".join(value) if isinstance(value, list) else value
        parts.append(f"{change.layer} {change.op}: {value}")
    return "; ".join(parts) if parts else "nothing new"


def run_demo(db_url: str | None, out: TextIO, program: str = "agentmem") -> None:
    """Learn from three users' conversations, print each user's context block, show isolation.

    Args:
        db_url: the database to use. ``None``: ``./agentmem-demo.db``, deleted and recreated first.
            Given: only the demo users (sarah, marco, aiko) are deleted from it first.
        out: where to print.
        program: how the closing hint names the ``agentmem`` command.
    """
    url = _fresh_default_db() if db_url is None else db_url
    model = os.environ.get("AGENTMEM_MODEL") or None
    with MemoryManager(db=url, model=model) as mem:
        if db_url is not None:
            for user in CONVERSATIONS:
                mem.delete_user(user)
        how = f"model {model}" if model else "the offline extractor (no API key, no network)"
        print(f"agentmem demo: three users talk to an assistant; memory learned with {how}.", file=out)
        print(f"database: {url}", file=out)
        for user, turns in CONVERSATIONS.items():
            print("", file=out)
            print(_rule(user), file=out)
            previous: list[dict[str, str]] = []  # the answer a reaction ("that was perfect") refers to
            for turn in turns:
                reply = {"role": "assistant", "content": turn.assistant}
                messages = [*previous, {"role": "user", "content": turn.user}, reply]
                previous = [reply]
                where = f" (to agent {turn.agent_id!r})" if turn.agent_id else ""
                print(f"{user}{where}: {turn.user}", file=out)
                try:
                    result = mem.learn(
                        messages, user_id=user, agent_id=turn.agent_id, session_id=f"{user}-demo"
                    )
                    print(f"  learned: {_learned(result)}", file=out)
                except ExtractionError as exc:
                    print(f"  not learned, kept for retry_pending(): {exc}", file=out)
            print(f'next question: "{QUESTIONS[user]}"  token_budget={BUDGET}', file=out)
            print(mem.compile(user_id=user, query=QUESTIONS[user], token_budget=BUDGET), file=out)

        print("", file=out)
        print(_rule("isolation"), file=out)
        marco_hits = mem.search(ISOLATION_WORD, user_id="marco")
        print(f"search {ISOLATION_WORD!r} in marco's memory: {len(marco_hits)} hit(s)", file=out)
        sarah_hits = len(mem.search(ISOLATION_WORD, user_id="sarah")) or "nothing"
        print(f"search {ISOLATION_WORD!r} in sarah's memory: {sarah_hits}", file=out)
        if marco_hits:
            marco_item = marco_hits[0].item.id
            try:
                mem.forget(marco_item, user_id="sarah")
                print(f"forget marco's item {marco_item} as sarah: deleted (isolation is BROKEN)", file=out)
            except NotFoundError as exc:
                print(f"forget marco's item {marco_item} as sarah: NotFoundError: {exc}", file=out)
        private = [i for i in mem.get(user_id="marco", agent_id=AGENT).items if i.agent_id == AGENT]
        other_ids = {i.id for i in mem.get(user_id="marco", agent_id="chat").items}
        for item in private:
            print(f'marco\'s {AGENT!r} agent has a private {item.layer} item: "{item.text}"', file=out)
            seen = "yes (isolation is BROKEN)" if item.id in other_ids else "no"
            print(f"marco's other agents (e.g. 'chat') see it: {seen}", file=out)

    print("", file=out)
    # marco: his shared memory, then what his code-review agent keeps privately.
    print(f"Inspect it: {program} show marco --db {shlex.quote(_from_any_folder(url))}", file=out)
