"""Every inspector route, enumerated from the app (a new page is covered without editing this file),
tried by a key bound to user A and by a key bound to user A and agent x against what they must not
reach: user B's pages and ids, and agent y's memory, sessions and pending learns of A. Each attempt is
counted; none may succeed. An attempt succeeds when an answer that must be the 404 of a missing thing
is anything else, or when any answer under 400 shows something of B (or, to the agent's key, of y).
Both backends, through the app as a browser or client reaches it.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.requests import Request

from agentmem import MemoryManager
from agentmem.errors import ExtractionError
from agentmem.server import create_app
from agentmem.server.auth import INSPECTOR_PATH, Principal
from agentmem.server.inspector import csrf
from agentmem.server.inspector import router as inspector_router
from agentmem.server.keys import ApiKeys
from agentmem.testing import ScriptedModel

A, B = "alice", "bob"
X, Y = "agent-x-planner", "agent-y-coach"


@dataclass
class World:
    """What was stored, and what each key must never see."""

    a_x_item: str
    a_y_item: str
    b_item: str
    b_secrets: list[str] = field(default_factory=list)
    y_secrets: list[str] = field(default_factory=list)


def _fail_learn(db_url: str, text: str, user_id: str, agent_id: str | None) -> None:
    """A learn whose model fails for good: kept as a pending learn of that user and agent."""
    with (
        MemoryManager(db=db_url, model=ScriptedModel([ValueError("down")]), max_retries=0) as bad,
        pytest.raises(ExtractionError),
    ):
        bad.learn([{"role": "user", "content": text}], user_id=user_id, agent_id=agent_id)


@pytest.fixture
def world(db_url: str, mem: MemoryManager) -> World:
    with MemoryManager(db=db_url) as m:
        m.knowledge.add("Alice shares this with every agent", user_id=A)
        a_x = m.knowledge.add("Planner private note of Alice", user_id=A, agent_id=X)
        a_y = m.knowledge.add("Coach-only marathon secret", user_id=A, agent_id=Y)
        m.sessions.add("sess-x", [{"role": "user", "content": "planner chat"}], user_id=A, agent_id=X)
        m.sessions.add("sess-y", [{"role": "user", "content": "coach chat whisper"}], user_id=A, agent_id=Y)
        m.knowledge.add("Coach session-scoped hush", user_id=A, agent_id=Y, session_id="sess-y")
        b = m.knowledge.add("Bob confidential plan", user_id=B)
        m.sessions.add("sess-b", [{"role": "user", "content": "bob chat murmur"}], user_id=B)
    _fail_learn(db_url, "planner pending note", A, X)
    _fail_learn(db_url, "coach pending murmur", A, Y)
    _fail_learn(db_url, "bob pending rumor", B, None)
    return World(
        a_x_item=a_x,
        a_y_item=a_y,
        b_item=b,
        b_secrets=["Bob confidential plan", "bob chat murmur", "bob pending rumor", b, "sess-b"],
        y_secrets=[
            "Coach-only marathon secret",
            "coach chat whisper",
            "Coach session-scoped hush",
            "coach pending murmur",
            a_y,
            "sess-y",
            Y,
        ],
    )


@pytest.fixture
def writable(mem: MemoryManager) -> FastAPI:
    """Inspector writes on: a refused retry is refused for isolation, not for read-only mode."""
    return create_app(mem, inspector_writes=True)


@pytest.fixture
def clients(writable: FastAPI) -> Iterator[list[TestClient]]:
    made: list[TestClient] = []
    yield made
    for one in made:
        one.close()


def keyed_routes() -> list[tuple[str, str, set[str]]]:
    """Every (method, path, parameter names) of the keyed inspector router, as the app mounts it at
    /inspector (its public sign-in router is the only other one there)."""
    return [
        (method, INSPECTOR_PATH + route.path, set(inspect.signature(route.endpoint).parameters))
        for route in inspector_router.routes
        if isinstance(route, APIRoute)
        for method in sorted(route.methods)
    ]


def csrf_token(app: FastAPI, mem: MemoryManager, key: str) -> str:
    """The token the inspector would put in this key's forms (sent in a header, not a cookie)."""
    found = ApiKeys(mem).find(key)
    assert found is not None
    who = Principal(key_id=found.id, user_id=found.user_id, agent_id=found.agent_id, admin=found.admin)
    return csrf.token(Request({"type": "http", "headers": [], "app": app}), who)


