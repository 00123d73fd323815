"""pydantic-ai: the user's memory as a capability of an agent.

``MemoryCapability`` gives a pydantic-ai agent, per run and for the run's user: the memory compiled for
the user's prompt as instructions, the memory tools as a toolset bound to that user, and learning from
the finished run. One agent serves many users at once: the user is resolved from each run's
``RunContext`` (e.g. ``user_id=lambda ctx: ctx.deps.user_id``) into a per-run copy, never from
anything the model sends.

Needs the ``pydantic-ai`` extra (``pip install 'agentmem-layers[pydantic-ai]'``).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, TypeAlias

from pydantic_ai import RunContext
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.messages import (
    InstructionPart,
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextContent,
    TextPart,
    UserPromptPart,
)
from pydantic_ai.run import AgentRunResult
from pydantic_ai.tools import AgentDepsT, ToolDefinition
from pydantic_ai.toolsets import AbstractToolset, ToolsetTool
from pydantic_core import SchemaValidator, core_schema

from ..errors import ConfigurationError
from ..manager import MemoryManager
from ..tools import MemoryTools
from .common import BackgroundLearner, LearningInBackground, learnable, memory_instructions

__all__ = ["MemoryCapability", "MemoryToolset", "openai_messages"]

log = logging.getLogger("agentmem.integrations.pydantic_ai")

Resolved: TypeAlias = "str | Callable[[RunContext[Any]], str]"
"""An id given as is, or read from the run (``lambda ctx: ctx.deps.user_id``)."""

_InstructionFunc: TypeAlias = Callable[[RunContext[AgentDepsT]], Awaitable[InstructionPart | None]]

# The tools check their own arguments and send errors back as the result, so any JSON object passes.
_ANY_OBJECT = SchemaValidator(core_schema.dict_schema(core_schema.str_schema(), core_schema.any_schema()))


class MemoryToolset(AbstractToolset[AgentDepsT]):
    """The memory tools (remember, update, forget, search) of one user, as a pydantic-ai toolset.

    Bound to the :class:`~agentmem.tools.MemoryTools` it is given, so no argument the model sends can
    reach another user's memory. Calls run one at a time, in a worker thread (the store is
    synchronous).
    """

    def __init__(self, tools: MemoryTools, *, id: str | None = None) -> None:
        self._tools = tools
        self._id = id

    @property
    def id(self) -> str | None:
        return self._id

    async def get_tools(self, ctx: RunContext[AgentDepsT]) -> dict[str, ToolsetTool[AgentDepsT]]:
        tools: dict[str, ToolsetTool[AgentDepsT]] = {}
        for definition in self._tools.definitions:
            function = definition["function"]
            tool_def = ToolDefinition(
                name=function["name"],
                description=function["description"],
                parameters_json_schema=function["parameters"],
                sequential=True,  # writes to one user's memory: in the order the model asked
            )
            tools[tool_def.name] = ToolsetTool(
                toolset=self, tool_def=tool_def, max_retries=1, args_validator=_ANY_OBJECT
            )
        return tools

    async def call_tool(
        self,
        name: str,
        tool_args: dict[str, Any],
        ctx: RunContext[AgentDepsT],
        tool: ToolsetTool[AgentDepsT],
    ) -> str:
        return await asyncio.to_thread(self._tools.dispatch, name, tool_args)


@dataclass
class MemoryCapability(LearningInBackground, AbstractCapability[AgentDepsT]):
    """A pydantic-ai capability that gives an agent the run's user's memory.

    For each run: the user's memory, compiled for the run's prompt, goes into the instructions
    (with the memory guide, and when to call the tools); the memory tools are offered, bound to the
    run's user; and after the run, what the user said is learned (``memory.alearn``). Once the model
    has answered, memory never fails the run: a failed learn is logged (and, when the extraction
    model failed, kept for ``memory.retry_pending``). A store that fails before the model is asked
    fails the run, as it would fail :class:`~agentmem.Agent`.

    Args:
        memory: the :class:`~agentmem.MemoryManager` to read and write.
        user_id: whose memory: an id, or a function of the run's ``RunContext`` returning it (one
            agent, many users: ``lambda ctx: ctx.deps.user_id``).
        agent_id: the agent's own id, if its memory is kept apart from the user's shared memory.
        session_id: an id, a function of the ``RunContext`` (``lambda ctx: ctx.conversation_id``),
            or ``None``: the session's own memory is read and written too.
        token_budget: the memory in the instructions never exceeds this many tokens.
        tools: offer the memory tools (``memory_remember``, ``memory_update``, ``memory_forget``,
            ``memory_search``).
        learn: learn from each finished run (as the run ends: the result waits for it).
        learn_in_background: learn in a worker thread instead, so the result does not wait; see
            :meth:`wait_for_learning` and :meth:`close`.

    Example::

        agent = Agent(model, deps_type=Deps, capabilities=[
            MemoryCapability(memory, user_id=lambda ctx: ctx.deps.user_id)])
    """

    memory: MemoryManager
    _: KW_ONLY
    user_id: Resolved
    agent_id: str | None = None
    session_id: Resolved | None = None
    token_budget: int | None = None
    tools: bool = True
    learn: bool = True
    learn_in_background: bool = False
    _run: _Run | None = field(default=None, init=False, repr=False, compare=False)
    _learner: BackgroundLearner | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.memory, MemoryManager):
            raise ConfigurationError(f"memory must be a MemoryManager, got {self.memory!r}")
        for name in ("user_id", "session_id"):
            value = getattr(self, name)
            if not (isinstance(value, str) or callable(value) or (value is None and name == "session_id")):
                raise ConfigurationError(f"{name} must be a str or a function of the RunContext: {value!r}")
        if self.agent_id is not None and not isinstance(self.agent_id, str):
            raise ConfigurationError(f"agent_id must be a str, got {self.agent_id!r}")
        for name in ("tools", "learn", "learn_in_background"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.learn and self.learn_in_background:
            # One worker for every run of the agent: learns of a user stay in order.
            self._learner = BackgroundLearner(self.memory, log)

    @classmethod
    def get_serialization_name(cls) -> str | None:
        return None  # holds a MemoryManager and functions: not for agent specs

    async def for_run(self, ctx: RunContext[AgentDepsT]) -> AbstractCapability[AgentDepsT]:
        """A copy bound to this run's user and session; the agent's own instance stays unbound."""
        user_id = _resolve(self.user_id, ctx, "user_id")
        session_id = _resolve(self.session_id, ctx, "session_id") if self.session_id is not None else None
        memory = self.memory
        # Taken before anything is read: if the user is deleted during the run, nothing is written.
        generation = await asyncio.to_thread(memory.generation, user_id=user_id)
        tools = None
        if self.tools:
            tools = memory.tools(
                user_id=user_id, agent_id=self.agent_id, session_id=session_id, generation=generation
            )
        run = _Run(user_id, session_id, generation, MemoryToolset(tools) if tools is not None else None)
        bound = copy.copy(self)  # shares the background learner; per-run state is only in _run
        bound._run = run
        return bound

    def get_instructions(self) -> _InstructionFunc[AgentDepsT] | None:
        # Only the copy for_run binds to a user contributes; the agent's own instance has no user.
        return self._instructions if self._run is not None else None

    def get_toolset(self) -> MemoryToolset[AgentDepsT] | None:
        return self._run.toolset if self._run is not None else None

    async def _instructions(self, ctx: RunContext[AgentDepsT]) -> InstructionPart | None:
        run = self._run
        assert run is not None
        if run.instructions is None:  # once per run: every step sees the memory the run began with
            run.instructions = await asyncio.to_thread(self._compile, run, _prompt_text(ctx.prompt))
        if not run.instructions:
            return None
        # Rewritten, not appended, when it changes between runs of a conversation: a memory forgotten
        # in between is not sent again.
        return InstructionPart(run.instructions, dynamic=True, name="memory")

    def _compile(self, run: _Run, prompt: str | None) -> str:
        return memory_instructions(
            self.memory,
            user_id=run.user_id,
            agent_id=self.agent_id,
            session_id=run.session_id,
            query=prompt,
            token_budget=self.token_budget,
            tools=run.toolset is not None,
        )

    async def after_run(
        self, ctx: RunContext[AgentDepsT], *, result: AgentRunResult[Any]
    ) -> AgentRunResult[Any]:
        run = self._run
        if not self.learn or run is None:
            return result
        everything, new = result.all_messages(), result.new_messages()
        earlier = everything[: len(everything) - len(new)]
        # The assistant turn the user's first message reacts to, as context for the extraction.
        previous = [m for m in openai_messages(earlier) if m["role"] == "assistant"][-1:]
        messages = learnable((m["role"], m["content"]) for m in [*previous, *openai_messages(new)])
        if not any(m["role"] == "user" for m in messages):
            return result
        await self._learn_finished(
            self.memory,
            log,
            messages,
            user_id=run.user_id,
            agent_id=self.agent_id,
            session_id=run.session_id,
            generation=run.generation,
        )
        return result


@dataclass
class _Run:
    """What one run's copy of the capability is bound to."""

    user_id: str
    session_id: str | None
    generation: str
    toolset: MemoryToolset[Any] | None
    instructions: str | None = None


