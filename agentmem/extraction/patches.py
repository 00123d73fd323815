"""From a validated model reply to merge patches, and what newer information overrides: each layer
turns its own part (``Layer.to_patch``, ``Layer.fresh``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from ..layers import Layer, NewEntries, Patch, ReplyContext
from ..records import MemoryItem, Usage
from .turns import Turn
from .wording import Attribution

MAX_CHANGES_PER_LEARN = 50
"""Changes (entries, field values, removals) taken from one learn's reply; the rest are dropped as
"over_cap". It bounds the merge and the write lock however much a model writes."""


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
    return capped(patches, MAX_CHANGES_PER_LEARN, usage)


def capped(patches: list[tuple[str, Patch]], cap: int, usage: Usage) -> list[tuple[str, Patch]]:
    """The first ``cap`` changes of the patches, in layer order; the rest counted as dropped."""
    kept: list[tuple[str, Patch]] = []
    left = cap
    for name, patch in patches:
        taken = _first(patch, left)
        size = _size(taken) if taken is not None else 0
        usage.drop("over_cap", _size(patch) - size)
        left -= size
        if taken is not None:
            kept.append((name, taken))
    return kept


def _size(patch: Patch) -> int:
    if isinstance(patch, NewEntries):
        return len(patch.entries)
    return len(patch.values) + len(patch.remove)


def _first(patch: Patch, n: int) -> Patch | None:
    """The patch cut to its first ``n`` changes (field values before removals); None if nothing stays."""
    if _size(patch) <= n:
        return patch
    if n <= 0:
        return None
    if isinstance(patch, NewEntries):
        return NewEntries(patch.entries[:n])
    values = dict(list(patch.values.items())[:n])
    remove = patch.remove[: n - len(values)]
    return dataclasses.replace(patch, values=values, remove=remove)


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
