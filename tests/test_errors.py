"""Every exception that leaves the public API is an AgentMemError with the original chained: model
failures (typed, and never retried when no retry helps), database failures, a closed manager. And
agentmem prints nothing: litellm's banners are off, and agentmem only logs, under "agentmem"."""

from __future__ import annotations

import ast
import asyncio
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import agentmem
from agentmem import (
    Agent,
    AgentMemError,
    AuthenticationError,
    ClosedError,
    ConfigurationError,
    ContextLengthError,
    ExtractionError,
    MemoryManager,
    ModelError,
    ModelNotFoundError,
    RateLimitError,
    RetryPolicy,
    StoreError,
    TransientModelError,
)
from agentmem.testing import Fault, LoopbackServer, ScriptedModel

MODEL = "openai/test-model"
SAID = [{"role": "user", "content": "I'm Priya, a backend engineer in Lisbon."}]
QUICK = RetryPolicy(backoff=0)  # the default attempts, without the waits
CONTEXT_TOO_LONG = {
    "error": {
        "message": "This model's maximum context length is 4096 tokens. However, your messages resulted "
        "in 5000 tokens.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}


@pytest.fixture(autouse=True)
def _loopback_is_not_proxied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as running:
        yield running


def over_http(server: LoopbackServer) -> dict[str, Any]:
    return {"model": MODEL, "model_options": {"api_base": server.url, "api_key": "test-key"}, "retry": QUICK}


# ---- model failures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault(401), AuthenticationError),
        (Fault(403), AuthenticationError),
        (Fault(404), ModelNotFoundError),
        (Fault(400, CONTEXT_TOO_LONG), ContextLengthError),
        (Fault(400), ModelError),
        (Fault(422), ModelError),
    ],
    ids=["401", "403", "404", "400 context length", "400", "422"],
)
def test_a_refusal_is_typed_and_never_retried(
    server: LoopbackServer, make_mem: Callable[..., MemoryManager], fault: Fault, error: type[ModelError]
) -> None:
    server.add(fault, fault)
    mem = make_mem(**over_http(server))
    with pytest.raises(ExtractionError) as raised:
        mem.learn(SAID, user_id="priya")
    assert type(raised.value.__cause__) is error
    assert raised.value.attempts == len(server.requests) == 1
    assert raised.value.pending_id is not None  # the input is kept for retry_pending

    agent = Agent(model=MODEL, model_options=over_http(server)["model_options"], retry=QUICK)
    with pytest.raises(error) as direct:
        agent.run("Hello", user_id="priya")
    agent.close()
    assert len(server.requests) == 2
    assert direct.value.__cause__ is not None  # litellm's own error, chained
    assert not isinstance(direct.value, TransientModelError)


def test_a_rate_limit_is_retried_then_raised_as_rate_limit_error(
    server: LoopbackServer, make_mem: Callable[..., MemoryManager]
) -> None:
    mem = make_mem(**over_http(server))
    server.add(*[Fault(429)] * QUICK.attempts)
    with pytest.raises(ExtractionError) as raised:
        mem.learn(SAID, user_id="priya")
    assert isinstance(raised.value.__cause__, RateLimitError)
    assert raised.value.attempts == len(server.requests) == QUICK.attempts

    server.add(*[Fault(429)] * QUICK.attempts)
    agent = Agent(model=MODEL, model_options=over_http(server)["model_options"], retry=QUICK)
    with pytest.raises(RateLimitError):
        agent.run("Hello", user_id="priya")
    agent.close()
    assert len(server.requests) == 2 * QUICK.attempts


def test_a_server_error_is_retried_then_raised_as_transient(
    server: LoopbackServer, make_mem: Callable[..., MemoryManager]
) -> None:
    server.add(Fault(500), Fault(503), {"profile": {"name": "Priya"}})
    mem = make_mem(**over_http(server))
    assert mem.learn(SAID, user_id="priya").usage.model_calls == 3
    assert mem.get(user_id="priya").profile.name == "Priya"