@dataclass
class Tally:
    attempts: int = 0
    successes: list[str] = field(default_factory=list)

    def check(self, answer_status: int, body: str, what: str, *, refused: bool, forbidden: list[str]) -> None:
        self.attempts += 1
        if refused and answer_status != 404:
            self.successes.append(f"{what}: {answer_status} instead of 404")
        elif answer_status < 400:
            shown = [marker for marker in forbidden if marker in body]
            if shown:
                self.successes.append(f"{what}: shows {shown}")


@dataclass
class Attempt:
    """One key's tries, each counted in ``tally``."""

    tally: Tally
    client: TestClient
    token: str
    forbidden: list[str]
    who: str

    def __call__(self, method: str, path: str, params: dict[str, str], *, refused: bool) -> None:
        if method == "POST":
            answer = self.client.post(path, params=params, data={"csrf": self.token})
        else:
            answer = self.client.get(path, params=params)
        # What the request itself names may be echoed back (a form keeps its values): not a leak.
        unasked = [m for m in self.forbidden if m not in path and m not in params.values()]
        what = f"{self.who} {method} {path} {params}"
        self.tally.check(answer.status_code, answer.text, what, refused=refused, forbidden=unasked)


def test_no_inspector_route_reaches_another_user_or_agent(
    writable: FastAPI, mem: MemoryManager, world: World, clients: list[TestClient]
) -> None:
    keys = ApiKeys(mem)
    user_key = keys.create(user_id=A, label="A").secret
    agent_key = keys.create(user_id=A, agent_id=X, label="A/x").secret
    routes = keyed_routes()
    assert {path for _, path, _ in routes} >= {
        f"{INSPECTOR_PATH}/users/{{user_id}}/pending/retry",
        f"{INSPECTOR_PATH}/users/{{user_id}}/context",
    }
    b_export = mem.export_user(B)
    tally = Tally()
    for key, bound_to_agent in ((user_key, False), (agent_key, True)):
        client = TestClient(writable, headers={"X-API-Key": key}, follow_redirects=False)
        clients.append(client)
        token = csrf_token(writable, mem, key)
        forbidden = world.b_secrets + (world.y_secrets if bound_to_agent else [])
        # The ids each key tries in place of its own: B's always, y's too for the agent's key.
        foreign = {"item_id": [world.b_item], "session_id": ["sess-b"]}
        if bound_to_agent:
            foreign["item_id"].append(world.a_y_item)
            foreign["session_id"].append("sess-y")
        own = {"item_id": world.a_x_item, "session_id": "sess-x"}

        attempt = Attempt(tally, client, token, forbidden, "A/x" if bound_to_agent else "A")

        for method, template, takes in routes:
            names = [n for n in ("user_id", "item_id", "session_id") if "{" + n + "}" in template]
            leftover = template
            for name in names:
                leftover = leftover.replace("{" + name + "}", "")
            assert "{" not in leftover, f"fill the new path parameter of {template} in this test"
            # B's user with B's ids: the 404 of a missing user.
            if "user_id" in names:
                path = template.format(user_id=B, item_id=world.b_item, session_id="sess-b")
                attempt(method, path, {}, refused=True)
            # Own user, another's ids: the 404 of a missing item or session.
            ids = [n for n in names if n != "user_id"]
            for combo in itertools.product(*(foreign[n] for n in ids)):
                if ids:
                    path = template.format(user_id=A, **dict(zip(ids, combo, strict=True)))
                    attempt(method, path, {}, refused=True)
            own_path = template.format(user_id=A, **own)
            if method == "POST":
                # The retry runs every agent's learns: refused to a key bound to an agent.
                if bound_to_agent:
                    attempt(method, own_path, {}, refused=True)
                continue
            # Own pages, naming another agent or another's session in the query.
            attempt(method, own_path, {}, refused=False)
            # Where a page takes session_id in its query, y's session must be the 404 of a missing
            # one; B's session is, to user A, a session A does not have (a new one, empty).
            query_session = "session_id" in takes and "session_id" not in names
            for session in foreign["session_id"]:
                refused = query_session and session == "sess-y"
                attempt(method, own_path, {"session_id": session}, refused=refused)
            attempt(method, own_path, {"agent_id": Y}, refused=bound_to_agent and "agent_id" in takes)
    assert tally.attempts >= 2 * len(routes) * 3
    assert tally.successes == []
    assert mem.export_user(B) == b_export
    assert {p.agent_id for p in mem.pending(user_id=A)} == {X, Y}  # nothing retried


