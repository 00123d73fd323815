"""Compile a scope's live items into the escaped XML block for a system message.

One element per non-empty layer (its ``tag``), in authority order; each layer orders its own lines
(``Layer.order``: profile and policies by field, knowledge and feedback by relevance to the query, then
recency) and says whether they are bullets. Under a token budget the output is the longest prefix of a
priority order that fits: the pinned layers' lines (profile, policies) first, then every other line from
best- to worst-ranked; so the lowest-ranked items drop first and pinned layers last. A layer's
``budget_share`` caps what it may take. Same rows and arguments, byte-identical output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from .layers import Layer
from .store import ContextRow, Top
from .text import xml_text
from .tokens import TokenCounter

MIN_READ = 16
LINE_TOKENS = 16
"""A ranked layer's first read under a budget is as many rows as the budget holds lines of this many
tokens (at least ``MIN_READ``): one read for most budgets; layers of shorter lines page up."""
GROWTH = 4

Reader = Callable[[Mapping[str, Top]], Sequence[ContextRow]]
"""Reads the scope's live rows (agents' hiding shared ones with the same key): only the top rows of the
layers given, the others whole."""


class _Line(NamedTuple):  # a tuple: a compile builds one per row, and a dataclass costs 3x to build
    layer: str
    raw: str  # escaped only when rendered: under a budget most lines never are
    bullet: bool
    score: float
    recency: Any  # updated_at as the backend returns it: comparable within one database
    heading: str | None  # rendered once above the lines of its layer that share it (Layer.heading)

    @property
    def text(self) -> str:
        return _written(self.bullet, self.raw)


def _line(layer: Layer, row: ContextRow) -> _Line:
    heading, rest = _headed(layer, row.line)
    return _Line(layer.name, rest, layer.bullets, row.score, row.updated_at, heading)


def line_text(layer: Layer, line: str) -> str:
    """A stored line as compile writes it in its layer's element: escaped, a bullet when the layer has
    them, without its heading (written once above the lines that share it, see ``Layer.heading``)."""
    return _written(layer.bullets, _headed(layer, line)[1])


def _headed(layer: Layer, line: str) -> tuple[str | None, str]:
    return layer.heading(line) or (None, line)


def _texted(layer: Layer, rows: Iterable[ContextRow]) -> list[tuple[str | None, str]]:
    """The rows' headings and lines as written (``line_text``)."""
    texts: list[tuple[str | None, str]] = []
    for row in rows:
        heading, rest = _headed(layer, row.line)
        texts.append((heading, _written(layer.bullets, rest)))
    return texts


def _written(bullet: bool, raw: str) -> str:
    return ("- " if bullet else "") + xml_text(raw)


def _by_layer(layers: Sequence[Layer], rows: Sequence[ContextRow]) -> dict[str, list[ContextRow]]:
    """Each layer's rows, in its own order."""
    of: dict[str, list[ContextRow]] = {layer.name: [] for layer in layers}
    for row in rows:
        of[row.layer].append(row)
    return {layer.name: layer.order(of[layer.name]) for layer in layers}


def _per_layer(layers: Sequence[Layer], rows: Sequence[ContextRow]) -> dict[str, list[_Line]]:
    """Each layer's lines, in its own order."""
    of = _by_layer(layers, rows)
    return {layer.name: [_line(layer, row) for row in of[layer.name]] for layer in layers}


def _body(lines: Iterable[tuple[str | None, str]]) -> list[str]:
    """One layer's lines (heading, text) as rendered: the lines without a heading first, then each
    heading (in the order its first line comes) above its lines, each in the layer's order."""
    groups: dict[str | None, list[str]] = {None: []}
    for heading, text in lines:
        groups.setdefault(heading, []).append(text)
    return [
        text
        for heading, texts in groups.items()
        for text in ([] if heading is None else [xml_text(heading)]) + texts
    ]


def _render(layers: Sequence[Layer], lines: Sequence[_Line], tags: Mapping[str, str], elements: bool) -> str:
    of: dict[str, list[tuple[str | None, str]]] = {layer.name: [] for layer in layers}
    for line in lines:
        of[line.layer].append((line.heading, line.text))
    return _rendered(layers, of, tags, elements)


