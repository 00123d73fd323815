"""Agent runs per request: ``GET /v1/agents`` and ``POST /v1/agents/{agent_id}/runs``, plain and streamed.

Real parts throughout: the app on the test's database (both backends), and the agents' and the memory's
model reached over HTTP through litellm at a LoopbackServer, which streams OpenAI-style chunks when asked.
A router answers the agents' chat requests and the memory's extraction requests from their own queues.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agentmem import Agent, MemoryManager
from agentmem.server import create_app
from agentmem.testing import Fault, LoopbackServer, ServerReply, ToolCall

from .conftest import ClientFor, MakeKey, serving

MODEL = "openai/test-model"
EXTRACTION_MARK = "You maintain a long-term memory of one user"  # prompts/extract.jinja
LEARN_WAIT = 60.0  # seconds a test waits for background learning before it fails


class Router:
    """The loopback server's reply function: chat and extraction requests each from their own queue
    (bodies kept in ``received``); a request with nothing queued fails at once with a 400."""

    def __init__(self) -> None:
        self.queues: dict[str, deque[ServerReply]] = {"chat": deque(), "extract": deque()}
        self.received: dict[str, list[dict[str, Any]]] = {"chat": [], "extract": []}
        self._lock = threading.Lock()

    def add(self, kind: str, *replies: ServerReply) -> None:
        with self._lock:
            self.queues[kind].extend(replies)

    def __call__(self, body: dict[str, Any]) -> ServerReply:
        first = str((body.get("messages") or [{}])[0].get("content") or "")
        kind = "extract" if "response_format" in body or EXTRACTION_MARK in first else "chat"
        with self._lock:
            self.received[kind].append(body)
            if self.queues[kind]:
                return self.queues[kind].popleft()
        return Fault(400, {"error": {"message": f"no {kind} reply queued", "type": "invalid_request_error"}})


@pytest.fixture
def router() -> Router:
    return Router()


@pytest.fixture
def loopback(router: Router) -> Iterator[LoopbackServer]:
    with LoopbackServer(router) as server:
        yield server


@pytest.fixture
def served(
    make_mem: Callable[..., MemoryManager], loopback: LoopbackServer
) -> Iterator[tuple[MemoryManager, dict[str, Agent]]]:
    """The memory the app serves (learning through the loopback model) and its agents: ``assistant``,
    and ``coder`` with one Python tool. The agents are closed (learning finished) after the test."""
    options = {"api_base": loopback.url, "api_key": "test-key"}
    memory = make_mem(model=MODEL, model_options=options)

    def weather(city: str) -> str:
        """Today's weather in a city."""
        return f"sunny in {city}"

    agents = {
        "assistant": Agent(MODEL, memory=memory, agent_id="assistant", model_options=options),
        "coder": Agent(MODEL, memory=memory, agent_id="coder", model_options=options, tools=[weather]),
    }
    yield memory, agents
    for agent in agents.values():
        agent.close()


@pytest.fixture
def memory(served: tuple[MemoryManager, dict[str, Agent]]) -> MemoryManager:
    return served[0]


@pytest.fixture
def agents(served: tuple[MemoryManager, dict[str, Agent]]) -> dict[str, Agent]:
    return served[1]


@pytest.fixture
def app(served: tuple[MemoryManager, dict[str, Agent]]) -> FastAPI:
    """Replaces conftest's app: this one serves the agents."""
    memory, agents = served
    return create_app(memory, agents=agents, allowed_hosts=["testserver"])  # TestClient's Host


def run(client: TestClient, agent_id: str, **body: Any) -> httpx.Response:
    return client.post(f"/v1/agents/{agent_id}/runs", json=body)


def sse(response: httpx.Response) -> list[tuple[str, Any]]:
    """The server-sent events of a response, as (event, parsed data)."""
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def system_of(body: dict[str, Any]) -> str:
    return str(body["messages"][0]["content"])


# ---- AgentOS's flow ---------------------------------------------------------------------------------


