"""Newer information wins, whatever order the writes land in.

An extraction can land late: a retried pending input, a slow background learn. Whatever the user said
or did after that input was read must not be overwritten by it; and a deleted user must stay deleted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from agentmem import ExtractionError, MemoryManager, StoreError
from agentmem.extraction import learner
from agentmem.testing import ScriptedModel


class Gate:
    """A scripted reply that waits until the test opens the gate."""

    def __init__(self, reply: dict[str, Any]) -> None:
        self.reply, self.opened, self.reached = reply, threading.Event(), threading.Event()

    def __call__(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        self.reached.set()
        assert self.opened.wait(10), "the test never opened the gate"
        return self.reply


def said(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel()


@pytest.fixture
def mem(db_url: str, model: ScriptedModel) -> Iterator[MemoryManager]:
    manager = MemoryManager(db=db_url, model=model, max_retries=0)
    yield manager
    manager.close()


def learn_in_background(mem: MemoryManager, text: str) -> threading.Thread:
    thread = threading.Thread(target=mem.learn, args=(said(text),), kwargs={"user_id": "sarah"})
    thread.start()
    return thread


def test_a_retried_old_input_does_not_overwrite_what_was_learned_since(
    mem: MemoryManager, model: ScriptedModel
) -> None:
    model.add("not json")  # "I live in Berlin" fails and stays pending
    with pytest.raises(ExtractionError):
        mem.learn(said("I live in Berlin."), user_id="sarah")
    model.add({"profile": {"location": "Munich"}})
    mem.learn(said("I moved to Munich."), user_id="sarah")
    model.add({"profile": {"location": "Berlin"}, "knowledge": [{"text": "Lives near a lake"}]})
    report = mem.retry_pending()
    assert report.still_pending == 0
    assert mem.get(user_id="sarah").profile.location == "Munich"
    assert report.results[0].usage.dropped == {"stale": 1}
    assert [i.text for i in mem.get(user_id="sarah").knowledge] == ["Lives near a lake"]  # the rest lands


def test_a_slow_extraction_does_not_overwrite_a_later_direct_write(
    mem: MemoryManager, model: ScriptedModel
) -> None:
    gate = Gate({"profile": {"location": "Berlin"}})
    model.add(gate)
    mem.profile.update(user_id="sarah", name="Sarah")  # history exists before the input is read
    thread = learn_in_background(mem, "I live in Berlin.")
    assert gate.reached.wait(10)
    mem.profile.update(user_id="sarah", location="Munich")  # e.g. a memory tool, while it waits
    gate.opened.set()
    thread.join()
    assert mem.get(user_id="sarah").profile.location == "Munich"


def test_of_two_concurrent_learns_the_later_read_input_wins_in_either_order(
    mem: MemoryManager, model: ScriptedModel
) -> None:
    mem.profile.update(user_id="sarah", name="Sarah")
    older = Gate({"profile": {"location": "Berlin"}})
    newer = Gate({"profile": {"location": "Munich"}})
    model.add(older, newer)
    first = learn_in_background(mem, "I live in Berlin.")
    assert older.reached.wait(10)
    second = learn_in_background(mem, "Now I live in Munich.")
    assert newer.reached.wait(10)
    newer.opened.set()  # the newer input lands first ...
    second.join()
    older.opened.set()  # ... and the older one after it: it must not win
    first.join()
    assert mem.get(user_id="sarah").profile.location == "Munich"


def test_a_learn_in_flight_does_not_bring_back_a_deleted_user(
    mem: MemoryManager, model: ScriptedModel
) -> None:
    mem.knowledge.add("Has a cat", user_id="sarah")
    gate = Gate({"knowledge": [{"text": "Has diabetes"}]})
    model.add(gate)
    thread = learn_in_background(mem, "I have diabetes.")
    assert gate.reached.wait(10)
    mem.delete_user("sarah")
    gate.opened.set()
    thread.join()
    assert mem.export_user("sarah")["items"] == []


def test_a_failure_while_applying_keeps_the_input_pending(
    mem: MemoryManager, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    model.add({"knowledge": [{"text": "Runs marathons"}]})

    def failing_apply(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(learner, "apply_patches", failing_apply)
    with pytest.raises(StoreError, match="could not apply"):
        mem.learn(said("I run marathons."), user_id="sarah")
    monkeypatch.undo()
    assert [row["user_id"] for row in mem._store.pending(None)] == ["sarah"]
    model.add({"knowledge": [{"text": "Runs marathons"}]})
    assert mem.retry_pending().still_pending == 0
    assert [i.text for i in mem.get(user_id="sarah").knowledge] == ["Runs marathons"]
