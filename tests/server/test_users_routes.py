"""The users routes on both backends: the user list (admin), export, import (413, 422, 409, nothing
written on bad input), erasure (keys included), pending learns and their retry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agentmem import ExtractionError, MemoryManager
from agentmem.server import create_app
from agentmem.server.keys import ApiKeys
from agentmem.testing import ScriptedModel

from .conftest import ClientFor, MakeKey

SARAH = [{"role": "user", "content": "I'm Sarah, a data scientist."}]


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel()


@pytest.fixture
def mem(db_url: str, model: ScriptedModel) -> Iterator[MemoryManager]:
    """The served memory, learning with a scripted model."""
    manager = MemoryManager(db=db_url, model=model)
    yield manager
    manager.close()


@pytest.fixture
def sarah(mem: MemoryManager) -> dict[str, Any]:
    """Sarah's memory: a profile, a fact, a session; returns her export."""
    mem.profile.update(user_id="sarah", name="Sarah")
    mem.knowledge.add("Builds a churn model", user_id="sarah", topics=["work"])
    mem.sessions.add("s1", SARAH, user_id="sarah")
    return mem.export_user("sarah")


def error_code(answer: Any) -> str:
    return str(answer.json()["error"]["code"])


def test_admin_lists_users(client: TestClient, sarah: dict[str, Any], mem: MemoryManager) -> None:
    mem.profile.update(user_id="marco", name="Marco")
    users = client.get("/v1/users").json()["users"]
    assert [(u["user_id"], u["items"], u["sessions"]) for u in users] == [("marco", 1, 0), ("sarah", 2, 1)]
    assert all(u["last_activity"] for u in users)


def test_non_admin_keys_do_not_see_the_user_list(
    client_for: ClientFor, make_key: MakeKey, sarah: dict[str, Any]
) -> None:
    for key in (make_key(user_id="sarah"), make_key(agent_id="a"), make_key(user_id="sarah", agent_id="a")):
        answer = client_for(key).get("/v1/users")
        assert answer.status_code == 404
        assert error_code(answer) == "not_found"


def test_export_then_import_into_another_server_round_trips(
    client: TestClient, sarah: dict[str, Any], new_db_url: Any
) -> None:
    exported = client.get("/v1/users/sarah/export")
    assert exported.status_code == 200
    assert exported.json() == json.loads(json.dumps(sarah))

    with MemoryManager(db=new_db_url()) as other:
        other_keys = ApiKeys(other)
        with TestClient(
            create_app(other), headers={"Authorization": f"Bearer {other_keys.create(admin=True).secret}"}
        ) as other_client:
            imported = other_client.post("/v1/users/import", json=exported.json())
            assert imported.status_code == 201, imported.text
            assert imported.json() == {"user_id": "sarah", "items": 2}
            assert other_client.get("/v1/users/sarah/export").json() == exported.json()
        assert other.get(user_id="sarah").profile.name == "Sarah"


def test_export_of_a_user_without_memory_is_an_empty_document(client: TestClient) -> None:
    doc = client.get("/v1/users/nobody/export").json()
    assert doc["user_id"] == "nobody"
    assert all(value == [] for key, value in doc.items() if isinstance(value, list))


def test_importing_over_an_existing_user_is_409_and_changes_nothing(
    client: TestClient, sarah: dict[str, Any], mem: MemoryManager
) -> None:
    body = client.get("/v1/users/sarah/export").json()
    answer = client.post("/v1/users/import", json=body)
    assert answer.status_code == 409
    assert error_code(answer) == "conflict"
    assert client.get("/v1/users/sarah/export").json() == body
    renamed = client.post("/v1/users/import", json={**body, "user_id": "ana"})  # ids taken by sarah
    assert renamed.status_code == 409
    assert renamed.json()["error"]["message"].startswith("an item id in the document is already taken")
    assert all(item["id"] not in renamed.text for item in body["items"])


PAST_UTC = "9999-12-31T23:59:59-14:00"  # after the year 9999 once in UTC