def _rendered(
    layers: Sequence[Layer],
    of: Mapping[str, Iterable[tuple[str | None, str]]],
    tags: Mapping[str, str],
    elements: bool,
) -> str:
    """Each layer's lines (heading, text) in its element, or alone."""
    blocks = []
    for layer in layers:
        body = _body(of[layer.name])
        if not elements:  # the lines alone (a template places them), still one escaped line each
            blocks += body
        elif body:
            tag = tags[layer.name]
            blocks.append(f"<{tag}>\n" + "\n".join(body) + f"\n</{tag}>")
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
    read: Reader,
    *,
    token_budget: int | None,
    count_tokens: TokenCounter,
    tags: Mapping[str, str] | None = None,
    elements: bool = True,
) -> str:
    """Render the rows ``read`` gives for ``layers`` (authority order) within ``token_budget`` tokens;
    each layer in its element, or with ``elements=False`` its lines alone.

    ``tags``: each layer's element name, by layer name (default: the layer's ``tag``).

    Under a budget, ranked layers (``Layer.ranked_in_sql``) are read only as far as the budget can
    reach: their top rows first, more when the budget went through every row read of a layer that has
    more. The output is the one reading every row gives, byte for byte.
    """
    tags = tags or {layer.name: layer.tag for layer in layers}
    if token_budget is None:  # every line: no priority to weigh, so no _Line to build (1,200: 0.4 ms)
        of = _by_layer(layers, read({}))
        return _rendered(
            layers, {layer.name: _texted(layer, of[layer.name]) for layer in layers}, tags, elements
        )
    top = {
        layer.name: Top(max(MIN_READ, token_budget // LINE_TOKENS), layer.rank_by_count)
        for layer in layers
        if layer.ranked_in_sql and not layer.pinned
    }
    while True:
        per_layer = _per_layer(layers, read(top))
        kept, reached = _fit(layers, per_layer, token_budget, count_tokens, tags)
        # A layer read up to its limit may have more rows, which rank after all of it: when the budget
        # went through all of it, they could have been taken. Read more of those layers and fit again.
        short = [name for name, part in top.items() if len(per_layer[name]) == part.limit and name in reached]
        if not short:
            break
        top.update({name: top[name]._replace(limit=top[name].limit * GROWTH) for name in short})
    everything = [line for layer in layers for line in per_layer[layer.name]]
    # The per-line sum is an estimate; the rendered text is what must fit. Drop from the end until it does.
    output = _render(layers, _in_order(everything, kept), tags, elements)
    while kept and count_tokens(output) > token_budget:
        kept.pop()
        output = _render(layers, _in_order(everything, kept), tags, elements)
    return output


def _fit(
    layers: Sequence[Layer],
    per_layer: Mapping[str, list[_Line]],
    token_budget: int,
    count_tokens: TokenCounter,
    tags: Mapping[str, str],
) -> tuple[list[_Line], set[str]]:
    """The lines the budget keeps, in priority order, and the layers whose every line it went through."""
    tag_cost = {name: count_tokens(f"<{tag}>\n\n</{tag}>\n") for name, tag in tags.items()}
    shares = {layer.name: layer.config.budget_share for layer in layers}
    left = {name: len(lines) for name, lines in per_layer.items()}
    used: dict[str, int] = {}
    headed: set[tuple[str, str | None]] = {(name, None) for name in tags}
    total = 0
    kept: list[_Line] = []
    for line in _priority(layers, per_layer):
        cost = count_tokens(line.text + "\n") + (0 if line.layer in used else tag_cost[line.layer])
        if (line.layer, line.heading) not in headed:
            assert line.heading is not None
            cost += count_tokens(xml_text(line.heading) + "\n")
        share = shares.get(line.layer)
        over_share = share is not None and used.get(line.layer, 0) + cost > share * token_budget
        if not over_share and total + cost > token_budget:
            break
        left[line.layer] -= 1
        if over_share:
            continue  # this layer is full; others may still fit
        kept.append(line)
        headed.add((line.layer, line.heading))
        used[line.layer] = used.get(line.layer, 0) + cost
        total += cost
    return kept, {name for name, n in left.items() if n == 0}


def _in_order(everything: list[_Line], kept: list[_Line]) -> list[_Line]:
    chosen = set(map(id, kept))
    return [line for line in everything if id(line) in chosen]
