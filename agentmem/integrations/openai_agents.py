"""agentmem for the OpenAI Agents SDK (``pip install "agentmem-layers[openai-agents]"``).

``AgentMemory`` hands an ``agents.Agent`` what it needs from a ``MemoryManager``:

- :meth:`AgentMemory.instructions`: an instructions callable that adds the user's memory, compiled for
  their latest message, to your instructions on every turn;
- :meth:`AgentMemory.tools`: the memory tools as ``FunctionTool`` objects, bound to the run's user;
- :attr:`AgentMemory.hooks`: ``RunHooks`` that learn from the run once the agent has its final output
  (or :attr:`AgentMemory.agent_hooks`, the same as one agent's ``AgentHooks``);
- :meth:`AgentMemory.session`: a ``Session`` that keeps the SDK's conversation history in agentmem.

Whose memory a run uses is decided per run, never by the model: ``user_id`` is a str, a function of the
run context, or (by default) the ``user_id`` attribute of the context object given to ``Runner.run``.
A run takes the user's generation when it begins, so a user deleted during the run gets nothing written
back by its tools, its learning or its session.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar, cast

from agents import Agent, AgentHooks, FunctionTool, RunContextWrapper, RunHooks, TResponseInputItem
from agents.run_context import AgentHookContext
from agents.tool_context import ToolContext

from ..conversations import clipped
from ..errors import ConfigurationError, ErasedError, InvalidInputError, ScopeError, UnsupportedError
from ..manager import MemoryManager
from ..scope import check_id
from ..secret_filter import redact
from ..validation import cleaned_text
from .common import BackgroundLearner, LearningInBackground, learnable, learning_logged, memory_instructions

__all__ = [
    "AgentMemory",
    "AgentMemoryAgentHooks",
    "AgentMemoryHooks",
    "AgentMemorySession",
    "UserId",
]

logger = logging.getLogger(__name__)

UserId: TypeAlias = "str | Callable[[RunContextWrapper[Any]], str] | None"
"""Whose memory a run uses: a user id, a function of the run context, or ``None`` for the context
object's ``user_id`` attribute."""
Instructions: TypeAlias = "str | Callable[[RunContextWrapper[Any], Agent[Any]], str | Awaitable[str]] | None"

ITEM_MARK = "openai-agents-item"
"""The ``name`` of a stored message whose content is an SDK item as JSON (plain messages have no name)."""

T = TypeVar("T")


class _PerRun(Generic[T]):
    """A value kept for one SDK run, found from any context of that run.

    The SDK hands hooks, tools and the session fresh context wrappers, but every one of a run shares
    its ``usage`` object; the value is dropped when that object is.
    """

    def __init__(self) -> None:
        self._values: dict[int, T] = {}

    def get(self, ctx: RunContextWrapper[Any], make: Callable[[], T]) -> T:
        key = id(ctx.usage)
        if key not in self._values:
            self._values[key] = make()
            weakref.finalize(ctx.usage, self._values.pop, key, None)
        return self._values[key]


@dataclass
class _Run:
    """Whose run it is, the user's generation when it began, and its agentmem session (if any)."""

    user_id: str
    generation: str
    session_id: str | None = None


