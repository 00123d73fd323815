"""One report of a compiled context, shared by ``GET /v1/users/{user_id}/context`` and the inspector's
context preview, so both say the same thing with one definition of each number.

The library has no compile report, so it is made here from ``MemoryManager.compile``'s XML and the
lines compile chose from:

- a **candidate line** is a live item of an injected layer that the scope reads (the agent's own memory
  too, with an agent), as the compile reads them (the narrowest scope's item of a key hides the others);
- it is **included** when its rendered line is among the lines of its part of the XML (the agent's own
  memory, or the user's); else it is **dropped** (the budget left it out);
- an **element** is one layer's XML element in one part: its tokens (tags included, by the memory's own
  token counter, the one the budget is kept with), its included lines and its dropped ones. A layer
  whose every line was dropped is an element with no tag and 0 tokens.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..agent_memory import agent_tags
from ..compiler import line_text
from ..manager import MemoryManager
from ..scope import Scope

Part = Literal["user", "agent"]
_ELEMENT = re.compile(r"<([a-z_][a-z0-9_]*)>\n(.*?)\n</\1>", re.DOTALL)
_AGENT_END = "</agent_memory>"


@dataclass(frozen=True)
class ContextLine:
    """One candidate line and whether the compiled XML holds it."""

    layer: str
    memory: Part
    """``"agent"``: the agent's own memory (shared by all its users); ``"user"``: the user's."""
    item_id: str
    text: str
    score: float
    """Relevance to the query (0 without one)."""
    agent_id: str | None
    """The agent whose private memory holds it; ``None``: shared."""
    included: bool


@dataclass(frozen=True)
class ContextElement:
    """One layer's element of one part of the XML."""

    layer: str
    memory: Part
    tag: str
    """The XML element's name; ``""`` when every line of the layer was dropped."""
    tokens: int
    lines: int
    """The lines the element holds (each an included candidate)."""
    dropped: int
    """Candidate lines the budget left out (0 when the report was made without its candidates)."""


@dataclass(frozen=True)
class ContextReport:
    xml: str
    """Exactly what ``compile`` returned."""
    tokens: int
    token_budget: int | None
    elements: list[ContextElement]
    """In the order the XML renders them; then layers with dropped lines only."""
    lines: list[ContextLine]
    """Every candidate, by part (the agent's first), layer (in the memory's order) and score; empty
    when the report was made without them."""

    @property
    def included(self) -> list[ContextLine]:
        return [line for line in self.lines if line.included]

    @property
    def dropped(self) -> list[ContextLine]:
        return [line for line in self.lines if not line.included]


def context_report(
    memory: MemoryManager,
    *,
    user_id: str,
    agent_id: str | None,
    session_id: str | None,
    query: str | None,
    token_budget: int | None,
    candidates: bool = True,
    topics: Sequence[str] | None = None,
) -> ContextReport:
    """``memory.compile(...)`` for these arguments, and what it is made of (see the module docstring).
    ``candidates=False`` leaves out the candidate lines (and so the dropped counts): finding them reads
    every live item of the scope, where the budgeted compile reads only what its budget can reach.

    Raises:
        InvalidInputError: bad ids, query, budget or topics (compile's own checks).
    """
    xml = memory.compile(
        user_id=user_id,
        agent_id=agent_id,
        session_id=session_id,
        query=query,
        token_budget=token_budget,
        topics=topics,
    )
    scope = Scope.of(user_id, agent_id, session_id)
    names = [name for name, layer in memory.layers.items() if layer.config.inject]
    # Scored as the compile scored them: by meaning too (the query's vector is the compile's, kept by
    # the store), and of the topics asked for.
    dense = memory._store.dense_for(query) if candidates else None
    wanted = memory._topic_filter(topics, [memory.layers[name] for name in names])
    agent_xml, user_xml = "", xml
    if scope.agent_memory is not None and xml.startswith("<agent_memory"):
        end = xml.find(_AGENT_END) + len(_AGENT_END)
        agent_xml, user_xml = xml[:end], xml[end:]
    parts: list[tuple[Part, Scope, str]] = [("user", scope, user_xml)]
    if scope.agent_memory is not None:
        parts.insert(0, ("agent", scope.agent_memory, agent_xml))
    tags = {
        "agent": agent_tags(list(memory.layers.values())),
        "user": {name: layer.tag for name, layer in memory.layers.items()},
    }
    lines: list[ContextLine] = []
    elements: list[ContextElement] = []
    leftover: list[ContextElement] = []
    for kind, part_scope, text in parts:
        rendered_lines = set(text.split("\n"))
        # The compile's own read (no public equivalent yet: see the report of fix-routes).
        rows = (
            memory._store.context_rows(part_scope, names, query, topics=wanted, dense=dense)
            if candidates
            else []
        )
        part_lines = [
            ContextLine(
                layer=row.layer,
                memory=kind,
                item_id=row.id,
                text=row.line,
                score=row.score,
                agent_id=row.agent_id or None,
                included=line_text(memory.layers[row.layer], row.line) in rendered_lines,
            )
            for row in sorted(rows, key=lambda r: (names.index(r.layer), -r.score))
        ]
        lines += part_lines
        layer_of = {tag: name for name, tag in tags[kind].items()}
        seen = set()
        for match in _ELEMENT.finditer(text):
            layer = layer_of.get(match.group(1))
            if layer is None or layer in seen:
                continue
            seen.add(layer)
            mine = [line for line in part_lines if line.layer == layer]
            elements.append(
                ContextElement(
                    layer=layer,
                    memory=kind,
                    tag=match.group(1),
                    tokens=memory.count_tokens(match.group(0)),
                    lines=sum(line.included for line in mine),
                    dropped=sum(not line.included for line in mine),
                )
            )
        for layer in names:
            dropped = sum(1 for line in part_lines if line.layer == layer and not line.included)
            if layer not in seen and dropped:
                leftover.append(ContextElement(layer, kind, "", 0, 0, dropped))
    return ContextReport(
        xml=xml,
        tokens=memory.count_tokens(xml) if xml else 0,
        token_budget=token_budget,
        elements=elements + leftover,
        lines=lines,
    )
