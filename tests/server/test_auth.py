"""API keys on requests: open mode, 401s, and what a user-, agent- or admin-bound key reaches.

The probe routes below are written the way the real routes use ``agentmem.server.auth``.
"""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from agentmem import MemoryManager
from agentmem.server.auth import OPEN, Caller, Principal, UserId, agent_for, principal, user_not_found
from agentmem.server.deps import Memory
from agentmem.server.errors import ApiError
from agentmem.server.keys import ApiKeys

from .conftest import ClientFor, MakeKey


@pytest.fixture(autouse=True)
def probe(app: FastAPI) -> None:
    """``GET /v1/probe/users/{user_id}``: the user's profile name, 404 for a user without memory."""
    router = APIRouter(prefix="/v1", dependencies=[Depends(principal)])

    @router.get("/probe/users/{user_id}")
    def read_user(
        user_id: UserId, memory: Memory, who: Caller, agent_id: str | None = None
    ) -> dict[str, object]:
        if user_id not in {u.user_id for u in memory.list_users()}:
            raise user_not_found(user_id)
        acting = agent_for(who, agent_id)
        return {"name": memory.get(user_id=user_id, agent_id=acting).profile.name, "agent": acting}

    app.include_router(router)


@pytest.fixture(autouse=True)
def users(mem: MemoryManager) -> None:
    mem.profile.update(user_id="alice", name="Alice")
    mem.profile.update(user_id="bob", name="Bob")


def test_open_mode_serves_keyless_requests_as_admin(client_for: ClientFor) -> None:
    anonymous = client_for(None)
    assert anonymous.get("/v1/me").json() == {
        "key_id": None,
        "user_id": None,
        "agent_id": None,
        "admin": True,
    }
    assert anonymous.get("/v1/probe/users/bob").json()["name"] == "Bob"


def test_once_a_key_exists_a_keyless_request_is_401(client_for: ClientFor, make_key: MakeKey) -> None:
    make_key(user_id="alice")
    answer = client_for(None).get("/v1/me")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["error"]["code"] == "unauthorized"
    assert client_for(None).get("/v1/probe/users/alice").status_code == 401


@pytest.mark.parametrize("header", ["bearer", "x-api-key"])
def test_a_wrong_key_is_401_in_either_header(client_for: ClientFor, make_key: MakeKey, header: str) -> None:
    real = make_key(admin=True)
    assert client_for(real, header).get("/v1/me").status_code == 200
    for wrong in ("am_" + "x" * 43, "nonsense", real[:-1], real + "x", "", "am_"):
        answer = client_for(wrong, header).get("/v1/me")
        assert answer.status_code == 401, wrong
        assert answer.headers["www-authenticate"] == "Bearer"


def test_a_wrong_key_is_401_even_in_open_mode(client_for: ClientFor) -> None:
    assert client_for("am_" + "x" * 43).get("/v1/me").status_code == 401


def test_other_authorization_schemes_and_two_keys_are_401(app: FastAPI, make_key: MakeKey) -> None:
    key, other = make_key(admin=True), make_key(admin=True)
    with TestClient(app) as client:
        assert client.get("/v1/me", headers={"Authorization": f"Basic {key}"}).status_code == 401
        both = {"Authorization": f"Bearer {key}", "X-API-Key": other}
        assert client.get("/v1/me", headers=both).status_code == 401
        same = {"Authorization": f"Bearer {key}", "X-API-Key": key}
        assert client.get("/v1/me", headers=same).status_code == 200


def test_a_revoked_key_is_401(client_for: ClientFor, mem: MemoryManager) -> None:
    keys = ApiKeys(mem)
    made = keys.create(user_id="alice")
    client = client_for(made.secret)
    assert client.get("/v1/me").json()["key_id"] == made.key.id
    keys.revoke(made.key.id)
    assert client.get("/v1/me").status_code == 401
    assert client_for(None).get("/v1/me").status_code == 401  # no return to open mode


def test_a_user_bound_key_cannot_tell_another_user_from_a_missing_one(
    client_for: ClientFor, make_key: MakeKey
) -> None:
    alice = client_for(make_key(user_id="alice"))
    assert alice.get("/v1/probe/users/alice").json()["name"] == "Alice"
    other, missing = alice.get("/v1/probe/users/bob"), alice.get("/v1/probe/users/nobody")
    assert (other.status_code, missing.status_code) == (404, 404)
    assert other.json() == {"error": {"code": "not_found", "message": "no user 'bob'"}}
    assert missing.json() == {"error": {"code": "not_found", "message": "no user 'nobody'"}}
    # ...and an admin asking for a missing user gets that same answer.
    admin = client_for(make_key(admin=True))
    assert admin.get("/v1/probe/users/bob").json()["name"] == "Bob"
    assert admin.get("/v1/probe/users/nobody").json() == missing.json()


def test_admin_routes_answer_other_keys_as_an_unknown_route(client_for: ClientFor, make_key: MakeKey) -> None:
    for key in (
        make_key(user_id="alice"),
        make_key(agent_id="helper"),
        make_key(user_id="bob", agent_id="x"),
    ):
        client = client_for(key)
        for answer in (client.get("/v1/keys"), client.post("/v1/keys", json={"admin": True})):
            assert answer.status_code == 404
            assert answer.json() == client.get("/v1/no-such-route").json()


def test_an_agent_bound_key_acts_only_as_its_agent(client_for: ClientFor, make_key: MakeKey) -> None:
    helper = client_for(make_key(agent_id="helper"))
    assert helper.get("/v1/probe/users/bob").json() == {"name": "Bob", "agent": "helper"}  # defaulted
    assert helper.get("/v1/probe/users/bob", params={"agent_id": "helper"}).status_code == 200
    other = helper.get("/v1/probe/users/bob", params={"agent_id": "reviewer"})
    assert other.status_code == 404
    assert other.json()["error"] == {"code": "not_found", "message": "no agent 'reviewer'"}


def test_agent_for() -> None:
    bound = Principal(key_id="k", user_id=None, agent_id="helper", admin=False)
    assert agent_for(bound, None) == "helper"
    assert agent_for(bound, "helper") == "helper"
    with pytest.raises(ApiError) as refused:
        agent_for(bound, "other")
    assert refused.value.status == 404
    assert agent_for(OPEN, None) is None
    assert agent_for(OPEN, "other") == "other"
