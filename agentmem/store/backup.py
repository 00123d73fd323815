"""Backups of a whole database while it is in use, and their restore into an empty database.

SQLite: ``VACUUM INTO`` a new file. It copies one snapshot of the database in one read transaction,
which in WAL mode never waits for writers, nor they for it, and SQLite documents its output as a
consistent snapshot. Chosen over the online-backup API: that API, run in steps, starts over whenever
another connection writes (under busy writers it may never finish), and run in one step reads the same
snapshot but also copies free pages; ``VACUUM INTO`` writes a compact file through plain SQL.

PostgreSQL: a logical export of every user (``transfer.export_user``) and every agent's own memory
(``transfer.export_agent``) read in one REPEATABLE READ transaction, so all come from one snapshot while
writers go on; written as JSON lines: a header that counts the users and agents, then one export
document per user, then one per agent (so a truncated file is noticed). Version 1 files (users only)
still restore.

Either way the backup is written beside ``path`` under a temporary name and renamed into place: a
failed backup never leaves a partial file at ``path``.

Restore goes into an empty database only (restoring over memory would mix two pasts), of either
backend: every user's and agent's export is read from the backup (a SQLite backup from a temporary
copy, so the backup itself is never migrated or changed) and imported, checked as ``import_user``
checks, in one transaction: a failed restore writes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, Engine, create_engine, select

from ..errors import ConflictError, InvalidInputError, StoreError
from ..layers import Layer
from ..records import Backup
from ..scope import Scope
from . import transfer
from .export_format import KINDS
from .users import every_agent_id, every_user_id

FORMAT = "agentmem.backup"
VERSION = 2
READABLE_VERSIONS = (1, 2)
SQLITE_HEADER = b"SQLite format 3\x00"
Owner = Literal["user", "agent"]


def write_backup(engine: Engine, path: Path, *, overwrite: bool) -> Backup:
    """Back the database up to ``path`` (see the module docstring)."""
    if path.exists() and not overwrite:
        raise ConflictError(
            f"{path} already exists; nothing written (to replace it: overwrite=True, --force)"
        )
    with _replacing(path) as partial:
        if engine.dialect.name == "sqlite":
            _vacuum_into(engine, partial)
            users, agents = _sqlite_counts(partial)
            made = Backup(path=path, kind="sqlite", users=users, agents=agents)
        else:
            users, agents = _write_logical(engine, partial)
            made = Backup(path=path, kind="logical", users=users, agents=agents)
    return made


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed to it when the block succeeds, removed when it fails."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as exc:
        raise StoreError(f"cannot write a backup to {path}: {exc.strerror or exc}") from exc
    os.close(fd)
    partial = Path(name)
    partial.unlink()  # VACUUM INTO refuses an existing file, even an empty one
    try:
        yield partial
        try:
            os.replace(partial, path)
        except OSError as exc:
            raise StoreError(f"cannot write a backup to {path}: {exc.strerror or exc}") from exc
    finally:
        partial.unlink(missing_ok=True)


def _vacuum_into(engine: Engine, target: Path) -> None:
    raw = engine.raw_connection()  # VACUUM cannot run in the transaction SQLAlchemy would begin
    try:
        cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("VACUUM INTO ?", (str(target),))
        cursor.close()
    except sqlite3.Error as exc:
        raise StoreError(f"the backup failed: {exc}") from exc
    finally:
        raw.close()
    with sqlite3.connect(target) as copy:
        verdict = copy.execute("PRAGMA quick_check").fetchone()
    copy.close()
    if verdict != ("ok",):
        raise StoreError(f"the backup failed its integrity check: {verdict}")


def _sqlite_counts(path: Path) -> tuple[int, int]:
    """How many users and agents the backup at ``path`` holds."""
    engine = create_engine(f"sqlite:///{path}")  # a plain engine: the backup's file stays as written
    try:
        with engine.connect() as conn:
            return len(every_user_id(conn)), len(every_agent_id(conn))
    finally:
        engine.dispose()


def _write_logical(engine: Engine, path: Path) -> tuple[int, int]:
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        user_ids, agent_ids = every_user_id(conn), every_agent_id(conn)
        with path.open("w", encoding="utf-8") as out:
            header = {"format": FORMAT, "version": VERSION, "users": len(user_ids), "agents": len(agent_ids)}
            out.write(json.dumps(header) + "\n")
            for doc in _every_export(conn, user_ids, agent_ids):
                out.write(json.dumps(doc, ensure_ascii=False) + "\n")
    return len(user_ids), len(agent_ids)


def _every_export(conn: Connection, user_ids: list[str], agent_ids: list[str]) -> Iterator[dict[str, Any]]:
    """Every user's export, then every agent's own memory (the order a logical backup holds them in)."""
    for user_id in user_ids:
        yield transfer.export_user(conn, user_id)
    for agent_id in agent_ids:
        yield transfer.export_agent(conn, Scope.for_agent(agent_id))


# ---- restore ---------------------------------------------------------------------------------


def restore(writer_engine: Engine, path: Path, layers: Mapping[str, Layer]) -> int:
    """Import every user and agent of the backup at ``path`` into the (empty) database; return how
    many users."""
    with _exports(path) as exports, writer_engine.begin() as conn:
        _lock_all(conn)
        if not _is_empty(conn):
            raise ConflictError(
                "the database already holds memory; restore needs an empty database "
                "(a new SQLite file or PostgreSQL schema)"
            )
        count = 0
        for owner, data in exports:
            if owner == "agent":
                scope, doc = transfer.parse_agent_export(data, layers)
                transfer.import_agent(conn, scope, doc)
            else:
                transfer.import_user(conn, transfer.parse_export(data, layers))
                count += 1
        return count


def _lock_all(conn: Connection) -> None:
    """Keep other writers out until the restore commits (SQLite: BEGIN IMMEDIATE already did)."""
    if conn.dialect.name == "postgresql":
        names = ", ".join(kind.table.name for kind in KINDS)
        conn.exec_driver_sql(f"LOCK TABLE {names} IN EXCLUSIVE MODE")


def _is_empty(conn: Connection) -> bool:
    return all(conn.execute(select(k.table.c.user_id).limit(1)).first() is None for k in KINDS)


@contextmanager
def _exports(path: Path) -> Iterator[Iterator[tuple[Owner, Any]]]:
    """The export documents a backup holds, one user or agent at a time, each with whose it is."""
    try:
        with path.open("rb") as file:
            head = file.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if head == SQLITE_HEADER:
        with _sqlite_exports(path) as exports:
            yield exports
    else:
        yield _logical_exports(path)


@contextmanager
def _sqlite_exports(path: Path) -> Iterator[Iterator[tuple[Owner, Any]]]:
    from .store import Store  # the store module builds on this package's parts

    with tempfile.TemporaryDirectory(prefix="agentmem-restore-") as folder:
        copy = Path(folder) / "backup.db"
        shutil.copyfile(path, copy)  # the backup stays as it is, whatever version it was written by
        store = Store(f"sqlite:///{copy}")
        try:
            with store.engine.connect() as conn:
                user_ids, agent_ids = every_user_id(conn), every_agent_id(conn)
                users: list[Owner] = ["user"] * len(user_ids)
                owners = users + ["agent"] * len(agent_ids)
                yield zip(owners, _every_export(conn, user_ids, agent_ids), strict=True)
        finally:
            store.close()


def _logical_exports(path: Path) -> Iterator[tuple[Owner, Any]]:
    try:
        with path.open(encoding="utf-8") as file:
            yield from _documents(file, path)
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path} is not an agentmem backup (not UTF-8 text)") from None


def _documents(lines: Iterator[str], path: Path) -> Iterator[tuple[Owner, Any]]:
    """The documents after the header: its count of users, then (version 2) its count of agents."""
    try:
        header = json.loads(next(lines, ""))
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InvalidInputError(f"{path} is not an agentmem backup")
    users, agents = header.get("users"), header.get("agents", 0 if header.get("version") == 1 else None)
    if (
        header.get("version") not in READABLE_VERSIONS
        or not isinstance(users, int)
        or not isinstance(agents, int)
    ):
        raise InvalidInputError(f"{path}: unknown agentmem backup version {header.get('version')!r}")
    count = 0
    for number, line in enumerate(lines, start=2):
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{path} line {number} is not valid JSON: {exc}") from None
        count += 1
        if count > users + agents:
            raise InvalidInputError(f"{path} holds more than its {users} users and {agents} agents")
        yield ("user" if count <= users else "agent"), data
    if count != users + agents:
        raise InvalidInputError(
            f"{path} holds {count} of its {users} users and {agents} agents; it is incomplete"
        )
