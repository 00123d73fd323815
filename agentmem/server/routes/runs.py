"""Agent runs per request: ``GET /v1/agents`` lists the served agents; ``POST /v1/agents/{agent_id}/runs``
with ``message``, ``user_id``, ``session_id`` and ``stream`` runs one (``Agent.arun``, or ``Agent.astream``
as server-sent events). The agents are those ``create_app`` was given (``agentmem serve --agents
module:attr``).

A run is what the library does: the user's memory is compiled into the system message, the turn is
stored in the session, and it is learned in the agent's own background worker, so the reply never
waits for learning. What may be asked: the key must reach ``user_id`` (another user's is the 404 of a
missing user), an agent-bound key runs only its own agent (another is the 404 of a missing agent), and
``session_id`` must be new or the run agent's own (another agent's is the 404 of a missing session).
Ids with ``/`` are refused (422; see ``server.scoping.ID_PATTERN``).

Streaming (``"stream": true``): once the input is accepted (bad input, another agent's session: the
usual JSON errors, checked before the stream starts), the answer is ``text/event-stream``:

- ``event: start`` ``{"session_id": ...}``;
- ``event: delta`` ``{"text": ...}``, pieces of the reply as the model writes them;
- ``event: done`` with the body the non-streaming run answers (the deltas join to its ``reply``);
- or, when the run fails after ``start`` (the model failed), ``event: error`` with the JSON error
  body (``{"error": {"code": "model_error", ...}}``) and no ``done``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ...agent import Agent, RunEvent, RunFinished, RunResult, RunStarted, TextDelta
from ...errors import AgentMemError
from ...scope import MAX_ID_LENGTH
from ..auth import Caller, agent_for, user_access
from ..deps import Agents
from ..errors import error_body, not_found, status_of
from ..scoping import ID_PATTERN, session_for

router = APIRouter()
log = logging.getLogger("agentmem.server")

AgentId = Annotated[str, Path(description="The served agent's agent_id")]


class AgentInfo(BaseModel):
    """One served agent."""

    agent_id: str
    model: str = Field(description="The model's litellm id, or the class of a model object")


class AgentList(BaseModel):
    agents: list[AgentInfo]


class RunRequest(BaseModel):
    """One message to an agent, for one user."""

    message: str = Field(min_length=1, description="The user's message")
    user_id: str = Field(
        max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, description="The user the agent answers (and remembers)"
    )
    session_id: str | None = Field(
        default=None,
        max_length=MAX_ID_LENGTH,
        pattern=ID_PATTERN,
        description="The session to continue (the agent's own, or a new one); a new one when omitted",
    )
    stream: bool = Field(default=False, description="Answer as server-sent events (text/event-stream)")


class RunUsage(BaseModel):
    model_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None = Field(description="USD, when litellm knows the model's price")


class RunResponse(BaseModel):
    """A finished run; learning from it goes on in the background."""

    reply: str
    session_id: str
    agent_id: str
    user_id: str
    tool_calls: list[str] = Field(description="The tools the model called, in order")
    memory_changes: list[dict[str, Any]] = Field(
        description="What the memory tools changed during the run (background learning not included)"
    )
    usage: RunUsage = Field(description="The reply's model calls and tokens (learning not included)")


def _model_name(agent: Agent) -> str:
    return str(getattr(agent.model, "model", None) or type(agent.model).__name__)


def _served(agents: Agents, who: Caller, agent_id: str) -> Agent:
    """The agent the caller may run, or the 404 of a missing agent."""
    acting = agent_for(who, agent_id)
    agent = agents.get(acting) if acting is not None else None
    if agent is None:
        raise not_found(f"no agent {agent_id!r}")
    return agent


def _response(result: RunResult, agent: Agent, user_id: str) -> RunResponse:
    usage = result.usage
    return RunResponse(
        reply=result.content,
        session_id=result.session_id,
        agent_id=agent.agent_id or "",
        user_id=user_id,
        tool_calls=list(result.tool_calls),
        # A copy now: the background learn appends to the run's list later.
        memory_changes=jsonable_encoder(list(result.memory_changes)),
        usage=RunUsage(
            model_calls=usage.model_calls,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost=usage.cost,
        ),
    )


@router.get("/agents", summary="The served agents")
def list_agents(agents: Agents, who: Caller) -> AgentList:
    """The agents ``POST /v1/agents/{agent_id}/runs`` runs; an agent-bound key sees only its own."""
    return AgentList(
        agents=[
            AgentInfo(agent_id=agent_id, model=_model_name(agent))
            for agent_id, agent in sorted(agents.items())
            if who.agent_id is None or who.agent_id == agent_id
        ]
    )


@router.post(
    "/agents/{agent_id}/runs",
    summary="Run an agent for one user's message",
    response_model=RunResponse,
    responses={
        200: {
            "description": "The run (JSON), or with `stream: true` server-sent events: `start`, "
            "`delta`..., then `done` (this body) or `error` (an error body).",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def create_run(agent_id: AgentId, body: RunRequest, agents: Agents, who: Caller) -> Any:
    """Answer ``message`` as the agent, for ``user_id``, in ``session_id`` (new when omitted)."""
    agent = _served(agents, who, agent_id)
    user_id = user_access(who, body.user_id)
    # Another agent's session is the 404 of a missing one, before the library's own check (a 422 that
    # would name the owner) can say whose it is.
    session_id = body.session_id
    if agent.memory is not None:  # an agent without memory keeps no sessions to check
        session_id = await run_in_threadpool(
            session_for, agent.memory, who, user_id, agent.agent_id, body.session_id
        )
    if not body.stream:
        result = await agent.arun(body.message, user_id=user_id, session_id=session_id)
        return _response(result, agent, user_id)
    events = agent.astream(body.message, user_id=user_id, session_id=session_id)
    # Started here, not in the response: input the agent refuses is a plain JSON error, not a stream.
    first = await anext(events)
    assert isinstance(first, RunStarted)
    return StreamingResponse(
        _sse(first, events, agent, user_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _event(name: str, data: Any) -> str:
    # json.dumps writes one line (newlines inside strings are escaped), as an SSE data field needs.
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _sse(
    started: RunStarted, events: AsyncGenerator[RunEvent, None], agent: Agent, user_id: str
) -> AsyncIterator[str]:
    yield _event("start", {"session_id": started.session_id})
    try:
        async for event in events:
            if isinstance(event, TextDelta):
                yield _event("delta", {"text": event.text})
            elif isinstance(event, RunFinished):
                yield _event("done", _response(event.result, agent, user_id).model_dump(mode="json"))
    except AgentMemError as exc:  # the headers are sent: the failure becomes the stream's last event
        status, code = status_of(exc)
        if status >= 500:
            log.error("%s in a streamed run: %s", type(exc).__name__, exc)
        yield _event("error", error_body(code, str(exc)))
    finally:
        await events.aclose()