def test_alice_and_bob_through_the_runs_endpoint(
    router: Router,
    agents: dict[str, Agent],
    client_for: ClientFor,
    make_key: MakeKey,
) -> None:
    # The agent's backend: a key bound to the agent, serving every user.
    backend = client_for(make_key(agent_id="assistant", label="assistant backend"))
    router.add("chat", "Nice to meet you, Alice! Telemetry is fun.")
    router.add(
        "extract",
        {
            "profile": {"name": "Alice"},
            "policies": {"set": {}, "remove": []},
            "knowledge": [{"text": "Works on Kestrel telemetry", "topics": ["work"]}],
        },
    )

    first = run(backend, "assistant", message="I'm Alice, I work on Kestrel telemetry", user_id="alice")

    assert first.status_code == 200, first.text
    body = first.json()
    session = body["session_id"]
    assert body["reply"] == "Nice to meet you, Alice! Telemetry is fun."
    assert (body["agent_id"], body["user_id"], body["tool_calls"]) == ("assistant", "alice", [])
    assert body["usage"]["model_calls"] == 1
    assert body["usage"]["prompt_tokens"] > 0
    assert agents["assistant"].wait_for_memory(timeout=LEARN_WAIT)  # learned in the background

    def recall(request: dict[str, Any]) -> str:
        # Her memory is in the system message and her first turn in the history.
        said = [m["content"] for m in request["messages"][1:]]
        remembered = "Works on Kestrel telemetry" in system_of(request) and "name: Alice" in system_of(
            request
        )
        continued = said[0] == "I'm Alice, I work on Kestrel telemetry"
        return "You work on Kestrel telemetry, Alice." if remembered and continued else "I don't know."

    def apart(request: dict[str, Any]) -> str:
        sent = json.dumps(request["messages"])
        return "Hello, stranger." if "Alice" not in sent and "Kestrel" not in sent else "Alice leaked"

    router.add("chat", recall, apart)
    router.add("extract", {"profile": {}, "policies": {"set": {}, "remove": []}, "knowledge": []})
    router.add(
        "extract", {"profile": {"name": "Bob"}, "policies": {"set": {}, "remove": []}, "knowledge": []}
    )

    again = run(backend, "assistant", message="What do I work on?", user_id="alice", session_id=session)
    bob = run(backend, "assistant", message="Hi, I'm Bob. What do I work on?", user_id="bob")

    assert again.status_code == 200, again.text
    assert again.json()["reply"] == "You work on Kestrel telemetry, Alice."
    assert again.json()["session_id"] == session
    assert bob.status_code == 200, bob.text
    assert bob.json()["reply"] == "Hello, stranger."
    assert bob.json()["session_id"] != session
    assert agents["assistant"].wait_for_memory(timeout=LEARN_WAIT)

    # Everything else over HTTP too, as AgentOS's clients do: the session's messages...
    messages = backend.get(f"/v1/users/alice/sessions/{session}/messages")
    assert messages.status_code == 200, messages.text
    assert [(m["role"], m["content"]) for m in messages.json()["messages"]] == [
        ("user", "I'm Alice, I work on Kestrel telemetry"),
        ("assistant", "Nice to meet you, Alice! Telemetry is fun."),
        ("user", "What do I work on?"),
        ("assistant", "You work on Kestrel telemetry, Alice."),
    ]
    # ...what was learned of each, kept apart...
    alice = backend.get("/v1/users/alice/memory").json()
    assert alice["profile"]["name"] == "Alice"
    assert [item["text"] for item in alice["knowledge"]] == ["Works on Kestrel telemetry"]
    bob_memory = backend.get("/v1/users/bob/memory").json()
    assert (bob_memory["profile"]["name"], bob_memory["knowledge"]) == ("Bob", [])
    # ...a memory added by hand, then listed...
    added = backend.post(
        "/v1/users/alice/items", json={"layer": "knowledge", "text": "Prefers Grafana dashboards"}
    )
    assert added.status_code == 201, added.text
    listed = backend.get("/v1/users/alice/items", params={"layer": "knowledge"}).json()["items"]
    assert [item["text"] for item in listed] == ["Works on Kestrel telemetry", "Prefers Grafana dashboards"]
    assert added.json()["id"] in [item["id"] for item in listed]
    assert backend.get("/v1/users/bob/items").json()["items"] == []
    # ...and the session's summary, written by the model and read back.
    router.add("chat", "Alice works on Kestrel telemetry and asked what she works on.")
    written = backend.post(f"/v1/users/alice/sessions/{session}/summary")
    assert written.status_code == 200, written.text
    read = backend.get(f"/v1/users/alice/sessions/{session}/summary")
    assert read.json()["summary"] == "Alice works on Kestrel telemetry and asked what she works on."
    # What the model saw of the session when it summarized it.
    assert "What do I work on?" in json.dumps(router.received["chat"][-1]["messages"])


