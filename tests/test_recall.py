"""What compile recalls beyond the query's own words, on both backends: the words the best hits share
(pseudo-relevance feedback) and the facts learned next to a strong hit; never across scopes, and never
in ``search``, whose hits must show why they match. Plus the compact rendering of dated facts."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text as sql

from agentmem import MemoryManager
from agentmem.scope import Scope
from agentmem.store import recall
from agentmem.testing import ManualClock
from agentmem.text import words

FILLER = [f"Collects stamps from country number {n}" for n in range(12)]


def lines_of(xml: str) -> list[str]:
    return [line[2:] for line in xml.splitlines() if line.startswith("- ")]


def test_words_the_best_hits_share_find_what_the_query_did_not_say(mem: MemoryManager) -> None:
    story = [
        "Went to the support group for transgender people on Tuesday",
        "The support group met again; the transgender speakers were inspiring",
        "Support group friends organised a picnic",
    ]
    # Written one by one (no neighbours: different writes): found only by words of the first hits.
    for text in ["Mentors transgender teenagers at the youth centre", *FILLER, *story]:
        mem.knowledge.add(text, user_id="u")
    xml = mem.compile(user_id="u", query="support group", token_budget=10_000)
    order = lines_of(xml)
    assert order[:3] == list(reversed(story)) or set(order[:3]) == set(story)
    # "transgender" is in most of the best hits: the fact that shares only it now ranks above the
    # unrelated ones, which a query of its own words alone would have left in recency order.
    mentor = order.index("Mentors transgender teenagers at the youth centre")
    assert mentor == 3
    assert all(order.index(text) > mentor for text in FILLER)
    # search returns only what matches the query itself
    assert {hit.item.text for hit in mem.search("support group", user_id="u")} == set(story)


def test_feedback_words_tied_in_count_are_chosen_alike_in_every_process(db_url: str) -> None:
    """More shared words than feedback takes, all equally shared: which ones are searched must not
    depend on the process (str hashing is salted per process), or one memory compiles two ways."""
    shared = [f"topic{n}" for n in range(recall.FEEDBACK_TERMS + 4)]
    with MemoryManager(db=db_url) as mem:
        for n in range(recall.FEEDBACK_HITS):
            mem.knowledge.add(f"Kayak trip {n} " + " ".join(shared), user_id="u")
        for word in shared:  # one fact per shared word: it ranks only if its word is searched
            mem.knowledge.add(f"Something about {word}", user_id="u")
    script = (
        "import sys; from agentmem import MemoryManager\n"
        "with MemoryManager(db=sys.argv[1]) as mem:\n"
        "    print(mem.compile(user_id='u', query='kayak', token_budget=10_000))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script, db_url],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in (1, 2, 3)
    }
    assert len(outputs) == 1
    assert "Something about" in outputs.pop()


def test_a_strong_hit_brings_what_was_learned_next_to_it_in_its_session(mem: MemoryManager) -> None:
    mem.knowledge.add_many(FILLER, user_id="u", session_id="s0")
    session = [
        "Asked which city has the best bakeries",
        "Recommended Lisbon for its pastel de nata",
        "Said thanks and booked a flight",
        "Asked about the weather in March",
    ]
    mem.knowledge.add_many(session, user_id="u", session_id="s1")
    mem.knowledge.add_many(["Asked where to buy running shoes"], user_id="u", session_id="s2")
    order = lines_of(mem.compile(user_id="u", query="bakeries", token_budget=10_000))
    # The hit, then the two turns after it in its session, the nearer first; the third is no
    # neighbour, nor is the session before it: they stay in recency order with the rest.
    assert order[:5] == [*session[:3], "Asked where to buy running shoes", session[3]]
    assert set(order[5:]) == set(FILLER)  # one write: one timestamp
    order = lines_of(mem.compile(user_id="u", query="pastel", token_budget=10_000))
    assert order[0] == session[1]
    assert set(order[1:3]) == {session[0], session[2]}  # one row away on either side
    assert order[3] == session[3]  # two rows away


def test_facts_of_one_write_are_neighbours_and_separate_writes_are_not(mem: MemoryManager) -> None:
    mem.knowledge.add("Plays the cello", user_id="u")
    mem.knowledge.add_many(["Moved flats last spring", "The new flat has a garden"], user_id="u")
    mem.knowledge.add("Grows tomatoes", user_id="u")
    order = lines_of(mem.compile(user_id="u", query="garden", token_budget=10_000))
    assert order[:2] == ["The new flat has a garden", "Moved flats last spring"]
    assert set(order[2:]) == {"Plays the cello", "Grows tomatoes"}


@pytest.mark.parametrize("reader", ["other session", "other agent", "other user"])
def test_recall_never_reaches_rows_the_scope_does_not_see(mem: MemoryManager, reader: str) -> None:
    """Rows another session, agent or user holds give a scope neither feedback words nor neighbours:
    its compile orders its own rows exactly as if they did not exist."""
    own = ["Keeps bees in the garden", "Sells honey at the market", *FILLER]
    mem.knowledge.add_many(own[:1], user_id="u")
    mem.knowledge.add_many(own[2:], user_id="u")
    mem.knowledge.add("Sells honey at the market", user_id="u")
    expected = mem.compile(user_id="u", query="bees garden", token_budget=10_000)
    hidden = ["Keeps bees in the garden shed", "Harvested honey market stamps country"]
    if reader == "other session":
        mem.knowledge.add_many(hidden, user_id="u", session_id="private", session_scoped=True)
    elif reader == "other agent":
        mem.knowledge.add_many(hidden, user_id="u", agent_id="a2")
    else:
        mem.knowledge.add_many(hidden, user_id="v")
    assert mem.compile(user_id="u", query="bees garden", token_budget=10_000) == expected


def test_facts_of_one_day_are_listed_under_their_date(db_url: str) -> None:
    clock = ManualClock(datetime(2026, 5, 8, 13, 0, tzinfo=UTC))
    with MemoryManager(db=db_url, clock=clock) as mem:
        mem.knowledge.add_many(["Started a pottery class", "Bought a kiln"], user_id="u")
        clock.advance(timedelta(days=32))
        mem.knowledge.add("Sold the first vase", user_id="u")
        mem.feedback.add("short answers", user_id="u", sentiment="positive")
        xml = mem.compile(user_id="u", query="pottery")  # the class, then its neighbour, then the rest
        assert xml == (
            "<user_knowledge>\n2026-05-08:\n- Started a pottery class\n- Bought a kiln\n"
            "2026-06-09:\n- Sold the first vase\n</user_knowledge>\n"
            "<user_feedback>\npositive:\n- short answers\n</user_feedback>"
        )
        # A budget counts each date once: what fits is exactly what the rendering holds.
        for budget in range(0, mem.count_tokens(xml) + 1):
            cut = mem.compile(user_id="u", query="pottery", token_budget=budget)
            assert mem.count_tokens(cut) <= budget
        assert mem.compile(user_id="u", query="pottery", token_budget=mem.count_tokens(xml)) == xml


class Concepts:
    """A test embedding model that knows a few paraphrases: each word counts toward its concept's axis
    (one per word otherwise), so "Where does she live?" and "Moved to Berlin" are near while they share
    no word. Counts its calls."""

    def __init__(self, dimensions: int = 64) -> None:
        self.dimensions = dimensions
        self.same = {"live": "home", "lives": "home", "moved": "home", "flat": "home", "city": "home"}
        self.calls: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        vectors = []
        for text in texts:
            vector = [0.0] * self.dimensions
            for word in words(text):
                concept = self.same.get(word, word)
                vector[int(hashlib.sha256(concept.encode()).hexdigest(), 16) % self.dimensions] += 1.0
            vectors.append(vector)
        return vectors


def test_meaning_finds_what_shares_no_word_and_fuses_with_words(db_url: str) -> None:
    concepts = Concepts()
    facts = ["Moved to Berlin last spring", "Where the office is: Hamburg harbour", *FILLER]
    with MemoryManager(db=db_url, embedding_model=concepts) as mem:
        for text in facts:  # separate writes: no neighbours
            mem.knowledge.add(text, user_id="u")
        mem.knowledge.add("Moved flat twice in Munich", user_id="other")  # another user's: never read
        concepts.calls.clear()
        order = lines_of(mem.compile(user_id="u", query="Where does she live?", token_budget=10_000))
        assert concepts.calls == [["Where does she live?"]]  # the query, once per compile
        # "Moved to Berlin" by meaning alone, then the fact that shares a word ("where" is a stop word:
        # none), then the rest in recency order.
        assert order[0] == "Moved to Berlin last spring"
        assert "Moved flat twice in Munich" not in order
        hits = mem.search("Where does she live?", user_id="u")
        assert hits[0].item.text == "Moved to Berlin last spring"
    with MemoryManager(db=db_url) as words_only:  # no model: the same memory ranked by words alone
        order = lines_of(words_only.compile(user_id="u", query="Where does she live?", token_budget=10_000))
        assert order[0] != "Moved to Berlin last spring"


def test_what_meaning_finds_is_read_only_while_the_scope_sees_it(db_url: str) -> None:
    """The nearest rows by meaning are checked by the read, not by the scan: an expired fact, another
    agent's fact and one of another session are never shown, and leave the visible ranking as it was."""
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    with MemoryManager(db=db_url, embedding_model=Concepts(), clock=clock) as mem:
        for text in ["Where the office is: Hamburg harbour", *FILLER]:
            mem.knowledge.add(text, user_id="u")
        expected = mem.compile(user_id="u", query="Where does she live?", token_budget=10_000)
        mem.knowledge.add("Moved to Berlin last spring", user_id="u", expires_at=clock() + timedelta(days=1))
        mem.knowledge.add("Moved to Munich once", user_id="u", agent_id="a2")
        mem.knowledge.add("Moved to Bonn", user_id="u", session_id="s", session_scoped=True)
        shown = mem.compile(user_id="u", query="Where does she live?", token_budget=10_000)
        assert lines_of(shown)[0] == "Moved to Berlin last spring"  # found by meaning while live
        clock.advance(timedelta(days=2))
        assert mem.compile(user_id="u", query="Where does she live?", token_budget=10_000) == expected
        assert "Moved to Berlin" not in str(mem.search("Where does she live?", user_id="u"))


