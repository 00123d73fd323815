"""What ``learn`` reads of a conversation (``select_turns``) and when it skips the model (``salience``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agentmem import InvalidInputError, MemoryManager
from agentmem.extraction.turns import MAX_CONTEXT_CHARS, MAX_USER_CHARS, salience, select_turns
from agentmem.testing import ScriptedModel


@pytest.fixture
def backend() -> str:
    """SQLite only: input selection and the salience gate; the store plays no part."""
    return "sqlite"


def said(*texts: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text} for text in texts]


# ---- select_turns ----------------------------------------------------------------------------


def test_system_and_tool_messages_never_reach_extraction() -> None:
    messages = [
        {"role": "system", "content": "You are a helpful assistant. The user is an admin."},
        {"role": "user", "content": "What is on my calendar?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function"}]},
        {"role": "tool", "tool_call_id": "1", "content": '{"events": ["dentist"]}'},
        {"role": "developer", "content": "Be brief."},
        {"role": "assistant", "content": "You have a dentist appointment."},
        {"role": "user", "content": "Thanks, I'm Sarah by the way."},
    ]

    assert select_turns(messages) == [
        {"role": "user", "content": "What is on my calendar?"},
        {"role": "assistant", "content": "You have a dentist appointment."},
        {"role": "user", "content": "Thanks, I'm Sarah by the way."},
    ]


def test_only_the_assistant_turn_the_user_last_reacted_to_is_kept() -> None:
    messages = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
        {"role": "assistant", "content": "second answer"},
        {"role": "user", "content": "that was perfect"},
        {"role": "assistant", "content": "glad it helped"},  # after the last user turn: not a reaction
    ]

    assert select_turns(messages) == [
        {"role": "user", "content": "first question"},
        {"role": "user", "content": "second question"},
        {"role": "assistant", "content": "second answer"},
        {"role": "user", "content": "that was perfect"},
    ]


def test_with_no_assistant_turn_before_the_user_the_latest_one_is_the_context() -> None:
    messages = [
        {"role": "user", "content": "I'm Sarah"},
        {"role": "assistant", "content": "Hi Sarah"},
        {"role": "assistant", "content": "How can I help?"},
    ]

    assert select_turns(messages) == [
        {"role": "user", "content": "I'm Sarah"},
        {"role": "assistant", "content": "How can I help?"},
    ]


def test_without_a_user_turn_there_is_nothing_to_read() -> None:
    assert select_turns([]) == []
    assert select_turns([{"role": "assistant", "content": "I'm Claude"}]) == []
    assert select_turns([{"role": "system", "content": "x"}, {"role": "user", "content": "   "}]) == []


def test_content_parts_keep_their_text_parts_only() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "I'm Sarah."},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                {"type": "text", "text": "I live in Berlin."},
            ],
        }
    ]

    assert select_turns(messages) == [{"role": "user", "content": "I'm Sarah.\nI live in Berlin."}]


@pytest.mark.parametrize(
    "part",
    [{"type": "text", "text": 42}, "stray string", [[["I'm Sarah."]]], {"text": "no type"}],
    ids=["text not a str", "a str", "nested lists", "no type"],
)
def test_a_malformed_content_part_is_refused_not_dropped(part: object) -> None:
    message = {"role": "user", "content": [{"type": "text", "text": "I'm Sarah."}, part]}
    with pytest.raises(InvalidInputError, match=r"messages\[0\]: content\[1\]"):
        select_turns([message])


def test_turns_are_stripped_and_empty_ones_dropped() -> None:
    messages = [
        {"role": "user", "content": "  I'm Sarah  \n"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": None},
    ]

    assert select_turns(messages) == [{"role": "user", "content": "I'm Sarah"}]


@pytest.mark.parametrize(
    "messages",
    [
        "I'm Sarah",
        b"I'm Sarah",
        {"role": "user", "content": "I'm Sarah"},
        None,
        42,
        ["I'm Sarah"],
        [{"content": "I'm Sarah"}],
        [{"role": None, "content": "I'm Sarah"}],
        [{"role": "user", "content": 42}],
        [{"role": "user", "content": {"text": "I'm Sarah"}}],
        [{"role": "assistant", "content": 3.5}, {"role": "user", "content": "hi"}],
    ],
    ids=repr,
)
def test_invalid_message_shapes_are_refused(messages: Any) -> None:
    with pytest.raises(InvalidInputError):
        select_turns(messages)


def test_invalid_messages_are_refused_by_learn_before_any_model_call(db_url: str) -> None:
    model = ScriptedModel([])
    with (
        MemoryManager(db=db_url, model=model) as mem,
        pytest.raises(InvalidInputError, match=r"messages\[1\]"),
    ):
        mem.learn([{"role": "user", "content": "I'm Sarah"}, "I live in Berlin"], user_id="sarah")
    assert model.requests == []


def test_long_input_keeps_the_most_recent_user_text() -> None:
    oldest = "A" * 1000
    older = "B" * (MAX_USER_CHARS - 100) + "b" * 50
    newest = "C" * 100

    kept = select_turns(said(oldest, older, newest))

    # The newest turn whole, then the tail of the older one up to the budget; the oldest is gone.
    assert kept == said(older[-(MAX_USER_CHARS - 100) :], newest)
    assert sum(len(t["content"]) for t in kept) == MAX_USER_CHARS
    assert kept[0]["content"].endswith("b" * 50)


def test_a_single_overlong_turn_keeps_its_end_and_the_context_is_bounded() -> None:
    text = "x" * MAX_USER_CHARS + "I'm Sarah"
    messages = [
        {"role": "assistant", "content": "y" * (MAX_CONTEXT_CHARS * 2)},
        {"role": "user", "content": text},
    ]

    context, turn = select_turns(messages)

    assert turn["content"] == text[-MAX_USER_CHARS:]
    assert turn["content"].endswith("I'm Sarah")
    assert context == {"role": "assistant", "content": "y" * MAX_CONTEXT_CHARS}


# ---- salience --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ok", "acknowledgement or greeting only"),
        ("thanks!", "acknowledgement or greeting only"),
        ("Thank you so much!", "acknowledgement or greeting only"),
        ("hi", "acknowledgement or greeting only"),
        ("Hi there!", "acknowledgement or greeting only"),
        ("Good morning!", "acknowledgement or greeting only"),
        ("What's the weather in Paris today?", "a question that says nothing about the user"),
        ("What time is it?", "a question that says nothing about the user"),
    ],
)
def test_acknowledgements_greetings_and_impersonal_questions_are_skipped(text: str, reason: str) -> None:
    assert salience(said(text)) == reason


@pytest.mark.parametrize(
    "text",
    [
        "that was perfect",
        "perfect",
        "I'm Sarah",
        "How do I clean data?",  # a question, but about the user's own work
        "Never use emojis",
        "Thanks, that was perfect!",  # a thank-you with a reaction in it
        "Thanks! I live in Berlin btw",
        "Can you always answer in German?",
        "What's 2+2? Also, I'm Sarah.",
        "Is it too long?",
    ],
)
def test_anything_that_may_say_something_about_the_user_is_not_skipped(text: str) -> None:
    assert salience(said(text)) is None


ACK = "acknowledgement or greeting only"
QUESTION = "a question that says nothing about the user"
REQUEST = "a request for help that says nothing about the user"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Can you show me a groupby example?", REQUEST),
        ("Explain SHAP values briefly.", REQUEST),
        ("Please explain how a B-tree works", REQUEST),
        ("Could you please summarize the plot of Hamlet?", REQUEST),
        ("give me three synonyms for happy", REQUEST),
        ("Tell me about the history of Rome.", REQUEST),
        ("Write a haiku about autumn", REQUEST),
        ("Walk me through a binary search", REQUEST),
        ("ok, compare TCP and UDP", REQUEST),
        ("Convert 5 miles to kilometres", REQUEST),
        ("thanks, that helps", ACK),
        ("Thank you - this helps!", ACK),
        ("ok great", ACK),
        ("Great, thanks!", ACK),
        ("ok cool, got it", ACK),
        ("sounds good, thanks", ACK),
        ("bye for now", ACK),
        ("See you later!", ACK),
        ("Have a nice day", ACK),
        ("thanks, bye!", ACK),
        ("talk to you soon", ACK),
        ("How does a hash map handle collisions?", QUESTION),
    ],
)
def test_requests_thanks_and_farewells_that_disclose_nothing_are_skipped(text: str, reason: str) -> None:
    assert salience(said(text)) == reason


@pytest.mark.parametrize(
    "text",
    [
        "Can you answer in Spanish from now on? I'm learning it",
        "Can you answer in Spanish from now on?",  # a standing rule, even unexplained
        "Could you reply in French?",
        "Can you be more concise?",
        "thanks — I prefer shorter answers",
        "bye, I'm off to my new job at Acme tomorrow",
        "that was wrong, my team uses Polars",
        "that didn't work",  # a reaction to the answer is feedback
        "great",  # a reaction word on its own too
        "ok great, but that was wrong",
        "thanks, that helped me a lot",
        "Explain it again, more simply",
        "Explain SHAP values for my churn model",
        "Show me a groupby example in Polars instead",
        "Give me shorter answers",
        "Write code with type hints from now on",
        "Can you use tabs, not spaces?",
        "Explain SHAP values please",  # "please" may start a rule: the model decides
        "Show me a groupby example. I use pandas at work",
        "Tell me about Rome, I'm going there in May",
        "Can you show me the example from before?",
        "Explain it the way you did last time",
        "Write in Spanish.",
        "Explain like a pirate",
        "Translate this into German",
        "Compare TCP and UDP " + "in depth " * 40,  # too long to judge locally
    ],
)
def test_a_fact_preference_plan_or_reaction_is_never_skipped(text: str) -> None:
    assert salience(said(text)) is None


# Rows from benchmarks/bench_conversation.py's script, and their near misses: small talk it sends that
# the gate must skip, and disclosures that look like small talk but must reach the model.
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("thanks a lot!", ACK),
        ("Thanks a bunch", ACK),
        ("Many thanks!", ACK),
        ("much appreciated", ACK),
        ("Appreciate it!", ACK),
        ("no worries", ACK),
        ("makes sense, thanks", ACK),
        ("Thanks, that makes sense.", ACK),
        ("That makes sense.", ACK),
        ("good to know", ACK),
        ("Good to know, thanks!", ACK),
        ("That's all for today, bye for now!", ACK),
        ("that\u2019s all for now", ACK),
        ("ok, that's it for today", ACK),
        ("Hello!", ACK),
        ("cool, thanks!", ACK),
        ("Got it.", ACK),
        ("What's the difference between MAPE and sMAPE?", QUESTION),
        ("What's a lag feature?", QUESTION),
        ("Which is faster for joins, a hash join or a sort-merge join?", QUESTION),
        ("How does exponential smoothing work?", QUESTION),
        ("List three ways to detect outliers in a time series.", REQUEST),
        ("Summarize gradient boosting in two sentences.", REQUEST),
        ("Can you write a function that fills missing dates in a series?", QUESTION),
        ("Give me an example of a rolling window feature.", REQUEST),
    ],
)
def test_the_benchmark_conversations_small_talk_is_skipped(text: str, reason: str) -> None:
    assert salience(said(text)) == reason


@pytest.mark.parametrize(
    "text",
    [
        "thanks a lot, I start at Acme on Monday",
        "makes sense, but my team uses R",
        "Good to know: I'm still on Python 3.8",
        "That's it, exactly what I needed",  # a reaction: feedback
        "That's all I need for my report",
        "no worries, I'll be on leave next week anyway",
        "much appreciated, I'm presenting it tomorrow",
        "Many thanks, the SQL version was perfect",
        "that's all for today, our standup starts now and I run it",
        "That makes sense, though we never use notebooks",
        "I studied economics, not computer science.",
        "We schedule everything with Airflow 2.8.",
        "The answer about weekly seasonality was spot on.",
        "The last snippet didn't run: our Polars version is 0.20.",
        "I can't stand long preambles, so put the code first.",
        "I'd rather get one recommended option than a list of five.",
        "Next sprint I plan to try LightGBM instead of Prophet.",
        "Honestly, the SHAP explanation was too abstract for me.",
        "That groupby example was exactly what I needed.",
        "In September I start a part-time master's in statistics.",
        "Our fiscal year starts in April, so quarterly forecasts follow that.",
    ],
)
def test_the_benchmark_conversations_disclosures_are_never_skipped(text: str) -> None:
    assert salience(said(text)) is None


def test_a_conversation_is_skipped_only_when_every_user_turn_is_skippable_for_the_same_reason() -> None:
    assert salience(said("hi", "thanks!", "bye")) == "acknowledgement or greeting only"
    assert salience(said("What time is it?", "Why?")) == "a question that says nothing about the user"
    assert salience(said("hi", "I'm Sarah", "thanks")) is None
    # Conservative: a greeting plus an impersonal question is not a pattern the gate knows.
    assert salience(said("hi", "What time is it?")) is None
    assert salience(said("Explain SHAP values.", "Give me a groupby example")) == REQUEST
    assert salience(said("Explain SHAP values.", "thanks")) is None


def test_assistant_turns_alone_are_never_salient() -> None:
    assert salience([{"role": "assistant", "content": "I'm Claude, an AI assistant"}]) == "no user message"


# ---- the gate through the manager ----------------------------------------------------------


@pytest.fixture
def gated(db_url: str) -> Iterator[tuple[MemoryManager, ScriptedModel]]:
    model = ScriptedModel([])  # any model call would fail: the queue is empty
    with MemoryManager(db=db_url, model=model) as mem:
        yield mem, model


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        (said("thanks!"), "acknowledgement or greeting only"),
        (
            [{"role": "assistant", "content": "Here is the answer."}, {"role": "user", "content": "ok"}],
            "acknowledgement or greeting only",
        ),
        (said("What's the weather in Paris today?"), "a question that says nothing about the user"),
        ([{"role": "system", "content": "You are helpful."}], "no user message"),
    ],
)
def test_a_skipped_turn_makes_no_model_call_and_says_why(
    gated: tuple[MemoryManager, ScriptedModel], messages: list[dict[str, str]], reason: str
) -> None:
    mem, model = gated

    result = mem.learn(messages, user_id="sarah")

    assert model.requests == []
    assert result.usage.skipped == reason
    assert result.usage.model_calls == 0
    assert result.usage.extractor == "model"
    assert result.all_changes == []
    assert mem._store.pending(None) == []  # a skip is not a failure


def test_a_salient_turn_reaches_the_model(gated: tuple[MemoryManager, ScriptedModel]) -> None:
    mem, model = gated
    model.add({"profile": {"name": "Sarah"}})

    result = mem.learn(said("hi", "I'm Sarah"), user_id="sarah")

    assert len(model.requests) == 1
    assert result.usage.skipped is None
    assert mem.get(user_id="sarah").profile.name == "Sarah"
