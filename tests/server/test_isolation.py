"""No key reaches another user's data, or acts as another agent, through any ``/v1`` route.

Every route of the app is found in its OpenAPI document and looked up in ``CASES``, a table saying how to
build a request to it; a ``/v1`` route missing from the table fails the test, with the message to add
it. For each route:

1. **Attacks** (each must be refused: 401/403/404/405/422, never 2xx): a key bound to user ``alice``
   sends the request for ``bob`` (bob's path and ids), and for ``alice``'s path holding bob's ids (his
   session id, his item id, his agent); a key bound to agent ``x`` (serving every user) sends the request
   as agent ``y`` on bob's data (``agent_id=y``, ``y``'s session and item ids). After every attack,
   ``export_user("bob")`` is byte-identical to what it was at the start.
2. **Controls** (each must succeed, 2xx): the same request built from the caller's own data: alice's key
   on alice's ids, agent x's key on carol's data as agent x. A control proves the attack's request was
   well formed, so a refused attack means isolation, not a malformed request. A case says when a
   control does not apply (an admin route; a whole-user route an agent key may not use).

Extending the table for a new route: add ``(METHOD, "/v1/path/{with}/{params}"): Case(...)`` to
``CASES``. Path parameters are filled from :class:`Ids` by name (``user_id``, ``agent_id``,
``session_id``, ``item_id``, ``key_id``); ``query`` values and ``body`` are templates or functions of the ids.
See :class:`Case` for the flags.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agentmem import Agent, ExtractionError, MemoryManager
from agentmem.server import create_app
from agentmem.server.keys import ApiKeys
from agentmem.testing import ScriptedModel

from .conftest import ClientFor, MakeKey

REFUSED = {401, 403, 404, 405, 422}
MIN_ATTACKS_PER_ROUTE = 2


@dataclass(frozen=True)
class Ids:
    """One user's data as an agent sees it: what a request's path, query and body are built from."""

    user_id: str
    agent_id: str
    session_id: str
    """A session of the user that ``agent_id`` started."""
    item_id: str
    """A knowledge item of the user private to ``agent_id``."""
    key_id: str = ""
    """An API key bound to the user (for the admin routes of keys)."""
    export: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The user's ``export_user`` document, taken when the user was seeded."""

    def fill(self, template: str) -> str:
        names = {"user_id": self.user_id, "agent_id": self.agent_id}
        names |= {"session_id": self.session_id, "item_id": self.item_id, "key_id": self.key_id}
        return template.format(**{k: quote(v, safe="") for k, v in names.items()})


Body = Callable[[Ids], Any]


@dataclass(frozen=True)
class Case:
    """How to exercise one route, and what it is for.

    Attributes:
        query: query parameters; values are templates filled from the ids (``"{agent_id}"``).
        body: the JSON body as a function of the ids (``None``: no body).
        user_path: the route acts on the user in its path or body (``False``: on no user's data, e.g.
            ``/v1/me``: it is called, its answer is not checked).
        admin: only admin keys may use it: every non-admin call is an attack, and there is no control.
        owner: a key bound to the owning user succeeds with the request (the control runs).
        agent: a key bound to the owning agent alone succeeds with it (``False``: whole-user routes,
            refused to agent keys; the agent attack still runs).
        mixed: for a path with a session or item id, attack the caller's own path holding the other
            user's id (``False`` where the route creates what it is given: appending to a session
            creates the caller's own session of that name).
        prepare: run on the memory before the control (e.g. import: the user must not exist yet).
    """

    query: Mapping[str, str] = field(default_factory=dict)
    body: Body | None = None
    user_path: bool = True
    admin: bool = False
    owner: bool = True
    agent: bool = True
    mixed: bool = True
    prepare: Callable[[MemoryManager, Ids], None] | None = None


MESSAGES = {"messages": [{"role": "user", "content": "Hello again"}]}


def _erase(mem: MemoryManager, ids: Ids) -> None:
    mem.delete_user(ids.user_id)