def test_another_agents_session_in_the_context_preview_is_a_missing_one(
    writable: FastAPI, mem: MemoryManager, world: World, clients: list[TestClient]
) -> None:
    key = ApiKeys(mem).create(user_id=A, agent_id=X).secret
    client = TestClient(writable, headers={"X-API-Key": key})
    clients.append(client)
    context = f"{INSPECTOR_PATH}/users/{A}/context"
    refused = client.get(context, params={"session_id": "sess-y"})
    missing_user = client.get(f"{INSPECTOR_PATH}/users/{A}/sessions/sess-missing")
    assert refused.status_code == missing_user.status_code == 404
    assert refused.json()["error"]["message"] == "no session 'sess-y'"
    page = client.get(context, params={"session_id": "sess-x"}).text
    assert 'value="sess-x"' in page
    assert "sess-y" not in page
    assert client.get(context, params={"session_id": "sess-new"}).status_code == 200


def test_an_agent_bound_key_sees_only_its_agents_pending_learns_and_no_retry(
    writable: FastAPI, mem: MemoryManager, world: World, clients: list[TestClient]
) -> None:
    keys = ApiKeys(mem)
    as_agent = TestClient(writable, headers={"X-API-Key": keys.create(user_id=A, agent_id=X).secret})
    as_user = TestClient(writable, headers={"X-API-Key": keys.create(user_id=A).secret})
    clients.extend([as_agent, as_user])
    pending = f"{INSPECTOR_PATH}/users/{A}/pending"
    mine = as_agent.get(pending).text
    assert "planner pending note" in mine
    assert "coach pending murmur" not in mine
    assert 'id="retry"' not in mine
    assert "not bound to one agent" in mine
    everyone = as_user.get(pending).text
    assert "planner pending note" in everyone
    assert "coach pending murmur" in everyone
    assert 'id="retry"' in everyone
    # A key bound to an agent alone (an agent's backend) is refused the retry the same way.
    backend_key = keys.create(agent_id=X).secret
    backend = TestClient(writable, headers={"X-API-Key": backend_key})
    clients.append(backend)
    answer = backend.post(f"{pending}/retry", data={"csrf": csrf_token(writable, mem, backend_key)})
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "not_found")
    assert len(mem.pending(user_id=A)) == 2


def test_ids_with_slashes_stay_one_path_segment(
    writable: FastAPI, mem: MemoryManager, clients: list[TestClient]
) -> None:
    odd = "team/../x y"
    mem.knowledge.add("Odd user's fact", user_id=odd)
    mem.sessions.add("s/../1", [{"role": "user", "content": "hello"}], user_id=A)
    client = TestClient(writable, headers={"X-API-Key": ApiKeys(mem).create(admin=True).secret})
    clients.append(client)
    home = client.get(f"{INSPECTOR_PATH}/").text
    assert 'href="/inspector/users/team%2F..%2Fx%20y"' in home
    sessions = client.get(f"{INSPECTOR_PATH}/users/{A}/sessions")
    assert sessions.status_code == 200
    assert f'href="/inspector/users/{A}/sessions/s%2F..%2F1"' in sessions.text
