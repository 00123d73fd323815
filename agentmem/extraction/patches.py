"""From a validated model reply to merge patches, and what newer information overrides."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..errors import InvalidInputError, SecretError
from ..layers.base import Entry, FieldPatch, Layer, NewEntries, Patch, display
from ..layers.collection import CollectionLayer
from ..records import MemoryItem, Usage
from ..text import one_line
from .output import dump
from .turns import Turn
from .wording import Attribution


def to_patches(
    layers: Sequence[Layer],
    sections: Mapping[str, Any],
    current: Mapping[str, list[MemoryItem]],
    turns: Sequence[Turn],
    key: str,
    usage: Usage,
) -> list[tuple[str, Patch]]:
    """Turn the validated model output into merge patches: aliases mapped back to ids; secrets,
    invalid values and what only the assistant said dropped (and counted in ``usage``)."""
    attribution = Attribution(turns)
    patches: list[tuple[str, Patch]] = []
    for layer in layers:
        section = sections.get(layer.name)
        checks_source = layer.name != "feedback"  # feedback is about the assistant's answer by nature
        if layer.kind == "document":
            values, remove = (
                (dump(section.set), tuple(section.remove))
                if layer.name == "policies" and section
                else (dump(section), ())
            )
            clean = {}
            for name, value in values.items():
                if checks_source and attribution.misattributed(display(value)):
                    usage.drop("misattributed")
                    continue
                checked = _checked(usage, layer.schema.validate_field, name, value, layer.name)
                if checked is not None:
                    clean[name] = checked
            if clean or remove:
                patches.append((layer.name, FieldPatch(values=clean, remove=remove, explicit=True)))
            continue
        aliases = {i + 1: item.id for i, item in enumerate(current[layer.name])}
        entries = []
        for entry in section or []:
            data = entry.model_dump(exclude={"replaces"})
            replaces = aliases.get(entry.replaces) if entry.replaces is not None else None
            if entry.replaces is not None and replaces is None:
                usage.drop("unknown_alias")  # the alias goes; the entry itself stays as a new one
            if not str(data.get("text", "")).strip():
                usage.drop("invalid")
                continue
            if checks_source and attribution.misattributed(data["text"]):
                usage.drop("misattributed")
                continue
            value = _checked(usage, layer.schema.validate_entry, data, layer.name)
            if value is not None:
                entries.append(Entry(value=value, replaces=replaces, occurrence=key))
        if entries:
            patches.append((layer.name, NewEntries(tuple(entries))))
    return patches


def not_stale(
    layers: Mapping[str, Layer], patches: list[tuple[str, Patch]], changed: set[tuple[str, str]], usage: Usage
) -> list[tuple[str, Patch]]:
    """Drop what the user changed after this input was read: the newer change wins."""
    fresh: list[tuple[str, Patch]] = []
    for name, patch in patches:
        if isinstance(patch, FieldPatch):
            # A list field only gains elements (unions commute); a value would replace a newer one.
            fields = layers[name].schema.fields
            values = {k: v for k, v in patch.values.items() if fields[k].is_list or (name, k) not in changed}
            remove = tuple(k for k in patch.remove if (name, k) not in changed)
            usage.drop("stale", len(patch.values) - len(values) + len(patch.remove) - len(remove))
            if values or remove:
                fresh.append((name, replace(patch, values=values, remove=remove)))
            continue
        layer = layers[name]
        assert isinstance(layer, CollectionLayer)
        entries = tuple(e for e in patch.entries if (name, layer.key_of(dict(e.value))) not in changed)
        usage.drop("stale", len(patch.entries) - len(entries))
        if entries:
            fresh.append((name, NewEntries(entries)))
    return fresh


def shown_text(layer: Layer, item: MemoryItem) -> str:
    # One line each: a stored text with newlines must not forge more numbered items in the prompt.
    return one_line(f"{item.key}: {display(item.value)}" if layer.kind == "document" else item.text)


def _checked(usage: Usage, validate: Callable[..., Any], *args: Any) -> Any:
    """Run a schema validation; count and swallow what the store would refuse."""
    try:
        return validate(*args)
    except SecretError:
        usage.drop("secret")
    except InvalidInputError:
        usage.drop("invalid")
    return None
