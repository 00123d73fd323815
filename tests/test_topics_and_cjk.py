"""Recall by topic and in CJK scripts, on both backends: a topic's word finds its item, ``topics=``
filters search and compile, and Chinese, Japanese and Korean text is found and ranked by its words."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentmem import InvalidInputError, MemoryManager
from agentmem.text import similarity


def texts(hits: list[Any]) -> list[str]:
    return [h.item.text for h in hits]


@pytest.fixture
def work_and_home(mem: MemoryManager) -> MemoryManager:
    """Knowledge with topics (one spelled in capitals), one fact without, and layers without topics."""
    mem.profile.update(user_id="u", name="Ana")
    mem.policies.update(user_id="u", rules=["answer in Portuguese"])
    mem.knowledge.add("Deploys services with Kubernetes", user_id="u", topics=["Work", "infra"])
    mem.knowledge.add("Deploys a garden irrigation system", user_id="u", topics=["home"])
    mem.knowledge.add("Deploys on Fridays", user_id="u")
    mem.knowledge.add("Sees a doctor on Mondays", user_id="u", topics=["ärzte"])
    mem.feedback.add("Liked the deploy diagram", user_id="u", sentiment="positive")
    return mem


def test_a_topic_word_finds_the_item(mem: MemoryManager) -> None:
    mem.knowledge.add("Uses pandas and DuckDB", user_id="u", topics=["Data stack"])
    mem.knowledge.add("Walks the dog", user_id="u")
    assert texts(mem.search("stack", user_id="u")) == ["Uses pandas and DuckDB"]
    # A repeat that adds a topic (same text) makes the new topic searchable too.
    mem.knowledge.add("Uses pandas and DuckDB", user_id="u", topics=["analytics"])
    assert texts(mem.search("analytics", user_id="u")) == ["Uses pandas and DuckDB"]
    (fact,) = [k for k in mem.get(user_id="u").knowledge if "pandas" in k.text]
    assert fact.value["topics"] == ["Data stack", "analytics"]
    # And a query ranks it into a budgeted compile by its topic.
    assert "Uses pandas and DuckDB" in mem.compile(user_id="u", query="analytics", token_budget=60)


def test_topics_do_not_make_facts_duplicates(mem: MemoryManager) -> None:
    """Dedupe compares texts: a fact whose text is another's topics is a fact of its own."""
    mem.knowledge.add("Plays the cello", user_id="u", topics=["weekend", "music"])
    mem.knowledge.add("weekend music", user_id="u")
    mem.knowledge.add("Plays the cello", user_id="u", topics=["orchestra"])
    facts = {k.text: k for k in mem.get(user_id="u").knowledge}
    assert sorted(facts) == ["Plays the cello", "weekend music"]
    assert facts["Plays the cello"].value["topics"] == ["weekend", "music", "orchestra"]


def test_search_keeps_the_items_listing_a_topic(work_and_home: MemoryManager) -> None:
    mem = work_and_home
    everything = texts(mem.search("deploys", user_id="u"))
    assert len(everything) == 4  # three facts and the feedback
    assert texts(mem.search("deploys", user_id="u", topics=["work"])) == ["Deploys services with Kubernetes"]
    # Ignoring case both ways (a stored capital, a given one), beyond ASCII for lowercase topics.
    assert texts(mem.search("deploys", user_id="u", topics=["WORK"])) == ["Deploys services with Kubernetes"]
    assert texts(mem.search("doctor", user_id="u", topics=["ÄRZTE"])) == ["Sees a doctor on Mondays"]
    both = texts(mem.search("deploys", user_id="u", topics=["Home", "infra"]))
    assert sorted(both) == ["Deploys a garden irrigation system", "Deploys services with Kubernetes"]
    # Layers without topics have no item listing one: not searched; nor are items without topics.
    found = texts(mem.search("deploy diagram", user_id="u", topics=["work", "home"]))
    assert sorted(found) == ["Deploys a garden irrigation system", "Deploys services with Kubernetes"]
    assert mem.search("deploys", user_id="u", layers=["feedback"], topics=["work"]) == []
    assert mem.search("deploys", user_id="u", topics=["cooking"]) == []


@pytest.mark.parametrize("query", [None, "kubernetes garden"])
@pytest.mark.parametrize("budget", [None, 400])
def test_compile_filters_the_layers_with_topics_only(
    work_and_home: MemoryManager, query: str | None, budget: int | None
) -> None:
    mem = work_and_home
    block = mem.compile(user_id="u", query=query, token_budget=budget, topics=["HOME"])
    assert "Deploys a garden irrigation system" in block
    assert "Kubernetes" not in block
    assert "Fridays" not in block  # a fact without topics lists none of them
    # Profile, policies and feedback (whose schema has no topics) are compiled as without the filter.
    for kept in ("Ana", "answer in Portuguese", "Liked the deploy diagram"):
        assert kept in block
    unfiltered = mem.compile(user_id="u", query=query, token_budget=budget)
    assert "Kubernetes" in unfiltered
    assert "Fridays" in unfiltered


