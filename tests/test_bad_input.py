"""Text no database stores alike (lone surrogates, NUL and other control characters) and data nested
too deep are refused with an InvalidInputError at every entry point, on both backends, before any
model call, and leave stored memory as it was."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select

from agentmem import (
    Agent,
    ExtractionError,
    InvalidInputError,
    MemoryManager,
    ModelRequest,
    ModelResponse,
    ScopeError,
)
from agentmem.store.export_format import KINDS
from agentmem.testing import ScriptedModel
from agentmem.validation import MAX_DEPTH, checked_json, checked_text, cleaned_text

BAD_TEXT = {
    "lone surrogate": "I live in Oslo \ud800 now",
    "NUL": "I live in Oslo \x00 now",
    "escape": "I live in Oslo \x1b[31m now",
    "bell": "I live in Oslo \x07 now",
    "C1 escape": "I live in Oslo \x9b31m now",
    "DEL": "I live in Oslo \x7f now",
}
BAD_ID = {"lone surrogate": "ivy\udfff", "NUL": "ivy\x00", "escape": "ivy\x1b", "C1 escape": "ivy\x9b"}
USER = "sarah"
Entry = Callable[[MemoryManager, str], Any]


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel(lambda _messages: {"knowledge": [{"text": "Lives in Oslo"}]})


@pytest.fixture
def seeded(make_mem: Callable[..., MemoryManager], model: ScriptedModel) -> MemoryManager:
    """A manager with a model, and a user with something in every table."""
    mem = make_mem(model=model)
    mem.profile.update(user_id=USER, name="Sarah")
    mem.knowledge.add("Runs marathons", user_id=USER)
    mem.sessions.add("s1", [{"role": "user", "content": "Hello"}], user_id=USER)
    mem.variables.set("current_task", "plan a run", user_id=USER, session_id="s1")
    mem.learn([{"role": "user", "content": "I live in Oslo."}], user_id=USER)
    failing = make_mem(model=ScriptedModel([ValueError("the model is down")]), max_retries=0)
    with pytest.raises(ExtractionError):  # kept as a pending extraction
        failing.learn([{"role": "user", "content": "I have a cat."}], user_id=USER)
    model.requests.clear()
    return mem


def snapshot(mem: MemoryManager) -> tuple[dict[str, Any], dict[str, int]]:
    """The seeded user's export and every table's row count: what a refused input must not change."""
    counts = {}
    with mem._store.engine.connect() as conn:
        for kind in KINDS:
            counts[kind.name] = int(conn.execute(select(func.count()).select_from(kind.table)).scalar_one())
    return mem.export_user(USER), counts


def said(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


TEXT_ENTRIES: dict[str, Entry] = {
    "knowledge.add": lambda mem, bad: mem.knowledge.add(bad, user_id=USER),
    "knowledge.add topics": lambda mem, bad: mem.knowledge.add("Likes tea", topics=[bad], user_id=USER),
    "profile.update": lambda mem, bad: mem.profile.update(user_id=USER, role=bad),
    "profile.update list": lambda mem, bad: mem.profile.update(user_id=USER, languages=["English", bad]),
    "policies.update": lambda mem, bad: mem.policies.update(user_id=USER, rules=[bad]),
    "policies.withdraw": lambda mem, bad: mem.policies.withdraw("rules", bad, user_id=USER),
    "feedback.add": lambda mem, bad: mem.feedback.add(bad, user_id=USER),
    "learn": lambda mem, bad: mem.learn(said(bad), user_id=USER),
    "learn content parts": lambda mem, bad: mem.learn(
        [{"role": "user", "content": [{"type": "text", "text": bad}]}], user_id=USER
    ),
    "learn assistant turn": lambda mem, bad: mem.learn(
        [{"role": "assistant", "content": bad}, {"role": "user", "content": "I live in Oslo."}], user_id=USER
    ),
    "alearn": lambda mem, bad: asyncio.run(mem.alearn(said(bad), user_id=USER)),
    "sessions.add": lambda mem, bad: mem.sessions.add("s1", said(bad), user_id=USER),
    "sessions.add tool_calls": lambda mem, bad: mem.sessions.add(
        "s1",
        [{"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "function": {"name": bad}}]}],
        user_id=USER,
    ),
    "sessions.add name": lambda mem, bad: mem.sessions.add(
        "s1", [{"role": "tool", "content": "ok", "tool_call_id": "c1", "name": bad}], user_id=USER
    ),
    "variables.set": lambda mem, bad: mem.variables.set("current_task", bad, user_id=USER),
    "compile query": lambda mem, bad: mem.compile(user_id=USER, query=bad),
    "search": lambda mem, bad: mem.search(bad, user_id=USER),
    "memory tool remember": lambda mem, bad: _tool(
        mem, "memory_remember", {"layer": "knowledge", "value": bad}
    ),
}
ID_ENTRIES: dict[str, Entry] = {
    "get user_id": lambda mem, bad: mem.get(user_id=bad),
    "get agent_id": lambda mem, bad: mem.get(user_id=USER, agent_id=bad),
    "compile user_id": lambda mem, bad: mem.compile(user_id=bad),
    "knowledge.add user_id": lambda mem, bad: mem.knowledge.add("Likes tea", user_id=bad),
    "knowledge.add session_id": lambda mem, bad: mem.knowledge.add("Likes tea", user_id=USER, session_id=bad),
    "learn user_id": lambda mem, bad: mem.learn(said("I live in Oslo."), user_id=bad),
    "learn agent_id": lambda mem, bad: mem.learn(said("I live in Oslo."), user_id=USER, agent_id=bad),
    "learn session_id": lambda mem, bad: mem.learn(said("I live in Oslo."), user_id=USER, session_id=bad),
    "sessions.add session_id": lambda mem, bad: mem.sessions.add(bad, said("Hello"), user_id=USER),
    "variables.set user_id": lambda mem, bad: mem.variables.set("task", "x", user_id=bad),
    "variables.set agent_id": lambda mem, bad: mem.variables.set("task", "x", user_id=USER, agent_id=bad),
    "variables.set session_id": lambda mem, bad: mem.variables.set("task", "x", user_id=USER, session_id=bad),
    "variables.list session_id": lambda mem, bad: mem.variables.list(user_id=USER, session_id=bad),
    "forget item_id": lambda mem, bad: mem.forget(bad, user_id=USER),
    "history item_id": lambda mem, bad: mem.history(user_id=USER, item_id=bad),
    "delete_user": lambda mem, bad: mem.delete_user(bad),
    "retry_pending": lambda mem, bad: mem.retry_pending(user_id=bad),
    "pending": lambda mem, bad: mem.pending(user_id=bad),
    "sessions.get session_id": lambda mem, bad: mem.sessions.get(bad, user_id=USER),
}


def _tool(mem: MemoryManager, name: str, arguments: dict[str, Any]) -> None:
    """A memory tool reports a refusal to the model as its output; raise it here to assert on it."""
    import json

    output = json.loads(mem.tools(user_id=USER).dispatch(name, json.dumps(arguments)))
    if "error" in output:
        raise InvalidInputError(output["error"])


@pytest.mark.parametrize("bad", list(BAD_TEXT.values()), ids=list(BAD_TEXT))
@pytest.mark.parametrize("entry", list(TEXT_ENTRIES), ids=list(TEXT_ENTRIES))
def test_bad_text_is_refused_and_nothing_changes(
    seeded: MemoryManager, model: ScriptedModel, entry: str, bad: str
) -> None:
    before = snapshot(seeded)
    with pytest.raises(InvalidInputError, match=r"lone surrogate|control character"):
        TEXT_ENTRIES[entry](seeded, bad)
    assert snapshot(seeded) == before
    assert model.requests == []  # refused before any model call


@pytest.mark.parametrize("bad", list(BAD_ID.values()), ids=list(BAD_ID))
@pytest.mark.parametrize("entry", list(ID_ENTRIES), ids=list(ID_ENTRIES))
def test_bad_ids_are_refused_and_nothing_changes(
    seeded: MemoryManager, model: ScriptedModel, entry: str, bad: str
) -> None:
    before = snapshot(seeded)
    with pytest.raises(ScopeError) as raised:
        ID_ENTRIES[entry](seeded, bad)
    assert isinstance(raised.value, InvalidInputError)  # a bad id is bad input
    assert snapshot(seeded) == before
    assert model.requests == []


DEEP_ENTRIES: dict[str, Entry] = {
    "sessions.add tool_calls": lambda mem, deep: mem.sessions.add(
        "s1", [{"role": "assistant", "content": "", "tool_calls": deep}], user_id=USER
    ),
    "profile.update list": lambda mem, deep: mem.profile.update(user_id=USER, languages=deep),
    "knowledge.add topics": lambda mem, deep: mem.knowledge.add("Likes tea", topics=deep, user_id=USER),
}


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 3000])
@pytest.mark.parametrize("entry", list(DEEP_ENTRIES), ids=list(DEEP_ENTRIES))
def test_deep_nesting_is_refused_and_nothing_changes(seeded: MemoryManager, entry: str, depth: int) -> None:
    before = snapshot(seeded)
    with pytest.raises(InvalidInputError):
        DEEP_ENTRIES[entry](seeded, nested(depth))
    assert snapshot(seeded) == before


def test_tab_and_newlines_are_kept(seeded: MemoryManager) -> None:
    seeded.sessions.add("s1", said("line one\n\tline two\r\n"), user_id=USER)
    assert seeded.sessions.messages("s1", user_id=USER)[-1]["content"] == "line one\n\tline two\r\n"
    seeded.knowledge.add("Speaks Norwegian\tand English", user_id=USER)
    assert "Speaks Norwegian\tand English" in [i.text for i in seeded.get(user_id=USER).items]


def test_nesting_up_to_the_limit_is_stored(seeded: MemoryManager) -> None:
    tool_calls = [{"id": "c1", "function": {"name": "f", "arguments": "{}"}, "path": nested(MAX_DEPTH - 4)}]
    seeded.sessions.add("s1", [{"role": "assistant", "content": "", "tool_calls": tool_calls}], user_id=USER)
    assert seeded.sessions.messages("s1", user_id=USER)[-1]["tool_calls"] == tool_calls


# ---- import --------------------------------------------------------------------------------------


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to an export document: ``value`` at ``path`` (an object key is added)."""

    def change(doc: dict[str, Any]) -> None:
        target = doc
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return change


