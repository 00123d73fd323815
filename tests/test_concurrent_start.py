"""Many processes opening one database at once, new or of an older schema version: the first creates
or upgrades it, the others wait for it (SQLite's write lock; on PostgreSQL an advisory lock per schema,
taken before anything is read) and open the result. No open fails, and an upgrade runs exactly once.

Real processes, each with its own engine and connections, released together by a barrier each round;
the workers live through all rounds so that their start-up (imports) is paid once.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from test_upgrade import VERSIONS, load, schema_of

from agentmem import MemoryManager
from agentmem.store import migrations
from agentmem.store.migrations import SCHEMA_VERSION

PROCESSES = 8
NEW_DATABASES = 12  # rounds on brand-new databases; then one round per older fixture version
WAIT = 300  # seconds; a generous bound on 2 busy cores, so a hung worker fails the test, never hangs it


def open_each_at_once(urls: list[str], start: Any, outcomes: Any) -> None:
    """In a worker process: for each URL, wait for every worker, then open and close a manager on it."""
    for url in urls:
        start.wait()
        try:
            MemoryManager(db=url).close()
            outcomes.put((url, None))
        except Exception as exc:  # reported to the test, which fails on any
            outcomes.put((url, f"{type(exc).__name__}: {exc}"))


def race_to_open(urls: list[str]) -> list[tuple[str, str | None]]:
    """``PROCESSES`` processes open each URL together; every open's (url, error or None)."""
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters, like separate app servers
    start = ctx.Barrier(PROCESSES, timeout=WAIT)
    outcomes = ctx.Queue()
    workers = [ctx.Process(target=open_each_at_once, args=(urls, start, outcomes)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    try:
        return [outcomes.get(timeout=WAIT) for _ in range(PROCESSES * len(urls))]
    finally:
        for worker in workers:
            worker.join(timeout=WAIT)
            if worker.is_alive():
                worker.kill()


def contents(url: str) -> dict[str, Any]:
    """What a migration writes, without the ids and times each run makes anew."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            version = migrations.stored_version(conn)
            items = conn.execute(text("SELECT layer, key, text, valid_to IS NULL FROM agentmem_items"))
            events = conn.execute(text("SELECT layer, key, op, reason FROM agentmem_events"))
            return {
                "version": version,
                "items": sorted(tuple(row) for row in items),
                "events": sorted(tuple(str(v) for v in row) for row in events),
            }
    finally:
        engine.dispose()


def test_processes_opening_new_and_older_databases_at_once_all_succeed(
    backend: str, new_db_url: Callable[[], str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    raced_dir, alone_dir = tmp_path / "raced", tmp_path / "alone"
    raced_dir.mkdir()
    alone_dir.mkdir()
    new = [new_db_url() for _ in range(NEW_DATABASES)]
    old = {version: load(version, backend, raced_dir, request) for version in VERSIONS}

    outcomes = race_to_open(new + list(old.values()))

    assert len(outcomes) == PROCESSES * (len(new) + len(old))
    assert [error for _, error in outcomes if error is not None] == []
    reference = new_db_url()
    MemoryManager(db=reference).close()
    for url in new:
        assert schema_of(url) == schema_of(reference)
        assert contents(url) == {"version": SCHEMA_VERSION, "items": [], "events": []}
    for version, url in old.items():
        # The same fixture upgraded by one process alone: the race must leave exactly what it leaves
        # (a step run twice would, e.g., split a policy list into its rules twice).
        alone = load(version, backend, alone_dir, request)
        MemoryManager(db=alone).close()
        assert schema_of(url) == schema_of(reference)
        assert contents(url) == contents(alone)
        assert contents(url)["version"] == SCHEMA_VERSION
