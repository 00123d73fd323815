"""learn() with a model, at unit level: a ScriptedModel answers, no HTTP, no key.

Covers what one learn returns and costs, how stored items are shown to the model (aliases) and how its
reply is checked (secrets, invalid values, fences), retries and failures (pending extractions), the
write (one transaction, events, idempotency), the request shape (combined, per layer, JSON mode) and
the manager's model options.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel
from tenacity import RetryError, Retrying, stop_after_attempt

from agentmem import (
    ConfigurationError,
    ExtractionError,
    LayerConfig,
    MemoryManager,
    ModelError,
    PendingLearn,
    ScopeError,
)
from agentmem.extraction.model import TransientModelError
from agentmem.extraction.output import build_output_model, json_schema
from agentmem.layers import KnowledgeLayer, Patch
from agentmem.records import LearnResult
from agentmem.testing import ScriptedModel
from agentmem.tokens import estimate_tokens

USER = "sarah"
SARAH = [{"role": "user", "content": "I'm Sarah, a data scientist. Keep answers short."}]

Factory = Callable[..., MemoryManager]


@pytest.fixture
def make(make_mem: Factory) -> Factory:
    """``make(model, **options)``: a manager on the test's database, closed afterwards."""
    return lambda model, **options: make_mem(model=model, **options)


def system_prompt(model: ScriptedModel, n: int = 0) -> str:
    return str(model.requests[n].messages[0]["content"])


def schema_keys(model: ScriptedModel, n: int = 0) -> set[str]:
    fmt = model.requests[n].response_format
    assert fmt is not None
    assert fmt["type"] == "json_schema"
    return set(fmt["json_schema"]["schema"]["properties"])


def shape(result: LearnResult) -> dict[str, list[tuple[str, str, Any]]]:
    """A result without its generated ids, to compare two learns."""
    return {layer: [(c.op, c.key, c.new) for c in changes] for layer, changes in result.changes.items()}


# ---- what one learn returns -------------------------------------------------------------------

ALL_LAYERS = {
    "policies": {"set": {"response_style": "concise", "rules": ["never use emojis"]}},
    "profile": {"name": "Sarah", "role": "data scientist"},
    "knowledge": [{"text": "Builds a churn model", "topics": ["work"]}],
    "feedback": [{"text": "Liked the pandas example", "sentiment": "positive", "target": "pandas"}],
}


def test_changes_are_reported_per_layer_with_the_ids_get_returns(make: Factory) -> None:
    mem = make(ScriptedModel([ALL_LAYERS]))

    result = mem.learn(SARAH, user_id=USER)

    assert {layer: [(c.op, c.key) for c in changes] for layer, changes in result.changes.items()} == {
        "policies": [("add", "response_style"), ("add", "rules:emojis")],  # a rule is keyed by its topic
        "profile": [("add", "name"), ("add", "role")],
        "knowledge": [("add", "builds a churn model")],
        "feedback": [("add", "positive:liked the pandas example")],
    }
    state = mem.get(user_id=USER)
    for change in result.all_changes:
        item = state.item(change.layer, change.key)
        assert item is not None
        assert item.id == change.item_id
        assert item.value == change.new
    assert state.knowledge[0].data.topics == ["work"]
    assert state.feedback[0].data.target == "pandas"


def test_usage_counts_calls_and_tokens(make: Factory) -> None:
    reply = {"profile": {"name": "Sarah"}}
    model = ScriptedModel([reply])
    mem = make(model)

    usage = mem.learn(SARAH, user_id=USER).usage

    request = model.requests[0].messages
    assert usage.extractor == "model"
    assert usage.model_calls == 1
    assert usage.prompt_tokens == sum(estimate_tokens(m["content"]) for m in request) > 0
    assert usage.completion_tokens == estimate_tokens(json.dumps(reply))
    assert usage.cost is None  # the scripted model reports no price
    assert (usage.skipped, usage.dropped) == (None, {})


