"""The FastAPI app of ``agentmem serve``: versioned routes under ``/v1``, the inspector at ``/inspector``,
the MCP server at ``/mcp`` (``agentmem.mcp.http``), ``/healthz``, OpenAPI at ``/openapi.json`` and
interactive docs at ``/docs``.

Every answer that is not a success is the JSON error of ``server.errors``; bodies are limited in size
(``server.limits``); keys are checked by the ``server.auth`` dependencies each router declares.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import Route
from swagger_ui_bundle import swagger_ui_path

from .. import __version__
from ..agent import Agent
from ..errors import AgentMemError, ConfigurationError
from ..manager import MemoryManager
from ..mcp.http import PATH as MCP_PATH
from ..mcp.http import McpEndpoint
from . import errors, hosts
from .auth import principal
from .deps import Memory, Settings
from .inspector import public_router as inspector_public
from .inspector import router as inspector_router
from .keys import ApiKeys
from .limits import BodySizeLimit
from .routes import keys, runs, sessions, users
from .routes import memory as memory_routes

DEFAULT_MAX_BODY_BYTES = 1_000_000
log = logging.getLogger("agentmem.server")


def _closing(agents: Mapping[str, Agent], mcp: McpEndpoint) -> Any:
    """The app's lifespan: the MCP session manager runs while the app does; on shutdown, each served
    agent finishes the learning its runs left in its background worker (``Agent.close``), so a stopped
    server loses no turn it already answered."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with mcp.running():
            yield
        for agent_id, agent in agents.items():
            try:
                await asyncio.to_thread(agent.close)
            except Exception:  # one agent failing to close must not keep the others from closing
                log.exception("agent %r did not close cleanly", agent_id)

    return lifespan


def create_app(
    memory: MemoryManager,
    *,
    agents: Mapping[str, Agent] | None = None,
    inspector_writes: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    allowed_hosts: Iterable[str] = (),
) -> FastAPI:
    """The REST server over ``memory``.

    Args:
        memory: the memory served; the server's API keys live in its database.
        agents: the agents ``POST /v1/agents/{agent_id}/runs`` runs, by agent id. The app owns them:
            its shutdown closes each (``Agent.close``), after the learning their runs started.
        inspector_writes: let the web inspector change memory (CSRF-protected); read-only otherwise.
        max_body_bytes: the largest request body accepted (larger: 413).
        allowed_hosts: host names (or addresses) the server answers to in open mode besides the
            loopback names (``localhost``, ``127.0.0.1``, ``::1``); ``agentmem serve`` adds the bound
            host and each ``--allowed-host``. Open mode refuses any other ``Host`` (DNS rebinding) and
            state-changing requests from another site's page (``server.hosts``); once a key exists,
            neither check runs.

    Returns:
        The app; run it with any ASGI server (``agentmem serve`` uses uvicorn).
    """
    if not isinstance(memory, MemoryManager):
        raise ConfigurationError(f"create_app needs a MemoryManager, not {type(memory).__name__}")
    if not isinstance(max_body_bytes, int) or isinstance(max_body_bytes, bool) or max_body_bytes < 1:
        raise ConfigurationError(f"max_body_bytes must be an int >= 1, got {max_body_bytes!r}")
    served = dict(agents or {})
    for agent_id, agent in served.items():
        if not isinstance(agent, Agent) or agent.agent_id != agent_id:
            raise ConfigurationError(
                f"agents must map each agent's agent_id to the Agent; {agent_id!r} does not"
            )
    mcp = McpEndpoint(memory)
    app = FastAPI(
        title="agentmem",
        version=__version__,
        description="Layered long-term memory of users for LLM agents, over HTTP. Keys: "
        "`Authorization: Bearer am_...` or `X-API-Key: am_...`.",
        lifespan=_closing(served, mcp),
        docs_url=None,  # FastAPI's /docs loads Swagger UI from a CDN: served from swagger-ui-bundle below
    )
    app.state.memory = memory
    app.state.agents = served
    app.state.settings = Settings(inspector_writes=inspector_writes, max_body_bytes=max_body_bytes)
    app.state.keys = ApiKeys(memory)
    if isinstance(allowed_hosts, str):  # one name, not its letters
        raise ConfigurationError("allowed_hosts must be a list of host names, not a string")
    app.state.allowed_hosts = hosts.allowed_hosts(allowed_hosts)
    errors.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)

    # Every /v1 and /inspector route needs a valid key (or open mode): a router-level dependency, so a
    # route added later cannot forget it. Routes take the caller again (cached per request) to use it.
    keyed = [Depends(principal)]
    v1 = APIRouter(prefix="/v1", dependencies=keyed)
    v1.include_router(memory_routes.router, tags=["memory"])
    v1.include_router(sessions.router, tags=["sessions"])
    v1.include_router(users.router, tags=["users"])
    v1.include_router(runs.router, tags=["runs"])
    v1.include_router(keys.router, tags=["keys"])
    app.include_router(v1)
    app.include_router(inspector_router, prefix="/inspector", dependencies=keyed, include_in_schema=False)
    # Its sign-in page and stylesheet answer before a key is known (they read no memory).
    app.include_router(inspector_public, prefix="/inspector", include_in_schema=False)
    # The MCP server for the user of the caller's key (agentmem.mcp.http checks the key itself).
    app.router.routes.append(Route(MCP_PATH, mcp, include_in_schema=False))
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["health"], summary="Is the server up?")
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")
    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
    return app


DOCS_ASSETS = "/docs/assets"


def docs(request: Request) -> HTMLResponse:
    """The interactive API docs: Swagger UI, its scripts and styles served by this server (from
    swagger-ui-bundle), so they work without network access."""
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=root + "/openapi.json",
        title="agentmem API",
        swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon-32x32.png",
    )


def healthz(mem: Memory) -> dict[str, Any]:
    """``{"status": "ok", "schema_version": N}`` while the database answers; 503 ``store_unavailable``
    otherwise. No key needed: it tells nothing about anyone's memory."""
    try:
        version = mem.schema_version()
    except AgentMemError as exc:  # StoreError, ClosedError: say no more than that it does not answer
        raise errors.ApiError(503, "store_unavailable", "the database does not answer") from exc
    return {"status": "ok", "schema_version": version}
