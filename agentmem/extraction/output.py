"""The extraction reply: one pydantic model with each enabled layer's part (``Layer.reply_field``).

Its JSON Schema is the ``response_format`` sent to the model; the same model validates what comes back.
The schema sent is lean: the prompt already describes every field (each layer's template lists its
``fields`` with their docstrings), so the schema keeps only structure: no titles, descriptions or
defaults, an optional field is its type, not "that type or null" (leaving it out says the same), each
definition is written where it is used rather than named and referenced, and only the root says
"type": "object" (``properties`` says it below). A custom prompt template should list its layer's
``fields``: their descriptions travel nowhere else.
Stored items are referred to by short numbers (1, 2, 3 ...), never by stored ids, so a model cannot
invent an id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

from pydantic import BaseModel

from ..layers import Layer
from ..layers.schema import reply_model

_ANNOTATIONS = ("title", "description", "default")  # read by people and validators, not needed by a model


def build_output_model(layers: Sequence[Layer]) -> type[BaseModel]:
    """One reply model covering ``layers`` (all enabled layers, or one in per-layer mode)."""
    return reply_model("MemoryExtraction", {layer.name: layer.reply_field() for layer in layers})


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema sent to the model (as ``response_format``, or in the prompt in JSON mode)."""
    schema: dict[str, Any] = _implied_objects(_inlined(_lean(model.model_json_schema())), root=True)
    return schema


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with each ``$defs`` entry written where it is used: a reply uses each once, so the
    names and references are overhead (and some providers take no references). A definition that
    refers back to itself stays in ``$defs``."""
    defs: dict[str, Any] = schema.get("$defs", {})
    recursive: set[str] = set()

    def resolve(node: Any, within: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [resolve(item, within) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs:
            name = ref[8:]
            if name in within:
                recursive.add(name)
                return node
            rest = {key: resolve(value, within) for key, value in node.items() if key != "$ref"}
            return {**resolve(defs[name], within | {name}), **rest}
        return {key: resolve(value, within) for key, value in node.items()}

    inlined: dict[str, Any] = resolve({k: v for k, v in schema.items() if k != "$defs"}, frozenset())
    kept: dict[str, Any] = {}
    while missing := sorted(recursive - kept.keys()):
        kept |= {name: resolve(defs[name], frozenset({name})) for name in missing}
    return {**inlined, "$defs": kept} if kept else inlined


def _implied_objects(node: Any, *, root: bool = False, names: bool = False) -> Any:
    """``node`` without ``"type": "object"`` below the root where ``properties`` already says so
    (litellm puts it back for the providers that insist on it)."""
    if isinstance(node, list):
        return [_implied_objects(item) for item in node]
    if not isinstance(node, dict):
        return node
    implied = not root and not names and "properties" in node and node.get("type") == "object"
    return {
        key: _implied_objects(value, names=not names and key in ("properties", "$defs"))
        for key, value in node.items()
        if not (implied and key == "type")
    }


def _lean(node: Any, *, names: bool = False) -> Any:
    """``node`` without annotations, and its optional properties without their null alternative. Keys
    of a ``properties`` or ``$defs`` map are names, kept even when a field is called "title"."""
    if isinstance(node, list):
        return [_lean(item) for item in node]
    if not isinstance(node, dict):
        return node
    lean = {
        key: _lean(value, names=key in ("properties", "$defs"))
        for key, value in node.items()
        if names or key not in _ANNOTATIONS
    }
    if not names and isinstance(lean.get("properties"), dict):
        required = set(lean.get("required", ()))
        lean["properties"] = {
            name: value if name in required else _not_null(value)
            for name, value in lean["properties"].items()
        }
    return lean


def _not_null(prop: Any) -> Any:
    """An optional property's schema without "or null": leaving the field out says the same (a reply may
    still hold null; validation accepts it)."""
    options = prop.get("anyOf") if isinstance(prop, dict) else None
    if not isinstance(options, list) or len(options) != 2 or {"type": "null"} not in options:
        return prop
    (kept,) = (option for option in options if option != {"type": "null"})
    return {**{key: value for key, value in prop.items() if key != "anyOf"}, **kept}


def response_format(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAI-style ``json_schema`` response format for ``model``."""
    return {
        "type": "json_schema",
        "json_schema": {"name": "memory_extraction", "schema": json_schema(model), "strict": False},
    }


class ReplyFormat:
    """A reply model and what is sent for it: pydantic builds schemas slowly (milliseconds), so each is
    built once per manager, on first use. Each request gets its own copy of the ``response_format`` (a
    model may adapt it to its provider in place)."""

    def __init__(self, layers: Sequence[Layer]) -> None:
        self.model = build_output_model(layers)

    @cached_property
    def schema_text(self) -> str:
        """The JSON Schema as prompt text, for a model without JSON Schema support."""
        return json.dumps(json_schema(self.model), ensure_ascii=False, separators=(",", ":"))

    @cached_property
    def _response_format_text(self) -> str:
        return json.dumps(response_format(self.model), ensure_ascii=False)

    @property
    def response_format(self) -> Mapping[str, Any]:
        # Parsing the kept text is a deep copy at a fraction of what building the schema costs.
        parsed: dict[str, Any] = json.loads(self._response_format_text)
        return parsed
