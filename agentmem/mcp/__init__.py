"""agentmem as an MCP server (the official MCP Python SDK, 2.x): one user's memory as tools, resources
and a prompt for any MCP client.

- over stdio: ``agentmem mcp --user-id U [--agent-id A]``, or :func:`memory_server` with
  :func:`run_stdio`, or in-process with ``mcp.Client(memory_server(...))``;
- over streamable HTTP: ``/mcp`` on ``agentmem serve``, for the user of the caller's API key.

Not imported by ``import agentmem``: the SDK's server loads only when this package is used.
"""

from .server import Identity, memory_server, run_stdio

__all__ = ["Identity", "memory_server", "run_stdio"]