CASES: dict[tuple[str, str], Case] = {
    # ---- sessions (routes/sessions.py)
    ("GET", "/v1/users/{user_id}/sessions"): Case(query={"agent_id": "{agent_id}"}),
    ("GET", "/v1/users/{user_id}/sessions/{session_id}/messages"): Case(query={"agent_id": "{agent_id}"}),
    ("POST", "/v1/users/{user_id}/sessions/{session_id}/messages"): Case(
        query={"agent_id": "{agent_id}"}, body=lambda ids: MESSAGES, mixed=False
    ),
    ("GET", "/v1/users/{user_id}/sessions/{session_id}/summary"): Case(query={"agent_id": "{agent_id}"}),
    ("POST", "/v1/users/{user_id}/sessions/{session_id}/summary"): Case(query={"agent_id": "{agent_id}"}),
    ("DELETE", "/v1/users/{user_id}/sessions/{session_id}"): Case(query={"agent_id": "{agent_id}"}),
    # ---- users (routes/users.py)
    ("GET", "/v1/users"): Case(admin=True),
    ("GET", "/v1/users/{user_id}/export"): Case(agent=False),
    ("POST", "/v1/users/import"): Case(body=lambda ids: dict(ids.export), agent=False, prepare=_erase),
    ("DELETE", "/v1/users/{user_id}"): Case(agent=False),
    ("GET", "/v1/users/{user_id}/pending"): Case(query={"agent_id": "{agent_id}"}),
    ("POST", "/v1/users/{user_id}/pending/retry"): Case(agent=False),
    # ---- keys (routes/keys.py)
    ("GET", "/v1/me"): Case(user_path=False),
    ("POST", "/v1/keys"): Case(admin=True, body=lambda ids: {"user_id": ids.user_id}),
    ("GET", "/v1/keys"): Case(admin=True),
    ("DELETE", "/v1/keys/{key_id}"): Case(admin=True),
}


# Written from the agreed route table (notes: serve_contract.md) before the memory and runs routes were
# merged: used only once those routes exist. Where a guess at a body or parameter is wrong, the route's
# control fails and says so; fix the case here.
LEARN = [{"role": "user", "content": "I'm a data scientist"}]
AGREED_ELSEWHERE: dict[tuple[str, str], Case] = {
    # ---- memory (routes/memory.py)
    ("GET", "/v1/users/{user_id}/memory"): Case(query={"agent_id": "{agent_id}"}),
    ("GET", "/v1/users/{user_id}/context"): Case(query={"query": "told", "agent_id": "{agent_id}"}),
    ("POST", "/v1/users/{user_id}/learn"): Case(
        body=lambda ids: {"messages": LEARN, "agent_id": ids.agent_id}
    ),
    ("GET", "/v1/users/{user_id}/search"): Case(query={"query": "told", "agent_id": "{agent_id}"}),
    ("PATCH", "/v1/users/{user_id}/profile"): Case(
        query={"agent_id": "{agent_id}"}, body=lambda ids: {"name": "Changed"}
    ),
    ("PATCH", "/v1/users/{user_id}/policies"): Case(
        query={"agent_id": "{agent_id}"}, body=lambda ids: {"tone": "formal"}
    ),
    ("GET", "/v1/users/{user_id}/items"): Case(query={"layer": "knowledge", "agent_id": "{agent_id}"}),
    ("POST", "/v1/users/{user_id}/items"): Case(
        body=lambda ids: {"layer": "knowledge", "text": "A new fact", "agent_id": ids.agent_id}
    ),
    ("GET", "/v1/users/{user_id}/items/{item_id}"): Case(query={"agent_id": "{agent_id}"}),
    ("PATCH", "/v1/users/{user_id}/items/{item_id}"): Case(
        query={"agent_id": "{agent_id}"}, body=lambda ids: {"text": "A changed fact"}
    ),
    ("DELETE", "/v1/users/{user_id}/items/{item_id}"): Case(query={"agent_id": "{agent_id}"}),
    ("GET", "/v1/users/{user_id}/items/{item_id}/history"): Case(query={"agent_id": "{agent_id}"}),
    ("GET", "/v1/users/{user_id}/history"): Case(query={"agent_id": "{agent_id}"}),
    # ---- runs (routes/runs.py): the app here serves agents x and y (see the ``app`` fixture)
    ("GET", "/v1/agents"): Case(user_path=False),
    ("POST", "/v1/agents/{agent_id}/runs"): Case(
        body=lambda ids: {"message": "Hello", "user_id": ids.user_id, "session_id": ids.session_id}
    ),
}
CASES |= {route: case for route, case in AGREED_ELSEWHERE.items() if route not in CASES}


