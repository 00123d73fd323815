"""The SQLite store: schema versioning and migrations, WAL, and writers that never lose updates."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine

from agentmem import MemoryManager, StoreError
from agentmem.store import migrations
from agentmem.store.tables import SCHEMA_VERSION


def test_new_database_records_schema_version_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    MemoryManager(db=f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM agentmem_meta WHERE key='schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"agentmem_items", "agentmem_events", "agentmem_meta", "agentmem_items_fts"} <= tables


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    MemoryManager(db=f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE agentmem_meta SET value='999' WHERE key='schema_version'")
    with pytest.raises(StoreError, match="999"):
        MemoryManager(db=f"sqlite:///{path}")


def make_v1_database(path: Path) -> None:
    """A database as the first release (schema 1) left it: no learning tables yet."""
    with MemoryManager(db=f"sqlite:///{path}") as mem:
        mem.knowledge.add("Kept across the upgrade", user_id="u")
    with sqlite3.connect(path) as conn:
        for later in ("agentmem_learned", "agentmem_pending", "agentmem_sessions", "agentmem_messages"):
            conn.execute(f"DROP TABLE {later}")
        conn.execute("ALTER TABLE agentmem_events DROP COLUMN observed_at")
        conn.execute("UPDATE agentmem_meta SET value='1' WHERE key='schema_version'")


def test_version_1_database_is_migrated_to_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    make_v1_database(path)
    with MemoryManager(db=f"sqlite:///{path}") as mem:
        assert [i.text for i in mem.get(user_id="u").knowledge] == ["Kept across the upgrade"]
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = conn.execute("SELECT value FROM agentmem_meta WHERE key='schema_version'").fetchone()
    assert {"agentmem_learned", "agentmem_pending", "agentmem_sessions", "agentmem_messages"} <= tables
    assert version == (str(SCHEMA_VERSION),)
    with sqlite3.connect(path) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(agentmem_events)")}
    assert "observed_at" in columns


def test_migrations_run_in_order_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.db"
    make_v1_database(path)
    ran: list[str] = []

    def add_column(conn: Connection) -> None:
        ran.append("add")
        conn.exec_driver_sql("ALTER TABLE agentmem_items ADD COLUMN note TEXT")

    def backfill(conn: Connection) -> None:
        ran.append("backfill")
        conn.exec_driver_sql("UPDATE agentmem_items SET note = 'migrated'")

    last = SCHEMA_VERSION
    steps = {**migrations.MIGRATIONS, last + 1: ("add note", add_column), last + 2: ("backfill", backfill)}
    monkeypatch.setattr(migrations, "MIGRATIONS", steps)
    engine = create_engine(f"sqlite:///{path}")
    assert migrations.migrate(engine, target=last + 2) == 1
    assert migrations.migrate(engine, target=last + 2) == last + 2  # already there: nothing runs again
    engine.dispose()
    assert ran == ["add", "backfill"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT note FROM agentmem_items").fetchall() == [("migrated",)]


def test_a_missing_migration_step_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    make_v1_database(path)
    engine = create_engine(f"sqlite:///{path}")
    with pytest.raises(StoreError, match=f"no migration to schema version {SCHEMA_VERSION + 1}"):
        migrations.migrate(engine, target=SCHEMA_VERSION + 1)
    engine.dispose()


def test_concurrent_writers_never_lose_updates(db_url: str) -> None:
    """Read-merge-write under the write lock: every writer's list element survives."""
    managers = [MemoryManager(db=db_url) for _ in range(2)]  # two engines, like two processes
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            mem = managers[worker % 2]
            for i in range(10):
                mem.profile.update(user_id="u", expertise=[f"skill-{worker}-{i}"])
                mem.feedback.add("Liked it", user_id="u", sentiment="positive", session_id=f"{worker}-{i}")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    state = managers[0].get(user_id="u")
    assert sorted(state.profile.expertise) == sorted(f"skill-{w}-{i}" for w in range(4) for i in range(10))
    assert [f.count for f in state.feedback] == [40]
    for mem in managers:
        mem.close()


def test_in_memory_database_works_for_quick_scripts() -> None:
    with MemoryManager(db="sqlite://") as mem:
        mem.knowledge.add("Ephemeral", user_id="u")
        assert "Ephemeral" in mem.compile(user_id="u")


def test_unusable_databases_raise_store_error(tmp_path: Path) -> None:
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("this is not a database, just text " * 100)
    with pytest.raises(StoreError, match="cannot open database"):
        MemoryManager(db=f"sqlite:///{not_a_db}")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the folder"):
        MemoryManager(db=f"sqlite:///{blocker}/sub/memory.db")
    with pytest.raises(StoreError, match="cannot open database"):
        MemoryManager(db="postgresql+psycopg://nobody@127.0.0.1:9/none")
