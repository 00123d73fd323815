"""14 - LangGraph and LangChain: memory in an agent made with ``langchain.agents.create_agent``.

One middleware, ``AgentMemMiddleware``, gives a LangChain agent long-term memory of each user: the
user's memory goes into the system message of every model call, the model gets the memory tools, and
what a run adds to the conversation is learned when it ends. The user comes from the run's context
(``MemoryContext``), so one agent serves every user. Sarah introduces herself on Monday and asks the
agent to remember that she uses Polars; on Tuesday, in a new thread, the agent answers with both.
Marco, on the same agent, sees none of it.

Run: python examples/14_langgraph.py   (offline: a scripted chat model stands in for the LLM; the
memory learns with the built-in offline extractor)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from _support import show, temp_db
from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.checkpoint.memory import InMemorySaver

from agentmem import MemoryManager
from agentmem.integrations.langgraph import AgentMemMiddleware, MemoryContext


class ScriptedChat(BaseChatModel):
    """An offline stand-in for a LangChain chat model: replies come from a function of the messages.
    With a real model, pass e.g. ``init_chat_model("openai:gpt-4o-mini")`` to create_agent instead."""

    reply: Callable[[list[BaseMessage]], AIMessage]

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChat:
        return self  # the script knows its tools

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.reply(messages))])


def assistant(messages: list[BaseMessage]) -> AIMessage:
    """What the LLM would do: call memory_remember when asked to remember, else answer using the memory
    in the system message."""
    system, last = messages[0].text, messages[-1]
    if last.type == "tool":
        return AIMessage(content="Noted.")
    said = last.text.rstrip(".!")
    if found := re.match(r"remember that I (.+)", said, re.IGNORECASE):
        fact = f"Uses {found.group(1).removeprefix('use ')}"
        call = {"name": "memory_remember", "args": {"layer": "knowledge", "value": fact}, "id": "call_1"}
        return AIMessage(content="", tool_calls=[call])
    name = re.search(r"^name: (.+)$", system, re.MULTILINE)
    polars = "Polars" in system
    if said.startswith("How do I read a CSV"):
        code = "pl.read_csv('data.csv')" if polars else "pd.read_csv('data.csv')"
        return AIMessage(content=f"{name.group(1) + ', u' if name else 'U'}se {code}.")
    return AIMessage(content=f"Nice to meet you{', ' + name.group(1) if name else ''}!")


def turn(agent: Any, user_id: str, thread: str, message: str) -> str:
    """One run of the agent for a user, in a thread; prints it and returns the reply."""
    config: Any = {"configurable": {"thread_id": thread}}
    earlier = len(agent.get_state(config).values.get("messages", []))
    out = agent.invoke(
        {"messages": [{"role": "user", "content": message}]},
        config=config,
        context=MemoryContext(user_id=user_id),
    )
    calls = [c["name"] for m in out["messages"][earlier:] if isinstance(m, AIMessage) for c in m.tool_calls]
    reply: str = out["messages"][-1].text
    print(f"  {user_id} > {message}")
    print(f"  {'agent':>{len(user_id)}} < {reply}" + (f"  [tools: {', '.join(calls)}]" if calls else ""))
    return reply


def main() -> None:
    memory = MemoryManager(db=temp_db())  # no model: the offline extractor learns explicit statements
    agent = create_agent(
        ScriptedChat(reply=assistant),
        system_prompt="You are a helpful data assistant.",
        middleware=[AgentMemMiddleware(memory, token_budget=400)],
        context_schema=MemoryContext,
        checkpointer=InMemorySaver(),  # threads keep their messages; memory outlives them
    )

    print("Monday (thread mon):")
    turn(agent, "sarah", "mon", "Hi, I'm Sarah, a data scientist at Acme. Keep answers short.")
    turn(agent, "sarah", "mon", "Remember that I use Polars.")
    show("Sarah's memory:", memory.compile(user_id="sarah"))

    print("\nTuesday (a new thread):")
    reply = turn(agent, "sarah", "tue", "How do I read a CSV?")
    other = turn(agent, "marco", "tue-marco", "How do I read a CSV?")

    state = memory.get(user_id="sarah")
    assert (state.profile.name, state.profile.role, state.profile.company) == (
        "Sarah",
        "data scientist",
        "Acme",
    )
    assert state.policies.response_style == "concise"
    assert [(k.text, k.source) for k in state.knowledge] == [("Uses Polars", "agentic")]
    assert reply == "Sarah, use pl.read_csv('data.csv')."
    assert other == "Use pd.read_csv('data.csv')."  # Marco's runs see none of Sarah's memory
    assert memory.get(user_id="marco").items == []


if __name__ == "__main__":
    main()