class Fixture:
    """The world the attacks run in: alice and carol (agent x's), bob (agent y's), and their keys."""

    def __init__(
        self, app: FastAPI, mem: MemoryManager, model: Model, client_for: ClientFor, make_key: MakeKey
    ):
        self.app, self.mem, self.model = app, mem, model
        self.client_for, self.make_key = client_for, make_key
        self.bob = self.seed("bob", "y")
        self.bob_export = self.snapshot()
        self.alice = self.seed("alice", "x")
        self.carol = self.seed("carol", "x")
        self.agent_x = client_for(make_key(agent_id="x"))
        self.attacks = 0
        self.controls = 0

    def seed(self, user_id: str, agent_id: str) -> Ids:
        """The user's memory: shared and agent-private items, a session of the agent, a pending learn."""
        mem = self.mem
        mem.delete_user(user_id)
        mem.profile.update(user_id=user_id, name=user_id.title())
        mem.knowledge.add(f"{user_id} shares this", user_id=user_id)
        item_id = mem.knowledge.add(f"{user_id} told {agent_id} this", user_id=user_id, agent_id=agent_id)
        session_id = f"{user_id}-session"
        turn = [{"role": "user", "content": f"I'm {user_id}"}, {"role": "assistant", "content": "Hi"}]
        mem.sessions.add(session_id, turn, user_id=user_id, agent_id=agent_id)
        self.model.failing = True
        with pytest.raises(ExtractionError):
            mem.learn(
                [{"role": "user", "content": f"I'm {user_id} and I live in Oslo"}],
                user_id=user_id,
                agent_id=agent_id,
            )
        self.model.failing = False
        key_id = ApiKeys(mem).create(user_id=user_id).key.id
        return Ids(user_id, agent_id, session_id, item_id, key_id, export=mem.export_user(user_id))

    def snapshot(self) -> str:
        return json.dumps(self.mem.export_user("bob"), sort_keys=True)

    def send(self, client: TestClient, method: str, path: str, case: Case, ids: Ids) -> Any:
        params = {name: ids.fill(value) for name, value in case.query.items()}
        body = case.body(ids) if case.body else None
        return client.request(method, ids.fill(path), params=params, json=body)

    def attack(self, client: TestClient, method: str, path: str, case: Case, ids: Ids, who: str) -> None:
        answer = self.send(client, method, path, case, ids)
        self.attacks += 1
        assert answer.status_code in REFUSED, (
            f"{who}: {method} {path} with {ids} answered {answer.status_code}"
        )
        assert answer.json()["error"]["code"] != "internal_error"
        assert self.snapshot() == self.bob_export, f"{who}: {method} {path} with {ids} changed bob's data"

    def control(self, client: Callable[[], TestClient], method: str, path: str, case: Case, ids: Ids) -> None:
        if case.prepare is not None:
            case.prepare(self.mem, ids)
        answer = self.send(client(), method, path, case, ids)
        self.controls += 1
        assert 200 <= answer.status_code < 300, (
            f"the control of {method} {path} with {ids} answered {answer.status_code}: {answer.text}; "
            "fix its Case in CASES so a permitted caller succeeds"
        )