def test_an_empty_reply_changes_nothing_and_still_counts(make: Factory) -> None:
    mem = make(ScriptedModel([{}]))

    result = mem.learn(SARAH, user_id=USER)

    assert result.all_changes == []
    assert result.usage.model_calls == 1
    assert mem.get(user_id=USER).items == []


# ---- aliases ------------------------------------------------------------------------------------


def test_stored_knowledge_is_shown_as_numbered_aliases_never_ids(make: Factory) -> None:
    model = ScriptedModel([{}])
    mem = make(model)
    berlin = mem.knowledge.add("Lives in Berlin", user_id=USER)
    mem.knowledge.add("Has a cat named Tom", user_id=USER)
    mem.feedback.add("Too long", user_id=USER, sentiment="negative")

    mem.learn([{"role": "user", "content": "I moved to Munich"}], user_id=USER)

    prompt = system_prompt(model)
    assert "Stored facts:\n1. Lives in Berlin\n2. Has a cat named Tom\n" in prompt
    assert "Stored feedback:\n1. Too long" in prompt
    assert berlin not in prompt


def test_a_reply_replacing_an_alias_supersedes_that_item(make: Factory) -> None:
    model = ScriptedModel([{"knowledge": [{"text": "Lives in Munich", "replaces": 1}]}])
    mem = make(model)
    berlin = mem.knowledge.add("Lives in Berlin", user_id=USER)

    result = mem.learn([{"role": "user", "content": "I moved to Munich"}], user_id=USER)

    added, closed = result.changes["knowledge"]
    assert (added.op, added.new["text"]) == ("add", "Lives in Munich")
    assert (closed.op, closed.item_id, closed.old["text"]) == ("supersede", berlin, "Lives in Berlin")
    assert [i.text for i in mem.get(user_id=USER).knowledge] == ["Lives in Munich"]
    [event] = [e for e in mem.history(user_id=USER, item_id=berlin) if e.op == "supersede"]
    assert event.new["text"] == "Lives in Munich"


def test_an_unknown_alias_is_dropped_and_counted_but_the_fact_is_kept(make: Factory) -> None:
    model = ScriptedModel([{"knowledge": [{"text": "Has a dog", "replaces": 7}]}])
    mem = make(model)
    mem.knowledge.add("Lives in Berlin", user_id=USER)

    result = mem.learn([{"role": "user", "content": "I also have a dog"}], user_id=USER)

    assert result.usage.dropped == {"unknown_alias": 1}
    assert [c.op for c in result.all_changes] == ["add"]
    assert sorted(i.text for i in mem.get(user_id=USER).knowledge) == ["Has a dog", "Lives in Berlin"]


def test_a_withdrawn_rule_goes_by_its_number_and_the_other_rules_stay(make: Factory) -> None:
    model = ScriptedModel([{"policies": {"remove": [2]}}])
    mem = make(model)
    mem.policies.update(user_id=USER, tone="friendly", rules=["Never use emojis", "Cite sources"])

    result = mem.learn([{"role": "user", "content": "You can use emojis again."}], user_id=USER)

    prompt = system_prompt(model)
    assert "Stored now:\n1. tone: friendly\n2. rule: Never use emojis\n3. rule: Cite sources\n" in prompt
    assert [(c.op, c.key) for c in result.changes["policies"]] == [("delete", "rules:emojis")]
    policies = mem.policies.get(user_id=USER)
    assert (policies.tone, policies.rules) == ("friendly", ["Cite sources"])


def test_a_rule_learned_for_an_agent_joins_the_users_shared_rules(make: Factory) -> None:
    model = ScriptedModel([{"policies": {"set": {"rules": ["Always number review comments"]}}}])
    mem = make(model)
    mem.policies.update(user_id=USER, rules=["Never use emojis"])

    mem.learn(
        [{"role": "user", "content": "Always number review comments."}], user_id=USER, agent_id="review"
    )

    assert mem.policies.get(user_id=USER, agent_id="review").rules == [
        "Never use emojis",
        "Always number review comments",
    ]
    assert mem.policies.get(user_id=USER).rules == ["Never use emojis"]


