"""A small agent that uses the memory: pass a MemoryManager into its constructor and it just works.

Each run: the system message gets the instructions, the user's compiled memory (ranked by the new
message) and a short guide to using it; the session's recent history is sent along; the model may
call your functions and, with ``enable_agentic_memory``, the memory tools. After the reply, the turn
is stored in the session and, unless the memory has ``update_memory_on_run=False``, learned in the
background: the reply is never delayed by learning and never fails because of it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import uuid
from collections.abc import AsyncGenerator, Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from .conversations import MAX_MESSAGE_CHARS, clipped
from .errors import (
    AgentMemError,
    ClosedError,
    ConfigurationError,
    ErasedError,
    ExtractionError,
    InvalidInputError,
)
from .extraction.bridge import run_sync
from .extraction.calls import ModelCaller
from .extraction.model import Message, Model, ModelRequest, ModelResponse, resolve_model
from .extraction.retry import RetryPolicy
from .function_tools import FunctionTool
from .guides import memory_section, tools_guide
from .manager import MAX_QUERY, MemoryManager
from .records import Change, Cost
from .scope import Scope, check_id
from .templates import MEMORY, MemoryTemplate, parse_template
from .tools import MemoryTools
from .validation import checked_text, cleaned_text

log = logging.getLogger("agentmem.agent")


@dataclass
class RunResult:
    """One run of an agent.

    Attributes:
        content: the reply.
        session_id: the session the turn was stored in (a new one when none was given).
        usage: the reply's model calls and tokens (background learning not included).
        memory_changes: changes the memory tools made during the run; background learning appends its
            changes here when it finishes (see :meth:`Agent.wait_for_memory`).
        tool_calls: names of the tools the model called, in order.
        system_message: the system message the model saw (instructions, memory block, guides).
    """

    content: str
    session_id: str
    usage: Cost
    memory_changes: list[Change] = field(default_factory=list)
    tool_calls: list[str] = field(default_factory=list)
    system_message: str = ""


@dataclass(frozen=True)
class RunStarted:
    """:meth:`Agent.astream`'s first event: the run's input was accepted and its memory compiled."""

    session_id: str
    """The session the turn goes to (a new one when none was given)."""


@dataclass(frozen=True)
class TextDelta:
    """A piece of the reply, as the model wrote it."""

    text: str


@dataclass(frozen=True)
class RunFinished:
    """:meth:`Agent.astream`'s last event: the run, as :meth:`Agent.arun` returns it."""

    result: RunResult


RunEvent = RunStarted | TextDelta | RunFinished
"""What :meth:`Agent.astream` yields."""


def _checked_instructions(
    instructions: str, memory: MemoryManager | None, variables: Collection[str]
) -> MemoryTemplate:
    if memory is not None:
        return memory.check_template(instructions, variables=variables)
    template = parse_template(instructions, variables)
    if template.names:  # without a memory there is nothing to fill them from
        raise ConfigurationError(
            f"instructions use {{{{{sorted(template.names)[0]}}}}}, but this Agent has no memory to fill it"
        )
    return template


@contextmanager
def _agentmem_errors() -> Iterator[None]:
    """Whatever fails in a run leaves it as an AgentMemError, the original chained."""
    try:
        yield
    except AgentMemError:
        raise
    except Exception as exc:
        raise AgentMemError(f"the run failed: {type(exc).__name__}: {exc}") from exc


@dataclass
class _Turn:
    """Everything one run needs, prepared before the first model call."""

    scope: Scope
    session_id: str
    message: str
    messages: list[Message]
    previous_reply: str | None
    memory_tools: MemoryTools | None
    result: RunResult
    generation: str | None
    """The user's generation when the run began: if the user is deleted during the run, the run
    stores and learns nothing."""