IMPORT_CASES: dict[str, Callable[[dict[str, Any]], None]] = {
    **{
        f"{where}, {kind}": _set(path, bad)
        for where, path in {
            "item value": ("items", 0, "value"),
            "message content": ("messages", 0, "content"),
            "message extra": ("messages", 0, "extra", "name"),
            "event reason": ("events", 0, "reason"),
            "event key": ("events", 0, "key"),
            "session id": ("sessions", 0, "session_id"),
            "session summary": ("sessions", 0, "summary"),
            "pending error": ("pending", 0, "error"),
            "pending message": ("pending", 0, "messages", 0, "content"),
            "variable value": ("variables", 0, "value"),
            "variable name": ("variables", 0, "name"),
        }.items()
        for kind, bad in BAD_TEXT.items()
    },
    **{f"item meta key, {kind}": _set(("items", 0, "meta", "k" + bad), 1) for kind, bad in BAD_TEXT.items()},
    "item meta nested 3000 deep": _set(("items", 0, "meta", "path"), nested(3000)),
    "message extra nested 3000 deep": _set(("messages", 0, "extra", "tool_calls"), nested(3000)),
    "event old nested 3000 deep": _set(("events", 0, "old"), nested(3000)),
}


def exported_as(mem: MemoryManager, user: str) -> dict[str, Any]:
    """The seeded user's export, as another user's with ids of its own (so it may be imported)."""
    doc = copy.deepcopy(mem.export_user(USER))
    doc["user_id"] = user
    prefix = "m_" + user[:3]
    for item in doc["items"]:
        item["id"] = prefix + item["id"][len(prefix) :]
    for event in doc["events"]:
        event["item_id"] = prefix + event["item_id"][len(prefix) :]
    for pending in doc["pending"]:
        pending["id"] = "p_" + user[:3] + pending["id"][len(prefix) :]
    for variable in doc["variables"]:
        variable["id"] = "v_" + user[:3] + variable["id"][len(prefix) :]
    return doc


