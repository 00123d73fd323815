"""One model-call path: the Model protocol, the retry policy, and the errors a failed call gives.

A user's own model implements only ``async def generate(request) -> ModelResponse``; the same object
serves extraction, session summaries and the Agent, sync and async.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tenacity import Retrying, stop_after_attempt

from agentmem import (
    Agent,
    ConfigurationError,
    ExtractionError,
    MemoryManager,
    Model,
    ModelError,
    ModelRequest,
    ModelResponse,
    RetryPolicy,
    ToolRequest,
    TransientModelError,
)
from agentmem.extraction import calls, output
from agentmem.testing import ScriptedModel, ToolCall

SARAH = [{"role": "user", "content": "I'm Sarah, a data scientist. Keep answers short."}]


class EchoModel:
    """A user's model: only the protocol, no agentmem base class. It answers extraction requests with
    a fixed memory, tool-enabled chat requests by calling ``get_time`` once, and anything else with
    a summary-like line."""

    def __init__(self) -> None:
        self.requests: list[ModelRequest] = []

    async def generate(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        await asyncio.sleep(0)
        if request.response_format is not None:
            text = json.dumps({"profile": {"name": "Sarah", "role": "data scientist"}})
            return ModelResponse(text=text, prompt_tokens=10, completion_tokens=5, cost=0.001)
        if request.tools and not any(m["role"] == "tool" for m in request.messages):
            return ModelResponse(tool_calls=[ToolRequest("call_1", "get_time", "{}")], prompt_tokens=3)
        said = [m for m in request.messages if m["role"] == "tool"]
        return ModelResponse(
            text=f"Answer ({len(said)} tool result(s))", prompt_tokens=7, completion_tokens=2
        )


def summarize(mem: MemoryManager, session_id: str, messages: list[dict[str, str]], user_id: str) -> str:
    """Add ``messages`` to the session and have the model summarise it."""
    mem.sessions.add(session_id, messages, user_id=user_id)
    return mem.sessions.summarize(session_id, user_id=user_id)


def get_time() -> str:
    """The current time."""
    return "12:00"


@pytest.fixture
def recorded_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff waits, recorded instead of slept."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(calls, "_sleep", sleep)
    return waits


# ---- the protocol ---------------------------------------------------------------------------------


def test_a_user_model_serves_memory_and_agent_sync_and_async(db_url: str) -> None:
    model = EchoModel()
    assert isinstance(model, Model)
    # No background learning: the agent's requests below are the last ones the model received.
    with MemoryManager(db=db_url, model=model, update_memory_on_run=False) as mem:
        result = mem.learn(SARAH, user_id="sarah", session_id="s1")
        assert mem.get(user_id="sarah").profile.name == "Sarah"
        assert (result.usage.model_calls, result.usage.prompt_tokens, result.usage.cost) == (1, 10, 0.001)
        asyncio.run(mem.alearn([{"role": "user", "content": "I'm Kim, a designer."}], user_id="kim"))
        assert mem.get(user_id="kim").profile.name == "Sarah"  # what EchoModel always answers

        assert summarize(mem, "s1", SARAH, "sarah") == "Answer (0 tool result(s))"

        agent = Agent(model=model, memory=mem, tools=[get_time])
        run = agent.run("What time is it?", user_id="sarah")
        assert (run.content, run.tool_calls, run.usage.model_calls) == (
            "Answer (1 tool result(s))",
            ["get_time"],
            2,
        )
        assert "name: Sarah" in str(model.requests[-1].messages[0]["content"])
        assert model.requests[-2].tools is not None
        arun = asyncio.run(agent.arun("And now?", user_id="sarah"))
        assert arun.content == "Answer (1 tool result(s))"
        agent.close()


def test_a_model_without_supports_json_schema_gets_the_schema_as_response_format(db_url: str) -> None:
    model = EchoModel()
    with MemoryManager(db=db_url, model=model) as mem:
        mem.learn(SARAH, user_id="sarah")
    fmt = model.requests[0].response_format
    assert fmt is not None
    assert fmt["type"] == "json_schema"


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(
            type("Old", (), {"complete": lambda self: None, "acomplete": None})(), id="old-protocol"
        ),
        pytest.param(
            type("Sync", (), {"generate": lambda self, request: ModelResponse()})(), id="sync-generate"
        ),
        pytest.param(object(), id="no-generate"),
    ],
)
def test_an_object_without_async_generate_is_refused_at_creation(model: Any, db_url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"async def generate"):
        MemoryManager(db=db_url, model=model)
    with pytest.raises(ConfigurationError, match=r"async def generate"):
        Agent(model=model)


def test_a_model_that_returns_the_wrong_type_fails_clearly(db_url: str) -> None:
    class Wrong:
        async def generate(self, request: ModelRequest) -> Any:
            return "plain text"

    with MemoryManager(db=db_url, model=Wrong()) as mem, pytest.raises(ExtractionError) as raised:
        mem.learn(SARAH, user_id="sarah")
    assert "Wrong.generate returned str, not a ModelResponse" in str(raised.value)
    assert raised.value.attempts == 1


# ---- the retry policy ------------------------------------------------------------------------------


def test_transient_failures_are_retried_with_jittered_exponential_backoff(
    db_url: str, recorded_waits: list[float]
) -> None:
    model = ScriptedModel([TransientModelError("429")] * 4 + [{"profile": {"name": "Sarah"}}])
    policy = RetryPolicy(attempts=5, backoff=1.0, max_backoff=3.0)
    with MemoryManager(db=db_url, model=model, retry=policy) as mem:
        result = mem.learn(SARAH, user_id="sarah")

    assert result.usage.model_calls == len(model.requests) == 5
    assert len(recorded_waits) == 4
    for n, wait in enumerate(recorded_waits):
        assert 0 <= wait <= min(3.0, 1.0 * 2**n)  # full jitter under the cap


def test_when_transient_retries_run_out_the_error_says_so(db_url: str, recorded_waits: list[float]) -> None:
    model = ScriptedModel([TransientModelError("503 overloaded")] * 3)
    with (
        MemoryManager(db=db_url, model=model, retry=RetryPolicy(attempts=3)) as mem,
        pytest.raises(ExtractionError) as raised,
    ):
        mem.learn(SARAH, user_id="sarah")

    assert str(raised.value) == "the model call failed after 3 call(s): TransientModelError: 503 overloaded"
    assert raised.value.attempts == 3
    assert len(recorded_waits) == 2


@pytest.mark.parametrize("error", [PermissionError("401 no key"), LookupError("404 no such model")])
def test_an_error_that_is_not_transient_is_never_retried(db_url: str, error: Exception) -> None:
    model = ScriptedModel([error, {"profile": {"name": "Sarah"}}])
    with MemoryManager(db=db_url, model=model) as mem, pytest.raises(ExtractionError) as raised:
        mem.learn(SARAH, user_id="sarah")
    assert len(model.requests) == raised.value.attempts == 1
    assert isinstance(raised.value.__cause__, ModelError)
    assert raised.value.__cause__.__cause__ is error


def test_a_re_ask_carries_the_validation_error_and_the_final_error_states_it(db_url: str) -> None:
    bad = {"knowledge": [{"topics": ["running"]}]}  # no text
    model = ScriptedModel([bad] * 3)
    with (
        MemoryManager(db=db_url, model=model, max_retries=2) as mem,
        pytest.raises(ExtractionError) as raised,
    ):
        mem.learn(SARAH, user_id="sarah")

    assert len(model.requests) == 3
    reask = model.requests[1].messages[-2:]
    assert reask[0] == {"role": "assistant", "content": json.dumps(bad)}
    assert reask[1]["content"].startswith("That reply was not valid: knowledge.0.text: Field required.")
    assert len(model.requests[2].messages) == len(model.requests[0].messages) + 4  # two re-asks
    assert (
        str(raised.value)
        == "the model's reply did not validate after 3 call(s): knowledge.0.text: Field required"
    )
    assert (raised.value.attempts, raised.value.last_output, raised.value.layer) == (3, json.dumps(bad), None)


def test_each_re_ask_has_its_own_transient_budget(db_url: str, recorded_waits: list[float]) -> None:
    model = ScriptedModel(
        [TransientModelError("429"), "not JSON", TransientModelError("429"), {"profile": {"name": "Sarah"}}]
    )
    policy = RetryPolicy(attempts=2, reasks=1)
    with MemoryManager(db=db_url, model=model, retry=policy) as mem:
        assert mem.learn(SARAH, user_id="sarah").usage.model_calls == 4


def test_an_empty_summary_is_re_asked_under_the_same_policy(db_url: str) -> None:
    model = ScriptedModel(["  ", "Sarah introduced herself."])
    with MemoryManager(db=db_url, model=model, retry=RetryPolicy(reasks=1)) as mem:
        assert summarize(mem, "s1", SARAH, "sarah") == "Sarah introduced herself."
        assert model.requests[1].messages[-1]["content"] == (
            "That reply was not valid: the summary was empty. Reply again, corrected."
        )

    model = ScriptedModel([""])
    with (
        MemoryManager(db=db_url, model=model, retry=RetryPolicy(reasks=0)) as mem,
        pytest.raises(ExtractionError) as raised,
    ):
        summarize(mem, "s2", SARAH, "sarah")
    assert str(raised.value) == "the model's reply did not validate after 1 call(s): the summary was empty"


def test_the_agent_uses_its_memorys_policy_unless_given_its_own(
    db_url: str, recorded_waits: list[float]
) -> None:
    policy = RetryPolicy(attempts=2, backoff=0)
    with MemoryManager(db=db_url, retry=policy) as mem:
        model = ScriptedModel([TransientModelError("503")] * 2)
        agent = Agent(model=model, memory=mem)
        assert agent.retry is mem.retry is policy
        with pytest.raises(TransientModelError):
            agent.run("Hello there", user_id="u")
        assert len(model.requests) == 2

        own = RetryPolicy(attempts=3)
        model = ScriptedModel([TransientModelError("503")] * 2 + ["Hi!"])
        assert Agent(model=model, memory=mem, retry=own).run("Hello there", user_id="u").content == "Hi!"
        assert len(model.requests) == 3
    assert Agent(model=ScriptedModel()).retry == RetryPolicy()


def test_max_retries_is_shorthand_for_reasks(db_url: str) -> None:
    with MemoryManager(db=db_url) as mem:
        assert mem.retry == RetryPolicy()
    with MemoryManager(db=db_url, max_retries=0, retry=RetryPolicy(attempts=2)) as mem:
        assert mem.retry == RetryPolicy(attempts=2, reasks=0)
    custom = Retrying(stop=stop_after_attempt(5))
    with MemoryManager(db=db_url, max_retries=custom) as mem:
        assert mem.retry.reasks is custom


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"attempts": 0}, "attempts"),
        ({"attempts": True}, "attempts"),
        ({"backoff": -1}, "backoff"),
        ({"max_backoff": float("nan")}, "max_backoff"),
        ({"reasks": -1}, "reasks"),
        ({"reasks": "2"}, "reasks"),
    ],
)
def test_a_bad_policy_fails_at_creation(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RetryPolicy(**options)


def test_bad_retry_options_fail_at_creation(db_url: str) -> None:
    with pytest.raises(ConfigurationError, match="retry must be a RetryPolicy"):
        MemoryManager(db=db_url, retry=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="retry must be a RetryPolicy"):
        Agent(model=ScriptedModel(), retry={"attempts": 2})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_concurrency"):
        MemoryManager(db=db_url, max_concurrency=0)


def test_a_sync_run_with_an_async_tool_works_inside_a_running_loop() -> None:
    """``asyncio.run`` would refuse here (a notebook cell, a sync call in async code); the bridge runs
    the async tool on its own loop instead."""

    async def lookup(term: str) -> str:
        """Look a term up."""
        await asyncio.sleep(0)
        return f"{term}: found"

    model = ScriptedModel([ToolCall("lookup", {"term": "pandas"}), "Done."])
    agent = Agent(model=model, tools=[lookup])

    async def notebook_cell() -> str:
        return agent.run("look up pandas", user_id="ana").content

    assert asyncio.run(notebook_cell()) == "Done."
    assert model.requests[1].messages[-1] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "pandas: found",
    }
    agent.close()


# ---- built once ----------------------------------------------------------------------------------------


def test_the_response_format_and_schema_text_are_built_once_per_manager(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    real = output.json_schema

    def counted(model: Any) -> Any:
        built.append(model.__name__)
        return real(model)

    monkeypatch.setattr(output, "json_schema", counted)
    native, prompted = ScriptedModel([{}, {}]), ScriptedModel([{}, {}], json_schema=False)
    for user, model in (("sarah", native), ("sam", prompted)):
        with MemoryManager(db=db_url, model=model) as mem:
            mem.learn(SARAH, user_id=user)
            mem.learn([{"role": "user", "content": "I live in Leeds and I work nights."}], user_id=user)
    assert len(built) == 2  # once per manager, though each learned twice
    first, second = native.requests
    assert first.response_format is not None
    assert first.response_format == second.response_format
    assert first.response_format is not second.response_format  # a model may change its own copy
    assert first.response_format["type"] == "json_schema"
    prompts = [request.messages[0]["content"] for request in prompted.requests]
    assert len(prompts) == 2
    assert all('"properties"' in prompt for prompt in prompts)
    assert prompted.requests[0].response_format == {"type": "json_object"}
