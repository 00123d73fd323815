"""``memory.list_users()`` and ``agentmem users``: who has memory, with counts and last activity."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from agentmem import LayerConfig, MemoryManager, UserSummary
from agentmem.store.rows import ITEMS
from agentmem.store.users import list_users_query
from agentmem.testing import ManualClock


def test_users_with_counts_and_last_activity(mem: MemoryManager) -> None:
    assert mem.list_users() == []
    started = datetime.now(UTC)
    mem.profile.update(user_id="sarah", name="Sarah", role="analyst")
    mem.knowledge.add("Prefers small diffs", user_id="sarah", agent_id="reviewer")  # private: counted too
    old = mem.knowledge.add("Lives in Leeds", user_id="sarah")
    mem.knowledge.add("Lives in York", user_id="sarah", replaces=old)  # the closed fact is not counted
    mem.sessions.add("s1", [{"role": "user", "content": "hi"}], user_id="bob")
    mem.sessions.add("s2", [{"role": "user", "content": "hello"}], user_id="bob")
    gone = mem.knowledge.add("Has a cat", user_id="ana")
    mem.forget(gone, user_id="ana")  # no live items, but a history: still a user

    users = mem.list_users()

    assert [(u.user_id, u.items, u.sessions) for u in users] == [
        ("ana", 0, 0),
        ("bob", 0, 2),
        ("sarah", 4, 0),
    ]
    assert all(isinstance(u, UserSummary) for u in users)
    for user in users:
        assert user.last_activity is not None
        assert started <= user.last_activity <= datetime.now(UTC)
    ana = users[0].last_activity
    forgotten_at = mem.history(user_id="ana")[-1].created_at
    assert ana == forgotten_at  # a deletion is activity too

    mem.delete_user("bob")
    assert [u.user_id for u in mem.list_users()] == ["ana", "sarah"]


def test_rows_without_a_user_are_not_a_user(mem: MemoryManager) -> None:
    """An agent's memory shared across its users may be stored under user_id "": never listed as a user."""
    mem.knowledge.add("Lives in York", user_id="sarah")
    with mem._store.engine.begin() as conn:
        [row] = [dict(r._mapping) for r in conn.execute(ITEMS.select())]
        del row["pk"]
        conn.execute(ITEMS.insert().values({**row, "id": "m_agentwide", "user_id": ""}))
    assert [u.user_id for u in mem.list_users()] == ["sarah"]


def test_expired_items_are_not_counted(make_mem: Callable[..., MemoryManager]) -> None:
    """The counts follow the expiry rule, as ``get`` does: an item past its own date or its layer's
    ttl is no longer live."""
    clock = ManualClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    mem = make_mem(clock=clock, layers={"feedback": LayerConfig(ttl=timedelta(days=7))})
    mem.knowledge.add("Lives in York", user_id="sarah")
    mem.knowledge.add("Visiting Oslo", user_id="sarah", expires_at=clock() + timedelta(days=1))
    mem.feedback.add("Too long", user_id="sarah")
    mem.knowledge.add("Off sick", user_id="bob", expires_at=clock() + timedelta(days=1))
    assert [(u.user_id, u.items) for u in mem.list_users()] == [("bob", 1), ("sarah", 3)]

    clock.advance(timedelta(days=2))  # the dates passed; the feedback still within its ttl
    assert [(u.user_id, u.items) for u in mem.list_users()] == [("bob", 0), ("sarah", 2)]
    clock.advance(timedelta(days=7))  # the feedback outlived its ttl
    assert [(u.user_id, u.items) for u in mem.list_users()] == [("bob", 0), ("sarah", 1)]
    for user in mem.list_users():
        assert user.items == len(mem.get(user_id=user.user_id).items)


def test_the_grouped_read_is_served_by_indexes_on_sqlite(sqlite_url: str) -> None:
    """Live items are read in user order from the live-items index (no sort, no closed items), and each
    user's newest event from the events' covering index, not the events."""
    with MemoryManager(db=sqlite_url) as mem:
        mem.knowledge.add("Lives in York", user_id="sarah")
        sql = list_users_query(mem._store.expiry()).compile(
            mem._store.engine, compile_kwargs={"literal_binds": True}
        )
        with mem._store.engine.connect() as conn:
            plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
    assert "SCAN agentmem_items USING INDEX ix_agentmem_items_recent" in plan
    assert any("COVERING INDEX ix_agentmem_events_scope" in step for step in plan), plan