@pytest.mark.parametrize("case", list(IMPORT_CASES), ids=list(IMPORT_CASES))
def test_an_import_with_bad_text_or_nesting_is_refused_whole(seeded: MemoryManager, case: str) -> None:
    seeded.import_user(exported_as(seeded, "eve"))  # the document itself is fine
    doc = exported_as(seeded, "ivy")
    IMPORT_CASES[case](doc)
    before = snapshot(seeded)
    with pytest.raises(InvalidInputError, match=r"lone surrogate|control character|nests more than"):
        seeded.import_user(doc)
    assert snapshot(seeded) == before


RECOMPUTED = {("items", "key")}  # an import recomputes it from the value: a long one is harmless


@pytest.mark.parametrize(
    ("table", "field", "limit"),
    [
        (kind.name, column.name, column.type.length)
        for kind in KINDS
        for column in kind.table.columns
        if column.name in kind.fields
        and getattr(column.type, "length", None)
        and (kind.name, column.name) not in RECOMPUTED
    ],
)
def test_an_import_value_over_its_column_length_is_refused(
    seeded: MemoryManager, table: str, field: str, limit: int
) -> None:
    """As long as a normal write allows and no longer: PostgreSQL would refuse it with its own error."""
    doc = exported_as(seeded, "ivy")
    doc[table][0][field] = "x" * (limit + 1)
    before = snapshot(seeded)
    with pytest.raises(InvalidInputError):
        seeded.import_user(doc)
    assert snapshot(seeded) == before


