"""agentmem for LangChain agents (``langchain.agents.create_agent``, which runs on LangGraph).

One middleware does the three parts::

    agent = create_agent(model, tools=[...], middleware=[AgentMemMiddleware(memory)],
                         context_schema=MemoryContext)
    agent.invoke({"messages": [...]}, context=MemoryContext(user_id="sarah"))

- **context in**: each model call gets the user's memory, compiled for the latest user message, added
  to its system message;
- **tools**: the memory tools (remember, update, forget, search), bound when called to the run's user;
- **learn after**: when the run ends, ``learn`` on what this run added to the conversation.

The user comes from the run's context (``MemoryContext``, or any context with a ``user_id``),
never from anything a model sends. A middleware rather than a LangGraph ``BaseStore``: a store is a
key-value space the agent's own code reads and writes, so it could hold memory but could neither put it
into the system message, give the model tools, nor learn when a run ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, NotRequired

from langchain.agents.middleware import (
    AgentMiddleware,
    AgentState,
    ModelRequest,
    ModelResponse,
)
from langchain.agents.middleware.types import ExtendedModelResponse, PrivateStateAttr
from langchain.tools import ToolRuntime
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.runtime import Runtime

from ..errors import ConfigurationError
from ..guides import tools_guide
from ..manager import MemoryManager
from ..scope import check_id
from .common import learnable, learning_logged, memory_instructions

__all__ = ["AgentMemMiddleware", "MemoryContext", "MemoryState"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemoryContext:
    """Whose memory a run uses: pass it as ``create_agent(context_schema=MemoryContext)`` and
    ``agent.invoke(..., context=MemoryContext(user_id=...))``. A context schema of your own works too
    if it has a ``user_id`` (and, optionally, ``session_id``) attribute or key."""

    user_id: str
    """The user whose memory is read, offered to the tools and learned into."""
    session_id: str | None = None
    """Also that session's own memory, and where what is learned is recorded as coming from."""


class MemoryState(AgentState[Any]):
    """The agent state the middleware adds: private to it, kept with the thread by a checkpointer."""

    agentmem_generation: NotRequired[Annotated[str | None, PrivateStateAttr]]
    """The user's generation taken when the run began: once the user is deleted, nothing this run
    still does (tool calls, learning) writes for them again."""
    agentmem_learned_through: NotRequired[Annotated[str | None, PrivateStateAttr]]
    """The id of the last message a finished run learned from: the next run learns what follows it."""


@dataclass(frozen=True)
class _Who:
    user_id: str
    session_id: str | None


def _who(context: object) -> _Who:
    """The run's user from its context, or a ConfigurationError saying how to give one."""
    if isinstance(context, Mapping):
        user_id, session_id = context.get("user_id"), context.get("session_id")
    else:
        user_id, session_id = getattr(context, "user_id", None), getattr(context, "session_id", None)
    if not isinstance(user_id, str) or not user_id.strip():
        raise ConfigurationError(
            "AgentMemMiddleware needs the user: create the agent with context_schema=MemoryContext and "
            "invoke it with context=MemoryContext(user_id=...)"
        )
    if session_id is not None and not isinstance(session_id, str):
        raise ConfigurationError(f"session_id in the run's context must be a str, got {session_id!r}")
    return _Who(user_id, session_id)


def _with_instructions(request: ModelRequest[Any], text: str) -> ModelRequest[Any]:
    """The request with ``text`` appended to its system message (content blocks stay blocks)."""
    if not text:
        return request
    system = request.system_message
    if system is None:
        added = SystemMessage(content=text)
    elif isinstance(system.content, str):
        added = SystemMessage(content=f"{system.content}\n\n{text}" if system.content.strip() else text)
    else:
        added = SystemMessage(content=[*system.content, {"type": "text", "text": text}])
    return request.override(system_message=added)


def _latest_user_text(messages: Sequence[BaseMessage]) -> str | None:
    return next((m.text for m in reversed(messages) if isinstance(m, HumanMessage)), None)


def _this_run(messages: Sequence[AnyMessage], learned_through: str | None) -> tuple[int, int]:
    """Where this run's messages start, and where the reply they react to is (-1: none).

    After an earlier finished run on the thread, the run's messages are those after the last one it
    learned from. Otherwise (a first run, no checkpointer, or history cut by another middleware) it is
    the last user turn: the user messages that end the input, and what the agent added after them.
    """
    ids = [m.id for m in messages]
    if learned_through is not None and learned_through in ids:
        start = ids.index(learned_through) + 1
    else:
        last = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
        if last < 0:
            return len(messages), -1
        start = last
        while start > 0 and isinstance(messages[start - 1], HumanMessage):
            start -= 1
    previous = next((i for i in range(start - 1, -1, -1) if isinstance(messages[i], AIMessage)), -1)
    return start, previous


def _learn_input(messages: Sequence[AnyMessage], start: int, previous: int) -> list[dict[str, str]]:
    """This run's user and assistant text, after the reply it reacts to (as context), for ``learn``."""
    turns: list[tuple[str, str]] = []
    if previous >= 0:
        turns.append(("assistant", messages[previous].text))
    for message in messages[start:]:
        if isinstance(message, HumanMessage):
            turns.append(("user", message.text))
        elif isinstance(message, AIMessage):
            turns.append(("assistant", message.text))
    return learnable(turns)


