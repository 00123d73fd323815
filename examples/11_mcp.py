"""11 - MCP: one user's memory as an MCP server, for any MCP client (a desktop assistant, an IDE).

The server acts for the user it was started for: ``agentmem mcp --user-id sarah`` over stdio, or ``/mcp``
on ``agentmem serve`` for the user of the caller's API key. Here it runs in-process and the MCP SDK's own
client calls it, as a desktop client would over stdio: it learns from a conversation, remembers and
finds a fact, reads the compiled memory and the prompt that tells an assistant how to use it. A tool
call cannot name another user: an argument it does not take is an error, not silently dropped.

Run: python examples/11_mcp.py   (no API key, no network)
"""

from __future__ import annotations

import json

import anyio
import mcp_types as types
from _support import OFFLINE, memory_model, show, temp_db
from mcp import Client

from agentmem import MemoryManager
from agentmem.mcp import memory_server


def result_text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def as_sarahs_assistant(mem: MemoryManager) -> None:
    async with Client(memory_server(mem, user_id="sarah")) as client:
        tools = await client.list_tools()
        print("Tools:")
        for tool in tools.tools:
            hints = tool.annotations
            kind = "reads" if hints and hints.read_only_hint else "changes"
            print(f"  {tool.name:<16} {kind}")

        learned = await client.call_tool(
            "memory_learn",
            {
                "messages": [
                    {"role": "user", "content": "Hi! I'm Sarah, a data scientist. I use pandas every day."},
                    {"role": "assistant", "content": "Nice to meet you, Sarah."},
                    {"role": "user", "content": "Please keep answers concise."},
                ]
            },
        )
        print(f"\nmemory_learn -> {result_text(learned)}")

        remembered = await client.call_tool(
            "memory_remember", {"layer": "knowledge", "value": "Is building a churn model at Acme"}
        )
        print(f"memory_remember -> {result_text(remembered)}")
        found = json.loads(result_text(await client.call_tool("memory_search", {"query": "churn model"})))
        print(f"memory_search 'churn model' -> {[hit['text'] for hit in found['results']]}")
        assert [hit["text"] for hit in found["results"]] == ["Is building a churn model at Acme"]

        # Identity is never an argument: naming another user is refused, and the model is told why.
        refused = await client.call_tool("memory_search", {"query": "churn", "user_id": "marco"})
        assert refused.is_error
        print(f"memory_search with user_id -> error: {json.loads(result_text(refused))['error']}")

        context = result_text(await client.call_tool("memory_context", {"query": "which library for data"}))
        show("memory_context (the compiled memory)", context)
        assert "churn model" in context
        if OFFLINE:  # the offline extractor took Sarah's explicit statements
            assert "Sarah" in context
            assert "concise" in context

        profile = (await client.read_resource("memory://profile")).contents[0]
        assert isinstance(profile, types.TextResourceContents)
        print(f"\nmemory://profile -> {profile.text}")

        prompt = await client.get_prompt("use_memory")
        message = prompt.messages[0].content
        assert isinstance(message, types.TextContent)
        show("use_memory (the prompt a client can add to its conversation)", message.text)


async def as_marcos_assistant(mem: MemoryManager) -> None:
    async with Client(memory_server(mem, user_id="marco")) as client:
        found = json.loads(result_text(await client.call_tool("memory_search", {"query": "churn model"})))
        context = result_text(await client.call_tool("memory_context", {}))
    print(f"\nA server for marco finds {found['results']} and reads: {context}")
    assert found["results"] == []


def main() -> None:
    with MemoryManager(db=temp_db(), **memory_model()) as mem:
        anyio.run(as_sarahs_assistant, mem)
        anyio.run(as_marcos_assistant, mem)
    print("\nOver stdio, for a desktop client: agentmem mcp --user-id sarah --db sqlite:///memory.db")


if __name__ == "__main__":
    main()