# ---- the Agent -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", list(BAD_TEXT.values()), ids=list(BAD_TEXT))
def test_an_agent_refuses_a_bad_message_before_calling_the_model(seeded: MemoryManager, bad: str) -> None:
    chat = ScriptedModel(["Hello!"])
    agent = Agent(model=chat, memory=seeded)
    before = snapshot(seeded)
    with pytest.raises(InvalidInputError):
        agent.run(bad, user_id=USER, session_id="s1")
    with pytest.raises(InvalidInputError):
        asyncio.run(agent.arun(bad, user_id=USER, session_id="s1"))
    agent.close()
    assert chat.requests == []
    assert snapshot(seeded) == before


def test_a_model_reply_with_unstorable_text_is_returned_whole_and_stored_repaired(
    seeded: MemoryManager,
) -> None:
    reply = "Hej \x1b[1mSarah\x1b[0m \ud83d and \x00 bye"  # JSON's "\\ud83d" decodes to a lone surrogate

    class Replies:
        async def generate(self, request: ModelRequest) -> ModelResponse:
            return ModelResponse(text=reply)

    agent = Agent(model=Replies(), memory=seeded)
    result = agent.run("Hello", user_id=USER, session_id="s2")
    agent.close()
    assert result.content == reply
    stored = seeded.sessions.messages("s2", user_id=USER)[-1]["content"]
    assert stored == cleaned_text(reply) == "Hej [1mSarah[0m \ufffd and  bye"