# ---- checking the reply --------------------------------------------------------------------------


def test_the_assistants_words_in_the_reply_are_dropped_as_misattributed(make: Factory) -> None:
    messages = [
        {"role": "assistant", "content": "I'm Claude, an AI assistant made by Anthropic."},
        {"role": "user", "content": "ok cool, I see"},
    ]
    reply = {
        "profile": {"role": "AI assistant", "company": "Anthropic"},
        "knowledge": [{"text": "Is an AI assistant made by Anthropic"}],
    }
    mem = make(ScriptedModel([reply]))

    result = mem.learn(messages, user_id=USER)

    assert result.usage.dropped == {"misattributed": 3}
    assert result.all_changes == []
    assert mem.get(user_id=USER).items == []


@pytest.mark.parametrize(
    "reply",
    [
        {"knowledge": [{"text": "Uses the key sk-proj-abcdefghijklmnopqrstuvwx1234 for OpenAI"}]},
        {"knowledge": [{"text": "Said: my password is hunter2"}]},
        {"profile": {"name": "my password is hunter2"}},
        {"policies": {"set": {"rules": ["remember my password is hunter2"]}}},
        {"feedback": [{"text": "liked it", "target": "the token ghp_abcdefghijklmnop1234"}]},
    ],
    ids=["knowledge-api-key", "knowledge-password", "profile", "policies", "feedback"],
)
def test_secrets_in_the_reply_are_dropped_and_counted_never_stored(
    make: Factory, reply: dict[str, Any]
) -> None:
    messages = [
        {"role": "user", "content": "my password is hunter2, my key sk-proj-abcdefghijklmnopqrstuvwx1234"}
    ]
    mem = make(ScriptedModel([{**reply, "profile": {**reply.get("profile", {}), "role": "nurse"}}]))

    result = mem.learn(messages, user_id=USER)

    assert result.usage.dropped == {"secret": 1}
    assert [(c.layer, c.key) for c in result.all_changes] == [("profile", "role")]  # the rest is kept
    exported = json.dumps(mem.export_user(USER))
    for secret in ("hunter2", "sk-proj", "ghp_"):
        assert secret not in exported


def test_an_invalid_field_value_is_re_asked_with_the_error(make: Factory) -> None:
    model_replies = [
        {"feedback": [{"text": "Loved the example", "sentiment": "furious"}]},
        {"feedback": [{"text": "Loved the example", "sentiment": "positive"}]},
    ]
    model = ScriptedModel(model_replies)
    mem = make(model)

    result = mem.learn([{"role": "user", "content": "Loved that example!"}], user_id=USER)

    assert result.usage.model_calls == 2
    retry = model.requests[1].messages
    assert retry[:2] == model.requests[0].messages
    assert retry[2] == {"role": "assistant", "content": json.dumps(model_replies[0])}
    assert retry[3]["role"] == "user"
    assert "feedback.0.sentiment" in retry[3]["content"]
    assert "not valid" in retry[3]["content"]
    assert mem.get(user_id=USER).feedback[0].data.sentiment == "positive"


@pytest.mark.parametrize(
    "raw",
    [
        '```json\n{"profile": {"name": "Sarah"}}\n```',
        '```\n{"profile": {"name": "Sarah"}}\n```',
        'Here is the JSON:\n{"profile": {"name": "Sarah"}}\nHope that helps!',
        '{"profile": {"name": "Sarah"}, "commentary": "extra keys are ignored"}',
    ],
    ids=["json-fence", "bare-fence", "chatter", "extra-key"],
)
def test_a_fenced_or_chatty_reply_is_accepted(make: Factory, raw: str) -> None:
    mem = make(ScriptedModel([raw]))

    result = mem.learn(SARAH, user_id=USER)

    assert result.usage.model_calls == 1
    assert mem.get(user_id=USER).profile.name == "Sarah"


