"""API keys: created (shown once, only a hash stored), listed, revoked, through the API and the CLI; erased
with their user; kept through an upgrade (tests/test_upgrade.py opens every older schema)."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from agentmem import InvalidInputError, MemoryManager, NotFoundError
from agentmem.cli import main
from agentmem.server.keys import ApiKeys

from .conftest import ClientFor, MakeKey


def stored_rows(db_url: str) -> list[dict[str, object]]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text("SELECT * FROM agentmem_api_keys"))]
    finally:
        engine.dispose()


def test_only_the_hash_of_a_key_is_stored(mem: MemoryManager, db_url: str) -> None:
    made = ApiKeys(mem).create(user_id="alice", label="alice's laptop")
    assert made.secret.startswith("am_")
    assert len(made.secret) == 3 + 43  # 32 random bytes, URL-safe base64
    (row,) = stored_rows(db_url)
    assert row["hash"] == hashlib.sha256(made.secret.encode()).hexdigest()
    assert made.secret not in repr(row)
    assert made.secret[3:20] not in repr(row)
    assert (row["user_id"], row["agent_id"], row["label"]) == ("alice", None, "alice's laptop")


def test_keys_are_random(mem: MemoryManager) -> None:
    keys = ApiKeys(mem)
    secrets = {keys.create(admin=True).secret for _ in range(20)}
    assert len(secrets) == 20


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "reach nothing"),
        ({"admin": True, "user_id": "alice"}, "cannot also be bound"),
        ({"admin": "yes"}, "admin must be a bool"),
        ({"user_id": ""}, "user_id"),
        ({"agent_id": "x" * 300}, "agent_id"),
        ({"admin": True, "label": "x" * 201}, "label"),
        ({"admin": True, "label": "line\nbreak"}, "label"),
    ],
)
def test_a_key_that_makes_no_sense_is_refused(
    mem: MemoryManager, db_url: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        ApiKeys(mem).create(**options)  # type: ignore[arg-type]
    assert stored_rows(db_url) == []
    assert not ApiKeys(mem).required()  # still open: nothing was created


def test_keys_through_the_api(client: TestClient, client_for: ClientFor) -> None:
    created = client.post("/v1/keys", json={"user_id": "alice", "agent_id": "helper", "label": "app"})
    assert created.status_code == 201
    made = created.json()
    assert made["key"].startswith("am_")
    assert (made["user_id"], made["agent_id"], made["admin"], made["revoked_at"]) == (
        "alice",
        "helper",
        False,
        None,
    )
    alice = client_for(made["key"], "x-api-key")
    assert alice.get("/v1/me").json() == {
        "key_id": made["id"],
        "user_id": "alice",
        "agent_id": "helper",
        "admin": False,
    }

    listed = client.get("/v1/keys")
    assert [k["id"] for k in listed.json()["keys"]][-1] == made["id"]
    assert made["key"] not in listed.text
    assert all("key" not in k and "hash" not in k for k in listed.json()["keys"])

    revoked = client.delete(f"/v1/keys/{made['id']}")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert alice.get("/v1/me").status_code == 401
    again = client.delete(f"/v1/keys/{made['id']}")  # revoking twice changes nothing
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    assert {k["id"]: k["revoked_at"] for k in client.get("/v1/keys").json()["keys"]}[made["id"]] is not None


def test_keys_through_the_cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", db_url, "keys", "list"]) == 0
    assert capsys.readouterr().out == "no API keys (the server runs open, on loopback only)\n"

    assert main(["keys", "create", "--db", db_url, "--user", "alice", "--label", "phone"]) == 0
    created = capsys.readouterr()
    note, secret = created.out.splitlines()  # the key last, for KEY=$(agentmem keys create ... | tail -n1)
    assert secret.startswith("am_")
    key_id = note.split()[3]
    assert note == f"created API key {key_id} (user alice); it is shown only this once:"
    assert created.err == ""
    assert main(["keys", "create", "--db", db_url, "--admin", "--agent", "ops"]) == 0
    assert "(admin, as agent ops)" in capsys.readouterr().out

    assert main(["keys", "list", "--db", db_url]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith("API keys (2)\n")
    assert key_id in listing
    assert "phone" in listing
    assert secret not in listing

    with MemoryManager(db=db_url) as mem:
        assert ApiKeys(mem).find(secret) is not None
    assert main(["keys", "revoke", key_id, "--db", db_url]) == 0
    assert capsys.readouterr().out == f"revoked API key {key_id}\n"
    with MemoryManager(db=db_url) as mem:
        assert ApiKeys(mem).find(secret) is None

    assert main(["keys", "revoke", "k_nope", "--db", db_url]) == 1
    assert capsys.readouterr().err == "error: no API key 'k_nope'\n"
    assert main(["keys", "create", "--db", db_url]) == 1
    assert "reach nothing" in capsys.readouterr().err


def test_delete_user_erases_the_users_keys(
    mem: MemoryManager, db_url: str, client_for: ClientFor, make_key: MakeKey
) -> None:
    mem.knowledge.add("Lives in York", user_id="alice")
    alice, bob, admin = make_key(user_id="alice"), make_key(user_id="bob"), make_key(admin=True)
    alice_helper = make_key(user_id="alice", agent_id="helper")
    mem.delete_user("alice")
    assert sorted(str(row["user_id"]) for row in stored_rows(db_url)) == ["None", "bob"]
    assert "alice" not in repr(stored_rows(db_url))
    for gone in (alice, alice_helper):
        assert client_for(gone).get("/v1/me").status_code == 401
    for kept in (bob, admin):
        assert client_for(kept).get("/v1/me").status_code == 200


def test_erasing_every_key_does_not_open_the_server(
    mem: MemoryManager, client_for: ClientFor, make_key: MakeKey
) -> None:
    make_key(user_id="alice")
    mem.delete_user("alice")
    assert ApiKeys(mem).list() == []
    assert ApiKeys(mem).required()
    assert client_for(None).get("/v1/me").status_code == 401


def test_revoking_an_unknown_key_is_not_found(mem: MemoryManager) -> None:
    with pytest.raises(NotFoundError):
        ApiKeys(mem).revoke("k_missing")


@pytest.mark.parametrize("bad", ["k\x00x", "k\x7fx", " k ", "k" * 1000])
def test_a_malformed_key_id_is_the_404_of_an_unknown_one(client: TestClient, bad: str) -> None:
    """Never a query (PostgreSQL refuses a NUL with an error): the 404 of an unknown key."""
    answer = client.delete(f"/v1/keys/{quote(bad, safe='')}")
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["code"] == "not_found"


def test_a_key_bound_to_an_id_with_a_slash_is_refused(client: TestClient, mem: MemoryManager) -> None:
    before = ApiKeys(mem).list()
    for body in ({"user_id": "a/b"}, {"agent_id": "a/b", "admin": True}):
        answer = client.post("/v1/keys", json=body)
        assert (answer.status_code, answer.json()["error"]["code"]) == (422, "invalid_request")
    assert ApiKeys(mem).list() == before
