"""The memory routes (``/v1/users/{user_id}/...``) over HTTP, on both backends: what each answers, how
bad input is refused (and leaves memory as it was), and that another user's item ids answer exactly
like missing ones. Learning uses a ScriptedModel as the served memory's model; one flow runs against a
real ``agentmem serve`` process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient

from agentmem import InvalidInputError, MemoryManager
from agentmem.server import create_app
from agentmem.server.context import context_report
from agentmem.server.keys import ApiKeys
from agentmem.testing import ScriptedModel

from .conftest import ClientFor, MakeKey

SARAH = "/v1/users/sarah"
SAID = [{"role": "user", "content": "I'm Sarah, a data scientist. I build a churn model at Acme."}]
LEARNED = {
    "profile": {"name": "Sarah", "role": "data scientist"},
    "knowledge": [{"text": "Builds a churn model at Acme", "topics": ["work"]}],
}
MISSING = "m_000000000000000000000000"


def add(
    client: TestClient, text: str, layer: str = "knowledge", user: str = SARAH, **body: Any
) -> dict[str, Any]:
    answer = client.post(f"{user}/items", json={"layer": layer, "text": text, **body})
    assert answer.status_code == 201, answer.text
    item: dict[str, Any] = answer.json()
    return item


def error(answer: httpx.Response, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    return message


def stored(mem: MemoryManager, user_id: str = "sarah") -> list[tuple[str, str, Any]]:
    """Everything live for the user, to compare before and after a refused request."""
    return sorted((i.id, i.text, repr(i.value)) for i in mem.get(user_id=user_id).items)


# ---- items --------------------------------------------------------------------------------------


def test_items_are_added_listed_filtered_and_read(client: TestClient, mem: MemoryManager) -> None:
    fact = add(client, "Builds a churn model", topics=["work", "ML"])
    liked = add(
        client,
        "Liked the pandas example",
        layer="feedback",
        fields={"sentiment": "positive", "target": "pandas"},
    )
    home = add(client, "Lives in Lisbon", topics=["home"])

    assert (fact["layer"], fact["value"], fact["source"]) == (
        "knowledge",
        {"text": "Builds a churn model", "topics": ["work", "ML"]},
        "manual",
    )
    assert liked["value"] == {"text": "Liked the pandas example", "sentiment": "positive", "target": "pandas"}
    assert {i.id for i in mem.get(user_id="sarah").items} == {fact["id"], liked["id"], home["id"]}

    every = client.get(f"{SARAH}/items").json()["items"]
    assert [i["id"] for i in every] == [fact["id"], home["id"], liked["id"]]  # layer by layer, oldest first
    knowledge = client.get(f"{SARAH}/items", params={"layer": "knowledge"}).json()["items"]
    assert [i["id"] for i in knowledge] == [fact["id"], home["id"]]
    by_topic = client.get(f"{SARAH}/items", params={"topics": "ml,nothing"}).json()["items"]
    assert [i["id"] for i in by_topic] == [fact["id"]]  # any of the topics, ignoring case
    repeated = client.get(f"{SARAH}/items", params=[("topics", "home"), ("topics", "work")]).json()["items"]
    assert [i["id"] for i in repeated] == [fact["id"], home["id"]]
    assert client.get(f"{SARAH}/items/{liked['id']}").json() == liked
    assert client.get("/v1/users/bob/items").json() == {"items": []}


def test_a_duplicate_answers_the_existing_item(client: TestClient) -> None:
    first = add(client, "Builds a churn model", topics=["work"])
    again = add(client, "builds a churn model", topics=["ml"])

    assert again["id"] == first["id"]
    assert again["value"]["topics"] == ["work", "ml"]


def test_an_item_is_updated_in_place_keeping_its_id_and_old_value(
    client: TestClient, mem: MemoryManager
) -> None:
    fact = add(client, "Builds a churn model", topics=["work"])

    answer = client.patch(f"{SARAH}/items/{fact['id']}", json={"text": "Builds a churn model in Python"})

    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == fact["id"]
    assert answer.json()["text"] == "Builds a churn model in Python"
    assert mem.knowledge.list(user_id="sarah")[0].text == "Builds a churn model in Python"
    topics = client.patch(f"{SARAH}/items/{fact['id']}", json={"fields": {"topics": ["ml"]}}).json()
    assert topics["value"] == {"text": "Builds a churn model in Python", "topics": ["ml"]}
    events = client.get(f"{SARAH}/items/{fact['id']}/history").json()["events"]
    assert [(e["op"], e["old"], e["new"]) for e in events] == [
        ("add", None, {"text": "Builds a churn model", "topics": ["work"]}),
        (
            "update",
            {"text": "Builds a churn model", "topics": ["work"]},
            fact["value"] | {"text": topics["text"]},
        ),
        ("update", {"text": "Builds a churn model in Python", "topics": ["work"]}, topics["value"]),
    ]


def test_an_update_saying_what_another_item_says_is_a_conflict(
    client: TestClient, mem: MemoryManager
) -> None:
    first = add(client, "Builds a churn model")
    add(client, "Lives in Lisbon")
    before = stored(mem)

    error(client.patch(f"{SARAH}/items/{first['id']}", json={"text": "Lives in Lisbon"}), 409, "conflict")

    assert stored(mem) == before


def test_a_deleted_item_is_gone_and_its_history_kept(client: TestClient, mem: MemoryManager) -> None:
    fact = add(client, "Builds a churn model")

    answer = client.delete(f"{SARAH}/items/{fact['id']}")

    assert answer.status_code == 204
    assert answer.content == b""
    assert mem.get(user_id="sarah").items == []
    error(client.get(f"{SARAH}/items/{fact['id']}"), 404, "not_found")
    error(client.delete(f"{SARAH}/items/{fact['id']}"), 404, "not_found")
    events = client.get(f"{SARAH}/items/{fact['id']}/history").json()["events"]
    assert [(e["op"], e["reason"]) for e in events] == [("add", None), ("delete", "forgotten")]


def test_missing_items_are_404_on_every_item_route(client: TestClient) -> None:
    add(client, "Builds a churn model")
    answers = [
        client.get(f"{SARAH}/items/{MISSING}"),
        client.patch(f"{SARAH}/items/{MISSING}", json={"text": "new"}),
        client.delete(f"{SARAH}/items/{MISSING}"),
        client.get(f"{SARAH}/items/{MISSING}/history"),
    ]
    messages = {error(answer, 404, "not_found") for answer in answers}
    assert messages == {f"no memory item {MISSING!r}"}


def test_another_users_item_answers_exactly_like_a_missing_one(
    client: TestClient, client_for: ClientFor, make_key: MakeKey, mem: MemoryManager
) -> None:
    bobs = add(client, "Bob's secret project", user="/v1/users/bob")
    sarahs = client_for(make_key(user_id="sarah"))
    before = stored(mem, "bob")
    attempts = {
        "get": lambda i: sarahs.get(f"{SARAH}/items/{i}"),
        "patch": lambda i: sarahs.patch(f"{SARAH}/items/{i}", json={"text": "taken over"}),
        "delete": lambda i: sarahs.delete(f"{SARAH}/items/{i}"),
        "history": lambda i: sarahs.get(f"{SARAH}/items/{i}/history"),
    }
    succeeded = 0
    for name, attempt in attempts.items():
        theirs, missing = attempt(bobs["id"]), attempt(MISSING)
        succeeded += theirs.status_code < 400
        assert theirs.status_code == missing.status_code == 404, name
        assert theirs.json() == {"error": {"code": "not_found", "message": f"no memory item {bobs['id']!r}"}}
        assert missing.json()["error"]["message"] == f"no memory item {MISSING!r}"
    # The key reaches no route of bob's at all: the same 404 a missing user gets.
    for path in ("items", f"items/{bobs['id']}", "memory", "history", "context"):
        assert error(sarahs.get(f"/v1/users/bob/{path}"), 404, "not_found") == "no user 'bob'"
    assert succeeded == 0
    assert stored(mem, "bob") == before


def test_an_agents_private_item_is_missing_to_another_agent(
    client: TestClient, client_for: ClientFor, make_key: MakeKey
) -> None:
    private = add(client, "Prefers tabs", agent_id="coder")
    assert private["agent_id"] == "coder"
    as_writer = client_for(make_key(agent_id="writer"))

    error(as_writer.get(f"{SARAH}/items/{private['id']}"), 404, "not_found")
    error(as_writer.delete(f"{SARAH}/items/{private['id']}"), 404, "not_found")
    error(as_writer.get(f"{SARAH}/items", params={"agent_id": "coder"}), 404, "not_found")  # not its agent
    error(client.get(f"{SARAH}/items/{private['id']}"), 404, "not_found")  # shared memory only
    assert client.get(f"{SARAH}/items/{private['id']}", params={"agent_id": "coder"}).json() == private
    as_coder = client_for(make_key(agent_id="coder"))
    assert [i["id"] for i in as_coder.get(f"{SARAH}/items").json()["items"]] == [private["id"]]


# ---- bad input ----------------------------------------------------------------------------------


def test_bad_items_are_refused_and_nothing_is_stored(client: TestClient, mem: MemoryManager) -> None:
    add(client, "Builds a churn model")
    before = stored(mem)
    key = "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0" * 2

    error(
        client.post(f"{SARAH}/items", json={"layer": "knowledge", "text": f"my key is {key}"}),
        422,
        "secret_rejected",
    )
    error(client.post(f"{SARAH}/items", json={"layer": "profile", "text": "x"}), 422, "invalid_input")
    error(client.post(f"{SARAH}/items", json={"layer": "goals", "text": "x"}), 422, "invalid_input")
    error(client.post(f"{SARAH}/items", json={"layer": "knowledge", "text": ""}), 422, "invalid_request")
    error(client.post(f"{SARAH}/items", json={"layer": "knowledge", "text": "   "}), 422, "invalid_input")
    error(client.post(f"{SARAH}/items", json={"layer": "knowledge"}), 422, "invalid_request")
    error(
        client.post(f"{SARAH}/items", json={"layer": "knowledge", "text": "x", "colour": 1}),
        422,
        "invalid_request",
    )
    unknown = {"layer": "knowledge", "text": "x", "fields": {"colour": "red"}}
    error(client.post(f"{SARAH}/items", json=unknown), 422, "invalid_input")
    for name in ("text", "user_id", "agent_id", "expires_at"):  # the library's keywords, never fields
        collides = {"layer": "knowledge", "text": "x", "fields": {name: "bob"}}
        error(client.post(f"{SARAH}/items", json=collides), 422, "invalid_input")
    bad_sentiment = {"layer": "feedback", "text": "x", "fields": {"sentiment": "ecstatic"}}
    error(client.post(f"{SARAH}/items", json=bad_sentiment), 422, "invalid_input")
    error(
        client.post(f"{SARAH}/items", json={"layer": "knowledge", "text": "x", "topics": "work"}),
        422,
        "invalid_request",
    )
    error(
        client.post(f"{SARAH}/items", json={"layer": "knowledge", "text": "x", "agent_id": " a"}),
        422,
        "invalid_request",
    )
    error(
        client.post(f"{SARAH}/items", json={"layer": "knowledge", "text": "x", "replaces": MISSING}),
        404,
        "not_found",
    )
    past = {"layer": "knowledge", "text": "x", "expires_at": "2001-01-01T00:00:00Z"}
    error(client.post(f"{SARAH}/items", json=past), 422, "invalid_input")
    error(
        client.post(f"{SARAH}/items", content=b"{not json", headers={"content-type": "application/json"}),
        422,
        "invalid_request",
    )
    error(
        client.post(f"{SARAH}/items", json={"layer": "knowledge", "text": "x" * 1_100_000}),
        413,
        "body_too_large",
    )
    assert stored(mem) == before


def test_bad_updates_are_refused_and_the_item_is_unchanged(client: TestClient, mem: MemoryManager) -> None:
    fact = add(client, "Builds a churn model", topics=["work"])
    before = stored(mem)
    path = f"{SARAH}/items/{fact['id']}"

    error(client.patch(path, json={}), 422, "invalid_input")
    error(client.patch(path, json={"text": ""}), 422, "invalid_request")
    error(client.patch(path, json={"text": "password=hunter2hunter2"}), 422, "secret_rejected")
    error(client.patch(path, json={"fields": {"colour": "red"}}), 422, "invalid_input")
    error(client.patch(path, json={"fields": {"text": "sneaky"}}), 422, "invalid_input")
    error(client.patch(path, json={"fields": {"user_id": "bob"}}), 422, "invalid_input")
    error(client.patch(path, json={"fields": {"topics": "work"}}), 422, "invalid_input")
    error(client.patch(path, json={"text": "x", "extra": 1}), 422, "invalid_request")
    assert stored(mem) == before


def test_bad_query_parameters_are_4xx(client: TestClient) -> None:
    answers = [
        client.get(f"{SARAH}/context", params={"token_budget": -1}),
        client.get(f"{SARAH}/context", params={"token_budget": "many"}),
        client.get(f"{SARAH}/context", params={"query": "q" * 4001}),
        client.get(f"{SARAH}/search"),
        client.get(f"{SARAH}/search", params={"query": ""}),
        client.get(f"{SARAH}/search", params={"query": "x", "limit": 0}),
        client.get(f"{SARAH}/search", params={"query": "x", "limit": 101}),
        client.get(f"{SARAH}/history", params={"limit": 0}),
        client.get(f"{SARAH}/memory", params={"agent_id": "x" * 256}),
    ]
    for answer in answers:
        error(answer, 422, "invalid_request")
    error(client.get(f"{SARAH}/search", params={"query": "x", "layers": "goals"}), 422, "invalid_input")
    error(client.get(f"{SARAH}/items", params={"layer": "goals"}), 422, "invalid_input")
    error(client.get(f"{SARAH}/memory", params={"agent_id": " a"}), 422, "invalid_request")
    error(client.get(f"{SARAH}/context", params={"session_id": "\x00"}), 422, "invalid_request")
    error(client.get("/v1/users/%01/memory"), 422, "invalid_scope")  # the library checks the path's id
    error(client.get(f"{SARAH}/items/%ED%A0%80"), 404, "not_found")  # bytes that are no text: no such item


# ---- snapshot, profile, policies ----------------------------------------------------------------


def test_profile_and_policies_are_patched_and_the_snapshot_is_typed(
    client: TestClient, mem: MemoryManager
) -> None:
    profile = client.patch(f"{SARAH}/profile", json={"name": "Sarah", "languages": ["Python"]})
    policies = client.patch(
        f"{SARAH}/policies", json={"response_style": "concise", "rules": ["never use emojis"]}
    )
    fact = add(client, "Builds a churn model")

    assert profile.status_code == 200, profile.text
    assert profile.json()["fields"]["name"] == "Sarah"
    assert {(c["op"], c["key"]) for c in profile.json()["changes"]} == {("add", "name"), ("add", "languages")}
    assert policies.json()["fields"]["rules"] == ["never use emojis"]
    snap = client.get(f"{SARAH}/memory").json()
    state = mem.get(user_id="sarah")
    assert snap["profile"]["name"] == state.profile.name == "Sarah"
    assert snap["profile"]["languages"] == ["Python"]
    assert snap["policies"]["response_style"] == "concise"
    assert [i["id"] for i in snap["knowledge"]] == [fact["id"]]
    assert snap["feedback"] == []
    assert set(snap["layers"]) == {"profile", "policies", "knowledge", "feedback"}
    assert (snap["user_id"], snap["agent_id"], snap["session_id"]) == ("sarah", None, None)

    removed = client.patch(f"{SARAH}/profile", json={"name": None})
    assert removed.json()["fields"]["name"] is None
    assert [(c["op"], c["old"]) for c in removed.json()["changes"]] == [("delete", "Sarah")]
    assert mem.get(user_id="sarah").profile.name is None


def test_an_agents_profile_patch_is_its_private_memory(client: TestClient, mem: MemoryManager) -> None:
    client.patch(f"{SARAH}/profile", json={"name": "Sarah"})
    client.patch(f"{SARAH}/profile", params={"agent_id": "coder"}, json={"name": "Sar"})

    assert client.get(f"{SARAH}/memory").json()["profile"]["name"] == "Sarah"
    coder = client.get(f"{SARAH}/memory", params={"agent_id": "coder"}).json()
    assert (coder["agent_id"], coder["profile"]["name"]) == ("coder", "Sar")
    assert mem.get(user_id="sarah", agent_id="coder").profile.name == "Sar"


def test_bad_patches_change_nothing(client: TestClient, mem: MemoryManager) -> None:
    client.patch(f"{SARAH}/profile", json={"name": "Sarah"})
    before = stored(mem)

    error(client.patch(f"{SARAH}/profile", json={}), 422, "invalid_request")
    error(client.patch(f"{SARAH}/profile", json=["name"]), 422, "invalid_request")
    error(client.patch(f"{SARAH}/profile", json={"name": "Sara", "colour": "red"}), 422, "invalid_input")
    error(client.patch(f"{SARAH}/profile", json={"name": {"first": "S"}}), 422, "invalid_input")
    error(
        client.patch(f"{SARAH}/profile", json={"name": "api_key=sk-live-0123456789abcdef0123"}),
        422,
        "secret_rejected",
    )
    error(client.patch(f"{SARAH}/policies", json={"tone": None, "nonsense": None}), 422, "invalid_input")
    error(client.patch(f"{SARAH}/policies", json={"rules": "not a list"}), 422, "invalid_input")
    assert stored(mem) == before


# ---- context, search, history -------------------------------------------------------------------


def test_the_context_is_exactly_what_compile_gives(client: TestClient, mem: MemoryManager) -> None:
    client.patch(f"{SARAH}/profile", json={"name": "Sarah", "role": "data scientist"})
    client.patch(f"{SARAH}/policies", json={"rules": ["never use emojis"]})
    for n in range(12):
        add(client, f"Fact number {n} about churn modelling and <xml> & friends", topics=["work"])
    add(client, "Prefers tabs", agent_id="coder")

    whole = client.get(f"{SARAH}/context", params={"dropped": True}).json()
    assert whole["xml"] == mem.compile(user_id="sarah")
    assert whole["token_budget"] is None
    assert "&lt;xml&gt; &amp; friends" in whole["xml"]
    assert [(p["layer"], p["memory"], p["lines"], p["dropped"]) for p in whole["layers"]] == [
        ("policies", "user", 1, 0),
        ("profile", "user", 2, 0),
        ("knowledge", "user", 12, 0),
    ]
    assert sum(p["tokens"] for p in whole["layers"]) >= whole["tokens"] > 0

    params = {"query": "churn 3", "token_budget": 80, "agent_id": "coder", "dropped": True}
    tight = client.get(f"{SARAH}/context", params=params).json()
    assert tight["xml"] == mem.compile(user_id="sarah", agent_id="coder", query="churn 3", token_budget=80)
    assert tight["tokens"] <= 80
    parts = {(p["memory"], p["layer"]): p for p in tight["layers"]}
    assert parts[("user", "knowledge")]["dropped"] > 0
    knowledge = parts[("user", "knowledge")]
    assert knowledge["lines"] + knowledge["dropped"] == 13  # 12 shared facts and coder's private one
    plain = client.get(
        f"{SARAH}/context", params={"query": "churn 3", "token_budget": 80, "agent_id": "coder"}
    )
    assert plain.json()["xml"] == tight["xml"]
    assert {p["dropped"] for p in plain.json()["layers"]} == {None}  # not counted unless asked
    coder = client.get(f"{SARAH}/context", params={"agent_id": "coder"}).json()
    assert "Prefers tabs" in coder["xml"]
    assert coder["xml"] == mem.compile(user_id="sarah", agent_id="coder")
    empty = client.get("/v1/users/nobody/context").json()
    assert (empty["xml"], empty["tokens"], empty["layers"]) == ("", 0, [])


def test_search_ranks_and_filters_by_layer(client: TestClient) -> None:
    fact = add(client, "Builds a churn model in pandas")
    liked = add(client, "Liked the pandas example", layer="feedback")
    add(client, "Lives in Lisbon")

    hits = client.get(f"{SARAH}/search", params={"query": "pandas"}).json()["hits"]
    assert {h["item"]["id"] for h in hits} == {fact["id"], liked["id"]}
    assert all(h["score"] > 0 for h in hits)
    only = client.get(f"{SARAH}/search", params={"query": "pandas", "layers": "feedback"}).json()["hits"]
    assert [h["item"]["id"] for h in only] == [liked["id"]]
    one = client.get(f"{SARAH}/search", params={"query": "pandas", "limit": 1}).json()["hits"]
    assert len(one) == 1


def test_search_filters_by_topics(client: TestClient, mem: MemoryManager) -> None:
    mem.knowledge.add("Deploys services with Kubernetes", user_id="sarah", topics=["work"])
    mem.knowledge.add("Deploys a garden irrigation system", user_id="sarah", topics=["home"])
    hits = client.get(f"{SARAH}/search", params={"query": "deploys", "topics": ["WORK", "infra"]}).json()
    assert [h["item"]["text"] for h in hits["hits"]] == ["Deploys services with Kubernetes"]
    error(client.get(f"{SARAH}/search", params={"query": "deploys", "topics": " "}), 422, "invalid_input")


def test_the_users_history_is_oldest_first_and_limited(client: TestClient, mem: MemoryManager) -> None:
    first = add(client, "Builds a churn model")
    client.patch(f"{SARAH}/items/{first['id']}", json={"text": "Builds a churn model in R"})
    client.delete(f"{SARAH}/items/{first['id']}")

    events = client.get(f"{SARAH}/history").json()["events"]
    assert [e["op"] for e in events] == ["add", "update", "delete"]
    assert [e["id"] for e in events] == [e.id for e in mem.history(user_id="sarah")]
    last = client.get(f"{SARAH}/history", params={"limit": 2}).json()["events"]
    assert [e["op"] for e in last] == ["update", "delete"]


# ---- learning -----------------------------------------------------------------------------------


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel()


@pytest.fixture
def learning(
    make_mem: Callable[..., MemoryManager], model: ScriptedModel
) -> Iterator[tuple[TestClient, MemoryManager]]:
    """A client of an app whose memory extracts with ``model`` (replies queued by each test)."""
    served = make_mem(model=model)
    key = ApiKeys(served).create(admin=True).secret
    with TestClient(create_app(served), headers={"Authorization": f"Bearer {key}"}) as client:
        yield client, served


def test_learn_answers_what_it_changed(
    learning: tuple[TestClient, MemoryManager], model: ScriptedModel
) -> None:
    client, served = learning
    model.add(LEARNED)

    answer = client.post(f"{SARAH}/learn", json={"messages": SAID, "session_id": "chat-1"})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert {layer: [(c["op"], c["key"]) for c in cs] for layer, cs in body["changes"].items() if cs} == {
        "profile": [("add", "name"), ("add", "role")],
        "knowledge": [("add", "builds a churn model at acme")],
    }
    assert body["usage"]["model_calls"] == 1
    assert body["usage"]["extractor"] == "model"
    assert served.get(user_id="sarah").profile.name == "Sarah"
    assert len(model.requests) == 1


def test_a_background_learn_answers_202_and_learns(
    learning: tuple[TestClient, MemoryManager], model: ScriptedModel
) -> None:
    client, served = learning
    model.add(LEARNED)

    answer = client.post(f"{SARAH}/learn", json={"messages": SAID, "background": True})

    assert answer.status_code == 202, answer.text
    assert answer.json() == {"status": "accepted"}
    # The test client returns once the background task is done.
    assert served.get(user_id="sarah").profile.role == "data scientist"


def test_a_failed_learn_is_kept_pending(
    learning: tuple[TestClient, MemoryManager], model: ScriptedModel
) -> None:
    client, served = learning
    model.add(ValueError("401 invalid api key"), ValueError("401 invalid api key"))

    failed = client.post(f"{SARAH}/learn", json={"messages": SAID})
    later = [{"role": "user", "content": "I live in Lisbon."}]
    accepted = client.post(f"{SARAH}/learn", json={"messages": later, "background": True})

    error(failed, 502, "model_error")
    assert failed.json()["error"]["pending_id"]
    assert accepted.status_code == 202
    assert served.get(user_id="sarah").items == []
    model.add(LEARNED, LEARNED)
    report = served.retry_pending(user_id="sarah")
    assert (report.retried, report.still_pending) == (2, 0)
    assert served.get(user_id="sarah").profile.name == "Sarah"


def test_bad_learn_requests_are_refused_before_any_model_call(
    learning: tuple[TestClient, MemoryManager], model: ScriptedModel
) -> None:
    client, served = learning
    bad: list[Any] = [
        {},
        {"messages": []},
        {"messages": "hello"},
        {"messages": [{"role": "user"}]},
        {"messages": [{"role": "wizard", "content": "x"}]},
        {"messages": SAID, "background": "later"},
        {"messages": SAID, "background": 0},
        {"messages": SAID, "surprise": 1},
        {"messages": [{"role": "user", "content": "x"}] * 501},
    ]
    for body in bad:
        error(client.post(f"{SARAH}/learn", json=body), 422, "invalid_request")
    for background in (False, True):
        body = {"messages": SAID, "session_id": " a", "background": background}
        error(client.post(f"{SARAH}/learn", json=body), 422, "invalid_request")
    assert model.requests == []
    assert served.get(user_id="sarah").items == []


# ---- the OpenAPI document and a real server -----------------------------------------------------


def test_the_openapi_document_names_every_memory_route(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    routes = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    for method, path in [
        ("GET", "/memory"), ("GET", "/context"), ("POST", "/learn"), ("GET", "/search"),
        ("PATCH", "/profile"), ("PATCH", "/policies"), ("GET", "/items"), ("POST", "/items"),
        ("GET", "/items/{item_id}"), ("PATCH", "/items/{item_id}"), ("DELETE", "/items/{item_id}"),
        ("GET", "/items/{item_id}/history"), ("GET", "/history"),
    ]:  # fmt: skip
        assert (method, f"/v1/users/{{user_id}}{path}") in routes
    assert {"ItemOut", "ItemIn", "ContextOut", "LearnIn", "LearnOut", "MemorySnapshot"} <= set(
        doc["components"]["schemas"]
    )
    learn = doc["paths"]["/v1/users/{user_id}/learn"]["post"]["responses"]
    assert {"200", "202"} <= set(learn)


def test_a_real_server_adds_lists_and_compiles(serve_process: str, db_url: str) -> None:
    with httpx.Client(base_url=f"{serve_process}/v1/users/sarah", timeout=30) as http:  # open mode: no key
        added = http.post(
            "/items", json={"layer": "knowledge", "text": "Builds a churn model", "topics": ["work"]}
        )
        assert added.status_code == 201, added.text
        listed = http.get("/items").json()["items"]
        context = http.get("/context", params={"query": "churn", "token_budget": 200}).json()

    assert [i["id"] for i in listed] == [added.json()["id"]]
    with MemoryManager(db_url) as mem:
        assert context["xml"] == mem.compile(user_id="sarah", query="churn", token_budget=200)
    assert "Builds a churn model" in context["xml"]


# ---- ids the server refuses, sessions of other agents -------------------------------------------


@pytest.mark.parametrize("bad", ["a\x00b", "a\x01b", " padded ", "x" * 1000])
def test_a_malformed_item_id_is_the_404_of_a_missing_one(client: TestClient, bad: str) -> None:
    """No stored id is malformed, so one (a NUL too, which PostgreSQL refuses with an error) is never a
    query: the same 404 as a missing item on every item route, on both backends."""
    add(client, "Builds a churn model")
    path = f"{SARAH}/items/{quote(bad, safe='')}"
    answers = [
        client.get(path),
        client.patch(path, json={"text": "new"}),
        client.delete(path),
        client.get(f"{path}/history"),
    ]
    for answer in answers:
        assert error(answer, 404, "not_found").startswith("no memory item ")


def test_another_agents_session_is_the_404_of_a_missing_one_on_every_route(
    client: TestClient, client_for: ClientFor, make_key: MakeKey, mem: MemoryManager
) -> None:
    """A key acting as agent ``writer`` names ``coder``'s session: every memory route answers the 404
    the session routes give it (so the session's own memory is never read or written through it); the
    coder's key, and a session not started yet, are served."""
    mem.sessions.add("s1", [{"role": "user", "content": "plans"}], user_id="sarah", agent_id="coder")
    coder = client_for(make_key(agent_id="coder"))
    secret = add(coder, "The launch is on Friday", session_id="s1", session_scoped=True)
    writer = client_for(make_key(agent_id="writer"))
    missing = writer.get(f"{SARAH}/sessions/s1/messages")
    assert error(missing, 404, "not_found") == "no session 's1'"
    before = stored(mem)
    s1 = {"session_id": "s1"}
    attempts = {
        "memory": lambda c: c.get(f"{SARAH}/memory", params=s1),
        "context": lambda c: c.get(f"{SARAH}/context", params=s1),
        "search": lambda c: c.get(f"{SARAH}/search", params={"query": "launch", **s1}),
        "items": lambda c: c.get(f"{SARAH}/items", params=s1),
        "item": lambda c: c.get(f"{SARAH}/items/{secret['id']}", params=s1),
        "item history": lambda c: c.get(f"{SARAH}/items/{secret['id']}/history", params=s1),
        "history": lambda c: c.get(f"{SARAH}/history", params=s1),
        "profile": lambda c: c.patch(f"{SARAH}/profile", params=s1, json={"name": "Sarah"}),
        "add": lambda c: c.post(f"{SARAH}/items", json={"layer": "knowledge", "text": "Likes tea", **s1}),
        "learn": lambda c: c.post(f"{SARAH}/learn", json={"messages": SAID, "background": True, **s1}),
    }
    for name, attempt in attempts.items():
        answer = attempt(writer)
        assert (answer.status_code, answer.json()) == (404, missing.json()), name
    assert stored(mem) == before
    # Controls: the owner reads its session; another agent may start a session of its own.
    assert [i["id"] for i in coder.get(f"{SARAH}/items", params=s1).json()["items"]] == [secret["id"]]
    assert writer.get(f"{SARAH}/memory", params={"session_id": "s2"}).status_code == 200


def test_ids_with_a_slash_are_refused_where_they_enter(client: TestClient, mem: MemoryManager) -> None:
    """An id with "/" could be written but never reached again over URL paths: 422, nothing stored."""
    for body in ({"agent_id": "a/b"}, {"session_id": "s/1"}):
        answer = client.post(f"{SARAH}/items", json={"layer": "knowledge", "text": "Likes tea", **body})
        error(answer, 422, "invalid_request")
        error(client.post(f"{SARAH}/learn", json={"messages": SAID, **body}), 422, "invalid_request")
    error(client.get(f"{SARAH}/memory", params={"session_id": "s/1"}), 422, "invalid_request")
    assert stored(mem) == []


def test_the_api_and_the_inspector_share_one_context_report(client: TestClient, mem: MemoryManager) -> None:
    """``/v1/.../context`` and the inspector's preview are one report (``agentmem.server.context``):
    the same elements, tokens by the memory's own counter, and included/dropped lines that add up."""
    client.patch(f"{SARAH}/profile", json={"name": "Sarah"})
    for n in range(8):
        add(client, f"Fact number {n} about churn modelling", topics=["work"])
    params = {"query": "churn", "token_budget": 40, "dropped": True}
    api = client.get(f"{SARAH}/context", params=params).json()
    report = context_report(
        mem, user_id="sarah", agent_id=None, session_id=None, query="churn", token_budget=40
    )
    assert api["xml"] == report.xml
    assert api["tokens"] == report.tokens == mem.count_tokens(report.xml) <= 40
    assert [(p["layer"], p["tag"], p["tokens"], p["lines"], p["dropped"]) for p in api["layers"]] == [
        (e.layer, e.tag, e.tokens, e.lines, e.dropped) for e in report.elements
    ]
    assert sum(e.lines for e in report.elements) == len(report.included) > 0
    assert sum(e.dropped for e in report.elements) == len(report.dropped) > 0
    assert len(report.lines) == 9  # the profile's field and eight facts
    page = client.get("/inspector/users/sarah/context", params={"query": "churn", "token_budget": "40"})
    assert page.status_code == 200
    assert f'Included <span class="count">{len(report.included)}</span>' in page.text
    assert f'Dropped <span class="count">{len(report.dropped)}</span>' in page.text


def test_the_context_takes_topics_and_the_report_scores_as_the_compile_did(
    client: TestClient, mem: MemoryManager, db_url: str
) -> None:
    add(client, "Builds a churn model", topics=["work"])
    add(client, "Lives in Lisbon", topics=["home"])
    api = client.get(f"{SARAH}/context", params={"topics": "HOME", "dropped": True}).json()
    assert "Lives in Lisbon" in api["xml"]
    assert "churn" not in api["xml"]
    assert [(p["layer"], p["lines"], p["dropped"]) for p in api["layers"]] == [("knowledge", 1, 0)]
    error(client.get(f"{SARAH}/context", params={"topics": " "}), 422, "invalid_input")

    def near_home(texts: list[str]) -> list[list[float]]:  # "live" and "Lisbon" mean the same here
        return [[1.0, 0.0] if ("live" in t.lower() or "lisbon" in t.lower()) else [0.0, 1.0] for t in texts]

    with MemoryManager(db=db_url, embedding_model=near_home) as semantic:
        semantic.reembed(user_id="sarah")
        report = context_report(
            semantic, user_id="sarah", agent_id=None, session_id=None, query="Lives where", token_budget=None
        )
        scores = {line.text.split(": ", 1)[1]: line.score for line in report.lines}
        # Ranked by meaning as the compile ranked them: a fact no word matches scores too.
        assert scores["Lives in Lisbon"] > scores["Builds a churn model"] > 0


def test_the_memory_reads_one_item_and_counts_tokens(client: TestClient, mem: MemoryManager) -> None:
    """``MemoryManager.item`` (what the item routes read) sees only the scope's live items, and a
    malformed id is refused, never a query; ``count_tokens`` is the budget's own counter."""
    private = add(client, "Prefers tabs", agent_id="coder")
    found = mem.item(private["id"], user_id="sarah", agent_id="coder")
    assert found is not None
    assert found.text == "Prefers tabs"
    assert mem.item(private["id"], user_id="sarah") is None  # shared memory only
    assert mem.item(private["id"], user_id="bob", agent_id="coder") is None
    assert mem.item(MISSING, user_id="sarah", agent_id="coder") is None
    with pytest.raises(InvalidInputError):
        mem.item("a\x00b", user_id="sarah")
    assert mem.count_tokens("") == 0 < mem.count_tokens("Prefers tabs")
    budgeted = mem.compile(user_id="sarah", agent_id="coder", token_budget=mem.count_tokens("x"))
    assert mem.count_tokens(budgeted) <= mem.count_tokens("x")
    with pytest.raises(InvalidInputError):
        mem.count_tokens(3)  # type: ignore[arg-type]