@pytest.mark.parametrize(
    ("model", "variable"),
    [
        ("gpt-4o-mini", "OPENAI_API_KEY"),  # the OpenAI SDK refuses to send; litellm calls that a 500
        ("anthropic/claude-3-5-haiku-latest", "ANTHROPIC_API_KEY"),  # litellm's own check
        ("gemini/gemini-1.5-flash", "GEMINI_API_KEY"),  # a ValueError, wrapped as a connection error
    ],
)
def test_a_missing_api_key_fails_at_once_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, db_url: str, model: str, variable: str
) -> None:
    """Real litellm calls, each refused on this machine before any request is sent (the test's socket
    guard would fail it otherwise)."""
    for name in list(os.environ):
        if name.endswith(("_API_KEY", "_API_TOKEN")):
            monkeypatch.delenv(name)
    with MemoryManager(db=db_url, model=model, retry=QUICK) as mem:
        with pytest.raises(ExtractionError) as raised:
            mem.learn(SAID, user_id="priya")
        assert raised.value.attempts == 1
        assert isinstance(raised.value.__cause__, AuthenticationError)
        assert variable in str(raised.value)

        agent = Agent(model=model, memory=mem)
        with pytest.raises(AuthenticationError, match=variable):
            agent.run("Hello", user_id="priya")
        agent.close()


def test_an_unknown_provider_is_a_model_not_found_error(db_url: str) -> None:
    mem = MemoryManager(db=db_url, model="no-such-provider/model", retry=QUICK)
    with mem, pytest.raises(ExtractionError) as raised:
        mem.learn(SAID, user_id="priya")
    assert isinstance(raised.value.__cause__, ModelNotFoundError)
    assert raised.value.attempts == 1


@pytest.mark.parametrize("option", ["max_retries", "num_retries"])
def test_sdk_retries_cannot_be_turned_back_on(option: str) -> None:
    with pytest.raises(ConfigurationError, match="RetryPolicy"):
        MemoryManager(db="sqlite://", model=MODEL, model_options={option: 3})


def test_a_model_of_ones_own_fails_as_a_model_error(mem: MemoryManager) -> None:
    agent = Agent(model=ScriptedModel([KeyError("choices")]), memory=mem)
    with pytest.raises(ModelError, match="KeyError") as raised:
        agent.run("Hello", user_id="u")
    agent.close()
    assert isinstance(raised.value.__cause__, KeyError)


def test_every_model_error_is_an_agentmem_error() -> None:
    for error in (AuthenticationError, ModelNotFoundError, ContextLengthError, RateLimitError):
        assert issubclass(error, ModelError)
        assert issubclass(error, AgentMemError)
        assert error.__name__ in agentmem.__all__
    assert issubclass(RateLimitError, TransientModelError)


# ---- the database --------------------------------------------------------------------------------


def test_a_database_failure_is_a_store_error_with_the_driver_error_chained(mem: MemoryManager) -> None:
    mem.knowledge.add("Runs marathons", user_id="u")
    with mem._store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE agentmem_messages")
    calls: list[Callable[[], Any]] = [
        lambda: mem.sessions.add("s1", [{"role": "user", "content": "Hi"}], user_id="u"),
        lambda: mem.sessions.messages("s1", user_id="u"),
        lambda: mem.export_user("u"),
        lambda: mem.delete_user("u"),
    ]
    for call in calls:
        with pytest.raises(StoreError, match="the database failed") as raised:
            call()
        assert raised.value.__cause__ is not None
        assert type(raised.value.__cause__).__module__.split(".")[0] in ("sqlite3", "psycopg")
        assert "SELECT" not in str(raised.value)  # the statement (and users' data) stay out of it
    assert [i.text for i in mem.get(user_id="u").items] == ["Runs marathons"]  # the rest still works


def test_an_unreachable_server_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot open database"):
        MemoryManager(db="postgresql+psycopg://postgres@127.0.0.1:1/test")


def test_a_database_from_a_newer_agentmem_is_a_store_error(db_url: str) -> None:
    MemoryManager(db=db_url).close()
    with MemoryManager(db=db_url) as mem, mem._store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE agentmem_meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="999"):
        MemoryManager(db=db_url)


