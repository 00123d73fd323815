"""An agent's own memory, shared by all its users: how a compile shows it, and what ``learn`` may
generalise into it.

It is stored as the scope ``Scope.for_agent(agent_id)`` (rows with the reserved user id ``""``), so
every read, keyed by (user, agent), keeps it apart from every user's memory by construction.

Compile: the agent's memory is one element of its own, ``<agent_memory agent="...">``, before the
user's layers and never merged with them (first, so the part of a system message every user of the
agent shares stays one prefix for providers' prompt caches). Inside it, each layer is
``<agent_{layer}>``. Under a token budget it takes at most ``AGENT_MEMORY_SHARE`` of it; the user's
memory gets what it leaves (all of it when the agent has none).

Learn: a layer configured with ``LayerConfig(learn_for_agent=True)`` also applies what a learn with an
``agent_id`` extracts for it to that agent's memory: new values and entries only, never a retraction
or a replacement of the user's own items, and without the user's session.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

from .compiler import Reader, compile_context
from .layers import Layer, NewEntries, Patch
from .layers.changes import FieldPatch
from .scope import Scope
from .store import ContextRow, Top
from .text import xml_text
from .tokens import TokenCounter

AGENT_MEMORY_TAG = "agent_memory"
AGENT_MEMORY_SHARE = 0.25
"""The most of a compile's ``token_budget`` an agent's own memory takes next to a user's memory."""

ScopeReader = Callable[[Scope, Mapping[str, Top]], Sequence[ContextRow]]


def agent_tags(layers: Sequence[Layer]) -> dict[str, str]:
    """Each layer's element inside ``<agent_memory>``: ``agent_policies``, ``agent_knowledge`` ..."""
    return {layer.name: f"agent_{layer.name}" for layer in layers}


def _wrapped(agent_id: str, inner: str) -> str:
    agent = xml_text(agent_id).replace('"', "&quot;")
    return f'<{AGENT_MEMORY_TAG} agent="{agent}">\n{inner}\n</{AGENT_MEMORY_TAG}>'


def compile_scope(
    layers: Sequence[Layer],
    scope: Scope,
    read: ScopeReader,
    *,
    token_budget: int | None,
    count_tokens: TokenCounter,
) -> str:
    """The scope's context: the agent's own memory (for a user's scope with an ``agent_id``, or an
    agent's scope) as its own element, then the user's layers; within ``token_budget`` tokens."""

    def part(target: Scope, budget: int | None, tags: Mapping[str, str] | None = None) -> str:
        reader: Reader = lambda top: read(target, top)  # noqa: E731 - bound to its scope
        return compile_context(layers, reader, token_budget=budget, count_tokens=count_tokens, tags=tags)

    agent = scope if scope.kind == "agent" else scope.agent_memory
    block = ""
    if agent is not None:
        agent_id = agent.agent_id
        assert agent_id is not None

        def agent_block(budget: int | None) -> str:
            inner = part(agent, budget, agent_tags(layers))
            return _wrapped(agent_id, inner) if inner else ""

        if token_budget is None:
            block = agent_block(None)
        else:
            limit = token_budget if scope.kind == "agent" else int(token_budget * AGENT_MEMORY_SHARE)
            start = limit - count_tokens(_wrapped(agent_id, ""))
            block = _fitted(agent_block, start, limit, count_tokens)
    if scope.kind == "agent":
        return block

    def joined(budget: int | None) -> str:
        user = part(scope, budget) if budget != 0 else ""
        return "\n".join(text for text in (block, user) if text)

    if token_budget is None:
        return joined(None)
    start = token_budget - (count_tokens(block + "\n") if block else 0)
    return _fitted(joined, start, token_budget, count_tokens)


def _fitted(render: Callable[[int], str], start: int, limit: int, count_tokens: TokenCounter) -> str:
    """``render(budget)`` for a budget from ``start`` down that fits ``limit`` tokens: the parts' token
    counts seldom add up exactly across a join, so an output over the limit is rendered again with the
    difference taken off. ``render(0)`` must fit."""
    budget = start
    while True:
        output = render(max(budget, 0))
        over = count_tokens(output) - limit
        if over <= 0 or budget <= 0:
            return output
        budget -= over


def generalised(patch: Patch) -> Patch | None:
    """What of a learned patch may go into the agent's own memory: the new values and entries, with
    no link to the user's items (``replaces``) and no occurrence (it would name the user's input);
    never a retraction, which is about the user's own memory. None when nothing is left."""
    if isinstance(patch, FieldPatch):
        if not patch.values:
            return None
        return dataclasses.replace(patch, remove=())
    entries = tuple(dataclasses.replace(e, replaces=None, occurrence=None) for e in patch.entries)
    return NewEntries(entries) if entries else None
