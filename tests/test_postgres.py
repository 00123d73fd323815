"""The same store on the real PostgreSQL server: portable SQL, per-user write locks, round-trips.

Runs when AGENTMEM_TEST_POSTGRES_URL is set (CI sets it and AGENTMEM_REQUIRE_POSTGRES=1, so a missing
server fails there instead of skipping). Each test works in a schema of its own, dropped afterwards.
Every store behaviour also runs here through the ``db_url`` fixture; these are the PostgreSQL-specific
checks (per-user advisory locks across two engines, the Python-side relevance fallback).
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from conftest import PostgresSchemas

from agentmem import MemoryManager, NotFoundError

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url(pg_schemas: PostgresSchemas) -> str:
    """A fresh schema of its own on the test server (never ``public``)."""
    return pg_schemas.new_url("pg")


@pytest.fixture
def pg(pg_url: str) -> Iterator[MemoryManager]:
    mem = MemoryManager(db=pg_url)
    yield mem
    mem.close()


@pytest.fixture
def users() -> list[str]:
    return ["sarah", "marco"]


def test_write_compile_search_and_round_trip(pg: MemoryManager, users: list[str]) -> None:
    sarah, _ = users
    pg.profile.update(user_id=sarah, name="Sarah", languages=["English"])
    old = pg.knowledge.add("Builds a churn model", user_id=sarah)
    pg.knowledge.add("Builds a demand forecast", user_id=sarah, replaces=old)
    pg.feedback.add("Liked <b>pandas</b> & numpy", user_id=sarah, sentiment="positive")
    xml = pg.compile(user_id=sarah, query="forecast", token_budget=200)
    root = ET.fromstring(f"<m>{xml}</m>")
    assert [c.tag for c in root] == ["user_profile", "user_knowledge", "user_feedback"]
    assert "churn" not in xml
    assert xml == pg.compile(user_id=sarah, query="forecast", token_budget=200)
    assert [h.item.text for h in pg.search("forecast", user_id=sarah)] == ["Builds a demand forecast"]
    data = pg.export_user(sarah)
    pg.delete_user(sarah)
    pg.import_user(data)
    assert pg.export_user(sarah) == data


def test_scopes_do_not_leak(pg: MemoryManager, users: list[str]) -> None:
    sarah, marco = users
    fact = pg.knowledge.add("Maintains the billing service", user_id=marco)
    pg.knowledge.add("Private to the reviewer", user_id=marco, agent_id="reviewer")
    assert pg.compile(user_id=sarah) == ""
    assert pg.search("billing", user_id=sarah) == []
    assert "Private" not in pg.compile(user_id=marco, agent_id="chat")
    with pytest.raises(NotFoundError):
        pg.forget(fact, user_id=sarah)


def test_concurrent_writers_never_lose_updates(pg: MemoryManager, pg_url: str, users: list[str]) -> None:
    user = users[0]
    managers = [pg, MemoryManager(db=pg_url)]
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(8):
                managers[worker % 2].profile.update(user_id=user, expertise=[f"skill-{worker}-{i}"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    managers[1].close()
    assert errors == []
    expertise = pg.get(user_id=user).profile.expertise
    assert sorted(expertise) == sorted(f"skill-{w}-{i}" for w in range(4) for i in range(8))


def test_learn_is_idempotent(pg: MemoryManager, users: list[str]) -> None:
    user = users[0]
    turn = [{"role": "user", "content": "I live in Berlin and I'm learning Rust."}]
    first = pg.learn(turn, user_id=user)
    assert [c.key for c in first.changes["profile"]] == ["location"]
    assert len(first.changes["knowledge"]) == 1
    again = pg.learn(turn, user_id=user)
    assert again.usage.skipped == "this input was already learned"
    assert len(pg.history(user_id=user)) == 2


def test_compile_read_fits_psycopgs_statement_cache(pg: MemoryManager) -> None:
    """A user's budgeted compile with a few-word query is one statement psycopg parses once and keeps
    (its cache takes statements of at most 4,096 characters and 50 parameters): a longer one would be
    parsed again on every compile."""
    from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH, MAX_CACHED_STATEMENT_PARAMS
    from sqlalchemy import event

    pg.knowledge.add_many(["Kestrel telemetry backfilling in Spark", "Prefers DuckDB"], user_id="u")
    pg.feedback.add("short answers", user_id="u", sentiment="positive")
    reads: list[tuple[str, int]] = []

    def seen(conn: object, cursor: object, sql: str, params: object, *args: object) -> None:
        if "fts_hits" in sql:
            reads.append((sql, len(params) if isinstance(params, dict) else 0))

    event.listen(pg._store.engine, "before_cursor_execute", seen)
    output = pg.compile(user_id="u", query="Kestrel telemetry backfilling", token_budget=1800)
    assert "Kestrel telemetry backfilling in Spark" in output
    assert len(reads) == 1
    sql, params = reads[0]
    assert len(sql) <= MAX_CACHED_STATEMENT_LENGTH
    assert params <= MAX_CACHED_STATEMENT_PARAMS