# ---- retries and failures ------------------------------------------------------------------------

INVALID = "this is not JSON"


def test_max_retries_zero_makes_one_call_then_raises(make: Factory) -> None:
    model = ScriptedModel([INVALID, {"profile": {"name": "Sarah"}}])
    mem = make(model, max_retries=0)

    with pytest.raises(ExtractionError) as raised:
        mem.learn(SARAH, user_id=USER)

    assert len(model.requests) == 1
    assert raised.value.attempts == 1
    assert raised.value.last_output == INVALID
    assert raised.value.layer is None  # a combined request
    assert mem.get(user_id=USER).items == []


def test_a_tenacity_retrying_sets_the_number_of_attempts(make: Factory) -> None:
    model = ScriptedModel([INVALID] * 6)
    mem = make(model, max_retries=Retrying(stop=stop_after_attempt(5)))

    with pytest.raises(ExtractionError) as raised:
        mem.learn(SARAH, user_id=USER)

    assert len(model.requests) == raised.value.attempts == 5


def test_a_tenacity_retrying_stops_at_the_first_valid_reply(make: Factory) -> None:
    model = ScriptedModel([INVALID, INVALID, {"profile": {"name": "Sarah"}}])
    mem = make(model, max_retries=Retrying(stop=stop_after_attempt(5)))

    assert mem.learn(SARAH, user_id=USER).usage.model_calls == 3
    assert len(model.requests) == 3


def test_transient_errors_are_retried_and_counted(make: Factory) -> None:
    model = ScriptedModel(
        [TransientModelError("rate limited"), TransientModelError("timeout"), {"profile": {"name": "Sarah"}}]
    )
    mem = make(model, max_retries=0)  # transient retries do not spend re-asks

    result = mem.learn(SARAH, user_id=USER)

    assert result.usage.model_calls == 3
    assert mem.get(user_id=USER).profile.name == "Sarah"
    assert mem._store.pending(None) == []


def test_transient_errors_that_persist_fail_with_a_pending_extraction(make: Factory) -> None:
    model = ScriptedModel([TransientModelError("503 service unavailable")] * 10)
    mem = make(model)

    with pytest.raises(ExtractionError, match="TransientModelError: 503") as raised:
        mem.learn(SARAH, user_id=USER)

    assert raised.value.attempts == len(model.requests) == 4
    assert raised.value.pending_id is not None


def test_a_non_transient_error_fails_at_once_with_a_pending_extraction(make: Factory) -> None:
    model = ScriptedModel([ValueError("401 invalid api key"), {"profile": {"name": "Sarah"}}])
    mem = make(model)

    with pytest.raises(ExtractionError, match="ValueError: 401 invalid api key") as raised:
        mem.learn(SARAH, user_id=USER)

    assert len(model.requests) == raised.value.attempts == 1
    assert isinstance(raised.value.__cause__, ModelError)
    assert isinstance(raised.value.__cause__.__cause__, ValueError)
    [pending] = mem._store.pending(None)
    assert pending["id"] == raised.value.pending_id
    assert (pending["user_id"], pending["attempts"]) == (USER, 1)
    assert "ValueError" in pending["error"]
    assert mem.get(user_id=USER).items == []


def test_a_failure_to_keep_the_input_still_raises_the_extraction_error(make: Factory) -> None:
    mem = make(ScriptedModel([ValueError("401 invalid api key")]))
    with mem._store.engine.begin() as conn:  # a database that can no longer keep pending inputs
        conn.exec_driver_sql("DROP TABLE agentmem_pending")

    with pytest.raises(ExtractionError, match="401 invalid api key") as raised:
        mem.learn(SARAH, user_id=USER)

    assert raised.value.pending_id is None


