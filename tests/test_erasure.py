"""Erasure holds: whatever is under way for a user when ``delete_user`` commits writes nothing after it.

Each test holds one kind of work inside its model call (a reply that waits at a gate), deletes the
user meanwhile, then lets the work finish, and scans every table for the user's rows. A user's
first-ever learn is the hard case: there is no row of the user yet to notice the deletion by. Then the
user is used again: work begun after the deletion is written as usual.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import column, inspect, select, table

from agentmem import Agent, ErasedError, ExtractionError, MemoryManager, ScopeError
from agentmem.extraction.learner import ERASED
from agentmem.scope import Scope
from agentmem.store import Store
from agentmem.store.migrations import FTS_TABLE
from agentmem.store.search import owner_tag, owner_token
from agentmem.testing import ScriptedModel, ToolCall

USER = "sarah"
FACT = {"knowledge": [{"text": "Has a rare condition"}]}


class Gate:
    """A scripted reply that waits, inside the model call, until the test opens the gate."""

    def __init__(self, reply: Any) -> None:
        self.reply, self.opened, self.reached = reply, threading.Event(), threading.Event()

    def __call__(self, _messages: list[dict[str, Any]]) -> Any:
        self.reached.set()
        assert self.opened.wait(10), "the test never opened the gate"
        return self.reply


def said(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def leftovers(mem: MemoryManager, user_id: str) -> dict[str, int]:
    """Rows of the user in every table that has a user_id column (and SQLite's full-text index)."""
    engine = mem._store.engine
    found: dict[str, int] = {}
    with engine.connect() as conn:
        tables = [name for name in inspect(conn).get_table_names() if name.startswith("agentmem_")]
        for name in tables:
            columns = {c["name"] for c in inspect(conn).get_columns(name)}
            if "user_id" in columns:
                rows = conn.execute(
                    select(column("user_id")).select_from(table(name)).where(column("user_id") == user_id)
                ).all()
                if rows:
                    found[name] = len(rows)
        if FTS_TABLE in tables:
            # The user's rows of the index: those with a word under the user's tag (a prefix query).
            tag = owner_tag(owner_token(user_id))
            fts = conn.exec_driver_sql(
                f"SELECT count(*) FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ?", (f'"{tag}"*',)
            ).scalar()
            if fts:
                found[FTS_TABLE] = int(fts)
    return found


def run_in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Start ``target`` in a thread; the dict gets its ``result`` or ``error`` when it ends."""
    outcome: dict[str, Any] = {}

    def body() -> None:
        try:
            outcome["result"] = target()
        except BaseException as exc:  # handed to the test, which asserts on it
            outcome["error"] = exc

    thread = threading.Thread(target=body)
    thread.start()
    return thread, outcome


def finish(gate: Gate, thread: threading.Thread) -> None:
    gate.opened.set()
    thread.join(10)
    assert not thread.is_alive()


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel()


@pytest.fixture
def mem(make_mem: Callable[..., MemoryManager], model: ScriptedModel) -> MemoryManager:
    return make_mem(model=model, max_retries=0)


def assert_used_again(mem: MemoryManager, model: ScriptedModel) -> None:
    """Work begun after the deletion is written as usual."""
    model.add({"knowledge": [{"text": "Starts afresh"}]})
    result = mem.learn(said("I start afresh."), user_id=USER)
    assert result.usage.skipped is None
    assert [i.text for i in mem.get(user_id=USER).knowledge] == ["Starts afresh"]


@pytest.mark.parametrize("earlier_memory", [False, True], ids=["first-ever", "with-memory"])
def test_a_learn_in_flight_writes_nothing_after_delete_user(
    mem: MemoryManager, model: ScriptedModel, earlier_memory: bool
) -> None:
    if earlier_memory:
        mem.knowledge.add("Has a cat", user_id=USER)
    gate = Gate(FACT)
    model.add(gate)
    thread, outcome = run_in_thread(lambda: mem.learn(said("I have a rare condition."), user_id=USER))
    assert gate.reached.wait(10)
    mem.delete_user(USER)
    finish(gate, thread)
    result = outcome["result"]
    assert (result.usage.skipped, result.all_changes) == (ERASED, [])
    assert leftovers(mem, USER) == {}
    assert_used_again(mem, model)


def test_an_alearn_in_flight_writes_nothing_after_delete_user(
    mem: MemoryManager, model: ScriptedModel
) -> None:
    gate = Gate(FACT)
    model.add(gate)
    thread, outcome = run_in_thread(
        lambda: asyncio.run(mem.alearn(said("I have a rare condition."), user_id=USER))
    )
    assert gate.reached.wait(10)
    mem.delete_user(USER)
    finish(gate, thread)
    assert outcome["result"].usage.skipped == ERASED
    assert leftovers(mem, USER) == {}
    assert_used_again(mem, model)


def test_a_learn_that_fails_after_delete_user_keeps_no_pending_input(
    mem: MemoryManager, model: ScriptedModel
) -> None:
    gate = Gate("this is not JSON")
    model.add(gate)
    thread, outcome = run_in_thread(lambda: mem.learn(said("I have a rare condition."), user_id=USER))
    assert gate.reached.wait(10)
    mem.delete_user(USER)
    finish(gate, thread)
    error = outcome["error"]
    assert isinstance(error, ExtractionError)
    assert error.pending_id is None
    assert leftovers(mem, USER) == {}
    assert_used_again(mem, model)


@pytest.mark.parametrize("retry_fails", [False, True], ids=["retry-succeeds", "retry-fails-again"])
def test_retry_pending_in_flight_writes_nothing_after_delete_user(
    mem: MemoryManager, model: ScriptedModel, retry_fails: bool
) -> None:
    model.add("this is not JSON")
    with pytest.raises(ExtractionError):
        mem.learn(said("I have a rare condition."), user_id=USER)
    assert leftovers(mem, USER) == {"agentmem_pending": 1, "agentmem_generations": 1}
    gate = Gate("still not JSON" if retry_fails else FACT)
    model.add(gate)
    thread, outcome = run_in_thread(lambda: mem.retry_pending(user_id=USER))
    assert gate.reached.wait(10)
    mem.delete_user(USER)
    finish(gate, thread)
    report = outcome["result"]
    assert (report.retried, report.still_pending) == (1, 1 if retry_fails else 0)
    if not retry_fails:
        assert report.results[0].usage.skipped == ERASED
    assert leftovers(mem, USER) == {}
    assert mem.retry_pending().retried == 0
    assert_used_again(mem, model)


def test_a_retry_overtaken_by_delete_user_leaves_the_same_input_kept_again_since(
    mem: MemoryManager, model: ScriptedModel
) -> None:
    model.add("this is not JSON")
    with pytest.raises(ExtractionError):
        mem.learn(said("I have a rare condition."), user_id=USER)
    gate = Gate(FACT)
    model.add(gate)
    thread, outcome = run_in_thread(lambda: mem.retry_pending(user_id=USER))
    assert gate.reached.wait(10)
    mem.delete_user(USER)
    model.add("still not JSON")  # the user, begun anew, says the same and it fails again
    with pytest.raises(ExtractionError) as again:
        mem.learn(said("I have a rare condition."), user_id=USER)
    finish(gate, thread)
    assert outcome["result"].results[0].usage.skipped == ERASED
    assert [row["id"] for row in mem._store.pending(USER)] == [again.value.pending_id]
    assert mem.get(user_id=USER).knowledge == []


@pytest.mark.parametrize("run", ["run", "arun"])
def test_an_agents_background_learning_writes_nothing_after_delete_user(
    make_mem: Callable[..., MemoryManager], model: ScriptedModel, run: str
) -> None:
    mem = make_mem(model=model, max_retries=0, update_memory_on_run=True)
    agent = Agent(ScriptedModel(lambda _m: "Noted."), memory=mem)
    try:
        gate = Gate(FACT)
        model.add(gate)
        if run == "run":
            reply = agent.run("I have a rare condition.", user_id=USER)
        else:
            reply = asyncio.run(agent.arun("I have a rare condition.", user_id=USER))
        assert reply.content == "Noted."
        assert gate.reached.wait(10)  # the turn is stored; its learning waits in the model call
        mem.delete_user(USER)
        gate.opened.set()
        assert agent.wait_for_memory(10)
        assert leftovers(mem, USER) == {}
        assert reply.memory_changes == []
        model.add({"knowledge": [{"text": "Starts afresh"}]})
        agent.run("I start afresh.", user_id=USER)
        assert agent.wait_for_memory(10)
        assert [i.text for i in mem.get(user_id=USER).knowledge] == ["Starts afresh"]
    finally:
        agent.close()


def test_an_agent_run_answering_during_delete_user_stores_and_learns_nothing(
    make_mem: Callable[..., MemoryManager], model: ScriptedModel
) -> None:
    mem = make_mem(model=model, max_retries=0, update_memory_on_run=True, enable_agentic_memory=True)
    chat = ScriptedModel()
    agent = Agent(chat, memory=mem)
    try:
        # The model is answering (then asks for a memory tool) when the user is deleted.
        gate = Gate(ToolCall("memory_remember", {"layer": "knowledge", "value": "Has a rare condition"}))
        chat.add(gate, "Noted.")
        thread, outcome = run_in_thread(lambda: agent.run("I have a rare condition.", user_id=USER))
        assert gate.reached.wait(10)
        mem.delete_user(USER)
        finish(gate, thread)
        assert agent.wait_for_memory(10)
        result = outcome["result"]
        assert result.content == "Noted."  # the reply is never lost
        tool_result = json.loads(chat.requests[1].messages[-1]["content"])
        assert tool_result["ok"] is False
        assert "deleted" in tool_result["error"]
        assert model.requests == []  # nothing learned in the background either
        assert leftovers(mem, USER) == {}
    finally:
        agent.close()


def test_a_session_summary_in_flight_writes_nothing_after_delete_user(
    make_mem: Callable[..., MemoryManager], model: ScriptedModel
) -> None:
    mem = make_mem(model=model, max_retries=0, enable_session_summaries=True)
    gate = Gate("The user shared a diagnosis.")
    model.add(gate)
    messages = [{"role": "user", "content": f"Private detail {i}."} for i in range(6)]
    thread, outcome = run_in_thread(lambda: mem.sessions.add("s1", messages, user_id=USER))
    assert gate.reached.wait(10)  # the messages are stored; the summary is being written
    mem.delete_user(USER)
    mem.sessions.add("s1", said("A new start."), user_id=USER)  # the same session id, begun anew
    finish(gate, thread)
    assert outcome["result"] == 6
    assert mem.sessions.summary("s1", user_id=USER) is None  # not the old messages' summary
    assert mem.sessions.messages("s1", user_id=USER) == said("A new start.")
    mem.delete_user(USER)
    assert leftovers(mem, USER) == {}


def test_a_generation_taken_before_delete_user_writes_nothing(
    mem: MemoryManager, model: ScriptedModel
) -> None:
    """The hand-held form, for an agent loop of one's own: every write given a stale generation is
    refused, and one taken after the deletion works."""
    stale = mem.generation(user_id=USER)
    mem.delete_user(USER)
    with pytest.raises(ErasedError, match="deleted"):
        mem.sessions.add("s1", said("Hello"), user_id=USER, generation=stale)
    tools = mem.tools(user_id=USER, generation=stale)
    refused = json.loads(tools.dispatch("memory_remember", {"layer": "knowledge", "value": "Likes tea"}))
    assert refused["ok"] is False
    assert "deleted" in refused["error"]
    model.add(FACT)
    assert mem.learn(said("I have a rare condition."), user_id=USER, generation=stale).usage.skipped == ERASED
    assert leftovers(mem, USER) == {}

    fresh = mem.generation(user_id=USER)
    assert fresh != stale
    with pytest.raises(ScopeError, match="generation"):  # refused before any model call
        mem.learn(said("I have a rare condition."), user_id=USER, generation=7)  # type: ignore[arg-type]
    mem.sessions.add("s1", said("Hello"), user_id=USER, generation=fresh)
    tools = mem.tools(user_id=USER, generation=fresh)
    assert json.loads(tools.dispatch("memory_remember", {"layer": "knowledge", "value": "Likes tea"}))["ok"]
    assert [i.text for i in mem.get(user_id=USER).knowledge] == ["Likes tea"]


def test_delete_user_leaves_no_row_of_the_user_and_no_other_users_work_is_stopped(
    mem: MemoryManager, model: ScriptedModel
) -> None:
    marco = mem.generation(user_id="marco")
    model.add(FACT)
    mem.learn(said("I have a rare condition."), user_id=USER)
    mem.sessions.add("s1", said("Hello"), user_id=USER)
    mem.variables.set("current_task", "rest", user_id=USER, agent_id="nurse", session_id="s1")
    before = set(leftovers(mem, USER))
    kinds = ("items", "events", "learned", "sessions", "messages", "generations", "variables")
    assert {f"agentmem_{kind}" for kind in kinds} <= before  # the scan sees what there is
    assert (FTS_TABLE in before) == mem.db_url.startswith("sqlite")
    mem.delete_user(USER)
    assert leftovers(mem, USER) == {}
    assert mem.generation(user_id="marco") == marco
    mem.sessions.add("s1", said("Hello"), user_id="marco", generation=marco)


# ---- several processes --------------------------------------------------------------------------

LEARNER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from agentmem import MemoryManager
    from agentmem.testing import ScriptedModel

    url, flags = sys.argv[1], Path(sys.argv[2])

    def held(_messages):
        (flags / "reached").touch()
        deadline = time.monotonic() + 20
        while not (flags / "open").exists():
            assert time.monotonic() < deadline, "the test never opened the gate"
            time.sleep(0.02)
        return {"knowledge": [{"text": "Has a rare condition"}]}

    with MemoryManager(db=url, model=ScriptedModel(held), max_retries=0) as mem:
        result = mem.learn([{"role": "user", "content": "I have a rare condition."}], user_id="sarah")
    print(json.dumps({"skipped": result.usage.skipped}))
    """
)


