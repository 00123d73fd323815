"""Conversation history and session summaries: stored per user and session, secrets redacted,
exported with the user, summarised by the model (incrementally) or extractively offline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agentmem import (
    ConflictError,
    ExtractionError,
    InvalidInputError,
    MemoryManager,
    NotFoundError,
    ScopeError,
)
from agentmem.conversations import SUMMARY_EVERY
from agentmem.store.sessions import MAX_EXTRA_CHARS
from agentmem.testing import ScriptedModel

KEY = "sk-proj-4fQx9TbLm2Wc7ZrK8vNd3HgYp6"


def turn(user: str, assistant: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


def prompt_of(model: ScriptedModel, index: int) -> str:
    [message] = model.requests[index].messages
    assert message["role"] == "user"
    return str(message["content"])


@pytest.fixture
def summarizer() -> ScriptedModel:
    return ScriptedModel()


@pytest.fixture
def model_mem(db_url: str, summarizer: ScriptedModel) -> Iterator[MemoryManager]:
    manager = MemoryManager(db=db_url, model=summarizer)
    yield manager
    manager.close()


# ---- messages -------------------------------------------------------------------------------------


def test_messages_come_back_in_order_and_limit_keeps_the_latest(mem: MemoryManager) -> None:
    assert mem.sessions.add("s1", turn("Hi, I need help with pandas.", "Sure, what is it?"), user_id="u") == 2
    assert mem.sessions.add("s1", turn("How do I drop NaNs?", "Use df.dropna()."), user_id="u") == 2

    everything = mem.sessions.messages("s1", user_id="u")
    assert [(m["role"], m["content"]) for m in everything] == [
        ("user", "Hi, I need help with pandas."),
        ("assistant", "Sure, what is it?"),
        ("user", "How do I drop NaNs?"),
        ("assistant", "Use df.dropna()."),
    ]
    assert mem.sessions.messages("s1", user_id="u", limit=3) == everything[1:]
    assert mem.sessions.messages("s1", user_id="u", limit=10) == everything
    assert mem.sessions.messages("s1", user_id="u", limit=0) == []
    # Larger than any SQL integer: all of them on both backends, not a StoreError on SQLite only.
    assert mem.sessions.messages("s1", user_id="u", limit=10**30) == everything
    assert mem.sessions.messages("unknown", user_id="u") == []
    for bad in (-1, 2.5, "3"):
        with pytest.raises(InvalidInputError):
            mem.sessions.messages("s1", user_id="u", limit=bad)  # type: ignore[arg-type]


def test_tool_calls_and_content_parts_are_kept(mem: MemoryManager) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    mem.sessions.add(
        "s1",
        [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": [{"type": "text", "text": "Look it up"}, {"type": "image_url"}]},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        ],
        user_id="u",
    )
    assert mem.sessions.messages("s1", user_id="u") == [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Look it up"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": "42", "tool_call_id": "call_1"},
    ]


def test_secrets_in_tool_calls_and_names_are_redacted(mem: MemoryManager) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "login", "arguments": f'{{"api_key": "{KEY}"}}'},
    }
    mem.sessions.add(
        "s1",
        [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"call {KEY}", "name": f"tool {KEY}", "content": "ok"},
        ],
        user_id="u",
    )
    stored = mem.sessions.messages("s1", user_id="u")
    assert stored[0]["tool_calls"][0]["function"] == {
        "name": "login",
        "arguments": '{"api_key": "[redacted]"}',
    }
    assert (stored[1]["tool_call_id"], stored[1]["name"]) == ("call [redacted]", "tool [redacted]")
    assert KEY not in repr(mem.export_user("u"))


def test_oversized_tool_calls_are_refused(mem: MemoryManager) -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "x" * MAX_EXTRA_CHARS}}
    with pytest.raises(InvalidInputError, match="limit"):
        mem.sessions.add("s1", [{"role": "assistant", "content": "", "tool_calls": [call]}], user_id="u")
    with pytest.raises(InvalidInputError):
        mem.sessions.add("s1", [{"role": "tool", "content": "", "name": object()}], user_id="u")
    assert mem.sessions.list(user_id="u") == []


# ---- sessions belong to an agent ------------------------------------------------------------------


def test_a_session_belongs_to_the_agent_that_created_it(mem: MemoryManager) -> None:
    mem.sessions.add("s1", turn("My plan is private to A", "Noted."), user_id="u", agent_id="a")
    mem.sessions.add("shared", turn("Hello", "Hi"), user_id="u")

    for other in ("b", None):
        with pytest.raises(ScopeError, match="agent"):
            mem.sessions.add("s1", turn("I am B", "ok"), user_id="u", agent_id=other)
    with pytest.raises(ScopeError, match="agent"):
        mem.sessions.messages("s1", user_id="u", agent_id="b")
    with pytest.raises(ScopeError, match="agent"):
        mem.sessions.add("shared", turn("I am A", "ok"), user_id="u", agent_id="a")
    with pytest.raises(ScopeError, match="agent"):
        mem.sessions.messages("shared", user_id="u", agent_id="a")

    mem.sessions.add("s1", [{"role": "user", "content": "A again"}], user_id="u", agent_id="a")
    assert len(mem.sessions.messages("s1", user_id="u", agent_id="a")) == 3
    assert len(mem.sessions.messages("s1", user_id="u")) == 3  # the user's own view sees every session
    assert mem.sessions.messages("unknown", user_id="u", agent_id="b") == []
    assert [(s.session_id, s.messages) for s in mem.sessions.list(user_id="u")] == [("s1", 3), ("shared", 2)]


def test_get_one_session_or_not_found(mem: MemoryManager) -> None:
    mem.sessions.add("s1", turn("My plan is private to A", "Noted."), user_id="u", agent_id="a")
    mem.sessions.add("s1", turn("Another user's s1", "ok"), user_id="v")

    found = mem.sessions.get("s1", user_id="u")
    assert (found.session_id, found.user_id, found.agent_id, found.messages) == ("s1", "u", "a", 2)
    assert found == mem.sessions.list(user_id="u")[0]
    with pytest.raises(NotFoundError):
        mem.sessions.get("s2", user_id="u")
    with pytest.raises(NotFoundError):
        mem.sessions.get("s1", user_id="w")
    with pytest.raises(ScopeError):
        mem.sessions.get("", user_id="u")
    mem.sessions.delete("s1", user_id="u")
    with pytest.raises(NotFoundError):
        mem.sessions.get("s1", user_id="u")
    assert mem.sessions.get("s1", user_id="v").messages == 2


def test_list_sessions_most_recent_first_with_counts(mem: MemoryManager) -> None:
    mem.sessions.add("older", turn("First question here", "First answer"), user_id="u")
    mem.sessions.add("newer", turn("Second question", "Second answer"), user_id="u", agent_id="coder")
    mem.sessions.add("newer", [{"role": "user", "content": "and one more"}], user_id="u", agent_id="coder")

    sessions = mem.sessions.list(user_id="u")
    assert [(s.session_id, s.messages, s.agent_id, s.user_id) for s in sessions] == [
        ("newer", 3, "coder", "u"),
        ("older", 2, None, "u"),
    ]
    assert all(s.summary is None for s in sessions)
    assert sessions[0].updated_at >= sessions[0].created_at
    assert [s.session_id for s in mem.sessions.list(user_id="u", agent_id="coder")] == ["newer"]
    assert mem.sessions.list(user_id="nobody") == []

    mem.sessions.add("older", [{"role": "user", "content": "back to the first one"}], user_id="u")
    assert [s.session_id for s in mem.sessions.list(user_id="u")] == ["older", "newer"]


def test_delete_session_removes_its_messages_and_summary(mem: MemoryManager) -> None:
    mem.sessions.add("s1", turn("Plan my trip to Kyoto.", "Here is a plan.") * 3, user_id="u")
    mem.sessions.add("s2", turn("Another topic", "Sure."), user_id="u")
    mem.sessions.summarize("s1", user_id="u")

    assert mem.sessions.delete("s1", user_id="u") == 6

    assert mem.sessions.messages("s1", user_id="u") == []
    assert mem.sessions.summary("s1", user_id="u") is None
    assert [s.session_id for s in mem.sessions.list(user_id="u")] == ["s2"]
    assert len(mem.sessions.messages("s2", user_id="u")) == 2
    assert mem.sessions.delete("s1", user_id="u") == 0
    with pytest.raises(NotFoundError):
        mem.sessions.summarize("s1", user_id="u")


def test_secrets_are_redacted_before_they_are_stored(mem: MemoryManager) -> None:
    mem.sessions.add(
        "s1",
        turn(f"My OpenAI key is {KEY}, why does it fail?", f"Keys like {KEY} must be kept secret."),
        user_id="u",
    )
    stored = mem.sessions.messages("s1", user_id="u")
    assert [m["content"] for m in stored] == [
        "My OpenAI key is [redacted], why does it fail?",
        "Keys like [redacted] must be kept secret.",
    ]
    assert KEY not in repr(mem.export_user("u"))


def test_sessions_are_scoped_by_user(mem: MemoryManager) -> None:
    mem.sessions.add("same-id", turn("I am Sarah", "Hello Sarah"), user_id="sarah")
    mem.sessions.add("same-id", turn("I am Marco", "Hello Marco"), user_id="marco")
    mem.sessions.summarize("same-id", user_id="sarah")

    assert [m["content"] for m in mem.sessions.messages("same-id", user_id="sarah")] == [
        "I am Sarah",
        "Hello Sarah",
    ]
    assert [m["content"] for m in mem.sessions.messages("same-id", user_id="marco")] == [
        "I am Marco",
        "Hello Marco",
    ]
    assert [s.messages for s in mem.sessions.list(user_id="marco")] == [2]
    assert mem.sessions.summary("same-id", user_id="marco") is None
    assert mem.sessions.delete("same-id", user_id="marco") == 2
    assert len(mem.sessions.messages("same-id", user_id="sarah")) == 2
    assert mem.sessions.summary("same-id", user_id="sarah") is not None


@pytest.mark.parametrize(
    "messages",
    [
        "hello",
        b"hello",
        {"role": "user", "content": "hi"},
        [{"role": "user", "content": "fine"}, {"role": "bot", "content": "not a role"}],
        [{"role": "user", "content": "fine"}, {"content": "no role"}],
        [{"role": "user", "content": "fine"}, "just text"],
        [{"role": "user", "content": 42}],
        [{"role": "user", "content": "x" * 100_001}],
        [{"role": "user", "content": "fine"}, {"role": "user", "content": "a NUL \x00 character"}],
    ],
)
def test_invalid_messages_raise_and_store_nothing(mem: MemoryManager, messages: Any) -> None:
    with pytest.raises(InvalidInputError):
        mem.sessions.add("s1", messages, user_id="u")
    assert mem.sessions.messages("s1", user_id="u") == []
    assert mem.sessions.list(user_id="u") == []


def test_invalid_ids_raise_scope_error(mem: MemoryManager) -> None:
    with pytest.raises(ScopeError):
        mem.sessions.add("", turn("a", "b"), user_id="u")
    with pytest.raises(ScopeError):
        mem.sessions.add("s1", turn("a", "b"), user_id=" u")
    with pytest.raises(ScopeError):
        mem.sessions.messages("s1\n", user_id="u")
    assert mem.sessions.list(user_id="u") == []


# ---- export and import --------------------------------------------------------------------------------


def test_export_delete_import_round_trip_keeps_sessions_and_messages(mem: MemoryManager) -> None:
    mem.profile.update(user_id="u", name="Sarah")
    mem.sessions.add("s1", turn("Plan my trip to Kyoto in April.", "Here is a plan.") * 3, user_id="u")
    mem.sessions.add("s2", turn("Review my code", "Looks good."), user_id="u", agent_id="reviewer")
    summary = mem.sessions.summarize("s1", user_id="u")
    messages = {s: mem.sessions.messages(s, user_id="u") for s in ("s1", "s2")}
    sessions = mem.sessions.list(user_id="u")

    exported = mem.export_user("u")
    assert exported["version"] == 4
    assert [s["session_id"] for s in exported["sessions"]] == ["s1", "s2"]
    assert len(exported["messages"]) == 8

    mem.delete_user("u")
    assert mem.sessions.list(user_id="u") == []
    assert mem.sessions.messages("s1", user_id="u") == []

    mem.import_user(exported)
    assert {s: mem.sessions.messages(s, user_id="u") for s in ("s1", "s2")} == messages
    assert mem.sessions.list(user_id="u") == sessions
    assert mem.sessions.summary("s1", user_id="u") == summary
    assert mem.export_user("u") == exported


def test_a_version_1_export_still_imports(mem: MemoryManager) -> None:
    mem.profile.update(user_id="u", name="Sarah")
    mem.knowledge.add("Lives in Lisbon", user_id="u")
    mem.sessions.add("s1", turn("hi", "hello"), user_id="u")
    current = mem.export_user("u")
    events = [{k: v for k, v in e.items() if k != "observed_at"} for e in current["events"]]
    old = {k: v for k, v in current.items() if k in ("format", "user_id", "items")}
    old |= {"version": 1, "events": events}
    mem.delete_user("u")

    assert mem.import_user(old) == 2

    state = mem.get(user_id="u")
    assert state.profile.name == "Sarah"
    assert [i.text for i in state.knowledge] == ["Lives in Lisbon"]
    assert mem.sessions.list(user_id="u") == []
    assert mem.export_user("u") == {**current, "sessions": [], "messages": []}  # learned, pending: none


def test_imported_messages_are_redacted_and_bounded(mem: MemoryManager) -> None:
    mem.sessions.add("s1", turn("hi", "hello"), user_id="u")
    exported = mem.export_user("u")
    mem.delete_user("u")
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": f'{{"k": "{KEY}"}}'}}
    message = {**exported["messages"][1], "content": f"use {KEY}", "extra": {"tool_calls": [call]}}

    mem.import_user({**exported, "messages": [exported["messages"][0], message]})

    stored = mem.sessions.messages("s1", user_id="u")
    assert stored[1]["content"] == "use [redacted]"
    assert stored[1]["tool_calls"][0]["function"]["arguments"] == '{"k": "[redacted]"}'
    assert KEY not in repr(mem.export_user("u"))
    mem.delete_user("u")

    too_long = {**message, "content": "x" * 100_001}
    huge = {**message, "extra": {"name": "x" * MAX_EXTRA_CHARS}}
    unknown = {**message, "extra": {"function_call": "f"}}
    bad_role = {**message, "role": "developer"}
    orphan = {**message, "session_id": "not-exported"}  # would be claimed by whoever writes there next
    for bad in (too_long, huge, unknown, bad_role, orphan):
        with pytest.raises(InvalidInputError):
            mem.import_user({**exported, "messages": [bad]})
        assert mem.sessions.list(user_id="u") == []


def test_a_user_with_only_sessions_is_not_overwritten_by_an_import(mem: MemoryManager) -> None:
    mem.sessions.add("s1", turn("hi", "hello"), user_id="u")
    exported = mem.export_user("u")
    with pytest.raises(ConflictError, match="already has memory"):
        mem.import_user(exported)
    assert len(mem.sessions.messages("s1", user_id="u")) == 2


# ---- summaries --------------------------------------------------------------------------------------


def test_summarize_session_sends_the_conversation_to_the_model(
    model_mem: MemoryManager, summarizer: ScriptedModel
) -> None:
    model_mem.sessions.add(
        "s1",
        [
            {"role": "system", "content": "SYSTEM-PROMPT-TEXT"},
            *turn("Plan a 3-day trip to Kyoto in April.", "Day 1: Fushimi Inari. Day 2: Arashiyama."),
        ],
        user_id="u",
    )
    summarizer.add("The user is planning a 3-day trip to Kyoto in April; an itinerary was drafted.")

    summary = model_mem.sessions.summarize("s1", user_id="u")

    assert summary == "The user is planning a 3-day trip to Kyoto in April; an itinerary was drafted."
    assert model_mem.sessions.summary("s1", user_id="u") == summary
    assert [s.summary for s in model_mem.sessions.list(user_id="u")] == [summary]
    [request] = summarizer.requests
    assert request.response_format is None  # plain text, not JSON
    prompt = prompt_of(summarizer, 0)
    assert "Summarise this conversation" in prompt
    assert '[user] "Plan a 3-day trip to Kyoto in April."\n' in prompt
    assert '[assistant] "Day 1: Fushimi Inari. Day 2: Arashiyama."\n' in prompt
    assert "SYSTEM-PROMPT-TEXT" not in prompt
    assert "Summary of the earlier part" not in prompt

    # Nothing new since: the stored summary is returned without a model call.
    assert model_mem.sessions.summarize("s1", user_id="u") == summary
    assert len(summarizer.requests) == 1


def test_summaries_are_incremental(model_mem: MemoryManager, summarizer: ScriptedModel) -> None:
    model_mem.sessions.add("s1", turn("I want to learn Rust.", "Start with the Rust book."), user_id="u")
    summarizer.add("The user wants to learn Rust; the Rust book was suggested.")
    first = model_mem.sessions.summarize("s1", user_id="u")

    model_mem.sessions.add("s1", turn("What about async?", "Read the Tokio tutorial."), user_id="u")
    summarizer.add("The user is learning Rust, including async with Tokio.")
    second = model_mem.sessions.summarize("s1", user_id="u")

    assert second == "The user is learning Rust, including async with Tokio."
    prompt = prompt_of(summarizer, 1)
    assert f"Summary of the earlier part of the conversation:\n{first}\n" in prompt
    assert '[user] "What about async?"' in prompt
    assert '[assistant] "Read the Tokio tutorial."' in prompt
    assert "I want to learn Rust." not in prompt  # old messages are in the summary, not resent
    assert "Start with the Rust book." not in prompt


def test_a_failed_summary_keeps_the_previous_one(model_mem: MemoryManager, summarizer: ScriptedModel) -> None:
    model_mem.sessions.add("s1", turn("I want to learn Rust.", "Start with the book."), user_id="u")
    summarizer.add("The user wants to learn Rust.")
    model_mem.sessions.summarize("s1", user_id="u")
    model_mem.sessions.add("s1", turn("And async?", "Tokio."), user_id="u")
    summarizer.add(RuntimeError("the provider is down"))

    with pytest.raises(ExtractionError):
        model_mem.sessions.summarize("s1", user_id="u")

    assert model_mem.sessions.summary("s1", user_id="u") == "The user wants to learn Rust."
    summarizer.add("The user is learning Rust and async.")
    assert model_mem.sessions.summarize("s1", user_id="u") == "The user is learning Rust and async."
    assert '[user] "And async?"' in prompt_of(summarizer, 2)  # the failed part is summarised on retry


def test_an_empty_summary_from_the_model_is_re_asked(
    model_mem: MemoryManager, summarizer: ScriptedModel
) -> None:
    model_mem.sessions.add("s1", turn("I want to learn Rust.", "Start with the book."), user_id="u")
    summarizer.add("   ", "The user wants to learn Rust.")
    assert model_mem.sessions.summarize("s1", user_id="u") == "The user wants to learn Rust."
    assert len(summarizer.requests) == 2


def test_a_nul_in_a_summary_is_dropped_on_every_backend(
    model_mem: MemoryManager, summarizer: ScriptedModel
) -> None:
    model_mem.sessions.add("s1", turn("I want to learn Rust.", "Start with the book."), user_id="u")
    summarizer.add("The user wants\x00 to learn Rust.")
    model_mem.sessions.summarize("s1", user_id="u")
    assert model_mem.sessions.summary("s1", user_id="u") == "The user wants to learn Rust."


def test_refresh_summary_only_when_enough_new_messages_arrived(
    model_mem: MemoryManager, summarizer: ScriptedModel
) -> None:
    assert SUMMARY_EVERY == 6
    assert model_mem.sessions.refresh_summary("s1", user_id="u") is None  # no such session yet
    model_mem.sessions.add("s1", turn("Question 1 about Go", "Answer 1") * 2, user_id="u")
    model_mem.sessions.add("s1", [{"role": "user", "content": "Question 3 about Go"}], user_id="u")
    assert model_mem.sessions.refresh_summary("s1", user_id="u") is None  # 5 messages: not due
    assert summarizer.requests == []

    model_mem.sessions.add("s1", [{"role": "assistant", "content": "Answer 3"}], user_id="u")
    summarizer.add("The user asked three questions about Go.")
    assert model_mem.sessions.refresh_summary("s1", user_id="u") == "The user asked three questions about Go."
    assert len(summarizer.requests) == 1

    model_mem.sessions.add(
        "s1", turn("Question 4", "Answer 4") * 2 + turn("Question 6", "x")[:1], user_id="u"
    )
    assert model_mem.sessions.refresh_summary("s1", user_id="u") == "The user asked three questions about Go."
    assert len(summarizer.requests) == 1  # 5 new messages: still current enough

    model_mem.sessions.add("s1", [{"role": "assistant", "content": "Answer 6"}], user_id="u")
    summarizer.add("The user asked six questions about Go.")
    assert model_mem.sessions.refresh_summary("s1", user_id="u") == "The user asked six questions about Go."
    assert len(summarizer.requests) == 2
    assert "Question 3 about Go" not in prompt_of(summarizer, 1)
    assert '[assistant] "Answer 6"' in prompt_of(summarizer, 1)


def test_enable_session_summaries_refreshes_as_messages_are_added(db_url: str) -> None:
    model = ScriptedModel(["The user is planning a trip to Kyoto."])
    with MemoryManager(db=db_url, model=model, enable_session_summaries=True) as mem:
        mem.sessions.add("s1", turn("Plan my trip to Kyoto.", "Sure.") * 2, user_id="u")
        assert mem.sessions.summary("s1", user_id="u") is None
        assert model.requests == []
        mem.sessions.add("s1", turn("In April, please.", "April it is."), user_id="u")
        assert mem.sessions.summary("s1", user_id="u") == "The user is planning a trip to Kyoto."
        assert len(model.requests) == 1


def test_the_offline_summary_is_extractive(mem: MemoryManager) -> None:
    mem.sessions.add(
        "s1",
        [
            {"role": "user", "content": "I want to plan a trip to Kyoto. It should be in April."},
            {"role": "assistant", "content": "Sure! How many days?"},
            {"role": "user", "content": "Three days.   Mostly temples."},
            {"role": "assistant", "content": "Here is a plan."},
        ],
        user_id="u",
    )
    summary = mem.sessions.summarize("s1", user_id="u")
    assert summary == '4 messages. The user said: "I want to plan a trip to Kyoto."; "Three days.".'
    assert mem.sessions.summary("s1", user_id="u") == summary


def test_the_offline_summary_of_a_long_session_lists_the_first_points(mem: MemoryManager) -> None:
    said = [f"Topic number {n} matters." for n in range(1, 7)]
    mem.sessions.add("s1", [{"role": "user", "content": text} for text in said], user_id="u")
    summary = mem.sessions.summarize("s1", user_id="u")
    assert summary.startswith('6 messages. The user said: "Topic number 1 matters."; ')
    assert '"Topic number 4 matters." and 2 more.' in summary
    assert "Topic number 5" not in summary


def test_summarize_an_unknown_session_raises_not_found(mem: MemoryManager) -> None:
    mem.sessions.add("s1", turn("hi there", "hello"), user_id="sarah")
    with pytest.raises(NotFoundError):
        mem.sessions.summarize("nope", user_id="sarah")
    with pytest.raises(NotFoundError):
        mem.sessions.summarize("s1", user_id="marco")  # another user's session is not found either
    assert mem.sessions.summary("nope", user_id="sarah") is None