class AgentMemory(LearningInBackground):
    """A ``MemoryManager`` for OpenAI Agents SDK agents.

    Args:
        memory: where the users' memory and conversations are kept.
        user_id: whose memory a run uses: a str, a function of the run context, or ``None`` (the
            default) for the ``user_id`` attribute of the context object passed to ``Runner.run``.
            Resolved once per run; never taken from a model's tool arguments.
        agent_id: the agent's own scope: it reads and learns the user's memory private to it as well,
            and owns the sessions it creates.
        token_budget: the most tokens the memory may take in the instructions (``None``: no limit).
        learn_in_background: the hooks hand learning to a worker thread instead of awaiting it, so
            ``Runner.run`` returns without waiting for the extraction; :meth:`wait_for_learning`
            waits for it, :meth:`close` finishes it.

    Example::

        am = AgentMemory(memory, user_id=lambda ctx: ctx.context.user.id)
        agent = Agent(name="assistant", instructions=am.instructions("Be brief."), tools=am.tools())
        result = await Runner.run(agent, "Hi", context=ctx, hooks=am.hooks, session=am.session(...))
    """

    def __init__(
        self,
        memory: MemoryManager,
        *,
        user_id: UserId = None,
        agent_id: str | None = None,
        token_budget: int | None = None,
        learn_in_background: bool = False,
    ) -> None:
        if not isinstance(memory, MemoryManager):
            raise ConfigurationError(f"memory must be a MemoryManager, got {type(memory).__name__}")
        if user_id is not None and not isinstance(user_id, str) and not callable(user_id):
            raise ConfigurationError("user_id must be a str, a function of the run context, or None")
        if isinstance(user_id, str):
            check_id(user_id, "user_id", required=True)
        if token_budget is not None and (type(token_budget) is not int or token_budget < 0):
            raise ConfigurationError(f"token_budget must be a non-negative int, got {token_budget!r}")
        self.memory = memory
        self.agent_id = check_id(agent_id, "agent_id", required=False)
        self.token_budget = token_budget
        self._user_id = user_id
        self._runs: _PerRun[_Run] = _PerRun()
        self._learner = BackgroundLearner(memory, logger) if learn_in_background else None
        self._definitions = [d["function"] for d in memory.tool_definitions()]
        self.hooks = AgentMemoryHooks(self)
        """Run hooks that learn from each run after its final output: ``Runner.run(..., hooks=am.hooks)``."""
        self.agent_hooks = AgentMemoryAgentHooks(self)
        """The same as agent hooks, ``Agent(hooks=am.agent_hooks)``, leaving ``Runner.run``'s hooks free."""

    # ---- whose run ---------------------------------------------------------------------------

    def user_of(self, ctx: RunContextWrapper[Any]) -> str:
        """The user a run belongs to (see ``user_id``).

        Raises:
            ConfigurationError: the user cannot be found from the run context.
        """
        found: object
        if isinstance(self._user_id, str):
            found = self._user_id
        elif self._user_id is not None:
            found = self._user_id(ctx)
        elif isinstance(ctx.context, Mapping):
            found = ctx.context.get("user_id")
        else:
            found = getattr(ctx.context, "user_id", None)
        if not isinstance(found, str) or not found.strip():
            raise ConfigurationError(
                "AgentMemory needs the run's user: pass user_id= (a str or a function of the run context) "
                f"or run with a context that has a str user_id; got {found!r}"
            )
        user_id = check_id(found, "user_id", required=True)
        assert user_id is not None
        return user_id

    def _run(self, ctx: RunContextWrapper[Any]) -> _Run:
        def begin() -> _Run:
            user_id = self.user_of(ctx)
            return _Run(user_id, self.memory.generation(user_id=user_id))

        return self._runs.get(ctx, begin)

    def _join(self, ctx: RunContextWrapper[Any], session: AgentMemorySession) -> _Run:
        """The run that uses ``session``: its memory reads and learning see the session's memory too."""
        run = self._run(ctx)
        if run.user_id != session.user_id:
            raise ConfigurationError(
                f"the session belongs to user {session.user_id!r}, but the run is user {run.user_id!r}'s"
            )
        run.session_id = session.session_id
        return run

    # ---- instructions ------------------------------------------------------------------------

    def instructions(
        self, base: Instructions = None
    ) -> Callable[[RunContextWrapper[Any], Agent[Any]], Awaitable[str]]:
        """An instructions callable for ``Agent(instructions=...)``: ``base`` (a str, or the SDK's own
        kind of instructions callable) followed by the user's memory, compiled for their latest
        message, and, when the agent has the memory tools, when to use them."""
        if base is not None and not isinstance(base, str) and not callable(base):
            raise ConfigurationError("base must be a str, an instructions callable or None")
        tool_names = {d["name"] for d in self._definitions}

        async def instructions(ctx: RunContextWrapper[Any], agent: Agent[Any]) -> str:
            text = await _resolved(base, ctx, agent)
            run = self._run(ctx)
            has_tools = any(getattr(tool, "name", None) in tool_names for tool in agent.tools)
            block = await asyncio.to_thread(
                memory_instructions,
                self.memory,
                user_id=run.user_id,
                agent_id=self.agent_id,
                session_id=run.session_id,
                query=_latest_user_text(ctx.turn_input),
                token_budget=self.token_budget,
                tools=has_tools,
            )
            return "\n\n".join(part for part in (text, block) if part)

        return instructions

    # ---- tools -------------------------------------------------------------------------------

    def tools(self) -> list[FunctionTool]:
        """The memory tools (remember, update, forget, search) as ``FunctionTool`` objects. Each call
        works on the memory of the run's user; the model's arguments never choose whose."""
        return [self._tool(d) for d in self._definitions]

    def _tool(self, definition: Mapping[str, Any]) -> FunctionTool:
        name = str(definition["name"])

        async def invoke(ctx: ToolContext[Any], arguments: str) -> str:
            run = self._run(ctx)
            tools = self.memory.tools(
                user_id=run.user_id,
                agent_id=self.agent_id,
                session_id=run.session_id,
                generation=run.generation,
            )
            return await asyncio.to_thread(tools.dispatch, name, arguments)

        return FunctionTool(
            name=name,
            description=str(definition.get("description", "")),
            params_json_schema=dict(definition["parameters"]),
            on_invoke_tool=invoke,
            # agentmem's schemas have optional arguments, which strict mode cannot express.
            strict_json_schema=False,
        )

    # ---- learning ------------------------------------------------------------------------------

    def begin_run(self, ctx: RunContextWrapper[Any]) -> None:
        """Take the run's user and their generation now (the hooks do, as the agent starts), so a
        ``delete_user`` during the run wins over its writes. Failures are logged, never raised."""
        try:
            self._run(ctx)
        except Exception:
            logger.warning("agentmem could not begin an OpenAI Agents SDK run", exc_info=True)

    async def learn_run(self, ctx: RunContextWrapper[Any], output: Any) -> None:
        """Learn from a finished run: its newest user turn(s), the assistant turn before them and the
        final output. Failures are logged, never raised: memory never fails a run."""
        try:
            run = self._run(ctx)
        except Exception:
            logger.warning("agentmem could not tell whose run ended", exc_info=True)
            return
        messages: list[dict[str, str]] = []
        with learning_logged(logger, run.user_id):  # an SDK item of a shape not foreseen
            messages = learnable(_run_turns(ctx.turn_input, output))
        if any(m["role"] == "user" for m in messages):
            await self._learn_finished(
                self.memory,
                logger,
                messages,
                user_id=run.user_id,
                agent_id=self.agent_id,
                session_id=run.session_id,
                generation=run.generation,
            )

    # ---- sessions ------------------------------------------------------------------------------

    def session(self, user_id: str, session_id: str) -> AgentMemorySession:
        """The user's conversation ``session_id`` as an SDK ``Session`` (owned by this ``agent_id``)."""
        session = AgentMemorySession(
            self.memory, user_id=user_id, session_id=session_id, agent_id=self.agent_id
        )
        session._agent_memory = self
        return session


