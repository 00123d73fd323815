"""Engine set-up: URL resolution, SQLite pragmas, write transactions that lock the scope, and the
database's errors raised as StoreError."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, CursorResult, Engine, ExceptionContext, event
from sqlmodel import create_engine

from ..errors import ConfigurationError, StoreError

DEFAULT_DB_PATH = Path("~/.agentmem/memory.db")
WRITE = "agentmem_write"  # execution option: this transaction will write; take the write lock first
BUSY_SECONDS = 30  # how long a SQLite connection waits for another's lock before it fails


def resolve_url(db: str | None) -> str:
    """``db`` as given, else ``AGENTMEM_DB_URL``, else the embedded default SQLite file."""
    if db is not None:
        url = db
    elif os.environ.get("AGENTMEM_DB_URL"):
        url = os.environ["AGENTMEM_DB_URL"]
    else:
        path = DEFAULT_DB_PATH.expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(f"db must be a database URL like 'sqlite:///memory.db', got {url!r}")
    return url


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = _sqlite_engine(url)
    else:
        try:
            engine = create_engine(url, pool_pre_ping=True)
        except Exception as exc:  # unknown dialect or missing driver
            raise ConfigurationError(f"cannot open database {url!r}: {exc}") from exc
    event.listen(engine, "handle_error", _as_store_error)
    return engine


def _as_store_error(context: ExceptionContext) -> None:
    """Every error of the database driver leaves agentmem as a StoreError (the driver's error chained:
    SQLAlchemy raises it ``from`` the original). Its message leaves out the statement and parameters,
    which hold users' data."""
    if context.is_pre_ping:
        return  # the pool handles a stale connection itself
    raise store_error(context.original_exception)


def store_error(original: BaseException) -> StoreError:
    """The StoreError for an error of the database driver."""
    return StoreError(f"the database failed: {type(original).__name__}: {original}")


def fetched(conn: Connection, result: CursorResult[Any]) -> list[Any]:
    """The driver's own rows (tuples) of ``result``, closed after. Reading them from the cursor
    skips SQLAlchemy's handling of the errors a driver raises while rows are fetched (SQLite reads
    rows as they are asked for): those leave as StoreError here."""
    try:
        return list(result.cursor.fetchall())
    except conn.dialect.loaded_dbapi.Error as exc:
        raise store_error(exc) from exc
    finally:
        result.close()


def is_ephemeral(url: str) -> bool:
    """``sqlite://`` and ``sqlite:///:memory:``: served by a temporary file (see Store)."""
    return url in ("sqlite://", "sqlite:///:memory:")


def _sqlite_engine(url: str) -> Engine:
    head, _, path = url.partition("///")
    if path.startswith("~"):  # as the default is documented; SQLite would open a folder named "~"
        path = os.path.expanduser(path)
        url = f"{head}///{path}"
    if path and not path.startswith("file:"):
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder for {url!r}: {exc}") from exc
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": BUSY_SECONDS})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below decide how each transaction starts.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_SECONDS * 1000}")
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A writer takes SQLite's write lock before it reads what it merges with, so two writers
        # for the same user (a tool call and a background extraction) can never lose an update.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")

    return engine


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to write-ahead logging (it stays so). The switch needs an exclusive lock that
    SQLite does not wait for (busy_timeout does not apply), so processes creating one file at once
    would fail with "database is locked": retry for as long as any other lock is waited for."""
    deadline = time.monotonic() + BUSY_SECONDS
    pause = 0.001
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