def test_the_agents_are_listed_as_far_as_the_key_reaches(
    client: TestClient, client_for: ClientFor, make_key: MakeKey
) -> None:
    listed = client.get("/v1/agents")
    assert listed.status_code == 200
    assert listed.json() == {
        "agents": [{"agent_id": "assistant", "model": MODEL}, {"agent_id": "coder", "model": MODEL}]
    }
    coder = client_for(make_key(agent_id="coder"))
    assert coder.get("/v1/agents").json() == {"agents": [{"agent_id": "coder", "model": MODEL}]}
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/v1/agents/{agent_id}/runs"]["post"]["responses"]["200"]["content"]) == {
        "application/json",
        "text/event-stream",
    }


def test_concurrent_runs_for_many_users_each_answered_and_learned(
    router: Router, app: FastAPI, memory: MemoryManager, agents: dict[str, Agent]
) -> None:
    users = [f"user{n}" for n in range(8)]

    def echo(body: dict[str, Any]) -> str:
        return f"Hello, {body['messages'][-1]['content'].removeprefix('I am ')}!"

    def name_of(body: dict[str, Any]) -> dict[str, Any]:
        named = re.search(r"I am (user\d+)", json.dumps(body["messages"]))
        assert named is not None
        return {"profile": {"name": named.group(1)}, "policies": {"set": {}, "remove": []}, "knowledge": []}

    router.add("chat", *[echo] * len(users))
    router.add("extract", *[name_of] * len(users))

    async def all_at_once() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)  # open mode: no key was created
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            return await asyncio.gather(
                *(
                    http.post("/v1/agents/assistant/runs", json={"message": f"I am {user}", "user_id": user})
                    for user in users
                )
            )

    answers = asyncio.run(all_at_once())

    assert [(a.status_code, a.json()["reply"]) for a in answers] == [(200, f"Hello, {u}!") for u in users]
    assert agents["assistant"].wait_for_memory(timeout=LEARN_WAIT)
    for user, answer in zip(users, answers, strict=True):
        assert memory.get(user_id=user, agent_id="assistant").profile.name == user
        stored = memory.sessions.messages(answer.json()["session_id"], user_id=user, agent_id="assistant")
        assert [m["content"] for m in stored] == [f"I am {user}", f"Hello, {user}!"]


# ---- streaming --------------------------------------------------------------------------------------


def test_a_streamed_run_sends_the_reply_in_pieces_and_stores_the_turn(
    router: Router,
    loopback: LoopbackServer,
    memory: MemoryManager,
    agents: dict[str, Agent],
    client: TestClient,
) -> None:
    reply = "Kestrel's telemetry pipeline batches spans every ten seconds, then ships them."
    router.add("chat", reply)
    router.add("extract", {"profile": {}, "policies": {"set": {}, "remove": []}, "knowledge": []})

    response = run(
        client,
        "assistant",
        message="I run Kestrel's telemetry. How does it ship spans?",
        user_id="alice",
        stream=True,
    )

    assert response.status_code == 200
    events = sse(response)
    names = [name for name, _data in events]
    assert names[0] == "start"
    assert names[-1] == "done"
    assert set(names[1:-1]) == {"delta"}
    deltas = [data["text"] for name, data in events if name == "delta"]
    assert len(deltas) > 1  # the model's stream, piece by piece, not the reply at once
    done = events[-1][1]
    assert "".join(deltas) == done["reply"] == reply
    assert done["session_id"] == events[0][1]["session_id"]
    [chat] = router.received["chat"]
    assert chat["stream"] is True  # the model was asked to stream (litellm's real streaming path)
    assert done["usage"]["prompt_tokens"] == loopback.completions[0]["usage"]["prompt_tokens"]
    assert agents["assistant"].wait_for_memory(timeout=LEARN_WAIT)
    assert len(router.received["extract"]) == 1  # learned in the background, as a plain run is
    stored = memory.sessions.messages(done["session_id"], user_id="alice", agent_id="assistant")
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "I run Kestrel's telemetry. How does it ship spans?"),
        ("assistant", reply),
    ]