def test_a_first_learn_in_another_process_writes_nothing_after_delete_user(
    mem: MemoryManager, model: ScriptedModel, tmp_path: Path
) -> None:
    """Two processes on one database (several app servers): the learn runs in one, the deletion in
    the other."""
    child = subprocess.Popen(
        [sys.executable, "-c", LEARNER, mem.db_url, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "reached").exists():
            assert child.poll() is None, child.communicate()[1]
            assert time.monotonic() < deadline, "the other process never reached its model call"
            time.sleep(0.02)
        mem.delete_user(USER)
        (tmp_path / "open").touch()
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    assert json.loads(out) == {"skipped": ERASED}
    assert leftovers(mem, USER) == {}
    assert_used_again(mem, model)


@pytest.mark.postgres
def test_the_postgres_user_lock_is_per_schema(pg_schemas: Any) -> None:
    """Two databases in one PostgreSQL server (schemas) never wait for each other's user locks."""
    first, second = Store(pg_schemas.new_url()), Store(pg_schemas.new_url())
    try:
        with first.write(Scope(USER)):
            thread, outcome = run_in_thread(lambda: second.generation(Scope(USER)))
            thread.join(10)
            assert not thread.is_alive(), "a write in another schema waited for this one's lock"
        assert "error" not in outcome
    finally:
        first.close()
        second.close()
