"""From a validated model reply to merge patches, and what newer information overrides: each layer
turns its own part (``Layer.to_patch``, ``Layer.fresh``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..layers import Layer, Patch, ReplyContext
from ..records import MemoryItem, Usage
from .turns import Turn
from .wording import Attribution


def to_patches(
    layers: Sequence[Layer],
    sections: Mapping[str, Any],
    shown: Mapping[str, list[MemoryItem]],
    turns: Sequence[Turn],
    key: str,
    usage: Usage,
) -> list[tuple[str, Patch]]:
    """Turn the validated model output into merge patches: numbers mapped back to items; secrets,
    invalid values and what only the assistant said dropped (and counted in ``usage``)."""
    attribution = Attribution(turns)
    patches: list[tuple[str, Patch]] = []
    for layer in layers:
        check = attribution.misattributed if layer.from_user_only else _anyone
        context = ReplyContext(shown[layer.name], key, check, usage)
        patch = layer.to_patch(sections.get(layer.name), context)
        if patch is not None:
            patches.append((layer.name, patch))
    return patches


def _anyone(text: str) -> bool:
    return False


def not_stale(
    layers: Mapping[str, Layer], patches: list[tuple[str, Patch]], changed: set[tuple[str, str]], usage: Usage
) -> list[tuple[str, Patch]]:
    """Drop what the user changed after this input was read: the newer change wins."""
    fresh: list[tuple[str, Patch]] = []
    for name, patch in patches:
        kept, dropped = layers[name].fresh(patch, {key for layer, key in changed if layer == name})
        usage.drop("stale", dropped)
        if kept is not None:
            fresh.append((name, kept))
    return fresh