def test_a_streamed_run_with_a_tool_call(
    router: Router, agents: dict[str, Agent], client: TestClient
) -> None:
    router.add("chat", ToolCall("weather", {"city": "Oslo"}), "It is sunny in Oslo today.")
    router.add("extract", {"profile": {}, "policies": {"set": {}, "remove": []}, "knowledge": []})

    events = sse(run(client, "coder", message="Weather in Oslo?", user_id="alice", stream=True))

    done = events[-1][1]
    assert events[-1][0] == "done"
    assert done["tool_calls"] == ["weather"]
    assert "".join(data["text"] for name, data in events if name == "delta") == done["reply"]
    assert done["reply"] == "It is sunny in Oslo today."
    tool_message = router.received["chat"][1]["messages"][-1]
    assert (tool_message["role"], tool_message["content"]) == ("tool", "sunny in Oslo")
    assert done["usage"]["model_calls"] == 2
    assert agents["coder"].wait_for_memory(timeout=LEARN_WAIT)


# ---- errors -----------------------------------------------------------------------------------------


def test_runs_refuse_what_the_caller_may_not_reach(
    router: Router, client: TestClient, client_for: ClientFor, make_key: MakeKey
) -> None:
    unknown = run(client, "nobody", message="hi", user_id="alice")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == {"code": "not_found", "message": "no agent 'nobody'"}

    missing = run(client, "assistant", message="hi")
    assert missing.status_code == 422
    assert missing.json()["error"]["code"] == "invalid_request"
    assert "user_id" in missing.json()["error"]["message"]

    alices = client_for(make_key(user_id="alice"))
    other_user = run(alices, "assistant", message="hi", user_id="bob")
    assert other_user.status_code == 404
    assert other_user.json()["error"] == {"code": "not_found", "message": "no user 'bob'"}

    coders = client_for(make_key(agent_id="coder"))
    other_agent = run(coders, "assistant", message="hi", user_id="alice")
    assert other_agent.status_code == 404
    assert other_agent.json() == {"error": {"code": "not_found", "message": "no agent 'assistant'"}}
    streamed = run(coders, "assistant", message="hi", user_id="alice", stream=True)
    assert (streamed.status_code, streamed.json()) == (404, other_agent.json())

    # Input the server refuses is a JSON error even when streaming: it is checked before the stream.
    bad_session = run(client, "assistant", message="hi", user_id="alice", session_id=" padded ", stream=True)
    assert bad_session.status_code == 422
    assert bad_session.json()["error"]["code"] == "invalid_request"
    # Ids with "/" could be written but never reached over HTTP paths: refused where they enter.
    for body in ({"user_id": "a/b"}, {"user_id": "alice", "session_id": "s/1"}):
        slashed = run(client, "assistant", message="hi", **body)
        assert (slashed.status_code, slashed.json()["error"]["code"]) == (422, "invalid_request")

    blank = run(client, "assistant", message="   ", user_id="alice")
    assert (blank.status_code, blank.json()["error"]["code"]) == (422, "invalid_input")

    assert router.received["chat"] == []  # no model was called for any of them


def test_another_agents_session_is_the_404_of_a_missing_one(
    router: Router, memory: MemoryManager, client: TestClient, client_for: ClientFor, make_key: MakeKey
) -> None:
    """A run names its session; another agent's answers 404 (as the session routes do), never the
    library's 422 naming the owner, plain or streamed, whatever the key; nothing is stored or called."""
    memory.sessions.add(
        "s-1", [{"role": "user", "content": "secret plans"}], user_id="alice", agent_id="coder"
    )
    before = memory.sessions.messages("s-1", user_id="alice")
    missing_elsewhere = client.get("/v1/users/alice/sessions/s-1/messages", params={"agent_id": "assistant"})
    assert missing_elsewhere.status_code == 404
    for key in (client, client_for(make_key(agent_id="assistant")), client_for(make_key(user_id="alice"))):
        for stream in (False, True):
            answer = run(key, "assistant", message="hi", user_id="alice", session_id="s-1", stream=stream)
            assert (answer.status_code, answer.json()) == (404, missing_elsewhere.json())
            assert "coder" not in answer.text
    assert memory.sessions.messages("s-1", user_id="alice") == before
    assert memory.sessions.list(user_id="alice", agent_id="assistant") == []
    assert router.received["chat"] == []


