"""The extraction reply: one pydantic model with each enabled layer's part (``Layer.reply_field``).

Its JSON Schema is the ``response_format`` sent to the model (field docstrings become descriptions);
the same model validates what comes back. Stored items are referred to by short numbers (1, 2, 3 ...),
never by stored ids, so a model cannot invent an id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from ..layers import Layer
from ..layers.schema import reply_model, untitled


def build_output_model(layers: Sequence[Layer]) -> type[BaseModel]:
    """One reply model covering ``layers`` (all enabled layers, or one in per-layer mode)."""
    return reply_model("MemoryExtraction", {layer.name: layer.reply_field() for layer in layers})


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema sent to the model (as ``response_format``, or in the prompt in JSON mode)."""
    schema: dict[str, Any] = untitled(model.model_json_schema())
    return schema


def response_format(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAI-style ``json_schema`` response format for ``model``."""
    return {
        "type": "json_schema",
        "json_schema": {"name": "memory_extraction", "schema": json_schema(model), "strict": False},
    }