def _resolve(value: Resolved | None, ctx: RunContext[Any], name: str) -> str:
    resolved = value(ctx) if callable(value) else value
    if not isinstance(resolved, str) or not resolved:
        raise ConfigurationError(f"{name} must resolve to a non-empty str for the run, got {resolved!r}")
    return resolved


def _prompt_text(prompt: str | Sequence[Any] | None) -> str | None:
    """The text of a run's prompt (a multimodal prompt's text parts)."""
    if prompt is None or isinstance(prompt, str):
        return prompt
    texts = [part.content if isinstance(part, TextContent) else part for part in prompt]
    return "\n".join(text for text in texts if isinstance(text, str)) or None


def openai_messages(messages: Sequence[ModelMessage]) -> list[dict[str, str]]:
    """pydantic-ai messages as OpenAI-style ``{"role", "content"}`` dicts: the user's prompts and the
    model's text, in order (instructions, tool calls and tool results left out)."""
    out = []
    for message in messages:
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if isinstance(part, UserPromptPart):
                    text = _prompt_text(part.content)
                    if text:
                        out.append({"role": "user", "content": text})
        elif isinstance(message, ModelResponse):
            text = "".join(part.content for part in message.parts if isinstance(part, TextPart))
            if text:
                out.append({"role": "assistant", "content": text})
    return out
