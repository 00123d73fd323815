"""A collection merge over the live items a change can touch (read through the indexes) makes exactly
the operations it makes over every live item: checked on random memories and changes, on both
backends, for the built-in collections and for a layer whose eviction order is not a column sort.

Texts come from a small vocabulary (so same-key repeats and near-duplicates are common), with words the
database tokenises differently from ``text.words``: "c++", "foo_bar", "_", "Straße", "ﬁle", "ＡＩ".
Each round's operations are applied, so the memory grows, repeats, gets capped and superseded.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from agentmem.layers import Entry, Expire, FeedbackLayer, KnowledgeLayer, NewEntries
from agentmem.layers.collection import CollectionLayer
from agentmem.records import MemoryItem
from agentmem.scope import Scope
from agentmem.store import Store
from agentmem.testing import ScriptedModel
from agentmem.text import normalize

WORDS = [
    "works",
    "on",
    "the",
    "churn",
    "model",
    "at",
    "Acme",
    "uses",
    "python",
    "c++",
    "foo_bar",
    "_",
    "Straße",
    "strasse",
    "ﬁle",
    "file",
    "ＡＩ",
    "ai",
    "not",
    "from",
    "Paris",
    "to",
    "Berlin",
    "2024",
    "3",
    "data",
    "team",
    "lead",
    "likes",
    "short",
    "answers",
    "café",
    "cafe",
]
SCOPE = Scope("u1", None)


class CountFirst(KnowledgeLayer):
    """A layer whose eviction order is computed, not a column sort: over the cap it reads everything."""

    def eviction_order(self, item: MemoryItem) -> tuple[Any, ...]:
        return (len(item.text), item.id)


class Uncapped(KnowledgeLayer):
    default_max_items = None


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store(db_url)
    yield opened
    opened.close()


def text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 7)))


def change(rng: random.Random, live: list[MemoryItem], layer: CollectionLayer) -> NewEntries:
    entries = []
    for _ in range(rng.randint(1, 6)):
        roll = rng.random()
        if live and roll < 0.3:  # a stored text again, or with one word more, less, or moved
            words = rng.choice(live).text.split()
            if roll < 0.15 and len(words) > 1:
                words.insert(rng.randrange(len(words)), words.pop(rng.randrange(len(words))))
            elif roll < 0.2:
                words.append(rng.choice(WORDS))
            said = " ".join(words)
        else:
            said = text(rng)
        value: dict[str, Any] = {"text": said}
        if isinstance(layer, FeedbackLayer):
            value["sentiment"] = rng.choice(["positive", "negative"])
        else:  # a repeat with a new topic updates the stored fact
            value["topics"] = [rng.choice(["work", "home", "code"])]
        replaces = rng.choice(live).id if live and rng.random() < 0.2 else None
        entries.append(Entry(value, replaces=replaces, occurrence=f"o{rng.randrange(4)}"))
    return NewEntries(tuple(entries))


@pytest.mark.parametrize(
    "layer",
    [KnowledgeLayer(max_items=25), FeedbackLayer(max_items=20), CountFirst(max_items=15), Uncapped()],
    ids=["knowledge", "feedback", "computed-eviction", "uncapped"],
)
def test_merge_over_candidates_equals_merge_over_all(store: Store, layer: CollectionLayer) -> None:
    rng = random.Random(f"{layer.name}-{layer.max_items}")
    for round_ in range(60):
        with store.write(SCOPE) as writer:
            live = writer.live(layer.name)
            patch = change(rng, live, layer)
            everything = layer.merge(live, patch, writer.now)
            subset = layer.candidates(writer, patch)
            assert subset.total == len(live) or layer.max_items is None  # uncapped: nothing counts them
            assert {item.id for item in subset} <= {item.id for item in live}
            assert layer.merge_live(writer, patch, writer.now) == everything, f"round {round_}: {patch}"
            writer.apply(layer.name, everything, source="manual", session_id=None)
    with store.write(SCOPE) as writer:  # the rounds did reach the cases the subset must get right
        assert writer.live_count(layer.name) == len(writer.live(layer.name)) > 10
    history = store.history(SCOPE)
    assert {"add", "update", "supersede"} <= {event.op for event in history}
    if layer.max_items is not None:
        assert any(event.reason and event.reason.startswith("evicted") for event in history)


def test_candidates_read_only_what_a_change_can_touch(store: Store) -> None:
    layer = KnowledgeLayer()
    rng = random.Random(7)
    plain = [w for w in WORDS if w.isascii()]  # other text is always read (see search.may_have_words)
    stored = [f"Works on project {i} with {rng.choice(plain)} and {rng.choice(plain)}" for i in range(300)]
    with store.write(SCOPE) as writer:
        ops = layer.merge([], NewEntries(tuple(Entry({"text": t}) for t in stored)), writer.now)
        writer.apply(layer.name, ops, source="manual", session_id=None)
    with store.write(SCOPE) as writer:
        patch = NewEntries(
            (Entry({"text": stored[10]}), Entry({"text": " ".join(reversed(stored[20].split()))}))
        )
        subset = layer.candidates(writer, patch)
        assert subset.total == 300
        assert {stored[10], stored[20]} <= {item.text for item in subset}
        assert len(subset) < 30  # texts sharing every probe group's word, not the 300 live items


def test_an_eviction_order_of_its_own_is_never_read_as_columns() -> None:
    class ByLength:
        def eviction_order(self, item: MemoryItem) -> tuple[Any, ...]:
            return (len(item.text), item.id)

    class Mixed(ByLength, KnowledgeLayer):
        pass

    class Declared(CountFirst):
        eviction_columns = ("id",)  # its author vouches for a column sort

    assert CountFirst.eviction_columns is None
    assert Mixed.eviction_columns is None  # the order came with a mixin, which said nothing
    assert Declared.eviction_columns == ("id",)
    assert KnowledgeLayer.eviction_columns == ("updated_at", "id")


def test_a_layer_with_a_merge_of_its_own_merges_with_every_live_item(make_mem: Any) -> None:
    class OneHome(KnowledgeLayer):
        """Also expires every stored "Lives in ..." fact when a new one comes."""

        def merge(self, current: Any, change: Any, now: Any) -> Any:
            ops = super().merge(current, change, now)
            new = [e.value["text"] for e in change.entries if e.value["text"].startswith("Lives in")]
            if new:
                moved = [i for i in current if i.text.startswith("Lives in") and i.text not in new]
                ops += [Expire(item, reason="moved") for item in moved]
            return ops

    assert OneHome.merges_candidates is False
    replies = iter([{"knowledge": [{"text": t}]} for t in ("Lives in Paris", "Keeps bees", "Lives in Rome")])
    mem = make_mem(layers={"knowledge": OneHome()}, model=ScriptedModel(lambda _messages: next(replies)))
    for said in ("I live in Paris", "I keep bees", "I live in Rome now"):
        mem.learn([{"role": "user", "content": said}], user_id="u")
    assert sorted(f.text for f in mem.knowledge.list(user_id="u")) == ["Keeps bees", "Lives in Rome"]


def test_a_bulk_add_of_long_facts_reads_everything_once(make_mem: Any) -> None:
    mem = make_mem()
    rng = random.Random(3)
    plain = [w for w in WORDS if w.isascii() and w.isalpha()]
    facts = [" ".join(rng.choice(plain) for _ in range(14)) + f" {i}" for i in range(300)]
    ids = mem.knowledge.add_many(facts, user_id="u")  # 4,200 probe words: over MAX_PROBE_WORDS
    assert len(set(ids)) == len({normalize(f) for f in facts})
    assert mem.knowledge.add_many(facts[:3], user_id="u") == ids[:3]