def test_compile_filters_an_agents_own_and_shared_memory(mem: MemoryManager) -> None:
    mem.knowledge.add("Reviews pull requests on Fridays", user_id="u", agent_id="rev", topics=["work"])
    mem.knowledge.add("Reviews wine for a blog", user_id="u", agent_id="rev", topics=["hobby"])
    mem.knowledge.add("Writes the team's style guide", agent_id="rev", topics=["work"])
    mem.knowledge.add("Knows the office's coffee order", agent_id="rev", topics=["office"])
    block = mem.compile(user_id="u", agent_id="rev", topics=["work"])
    assert "Reviews pull requests on Fridays" in block
    assert "Writes the team's style guide" in block
    assert "wine" not in block
    assert "coffee" not in block


@pytest.mark.parametrize(
    "topics",
    ["work", [], [""], ["  "], [3], ["work", None], ["x" * 201], ["t"] * 21, ["bell\x07"], {"work": 1}],
)
def test_bad_topics_are_refused(work_and_home: MemoryManager, topics: Any) -> None:
    mem = work_and_home
    before = mem.export_user("u")
    with pytest.raises(InvalidInputError, match="topic"):
        mem.search("deploys", user_id="u", topics=topics)
    with pytest.raises(InvalidInputError, match="topic"):
        mem.compile(user_id="u", topics=topics)
    assert mem.export_user("u") == before


CJK_FACTS = [
    "我每天早上喝咖啡",  # I drink coffee every morning
    "我喜欢喝茶",  # I like drinking tea
    "我喜欢咖啡",  # I like coffee
    "東京でPythonを教えています",  # teaches Python in Tokyo
    "大阪で料理を習っています",  # learns cooking in Osaka
    "서울에서 데이터 분석을 합니다",  # does data analysis in Seoul
    "부산에서 요리를 배웁니다",  # learns cooking in Busan
    "Drinks coffee with oat milk",
]


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("咖啡", {"我每天早上喝咖啡", "我喜欢咖啡"}),
        ("早上喝咖啡", {"我每天早上喝咖啡"}),  # more of its pairs than "我喜欢咖啡" has
        ("喝茶", {"我喜欢喝茶"}),
        ("東京", {"東京でPythonを教えています"}),
        ("料理を習う", {"大阪で料理を習っています"}),
        ("python", {"東京でPythonを教えています"}),
        ("서울", {"서울에서 데이터 분석을 합니다"}),
        ("요리를 배우다", {"부산에서 요리를 배웁니다"}),
    ],
)
def test_chinese_japanese_and_korean_text_is_found_and_ranked(
    mem: MemoryManager, query: str, first: set[str]
) -> None:
    mem.knowledge.add_many(CJK_FACTS, user_id="u")
    found = texts(mem.search(query, user_id="u"))
    assert set(found[: len(first)]) == first
    assert "Drinks coffee with oat milk" not in found
    if len(first) == 1:
        (best,) = first
        assert found.count(best) == 1
        # The compile read ranks it first too: the first fact under a small budget.
        block = mem.compile(user_id="u", query=query, token_budget=40)
        assert next(line for line in block.splitlines() if line.startswith("- ")) == f"- {best}"


def test_whole_ranking_of_a_chinese_query(mem: MemoryManager) -> None:
    mem.knowledge.add_many(CJK_FACTS, user_id="u")
    assert texts(mem.search("每天早上喝咖啡", user_id="u")) == ["我每天早上喝咖啡", "我喜欢咖啡"]


def test_cjk_text_keeps_dedupe(mem: MemoryManager) -> None:
    """Identical CJK facts are one item and different ones stay apart; word-set similarity, which
    compared each text as one long word, now compares their character pairs."""
    mem.knowledge.add_many(["我喜欢喝咖啡", "我不喜欢喝咖啡"], user_id="u")
    mem.knowledge.add("我喜欢喝咖啡", user_id="u")
    mem.knowledge.add_many(["東京に住んでいます", "東京に住んでいます。"], user_id="u")
    assert sorted(k.text for k in mem.get(user_id="u").knowledge) == [
        "我不喜欢喝咖啡",
        "我喜欢喝咖啡",
        "東京に住んでいます",
    ]
    assert 0.5 < similarity("我每天早上喝咖啡", "我每天早上都喝咖啡") < 1
    assert similarity("我喜欢喝茶", "서울에서 데이터 분석을 합니다") == 0


def test_the_memory_search_tool_takes_topics(work_and_home: MemoryManager) -> None:
    tools = work_and_home.tools(user_id="u")
    (search,) = [d["function"] for d in tools.definitions if d["function"]["name"] == "memory_search"]
    assert search["parameters"]["properties"]["topics"]["items"] == {"type": "string"}
    found = json.loads(tools.dispatch("memory_search", {"query": "deploys", "topics": ["work"]}))
    assert [r["text"] for r in found["results"]] == ["Deploys services with Kubernetes"]
    refused = json.loads(tools.dispatch("memory_search", {"query": "deploys", "topics": "work"}))
    assert refused["ok"] is False
    assert "topics must be a list" in refused["error"]