@pytest.mark.parametrize("max_retries", [2, Retrying(stop=stop_after_attempt(2))], ids=["int", "Retrying"])
@pytest.mark.parametrize("run", ["learn", "alearn"])
def test_extraction_error_never_exposes_tenacity_retry_error(
    make: Factory, max_retries: int | Retrying, run: str
) -> None:
    mem = make(ScriptedModel([INVALID] * 5), max_retries=max_retries)

    def learn() -> Any:
        if run == "learn":
            return mem.learn(SARAH, user_id=USER)
        return asyncio.run(mem.alearn(SARAH, user_id=USER))

    with pytest.raises(Exception) as raised:  # noqa: PT011 - the exact type is what is under test
        learn()

    assert type(raised.value) is ExtractionError
    assert raised.value.pending_id is not None
    assert not isinstance(raised.value, RetryError)
    assert "RetryError" not in str(raised.value)
    assert "did not validate" in str(raised.value)
    assert raised.value.last_output == INVALID


def test_pending_inputs_are_stored_with_secrets_redacted(make: Factory) -> None:
    messages = [
        {"role": "assistant", "content": "Which key do you use?"},
        {"role": "user", "content": "I use sk-proj-abcdefghijklmnopqrstuvwx1234 and my password is hunter2"},
    ]
    mem = make(ScriptedModel([ValueError("boom")]))

    with pytest.raises(ExtractionError):
        mem.learn(messages, user_id=USER, agent_id="coder", session_id="s1")

    [pending] = mem._store.pending(USER)
    assert (pending["agent_id"], pending["session_id"]) == ("coder", "s1")
    stored = json.dumps(pending["messages"])
    assert "sk-proj" not in stored
    assert "hunter2" not in stored
    assert pending["messages"] == [
        {"role": "assistant", "content": "Which key do you use?"},
        {"role": "user", "content": "I use [redacted] and my password is [redacted]"},
    ]


def test_retry_pending_clears_successes_and_counts_failures(make: Factory) -> None:
    model = ScriptedModel([ValueError("down"), ValueError("down")])
    mem = make(model)
    for user_id, text in (("sarah", "I'm Sarah"), ("marco", "I'm Marco")):
        with pytest.raises(ExtractionError):
            mem.learn([{"role": "user", "content": text}], user_id=user_id, session_id=f"s-{user_id}")
    assert len(mem._store.pending(None)) == 2

    model.add({"profile": {"name": "Sarah"}}, ValueError("still down"))  # oldest first: sarah, marco
    report = mem.retry_pending()

    assert (report.retried, len(report.results), report.still_pending) == (2, 1, 1)
    assert [c.new for c in report.results[0].all_changes] == ["Sarah"]
    assert mem.get(user_id="sarah").profile.name == "Sarah"
    [left] = mem._store.pending(None)
    assert (left["user_id"], left["attempts"]) == ("marco", 2)
    assert [e.session_id for e in mem.history(user_id="sarah")] == ["s-sarah"]

    model.add({"profile": {"name": "Marco"}})
    report = mem.retry_pending(user_id="marco")
    assert (report.retried, report.still_pending) == (1, 0)
    assert mem._store.pending(None) == []
    assert mem.retry_pending().retried == 0


