"""Dedupe folds two facts only when they say the same thing.

A table of pairs, each applied in both directions: the first text is stored, the second comes in.
MUST_FOLD pairs are true repeats and trivial rewordings (case, punctuation, light words like "the" or
"also", phrases moved as a whole): the second adds nothing. MUST_NOT_FOLD pairs differ in order,
direction, negation, numbers, dates or names; every one of them passes the word-set similarity gate
(asserted), so it is the meaning guard that keeps them apart. The table runs through the knowledge
layer's real merge; a subset, and the Paris/Berlin case through ``learn``, run on a real store on both
backends.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from agentmem import MemoryManager
from agentmem.layers import Entry, KnowledgeLayer, NewEntries
from agentmem.layers.meaning import same_meaning
from agentmem.records import MemoryItem
from agentmem.testing import ScriptedModel
from agentmem.text import similarity

NOW = datetime(2024, 6, 1, tzinfo=UTC)
knowledge = KnowledgeLayer()
THRESHOLD = knowledge.similarity_threshold
assert THRESHOLD is not None

# Twenty-odd words, so that one changed word still leaves the pair over the similarity bar.
TAIL = (
    "for the quarterly planning review with the whole data platform team and the finance people at the "
    "Berlin office"
)

MUST_FOLD = [
    ("Moved from Berlin to Paris in 2021", "moved from Berlin to Paris in 2021."),
    ("Builds a churn model for Acme", "builds a churn-model for ACME!"),
    ("Prefers tea over coffee in the morning", "prefers  tea over coffee, in the morning!"),
    ("Uses Postgres at work", "uses postgres at work"),
    ("Doesn't drink coffee after 4 pm", "Doesn’t drink coffee after 4 pm"),
    (
        "Sarah trains a gradient boosted churn model on Acme data",
        "Sarah also trains a gradient boosted churn model on Acme data",
    ),
    (
        "Uses the Vim editor daily at work for Python and Go projects",
        "Uses Vim editor daily at work for Python and Go projects",
    ),
    (
        "Currently works as a data engineer at Acme in Berlin since 2020",
        "Works as a data engineer at Acme in Berlin since 2020",
    ),
    (
        "The user still lives in Berlin with two cats and a dog",
        "The user lives in Berlin with two cats and a dog",
    ),
    (
        "Just moved to Berlin from Paris for a new job at Acme",
        "Moved to Berlin from Paris for a new job at Acme",
    ),
    (
        "Really enjoys hiking in the Alps with her two sisters every summer",
        "Enjoys hiking in the Alps with her two sisters every summer",
    ),
    ("Works from home on Mondays", "On Mondays works from home"),
    ("Plays tennis on Saturdays with Tom", "On Saturdays plays tennis with Tom"),
    ("Moved from Paris to Berlin", "Moved to Berlin from Paris"),
    ("Visited Rome after Florence", "After Florence visited Rome"),
    ("Acme data weekly", "weekly Acme data"),
]

MUST_NOT_FOLD = [
    # order and direction
    ("Moved from Paris to Berlin", "Moved from Berlin to Paris"),
    ("Wants to move from Berlin to Munich next year", "Wants to move from Munich to Berlin next year"),
    ("Migrated the service from MySQL to PostgreSQL", "Migrated the service from PostgreSQL to MySQL"),
    ("Switched from Windows to Linux at home", "Switched from Linux to Windows at home"),
    ("Prefers tea over coffee", "Prefers coffee over tea"),
    ("prefers cats to dogs as pets", "prefers dogs to cats as pets"),
    (
        "Prefers dark mode over light mode in every editor",
        "Prefers light mode over dark mode in every editor",
    ),
    ("Python is faster than Go for this service", "Go is faster than Python for this service"),
    ("Ranks Rust above Go for systems work", "Ranks Go above Rust for systems work"),
    ("Alice manages Bob on the platform team", "Bob manages Alice on the platform team"),
    ("Sarah's manager is Tom", "Tom's manager is Sarah"),
    ("Lives in Paris and works in Berlin", "Lives in Berlin and works in Paris"),
    ("Leaves for Tokyo before the conference in Osaka", "Leaves for Osaka before the conference in Tokyo"),
    (
        "Upgraded the cluster from version 14 to version 15",
        "Upgraded the cluster from version 15 to version 14",
    ),
    ("Has 3 cats and 2 dogs", "Has 2 cats and 3 dogs"),
    # negation and polarity
    ("Is on the data platform team at Acme in Berlin", "Is not on the data platform team at Acme in Berlin"),
    (
        "Drinks coffee with breakfast every day before work at the office",
        "Never drinks coffee with breakfast every day before work at the office",
    ),
    (
        "Likes Python for data work at the office and at home " + TAIL,
        "No longer likes Python for data work at the office and at home " + TAIL,
    ),
    ("Likes working with pandas " + TAIL, "Dislikes working with pandas " + TAIL),
    ("Will keep using Jira " + TAIL, "Will stop using Jira " + TAIL),
    (
        "Likes Python, not Java, for data work at the office",
        "Likes Java, not Python, for data work at the office",
    ),
    ("Is allergic to peanuts but not to shellfish", "Is allergic to shellfish but not to peanuts"),
    ("Reports to the CTO, not the CEO", "Reports to the CEO, not the CTO"),
    (
        "Worked as a data engineer at Acme in Berlin on the churn team",
        "Formerly worked as a data engineer at Acme in Berlin on the churn team",
    ),
    # numbers and dates
    ("Meets Tom on May 3 " + TAIL, "Meets Tom on May 4 " + TAIL),
    ("Started at Acme in 2019 " + TAIL, "Started at Acme in 2021 " + TAIL),
    ("Runs 5 km every morning " + TAIL, "Runs 10 km every morning " + TAIL),
    ("Meets Tom in May " + TAIL, "Meets Tom in March " + TAIL),
    # names and other content words on one side only
    ("Her manager is Tom " + TAIL, "Her manager is Tim " + TAIL),
    (
        "Works with Tom on the churn model for the Acme sales team",
        "Works with Tom Smith on the churn model for the Acme sales team",
    ),
    (
        "Sarah trains a gradient boosted churn model on Acme data",
        "Sarah trains a gradient boosted churn model on Acme data exports",
    ),
    # lowercase content words trading places: no relation word or capital marks their order
    ("Loves jazz and hates rock", "Loves rock and hates jazz"),
    ("Team lead is alice, deputy is bob", "Team lead is bob, deputy is alice"),
    ("Waters the roses daily and the ferns weekly", "Waters the ferns daily and the roses weekly"),
]

TABLE = [(a, b, True) for a, b in MUST_FOLD] + [(a, b, False) for a, b in MUST_NOT_FOLD]
BOTH_WAYS = [(a, b, fold) for a, b, fold in TABLE] + [(b, a, fold) for a, b, fold in TABLE]


def fact(text: str) -> dict[str, Any]:
    return {"text": text, "topics": []}


def stored(text: str) -> MemoryItem:
    return MemoryItem(
        id="m1",
        layer="knowledge",
        key=knowledge.key_of(fact(text)),
        text=text,
        value=fact(text),
        user_id="sarah",
        agent_id=None,
        session_id=None,
        source="manual",
        confidence=1.0,
        count=1,
        explicit=True,
        created_at=NOW,
        updated_at=NOW,
        meta={},
    )


def label(row: tuple[str, str, bool]) -> str:
    a, b, fold = row
    return f"{'fold' if fold else 'keep'}: {a[:40]} | {b[:40]}"


def test_the_table_covers_both_kinds_in_both_directions() -> None:
    assert len(TABLE) >= 40
    assert len(MUST_FOLD) >= 15
    assert len(MUST_NOT_FOLD) >= 25
    assert len(BOTH_WAYS) == 2 * len(TABLE)


@pytest.mark.parametrize(("first", "second"), MUST_NOT_FOLD, ids=[label((*r, False)) for r in MUST_NOT_FOLD])
def test_every_must_not_fold_pair_passes_the_similarity_gate(first: str, second: str) -> None:
    """So that the guard, not the gate, is what keeps each of them apart."""
    assert similarity(first, second) >= THRESHOLD


@pytest.mark.parametrize(("first", "second", "fold"), BOTH_WAYS, ids=[label(r) for r in BOTH_WAYS])
def test_the_merge_folds_only_what_says_the_same(first: str, second: str, fold: bool) -> None:
    ops = knowledge.merge([stored(first)], NewEntries((Entry(fact(second)),)), NOW)

    assert [type(op).__name__ for op in ops] == ([] if fold else ["Add"])
    assert same_meaning(first, second) is same_meaning(second, first)


@pytest.mark.parametrize(("first", "second", "fold"), BOTH_WAYS, ids=[label(r) for r in BOTH_WAYS])
def test_entries_of_one_change_fold_the_same_way(first: str, second: str, fold: bool) -> None:
    ops = knowledge.merge([], NewEntries((Entry(fact(first)), Entry(fact(second)))), NOW)

    assert [type(op).__name__ for op in ops] == (["Add"] if fold else ["Add", "Add"])


# ---- on a real store, both backends ----------------------------------------------------------------

STORE_ROWS = [
    (*MUST_NOT_FOLD[0], False),  # Paris/Berlin
    (*MUST_NOT_FOLD[15], False),  # "not on the team"
    (*MUST_NOT_FOLD[24], False),  # May 3 / May 4
    (*MUST_NOT_FOLD[9], False),  # Alice manages Bob
    (*MUST_FOLD[5], True),  # "also"
    (*MUST_FOLD[13], True),  # from Paris to Berlin, phrases moved
]


@pytest.mark.parametrize(
    ("first", "second", "fold"),
    STORE_ROWS + [(b, a, fold) for a, b, fold in STORE_ROWS],
    ids=[label(r) for r in STORE_ROWS] + [label((b, a, f)) for a, b, f in STORE_ROWS],
)
def test_adding_through_the_api_stores_a_second_fact_unless_it_says_the_same(
    mem: MemoryManager, first: str, second: str, fold: bool
) -> None:
    first_id = mem.knowledge.add(first, user_id="sarah")

    second_id = mem.knowledge.add(second, user_id="sarah")

    texts = [item.text for item in mem.knowledge.list(user_id="sarah")]
    if fold:
        assert (second_id, texts) == (first_id, [first])
    else:
        assert second_id != first_id
        assert sorted(texts) == sorted([first, second])


def test_learning_the_opposite_move_stores_a_second_fact(make_mem: Any) -> None:
    model = ScriptedModel(
        [
            {"knowledge": [{"text": "Moved from Berlin to Paris", "topics": ["home"]}]},
            {"knowledge": [{"text": "Moved from Paris to Berlin", "topics": ["home"]}]},
        ]
    )
    mem = make_mem(model=model)

    first = mem.learn([{"role": "user", "content": "I moved from Berlin to Paris."}], user_id="sarah")
    second = mem.learn([{"role": "user", "content": "Then I moved from Paris to Berlin."}], user_id="sarah")

    [added_first] = first.all_changes
    [added_second] = second.all_changes
    assert (added_second.op, added_second.layer) == ("add", "knowledge")
    assert added_second.item_id != added_first.item_id
    assert [item.text for item in mem.knowledge.list(user_id="sarah")] == [
        "Moved from Berlin to Paris",
        "Moved from Paris to Berlin",
    ]


def test_a_layer_can_choose_its_own_meaning_guard() -> None:
    class WordsOnly(KnowledgeLayer):
        """Folds on word-set similarity alone, as knowledge did before the guard."""

        def says_the_same(self, text: str, other: str) -> bool:
            return True

    entry = NewEntries((Entry(fact("Moved from Berlin to Paris")),))

    assert WordsOnly().merge([stored("Moved from Paris to Berlin")], entry, NOW) == []
    assert [
        type(op).__name__ for op in knowledge.merge([stored("Moved from Paris to Berlin")], entry, NOW)
    ] == ["Add"]