def test_out_of_range_times_and_numbers_are_422_and_write_nothing(
    client: TestClient, sarah: dict[str, Any], mem: MemoryManager
) -> None:
    added = client.post(
        "/v1/users/sarah/items", json={"layer": "knowledge", "text": "x", "expires_at": PAST_UTC}
    )
    assert (added.status_code, error_code(added)) == (422, "invalid_input")
    doc = {**client.get("/v1/users/sarah/export").json(), "user_id": "ana"}
    client.delete("/v1/users/sarah")
    item = doc["items"][0]
    for bad in (
        {"created_at": PAST_UTC},
        {"expires_at": PAST_UTC},
        {"count": 10**30},
        {"meta": {"x": float("nan")}},
        {"meta": {"x": [float("inf")]}},
    ):
        body = json.dumps({**doc, "items": [{**item, **bad}, *doc["items"][1:]]})  # NaN as JSON's NaN
        answer = client.post("/v1/users/import", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 422, (bad, answer.text)
        assert error_code(answer) in ("invalid_request", "invalid_input"), bad
    assert mem.list_users() == []


def _bad_documents(doc: dict[str, Any]) -> list[Any]:
    broken_item = json.loads(json.dumps(doc))
    broken_item["items"][0]["layer"] = "no_such_layer"
    return [
        [],
        "export",
        {},
        {"user_id": "ana"},
        {**doc, "user_id": "ana", "items": "nope"},
        {**broken_item, "user_id": "ana"},
        {**doc, "user_id": " ana "},
        {**doc, "user_id": 5},
    ]


def test_a_malformed_document_is_422_and_writes_nothing(
    client: TestClient, sarah: dict[str, Any], mem: MemoryManager
) -> None:
    good = client.get("/v1/users/sarah/export").json()
    for bad in _bad_documents(good):
        answer = client.post("/v1/users/import", json=bad)
        assert answer.status_code == 422, (bad, answer.text)
        assert error_code(answer) in ("invalid_request", "invalid_input", "invalid_scope")
    answer = client.post("/v1/users/import", content=b"{", headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert [u.user_id for u in mem.list_users()] == ["sarah"]


def test_an_import_over_the_body_limit_is_413_and_writes_nothing(
    mem: MemoryManager, sarah: dict[str, Any]
) -> None:
    doc = {**mem.export_user("sarah"), "user_id": "ana"}
    small = create_app(mem, max_body_bytes=len(json.dumps(doc)) // 2)
    key = ApiKeys(mem).create(admin=True).secret
    with TestClient(small, headers={"Authorization": f"Bearer {key}"}) as client:
        answer = client.post("/v1/users/import", json=doc)
        assert answer.status_code == 413
        assert error_code(answer) == "body_too_large"
    assert [u.user_id for u in mem.list_users()] == ["sarah"]


def test_a_user_key_imports_only_its_own_user(
    client: TestClient, client_for: ClientFor, make_key: MakeKey, sarah: dict[str, Any], mem: MemoryManager
) -> None:
    doc = client.get("/v1/users/sarah/export").json()
    client.delete("/v1/users/sarah")
    for key in (make_key(user_id="ana"), make_key(agent_id="a"), make_key(user_id="sarah", agent_id="a")):
        answer = client_for(key).post("/v1/users/import", json=doc)
        assert answer.status_code == 404
        assert error_code(answer) == "not_found"
    nameless = client_for(make_key(user_id="sarah")).post("/v1/users/import", json={"items": []})
    assert nameless.status_code == 422
    assert mem.list_users() == []

    answer = client_for(make_key(user_id="sarah")).post("/v1/users/import", json=doc)
    assert answer.status_code == 201
    assert mem.get(user_id="sarah").profile.name == "Sarah"


def test_delete_erases_the_user_and_their_keys(
    client: TestClient, client_for: ClientFor, make_key: MakeKey, sarah: dict[str, Any], mem: MemoryManager
) -> None:
    sarahs_key = make_key(user_id="sarah")
    mem.profile.update(user_id="marco", name="Marco")
    answer = client.delete("/v1/users/sarah")
    assert answer.status_code == 200
    assert answer.json() == {"user_id": "sarah", "items": 2}
    assert [u.user_id for u in mem.list_users()] == ["marco"]
    assert mem.sessions.list(user_id="sarah") == []
    assert client_for(sarahs_key).get("/v1/me").status_code == 401
    assert client.delete("/v1/users/sarah").json() == {"user_id": "sarah", "items": 0}


def test_a_user_key_erases_its_own_user_only(
    client_for: ClientFor, make_key: MakeKey, sarah: dict[str, Any], mem: MemoryManager
) -> None:
    mem.profile.update(user_id="marco", name="Marco")
    marco = client_for(make_key(user_id="marco"))
    assert marco.delete("/v1/users/sarah").status_code == 404
    assert client_for(make_key(user_id="sarah", agent_id="a")).delete("/v1/users/sarah").status_code == 404
    assert client_for(make_key(agent_id="a")).get("/v1/users/sarah/export").status_code == 404
    assert [u.user_id for u in mem.list_users()] == ["marco", "sarah"]
    assert marco.delete("/v1/users/marco").status_code == 200
    assert [u.user_id for u in mem.list_users()] == ["sarah"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/users/%20x/export"),
        ("DELETE", "/v1/users/%20x"),
        ("GET", "/v1/users/%20x/pending"),
        ("POST", "/v1/users/%20x/pending/retry"),
        ("GET", "/v1/users/x/pending?agent_id=%20"),
    ],
)
def test_bad_user_and_agent_ids_are_422(client: TestClient, method: str, path: str) -> None:
    answer = client.request(method, path)
    assert answer.status_code == 422
    assert error_code(answer) == "invalid_scope"


def _fail_learns(mem: MemoryManager, model: ScriptedModel) -> None:
    model.add(ValueError("down"), ValueError("down"))
    with pytest.raises(ExtractionError):
        mem.learn(SARAH, user_id="sarah", agent_id="coder", session_id="s1")
    with pytest.raises(ExtractionError):
        mem.learn([{"role": "user", "content": "I'm Sarah, I live in Oslo"}], user_id="sarah")


def test_pending_learns_are_listed_and_retried(
    client: TestClient, client_for: ClientFor, make_key: MakeKey, mem: MemoryManager, model: ScriptedModel
) -> None:
    _fail_learns(mem, model)
    pending = client.get("/v1/users/sarah/pending").json()["pending"]
    assert [(p["agent_id"], p["session_id"]) for p in pending] == [("coder", "s1"), (None, None)]
    assert pending[0]["messages"] == SARAH
    assert "down" in pending[0]["error"]
    assert pending[0]["attempts"] >= 1
    assert client.get("/v1/users/marco/pending").json() == {"pending": []}
    coder = client_for(make_key(agent_id="coder"))
    assert [p["agent_id"] for p in coder.get("/v1/users/sarah/pending").json()["pending"]] == ["coder"]
    assert coder.post("/v1/users/sarah/pending/retry").status_code == 404  # covers every agent's learns

    model.add({"profile": {"name": "Sarah"}}, ValueError("still down"))
    answer = client.post("/v1/users/sarah/pending/retry")
    assert answer.status_code == 200
    assert answer.json() == {"retried": 2, "succeeded": 1, "still_pending": 1}
    assert mem.get(user_id="sarah", agent_id="coder").profile.name == "Sarah"
    [left] = client.get("/v1/users/sarah/pending").json()["pending"]
    assert left["agent_id"] is None

    model.add({"profile": {"city": "Oslo"}})
    assert client.post("/v1/users/sarah/pending/retry").json() == {
        "retried": 1,
        "succeeded": 1,
        "still_pending": 0,
    }
    assert client.get("/v1/users/sarah/pending").json() == {"pending": []}


def test_another_users_pending_learns_are_404(
    client_for: ClientFor, make_key: MakeKey, mem: MemoryManager, model: ScriptedModel
) -> None:
    _fail_learns(mem, model)
    marco = client_for(make_key(user_id="marco"))
    assert marco.get("/v1/users/sarah/pending").status_code == 404
    assert marco.post("/v1/users/sarah/pending/retry").status_code == 404
    assert len(mem.pending(user_id="sarah")) == 2


def test_openapi_names_the_routes(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    for path in (
        "/v1/users",
        "/v1/users/{user_id}/export",
        "/v1/users/import",
        "/v1/users/{user_id}",
        "/v1/users/{user_id}/pending",
        "/v1/users/{user_id}/pending/retry",
    ):
        assert path in paths