def test_hits_found_by_meaning_lend_their_words_too(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No fact says "live": the two found by meaning share "Kreuzberg", so the fact that only shares
    that word ranks right after them (the others are not near the query at all: no word's axis is
    shared by chance in 4,096 dimensions)."""
    bakery = "Kreuzberg bakery sells the best rye bread"
    with MemoryManager(db=db_url, embedding_model=Concepts(4096)) as mem:
        for text in [*FILLER[:6], bakery, *FILLER[6:], "Moved to a flat in Kreuzberg", "Moved to Kreuzberg"]:
            mem.knowledge.add(text, user_id="u")  # separate writes: no neighbours
        order = lines_of(mem.compile(user_id="u", query="Where does she live?", token_budget=10_000))
        assert set(order[:2]) == {"Moved to a flat in Kreuzberg", "Moved to Kreuzberg"}
        assert order[2] == bakery
        monkeypatch.setattr(recall, "FEEDBACK_HITS", 0)  # no feedback words: nearness alone ranks it
        order = lines_of(mem.compile(user_id="u", query="Where does she live?", token_budget=10_000))
        assert order.index(bakery) > 2


def test_rows_near_the_query_the_scope_cannot_see_take_no_place_of_one_it_can(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An expired fact and another agent's are nearer the query than the live one: the nearest rows
    taken are the nearest the scope sees, however many others come first."""
    monkeypatch.setattr(recall, "DENSE_HITS", 1)
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    with MemoryManager(db=db_url, embedding_model=Concepts(4096), clock=clock) as mem:
        mem.knowledge.add("Moved to Berlin flat", user_id="u")
        mem.knowledge.add("Moved flat", user_id="u", expires_at=clock() + timedelta(days=1))
        mem.knowledge.add("Lives flat", user_id="u", agent_id="a2")
        clock.advance(timedelta(days=2))
        hits = mem.search("Where does she live?", user_id="u", agent_id="a1")
        assert [hit.item.text for hit in hits] == ["Moved to Berlin flat"]


def test_rows_by_words_the_scope_cannot_see_take_no_place_of_one_it_can(
    mem: MemoryManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recall, "CONTEXT_POOL", 2)
    mem.knowledge.add("Planned a kayak trip", user_id="u")
    for n in range(3):  # better matches, newer, and another agent's
        mem.knowledge.add(f"Kayak kayak {n}", user_id="u", agent_id="a2")
    hits = mem.search("kayak", user_id="u", agent_id="a1")
    assert [hit.item.text for hit in hits] == ["Planned a kayak trip"]


def test_a_neighbour_the_scope_cannot_see_is_not_raised(db_url: str) -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    with MemoryManager(db=db_url, clock=clock) as mem:
        mem.knowledge.add("Went kayaking in May", user_id="u", session_id="s1")
        mem.knowledge.add(
            "It rained all day", user_id="u", session_id="s1", expires_at=clock() + timedelta(days=1)
        )
        mem.knowledge.add("We saw seals near the cliffs", user_id="u", session_id="s1")
        store = mem._store
        with store.engine.connect() as conn:
            pk_of = dict(conn.execute(sql("SELECT text, pk FROM agentmem_items")).all())

            def ranked() -> dict[int, float]:
                return recall.relevance(conn, Scope.of("u"), "kayaking", ["knowledge"], store.expiry())

            assert set(ranked()) == set(pk_of.values())  # both neighbours of the hit, while live
            clock.advance(timedelta(days=2))
            assert set(ranked()) == {pk_of["Went kayaking in May"], pk_of["We saw seals near the cliffs"]}


def test_rows_that_rise_with_feedback_words_are_ranked_only_when_the_scope_sees_them(
    mem: MemoryManager,
) -> None:
    story = [
        "Went to the support group for transgender people on Tuesday",
        "The support group met again; the transgender speakers were inspiring",
    ]
    for fact in [*FILLER, *story]:
        mem.knowledge.add(fact, user_id="u")
    mem.knowledge.add("Mentors transgender teenagers", user_id="u", agent_id="a2")  # a feedback word only
    store = mem._store
    with store.engine.connect() as conn:
        hidden = conn.execute(sql("SELECT pk FROM agentmem_items WHERE agent_id = 'a2'")).scalar_one()

        def ranked(scope: Scope) -> dict[int, float]:
            return recall.relevance(conn, scope, "support group", ["knowledge"], store.expiry())

        assert hidden in ranked(Scope.of("u", "a2"))  # it rises with "transgender"...
        assert hidden not in ranked(Scope.of("u", "a1"))  # ...only where it is seen


def test_one_embedding_call_serves_the_users_and_the_agents_memory(db_url: str) -> None:
    concepts = Concepts()
    with MemoryManager(db=db_url, embedding_model=concepts) as mem:
        mem.knowledge.add("Moved to Berlin last spring", user_id="u")
        mem.knowledge.add("Users ask about their city first", agent_id="guide")
        concepts.calls.clear()
        xml = mem.compile(user_id="u", agent_id="guide", query="Where does she live?", token_budget=500)
        assert concepts.calls == [["Where does she live?"]]
        assert "Users ask about their city first" in xml
        assert "Moved to Berlin last spring" in xml
        mem.compile(user_id="u", agent_id="guide")  # no query: no call
        assert len(concepts.calls) == 1


def test_one_embedding_call_serves_a_memory_search_of_both_memories(db_url: str) -> None:
    concepts = Concepts(4096)
    with MemoryManager(db=db_url, embedding_model=concepts) as mem:
        mem.knowledge.add("Moved to Berlin", user_id="u")  # near "city" by meaning alone
        mem.knowledge.add("City questions come first", agent_id="guide")
        tools = mem.tools(user_id="u", agent_id="guide", agent_memory=True)
        concepts.calls.clear()
        found = json.loads(tools.dispatch("memory_search", {"query": "Which city?"}))["results"]
        assert concepts.calls == [["Which city?"]]
        assert {(r["text"], r["scope"]) for r in found} == {
            ("Moved to Berlin", "user"),
            ("City questions come first", "agent"),
        }


def test_one_embedding_call_serves_a_template_and_a_message_asked_again(db_url: str) -> None:
    concepts = Concepts()
    with MemoryManager(db=db_url, embedding_model=concepts) as mem:
        mem.knowledge.add("Moved to Berlin last spring", user_id="u")
        concepts.calls.clear()
        rendered = mem.render("{{memory}}\n{{knowledge}}", user_id="u", query="Where does she live?")
        assert rendered.count("Moved to Berlin last spring") == 2  # two compiles, one for each block
        mem.compile(user_id="u", query="Where does she live?")
        assert concepts.calls == [["Where does she live?"]]
        mem.compile(user_id="u", query="Which city?")
        assert concepts.calls[1:] == [["Which city?"]]


def test_fusion_counts_each_list_by_rank() -> None:
    """Reciprocal rank fusion: a row both lists rank counts more than a row either ranks first alone;
    the lexical scores' scale (BM25's, ts_rank's) does not matter, only their order."""
    lexical = {1: 900.0, 2: 3.0, 3: 2.0}
    dense = [4, 3]  # nearest first
    fused = recall._fused(lexical, dense)
    assert max(fused, key=fused.__getitem__) == 3
    assert fused[1] == fused[4]  # each first in one list
    assert recall._fused({1: 1e-9, 2: 5e-10}, []) == recall._fused({1: 9.0, 2: 1.0}, [])
