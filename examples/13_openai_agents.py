"""13 - OpenAI Agents SDK: an SDK agent that remembers its users.

Ana talks to a meal-planning assistant written with the OpenAI Agents SDK. ``AgentMemory`` gives the
SDK agent everything it needs from agentmem: instructions that carry the user's memory, the memory
tools, run hooks that learn after every run, and a ``Session`` that keeps the conversation in agentmem.
The next day, in a new session, the assistant already knows who Ana is and what she eats; Ben, another
user of the same agent, gets none of it.

Offline: the SDK's model talks to a LoopbackServer on 127.0.0.1 (an OpenAI-compatible server that plays
the model from a small function below) and the memory learns with the built-in offline extractor. With
a real model, give ``OpenAIChatCompletionsModel`` a real ``AsyncOpenAI()`` client (or pass a model name
such as ``"gpt-4o-mini"`` to ``Agent``) and keep everything else.

Run: python examples/13_openai_agents.py
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from _support import show, temp_db
from agents import Agent, OpenAIChatCompletionsModel, Runner, set_tracing_disabled
from openai import AsyncOpenAI

from agentmem import MemoryManager
from agentmem.integrations.openai_agents import AgentMemory
from agentmem.testing import LoopbackServer, ToolCall


@dataclass
class AppContext:
    """What the application knows about the request; AgentMemory reads ``user_id`` from it."""

    user_id: str


def model(body: dict[str, Any]) -> str | ToolCall:
    """The offline stand-in for the LLM: it reads the system message the way a model would."""
    messages = body["messages"]
    system = str(messages[0]["content"]) if messages[0]["role"] == "system" else ""
    last = messages[-1]
    if last["role"] == "tool":
        return "Noted."
    said = str(last["content"])
    if found := re.match(r"Remember that (?:I'm|I am) (.+?)\.?$", said):
        return ToolCall("memory_remember", {"layer": "knowledge", "value": f"Is {found.group(1)}"})
    if "dinner" in said:
        name = re.search(r"^name: (.+)$", system, re.MULTILINE)
        hello = f"{name.group(1)}: " if name else ""
        if "vegetarian" in system:
            return hello + "mushroom risotto or a chickpea curry."
        return hello + "how about grilled salmon?"
    return "Nice to meet you!"


async def turn(agent: Agent[AppContext], am: AgentMemory, user_id: str, session_id: str, text: str) -> None:
    result = await Runner.run(
        agent,
        text,
        context=AppContext(user_id),
        hooks=am.hooks,  # learns from the run once it has its final output
        session=am.session(user_id, session_id),  # the conversation, kept in agentmem
    )
    print(f"  {user_id} > {text}")
    print(f"  {'agent':>{len(user_id)}} < {result.final_output}")


async def main() -> None:
    set_tracing_disabled(True)  # the SDK would otherwise send traces to OpenAI
    memory = MemoryManager(db=temp_db())
    am = AgentMemory(memory)  # whose memory: the run context's user_id, resolved per run

    with LoopbackServer(model) as server:
        client = AsyncOpenAI(base_url=server.url, api_key="offline")
        agent = Agent[AppContext](
            name="meal planner",
            instructions=am.instructions("You suggest meals. Answer in one sentence."),
            tools=am.tools(),  # memory_remember, memory_update, memory_forget, memory_search
            model=OpenAIChatCompletionsModel(model="offline-model", openai_client=client),
        )

        print("Day 1:")
        await turn(agent, am, "ana", "day-1", "Hi! I'm Ana, a nurse in Porto. Please keep answers short.")
        await turn(agent, am, "ana", "day-1", "Remember that I'm vegetarian.")

        print("\nDay 2, a new session:")
        await turn(agent, am, "ana", "day-2", "Any dinner ideas?")
        await turn(agent, am, "ben", "day-2", "Any dinner ideas?")
        system = str(server.requests[-2]["messages"][0]["content"])

    show("What Ana's day-2 system message carried:", system)
    state = memory.get(user_id="ana")
    assert (state.profile.name, state.profile.role) == ("Ana", "nurse")  # learned by the hooks
    assert state.policies.response_style == "concise"
    assert [i.text for i in state.knowledge] == ["Is vegetarian"]  # written by the memory tool
    assert "vegetarian" in system
    assert memory.get(user_id="ben").items == []  # Ben's runs never saw or wrote Ana's memory

    day_1 = await am.session("ana", "day-1").get_items()
    kinds = [item.get("type", "message") for item in day_1]
    print(f"\nAna's day-1 session holds {len(day_1)} items: {', '.join(kinds)}")
    assert kinds == ["message", "message", "message", "function_call", "function_call_output", "message"]
    memory.close()


if __name__ == "__main__":
    asyncio.run(main())