def test_a_model_failure_is_a_502_or_an_error_event(
    router: Router, memory: MemoryManager, agents: dict[str, Agent], client: TestClient
) -> None:
    refusal = {"error": {"message": "the model is confused", "type": "invalid_request_error"}}
    router.add("chat", Fault(400, refusal), Fault(400, refusal))

    failed = run(client, "assistant", message="hi", user_id="alice", session_id="s1")
    assert failed.status_code == 502
    assert failed.json()["error"]["code"] == "model_error"
    assert "the model is confused" in failed.json()["error"]["message"]

    streamed = run(client, "assistant", message="hi", user_id="alice", session_id="s2", stream=True)
    assert streamed.status_code == 200  # the stream had started: the failure is its last event
    events = sse(streamed)
    assert [name for name, _data in events] == ["start", "error"]
    assert events[1][1]["error"]["code"] == "model_error"
    assert "the model is confused" in events[1][1]["error"]["message"]

    assert agents["assistant"].wait_for_memory(timeout=LEARN_WAIT)
    for session in ("s1", "s2"):  # a failed run stores nothing and learns nothing
        assert memory.sessions.messages(session, user_id="alice", agent_id="assistant") == []
    assert router.received["extract"] == []


# ---- a real `agentmem serve --agents` process ---------------------------------------------------------

AGENTS_MODULE = """
import os

from agentmem import Agent


def agents(memory):
    options = {"api_base": os.environ["RUNS_TEST_MODEL_URL"], "api_key": "test-key"}
    return [Agent("openai/test-model", memory=memory, agent_id="helper", model_options=options)]
"""


def test_agentmem_serve_runs_the_agents_of_a_module(
    db_url: str, tmp_path: Path, router: Router, loopback: LoopbackServer
) -> None:
    (tmp_path / "served_agents.py").write_text(AGENTS_MODULE)
    log = tmp_path / "serve.log"
    env = {
        "RUNS_TEST_MODEL_URL": loopback.url,
        # The memory's own model (--model) learns through the loopback server too.
        "OPENAI_API_BASE": loopback.url,
        "OPENAI_API_KEY": "test-key",
    }
    router.add("chat", "Hello from the served helper.")
    router.add(
        "extract", {"profile": {"name": "Carol"}, "policies": {"set": {}, "remove": []}, "knowledge": []}
    )
    args = ("--db", db_url, "--model", MODEL, "--agents", "served_agents:agents")
    with serving(*args, log=log, env=env, cwd=tmp_path, stop_seconds=60) as (base, proc):
        assert httpx.get(f"{base}/v1/agents").json() == {"agents": [{"agent_id": "helper", "model": MODEL}]}
        answered = httpx.post(
            f"{base}/v1/agents/helper/runs", json={"message": "I'm Carol.", "user_id": "carol"}, timeout=60
        )
        assert answered.status_code == 200, answered.text
        assert answered.json()["reply"] == "Hello from the served helper."
    # uvicorn stops gracefully, then re-raises the signal it was stopped by.
    assert proc.returncode in (0, -signal.SIGTERM), log.read_text()
    output = log.read_text()  # the startup line only: no traceback, no litellm noise
    assert "Traceback" not in output
    assert "Task was destroyed" not in output
    with MemoryManager(db=db_url) as after:
        assert after.get(user_id="carol", agent_id="helper").profile.name == "Carol"
        stored = after.sessions.messages(answered.json()["session_id"], user_id="carol", agent_id="helper")
        assert [(m["role"], m["content"]) for m in stored] == [
            ("user", "I'm Carol."),
            ("assistant", "Hello from the served helper."),
        ]