class Model(ScriptedModel):
    """Fails while ``failing`` (to keep a pending learn), else answers ``{}`` (extraction: nothing new;
    a session summary: that text)."""

    def __init__(self) -> None:
        super().__init__(self.reply)
        self.failing = False

    def reply(self, _messages: list[dict[str, Any]]) -> Any:
        return ValueError("down") if self.failing else "{}"


@pytest.fixture
def model() -> Model:
    return Model()


@pytest.fixture
def mem(db_url: str, model: Model) -> Iterator[MemoryManager]:
    manager = MemoryManager(db=db_url, model=model)
    yield manager
    manager.close()


@pytest.fixture
def app(mem: MemoryManager, model: Model) -> Iterator[FastAPI]:
    """The app serving agents x and y, so the runs routes are attacked (and controlled) for real."""
    agents = {name: Agent(model, memory=mem, agent_id=name) for name in ("x", "y")}
    yield create_app(mem, agents=agents)
    for agent in agents.values():
        agent.close()


HTTP_METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")


def v1_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every ``(METHOD, path)`` under ``/v1`` the app documents. Read from its OpenAPI document: the
    routers FastAPI includes are not flattened into ``app.routes``. (Every /v1 route is documented;
    ``test_fuzz`` checks the document.)"""
    paths = app.openapi()["paths"]
    return [
        (method.upper(), path)
        for path, operations in sorted(paths.items())
        if path.startswith("/v1/")
        for method in operations
        if method in HTTP_METHODS
    ]


def test_the_table_sees_the_routes(app: FastAPI) -> None:
    # The enumeration must find the routes this checkout is known to have, or every test here is vacuous.
    assert {("GET", "/v1/users"), ("DELETE", "/v1/users/{user_id}"), ("GET", "/v1/me")} <= set(v1_routes(app))


def test_every_v1_route_is_in_the_table(app: FastAPI) -> None:
    missing = [route for route in v1_routes(app) if route not in CASES]
    assert not missing, (
        f"add these routes to CASES in tests/server/test_isolation.py (how to call them): {missing}"
    )


def test_no_key_reaches_another_users_data_or_acts_as_another_agent(
    app: FastAPI, mem: MemoryManager, model: Model, client_for: ClientFor, make_key: MakeKey
) -> None:
    world = Fixture(app, mem, model, client_for, make_key)
    routes = v1_routes(app)
    for method, path in routes:
        case = CASES.get((method, path))
        assert case is not None, f"add {method} {path} to CASES in tests/server/test_isolation.py"
        alice_key = make_key(user_id="alice")
        alice = client_for(alice_key)
        bob = world.bob
        if not case.user_path:
            assert alice.request(method, path).status_code < 500
            continue
        before = world.attacks
        # alice's key on bob's data, and on her own path holding bob's ids
        world.attack(alice, method, path, case, bob, "alice's key")
        if case.mixed and ("{session_id}" in path or "{item_id}" in path):
            world.attack(alice, method, path, case, replace(bob, user_id="alice"), "alice's key")
        # agent x's key as agent y, on bob's data: named, and through y's ids alone
        world.attack(world.agent_x, method, path, case, bob, "agent x's key")
        if "{session_id}" in path or "{item_id}" in path:
            world.attack(world.agent_x, method, path, replace(case, query={}), bob, "agent x's key")
        # a key bound to alice and agent x, on bob's data as agent y
        world.attack(
            client_for(make_key(user_id="alice", agent_id="x")), method, path, case, bob, "alice+x key"
        )
        assert world.attacks - before >= MIN_ATTACKS_PER_ROUTE

        if not case.admin:
            if case.owner:
                world.alice = replace(world.alice, export=mem.export_user("alice"))
                world.control(lambda: client_for(make_key(user_id="alice")), method, path, case, world.alice)
            if case.agent:
                world.control(lambda: world.agent_x, method, path, case, world.carol)
            world.alice = world.seed("alice", "x")
            world.carol = world.seed("carol", "x")
    assert world.attacks >= 3 * len(routes)
    assert world.controls >= len(routes)
    assert world.snapshot() == world.bob_export