# ---- the checks themselves -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", list(BAD_TEXT.values()), ids=list(BAD_TEXT))
def test_checked_text_refuses_and_cleaned_text_repairs(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        checked_text(bad, "text")
    assert checked_text(cleaned_text(bad), "text") == cleaned_text(bad)


def test_checked_json_checks_keys_strings_and_depth() -> None:
    fine = {"a": [1, 2.5, None, True, {"b": "tab\there"}]}
    assert checked_json(fine, "value") is fine
    with pytest.raises(InvalidInputError, match="a key"):
        checked_json({"k\x00": 1}, "value")
    with pytest.raises(InvalidInputError, match="nests more than"):
        checked_json(nested(MAX_DEPTH + 1), "value")
    assert checked_json(nested(MAX_DEPTH), "value") == nested(MAX_DEPTH)


WRONG_TYPES: dict[str, Callable[[MemoryManager], Any]] = {
    "add_many a str": lambda mem: mem.knowledge.add_many("tea", user_id=USER),
    "add_many an int": lambda mem: mem.knowledge.add_many(5, user_id=USER),  # type: ignore[arg-type]
    "add_many None": lambda mem: mem.feedback.add_many(None, user_id=USER),  # type: ignore[arg-type]
    "add_many an int entry": lambda mem: mem.knowledge.add_many([5], user_id=USER),  # type: ignore[list-item]
    "add_many a list entry": lambda mem: mem.feedback.add_many([["a", "b"]], user_id=USER),  # type: ignore[list-item]
    "remove an int field": lambda mem: mem.profile.remove(5, user_id=USER),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("entry", list(WRONG_TYPES), ids=list(WRONG_TYPES))
def test_wrong_types_at_the_layer_handles_are_refused(seeded: MemoryManager, entry: str) -> None:
    # A str is iterable: add_many("tea") must not store one entry per character.
    before = snapshot(seeded)
    with pytest.raises(InvalidInputError):
        WRONG_TYPES[entry](seeded)
    assert snapshot(seeded) == before


# ---- numbers and times the columns cannot hold -------------------------------------------------

PAST_UTC = "9999-12-31T23:59:59-14:00"  # a valid ISO time, but after the year 9999 once in UTC
INT_OVER = 2**31  # one more than PostgreSQL's integer holds
OUT_OF_RANGE_CASES: dict[str, Callable[[dict[str, Any]], None]] = {
    "item created_at": _set(("items", 0, "created_at"), PAST_UTC),
    "item expires_at": _set(("items", 0, "expires_at"), PAST_UTC),
    "event created_at": _set(("events", 0, "created_at"), PAST_UTC),
    "message created_at": _set(("messages", 0, "created_at"), PAST_UTC),
    "pending read_at": _set(("pending", 0, "read_at"), PAST_UTC),
    "variable updated_at": _set(("variables", 0, "updated_at"), PAST_UTC),
    "item count": _set(("items", 0, "count"), 10**30),
    "item count just over": _set(("items", 0, "count"), INT_OVER),
    "pending attempts": _set(("pending", 0, "attempts"), 10**30),
    "pending watermark": _set(("pending", 0, "watermark"), INT_OVER),
    "session summarized_messages": _set(("sessions", 0, "summarized_messages"), INT_OVER),
    "item meta NaN": _set(("items", 0, "meta", "x"), float("nan")),
    "item meta Infinity deep": _set(("items", 0, "meta", "x"), {"y": [float("inf")]}),
    "item value -Infinity": _set(("items", 0, "value"), {"score": float("-inf")}),
    "item confidence NaN": _set(("items", 0, "confidence"), float("nan")),
    "event new NaN": _set(("events", 0, "new"), {"x": float("nan")}),
    "message extra NaN": _set(("messages", 0, "extra", "n"), float("nan")),
}


@pytest.mark.parametrize("case", list(OUT_OF_RANGE_CASES), ids=list(OUT_OF_RANGE_CASES))
def test_an_import_with_an_out_of_range_number_or_time_is_refused_whole(
    seeded: MemoryManager, case: str
) -> None:
    doc = exported_as(seeded, "ivy")
    OUT_OF_RANGE_CASES[case](doc)
    before = snapshot(seeded)
    with pytest.raises(InvalidInputError, match=r"out of range|less than or equal|finite number"):
        seeded.import_user(doc)
    assert snapshot(seeded) == before
    assert "ivy" not in [u.user_id for u in seeded.list_users()]


def test_an_import_at_the_column_limits_is_stored(seeded: MemoryManager) -> None:
    doc = exported_as(seeded, "ivy")
    doc["items"][0]["count"] = INT_OVER - 1
    doc["pending"][0]["attempts"] = INT_OVER - 1
    doc["items"][0]["created_at"] = "9999-12-31T23:59:59+00:00"
    seeded.import_user(doc)
    stored = seeded.export_user("ivy")
    assert stored["items"][0]["count"] == INT_OVER - 1
    assert stored["pending"][0]["attempts"] == INT_OVER - 1
    assert stored["items"][0]["created_at"].startswith("9999-12-31T23:59:59")


def test_an_expiry_past_what_utc_holds_is_refused(seeded: MemoryManager) -> None:
    late = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-14)))
    before = snapshot(seeded)
    with pytest.raises(InvalidInputError, match=r"expires_at .* out of range"):
        seeded.knowledge.add("Visits Mars", user_id=USER, expires_at=late)
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        seeded.knowledge.add("Visits Mars", user_id=USER, expires_at=datetime(2999, 1, 1))
    assert snapshot(seeded) == before


def test_checked_json_refuses_non_finite_numbers() -> None:
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(InvalidInputError, match="finite"):
            checked_json({"a": [1.5, bad]}, "meta")
    assert checked_json({"a": [1.5, -0.0, 10**40]}, "meta") == {"a": [1.5, -0.0, 10**40]}
