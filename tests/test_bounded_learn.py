"""One learn takes at most MAX_CHANGES_PER_LEARN changes from a reply; the rest are counted as dropped."""

from __future__ import annotations

from collections.abc import Callable

from agentmem import MemoryManager
from agentmem.extraction.patches import MAX_CHANGES_PER_LEARN
from agentmem.testing import ScriptedModel

USER = "u1"
TURN = [{"role": "user", "content": "I live in Oslo and I run marathons every year."}]


def facts(n: int) -> list[dict[str, str]]:
    # Different numbers never say the same thing, so no two of these fold into one item.
    return [{"text": f"Ran marathon number {i}"} for i in range(n)]


def test_a_reply_over_the_cap_stores_the_cap_and_counts_the_rest(
    make_mem: Callable[..., MemoryManager],
) -> None:
    extra = 7
    mem = make_mem(model=ScriptedModel(lambda _m: {"knowledge": facts(MAX_CHANGES_PER_LEARN + extra)}))
    result = mem.learn(TURN, user_id=USER)

    stored = mem.knowledge.list(user_id=USER)
    assert len(stored) == MAX_CHANGES_PER_LEARN
    # The first entries of the reply are the ones kept.
    assert {item.text for item in stored} == {f["text"] for f in facts(MAX_CHANGES_PER_LEARN)}
    assert result.usage.dropped.get("over_cap") == extra


def test_a_reply_at_the_cap_drops_nothing(make_mem: Callable[..., MemoryManager]) -> None:
    mem = make_mem(model=ScriptedModel(lambda _m: {"knowledge": facts(MAX_CHANGES_PER_LEARN)}))
    result = mem.learn(TURN, user_id=USER)

    assert len(mem.knowledge.list(user_id=USER)) == MAX_CHANGES_PER_LEARN
    assert "over_cap" not in result.usage.dropped


def test_the_cap_counts_changes_across_layers(make_mem: Callable[..., MemoryManager]) -> None:
    profile = {"name": "Sarah", "location": "Oslo", "languages": ["Norwegian", "English"]}
    reply = {"profile": profile, "knowledge": facts(MAX_CHANGES_PER_LEARN)}
    mem = make_mem(model=ScriptedModel(lambda _m: reply))
    result = mem.learn(TURN, user_id=USER)

    stored_profile = mem.profile.get(user_id=USER)
    knowledge = mem.knowledge.list(user_id=USER)
    # Profile comes first in layer order: its three fields fit, and the facts fill what is left.
    assert (stored_profile.name, stored_profile.location) == ("Sarah", "Oslo")
    assert len(knowledge) == MAX_CHANGES_PER_LEARN - len(profile)
    assert result.usage.dropped.get("over_cap") == len(profile)
