"""Retention: items expire (their own ``expires_at``, a layer's ttl) and leave every read at once;
``cleanup`` deletes old messages, sessions, pending inputs, closed and expired items, with counts and
events. Time is a ManualClock: nothing waits, and every moment is exact."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agentmem import (
    CleanupReport,
    ConfigurationError,
    ExtractionError,
    InvalidInputError,
    LayerConfig,
    MemoryManager,
    NotFoundError,
)
from agentmem.testing import ManualClock, ScriptedModel

DAY = timedelta(days=1)
WEEK = timedelta(days=7)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def timed(make_mem: Callable[..., MemoryManager], clock: ManualClock) -> Callable[..., MemoryManager]:
    """Managers on the test's database that read the test's clock."""
    return lambda **options: make_mem(clock=clock, **options)


def texts(mem: MemoryManager, user: str | None = "sam", agent: str | None = None) -> list[str]:
    return [item.text for item in mem.get(user_id=user, agent_id=agent).items]


def every_read(mem: MemoryManager, word: str, user: str = "sam", agent: str | None = None) -> dict[str, bool]:
    """Whether ``word`` appears through each read path of the scope."""
    tools = mem.tools(user_id=user, agent_id=agent)
    return {
        "compile": word in mem.compile(user_id=user, agent_id=agent),
        "compile_budget": word in mem.compile(user_id=user, agent_id=agent, query=word, token_budget=500),
        "compile_query": word in mem.compile(user_id=user, agent_id=agent, query=word),
        "search": bool(mem.search(word, user_id=user, agent_id=agent)),
        "get": any(word in t for t in texts(mem, user, agent)),
        "tools": word in tools.dispatch("memory_search", {"query": word}),
    }


# ---- expiry ----------------------------------------------------------------------------------


def test_an_item_leaves_every_read_when_its_own_date_passes(
    timed: Callable[..., MemoryManager], clock: ManualClock
) -> None:
    mem = timed()
    mem.knowledge.add("Works on the Atlas project", user_id="sam")
    trip = mem.knowledge.add("Travelling in Lisbon", user_id="sam", expires_at=clock() + 2 * DAY)
    (item,) = [i for i in mem.get(user_id="sam").items if i.id == trip]
    assert item.expires_at == clock() + 2 * DAY
    assert all(every_read(mem, "Lisbon").values())

    clock.advance(2 * DAY - timedelta(microseconds=1))
    assert all(every_read(mem, "Lisbon").values())
    clock.advance(timedelta(microseconds=1))  # the moment it expires
    assert not any(every_read(mem, "Lisbon").values())
    assert all(every_read(mem, "Atlas").values())
    with pytest.raises(NotFoundError):
        mem.forget(trip, user_id="sam")  # gone for every write, as for every read
    assert mem.tools(user_id="sam").dispatch("memory_update", {"item_id": trip, "value": "x"}).count("error")


def test_a_layer_ttl_counts_from_the_last_update_and_applies_to_items_stored_before_it(
    timed: Callable[..., MemoryManager], clock: ManualClock
) -> None:
    plain = timed()
    plain.feedback.add("Liked the short answer", user_id="sam")
    plain.knowledge.add("Has a dog called Rex", user_id="sam")
    clock.advance(5 * DAY)
    mem = timed(layers={"feedback": LayerConfig(ttl=WEEK)})
    mem.feedback.add("Liked the code sample", user_id="sam")
    clock.advance(2 * DAY)  # the first is 7 days old: out; the second is 2 days old
    assert texts(mem) == ["Has a dog called Rex", "Liked the code sample"]
    assert "short answer" not in mem.compile(user_id="sam", token_budget=400)
    assert texts(plain)[0] == "Liked the short answer"  # without a ttl, it stays

    clock.advance(4 * DAY)
    mem.feedback.add("Liked the code sample", user_id="sam")  # seen again: updated, its ttl restarts
    clock.advance(6 * DAY)
    assert "Liked the code sample" in texts(mem)
    clock.advance(DAY)
    assert texts(mem) == ["Has a dog called Rex"]


def test_compile_is_byte_stable_for_the_same_inputs_and_time(
    timed: Callable[..., MemoryManager], clock: ManualClock
) -> None:
    mem = timed(layers={"knowledge": LayerConfig(ttl=WEEK)})
    for n in range(30):
        mem.knowledge.add(
            f"Fact number {n} about databases", user_id="sam", expires_at=clock() + (n + 1) * DAY
        )
        clock.advance(timedelta(hours=5))
    clock.advance(timedelta(days=2))
    other = timed(layers={"knowledge": LayerConfig(ttl=WEEK)})
    first = [mem.compile(user_id="sam", query="databases", token_budget=b) for b in (None, 60, 200)]
    again = [other.compile(user_id="sam", query="databases", token_budget=b) for b in (None, 60, 200)]
    assert first == again
    assert "Fact number 0 " not in first[0]
    assert "Fact number 29 " in first[0]


def test_an_expired_agent_item_no_longer_hides_the_shared_one(
    timed: Callable[..., MemoryManager], clock: ManualClock
) -> None:
    mem = timed()
    shared = mem.knowledge.add("Prefers tea", user_id="sam")
    own = mem.knowledge.add("Prefers tea", user_id="sam", agent_id="coder", expires_at=clock() + DAY)
    assert [i.id for i in mem.get(user_id="sam", agent_id="coder").items] == [own]  # same key: it hides
    assert mem.compile(user_id="sam", agent_id="coder").count("Prefers tea") == 1
    assert mem.agents("sam") == ["coder"]
    clock.advance(DAY)
    assert [i.id for i in mem.get(user_id="sam", agent_id="coder").items] == [shared]
    for budget in (None, 100):  # the whole read and the ranked arms both hide through one condition
        assert mem.compile(user_id="sam", agent_id="coder", token_budget=budget).count("Prefers tea") == 1
    assert mem.agents("sam") == []


def test_an_expired_item_is_no_merge_candidate_and_makes_way_for_a_new_one(
    timed: Callable[..., MemoryManager], clock: ManualClock
) -> None:
    mem = timed(layers={"knowledge": LayerConfig(ttl=WEEK, max_items=3)})
    old = mem.knowledge.add("Prefers tea", user_id="sam")
    mem.knowledge.add("Runs on Sundays", user_id="sam", expires_at=clock() + DAY)
    clock.advance(WEEK)
    mem.knowledge.add("Reads sci-fi", user_id="sam")
    mem.knowledge.add("Plays chess", user_id="sam")
    new = mem.knowledge.add("Prefers tea", user_id="sam")  # not merged into the expired item
    assert new != old
    # Expired items do not count against the cap: nothing live was evicted to make room.
    assert sorted(texts(mem)) == ["Plays chess", "Prefers tea", "Reads sci-fi"]
    events = mem.history(user_id="sam", item_id=old)
    assert [(e.op, e.reason) for e in events] == [("add", None), ("delete", "expired")]


def test_a_user_wide_add_leaves_a_sessions_expired_item_of_the_same_key_alone(
    timed: Callable[..., MemoryManager], clock: ManualClock
) -> None:
    """Only the exact scope's expired item holds the new item's key: another session's is its own
    (cleanup deletes it), and nothing of the session enters the user-wide history."""
    mem = timed()
    trip = mem.knowledge.add(
        "Travelling in Lisbon", user_id="sam", session_id="s1", session_scoped=True, expires_at=clock() + DAY
    )
    clock.advance(2 * DAY)
    mem.knowledge.add("Travelling in Lisbon", user_id="sam")
    assert [(e.op, e.old) for e in mem.history(user_id="sam")] == [("add", None)]
    assert [e.op for e in mem.history(user_id="sam", session_id="s1", item_id=trip)] == ["add"]
    assert mem.cleanup(older_than=timedelta(0), what="expired") == CleanupReport(expired=1)
    assert [(e.op, e.reason) for e in mem.history(user_id="sam", session_id="s1", item_id=trip)] == [
        ("add", None),
        ("delete", "expired"),
    ]


def test_a_document_layer_with_a_ttl_takes_a_field_again_after_it_expired(
    timed: Callable[..., MemoryManager], clock: ManualClock
) -> None:
    mem = timed(layers={"profile": LayerConfig(ttl=30 * DAY)})
    mem.profile.update(user_id="sam", name="Sam", location="Leeds")
    clock.advance(20 * DAY)
    mem.profile.update(user_id="sam", location="York")  # updated: its ttl starts over, the name's not
    clock.advance(15 * DAY)
    assert (mem.profile.get(user_id="sam").name, mem.profile.get(user_id="sam").location) == (None, "York")
    assert mem.compile(user_id="sam") == "<user_profile>\nlocation: York\n</user_profile>"
    mem.profile.update(user_id="sam", name="Samuel")  # a new item; the expired one is deleted
    assert mem.profile.get(user_id="sam").name == "Samuel"
    name_events = [(e.op, e.old, e.new, e.reason) for e in mem.history(user_id="sam") if e.key == "name"]
    assert name_events == [
        ("add", None, "Sam", None),
        ("delete", "Sam", None, "expired"),
        ("add", None, "Samuel", None),
    ]


def test_expires_at_on_a_duplicate_becomes_its_expiry(
    timed: Callable[..., MemoryManager], clock: ManualClock
) -> None:
    mem = timed()
    fact = mem.knowledge.add("On call this week", user_id="sam")
    assert mem.knowledge.add("On call this week", user_id="sam", expires_at=clock() + DAY) == fact
    (event,) = [e for e in mem.history(user_id="sam", item_id=fact) if e.op == "update"]
    assert event.reason == f"expires: {(clock() + DAY).isoformat()}"
    clock.advance(DAY)
    assert texts(mem) == []


def test_learn_neither_shows_nor_merges_expired_items(
    timed: Callable[..., MemoryManager], clock: ManualClock
) -> None:
    model = ScriptedModel(lambda _m: {"knowledge": [{"text": "Works on the Atlas project"}]})
    mem = timed(model=model, layers={"knowledge": LayerConfig(ttl=WEEK)})
    mem.knowledge.add("Works on the Atlas project", user_id="sam")
    mem.knowledge.add("Owns a red bicycle", user_id="sam")
    mem.learn([{"role": "user", "content": "My bike is red, by the way."}], user_id="sam")
    assert "red bicycle" in " ".join(str(m["content"]) for m in model.requests[0].messages)
    clock.advance(WEEK)
    result = mem.learn(
        [{"role": "user", "content": "I still work on Atlas and ride my bicycle."}], user_id="sam"
    )
    prompt = " ".join(str(m["content"]) for m in model.requests[1].messages)
    assert "red bicycle" not in prompt  # the prompt shows the stored items: not the expired ones
    assert "Atlas project" not in prompt
    assert [c.op for c in result.all_changes] == ["delete", "add"]  # the expired one made way
    assert texts(mem) == ["Works on the Atlas project"]


# ---- cleanup ---------------------------------------------------------------------------------


def _history_of_everything(mem: MemoryManager, clock: ManualClock) -> dict[str, str]:
    """Old and new of each kind for sam, and a little for ann; returns item ids."""
    old_fact = mem.knowledge.add("Lives in Leeds", user_id="sam")
    mem.knowledge.add("Lives in York", user_id="sam", replaces=old_fact)  # Leeds closed now
    dated = mem.knowledge.add("Visiting Oslo", user_id="sam", expires_at=clock() + DAY)
    mem.sessions.add("old", [{"role": "user", "content": "hello"}], user_id="sam")
    mem.sessions.add("busy", [{"role": "user", "content": f"m{n}"} for n in range(3)], user_id="sam")
    mem.sessions.summarize("busy", user_id="sam")
    failing = MemoryManager(
        db=mem.db_url, model=ScriptedModel(lambda _m: "not JSON"), max_retries=0, clock=clock
    )
    with pytest.raises(ExtractionError):
        failing.learn([{"role": "user", "content": "I work nights at the hospital."}], user_id="sam")
    failing.close()
    mem.knowledge.add("Ann's old fact", user_id="ann", expires_at=clock() + DAY)
    clock.advance(40 * DAY)
    mem.sessions.add("busy", [{"role": "user", "content": "new"}], user_id="sam")
    return {"closed": old_fact, "expired": dated}


def test_cleanup_deletes_each_kind_older_than_the_cutoff_and_counts_it(
    timed: Callable[..., MemoryManager], clock: ManualClock
) -> None:
    mem = timed()
    ids = _history_of_everything(mem, clock)
    assert mem.cleanup(older_than=60 * DAY) == CleanupReport()  # nothing is that old

    report = mem.cleanup(older_than=30 * DAY, user_id="sam")
    # Default: all but closed; "busy" was added to since, so only its old messages go.
    assert report == CleanupReport(messages=3, sessions=1, pending=1, closed=0, expired=1)
    assert report.total == 6
    assert [s.session_id for s in mem.sessions.list(user_id="sam")] == ["busy"]
    assert [m["content"] for m in mem.sessions.messages("busy", user_id="sam")] == ["new"]
    assert mem.retry_pending(user_id="sam").retried == 0
    # The summary covered the 3 messages deleted: it now covers none of those left.
    (busy,) = mem.export_user("sam")["sessions"]
    assert (busy["summarized_messages"], busy["summary"]) == (0, mem.sessions.summary("busy", user_id="sam"))
    (expired,) = [e for e in mem.history(user_id="sam", item_id=ids["expired"]) if e.op == "delete"]
    assert expired.reason == "expired"

    assert mem.cleanup(older_than=30 * DAY, what={"closed"}) == CleanupReport(closed=1)
    (closed,) = [e for e in mem.history(user_id="sam", item_id=ids["closed"]) if e.op == "delete"]
    assert closed.reason == "retention"
    assert closed.old == {"text": "Lives in Leeds", "topics": []}
    assert texts(mem) == ["Lives in York"]
    # ann was not asked for; now she is, with a single kind given as a str.
    assert mem.cleanup(older_than=timedelta(0), what="expired") == CleanupReport(expired=1)
    assert mem.export_user("ann")["items"] == []


def test_cleanup_of_expired_items_goes_by_when_they_expired(
    timed: Callable[..., MemoryManager], clock: ManualClock
) -> None:
    mem = timed(layers={"feedback": LayerConfig(ttl=WEEK)})
    mem.feedback.add("Too long", user_id="sam")
    mem.knowledge.add("Off sick", user_id="sam", expires_at=clock() + 3 * DAY)
    clock.advance(10 * DAY)  # the feedback expired 3 days ago, the fact 7 days ago
    assert mem.cleanup(older_than=5 * DAY, what=["expired"]) == CleanupReport(expired=1)
    assert mem.cleanup(older_than=2 * DAY, what=["expired"]) == CleanupReport(expired=1)
    assert [e.reason for e in mem.history(user_id="sam") if e.op == "delete"] == ["expired", "expired"]


def test_cleanup_cleans_each_agents_own_memory_beside_the_users(
    timed: Callable[..., MemoryManager], clock: ManualClock
) -> None:
    """An agent's own memory (no user) is an owner of its own: its closed, expired and pending rows go,
    each agent's apart, and the users' as before."""
    mem = timed()
    old = mem.knowledge.add("Tags invoices by vendor", agent_id="tagger")
    mem.knowledge.add("Tags invoices by month", agent_id="tagger", replaces=old)  # closed now
    mem.knowledge.add("Sale ends Friday", agent_id="tagger", expires_at=clock() + DAY)
    mem.knowledge.add("Uses British spelling", agent_id="writer")
    mem.knowledge.add("Visiting Oslo", user_id="sam", expires_at=clock() + DAY)
    failing = MemoryManager(
        db=mem.db_url, model=ScriptedModel(lambda _m: "not JSON"), max_retries=0, clock=clock
    )
    with pytest.raises(ExtractionError):
        failing.learn([{"role": "user", "content": "Always tag refunds as credits."}], agent_id="tagger")
    failing.close()
    clock.advance(40 * DAY)

    report = mem.cleanup(older_than=30 * DAY, what=["closed", "expired", "pending"])

    assert report == CleanupReport(pending=1, closed=1, expired=2)
    assert texts(mem, user=None, agent="tagger") == ["Tags invoices by month"]
    assert texts(mem, user=None, agent="writer") == ["Uses British spelling"]
    assert texts(mem) == []
    assert mem.retry_pending().retried == 0
    deleted = {e.reason for e in mem.history(agent_id="tagger") if e.op == "delete"}
    assert deleted == {"retention", "expired"}
    assert mem.cleanup(older_than=timedelta(0), what=["closed", "expired", "pending"]) == CleanupReport()


def test_cleanup_of_a_stale_session_deletes_it_completely(
    timed: Callable[..., MemoryManager], clock: ManualClock
) -> None:
    """As ``sessions.delete`` does: its session-scoped memory, its variables and the inputs learned into
    it go with its messages; user-wide memory and other sessions stay."""
    mem = timed(layers={"knowledge": LayerConfig(session_scoped=True)})
    said = [{"role": "user", "content": "I'm planning a surprise party for Ana."}]
    mem.sessions.add("party", said, user_id="sam")
    assert mem.learn(said, user_id="sam", session_id="party").all_changes
    mem.policies.update(user_id="sam", agent_id="bot", session_id="party", session_scoped=True, tone="warm")
    mem.variables.set("task", "buy cake", user_id="sam", session_id="party")
    mem.knowledge.add("Lives in York", user_id="sam")
    clock.advance(40 * DAY)
    mem.sessions.add("today", [{"role": "user", "content": "hi"}], user_id="sam")
    mem.variables.set("task", "write report", user_id="sam", session_id="today")

    assert mem.cleanup(older_than=30 * DAY, what="sessions") == CleanupReport(sessions=1)

    assert [s.session_id for s in mem.sessions.list(user_id="sam")] == ["today"]
    assert [i.text for i in mem.knowledge.list(user_id="sam", session_id="party")] == ["Lives in York"]
    assert mem.get(user_id="sam", agent_id="bot", session_id="party").policies.tone is None
    assert mem.variables.values(user_id="sam", session_id="party") == {}
    assert mem.variables.values(user_id="sam", session_id="today") == {"task": "write report"}
    deleted = [e for e in mem.history(user_id="sam", agent_id="bot", session_id="party") if e.op == "delete"]
    assert {(e.layer, e.agent_id, e.reason) for e in deleted} == {
        ("knowledge", None, "session 'party' deleted"),
        ("policies", "bot", "session 'party' deleted"),
    }
    # The input learned into the session is forgotten: a new session of that id learns it again.
    assert mem.learn(said, user_id="sam", session_id="party").all_changes


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"older_than": -DAY}, "older_than"),
        ({"older_than": 30}, "older_than"),
        ({"older_than": DAY, "what": ["messages", "facts"]}, "'facts'"),
        ({"older_than": DAY, "what": []}, "what must be"),
        ({"older_than": DAY, "user_id": ""}, "user_id"),
    ],
)
def test_cleanup_refuses_bad_arguments_and_deletes_nothing(
    timed: Callable[..., MemoryManager], clock: ManualClock, arguments: dict[str, Any], message: str
) -> None:
    mem = timed()
    mem.sessions.add("s", [{"role": "user", "content": "hi"}], user_id="sam")
    clock.advance(WEEK)
    with pytest.raises(InvalidInputError, match=message):
        mem.cleanup(**arguments)
    assert len(mem.sessions.messages("s", user_id="sam")) == 1


def test_bad_expiry_settings_are_refused(
    timed: Callable[..., MemoryManager], clock: ManualClock, db_url: str
) -> None:
    mem = timed()
    for bad in (clock(), clock() - DAY, datetime(2030, 1, 1), "2030-01-01"):
        with pytest.raises(InvalidInputError, match="expires_at"):
            mem.knowledge.add("Something", user_id="sam", expires_at=bad)  # type: ignore[arg-type]
    assert texts(mem) == []
    for ttl in (timedelta(0), -DAY, 7):
        with pytest.raises(ConfigurationError, match="ttl"):
            LayerConfig(ttl=ttl)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="clock"):
        MemoryManager(db=db_url, clock="now")  # type: ignore[arg-type]
    naive = MemoryManager(db=db_url, clock=lambda: datetime(2026, 1, 1))
    with pytest.raises(ConfigurationError, match="timezone-aware"):
        naive.compile(user_id="sam")
    naive.close()


def test_expiry_travels_through_export_and_import(
    timed: Callable[..., MemoryManager], clock: ManualClock
) -> None:
    mem = timed()
    mem.knowledge.add("Visiting Oslo", user_id="sam", expires_at=clock() + DAY)
    data = mem.export_user("sam")
    assert data["version"] == 4
    assert data["items"][0]["expires_at"] == (clock() + DAY).isoformat()
    mem.delete_user("sam")
    mem.import_user(data)
    assert mem.export_user("sam") == data
    clock.advance(DAY)
    assert texts(mem) == []
    # An export from before version 4 has no expires_at: its items never expire.
    old = {**data, "version": 3, "items": [{k: v for k, v in data["items"][0].items() if k != "expires_at"}]}
    mem.delete_user("sam")
    mem.import_user(old)
    assert texts(mem) == ["Visiting Oslo"]


def test_manual_clock_moves_forward_only() -> None:
    clock = ManualClock()
    assert clock() == datetime(2026, 1, 1, tzinfo=UTC)
    assert clock.advance(DAY) == clock() == datetime(2026, 1, 2, tzinfo=UTC)
    with pytest.raises(ConfigurationError):
        clock.advance(-DAY)
    with pytest.raises(ConfigurationError):
        ManualClock(datetime(2026, 1, 1))