class AgentMemoryHooks(RunHooks[Any]):
    """Run hooks that learn from each run once the agent has its final output (``AgentMemory.hooks``).

    The SDK takes one hooks object per run: to add hooks of your own, subclass this one and call
    ``super()`` from ``on_agent_start`` and ``on_agent_end``.
    """

    def __init__(self, agent_memory: AgentMemory) -> None:
        self.agent_memory = agent_memory

    async def on_agent_start(self, context: AgentHookContext[Any], agent: Agent[Any]) -> None:
        self.agent_memory.begin_run(context)

    async def on_agent_end(self, context: AgentHookContext[Any], agent: Agent[Any], output: Any) -> None:
        await self.agent_memory.learn_run(context, output)


class AgentMemoryAgentHooks(AgentHooks[Any]):
    """The learning of :class:`AgentMemoryHooks` as one agent's hooks (``AgentMemory.agent_hooks``), for
    ``Agent(hooks=...)``: ``Runner.run``'s hooks stay free for your own. Give them to every agent a run
    can hand off to; the run's final output is learned by the agent that produced it.
    """

    def __init__(self, agent_memory: AgentMemory) -> None:
        self.agent_memory = agent_memory

    async def on_start(self, context: AgentHookContext[Any], agent: Agent[Any]) -> None:
        self.agent_memory.begin_run(context)

    async def on_end(self, context: AgentHookContext[Any], agent: Agent[Any], output: Any) -> None:
        await self.agent_memory.learn_run(context, output)