def test_pending_lists_failed_learns_typed_redacted_and_per_user(make: Factory) -> None:
    model = ScriptedModel([ValueError("down"), ValueError("down")])
    mem = make(model)
    with pytest.raises(ExtractionError) as raised:
        mem.learn(
            [{"role": "user", "content": "I'm Sarah, my password is hunter2"}],
            user_id="sarah",
            agent_id="coder",
            session_id="s1",
        )
    with pytest.raises(ExtractionError):
        mem.learn([{"role": "user", "content": "I'm Marco"}], user_id="marco")

    [sarahs] = mem.pending(user_id="sarah")
    assert isinstance(sarahs, PendingLearn)
    assert sarahs.id == raised.value.pending_id
    assert (sarahs.user_id, sarahs.agent_id, sarahs.session_id) == ("sarah", "coder", "s1")
    assert sarahs.messages == [{"role": "user", "content": "I'm Sarah, my password is [redacted]"}]
    assert "down" in sarahs.error
    assert sarahs.attempts >= 1
    assert sarahs.created_at.tzinfo is not None
    assert sarahs.updated_at >= sarahs.created_at
    [marcos] = mem.pending(user_id="marco")
    assert (marcos.agent_id, marcos.session_id) == (None, None)
    assert [p.user_id for p in mem.pending()] == ["sarah", "marco"]  # oldest first
    assert mem.pending(user_id="nobody") == []
    with pytest.raises(ScopeError):
        mem.pending(user_id="")

    model.add({"profile": {"name": "Sarah"}})
    assert mem.retry_pending(user_id="sarah").still_pending == 0
    assert mem.pending(user_id="sarah") == []
    assert [p.user_id for p in mem.pending()] == ["marco"]


# ---- the write ---------------------------------------------------------------------------------


def test_events_carry_source_extracted_and_the_session(make: Factory) -> None:
    mem = make(ScriptedModel([ALL_LAYERS]))

    mem.learn(SARAH, user_id=USER, session_id="chat-42")

    events = mem.history(user_id=USER)
    assert len(events) == 6
    assert {(e.source, e.session_id) for e in events} == {("extracted", "chat-42")}
    assert {(i.source, i.session_id) for i in mem.get(user_id=USER).items} == {("extracted", "chat-42")}


def test_one_learn_is_one_transaction(make: Factory, monkeypatch: pytest.MonkeyPatch) -> None:
    reply = {"profile": {"name": "Sarah"}, "knowledge": [{"text": "Builds a churn model"}]}
    model = ScriptedModel([reply, reply])
    mem = make(model)
    mem.profile.update(user_id=USER, role="nurse")
    mem.knowledge.add("Lives in Leeds", user_id=USER)
    before = mem.export_user(USER)

    def broken_merge(current: Any, change: Patch, now: Any) -> Any:
        raise RuntimeError("merge failed")

    # profile merges and applies first (authority order), then knowledge fails.
    monkeypatch.setattr(mem.layers["knowledge"], "merge", broken_merge)
    with pytest.raises(RuntimeError, match="merge failed"):
        mem.learn(SARAH, user_id=USER)

    assert mem.export_user(USER) == before
    monkeypatch.undo()
    # Nothing was marked learned either: the same input is extracted again, and applied whole.
    result = mem.learn(SARAH, user_id=USER)
    assert len(model.requests) == 2
    assert [(c.layer, c.op) for c in result.all_changes] == [("profile", "add"), ("knowledge", "add")]


def test_the_same_input_twice_is_learned_once_per_scope(make: Factory) -> None:
    model = ScriptedModel([{"feedback": [{"text": "Liked the example", "sentiment": "positive"}]}] * 3)
    mem = make(model)
    messages = [{"role": "user", "content": "I liked that example"}]

    first = mem.learn(messages, user_id=USER)
    again = mem.learn(messages, user_id=USER, session_id="another")

    assert len(first.all_changes) == 1
    assert again.usage.skipped == "this input was already learned"
    assert (again.usage.model_calls, again.all_changes) == (0, [])
    assert len(model.requests) == 1
    assert mem.get(user_id=USER).feedback[0].count == 1

    # Another agent's scope has its own idempotency (and its own private copy).
    other = mem.learn(messages, user_id=USER, agent_id="coder")
    assert other.usage.skipped is None
    assert len(model.requests) == 2
    assert mem.learn(messages, user_id=USER, agent_id="coder").usage.skipped is not None
    # So has another user.
    assert mem.learn(messages, user_id="marco").usage.skipped is None
    assert len(model.requests) == 3


# ---- the request ---------------------------------------------------------------------------------


