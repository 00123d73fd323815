"""The export format: derived from the tables, exact on the way back, older versions still import.

Layer validation of imported values is in test_manager.py; sessions and messages in test_sessions.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import SQLModel

from agentmem import ConflictError, ExtractionError, InvalidInputError, MemoryManager
from agentmem.store.export_format import KINDS, TABLES_LEFT_OUT, VERSION
from agentmem.testing import ScriptedModel

KEY = "sk-proj-4fQx9TbLm2Wc7ZrK8vNd3HgYp6"
FAILS = "this reply is not JSON"


def test_every_column_is_exported_or_left_out_for_a_reason() -> None:
    """A column added to a table must reach the export, or be named with the reason it does not."""
    kinds = {kind.table.name: kind for kind in KINDS}
    tables = {name for name in SQLModel.metadata.tables if name.startswith("agentmem_")}
    assert tables == set(kinds) | set(TABLES_LEFT_OUT), "export each new table, or say why not"
    for name, kind in kinds.items():
        columns = set(kind.table.columns.keys())
        assert set(kind.left_out) <= columns, f"{name}: left_out names a column the table lacks"
        assert all(reason.strip() for reason in kind.left_out.values())
        assert set(kind.model.model_fields) == columns - set(kind.left_out), (
            f"{name}: every column is an exported field or is in left_out with its reason"
        )


@pytest.fixture
def managers(db_url: str) -> Iterator[dict[str, MemoryManager]]:
    """The same database through an offline manager, a failing model and a working one."""
    made = {
        "offline": MemoryManager(db=db_url),
        "failing": MemoryManager(db=db_url, model=ScriptedModel(lambda _m: FAILS), max_retries=0),
        "working": MemoryManager(
            db=db_url, model=ScriptedModel(lambda _m: {"knowledge": [{"text": "Has a dog"}]})
        ),
    }
    yield made
    for mem in made.values():
        mem.close()


def everything(managers: dict[str, MemoryManager], user: str = "sam") -> None:
    """One of each thing a user can have."""
    mem = managers["offline"]
    mem.profile.update(user_id=user, name="Sam", languages=["English"])
    mem.policies.update(user_id=user, rules=["never use emojis", "cite sources"], agent_id="coder")
    old = mem.knowledge.add("Lives in Leeds", user_id=user)
    mem.knowledge.add("Lives in York", user_id=user, replaces=old)
    mem.feedback.add("Too long", user_id=user, sentiment="negative", session_id="a")
    mem.feedback.add("Too long", user_id=user, sentiment="negative", session_id="b")
    mem.learn([{"role": "user", "content": "Hi, I'm Sam, a nurse in Leeds."}], user_id=user)
    managers["working"].learn([{"role": "user", "content": "I have a dog called Rex."}], user_id=user)
    mem.sessions.add(
        "s1",
        [
            {"role": "user", "content": "Find my shifts"},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function"}]},
            {"role": "tool", "content": "Mon, Tue", "tool_call_id": "c1"},
        ],
        user_id=user,
        agent_id="coder",
    )
    mem.sessions.summarize("s1", user_id=user)
    mem.variables.set("current_task", "plan the rota", user_id=user)
    mem.variables.set("current_task", "swap a shift", user_id=user, agent_id="coder", session_id="s1")
    mem.variables.set("current_task", "plan the week", user_id=user)  # an update, in the history
    with pytest.raises(ExtractionError):
        managers["failing"].learn([{"role": "user", "content": "I work nights at St James's."}], user_id=user)


def test_export_delete_import_export_is_identical(managers: dict[str, MemoryManager]) -> None:
    everything(managers)
    mem = managers["offline"]
    data = mem.export_user("sam")
    assert data["version"] == VERSION == 4
    for kind in KINDS:
        assert data[kind.name], f"the test should cover {kind.name}"
    assert any(e["observed_at"] for e in data["events"])  # extracted changes say how current they were
    (pending,) = data["pending"]
    assert 0 < pending["watermark"] <= len(data["events"])
    assert pending["read_at"]

    mem.delete_user("sam")
    assert mem.export_user("sam") == {**data, **{kind.name: [] for kind in KINDS}}
    mem.import_user(data)

    assert json.dumps(mem.export_user("sam")) == json.dumps(data)
    # What was learned stays learned, and the pending input can still be retried.
    again = mem.learn([{"role": "user", "content": "Hi, I'm Sam, a nurse in Leeds."}], user_id="sam")
    assert again.usage.skipped == "this input was already learned"
    report = managers["working"].retry_pending(user_id="sam")
    assert (report.retried, len(report.results), report.still_pending) == (1, 1, 0)


def test_a_version_2_document_still_imports(managers: dict[str, MemoryManager]) -> None:
    everything(managers)
    mem = managers["offline"]
    current = mem.export_user("sam")
    mem.delete_user("sam")
    kept = [e for e in current["events"] if e["layer"] != "variables"]  # version 4 added variables
    events = [{k: v for k, v in e.items() if k != "observed_at"} for e in kept]
    old = {k: v for k, v in current.items() if k not in ("learned", "pending", "variables")}
    old |= {"version": 2, "events": events}

    assert mem.import_user(old) == len(current["items"])

    expected_events = [{**e, "observed_at": None} for e in kept]
    assert mem.export_user("sam") == {
        **current,
        "events": expected_events,
        "learned": [],
        "pending": [],
        "variables": [],
    }


def exported(mem: MemoryManager, managers: dict[str, MemoryManager]) -> dict[str, Any]:
    everything(managers)
    data = mem.export_user("sam")
    mem.delete_user("sam")
    return data


def test_imported_pending_input_is_redacted_and_checked(managers: dict[str, MemoryManager]) -> None:
    mem = managers["offline"]
    data = exported(mem, managers)
    (pending,) = data["pending"]
    bad_role = {**pending, "messages": [{"role": "owner", "content": "hi"}]}
    with pytest.raises(InvalidInputError, match="role"):
        mem.import_user({**data, "pending": [bad_role]})
    too_far = {**pending, "watermark": len(data["events"]) + 1}
    with pytest.raises(InvalidInputError, match="watermark"):
        mem.import_user({**data, "pending": [too_far]})
    with pytest.raises(InvalidInputError, match="twice"):
        mem.import_user({**data, "pending": [pending, {**pending, "key": "another"}]})
    with pytest.raises(InvalidInputError, match="twice"):
        mem.import_user({**data, "learned": data["learned"] * 2})
    assert mem.export_user("sam")["items"] == []

    secret = {**pending, "messages": [{"role": "user", "content": f"my key is {KEY}"}], "error": KEY}
    mem.import_user({**data, "pending": [secret]})
    (stored,) = mem.export_user("sam")["pending"]
    assert KEY not in json.dumps(stored)


def test_a_pending_id_taken_by_another_user_is_a_conflict(managers: dict[str, MemoryManager]) -> None:
    mem = managers["offline"]
    data = exported(mem, managers)
    mem.import_user({**data, "user_id": "sam2"})
    taken = data["pending"][0]["id"]
    with pytest.raises(
        ConflictError, match="a pending extraction id in the document is already taken"
    ) as err:
        mem.import_user(
            {**data, "items": [], "events": [], "pending": [{**data["pending"][0], "watermark": 0}]}
        )
    assert taken not in str(err.value)  # it may be another user's: the error names no id
    assert mem.export_user("sam")["pending"] == []


def test_a_pending_watermark_leaves_as_how_many_of_the_users_events_it_had_seen(
    managers: dict[str, MemoryManager],
) -> None:
    # The watermark is the newest event of the whole database: here another user's.
    mem = managers["offline"]
    mem.knowledge.add("Keeps bees", user_id="sam")
    mem.knowledge.add_many(["Rows on Sundays", "Reads sagas"], user_id="kim")
    with pytest.raises(ExtractionError):
        managers["failing"].learn([{"role": "user", "content": "I work nights."}], user_id="sam")
    data = mem.export_user("sam")
    (pending,) = data["pending"]
    assert pending["watermark"] == len(data["events"]) == 1
    mem.delete_user("sam")
    mem.import_user(data)
    assert mem.export_user("sam")["pending"][0]["watermark"] == 1
