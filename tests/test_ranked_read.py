"""The ranked read path: compile under a budget reads only the rows it can use, search ranks in SQL,
and both give what a full read gives, on both backends."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from agentmem import LayerConfig, MemoryManager, StoreError
from agentmem.layers import CollectionLayer, KnowledgeLayer
from agentmem.store import Store
from agentmem.store.expiry import BEGINNING, text_rows, typed

VOCAB = [
    "pandas",
    "duckdb",
    "forecast",
    "churn",
    "retail",
    "model",
    "berlin",
    "marathon",
    "python",
    "rust",
    "teaching",
    "garden",
    "billing",
    "service",
    "reviews",
    "fridays",
    "coffee",
    "cycling",
    "statistics",
    "dashboards",
    "airflow",
    "spark",
    "cooking",
]
NOWHERE = "zeppelin"  # in no stored text


def fill(mem: MemoryManager, rng: random.Random, user: str) -> None:
    """A random memory: several writes of knowledge (one write shares one timestamp), agent-private
    copies of shared facts (same key: they hide the shared ones for that agent), repeated feedback."""
    mem.profile.update(user_id=user, name="Sam", role=" ".join(rng.sample(VOCAB, 2)))
    mem.policies.update(user_id=user, rules=[f"mention {w}" for w in rng.sample(VOCAB, 2)])
    for write in range(rng.randint(3, 6)):
        texts = [" ".join(rng.sample(VOCAB, rng.randint(2, 5))) for _ in range(rng.randint(1, 9))]
        mem.knowledge.add_many(texts, user_id=user)
        if rng.random() < 0.6:
            mem.knowledge.add_many(rng.sample(texts, rng.randint(1, len(texts))), user_id=user, agent_id="a1")
        for n in range(rng.randint(0, 3)):
            text = " ".join(rng.sample(VOCAB[:8], 2))  # few words: repeats raise counts
            mem.feedback.add(text, user_id=user, sentiment="positive", session_id=f"s{write}-{n}")


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Rows each compile read returned, in order."""
    counted: list[int] = []
    original = Store.context_rows

    def counting(self: Store, *args: Any, **kwargs: Any) -> Any:
        rows = original(self, *args, **kwargs)
        counted.append(len(rows))
        return rows

    monkeypatch.setattr(Store, "context_rows", counting)
    return counted


def reference(monkeypatch: pytest.MonkeyPatch, compile_: Callable[[], str]) -> str:
    """What compile gives when every row is read (collection layers not ranked in SQL)."""
    with monkeypatch.context() as patch:
        patch.setattr(CollectionLayer, "ranked_in_sql", False)
        return compile_()


@pytest.mark.parametrize("seed", range(4))
def test_budgeted_compile_equals_compile_of_a_full_read(
    seed: int, make_mem: Callable[..., MemoryManager], monkeypatch: pytest.MonkeyPatch, reads: list[int]
) -> None:
    rng = random.Random(seed)
    shares: dict[str, LayerConfig] = {}
    if seed % 2:
        shares = {"knowledge": LayerConfig(budget_share=0.35), "feedback": LayerConfig(budget_share=0.2)}
    mem = make_mem(layers=shares)
    fill(mem, rng, "u")
    fill(mem, random.Random(seed + 100), "other")  # same words, another user: never read
    queries = [None, NOWHERE, *(" ".join(rng.sample(VOCAB, rng.randint(1, 3))) for _ in range(3))]
    for first_read in (1, 3, 64):  # tiny first reads make every case page up
        monkeypatch.setattr("agentmem.compiler.MIN_READ", first_read)
        monkeypatch.setattr("agentmem.compiler.LINE_TOKENS", 10**9)
        for agent in (None, "a1"):
            for query in queries:
                for budget in (0, 1, 12, 40, 90, 200, 600, 100_000):

                    def compile_(
                        agent: str | None = agent, query: str | None = query, budget: int = budget
                    ) -> str:
                        return mem.compile(user_id="u", agent_id=agent, query=query, token_budget=budget)

                    expected = reference(monkeypatch, compile_)
                    del reads[:]
                    assert compile_() == expected, (first_read, agent, query, budget)
                    assert "Sam" in expected or budget < 40
    # Small budgets read a few rows of each ranked layer, and page up only as far as needed.
    monkeypatch.setattr("agentmem.compiler.MIN_READ", 1)
    del reads[:]
    mem.compile(user_id="u", query=queries[2], token_budget=12)
    assert reads
    assert max(reads) < len(mem.get(user_id="u").items)


