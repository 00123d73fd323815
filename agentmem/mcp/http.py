"""The MCP server over streamable HTTP at ``/mcp`` on ``agentmem serve``, for the user of the caller's key.

One stateless server instance answers every request (JSON responses, no MCP session to keep): the
mount authenticates each request with the REST server's own key rules (``server.auth.caller_of``) and
leaves the caller's identity in the request's ASGI scope; the server's middleware binds it for the
handlers (``agentmem.mcp.server.bind_identity``). So the user is the key's, never a tool argument:

- a key bound to a user reaches that user's memory (as the key's agent, when it names one);
- a key not bound to one user (admin, or an agent's backend serving every user) is refused with 403:
  an MCP client has no way to say which user it acts for, and a tool argument must never say it;
- no key, an unknown or revoked key, and open mode (no key exists yet) are 401.

Errors before the MCP server is reached are the REST server's JSON errors (``server.errors``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from ..manager import MemoryManager
from ..server.auth import OPEN, caller_of, unauthorized
from ..server.errors import ApiError
from .server import IDENTITY_KEY, Identity, bind_identity, build_server, current_identity

PATH = "/mcp"


class McpEndpoint:
    """The ASGI app at ``/mcp``: authenticates the request, then hands it to the MCP session manager.

    ``running()`` must be entered for the app's lifetime (``create_app``'s lifespan does).
    """

    def __init__(self, memory: MemoryManager) -> None:
        self.server = build_server(memory, current_identity)
        self.server.middleware.append(bind_identity)
        self._manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Serve ``/mcp`` while this is entered. A session manager runs only once, so each lifespan
        (an app started again, as tests do) gets its own."""
        manager = StreamableHTTPSessionManager(app=self.server, json_response=True, stateless=True)
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        manager = self._manager
        if manager is None:
            raise RuntimeError("/mcp is served only while the app's lifespan runs (McpEndpoint.running)")
        if scope["method"] != "POST":
            # Stateless: nothing is ever sent on a GET stream, which would stay open (and outlive a
            # revoked key); sessions are never made, so there is nothing to DELETE either.
            raise ApiError(405, "method_not_allowed", "/mcp takes POST (stateless streamable HTTP)")
        who = await anyio.to_thread.run_sync(caller_of, Request(scope, receive))
        if who is OPEN:
            raise unauthorized("/mcp needs an API key bound to a user: 'Authorization: Bearer <key>'")
        if who.user_id is None:
            raise ApiError(
                403,
                "forbidden",
                "/mcp serves one user's memory: use a key bound to a user "
                "(agentmem keys create --user U); admin and agent-wide keys cannot use it",
            )
        scope[IDENTITY_KEY] = Identity(who.user_id, who.agent_id)
        await manager.handle_request(scope, receive, send)