class Agent:
    """An LLM agent with long-term memory of its users.

    Args:
        model: a litellm model id, or your own :class:`~agentmem.Model` (e.g. ``ScriptedModel``).
        memory: the memory to use; its options decide the behaviour: ``add_memory_to_context``,
            ``update_memory_on_run`` (learn after each run, in the background; on by default) and
            ``enable_agentic_memory`` (give the model the memory tools).
        instructions: the start of the system message: a template, filled from the user's memory on
            each run (``"You are helping {{user_name}}."``; see ``MemoryManager.render``). It is
            checked now: a variable that is neither built in nor in ``variables`` is a
            ConfigurationError naming it. When it places ``{{memory}}`` itself, the memory block is
            not appended again.
        variables: names of your own template variables, besides the built-ins.
        tools: plain Python functions the model may call.
        model_options: passed through to litellm (``temperature``, ``api_base`` ...).
        agent_id: this agent's id: it reads the user's shared memory plus its own, and what it
            learns is private to it (``memory.get(user_id=..., agent_id=...)`` shows it). Without
            an ``agent_id``, what it learns is the user's shared memory. Its own memory, shared by all
            its users (``memory.get(agent_id=...)``), is in every run's context under its own tag.
        write_agent_memory: with ``agent_id`` and the memory's ``enable_agentic_memory``, the memory
            tools may also write to the agent's own memory (``memory_remember`` with
            ``scope="agent"``). Off by default: the tools write to the user's memory only.
        history_messages: how many of the session's latest messages are sent with each run.
        memory_token_budget: the most tokens the memory block may take in the system message.
        max_tool_rounds: model turns spent on tool calls before the answer is forced.
        retry: how the chat calls are retried when they fail transiently; default: the memory's
            policy (``memory.retry``), or ``RetryPolicy()`` without a memory. A call that still fails
            raises the model's error (``TransientModelError`` when retries ran out).
    """

    def __init__(
        self,
        model: str | Model,
        *,
        memory: MemoryManager | None = None,
        instructions: str = "You are a helpful assistant.",
        tools: Sequence[Callable[..., Any]] = (),
        model_options: Mapping[str, Any] | None = None,
        agent_id: str | None = None,
        history_messages: int = 20,
        memory_token_budget: int = 1500,
        max_tool_rounds: int = 5,
        retry: RetryPolicy | None = None,
        variables: Collection[str] = (),
        write_agent_memory: bool = False,
    ) -> None:
        resolved = resolve_model(model, model_options)
        if resolved is None:
            raise ConfigurationError("an Agent needs a model")
        self.model: Model = resolved
        if memory is not None and not isinstance(memory, MemoryManager):
            raise ConfigurationError(f"memory must be a MemoryManager, got {type(memory).__name__}")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ConfigurationError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
        self.retry = retry or (memory.retry if memory is not None else RetryPolicy())
        """How the chat calls are retried."""
        self._caller = ModelCaller(self.model, self.retry)  # no concurrency limit: replies never wait
        self.memory = memory
        if not isinstance(instructions, str):
            raise ConfigurationError(f"instructions must be a str, got {type(instructions).__name__}")
        self.instructions = instructions
        self._instructions = _checked_instructions(instructions, memory, variables)
        self.agent_id = check_id(agent_id, "agent_id", required=False)
        if write_agent_memory is not False and write_agent_memory is not True:
            raise ConfigurationError(f"write_agent_memory must be a bool, got {write_agent_memory!r}")
        if write_agent_memory and self.agent_id is None:
            raise ConfigurationError("write_agent_memory=True needs an agent_id: whose memory would it be?")
        self.write_agent_memory = write_agent_memory
        if isinstance(tools, str) or not isinstance(tools, Sequence):
            raise ConfigurationError(f"tools must be a list of functions, got {type(tools).__name__}")
        self.tools = {tool.name: tool for tool in map(FunctionTool, tools)}
        if len(self.tools) != len(tools):
            raise ConfigurationError("two tools share a name")
        counts = {
            "history_messages": history_messages,
            "max_tool_rounds": max_tool_rounds,
            "memory_token_budget": memory_token_budget,
        }
        for name, value in counts.items():  # checked now, not at the first run
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigurationError(f"{name} must be an int >= 0, got {value!r}")
        self.history_messages, self.memory_token_budget = history_messages, memory_token_budget
        self.max_tool_rounds = max_tool_rounds
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentmem-learn")
        self._futures: set[Future[None]] = set()
        self._lock = threading.Lock()
        self._closed = False

    # ---- public API ---------------------------------------------------------------------------

    def run(self, message: str, *, user_id: str, session_id: str | None = None) -> RunResult:
        """Answer ``message`` for ``user_id``; the turn is stored in the session (new when ``None``).

        A session belongs to the agent that started it: continuing another agent's session (or, for an
        agent with an ``agent_id``, a session stored without one) raises ScopeError before any model
        call, and so does a ``message`` over ``MAX_MESSAGE_CHARS`` or holding text no store keeps
        (InvalidInputError). A reply over that limit is returned whole and stored cut short, with a
        marker. A reply is never lost: when storing the turn fails, the failure is logged and the reply
        returned.

        Raises:
            AgentMemError: every failure; from the model, a :class:`~agentmem.ModelError` subclass.
        """
        with _agentmem_errors():
            turn = self._start(message, user_id, session_id)
            for _round in range(self.max_tool_rounds + 1):
                final = _round == self.max_tool_rounds
                reply = self._chat(turn, final=final)
                if not reply.tool_calls or final:  # a call asked for without tools offered is not run
                    return self._finish(turn, reply.text)
                self._record_calls(turn, reply)
                for call in reply.tool_calls:
                    turn.messages.append(
                        self._tool_message(call.id, self._run_tool(turn, call.name, call.arguments))
                    )
        raise AssertionError("unreachable: the last round is forced to answer")

    async def arun(self, message: str, *, user_id: str, session_id: str | None = None) -> RunResult:
        """The async twin of :meth:`run`."""
        with _agentmem_errors():
            turn = await asyncio.to_thread(self._start, message, user_id, session_id)
            for _round in range(self.max_tool_rounds + 1):
                final = _round == self.max_tool_rounds
                reply = await self._achat(turn, final=final)
                if not reply.tool_calls or final:
                    return await asyncio.to_thread(self._finish, turn, reply.text)
                await self._arun_tools(turn, reply)
        raise AssertionError("unreachable: the last round is forced to answer")

    async def astream(
        self, message: str, *, user_id: str, session_id: str | None = None
    ) -> AsyncGenerator[RunEvent, None]:
        """:meth:`arun`, streamed: :class:`RunStarted` once the input is accepted and the memory
        compiled, :class:`TextDelta` pieces of the reply as the model writes them, then
        :class:`RunFinished` with the :class:`RunResult`. The turn is stored and learned in the
        background exactly as :meth:`arun` does, once the reply is complete.

        Every model turn is streamed (a litellm model through ``stream=True``; a model without
        ``stream`` gives its reply as one piece). Text the model writes in a turn that then calls
        tools is streamed too and is part of the reply, so the pieces always join to
        ``RunFinished.result.content``. Errors are those of :meth:`arun`; a failure before
        :class:`RunStarted` (bad input, another agent's session) means the model was not called. A
        stream closed before :class:`RunFinished` (the client went away) stores and learns nothing.
        """
        with _agentmem_errors():
            turn = await asyncio.to_thread(self._start, message, user_id, session_id)
            yield RunStarted(turn.session_id)
            said: list[str] = []
            for _round in range(self.max_tool_rounds + 1):
                final = _round == self.max_tool_rounds
                request = ModelRequest(list(turn.messages), tools=self._tool_definitions(turn, final))
                reply: ModelResponse | None = None
                async for item in self._caller.stream(request, turn.result.usage):
                    if isinstance(item, str):
                        said.append(item)
                        yield TextDelta(item)
                    else:
                        reply = item
                assert reply is not None  # the caller's stream always ends with the whole reply
                if not reply.tool_calls or final:
                    yield RunFinished(await asyncio.to_thread(self._finish, turn, "".join(said)))
                    return
                await self._arun_tools(turn, reply)
        raise AssertionError("unreachable: the last round is forced to answer")

    def print_response(
        self, message: str, *, user_id: str, session_id: str | None = None, file: TextIO | None = None
    ) -> RunResult:
        """Run, and print the reply for a person reading a terminal."""
        result = self.run(message, user_id=user_id, session_id=session_id)
        out = file or sys.stdout
        print(result.content, file=out)
        for change in result.memory_changes:
            print(f"  [memory: {change.op} {change.layer} {change.key}]", file=out)
        return result

    def wait_for_memory(self, timeout: float | None = None) -> bool:
        """Wait for background learning started so far; ``False`` if ``timeout`` ran out first."""
        with self._lock:
            pending = set(self._futures)
        _done, not_done = wait(pending, timeout=timeout)
        return not not_done

    async def await_memory(self, timeout: float | None = None) -> bool:
        """The async twin of :meth:`wait_for_memory`."""
        return await asyncio.to_thread(self.wait_for_memory, timeout)

    def close(self) -> None:
        """Finish background learning and stop its worker; the agent cannot run after this."""
        self._closed = True
        self._background.shutdown(wait=True)

    # ---- one run ------------------------------------------------------------------------------

    def _start(self, message: str, user_id: str, session_id: str | None) -> _Turn:
        if self._closed:
            raise ClosedError("this agent is closed")
        scope = Scope.of(user_id, self.agent_id)
        if not isinstance(message, str) or not message.strip():
            raise InvalidInputError("message must be a non-empty str")
        checked_text(message, "message")
        if len(message) > MAX_MESSAGE_CHARS:  # checked now: it could not be stored after the reply
            raise InvalidInputError(f"message is {len(message)} characters; the limit is {MAX_MESSAGE_CHARS}")
        session = check_id(session_id, "session_id", required=False) or uuid.uuid4().hex
        memory = self.memory
        generation = memory.generation(user_id=scope.user_id) if memory else None  # before any read
        # Only this agent's own session: another agent's history is not ours to read or continue.
        history = (
            memory.sessions.history(
                session, user_id=scope.user_id, agent_id=scope.agent_id, limit=self.history_messages
            )
            if memory
            else []
        )
        if memory is None:
            system = self._instructions.fill({}).strip()
        else:
            system = memory.render(
                self._instructions,
                user_id=scope.user_id,
                agent_id=scope.agent_id,
                session_id=session,
                query=message[-MAX_QUERY:],
                token_budget=self.memory_token_budget,
            ).strip()
        if memory is not None and memory.add_memory_to_context and MEMORY not in self._instructions.names:
            block = memory.compile(
                user_id=scope.user_id,
                agent_id=scope.agent_id,
                session_id=session,  # the session's own memory too (LayerConfig(session_scoped=True))
                query=message[-MAX_QUERY:],  # a long message: its end, where the question usually is
                token_budget=self.memory_token_budget,
            )
            if block:
                system += f"\n\n{memory_section(block)}"
        memory_tools = None
        if memory is not None and memory.enable_agentic_memory:
            memory_tools = memory.tools(
                user_id=scope.user_id,
                agent_id=scope.agent_id,
                session_id=session,
                generation=generation,
                agent_memory=self.write_agent_memory,
            )
            system += f"\n\n{tools_guide(self.write_agent_memory)}"
        messages: list[Message] = [
            {"role": "system", "content": system},
            *(
                {"role": m["role"], "content": m["content"]}
                for m in history
                if m["role"] in ("user", "assistant")
            ),
            {"role": "user", "content": message},
        ]
        previous = next((m["content"] for m in reversed(history) if m["role"] == "assistant"), None)
        result = RunResult(content="", session_id=session, usage=Cost(), system_message=system)
        return _Turn(scope, session, message, messages, previous, memory_tools, result, generation)

    def _tool_definitions(self, turn: _Turn, final: bool) -> list[dict[str, Any]] | None:
        if final:
            return None  # the last round must answer
        definitions = [tool.definition for tool in self.tools.values()]
        if turn.memory_tools is not None:
            definitions += turn.memory_tools.definitions
        return definitions or None

    def _chat(self, turn: _Turn, *, final: bool) -> ModelResponse:
        return run_sync(self._achat(turn, final=final))

    async def _achat(self, turn: _Turn, *, final: bool) -> ModelResponse:
        request = ModelRequest(list(turn.messages), tools=self._tool_definitions(turn, final))
        return await self._caller.generate(request, turn.result.usage)

    async def _arun_tools(self, turn: _Turn, reply: ModelResponse) -> None:
        """Run the tools ``reply`` asks for; their outputs join the turn's messages."""
        self._record_calls(turn, reply)
        for call in reply.tool_calls:
            if call.name in self.tools:
                output = await self.tools[call.name].acall(call.arguments)
            else:
                output = await asyncio.to_thread(self._run_tool, turn, call.name, call.arguments)
            turn.messages.append(self._tool_message(call.id, output))

    @staticmethod
    def _record_calls(turn: _Turn, reply: ModelResponse) -> None:
        turn.messages.append(
            {
                "role": "assistant",
                "content": reply.text or None,
                "tool_calls": [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                    for c in reply.tool_calls
                ],
            }
        )
        turn.result.tool_calls.extend(c.name for c in reply.tool_calls)

    @staticmethod
    def _tool_message(call_id: str, output: str) -> Message:
        return {"role": "tool", "tool_call_id": call_id, "content": output}

    def _run_tool(self, turn: _Turn, name: str, arguments: str) -> str:
        if name in self.tools:
            return self.tools[name].call(arguments)
        if turn.memory_tools is not None and name in turn.memory_tools.names:
            before = len(turn.memory_tools.changes)
            output = turn.memory_tools.dispatch(name, arguments)
            turn.result.memory_changes.extend(turn.memory_tools.changes[before:])
            return output
        return f"error: there is no tool named {name!r}"

    def _finish(self, turn: _Turn, content: str) -> RunResult:
        turn.result.content = content
        memory = self.memory
        if memory is None:
            return turn.result
        # The reply exists, so storing it must not fail: a model's stray control character or lone
        # surrogate is repaired, an over-long reply stored cut short (the run still returns all of it).
        said = cleaned_text(content)
        exchange = [{"role": "user", "content": turn.message}, {"role": "assistant", "content": said}]
        stored = [exchange[0], {"role": "assistant", "content": clipped(said)}]
        # Stored now, so the next run's history has it; learning and summaries go to the background.
        try:
            memory.sessions.add(
                turn.session_id,
                stored,
                user_id=turn.scope.user_id,
                agent_id=turn.scope.agent_id,
                refresh_summary=False,
                generation=turn.generation,
            )
        except ErasedError:  # the user was deleted during the run: keep nothing of it
            log.info("user %r was deleted during the run: the turn is not stored", turn.scope.user_id)
            return turn.result
        except Exception:  # the database failed after the model answered: keep the reply
            log.exception(
                "the turn could not be stored in session %r; the reply is returned", turn.session_id
            )
            return turn.result
        if memory.update_memory_on_run or memory.sessions.summaries:
            context = [{"role": "assistant", "content": turn.previous_reply}] if turn.previous_reply else []
            self._in_background(turn, [*context, *exchange])
        return turn.result

    def _in_background(self, turn: _Turn, messages: list[dict[str, str]]) -> None:
        memory = self.memory
        assert memory is not None

        def learn() -> None:
            learned = memory.learn(
                messages,
                user_id=turn.scope.user_id,
                agent_id=turn.scope.agent_id,
                session_id=turn.session_id,
                generation=turn.generation,
            )
            turn.result.memory_changes.extend(learned.all_changes)

        def summarize() -> None:
            memory.sessions.refresh_summary(turn.session_id, user_id=turn.scope.user_id)

        steps = [
            (learn, memory.update_memory_on_run, "memory not learned yet (kept for retry_pending)"),
            (summarize, memory.sessions.summaries, "session summary not refreshed"),
        ]

        def job() -> None:
            # Each step on its own: a failed extraction must not also skip the summary.
            for step, enabled, failed in steps:
                if not enabled:
                    continue
                try:
                    step()
                except ExtractionError as exc:
                    log.warning("%s: %s", failed, exc)
                except Exception:  # never let a background failure reach the reply
                    log.exception("background memory update failed")

        try:
            future = self._background.submit(job)
        except RuntimeError:  # closed while this run was answering: the reply must still be returned
            log.warning(
                "the agent was closed during the run: the turn is stored in session %r but not learned "
                "(learn it again with memory.learn)",
                turn.session_id,
            )
            return
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._forget_future)

    def _forget_future(self, future: Future[None]) -> None:
        with self._lock:
            self._futures.discard(future)

    def __repr__(self) -> str:
        return f"Agent(model={self.model!r}, agent_id={self.agent_id!r})"