class AgentMemorySession:
    """The SDK's ``Session`` protocol on agentmem's conversation history (``MemoryManager.sessions``).

    Items round-trip exactly: a plain ``{"role", "content"}`` message (user, assistant or system, text
    content) is stored as it is, readable by agentmem and its summaries; any other item (tool calls and
    their outputs, assistant output messages with content parts, reasoning) is stored as its JSON, as a
    message named ``openai-agents-item``. As everywhere in agentmem, secrets are redacted when stored, so
    an item holding one comes back with ``[redacted]`` in its place.

    Made by :meth:`AgentMemory.session`, it also joins the run that uses it to the session: the run's
    instructions, tools and learning see and keep that session's own memory (``session_id``).

    ``pop_item`` raises :class:`UnsupportedError`: agentmem's history has no way to remove one message.
    ``clear_session`` deletes the session in agentmem: its messages, summary, variables and the memory
    learned into the session.
    """

    session_settings = None

    def __init__(
        self, memory: MemoryManager, *, user_id: str, session_id: str, agent_id: str | None = None
    ) -> None:
        self.memory = memory
        user = check_id(user_id, "user_id", required=True)
        session = check_id(session_id, "session_id", required=True)
        assert user is not None
        assert session is not None
        self.user_id, self.session_id = user, session
        self.agent_id = check_id(agent_id, "agent_id", required=False)
        self._generations: _PerRun[str] = _PerRun()
        self._agent_memory: AgentMemory | None = None  # set by AgentMemory.session

    def _generation(self, wrapper: RunContextWrapper[Any] | None) -> str | None:
        if wrapper is None:
            return None  # not in a run: the write takes the generation when it begins
        if self._agent_memory is not None:  # the run's memory reads and learning join this session
            return self._agent_memory._join(wrapper, self).generation
        return self._generations.get(wrapper, lambda: self.memory.generation(user_id=self.user_id))

    async def get_items(
        self, limit: int | None = None, *, wrapper: RunContextWrapper[Any] | None = None
    ) -> list[TResponseInputItem]:
        """The session's items, oldest first; with ``limit``, only the latest ``limit``."""
        self._generation(wrapper)  # a run reads its history first: its generation starts here
        stored = await asyncio.to_thread(
            self.memory.sessions.history,
            self.session_id,
            user_id=self.user_id,
            agent_id=self.agent_id,
            limit=limit,
        )
        return [_item_of(message) for message in stored]

    async def add_items(
        self, items: list[TResponseInputItem], *, wrapper: RunContextWrapper[Any] | None = None
    ) -> None:
        """Append items. Nothing is stored for a user deleted since the run began."""
        if not items:
            return
        messages = [_message_of(item) for item in items]
        try:
            await asyncio.to_thread(
                self.memory.sessions.add,
                self.session_id,
                messages,
                user_id=self.user_id,
                agent_id=self.agent_id,
                generation=self._generation(wrapper),
            )
        except ErasedError:
            logger.info("user %r was deleted during the run; its session items are not stored", self.user_id)
        except ScopeError:  # another agent's session: refused, as every read of it is
            raise
        except InvalidInputError as exc:  # e.g. a tool output over a message's length: the run has its reply
            logger.warning("a turn's items are not stored in session %r: %s", self.session_id, exc)

    async def pop_item(self, *, wrapper: RunContextWrapper[Any] | None = None) -> TResponseInputItem | None:
        """Not supported: agentmem's conversation history cannot remove one message.

        Raises:
            UnsupportedError: always.
        """
        raise UnsupportedError(
            "AgentMemorySession cannot pop an item: agentmem's conversation history has no way to remove "
            "one message (clear_session deletes the whole session)"
        )

    async def clear_session(self, *, wrapper: RunContextWrapper[Any] | None = None) -> None:
        """Delete the session: its messages, summary, variables and session-scoped memory."""

        def clear() -> None:
            # Read as the owning agent first: another agent's session is a ScopeError, not deleted.
            sessions = self.memory.sessions
            sessions.history(self.session_id, user_id=self.user_id, agent_id=self.agent_id, limit=0)
            sessions.delete(self.session_id, user_id=self.user_id)

        await asyncio.to_thread(clear)