def test_paging_reaches_past_a_layer_its_budget_share_skips_through(
    make_mem: Callable[..., MemoryManager], monkeypatch: pytest.MonkeyPatch, reads: list[int]
) -> None:
    """Knowledge (newer, so first) fills its share; the loop skips through all its other lines to the
    older feedback, so paging must read all of knowledge to find it."""
    monkeypatch.setattr("agentmem.compiler.LINE_TOKENS", 10**9)  # first reads of MIN_READ rows
    monkeypatch.setattr("agentmem.compiler.MIN_READ", 64)
    mem = make_mem(layers={"knowledge": LayerConfig(budget_share=0.2)})
    mem.feedback.add("short answers please", user_id="u", sentiment="positive")
    mem.knowledge.add_many(
        [f"fact number {n} about {VOCAB[n % len(VOCAB)]}" for n in range(150)], user_id="u"
    )
    compile_ = lambda: mem.compile(user_id="u", token_budget=300)  # noqa: E731
    expected = reference(monkeypatch, compile_)
    assert "short answers please" in expected
    assert "fact number" in expected
    del reads[:]
    assert compile_() == expected
    assert reads == [64 + 1, 150 + 1]  # knowledge's top 64 and the feedback row, then all of knowledge


def test_a_layer_with_its_own_order_is_read_whole() -> None:
    class Alphabetical(KnowledgeLayer):
        def order(self, rows: Any) -> Any:
            return sorted(rows, key=lambda r: r.key)

    class Ranked(KnowledgeLayer):
        pass

    class AlphabeticalMixin:
        def order(self, rows: Any) -> Any:
            return sorted(rows, key=lambda r: r.key)

    class Mixed(AlphabeticalMixin, KnowledgeLayer):
        pass

    class Vouched(Alphabetical):
        ranked_in_sql = True  # its author says the order is the store's after all

    assert Alphabetical.ranked_in_sql is False
    assert Mixed.ranked_in_sql is False  # the order came with a mixin, which said nothing
    assert Vouched.ranked_in_sql is True
    assert Ranked.ranked_in_sql is True


def test_a_custom_order_compiles_as_it_orders(make_mem: Callable[..., MemoryManager]) -> None:
    class Alphabetical(KnowledgeLayer):
        def order(self, rows: Any) -> Any:
            return sorted(rows, key=lambda r: r.key)

    mem = make_mem(layers={"knowledge": Alphabetical()})
    mem.knowledge.add_many([f"{w} fact" for w in VOCAB], user_id="u")
    xml = mem.compile(user_id="u", token_budget=2000)
    lines = [ln for ln in xml.splitlines() if ln.startswith("- ")]
    assert len(lines) == len(VOCAB)
    assert lines == sorted(lines)


def test_search_ranks_by_relevance_in_sql(mem: MemoryManager) -> None:
    mem.knowledge.add_many(
        [
            "Cooks pasta on Sundays",
            "Runs marathons in Berlin and trains for the Berlin marathon every spring",
            "Visited Berlin once",
            "Likes gardening",
        ],
        user_id="u",
    )
    hits = mem.search("berlin marathon running", user_id="u")
    assert [h.item.text for h in hits][:2] == [
        "Runs marathons in Berlin and trains for the Berlin marathon every spring",
        "Visited Berlin once",
    ]
    assert len(hits) == 2  # only rows with a query word (stemmed: "running" finds "Runs")
    assert hits[0].score > hits[1].score > 0
    assert mem.search("berlin", user_id="u", limit=1) == mem.search("berlin", user_id="u")[:1]


