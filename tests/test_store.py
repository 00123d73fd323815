"""The store: schema versioning and migrations, SQLite's WAL, and writers that never lose updates.

Upgrades of real old databases are in test_upgrade.py."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from sqlalchemy import create_engine

from agentmem import MemoryManager, StoreError
from agentmem.store import Store, migrations
from agentmem.store.migrations import SCHEMA_VERSION

FIXTURES = Path(__file__).parent / "fixtures"


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


def test_a_newer_schema_is_refused(db_url: str) -> None:
    MemoryManager(db=db_url).close()
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE agentmem_meta SET value='999' WHERE key='schema_version'")
    engine.dispose()
    with pytest.raises(StoreError, match="999"):
        MemoryManager(db=db_url)


def old_database(tmp_path: Path, version: int = 1) -> Path:
    """A copy of the database the given schema version's own code wrote (see tests/fixtures)."""
    path = tmp_path / f"v{version}.db"
    shutil.copyfile(FIXTURES / f"v{version}.db", path)
    return path


def test_migrations_run_in_order_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = old_database(tmp_path)
    ran: list[str] = []

    def add_column(op: Operations) -> None:
        ran.append("add")
        op.add_column("agentmem_items", sa.Column("note", sa.String, nullable=True))

    def backfill(op: Operations) -> None:
        ran.append("backfill")
        op.execute("UPDATE agentmem_items SET note = 'migrated'")

    last = SCHEMA_VERSION
    steps = {
        **migrations.MIGRATIONS,
        last + 1: migrations.Migration("add note", add_column),
        last + 2: migrations.Migration("backfill", backfill),
    }
    monkeypatch.setattr(migrations, "MIGRATIONS", steps)
    engine = create_engine(f"sqlite:///{path}")
    assert migrations.migrate(engine, target=last + 2) == 1
    assert migrations.migrate(engine, target=last + 2) == last + 2  # already there: nothing runs again
    engine.dispose()
    assert ran == ["add", "backfill"]
    with sqlite3.connect(path) as conn:
        assert set(conn.execute("SELECT note FROM agentmem_items").fetchall()) == {("migrated",)}


def test_a_failed_migration_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = old_database(tmp_path, 2)

    def broken(op: Operations) -> None:
        op.execute("UPDATE agentmem_items SET text = 'lost'")
        raise RuntimeError("step failed")

    steps = {**migrations.MIGRATIONS, SCHEMA_VERSION + 1: migrations.Migration("broken", broken)}
    monkeypatch.setattr(migrations, "MIGRATIONS", steps)
    engine = create_engine(f"sqlite:///{path}")
    with pytest.raises(RuntimeError, match="step failed"):
        migrations.migrate(engine, target=SCHEMA_VERSION + 1)
    with engine.connect() as conn:
        assert migrations.stored_version(conn) == 2
        assert "lost" not in {r[0] for r in conn.exec_driver_sql("SELECT text FROM agentmem_items")}
    engine.dispose()


def test_a_missing_migration_step_is_an_error(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{old_database(tmp_path)}")
    with pytest.raises(StoreError, match=f"no migration to schema version {SCHEMA_VERSION + 1}"):
        migrations.migrate(engine, target=SCHEMA_VERSION + 1)
    engine.dispose()


def test_many_processes_can_open_a_new_database_at_once(db_url: str) -> None:
    """The first migrates, the others wait for it (SQLite's write lock, a PostgreSQL advisory lock).

    Stores, not managers, open here: each has an engine of its own, like a process; building many
    managers at once in threads trips a CPython 3.11 bug in concurrent compile() (template set-up)."""
    opened: list[Store] = []
    errors: list[BaseException] = []
    start = threading.Barrier(24)

    def open_it() -> None:
        try:
            start.wait()
            opened.append(Store(db_url))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for store in opened:
        store.close()
    assert errors == []
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert migrations.stored_version(conn) == SCHEMA_VERSION
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


def test_a_sqlite_path_under_home_is_written_with_a_tilde(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As the documented default is written (sqlite:///~/.agentmem/memory.db); SQLite itself would take
    # "~" for a folder of that name.
    monkeypatch.setenv("HOME", str(tmp_path))
    with MemoryManager(db="sqlite:///~/sub/memory.db") as mem:
        mem.knowledge.add("Lives under home", user_id="u")
    with MemoryManager(db=f"sqlite:///{tmp_path / 'sub' / 'memory.db'}") as mem:
        assert [i.text for i in mem.knowledge.list(user_id="u")] == ["Lives under home"]


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