def test_per_layer_extraction_makes_one_call_per_layer_with_its_own_schema(make: Factory) -> None:
    def reply(messages: list[dict[str, Any]]) -> dict[str, Any]:
        prompt = messages[0]["content"]
        layer = next(name for name in ALL_LAYERS if f"## {name}\n" in prompt)
        return {layer: ALL_LAYERS[layer]}

    model = ScriptedModel(reply)
    mem = make(model, extraction="per_layer")

    result = mem.learn(SARAH, user_id=USER)

    assert result.usage.model_calls == len(model.requests) == 4
    assert [schema_keys(model, n) for n in range(4)] == [
        {"policies"},
        {"profile"},
        {"knowledge"},
        {"feedback"},
    ]
    for n, layer in enumerate(ALL_LAYERS):
        prompt = system_prompt(model, n)
        assert [other for other in ALL_LAYERS if f"## {other}\n" in prompt] == [layer]
    assert {layer: len(changes) for layer, changes in result.changes.items()} == {
        "policies": 2,
        "profile": 2,
        "knowledge": 1,
        "feedback": 1,
    }


def test_per_layer_extraction_writes_nothing_when_one_layer_fails(make: Factory) -> None:
    def reply(messages: list[dict[str, Any]]) -> Any:
        prompt = messages[0]["content"]
        return INVALID if "## knowledge\n" in prompt else {"policies": ALL_LAYERS["policies"]}

    model = ScriptedModel(reply)
    mem = make(model, extraction="per_layer", max_retries=0)

    with pytest.raises(ExtractionError) as raised:
        mem.learn(SARAH, user_id=USER)

    assert raised.value.layer == "knowledge"
    assert mem.get(user_id=USER).items == []  # the policies already extracted are not applied
    assert len(mem._store.pending(USER)) == 1


def test_per_layer_extraction_skips_layers_not_extracted(make: Factory) -> None:
    model = ScriptedModel([{}, {}])
    mem = make(
        model,
        extraction="per_layer",
        layers={"feedback": LayerConfig(extract=False), "policies": LayerConfig(extract=False)},
    )

    mem.learn(SARAH, user_id=USER)

    assert [schema_keys(model, n) for n in range(len(model.requests))] == [{"profile"}, {"knowledge"}]


def test_a_layer_not_extracted_is_in_neither_schema_nor_prompt(make: Factory) -> None:
    model = ScriptedModel([{"profile": {"name": "Sarah"}, "feedback": [{"text": "ignored"}]}])
    mem = make(model, layers={"feedback": LayerConfig(extract=False)})

    result = mem.learn(SARAH, user_id=USER)

    assert schema_keys(model) == {"policies", "profile", "knowledge"}
    prompt = system_prompt(model)
    assert "## feedback" not in prompt
    assert 'a plain "thanks" is not feedback' not in prompt  # nor its section's text
    assert set(result.changes) == {"policies", "profile", "knowledge"}
    assert mem.get(user_id=USER).feedback == []


def test_alearn_gives_the_same_result_as_learn(new_db_url: Callable[[], str]) -> None:
    replies = [{"profile": {"name": "Sarah"}}, ALL_LAYERS]
    conversation = [
        {"role": "user", "content": "I'm Sarah"},
        {"role": "assistant", "content": "Hi Sarah!"},
        {"role": "user", "content": "I'm a data scientist. Keep answers short."},
    ]
    sync_model, async_model = ScriptedModel(list(replies)), ScriptedModel(list(replies))
    with (
        MemoryManager(db=new_db_url(), model=sync_model) as sync_mem,
        MemoryManager(db=new_db_url(), model=async_model) as async_mem,
    ):
        for messages in (conversation[:1], conversation):
            expected = sync_mem.learn(messages, user_id=USER, session_id="s")
            got = asyncio.run(async_mem.alearn(messages, user_id=USER, session_id="s"))

            assert shape(got) == shape(expected)
            assert got.usage == expected.usage
        assert async_model.requests == sync_model.requests
        assert async_mem.get(user_id=USER).profile == sync_mem.get(user_id=USER).profile
        assert asyncio.run(async_mem.alearn(conversation, user_id=USER)).usage.skipped == (
            "this input was already learned"
        )