def test_full_text_results_never_cross_users_or_agents(mem: MemoryManager) -> None:
    mem.knowledge.add("Maintains the billing service in Go", user_id="marco")
    mem.knowledge.add("Writes billing reports", user_id="marco", agent_id="reviewer")
    mem.knowledge.add("Audits the billing service", user_id="sarah")
    assert [h.item.text for h in mem.search("billing service", user_id="sarah")] == [
        "Audits the billing service"
    ]
    assert {h.item.text for h in mem.search("billing", user_id="marco")} == {
        "Maintains the billing service in Go"
    }
    assert len(mem.search("billing", user_id="marco", agent_id="reviewer")) == 2
    assert mem.search("billing", user_id="marco", agent_id="planner")[0].item.agent_id is None
    xml = mem.compile(user_id="sarah", query="billing service", token_budget=200)
    assert "Audits" in xml
    assert "Maintains" not in xml
    assert "reports" not in xml


def test_an_agents_item_hides_the_shared_one_under_a_budget(mem: MemoryManager) -> None:
    mem.knowledge.add_many([f"shared fact {w}" for w in VOCAB], user_id="u")
    mem.knowledge.add("shared fact pandas", user_id="u", agent_id="a1")  # same key: the agent's own copy
    xml = mem.compile(user_id="u", agent_id="a1", query="pandas", token_budget=60)
    assert xml.count("shared fact pandas") == 1
    full = mem.compile(user_id="u", agent_id="a1", query="pandas")
    assert full.count("shared fact pandas") == 1


@pytest.mark.parametrize(("agent_id", "session_id"), [(None, None), ("a1", None), (None, "s1"), ("a1", "s1")])
def test_of_one_key_only_the_narrowest_row_the_scope_sees_is_compiled(
    mem: MemoryManager, agent_id: str | None, session_id: str | None
) -> None:
    """A session's own row hides a user-wide one, then an agent's own row a shared one: alike in a read
    of every row (no budget: the hiding keys listed once) and in a budget's reads (looked up per row),
    whichever of the four kinds of row a key has."""
    styles = {(None, None): "shared", ("a1", None): "agents", (None, "s1"): "sessions", ("a1", "s1"): "both"}
    kinds = list(styles)
    for n, stored in enumerate(
        itertools.chain.from_iterable(itertools.combinations(kinds, k) for k in (1, 2, 3, 4))
    ):
        user = f"u{n}"
        for agent, session in stored:
            mem.policies.update(
                user_id=user, agent_id=agent, session_id=session, session_scoped=bool(session),
                response_style=styles[agent, session],
            )  # fmt: skip
        mem.knowledge.add_many([f"shared fact {w}" for w in VOCAB[:4]], user_id=user)
        seen = [key for key in stored if key[0] in (None, agent_id) and key[1] in (None, session_id)]
        narrowest = (
            [styles[max(seen, key=lambda key: (key[1] is not None, key[0] is not None))]] if seen else []
        )
        for query in (None, "response style"):
            for budget in (None, 10_000):
                xml = mem.compile(
                    user_id=user, agent_id=agent_id, session_id=session_id, query=query, token_budget=budget
                )
                assert [
                    style for style in styles.values() if f"response_style: {style}\n" in xml
                ] == narrowest


def test_a_row_hides_only_its_own_layers_key_and_only_while_open(
    make_mem: Callable[..., MemoryManager],
) -> None:
    class Notes(KnowledgeLayer):
        name = "notes"
        tag = "user_notes"
        prompt = "Notes: {{ layer }}"

    mem = make_mem(layers={"notes": Notes()})
    mem.knowledge.add("Short answers", user_id="u")
    mem.layer("notes").add("Short answers", user_id="u", agent_id="a1")  # the same key, in another layer
    mem.knowledge.add("Lives in Berlin", user_id="u")
    old = mem.knowledge.add("Lives in Berlin", user_id="u", agent_id="a1")
    mem.knowledge.add(
        "Lives in Paris now", user_id="u", agent_id="a1", replaces=old
    )  # closes the agent's row
    for query in (None, "berlin answers"):
        for budget in (None, 1000):
            xml = mem.compile(user_id="u", agent_id="a1", query=query, token_budget=budget)
            assert xml.count("Short answers") == 2
            assert xml.count("Lives in Berlin") == 1
            assert "Lives in Paris now" in xml


