"""The extraction output: a pydantic model built from the enabled layers' dataclass schemas.

Its JSON Schema is the ``response_format`` sent to the model (field docstrings become descriptions);
the same model validates what comes back. Items are referred to by short aliases (1, 2, 3 ...), never
by stored ids, so a model cannot invent an id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..errors import ConfigurationError
from ..layers.base import Layer

RESERVED = ("replaces",)


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")  # tolerate chatty extra keys; validate what we use


def _field_spec(layer: Layer, name: str, *, optional: bool) -> tuple[Any, Any]:
    spec = layer.schema.fields[name]
    description = spec.description or None
    if optional:  # a document's fields are all optional in a change: absent means "no news"
        return spec.annotation | None, Field(None, description=description)
    f = next(f for f in dataclasses.fields(layer.schema.cls) if f.name == name)
    if f.default is not dataclasses.MISSING:
        return spec.annotation, Field(f.default, description=description)
    if f.default_factory is not dataclasses.MISSING:
        return spec.annotation, Field(default_factory=f.default_factory, description=description)
    return spec.annotation, Field(description=description)


def _model(name: str, fields: dict[str, Any]) -> type[BaseModel]:
    return create_model(name, __base__=_Out, **fields)


def _document_model(layer: Layer) -> type[BaseModel]:
    return _model(
        f"{layer.name.title()}Values", {n: _field_spec(layer, n, optional=True) for n in layer.schema.fields}
    )


def _entry_model(layer: Layer) -> type[BaseModel]:
    clash = [name for name in RESERVED if name in layer.schema.fields]
    if clash:
        raise ConfigurationError(f"{layer.name} schema may not use the reserved field name(s) {clash}")
    fields = {name: _field_spec(layer, name, optional=False) for name in layer.schema.fields}
    fields["replaces"] = (
        int | None,
        Field(None, description="Number of the stored entry this one contradicts and replaces, if any."),
    )
    return _model(f"{layer.name.title()}Entry", fields)


def _policies_model(layer: Layer) -> type[BaseModel]:
    keys: Any = Literal[tuple(layer.schema.fields)]
    return _model(
        "PoliciesChange",
        {
            "set": (
                _document_model(layer) | None,
                Field(None, description="Rules the user explicitly stated."),
            ),
            "remove": (
                list[keys],
                Field(default_factory=list, description="Rules the user explicitly withdrew."),
            ),
        },
    )


def build_output_model(layers: Sequence[Layer]) -> type[BaseModel]:
    """One response model covering ``layers`` (all enabled layers, or one in per-layer mode)."""
    fields: dict[str, Any] = {}
    for layer in layers:
        if layer.name == "policies":
            fields[layer.name] = (_policies_model(layer) | None, None)
        elif layer.kind == "document":
            fields[layer.name] = (_document_model(layer) | None, None)
        else:
            entry: Any = _entry_model(layer)
            fields[layer.name] = (list[entry], Field(default_factory=list))
    return _model("MemoryExtraction", fields)


def _untitled(node: Any, *, names: bool = False) -> Any:
    """The schema without pydantic's ``title`` annotations: tokens a model does not need. Keys of a
    ``properties`` map are field names, kept even when a field is called "title"."""
    if isinstance(node, dict):
        return {
            key: _untitled(value, names=key in ("properties", "$defs"))
            for key, value in node.items()
            if names or key != "title"
        }
    if isinstance(node, list):
        return [_untitled(item) for item in node]
    return node


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema sent to the model (as ``response_format``, or in the prompt in JSON mode)."""
    schema: dict[str, Any] = _untitled(model.model_json_schema())
    return schema


def response_format(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAI-style ``json_schema`` response format for ``model``."""
    return {
        "type": "json_schema",
        "json_schema": {"name": "memory_extraction", "schema": json_schema(model), "strict": False},
    }


def dump(values: BaseModel | None) -> Mapping[str, Any]:
    return {} if values is None else values.model_dump(exclude_none=True)