class AgentMemMiddleware(AgentMiddleware[MemoryState, Any, Any]):
    """Long-term memory of each user for a LangChain agent: context in, memory tools, learn after.

    Args:
        memory: the memory to read, offer and learn into.
        agent_id: the agent's own scope: it also reads, and learns into, memory private to this agent
            (see the README's Scopes); ``None``: the user's shared memory only.
        add_context: add the user's memory to the system message of every model call.
        memory_tools: give the model ``memory_remember``, ``memory_update``, ``memory_forget`` and
            ``memory_search``, bound to the run's user.
        learn: when a run ends, learn from what it added to the conversation (errors are logged and the
            input kept for ``memory.retry_pending()``; a run never fails because of it).
        token_budget: the most tokens of memory the system message gets (``None``: no limit).
    """

    state_schema = MemoryState

    def __init__(
        self,
        memory: MemoryManager,
        *,
        agent_id: str | None = None,
        add_context: bool = True,
        memory_tools: bool = True,
        learn: bool = True,
        token_budget: int | None = None,
    ) -> None:
        if not isinstance(memory, MemoryManager):
            raise ConfigurationError(f"memory must be a MemoryManager, got {memory!r}")
        switches = {"add_context": add_context, "memory_tools": memory_tools, "learn": learn}
        for name, value in switches.items():  # checked now, not at the first run
            if value is not True and value is not False:
                raise ConfigurationError(f"{name} must be a bool, got {value!r}")
        if token_budget is not None and (type(token_budget) is not int or token_budget < 0):
            raise ConfigurationError(f"token_budget must be an int >= 0 or None, got {token_budget!r}")
        super().__init__()
        self.memory = memory
        self.agent_id = check_id(agent_id, "agent_id", required=False)
        self.add_context = add_context
        self.memory_tools = memory_tools
        self.learn = learn
        self.token_budget = token_budget
        self.tools: list[BaseTool] = self._tools() if memory_tools else []

    # ---- the run begins: whose memory, and the user's generation --------------------------------

    def before_agent(self, state: MemoryState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        who = _who(runtime.context)
        return {"agentmem_generation": self.memory.generation(user_id=who.user_id)}

    async def abefore_agent(self, state: MemoryState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        who = _who(runtime.context)
        generation = await asyncio.to_thread(self.memory.generation, user_id=who.user_id)
        return {"agentmem_generation": generation}

    # ---- context in ----------------------------------------------------------------------------

    def _instructions(self, request: ModelRequest[Any]) -> str:
        """The memory part of the system message: the user's memory and, with tools, their guide."""
        if not self.add_context:
            return tools_guide() if self.memory_tools else ""
        who = _who(request.runtime.context)
        return memory_instructions(
            self.memory,
            user_id=who.user_id,
            agent_id=self.agent_id,
            session_id=who.session_id,
            query=_latest_user_text(request.messages),
            token_budget=self.token_budget,
            tools=self.memory_tools,
        )

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any]:
        return handler(_with_instructions(request, self._instructions(request)))

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any]:
        # compile reads the database: off the event loop, like everything else here that blocks.
        text = await asyncio.to_thread(self._instructions, request)
        return await handler(_with_instructions(request, text))

    # ---- tools ---------------------------------------------------------------------------------

    def _tools(self) -> list[BaseTool]:
        # create_agent reads the tools once, before any user is known: each call binds to the run's
        # user (see _call).
        return [self._tool(d["function"]) for d in self.memory.tool_definitions()]

    def _tool(self, function: Mapping[str, Any]) -> BaseTool:
        name = function["name"]

        def call(runtime: ToolRuntime[Any, MemoryState], **arguments: Any) -> str:
            return self._call(name, arguments, runtime)

        return StructuredTool(
            name=name,
            description=function["description"],
            args_schema=dict(function["parameters"]),
            func=call,
        )

    def _call(self, name: str, arguments: dict[str, Any], runtime: ToolRuntime[Any, MemoryState]) -> str:
        who = _who(runtime.context)
        state: Mapping[str, Any] = runtime.state if isinstance(runtime.state, Mapping) else {}
        tools = self.memory.tools(
            user_id=who.user_id,
            agent_id=self.agent_id,
            session_id=who.session_id,
            generation=state.get("agentmem_generation"),
        )
        return tools.dispatch(name, arguments)

    # ---- learn after ---------------------------------------------------------------------------

    def after_agent(self, state: MemoryState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        if not self.learn:
            return None
        messages, update = self._finished(state)
        if messages:
            scope = self._learn_scope(runtime, state)
            with learning_logged(log, scope["user_id"]):
                self.memory.learn(messages, **scope)
        return update

    async def aafter_agent(self, state: MemoryState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        if not self.learn:
            return None
        messages, update = self._finished(state)
        if messages:
            scope = self._learn_scope(runtime, state)
            with learning_logged(log, scope["user_id"]):
                await self.memory.alearn(messages, **scope)
        return update

    def _finished(self, state: MemoryState) -> tuple[list[dict[str, str]], dict[str, Any] | None]:
        """What to learn from the run that ends, and the state update that marks it learned."""
        messages = state["messages"]
        if not messages:
            return [], None
        start, previous = _this_run(messages, state.get("agentmem_learned_through"))
        return _learn_input(messages, start, previous), {"agentmem_learned_through": messages[-1].id}

    def _learn_scope(self, runtime: Runtime[Any], state: MemoryState) -> dict[str, Any]:
        who = _who(runtime.context)
        return {
            "user_id": who.user_id,
            "agent_id": self.agent_id,
            "session_id": who.session_id,
            "generation": state.get("agentmem_generation"),
        }
