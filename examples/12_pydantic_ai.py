"""12 - pydantic-ai: one agent, many users, each with their own memory.

``MemoryCapability`` gives a pydantic-ai agent, for the user of each run (read from the run's deps):
their memory compiled for the prompt in the instructions, the memory tools bound to them, and learning
from the finished run. Priya introduces herself (learned after the run) and asks the assistant to
remember a fact (the model calls ``memory_remember``); Tomás, served by the same agent at the same
time, gets none of it. In her next run, the model's instructions hold what it learned.

The agent's model here is pydantic-ai's ``FunctionModel`` with a small function standing in for an LLM;
in your code it is any pydantic-ai model ("openai:gpt-4o-mini", ...).

Run: python examples/12_pydantic_ai.py   (offline; needs the pydantic-ai extra; set AGENTMEM_MODEL to
learn with a real model, see examples/_support.py)
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from _support import OFFLINE, memory_model, show, temp_db
from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from agentmem import MemoryManager
from agentmem.integrations.pydantic_ai import MemoryCapability


@dataclass
class Deps:
    """What your app knows about the request: here, who is asking."""

    user_id: str


def assistant(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """The offline stand-in for the LLM: it reads its instructions and calls memory tools when asked."""
    last = messages[-1]
    if isinstance(last, ModelRequest) and any(isinstance(p, ToolReturnPart) for p in last.parts):
        return ModelResponse(parts=[TextPart("Got it, I'll remember that.")])
    said = next(str(p.content) for p in last.parts if isinstance(p, UserPromptPart))
    if found := re.match(r"Remember that (.+?)\.?$", said):
        fact = {"layer": "knowledge", "value": found.group(1)}
        return ModelResponse(parts=[ToolCallPart("memory_remember", fact)])
    name = re.search(r"^name: (.+)$", info.instructions or "", re.MULTILINE)
    return ModelResponse(parts=[TextPart(f"Hello{', ' + name.group(1) if name else ''}! How can I help?")])


async def main() -> None:
    mem = MemoryManager(db=temp_db(), **memory_model())
    agent = Agent(
        FunctionModel(assistant),
        deps_type=Deps,
        instructions="You are a friendly travel assistant.",
        capabilities=[MemoryCapability(mem, user_id=lambda ctx: ctx.deps.user_id)],
    )

    async def chat(user_id: str, prompt: str) -> str:
        result = await agent.run(prompt, deps=Deps(user_id))
        print(f"  {user_id} > {prompt}\n  {'agent':>{len(user_id)}} < {result.output}")
        return result.output

    print("Two users at once, one agent:")
    await asyncio.gather(
        chat("priya", "Hi, my name is Priya and I live in Berlin."),
        chat("tomas", "Remember that I travel with a bicycle."),
    )
    await chat("priya", "Remember that I am vegetarian.")
    show("Priya's memory:", mem.compile(user_id="priya"))
    show("Tomás's memory:", mem.compile(user_id="tomas"))

    print("\nPriya, the next day:")
    greeting = await chat("priya", "Can you suggest a weekend trip?")

    priya, tomas = mem.get(user_id="priya"), mem.get(user_id="tomas")
    # Whatever the models decided, each user's memory holds only what that user said.
    assert "bicycle" not in mem.compile(user_id="priya")
    assert "Priya" not in mem.compile(user_id="tomas")
    assert [fact.text for fact in priya.knowledge] == ["I am vegetarian"]  # the tool call, scripted here
    assert [fact.text for fact in tomas.knowledge] == ["I travel with a bicycle"]
    if OFFLINE:  # learned after the run by the offline extractor; a real model may word it otherwise
        assert (priya.profile.name, priya.profile.location) == ("Priya", "Berlin")
        assert greeting == "Hello, Priya! How can I help?"
    mem.close()


if __name__ == "__main__":
    asyncio.run(main())
