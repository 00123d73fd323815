"""Merging changes into a write transaction: shared by manual writes and ``learn``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from ..records import Change
from ..store import Writer
from .base import Layer, Patch


def apply_patches(
    writer: Writer,
    layers: Mapping[str, Layer],
    patches: Sequence[tuple[str, Patch]],
    *,
    source: str,
    session_id: str | None,
    observed_at: datetime | None = None,
) -> list[Change]:
    """Merge each patch with its layer's live items in the writer's scope, and apply the result."""
    changes: list[Change] = []
    for name, patch in patches:
        ops = layers[name].merge(writer.live(name), patch, writer.now)
        changes.extend(writer.apply(name, ops, source=source, session_id=session_id, observed_at=observed_at))
    return changes
