"""What a database's schema is, as comparable data: tables, columns (name, type, nullability), primary
keys, unique constraints, indexes (with uniqueness and partial ``WHERE``), foreign keys and triggers.

Two databases built by different routes (created new, or upgraded from an old file) must give equal
snapshots. SQLAlchemy's inspector reads the portable part; the catalogs (``sqlite_master``, ``pg_indexes``,
``pg_trigger``) give what it does not: index predicates, virtual tables and triggers.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, inspect


def _squash(sql: str | None) -> str:
    return re.sub(r"\s+", " ", sql or "").strip()


def snapshot(conn: Connection) -> dict[str, Any]:
    insp = inspect(conn)
    dialect = conn.dialect
    tables: dict[str, Any] = {}
    for name in sorted(insp.get_table_names()):
        if dialect.name == "sqlite" and name.startswith("agentmem_items_fts"):
            continue  # FTS5's own tables: compared below through the virtual table's definition
        tables[name] = {
            "columns": {
                c["name"]: (c["type"].compile(dialect=dialect), c["nullable"]) for c in insp.get_columns(name)
            },
            "primary_key": insp.get_pk_constraint(name)["constrained_columns"],
            "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(name)),
            "foreign_keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in insp.get_foreign_keys(name)
            ),
            "indexes": {
                i["name"]: (tuple(i["column_names"]), bool(i["unique"]))
                for i in insp.get_indexes(name)
                if not i.get("duplicates_constraint")
            },
        }
    return {"tables": tables, "catalog": _catalog(conn)}


def _catalog(conn: Connection) -> dict[str, str]:
    """Index and trigger definitions as the database states them (predicates included)."""
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql(
            "SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger', 'view') "
            "OR (type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%')"
        )
        return {f"{r[0]} {r[1]}": _squash(r[2]) for r in rows if r[2] is not None}
    schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
    found: dict[str, str] = {}
    for name, sql in conn.exec_driver_sql(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
    ):
        found[f"index {name}"] = _squash(sql.replace(f"{schema}.", ""))
    for name, sql in conn.exec_driver_sql(
        "SELECT t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal"
    ):
        found[f"trigger {name}"] = _squash(sql.replace(f"{schema}.", ""))
    for name, table, sql in conn.exec_driver_sql(
        "SELECT con.conname, rel.relname, pg_get_constraintdef(con.oid) FROM pg_constraint con "
        "JOIN pg_class rel ON rel.oid = con.conrelid WHERE rel.relnamespace = current_schema()::regnamespace"
    ):
        found[f"constraint {table}.{name}"] = _squash(sql)
    for table, column, default in conn.exec_driver_sql(
        "SELECT table_name, column_name, column_default FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND column_default IS NOT NULL"
    ):
        found[f"default {table}.{column}"] = _squash(default.replace(f"{schema}.", ""))
    return found
