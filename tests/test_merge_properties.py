"""Properties of the four merge policies, checked on random states and changes (hypothesis).

The main property is idempotence: a change applied to the state it produced yields no operations.
That is what makes a write safe to retry and the same conversation safe to learn from twice.

Strategies are deliberately tiny (a handful of words, some differing only in case or punctuation, so
normalised duplicates and same-word-set near-duplicates are common). ``apply_ops`` below plays the
store's part: it turns a merge's operations into the next list of live items, in memory.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from agentmem.layers import (
    Add,
    Delete,
    Entry,
    Expire,
    FeedbackLayer,
    FieldPatch,
    KnowledgeLayer,
    NewEntries,
    NewItem,
    Op,
    Patch,
    PoliciesLayer,
    ProfileLayer,
    Supersede,
    Update,
)
from agentmem.layers.collection import CollectionLayer
from agentmem.layers.document import DocumentLayer
from agentmem.layers.schema import display
from agentmem.records import MemoryItem
from agentmem.text import normalize

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
FAST = settings(max_examples=200, deadline=None)


# ---- the in-memory applier -------------------------------------------------------------------------


def new_item(layer: str, new: NewItem, item_id: str, now: datetime) -> MemoryItem:
    return MemoryItem(
        id=item_id,
        layer=layer,
        key=new.key,
        text=new.text,
        value=new.value,
        user_id="sarah",
        agent_id=None,
        session_id=None,
        source="manual",
        confidence=new.confidence,
        count=new.count,
        explicit=new.explicit,
        created_at=now,
        updated_at=now,
        meta=dict(new.meta),
    )


def apply_ops(
    layer: str, current: Sequence[MemoryItem], ops: Sequence[Op], now: datetime, ids: Iterator[str]
) -> list[MemoryItem]:
    """The live items after ``ops``, as the store would leave them (oldest insertion first)."""
    live = {item.id: item for item in current}
    acted_on: set[str] = set()
    for op in ops:
        if isinstance(op, Add):
            item = new_item(layer, op.item, next(ids), now)
            live[item.id] = item
            continue
        target = op.target.id
        # Every operation names a live item, and no item is changed twice by one merge.
        assert target in live, f"{op!r} targets an item that is not live"
        assert target not in acted_on, f"{op!r} targets an item this merge already changed"
        acted_on.add(target)
        if isinstance(op, Update):
            live[target] = dataclasses.replace(
                live[target],
                value=op.value,
                text=op.text,
                count=op.count,
                explicit=op.explicit,
                confidence=op.confidence,
                meta=dict(op.meta),
                updated_at=now,
            )
        elif isinstance(op, Supersede):
            if isinstance(op.replacement, NewItem):
                item = new_item(layer, op.replacement, next(ids), now)
                live[item.id] = item
            else:
                assert op.replacement.id in live, f"{op!r} points at an item that is not live"
            del live[target]
        elif isinstance(op, Expire | Delete):
            del live[target]
    return list(live.values())


class Timeline:
    """Applies changes one after another, each a minute later, with fresh item ids."""

    def __init__(self, layer: DocumentLayer | CollectionLayer, items: Sequence[MemoryItem] = ()) -> None:
        self.layer = layer
        self.items = list(items)
        self._ids = (f"m{n:04d}" for n in itertools.count())
        self._clock = (T0 + timedelta(minutes=n) for n in itertools.count(1))

    def apply(self, change: Patch) -> list[Op]:
        now = next(self._clock)
        ops = self.layer.merge(self.items, change, now)
        self.items = apply_ops(self.layer.name, self.items, ops, now, self._ids)
        return ops


# ---- strategies ----------------------------------------------------------------------------------------

# "tea", "Tea!" and "TEA" are one word once normalised; "tea cats" and "cats tea" share a word set.
WORDS = ("tea", "Tea!", "TEA", "cats", "code", "code.")
texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)
word_lists = st.lists(st.sampled_from(WORDS), max_size=3)


def document_values(layer: DocumentLayer, key: str) -> st.SearchStrategy[Any]:
    return word_lists if layer.schema.fields[key].is_list else texts


def empty_values(layer: DocumentLayer, key: str) -> list[Any]:
    """The values that must never erase a field."""
    return [None, [] if layer.schema.fields[key].is_list else ""]


@st.composite
def document_states(draw: st.DrawFn, layer: DocumentLayer) -> list[MemoryItem]:
    """A hand-built live document: some fields set, each explicit or inferred."""
    items = []
    for key in layer.schema.fields:
        if not draw(st.booleans()):
            continue
        value = draw(document_values(layer, key))
        items.append(
            MemoryItem(
                id=f"m_{key}",
                layer=layer.name,
                key=key,
                text=display(value),
                value=value,
                user_id="sarah",
                agent_id=None,
                session_id=None,
                source="manual",
                confidence=1.0,
                count=1,
                explicit=draw(st.booleans()),
                created_at=T0,
                updated_at=T0,
            )
        )
    return items


@st.composite
def field_patches(draw: st.DrawFn, layer: DocumentLayer) -> FieldPatch:
    """New values (empty ones included) for some fields, and removal of some *other* fields.

    A patch that both sets and removes one field contradicts itself; the API never builds one.
    """
    keys = list(layer.schema.fields)
    values = {
        key: draw(st.sampled_from(empty_values(layer, key)) | document_values(layer, key))
        for key in draw(st.lists(st.sampled_from(keys), unique=True, max_size=3))
    }
    remove = draw(st.lists(st.sampled_from([k for k in keys if k not in values]), unique=True, max_size=2))
    return FieldPatch(
        values=values,
        remove=tuple(remove),
        explicit=draw(st.booleans()),
        confidence=draw(st.sampled_from([0.5, 1.0])),
    )


@dataclass(frozen=True)
class ChangeSpec:
    """A collection change, resolved against the live items when it is applied.

    As in ``add_many``, only the first entry may replace an item, and all entries share one
    occurrence (one call, or one session).
    """

    values: tuple[dict[str, Any], ...]
    replaces: int | None = None
    """Index (modulo) into the live items of the item the first entry replaces."""
    occurrence: str = "s1"

    def resolve(self, current: Sequence[MemoryItem]) -> NewEntries:
        target = current[self.replaces % len(current)].id if self.replaces is not None and current else None
        return NewEntries(
            tuple(
                Entry(value, replaces=target if i == 0 else None, occurrence=self.occurrence)
                for i, value in enumerate(self.values)
            )
        )


facts = st.fixed_dictionaries(
    {"text": texts, "topics": st.lists(st.sampled_from(["work", "ml", "home"]), max_size=2)}
)
feedback_entries = st.fixed_dictionaries(
    {
        "text": texts,
        "sentiment": st.sampled_from(["positive", "negative"]),
        "target": st.sampled_from([None, "code"]),
    }
)


def changes(
    values: st.SearchStrategy[dict[str, Any]], *, max_entries: int = 3, distinct: bool = False
) -> st.SearchStrategy[ChangeSpec]:
    """Changes of 1..max_entries entries; ``distinct``: no two entries of a change say the same thing."""
    entries = st.lists(
        values,
        min_size=1,
        max_size=max_entries,
        unique_by=(lambda v: normalize(v["text"])) if distinct else None,
    )
    return st.builds(
        ChangeSpec,
        entries.map(tuple),
        st.one_of(st.none(), st.integers(0, 5)),
        st.sampled_from(["s1", "s2", "s3"]),
    )


def replay(layer: CollectionLayer, history: Sequence[ChangeSpec]) -> Timeline:
    """A reachable collection state: the given changes applied from empty, one after another.

    Collection states are grown rather than drawn, so they satisfy what the store guarantees
    (one live item per key, counts and occurrences that went together).
    """
    timeline = Timeline(layer)
    for spec in history:
        timeline.apply(spec.resolve(timeline.items))
    return timeline


def second_application(timeline: Timeline, spec: ChangeSpec) -> list[Op]:
    """Apply ``spec`` to the timeline's state, then again to the result; return the second ops.

    The change is resolved once: applied again, it names the same item it replaced the first time.
    """
    change = spec.resolve(timeline.items)
    timeline.apply(change)
    return timeline.layer.merge(timeline.items, change, T0 + timedelta(days=1))


# ---- documents: profile and policies ------------------------------------------------------------------

DOCUMENT_LAYERS = [ProfileLayer(), PoliciesLayer()]


@pytest.mark.parametrize("layer", DOCUMENT_LAYERS, ids=lambda layer: layer.name)
@FAST
@given(data=st.data())
def test_document_merge_is_idempotent(layer: DocumentLayer, data: st.DataObject) -> None:
    timeline = Timeline(layer, data.draw(document_states(layer), label="current"))
    patch = data.draw(field_patches(layer), label="change")

    timeline.apply(patch)

    assert layer.merge(timeline.items, patch, T0 + timedelta(days=1)) == []


@pytest.mark.parametrize("layer", DOCUMENT_LAYERS, ids=lambda layer: layer.name)
@FAST
@given(data=st.data())
def test_document_merge_loses_nothing_it_was_not_asked_to_remove(
    layer: DocumentLayer, data: st.DataObject
) -> None:
    before = {item.key: item for item in data.draw(document_states(layer), label="current")}
    patch = data.draw(field_patches(layer), label="change")
    timeline = Timeline(layer, list(before.values()))

    timeline.apply(patch)

    after = {item.key: item for item in timeline.items}
    assert len(after) == len(timeline.items), "one item per field"
    # An inferred removal, like an inferred value, leaves an explicit field alone.
    removed = {key for key in patch.remove if key in before and (patch.explicit or not before[key].explicit)}
    assert set(before) - set(after) == removed
    for key, old in before.items():
        if key in removed:
            continue
        new = after[key]
        if patch.values.get(key) in (None, "", []):
            assert new == old, "a field the change leaves out or empties is untouched"
        if old.explicit and not patch.explicit:
            assert new == old, "an inferred change left an explicit field untouched"
        if isinstance(old.value, list):
            assert new.value[: len(old.value)] == old.value, "a list field only gains elements"
        assert new.explicit or not old.explicit, "an explicit field stays explicit"


# ---- collections: knowledge and feedback -----------------------------------------------------------

histories_of_facts = st.lists(changes(facts, distinct=True), max_size=4)
histories_of_feedback = st.lists(changes(feedback_entries), max_size=4)


@FAST
@given(history=histories_of_facts, change=changes(facts, distinct=True))
def test_knowledge_merge_is_idempotent(history: list[ChangeSpec], change: ChangeSpec) -> None:
    timeline = replay(KnowledgeLayer(max_items=None), history)

    assert second_application(timeline, change) == []


@FAST
@given(history=histories_of_facts, change=changes(facts))
@example(
    history=[], change=ChangeSpec(({"text": "tea", "topics": ["work"]}, {"text": "TEA", "topics": ["ml"]}))
)
def test_knowledge_merge_is_idempotent_with_repeats_in_one_change(
    history: list[ChangeSpec], change: ChangeSpec
) -> None:
    timeline = replay(KnowledgeLayer(max_items=None), history)

    assert second_application(timeline, change) == []


@FAST
@given(history=histories_of_feedback, change=changes(feedback_entries))
def test_feedback_merge_is_idempotent(history: list[ChangeSpec], change: ChangeSpec) -> None:
    timeline = replay(FeedbackLayer(max_items=None), history)

    assert second_application(timeline, change) == []


def capped(kind: str, max_items: int) -> CollectionLayer:
    return KnowledgeLayer(max_items=max_items) if kind == "knowledge" else FeedbackLayer(max_items=max_items)


def capped_cases(max_items: st.SearchStrategy[int], max_entries: int) -> st.SearchStrategy[Any]:
    """(layer kind, cap, history, change) for either collection layer."""
    knowledge_case = st.tuples(
        st.just("knowledge"),
        max_items,
        st.lists(changes(facts, max_entries=max_entries), max_size=4),
        changes(facts, max_entries=max_entries),
    )
    feedback_case = st.tuples(
        st.just("feedback"),
        max_items,
        st.lists(changes(feedback_entries, max_entries=max_entries), max_size=4),
        changes(feedback_entries, max_entries=max_entries),
    )
    return knowledge_case | feedback_case


@FAST
@given(case=capped_cases(st.integers(1, 3), max_entries=3))
def test_live_keys_stay_unique(case: tuple[str, int, list[ChangeSpec], ChangeSpec]) -> None:
    kind, max_items, history, change = case
    timeline = replay(capped(kind, max_items), [*history, change])

    keys = [item.key for item in timeline.items]
    assert len(keys) == len(set(keys))


@FAST
@given(case=capped_cases(st.integers(3, 4), max_entries=3))
def test_the_cap_holds_when_it_is_at_least_as_large_as_a_change(
    case: tuple[str, int, list[ChangeSpec], ChangeSpec],
) -> None:
    kind, max_items, history, change = case
    timeline = Timeline(capped(kind, max_items))

    for spec in [*history, change]:
        ops = timeline.apply(spec.resolve(timeline.items))
        assert not any(isinstance(op, Delete) for op in ops), "collections close items, never erase them"
        assert len(timeline.items) <= max_items


@FAST
@given(case=capped_cases(st.integers(1, 3), max_entries=3))
@example(
    case=("knowledge", 1, [], ChangeSpec(({"text": "tea", "topics": []}, {"text": "cats", "topics": []})))
)
def test_the_cap_always_holds(case: tuple[str, int, list[ChangeSpec], ChangeSpec]) -> None:
    kind, max_items, history, change = case
    timeline = Timeline(capped(kind, max_items))

    for spec in [*history, change]:
        timeline.apply(spec.resolve(timeline.items))
        assert len(timeline.items) <= max_items


@FAST
@given(case=capped_cases(st.integers(1, 3), max_entries=3))
@example(
    case=(
        "knowledge",
        2,
        [ChangeSpec(({"text": "tea", "topics": []},)), ChangeSpec(({"text": "cats", "topics": []},))],
        ChangeSpec(({"text": "tea", "topics": []}, {"text": "code", "topics": []})),
    )
)
def test_capped_collection_merge_is_idempotent(case: tuple[str, int, list[ChangeSpec], ChangeSpec]) -> None:
    kind, max_items, history, change = case
    timeline = replay(capped(kind, max_items), history)

    assert second_application(timeline, change) == []


@FAST
@given(case=capped_cases(st.integers(1, 3), max_entries=3))
def test_each_entry_ends_up_as_a_live_item_unless_the_cap_leaves_it_out(
    case: tuple[str, int, list[ChangeSpec], ChangeSpec],
) -> None:
    kind, max_items, history, spec = case
    layer = capped(kind, max_items)
    current = replay(layer, history).items
    now = T0 + timedelta(days=1)

    merged = layer.merge_entries(current, spec.resolve(current), now)

    after = apply_ops(layer.name, current, merged.ops, now, (f"n{n}" for n in itertools.count()))
    live = {item.key: item for item in after}
    for result in merged.results:
        if result is None:
            assert len(after) == max_items, "an entry is left out only when the cap is full"
        elif isinstance(result, NewItem):
            assert live[result.key].id.startswith("n"), "a new item's entry ends up as that new item"
        else:
            assert live[result.key].id == result.id, "a stored item an entry ends up as stays live"


def test_the_applier_follows_the_store() -> None:
    """The applier itself: a supersede swaps items, an update rewrites in place, an expiry closes."""
    layer = KnowledgeLayer(max_items=2)
    timeline = Timeline(layer)
    timeline.apply(NewEntries((Entry({"text": "tea", "topics": []}), Entry({"text": "cats", "topics": []}))))
    tea, cats = timeline.items

    timeline.apply(NewEntries((Entry({"text": "code", "topics": []}, replaces=tea.id),)))
    assert [i.text for i in timeline.items] == ["cats", "code"]

    timeline.apply(NewEntries((Entry({"text": "Cats!", "topics": ["home"]}),)))
    assert timeline.items[0].id == cats.id
    assert timeline.items[0].value == {"text": "cats", "topics": ["home"]}

    timeline.apply(NewEntries((Entry({"text": "tea", "topics": []}),)))  # over the cap: "code" goes
    assert [i.text for i in timeline.items] == ["cats", "tea"]
