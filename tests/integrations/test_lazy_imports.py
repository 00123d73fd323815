"""The integrations cost nothing until used: ``import agentmem`` loads no framework and no MCP server."""

from __future__ import annotations

import subprocess
import sys

FRAMEWORKS = ("pydantic_ai", "agents", "langchain", "langchain_core", "langgraph")


def test_import_agentmem_loads_no_framework_and_no_mcp_server() -> None:
    code = f"""
import sys
import agentmem
import agentmem.integrations
mem = agentmem.MemoryManager(db="sqlite://")
mem.compile(user_id="u", query="anything")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {FRAMEWORKS!r})
loaded += sorted(m for m in sys.modules if m == "mcp.server" or m.startswith("mcp.server."))
print(loaded)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