def test_without_native_schema_support_json_mode_carries_the_schema_in_the_prompt(make: Factory) -> None:
    model = ScriptedModel([{"profile": {"name": "Sarah"}}], json_schema=False)
    mem = make(model)

    mem.learn(SARAH, user_id=USER)

    assert model.requests[0].response_format == {"type": "json_object"}
    prompt = system_prompt(model)
    assert "It must validate against this JSON Schema:" in prompt
    schema = json.loads(prompt.split("It must validate against this JSON Schema:\n", 1)[1])
    assert set(schema["properties"]) == {"policies", "profile", "knowledge", "feedback"}
    assert mem.get(user_id=USER).profile.name == "Sarah"


def test_with_native_schema_support_the_prompt_carries_no_schema(make: Factory) -> None:
    model = ScriptedModel([{}])
    make(model).learn(SARAH, user_id=USER)

    assert "JSON Schema" not in system_prompt(model)
    fmt = model.requests[0].response_format
    assert fmt is not None
    assert fmt["json_schema"]["name"] == "memory_extraction"


# ---- options --------------------------------------------------------------------------------------


def test_agent_option_names_are_accepted_and_readable(make: Factory) -> None:
    mem = make(None)  # the defaults: learn from every run, no memory tools, memory in the context
    assert (mem.update_memory_on_run, mem.enable_agentic_memory, mem.add_memory_to_context) == (
        True,
        False,
        True,
    )

    mem = make(None, update_memory_on_run=False, enable_agentic_memory=True, add_memory_to_context=False)
    assert (mem.update_memory_on_run, mem.enable_agentic_memory, mem.add_memory_to_context) == (
        False,
        True,
        False,
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model": None, "model_options": {"api_base": "http://localhost:1234/v1"}}, "without a model"),
        ({"model": ScriptedModel(), "model_options": {"temperature": 0}}, "not to a model object"),
        ({"model": 42}, "got int"),
        ({"model": "  "}, "non-empty"),
        ({"model": None, "max_retries": -1}, "max_retries"),
        ({"model": None, "max_retries": True}, "max_retries"),
        ({"model": None, "extraction": "per_field"}, "extraction"),
    ],
)
def test_bad_model_options_fail_at_creation(make: Factory, options: dict[str, Any], message: str) -> None:
    options = dict(options)  # the parameters are shared by every backend's run
    model = options.pop("model")
    with pytest.raises(ConfigurationError, match=message):
        make(model, **options)


def test_the_model_is_readable_on_the_manager(make: Factory) -> None:
    model = ScriptedModel()
    assert make(model).model is model
    assert make(None).model is None


def test_the_schema_sent_holds_structure_only_and_keeps_fields_named_like_annotations() -> None:
    @dataclass
    class Book:
        text: str
        """What the user said about the book."""
        title: str = ""
        """The book's title."""
        default: str | None = None
        """The edition the user owns."""

    schema = json_schema(build_output_model([KnowledgeLayer(schema=Book)]))
    entry = schema["properties"]["knowledge"]["items"]
    assert list(entry["properties"]) == ["text", "title", "default", "replaces"]
    assert entry["properties"]["title"] == {"type": "string"}
    assert entry["properties"]["default"] == {"type": "string"}  # optional: "or null" dropped
    assert entry["properties"]["replaces"] == {"type": "integer"}
    text = json.dumps(schema)
    assert '"description"' not in text  # the prompt carries the descriptions
    assert '"title"' not in json.dumps({k: v for k, v in entry.items() if k != "properties"})


def test_a_required_field_keeps_null_in_the_schema_sent() -> None:
    class Rated(BaseModel):
        rating: int | None
        note: str | None = None

    properties = json_schema(Rated)["properties"]

    assert properties["rating"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}  # null is an answer
    assert properties["note"] == {"type": "string"}
