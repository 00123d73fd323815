"""``/mcp`` on a real ``agentmem serve`` process, through the MCP SDK's streamable HTTP client: the user
is the one the key is bound to, and only a key bound to one user gets in."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import httpx
import httpx2
import mcp_types as types
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from agentmem import MemoryManager

from .conftest import MakeKey

T = TypeVar("T")
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "tests", "version": "1"},
    },
}


async def connected(base: str, key: str, use: Callable[[Client], Awaitable[T]], mode: str = "auto") -> T:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60)
    async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=mode) as client:
        return await use(client)


def over_http(base: str, key: str, use: Callable[[Client], Awaitable[T]], mode: str = "auto") -> T:
    return anyio.run(connected, base, key, use, mode)


def text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


# The SDK serves the handshake era (initialize) and the per-request-envelope era on different paths.
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_a_user_bound_key_reaches_its_user_and_no_other(
    serve_process: str, mem: MemoryManager, make_key: MakeKey, mode: str
) -> None:
    mem.knowledge.add("Bob keeps bees", user_id="bob")
    mem.knowledge.add("Alice grows tomatoes", user_id="alice", topics=["garden"])
    mem.knowledge.add("Alice sells tomatoes", user_id="alice", topics=["work"])
    key = make_key(user_id="alice")

    async def use(client: Client) -> list[Any]:
        listed = await client.list_tools()
        added = await client.call_tool("memory_remember", {"layer": "knowledge", "value": "Likes green tea"})
        search = await client.call_tool("memory_search", {"query": "bees"})
        bad = await client.call_tool("memory_search", {"query": "bees", "user_id": "bob"})
        context = (await client.read_resource("memory://context")).contents[0]
        topical = await client.call_tool("memory_search", {"query": "tomatoes", "topics": ["GARDEN"]})
        return [listed, added, search, bad, context, topical]

    listed, added, search, bad, context, topical = over_http(serve_process, key, use, mode)
    assert [r["text"] for r in json.loads(text(topical))["results"]] == ["Alice grows tomatoes"]
    assert "memory_learn" in {tool.name for tool in listed.tools}
    assert not added.is_error
    item_id = json.loads(text(added))["changes"][0]["id"]
    assert mem.item(item_id, user_id="alice") is not None
    assert json.loads(text(search))["results"] == []
    assert bad.is_error
    assert "takes no argument(s) 'user_id'" in text(bad)
    assert isinstance(context, types.TextResourceContents)
    assert "Likes green tea" in context.text
    assert "bees" not in context.text


def test_concurrent_callers_each_reach_only_their_own_user(
    serve_process: str, mem: MemoryManager, make_key: MakeKey
) -> None:
    users = [f"user{i}" for i in range(4)]
    for user in users:
        mem.knowledge.add(f"The secret word of {user} is {user}-word", user_id=user)
    keys = {user: make_key(user_id=user) for user in users}
    seen: dict[str, list[str]] = {user: [] for user in users}

    async def calls(client: Client, user: str) -> None:
        for _ in range(5):
            result = await client.call_tool("memory_context", {})
            seen[user].append(text(result))

    async def main() -> None:
        # Every caller's requests interleave on the one stateless server.
        async with anyio.create_task_group() as group:
            for user in users:
                group.start_soon(connected, serve_process, keys[user], lambda c, u=user: calls(c, u))

    anyio.run(main)
    for user, contexts in seen.items():
        assert len(contexts) == 5
        for context in contexts:
            assert f"{user}-word" in context
            assert sum(f"{other}-word" in context for other in users) == 1


def test_a_key_bound_to_a_user_and_an_agent_acts_as_that_agent(
    serve_process: str, mem: MemoryManager, make_key: MakeKey
) -> None:
    mem.knowledge.add("Prefers tabs", user_id="alice", agent_id="coder")
    mem.knowledge.add("Prefers window seats", user_id="alice", agent_id="travel")
    key = make_key(user_id="alice", agent_id="coder")
    result = over_http(serve_process, key, lambda c: c.call_tool("memory_context", {}))
    assert "Prefers tabs" in text(result)
    assert "window" not in text(result)


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("admin", 403, "forbidden"),
        ("agent", 403, "forbidden"),
        ("none", 401, "unauthorized"),
        ("unknown", 401, "unauthorized"),
    ],
)
def test_only_a_key_bound_to_one_user_gets_in(
    serve_process: str, make_key: MakeKey, kind: str, status: int, code: str
) -> None:
    headers = {"Accept": "application/json, text/event-stream"}
    if kind == "admin":
        headers["Authorization"] = f"Bearer {make_key(admin=True)}"
    elif kind == "agent":
        headers["X-API-Key"] = make_key(agent_id="coder")
    elif kind == "unknown":
        make_key(user_id="alice")
        headers["Authorization"] = "Bearer am_not_a_key"
    else:
        make_key(user_id="alice")
    answer = httpx.post(f"{serve_process}/mcp", json=INITIALIZE, headers=headers)
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code


def test_open_mode_is_refused_too(serve_process: str) -> None:
    # No key exists, so the REST routes are served as admin; /mcp has no user to act for.
    answer = httpx.post(
        f"{serve_process}/mcp", json=INITIALIZE, headers={"Accept": "application/json, text/event-stream"}
    )
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"
    rebound = httpx.post(f"{serve_process}/mcp", json=INITIALIZE, headers={"Host": "rebind.attacker.example"})
    assert rebound.status_code == 400
    assert rebound.json()["error"]["code"] == "host_not_allowed"


def test_the_app_serves_mcp_each_time_it_starts(app: FastAPI, make_key: MakeKey) -> None:
    key = make_key(user_id="alice")
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream"}
    for _ in range(2):  # a session manager runs once: each lifespan needs its own
        with TestClient(app) as client:
            answer = client.post("/mcp", json=call, headers=headers)
            assert answer.status_code == 200, answer.text
            assert "memory_search" in {tool["name"] for tool in answer.json()["result"]["tools"]}


def test_only_post_is_served_so_no_stream_is_left_open(app: FastAPI, make_key: MakeKey) -> None:
    headers = {"Authorization": f"Bearer {make_key(user_id='alice')}", "Accept": "text/event-stream"}
    with TestClient(app) as client:
        for method in ("GET", "DELETE", "PUT"):
            answer = client.request(method, "/mcp", headers=headers)
            assert answer.status_code == 405, method
            assert answer.json()["error"]["code"] == "method_not_allowed"