def test_recalls_statements_bind_datetimes_as_a_stored_column_holds_them(mem: MemoryManager) -> None:
    """``text_rows`` hands SQLite the statement as written: its datetimes must be what SQLAlchemy binds."""
    sql = "SELECT :moment"
    for moment in (datetime(2026, 3, 1, 12, 30, 5, 7, tzinfo=timezone(timedelta(hours=8))), BEGINNING):
        with mem._store.engine.connect() as conn:
            bound = conn.execute(typed(sql, {"moment": moment}), {"moment": moment}).one()
            assert text_rows(conn, sql, {"moment": moment}) == [tuple(bound)]


def test_a_drivers_error_while_rows_are_fetched_is_a_store_error(tmp_path: Path) -> None:
    """SQLite finds a broken row only when it reaches it: the whole read and recall read rows straight
    from the driver, and must still raise StoreError."""
    mem = MemoryManager(f"sqlite:///{tmp_path / 'memory.db'}")
    mem.knowledge.add_many(
        [{"text": f"coffee {n}", "topics": ["x"]} for n in ("one", "two", "three")], user_id="u"
    )
    with mem._store.engine.begin() as conn:  # the newest row's value is no longer JSON
        conn.exec_driver_sql(
            "UPDATE agentmem_items SET value = 'not json' WHERE pk = (SELECT max(pk) FROM agentmem_items)"
        )
    for query in ("coffee", None):
        with pytest.raises(StoreError, match="malformed JSON"):
            mem.compile(user_id="u", query=query, topics=["x"])
    mem.close()


def test_a_budget_larger_than_any_database_limit_compiles_everything(mem: MemoryManager) -> None:
    mem.knowledge.add_many(["Reads books on trains", "Keeps bees"], user_id="u")
    everything = mem.compile(user_id="u", query="books")
    assert "Keeps bees" in everything
    assert mem.compile(user_id="u", query="books", token_budget=10**21) == everything


def test_searching_no_layer_finds_nothing(mem: MemoryManager) -> None:
    mem.knowledge.add("Reads books on trains", user_id="u")
    assert mem.search("books", user_id="u", layers=[]) == []
    assert [hit.item.text for hit in mem.search("books", user_id="u")] == ["Reads books on trains"]


def test_stop_words_neither_match_nor_rank_on_either_backend(mem: MemoryManager) -> None:
    mem.knowledge.add_many(["Lives in the north of Wales", "Has a cat called Tom"], user_id="u")
    assert mem.search("the of a in", user_id="u") == []
    assert [h.item.text for h in mem.search("the cat", user_id="u")] == ["Has a cat called Tom"]
    ranked = mem.compile(user_id="u", query="is the cat in", token_budget=1000)
    assert ranked.index("Has a cat") < ranked.index("Lives in the north")


def test_ranking_considers_a_bounded_pool_of_each_terms_newest_matches(
    mem: MemoryManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentmem.store import search

    monkeypatch.setattr(search, "RANK_POOL", 4)
    monkeypatch.setattr(search, "MIN_TERM_POOL", 1)
    # Oldest first; the oldest match is the best one for "kayak" (twice, in a short text).
    texts = [
        "kayak kayak",
        "kayak in the lagoon",
        *(f"kayak trip {n} along the long river" for n in range(5)),
    ]
    for text in [*texts, "Keeps bees"]:
        mem.knowledge.add(text, user_id="u")
    hits = mem.search("kayak", user_id="u")  # one term: its four newest matches, equal scores
    assert {h.item.text for h in hits} == {f"kayak trip {n} along the long river" for n in (4, 3, 2, 1)}
    # Two terms share the pool: the newest two "kayak" rows, and every row with the rarer "lagoon".
    hits = mem.search("kayak lagoon", user_id="u")
    assert hits[0].item.text == "kayak in the lagoon"
    assert {h.item.text for h in hits[1:]} == {f"kayak trip {n} along the long river" for n in (4, 3)}
    # Older matches are not lost to compile: they read as unmatched, in recency order after the pool.
    xml = mem.compile(user_id="u", query="kayak")
    assert all(text in xml for text in texts)
    monkeypatch.setattr(search, "RANK_POOL", 2_000)
    assert mem.search("kayak", user_id="u")[0].item.text == "kayak kayak"