# ---- items and text ----------------------------------------------------------------------------


def _is_plain(item: Mapping[str, Any]) -> bool:
    return (
        set(item) == {"role", "content"}
        and item["role"] in ("user", "assistant", "system")
        and isinstance(item["content"], str)
    )


def _storable(value: Any) -> Any:
    """``value`` with every string made storable and its secrets redacted, inside JSON held in a string
    too (a tool call's arguments, its output): redacting the dumped JSON as text would miss a secret
    behind escaped quotes, or cut an escape and leave JSON that no longer parses. A string is rewritten
    only where something in it changed, so items round-trip exactly."""
    if isinstance(value, str):
        text = cleaned_text(value)
        redacted = redact(text)
        if text[:1] not in ("{", "["):
            return redacted
        try:
            original = json.loads(text)
        except ValueError:
            return redacted
        try:  # named secrets ("password": "...") are found in the JSON text, one level of quotes
            inner = json.loads(redacted)
        except ValueError:  # the redaction cut the JSON: redact its strings one by one instead
            inner = original
        kept = _storable(inner)
        return text if kept == original else json.dumps(kept, ensure_ascii=False)
    if isinstance(value, Mapping):
        return {key: _storable(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_storable(inner) for inner in value]
    return value


def _message_of(item: Mapping[str, Any]) -> dict[str, Any]:
    """An SDK item as a stored message: a plain message as is, any other item as its JSON."""
    if _is_plain(item):
        return {"role": item["role"], "content": clipped(cleaned_text(item["content"]))}
    role = item.get("role")
    stored_role = role if role in ("user", "assistant", "system") else "tool"
    content = json.dumps(_storable(item), ensure_ascii=False)
    return {"role": stored_role, "content": content, "name": ITEM_MARK}


def _item_of(message: Mapping[str, Any]) -> TResponseInputItem:
    """A stored message back as the SDK item it was made from."""
    if message.get("name") == ITEM_MARK:
        try:
            item = json.loads(message["content"])
        except ValueError:
            item = None
        if isinstance(item, dict):
            return cast(TResponseInputItem, item)
        logger.warning("a stored OpenAI Agents SDK item is not JSON any more; returned as text")
        role = message["role"] if message["role"] in ("user", "assistant", "system") else "assistant"
        return cast(TResponseInputItem, {"role": role, "content": message["content"]})
    return cast(TResponseInputItem, {"role": message["role"], "content": message["content"]})


def _text_of(item: Mapping[str, Any]) -> str:
    """A message item's text: its str content, or its text parts joined."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, Mapping)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def _latest_user_text(items: list[TResponseInputItem]) -> str | None:
    for item in reversed(items):
        if isinstance(item, Mapping) and item.get("role") == "user":
            return _text_of(item) or None
    return None


def _run_turns(items: list[TResponseInputItem], output: Any) -> list[tuple[str, str]]:
    """What a run adds to the conversation: its trailing user messages (the run's new input; any
    history before them was learned by earlier runs), the assistant message they answer, and the
    final output."""
    turns: list[tuple[str, str]] = []
    index = len(items) - 1
    while index >= 0 and isinstance(items[index], Mapping) and items[index].get("role") == "user":
        turns.append(("user", _text_of(items[index])))
        index -= 1
    while index >= 0:  # the assistant message the user answered, past any tool items after it
        item = items[index]
        if isinstance(item, Mapping) and item.get("role") == "assistant":
            turns.append(("assistant", _text_of(item)))
            break
        if isinstance(item, Mapping) and item.get("role") == "user":
            break
        index -= 1
    turns.reverse()
    if output is not None:
        turns.append(("assistant", output if isinstance(output, str) else str(output)))
    return turns


async def _resolved(base: Instructions, ctx: RunContextWrapper[Any], agent: Agent[Any]) -> str:
    if base is None or isinstance(base, str):
        return base or ""
    result = base(ctx, agent)
    return await result if not isinstance(result, str) else result
