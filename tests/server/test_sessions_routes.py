"""The sessions routes (``/v1/users/{user_id}/sessions...``) on both backends: list, messages, summary,
delete; validation errors answered 4xx with nothing stored; other agents' and users' sessions 404."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agentmem import MemoryManager
from agentmem.testing import ScriptedModel

from .conftest import ClientFor, MakeKey

TURN = [
    {"role": "user", "content": "How do I clean survey data?"},
    {"role": "assistant", "content": "Drop empty rows, then impute."},
]


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel()


@pytest.fixture
def mem(db_url: str, model: ScriptedModel) -> Iterator[MemoryManager]:
    """The served memory, summarizing with a scripted model."""
    manager = MemoryManager(db=db_url, model=model)
    yield manager
    manager.close()


def error_code(answer: Any) -> str:
    return str(answer.json()["error"]["code"])


def test_append_read_list_and_delete(client: TestClient, mem: MemoryManager) -> None:
    added = client.post("/v1/users/sarah/sessions/s1/messages", json={"messages": TURN})
    assert added.status_code == 201
    assert added.json() == {"session_id": "s1", "added": 2}
    client.post(
        "/v1/users/sarah/sessions/s2/messages", json={"messages": [TURN[0]]}, params={"agent_id": "coder"}
    )

    listed = client.get("/v1/users/sarah/sessions").json()["sessions"]
    assert [(s["session_id"], s["agent_id"], s["messages"]) for s in listed] == [
        ("s2", "coder", 1),
        ("s1", None, 2),
    ]
    assert [
        s["session_id"] for s in client.get("/v1/users/sarah/sessions?agent_id=coder").json()["sessions"]
    ] == ["s2"]
    assert client.get("/v1/users/sarah/sessions/s1/messages").json() == {"messages": TURN}
    assert client.get("/v1/users/sarah/sessions/s1/messages?limit=1").json() == {"messages": TURN[1:]}
    assert client.get("/v1/users/nobody/sessions").json() == {"sessions": []}

    assert client.delete("/v1/users/sarah/sessions/s1").status_code == 204
    assert [s.session_id for s in mem.sessions.list(user_id="sarah")] == ["s2"]
    assert client.get("/v1/users/sarah/sessions/s1/messages").status_code == 404
    assert client.delete("/v1/users/sarah/sessions/s1").status_code == 404


def test_tool_calls_and_content_parts_go_through_and_secrets_are_redacted(
    client: TestClient, mem: MemoryManager
) -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "my password is hunter2"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "content": "done", "tool_call_id": "c1", "name": "f"},
    ]
    assert client.post("/v1/users/u/sessions/s/messages", json={"messages": messages}).status_code == 201
    stored = client.get("/v1/users/u/sessions/s/messages").json()["messages"]
    assert stored[0] == {"role": "user", "content": "my password is [redacted]"}
    assert stored[1]["tool_calls"][0]["id"] == "c1"
    assert stored[2] == {"role": "tool", "content": "done", "tool_call_id": "c1", "name": "f"}
    assert stored == mem.sessions.messages("s", user_id="u")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "invalid_request"),
        ({"messages": []}, "invalid_request"),
        ({"messages": "hello"}, "invalid_request"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "invalid_request"),
        ({"messages": [{"role": "user", "content": 5}]}, "invalid_request"),
        ({"messages": [{"role": "user", "content": "hi", "extra": 1}]}, "invalid_request"),
        ({"messages": [{"role": "user", "content": "x" * 100_001}]}, "invalid_input"),
        ({"messages": [{"role": "user", "content": "nul \x00 byte"}]}, "invalid_input"),
        ({"messages": [{"role": "user", "content": [{"text": "no type"}]}]}, "invalid_input"),
        ({"messages": [TURN[0]] * 1001}, "invalid_request"),
    ],
)
def test_bad_messages_are_422_and_store_nothing(
    client: TestClient, mem: MemoryManager, body: dict[str, Any], code: str
) -> None:
    answer = client.post("/v1/users/u/sessions/s/messages", json=body)
    assert answer.status_code == 422
    assert error_code(answer) == code
    assert mem.sessions.list(user_id="u") == []


def test_a_body_that_is_not_json_is_422(client: TestClient, mem: MemoryManager) -> None:
    answer = client.post(
        "/v1/users/u/sessions/s/messages", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422
    assert mem.sessions.list(user_id="u") == []


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/v1/users/u/sessions/%20padded%20/messages", "invalid_scope"),
        ("/v1/users/%20/sessions/s/messages", "invalid_scope"),
        (f"/v1/users/u/sessions/{'s' * 300}/messages", "invalid_scope"),
        ("/v1/users/u/sessions/s/messages?limit=-1", "invalid_request"),
        ("/v1/users/u/sessions/s/messages?limit=x", "invalid_request"),
        ("/v1/users/u/sessions?agent_id=%20", "invalid_scope"),
    ],
)
def test_bad_ids_and_limits_are_422(client: TestClient, path: str, code: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 422, answer.text
    assert error_code(answer) == code


def test_bad_ids_on_writes_are_422_and_store_nothing(client: TestClient, mem: MemoryManager) -> None:
    answer = client.post("/v1/users/u/sessions/%20bad/messages", json={"messages": TURN})
    assert answer.status_code == 422
    answer = client.post("/v1/users/u/sessions/s/messages?agent_id=%00", json={"messages": TURN})
    assert answer.status_code == 422
    assert mem.list_users() == []


def test_summary_read_and_written_now(client: TestClient, model: ScriptedModel) -> None:
    client.post("/v1/users/u/sessions/s/messages", json={"messages": TURN})
    assert client.get("/v1/users/u/sessions/s/summary").json() == {"session_id": "s", "summary": None}

    model.add("Survey data cleaning.")
    written = client.post("/v1/users/u/sessions/s/summary")
    assert written.status_code == 200
    assert written.json() == {"session_id": "s", "summary": "Survey data cleaning."}
    assert client.get("/v1/users/u/sessions/s/summary").json()["summary"] == "Survey data cleaning."
    assert client.get("/v1/users/u/sessions").json()["sessions"][0]["summary"] == "Survey data cleaning."


def test_a_failing_model_is_502_and_keeps_the_previous_summary(
    client: TestClient, model: ScriptedModel, mem: MemoryManager
) -> None:
    client.post("/v1/users/u/sessions/s/messages", json={"messages": TURN})
    model.add("First summary.")
    client.post("/v1/users/u/sessions/s/summary")
    client.post("/v1/users/u/sessions/s/messages", json={"messages": TURN})
    model.add(*[ValueError("down")] * 5)

    answer = client.post("/v1/users/u/sessions/s/summary")
    assert answer.status_code == 502
    assert error_code(answer) == "model_error"
    assert mem.sessions.summary("s", user_id="u") == "First summary."


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/users/u/sessions/missing/messages"),
        ("GET", "/v1/users/u/sessions/missing/summary"),
        ("POST", "/v1/users/u/sessions/missing/summary"),
        ("DELETE", "/v1/users/u/sessions/missing"),
    ],
)
def test_a_missing_session_is_404(client: TestClient, method: str, path: str) -> None:
    client.post("/v1/users/other/sessions/missing/messages", json={"messages": TURN})  # another user's
    answer = client.request(method, path)
    assert answer.status_code == 404
    assert error_code(answer) == "not_found"


def test_an_agent_key_sees_only_its_agents_sessions(
    client: TestClient, client_for: ClientFor, make_key: MakeKey, mem: MemoryManager
) -> None:
    client.post("/v1/users/u/sessions/mine/messages?agent_id=a", json={"messages": TURN})
    client.post("/v1/users/u/sessions/theirs/messages?agent_id=b", json={"messages": TURN})
    client.post("/v1/users/u/sessions/users/messages", json={"messages": TURN})
    agent_a = client_for(make_key(agent_id="a"))

    assert [s["session_id"] for s in agent_a.get("/v1/users/u/sessions").json()["sessions"]] == ["mine"]
    assert agent_a.get("/v1/users/u/sessions?agent_id=b").status_code == 404
    assert agent_a.get("/v1/users/u/sessions/mine/messages").json() == {"messages": TURN}
    for session in ("theirs", "users"):
        assert agent_a.get(f"/v1/users/u/sessions/{session}/messages").status_code == 404
        assert agent_a.get(f"/v1/users/u/sessions/{session}/summary").status_code == 404
        assert agent_a.post(f"/v1/users/u/sessions/{session}/summary").status_code == 404
        assert agent_a.delete(f"/v1/users/u/sessions/{session}").status_code == 404
        answer = agent_a.post(f"/v1/users/u/sessions/{session}/messages", json={"messages": TURN})
        assert answer.status_code == 404
    assert {s.session_id: s.messages for s in mem.sessions.list(user_id="u")} == {
        "mine": 2,
        "theirs": 2,
        "users": 2,
    }
    made = agent_a.post("/v1/users/u/sessions/new/messages", json={"messages": TURN})
    assert made.status_code == 201
    assert mem.sessions.get("new", user_id="u").agent_id == "a"


def test_acting_as_no_agent_on_an_agents_session_is_refused(client: TestClient, mem: MemoryManager) -> None:
    client.post("/v1/users/u/sessions/s/messages?agent_id=a", json={"messages": TURN})
    answer = client.post("/v1/users/u/sessions/s/messages", json={"messages": TURN})
    assert answer.status_code == 422
    assert error_code(answer) == "invalid_scope"
    assert mem.sessions.get("s", user_id="u").messages == 2


def test_a_user_key_reaches_only_its_users_sessions(
    client: TestClient, client_for: ClientFor, make_key: MakeKey, mem: MemoryManager
) -> None:
    client.post("/v1/users/bob/sessions/s/messages", json={"messages": TURN})
    alice = client_for(make_key(user_id="alice"))
    assert alice.post("/v1/users/alice/sessions/s/messages", json={"messages": TURN}).status_code == 201
    assert alice.get("/v1/users/bob/sessions").status_code == 404
    assert alice.get("/v1/users/bob/sessions/s/messages").status_code == 404
    assert alice.delete("/v1/users/bob/sessions/s").status_code == 404
    assert mem.sessions.get("s", user_id="bob").messages == 2
