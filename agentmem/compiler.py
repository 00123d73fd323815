"""Compile a scope's live items into the escaped XML block for a system message.

One element per non-empty layer (its ``tag``), in authority order; each layer orders its own lines
(``Layer.order``: profile and policies by field, knowledge and feedback by relevance to the query, then
recency) and says whether they are bullets. Under a token budget the output is the longest prefix of a
priority order that fits: the pinned layers' lines (profile, policies) first, then every other line from
best- to worst-ranked; so the lowest-ranked items drop first and pinned layers last. A layer's
``budget_share`` caps what it may take. Same rows and arguments, byte-identical output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .layers import Layer
from .scope import prefer_agent
from .store import ContextRow
from .text import xml_text
from .tokens import TokenCounter


@dataclass(frozen=True, slots=True, eq=False)
class _Line:
    layer: str
    raw: str  # escaped only when rendered: under a budget most lines never are
    bullet: bool
    score: float
    recency: Any  # updated_at as the backend returns it: comparable within one database

    @property
    def text(self) -> str:
        return ("- " if self.bullet else "") + xml_text(self.raw)


def _ordered_lines(layer: Layer, rows: list[ContextRow]) -> list[_Line]:
    return [_Line(layer.name, r.line, layer.bullets, r.score, r.updated_at) for r in layer.order(rows)]


def _render(layers: Sequence[Layer], lines: Sequence[_Line]) -> str:
    blocks = []
    for layer in layers:
        body = [line.text for line in lines if line.layer == layer.name]
        if body:
            blocks.append(f"<{layer.tag}>\n" + "\n".join(body) + f"\n</{layer.tag}>")
    return "\n".join(blocks)


def _priority(layers: Sequence[Layer], per_layer: Mapping[str, list[_Line]]) -> list[_Line]:
    """Pinned layers first (authority order), then every other line by relevance, then recency."""
    first = [line for layer in layers if layer.pinned for line in per_layer[layer.name]]
    rest = [line for layer in layers if not layer.pinned for line in per_layer[layer.name]]
    rest.sort(key=lambda line: line.recency, reverse=True)  # stable: each layer's own order breaks ties
    rest.sort(key=lambda line: line.score, reverse=True)
    return first + rest


def compile_context(
    layers: Sequence[Layer],
    rows: Sequence[ContextRow],
    *,
    token_budget: int | None,
    count_tokens: TokenCounter,
) -> str:
    """Render ``rows`` for ``layers`` (authority order) within ``token_budget`` tokens."""
    live = prefer_agent(rows)
    per_layer = {
        layer.name: _ordered_lines(layer, [r for r in live if r.layer == layer.name]) for layer in layers
    }
    everything = [line for layer in layers for line in per_layer[layer.name]]
    if token_budget is None:
        return _render(layers, everything)

    tag_cost = {layer.name: count_tokens(f"<{layer.tag}>\n\n</{layer.tag}>\n") for layer in layers}
    shares = {layer.name: layer.config.budget_share for layer in layers}
    used: dict[str, int] = {}
    total = 0
    kept: list[_Line] = []
    for line in _priority(layers, per_layer):
        cost = count_tokens(line.text + "\n") + (0 if line.layer in used else tag_cost[line.layer])
        share = shares.get(line.layer)
        over_share = share is not None and used.get(line.layer, 0) + cost > share * token_budget
        if over_share:
            continue  # this layer is full; others may still fit
        if total + cost > token_budget:
            break
        kept.append(line)
        used[line.layer] = used.get(line.layer, 0) + cost
        total += cost
    # The per-line sum is an estimate; the rendered text is what must fit. Drop from the end until it does.
    output = _render(layers, _in_order(everything, kept))
    while kept and count_tokens(output) > token_budget:
        kept.pop()
        output = _render(layers, _in_order(everything, kept))
    return output


def _in_order(everything: list[_Line], kept: list[_Line]) -> list[_Line]:
    chosen = set(map(id, kept))
    return [line for line in everything if id(line) in chosen]
