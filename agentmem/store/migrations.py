"""Schema versioning: a new database is created at the current version; an older one is migrated
forward through named, ordered steps in one transaction; a newer one is refused."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, inspect, select
from sqlmodel import SQLModel

from ..errors import StoreError
from .search import create_search_index
from .tables import SCHEMA_VERSION, TABLES, LearnedRow, MessageRow, MetaRow, PendingRow, SessionRow, table

Migration = Callable[[Connection], None]


def _learning_tables(conn: Connection) -> None:
    SQLModel.metadata.create_all(conn, tables=[table(LearnedRow), table(PendingRow)])


def _session_tables(conn: Connection) -> None:
    SQLModel.metadata.create_all(conn, tables=[table(SessionRow), table(MessageRow)])


def _observed_column(conn: Connection) -> None:
    column = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
    conn.exec_driver_sql(f"ALTER TABLE agentmem_events ADD COLUMN observed_at {column}")


# version -> (name, step that upgrades from version - 1). Version 1 is the first shipped schema.
MIGRATIONS: dict[int, tuple[str, Migration]] = {
    2: ("learn idempotency log and pending extractions", _learning_tables),
    3: ("conversation sessions and messages", _session_tables),
    4: ("how current each extracted change was", _observed_column),
}


def stored_version(conn: Connection) -> int | None:
    if not inspect(conn).has_table(MetaRow.__tablename__):
        return None
    meta = table(MetaRow)
    value = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    return int(value) if value is not None else None


def _set_version(conn: Connection, version: int) -> None:
    meta = table(MetaRow)
    conn.execute(meta.delete().where(meta.c.key == "schema_version"))
    conn.execute(meta.insert().values(key="schema_version", value=str(version)))


def migrate(engine: Engine, target: int = SCHEMA_VERSION) -> int:
    """Bring the database to ``target``; return the version it had before (0 when new)."""
    with engine.begin() as conn:
        version = stored_version(conn)
        if version is None:
            SQLModel.metadata.create_all(conn, tables=TABLES)
            create_search_index(conn)
            _set_version(conn, target)
            return 0
        if version > target:
            raise StoreError(
                f"the database has schema version {version}, newer than this agentmem knows "
                f"({target}); upgrade agentmem"
            )
        for step in range(version + 1, target + 1):
            if step not in MIGRATIONS:
                raise StoreError(f"no migration to schema version {step}")
            _name, run = MIGRATIONS[step]
            run(conn)
            _set_version(conn, step)
        return version