def test_a_closed_manager_says_so_everywhere(make_mem: Callable[..., MemoryManager]) -> None:
    mem = make_mem()
    mem.knowledge.add("Runs marathons", user_id="u")
    doc = mem.export_user("u") | {"user_id": "v", "items": [], "events": []}
    mem.close()
    calls: list[Callable[[], Any]] = [
        lambda: mem.get(user_id="u"),
        lambda: mem.compile(user_id="u", query="running"),
        lambda: mem.search("running", user_id="u"),
        lambda: mem.knowledge.add("Has a cat", user_id="u"),
        lambda: mem.profile.update(user_id="u", name="Una"),
        lambda: mem.learn([{"role": "user", "content": "I have a cat."}], user_id="u"),
        lambda: asyncio.run(mem.alearn([{"role": "user", "content": "I have a cat."}], user_id="u")),
        lambda: mem.retry_pending(),
        lambda: mem.history(user_id="u"),
        lambda: mem.sessions.add("s1", [{"role": "user", "content": "Hi"}], user_id="u"),
        lambda: mem.sessions.list(user_id="u"),
        lambda: mem.export_user("u"),
        lambda: mem.import_user(doc),
        lambda: mem.delete_user("u"),
        lambda: Agent(model=ScriptedModel(["Hi"]), memory=mem).run("Hello", user_id="u"),
    ]
    for call in calls:
        with pytest.raises(ClosedError, match="closed"):
            call()


# ---- Agent.run keeps the reply -------------------------------------------------------------------


def test_a_reply_is_returned_when_storing_the_turn_fails(
    mem: MemoryManager, caplog: pytest.LogCaptureFixture
) -> None:
    def reply(_messages: Any) -> str:
        with mem._store.engine.begin() as conn:  # the database fails while the model answers
            conn.exec_driver_sql("DROP TABLE agentmem_messages")
        return "Hello, Priya!"

    agent = Agent(model=ScriptedModel([reply]), memory=mem)
    with caplog.at_level(logging.ERROR, logger="agentmem"):
        result = agent.run("Hello", user_id="priya", session_id="s1")
    agent.close()
    assert result.content == "Hello, Priya!"
    [record] = [r for r in caplog.records if r.name.startswith("agentmem")]
    assert "could not be stored" in record.getMessage()
    assert isinstance(record.exc_info and record.exc_info[1], StoreError)


# ---- quiet ---------------------------------------------------------------------------------------


def test_nothing_is_printed_on_model_failures(server: LoopbackServer, sqlite_url: str) -> None:
    """A user's script with failing models prints nothing: no litellm banners, no log lines."""
    server.add(Fault(404), *[Fault(500)] * 2, Fault(404), Fault(401), Fault(400, CONTEXT_TOO_LONG))
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from agentmem import Agent, AgentMemError, MemoryManager, RetryPolicy

        for name in list(os.environ):
            if name.endswith("_API_KEY"):
                del os.environ[name]
        said = [{{"role": "user", "content": "I'm Priya, a backend engineer."}}]
        local = {{"api_base": {server.url!r}, "api_key": "k"}}
        quick = RetryPolicy(attempts=2, backoff=0)
        for model, options in [
            ({MODEL!r}, local),  # 404
            ({MODEL!r}, local),  # 500, 500
            ("gpt-4o-mini", None),  # no key
            ("no-such-provider/model", None),
            ("qwen2.5-7b-instruct", None),  # no provider prefix
        ]:
            with MemoryManager(db={sqlite_url!r}, model=model, model_options=options, retry=quick) as mem:
                try:
                    mem.learn(said, user_id="priya")
                except AgentMemError:
                    pass
        mem = MemoryManager(db={sqlite_url!r})
        for _ in range(3):  # 404, 401, context length
            agent = Agent(model={MODEL!r}, model_options=local, memory=mem, retry=quick)
            try:
                agent.run("Hello", user_id="priya")
            except AgentMemError:
                pass
            try:
                asyncio.run(agent.arun("Hello again", user_id="priya"))
            except AgentMemError:
                pass
            agent.close()
        mem.close()
        """
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_PROXY": "127.0.0.1,localhost"}
    env.pop("LITELLM_LOG", None)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=180
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_agentmem_logs_under_its_own_logger_and_shows_nothing_by_default() -> None:
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("agentmem").handlers)


def test_the_library_never_prints() -> None:
    """print() only where printing is what the user asked for: the CLI, the demo, print_response."""
    package = Path(agentmem.__file__).parent
    allowed = {"cli.py", "demo.py"}
    found: list[str] = []
    for path in sorted(package.rglob("*.py")):
        if path.name in allowed:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        asked = {
            id(node)
            for function in ast.walk(tree)
            if isinstance(function, ast.FunctionDef) and function.name == "print_response"
            for node in ast.walk(function)
        }
        found += [
            f"{path.relative_to(package)}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "print"
            and id(node) not in asked
        ]
    assert found == []
