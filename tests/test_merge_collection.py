"""The merge policy of the collection layers: knowledge and feedback.

Knowledge deduplicates facts (normalised text, then word-set similarity >= 0.9 when the two say the same
thing: see tests/test_dedupe_meaning.py); a fact an entry
``replaces`` is superseded (closed, never erased); over the cap the least recently updated facts expire.
Feedback is an append log: the same feedback given again (another occurrence) raises its count; over the
cap the least repeated, then oldest, entries expire.

The first half calls ``layer.merge`` directly and reads the operations it returns; the second half goes
through ``mem.knowledge`` / ``mem.feedback`` on a real SQLite file and reads the stored state and history.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agentmem import Fact, InvalidInputError, LayerConfig, MemoryManager, NotFoundError
from agentmem.layers import (
    Add,
    Delete,
    Entry,
    Expire,
    FeedbackLayer,
    KnowledgeLayer,
    NewEntries,
    NewItem,
    Op,
    Supersede,
    Update,
)
from agentmem.layers.collection import CollectionLayer
from agentmem.layers.collection_merge import WordIndex
from agentmem.records import MemoryItem
from agentmem.text import similarity

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=100)


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def stored(
    layer: CollectionLayer,
    item_id: str,
    value: dict[str, Any],
    *,
    created: int = 0,
    updated: int | None = None,
    count: int = 1,
    meta: dict[str, Any] | None = None,
) -> MemoryItem:
    """A live item as the store would hand it to ``merge`` (``created``/``updated`` in days after T0)."""
    return MemoryItem(
        id=item_id,
        layer=layer.name,
        key=layer.key_of(value),
        text=value["text"],
        value=value,
        user_id="sarah",
        agent_id=None,
        session_id=None,
        source="manual",
        confidence=1.0,
        count=count,
        explicit=True,
        created_at=day(created),
        updated_at=day(created if updated is None else updated),
        meta=meta or {},
    )


def fact(text: str, *topics: str) -> dict[str, Any]:
    return {"text": text, "topics": list(topics)}


def feedback(text: str, sentiment: str = "neutral", target: str | None = None) -> dict[str, Any]:
    return {"text": text, "sentiment": sentiment, "target": target}


def change(*entries: dict[str, Any] | Entry) -> NewEntries:
    """A change of plain values (one occurrence each, unknown) or ready-made entries."""
    return NewEntries(tuple(e if isinstance(e, Entry) else Entry(e) for e in entries))


def kinds(ops: Sequence[Op]) -> list[str]:
    return [type(op).__name__ for op in ops]


# Ten and eleven words: the eleventh word keeps the word sets 10/11 ≈ 0.91 similar (over the 0.9 bar).
# The words that differ are light ("a", "also"): a content word on one side only is another fact.
TEN_WORDS = "Sarah trains a gradient boosted churn model on Acme data"
ELEVEN_WORDS = "Sarah also trains a gradient boosted churn model on Acme data"
NINE_WORDS = "Sarah trains gradient boosted churn model on Acme data"


# ---- knowledge, pure merge ----------------------------------------------------------------------------

knowledge = KnowledgeLayer()


def test_a_new_fact_is_added_with_its_date() -> None:
    ops = knowledge.merge([], change(fact("Builds a churn model for Acme", "work")), NOW)

    assert ops == [
        Add(
            NewItem(
                key="builds a churn model for acme",
                value=fact("Builds a churn model for Acme", "work"),
                text="Builds a churn model for Acme",
                line=f"{NOW.date().isoformat()}: Builds a churn model for Acme",
            )
        )
    ]


def test_an_exact_duplicate_ignoring_case_and_punctuation_adds_nothing() -> None:
    old = stored(knowledge, "m1", fact("Builds a churn model for Acme", "work"))

    assert knowledge.merge([old], change(fact("builds a churn-model for ACME!", "work")), NOW) == []


def test_a_duplicate_with_new_topics_only_extends_the_topics() -> None:
    old = stored(knowledge, "m1", fact("Builds a churn model for Acme", "work"), count=1)

    (op,) = knowledge.merge([old], change(fact("builds a churn model for acme", "ml", "work")), NOW)

    assert isinstance(op, Update)
    assert op.target == old
    assert op.value == fact("Builds a churn model for Acme", "work", "ml")  # stored text kept
    assert (op.text, op.count, op.reason) == ("Builds a churn model for Acme", 1, "repeated")


@pytest.mark.parametrize(
    ("stored_text", "new_text", "is_duplicate"),
    [
        (TEN_WORDS, ELEVEN_WORDS, True),  # 10/11 ≈ 0.91
        (NINE_WORDS, TEN_WORDS, True),  # 9/10 = 0.9, exactly at the bar
        (NINE_WORDS.removesuffix(" data"), TEN_WORDS.removesuffix(" data"), False),  # 8/9 ≈ 0.89
        ("Acme data weekly", "weekly Acme data", True),  # same words, another order: 1.0
        (TEN_WORDS, TEN_WORDS + " exports", False),  # 0.91, but "exports" says more
    ],
    ids=["0.91", "0.90", "0.89", "reordered", "0.91-another-fact"],
)
def test_a_near_duplicate_by_word_set_similarity_adds_nothing(
    stored_text: str, new_text: str, is_duplicate: bool
) -> None:
    old = stored(knowledge, "m1", fact(stored_text))

    ops = knowledge.merge([old], change(fact(new_text)), NOW)

    assert kinds(ops) == ([] if is_duplicate else ["Add"])


def test_a_fact_it_replaces_is_superseded_not_deleted() -> None:
    acme = stored(knowledge, "m1", fact("Works at Acme", "work"))
    other = stored(knowledge, "m2", fact("Lives in Berlin", "home"))

    ops = knowledge.merge([acme, other], change(Entry(fact("Works at Globex", "work"), replaces="m1")), NOW)

    assert len(ops) == 1
    (op,) = ops
    assert isinstance(op, Supersede)
    assert op.target == acme
    assert op.reason == "contradicted"
    assert isinstance(op.replacement, NewItem)
    assert op.replacement.value == fact("Works at Globex", "work")


def test_replacing_with_what_another_live_fact_says_points_at_that_fact() -> None:
    acme = stored(knowledge, "m1", fact("Works at Acme"))
    globex = stored(knowledge, "m2", fact("Works at Globex"))

    ops = knowledge.merge([acme, globex], change(Entry(fact("works at GLOBEX."), replaces="m1")), NOW)

    assert ops == [Supersede(acme, globex, reason="contradicted")]


def test_replacing_with_the_same_words_keeps_the_fact() -> None:
    acme = stored(knowledge, "m1", fact("Works at Acme"))

    assert knowledge.merge([acme], change(Entry(fact("Works at Acme"), replaces="m1")), NOW) == []


def test_a_replacement_similar_to_the_replaced_fact_still_supersedes_it() -> None:
    text = "The user is on the data platform team at Acme in Berlin"  # 12 words
    negated = "The user is not on the data platform team at Acme in Berlin"  # 13 words: 12/13 ≈ 0.92
    old = stored(knowledge, "m1", fact(text))

    ops = knowledge.merge([old], change(Entry(fact(negated), replaces="m1")), NOW)

    assert kinds(ops) == ["Supersede"]


def test_two_equal_entries_in_one_change_add_one_fact() -> None:
    ops = knowledge.merge([], change(fact("Uses dbt"), fact("uses DBT!")), NOW)

    assert kinds(ops) == ["Add"]


def test_two_equal_entries_in_one_change_pool_their_topics() -> None:
    ops = knowledge.merge([], change(fact("Uses dbt", "tools"), fact("uses DBT!", "work")), NOW)

    assert len(ops) == 1
    assert isinstance(ops[0], Add)
    assert ops[0].item.value["topics"] == ["tools", "work"]


def test_near_duplicate_entries_in_one_change_add_one_fact() -> None:
    ops = knowledge.merge([], change(fact(TEN_WORDS), fact(ELEVEN_WORDS)), NOW)

    assert kinds(ops) == ["Add"]


def test_topics_merge_ignoring_case_in_their_first_spelling() -> None:
    old = stored(knowledge, "m1", fact("Uses dbt", "Work"))

    (op,) = knowledge.merge([old], change(fact("Uses dbt", "work", "ML", "ml")), NOW)

    assert isinstance(op, Update)
    assert op.value["topics"] == ["Work", "ML"]
    assert knowledge.merge([], change(fact("Uses dbt", "ML", "ml")), NOW) == [
        Add(
            NewItem(
                key="uses dbt", value=fact("Uses dbt", "ML"), text="Uses dbt", line="2024-06-09: Uses dbt"
            )
        )
    ]


def test_a_fact_restated_earlier_in_the_change_is_not_replaced_by_a_later_entry() -> None:
    acme = stored(knowledge, "m1", fact("Works at Acme"))

    ops = knowledge.merge(
        [acme], change(fact("works at acme"), Entry(fact("Works at Globex"), replaces="m1")), NOW
    )

    assert kinds(ops) == ["Add"]


def test_two_entries_replacing_two_facts_with_one_new_fact_close_both() -> None:
    acme = stored(knowledge, "m1", fact("Works at Acme"))
    initech = stored(knowledge, "m2", fact("Works at Initech"))

    ops = knowledge.merge(
        [acme, initech],
        change(Entry(fact("Works at Globex"), replaces="m1"), Entry(fact("works at globex"), replaces="m2")),
        NOW,
    )

    # One new item can be linked from one Supersede only; the other item is closed all the same.
    assert kinds(ops) == ["Supersede", "Expire"]
    assert (ops[0].target, ops[1]) == (acme, Expire(initech, reason="contradicted"))


def test_merge_entries_tells_what_each_entry_ended_up_as() -> None:
    acme = stored(knowledge, "m1", fact("Works at Acme"))

    merged = knowledge.merge_entries(
        [acme], change(fact("Uses dbt"), fact("works at ACME"), fact("uses DBT", "tools")), NOW
    )

    (add,) = merged.ops
    assert isinstance(add, Add)
    assert merged.results == [add.item, acme, add.item]
    assert add.item.value == fact("Uses dbt", "tools")


# ---- knowledge, the cap ----------------------------------------------------------------------------


def test_over_the_cap_the_least_recently_updated_fact_expires() -> None:
    capped = KnowledgeLayer(max_items=3)
    # "a" is the oldest fact but was updated last; "b" is the least recently updated.
    a = stored(capped, "m1", fact("a"), created=1, updated=9)
    b = stored(capped, "m2", fact("b"), created=2)
    c = stored(capped, "m3", fact("c"), created=3)

    ops = capped.merge([a, b, c], change(fact("d")), NOW)

    assert kinds(ops) == ["Add", "Expire"]
    expire = ops[1]
    assert isinstance(expire, Expire)
    assert expire.target == b
    assert expire.reason == "evicted: over the cap of 3 items"
    assert not any(isinstance(op, Delete) for op in ops)


def test_the_cap_expires_as_many_facts_as_the_change_adds() -> None:
    capped = KnowledgeLayer(max_items=3)
    current = [stored(capped, f"m{i}", fact(t), created=i) for i, t in enumerate("abc")]

    ops = capped.merge(current, change(fact("d"), fact("e")), NOW)

    assert [op.target.key for op in ops if isinstance(op, Expire)] == ["a", "b"]


def test_a_fact_the_change_updates_is_not_evicted() -> None:
    capped = KnowledgeLayer(max_items=3)
    a = stored(capped, "m1", fact("a"), created=1)
    b = stored(capped, "m2", fact("b"), created=2)
    c = stored(capped, "m3", fact("c"), created=3)

    ops = capped.merge([a, b, c], change(fact("A", "new topic"), fact("d")), NOW)

    assert kinds(ops) == ["Add", "Update", "Expire"]
    assert [op.target for op in ops if isinstance(op, Expire)] == [b]


def test_a_fact_the_change_restates_is_not_evicted() -> None:
    capped = KnowledgeLayer(max_items=3)
    a = stored(capped, "m1", fact("a"), created=1)
    b = stored(capped, "m2", fact("b"), created=2)
    c = stored(capped, "m3", fact("c"), created=3)

    ops = capped.merge([a, b, c], change(fact("a"), fact("d")), NOW)

    assert [op.target for op in ops if isinstance(op, Expire)] == [b]


def test_superseding_at_the_cap_makes_room_without_evicting() -> None:
    capped = KnowledgeLayer(max_items=2)
    a = stored(capped, "m1", fact("Works at Acme"), created=1)
    b = stored(capped, "m2", fact("Lives in Berlin"), created=2)

    ops = capped.merge([a, b], change(Entry(fact("Works at Globex"), replaces="m1")), NOW)

    assert kinds(ops) == ["Supersede"]


def test_the_cap_holds_even_when_one_change_adds_more_than_it() -> None:
    capped = KnowledgeLayer(max_items=1)

    ops = capped.merge([], change(fact("a"), fact("b")), NOW)

    assert kinds(ops).count("Add") <= 1


def test_past_the_untouched_items_the_last_new_entries_are_left_out() -> None:
    capped = KnowledgeLayer(max_items=2)
    a = stored(capped, "m1", fact("a"), created=1)
    b = stored(capped, "m2", fact("b"), created=2)

    merged = capped.merge_entries([a, b], change(fact("c"), fact("b"), fact("d")), NOW)

    add, expire = merged.ops
    assert isinstance(add, Add)
    assert expire == Expire(a, reason="evicted: over the cap of 2 items")
    assert merged.results == [add.item, b, None]


def test_a_fact_replaced_by_an_entry_the_cap_leaves_out_is_still_closed() -> None:
    capped = KnowledgeLayer(max_items=1)
    acme = stored(capped, "m1", fact("Works at Acme"))

    ops = capped.merge([acme], change(fact("Uses dbt"), Entry(fact("Works at Globex"), replaces="m1")), NOW)

    assert kinds(ops) == ["Add", "Expire"]
    assert ops[1] == Expire(acme, reason="contradicted")


def test_under_a_lowered_cap_restated_facts_expire_too() -> None:
    capped = KnowledgeLayer(max_items=1)
    a = stored(capped, "m1", fact("a"), created=1)
    b = stored(capped, "m2", fact("b"), created=2)
    c = stored(capped, "m3", fact("c"), created=3)

    ops = capped.merge([a, b, c], change(fact("b"), fact("a")), NOW)

    assert [op.target for op in ops if isinstance(op, Expire)] == [c, a]


# ---- feedback, pure merge ---------------------------------------------------------------------------

fb = FeedbackLayer()


def test_new_feedback_remembers_where_it_was_said() -> None:
    ops = fb.merge(
        [], change(Entry(feedback("Liked the pandas examples", "positive", "code"), occurrence="s1")), NOW
    )

    assert ops == [
        Add(
            NewItem(
                key="positive:liked the pandas examples",
                value=feedback("Liked the pandas examples", "positive", "code"),
                text="Liked the pandas examples",
                line="positive: Liked the pandas examples (about: code)",
                meta={"occurrences": ["s1"]},
            )
        )
    ]


def test_the_same_feedback_on_another_occasion_raises_its_count() -> None:
    old = stored(fb, "m1", feedback("Answers too long", "negative"), meta={"occurrences": ["s1"]})

    ops = fb.merge([old], change(Entry(feedback("answers too LONG.", "negative"), occurrence="s2")), NOW)

    assert kinds(ops) == ["Update"]
    (update,) = ops
    assert isinstance(update, Update)
    assert update.target == old
    assert (update.count, update.meta) == (2, {"occurrences": ["s1", "s2"]})
    assert update.value == old.value
    assert update.line == "negative: Answers too long [x2]"


def test_the_same_occurrence_applied_again_counts_once() -> None:
    old = stored(fb, "m1", feedback("Answers too long", "negative"), meta={"occurrences": ["s1", "s2"]})

    assert (
        fb.merge([old], change(Entry(feedback("Answers too long", "negative"), occurrence="s2")), NOW) == []
    )


def test_the_same_feedback_twice_in_one_change_counts_each_occurrence() -> None:
    said = [Entry(feedback("Too long", "negative"), occurrence=s) for s in ("s1", "s2", "s2")]

    (op,) = fb.merge([], NewEntries(tuple(said)), NOW)

    assert isinstance(op, Add)
    assert (op.item.count, op.item.meta, op.item.line) == (
        2,
        {"occurrences": ["s1", "s2"]},
        "negative: Too long [x2]",
    )


def test_the_same_words_with_another_sentiment_are_separate_feedback() -> None:
    old = stored(fb, "m1", feedback("Used tables", "positive"), meta={"occurrences": ["s1"]})

    ops = fb.merge([old], change(Entry(feedback("Used tables", "negative"), occurrence="s2")), NOW)

    assert kinds(ops) == ["Add"]
    assert isinstance(ops[0], Add)
    assert ops[0].item.key == "negative:used tables"


def test_over_the_cap_the_least_repeated_then_oldest_feedback_expires() -> None:
    capped = FeedbackLayer(max_items=3)
    often_old = stored(capped, "m1", feedback("often, old"), created=1, count=5)
    once_new = stored(capped, "m2", feedback("once, new"), created=3, count=1)
    once_old = stored(capped, "m3", feedback("once, old"), created=2, count=1)

    ops = capped.merge([often_old, once_new, once_old], change(feedback("fresh")), NOW)
    assert [op.target for op in ops if isinstance(op, Expire)] == [once_old]

    ops = capped.merge([often_old, once_new, once_old], change(feedback("fresh"), feedback("fresher")), NOW)
    assert [op.target for op in ops if isinstance(op, Expire)] == [once_old, once_new]


# ---- through the API, on a real SQLite file -----------------------------------------------------------


def history_of(mem: MemoryManager) -> list[tuple[str, str]]:
    return [(e.op, e.item_id) for e in mem.history(user_id="sarah")]


def test_adding_a_duplicate_returns_the_existing_id(mem: MemoryManager) -> None:
    first = mem.knowledge.add("Builds a churn model for Acme", user_id="sarah")

    assert mem.knowledge.add("builds a churn model for ACME!", user_id="sarah") == first
    assert [i.text for i in mem.knowledge.list(user_id="sarah")] == ["Builds a churn model for Acme"]
    assert history_of(mem) == [("add", first)]


def test_a_duplicate_with_new_topics_updates_the_fact_in_place(mem: MemoryManager) -> None:
    first = mem.knowledge.add("Uses dbt", user_id="sarah", topics=["tools"])

    assert mem.knowledge.add("uses dbt", user_id="sarah", topics=["work"]) == first

    (item,) = mem.knowledge.list(user_id="sarah")
    assert item.data == Fact(text="Uses dbt", topics=["tools", "work"])
    (_, update) = mem.history(user_id="sarah", item_id=first)
    assert (update.op, update.old["topics"], update.new["topics"]) == ("update", ["tools"], ["tools", "work"])


def test_a_superseded_fact_leaves_live_memory_but_not_the_history(mem: MemoryManager) -> None:
    old = mem.knowledge.add("Works at Acme", user_id="sarah", topics=["work"])

    new = mem.knowledge.add("Works at Globex", user_id="sarah", topics=["work"], replaces=old)

    assert new != old
    assert [i.id for i in mem.get(user_id="sarah").knowledge] == [new]
    (added, superseded) = mem.history(user_id="sarah", item_id=old)
    assert (added.op, superseded.op, superseded.reason) == ("add", "supersede", "contradicted")
    assert superseded.old == {"text": "Works at Acme", "topics": ["work"]}
    assert superseded.new == {"text": "Works at Globex", "topics": ["work"]}
    # Closed, not erased: the export still holds it, linked to its replacement.
    exported = {i["id"]: i for i in mem.export_user("sarah")["items"]}
    assert exported[old]["valid_to"] is not None
    assert exported[old]["superseded_by"] == new
    assert history_of(mem) == [("add", old), ("add", new), ("supersede", old)]


def test_replacing_with_an_existing_fact_links_to_it(mem: MemoryManager) -> None:
    acme = mem.knowledge.add("Works at Acme", user_id="sarah")
    globex = mem.knowledge.add("Works at Globex", user_id="sarah")

    assert mem.knowledge.add("works at globex", user_id="sarah", replaces=acme) == globex

    assert [i.id for i in mem.knowledge.list(user_id="sarah")] == [globex]
    exported = {i["id"]: i for i in mem.export_user("sarah")["items"]}
    assert exported[acme]["superseded_by"] == globex
    assert history_of(mem) == [("add", acme), ("add", globex), ("supersede", acme)]


def test_replacing_an_item_that_is_not_live_is_refused(mem: MemoryManager) -> None:
    old = mem.knowledge.add("Works at Acme", user_id="sarah")
    mem.knowledge.add("Works at Globex", user_id="sarah", replaces=old)

    with pytest.raises(NotFoundError):
        mem.knowledge.add("Works at Initech", user_id="sarah", replaces=old)
    assert [i.text for i in mem.knowledge.list(user_id="sarah")] == ["Works at Globex"]


def test_the_cap_expires_the_least_recently_updated_fact(db_url: str) -> None:
    with MemoryManager(db=db_url, layers={"knowledge": LayerConfig(max_items=2)}) as capped:
        a = capped.knowledge.add("Fact a", user_id="sarah")
        b = capped.knowledge.add("Fact b", user_id="sarah")
        capped.knowledge.add("fact a", user_id="sarah", topics=["fresh"])  # a is now the most recent
        c = capped.knowledge.add("Fact c", user_id="sarah")

        assert [i.id for i in capped.knowledge.list(user_id="sarah")] == [a, c]
        expired = capped.history(user_id="sarah", item_id=b)[-1]
        assert (expired.op, expired.old["text"], expired.new) == ("expire", "Fact b", None)
        assert expired.reason == "evicted: over the cap of 2 items"


def test_restating_a_fact_at_the_cap_keeps_it_live(db_url: str) -> None:
    with MemoryManager(db=db_url, layers={"knowledge": LayerConfig(max_items=2)}) as capped:
        a = capped.knowledge.add("Fact a", user_id="sarah")
        capped.knowledge.add("Fact b", user_id="sarah")

        ids = capped.knowledge.add_many(["Fact a", "Fact c"], user_id="sarah")

        assert ids[0] == a
        assert a in {i.id for i in capped.knowledge.list(user_id="sarah")}


def test_near_duplicates_added_together_share_one_id(mem: MemoryManager) -> None:
    ids = mem.knowledge.add_many([TEN_WORDS, ELEVEN_WORDS], user_id="sarah")

    assert ids[0] == ids[1]
    assert [i.id for i in mem.knowledge.list(user_id="sarah")] == ids[:1]


def test_more_new_entries_than_the_cap_holds_are_refused_whole(db_url: str) -> None:
    with MemoryManager(db=db_url, layers={"knowledge": LayerConfig(max_items=1)}) as capped:
        kept = capped.knowledge.add("Fact kept", user_id="sarah")
        with pytest.raises(InvalidInputError, match="cap of 1"):
            capped.knowledge.add_many(["Fact a", "Fact b"], user_id="sarah")

        assert [i.id for i in capped.knowledge.list(user_id="sarah")] == [kept]


def test_repeated_feedback_is_counted_not_duplicated(mem: MemoryManager) -> None:
    first = mem.feedback.add("Answers too long", user_id="sarah", sentiment="negative", target="length")

    # Each manual call is a new occurrence; a second call in the same session is not.
    assert mem.feedback.add("answers too long!", user_id="sarah", sentiment="negative") == first
    in_session = mem.feedback.add("Answers too long", user_id="sarah", sentiment="negative", session_id="s9")
    again_in_session = mem.feedback.add(
        "Answers too long", user_id="sarah", sentiment="negative", session_id="s9"
    )

    assert in_session == again_in_session == first
    (item,) = mem.feedback.list(user_id="sarah")
    assert item.count == 3
    assert item.value["target"] == "length"
    assert [e.op for e in mem.history(user_id="sarah", item_id=first)] == ["add", "update", "update"]


def test_feedback_with_another_sentiment_is_a_separate_entry(mem: MemoryManager) -> None:
    liked = mem.feedback.add("Used tables", user_id="sarah", sentiment="positive")
    disliked = mem.feedback.add("Used tables", user_id="sarah", sentiment="negative")

    assert liked != disliked
    assert [(i.data.sentiment, i.count) for i in mem.feedback.list(user_id="sarah")] == [
        ("positive", 1),
        ("negative", 1),
    ]


def test_every_collection_change_writes_exactly_one_event_in_order(mem: MemoryManager) -> None:
    acme = mem.knowledge.add("Works at Acme", user_id="sarah")
    mem.knowledge.add("works at acme", user_id="sarah")  # duplicate: no event
    globex = mem.knowledge.add("Works at Globex", user_id="sarah", replaces=acme)
    liked = mem.feedback.add("Liked the examples", user_id="sarah", sentiment="positive")
    mem.feedback.add("Liked the examples", user_id="sarah", sentiment="positive")
    mem.forget(globex, user_id="sarah")

    assert history_of(mem) == [
        ("add", acme),
        ("add", globex),
        ("supersede", acme),
        ("add", liked),
        ("update", liked),
        ("delete", globex),
    ]


@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.75, 0.9, 1.0])
def test_the_word_index_finds_every_item_that_could_reach_the_threshold_oldest_first(
    threshold: float,
) -> None:
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(12)]
    texts = {f"k{i}": " ".join(rng.sample(vocabulary, rng.randint(1, 6))) for i in range(300)}
    index = WordIndex()
    for key, text in texts.items():
        index.put(key, text)
    for key in list(texts)[::3]:  # items that left the live set are never candidates
        index.discard(key)
    live = [key for key in texts if key in index.since]
    for _ in range(100):
        query = " ".join(rng.sample(vocabulary, rng.randint(1, 6)))
        found = index.candidates(query, threshold)
        reaching = [
            k for k in live if similarity(query, texts[k]) >= threshold and similarity(query, texts[k]) > 0
        ]
        assert set(reaching) <= set(found) <= set(live)
        assert found == sorted(found, key=live.index)
