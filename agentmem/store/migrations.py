"""Schema versions: every database, new or old, reaches the current schema through the same named,
ordered steps, in one transaction; a database newer than this code is refused.

Each step states the change it makes with its own column and index definitions, never with the current
models: a step must do tomorrow exactly what it did the day it shipped. ``tables.py`` describes the
result, and the tests check that a new database, an upgraded one and the models all agree.

Adding a migration: write ``def _vN_what(op: Operations) -> None`` (alembic operations: ``op.add_column``,
``op.create_table``, ``op.create_index``, ``op.execute``; for data, plain SQL through ``op.get_bind()``,
never the current models) and add one line to ``MIGRATIONS``. Change ``tables.py`` to match, and give
tests/fixtures a database of the previous version (tests/fixtures/build_fixtures.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.dialects import postgresql

from ..errors import StoreError
from ..text import normalize, word_set
from .search import owner_tag, owner_token, search_document, searched_text, tagged
from .tables import UtcDateTime

if TYPE_CHECKING:  # alembic is imported only when a database needs a step (it costs ~0.1 s)
    from alembic.operations import Operations

FTS_TABLE = "agentmem_items_fts"
# The columns data steps read and write, declared here (never taken from the current models).
_ITEMS = sa.Table(
    "agentmem_items",
    sa.MetaData(),
    sa.Column("pk", sa.Integer, primary_key=True),
    *map(sa.Column, ("id", "user_id", "agent_id", "session_id", "layer", "key", "text", "line", "source")),
    *map(sa.Column, ("confidence", "count", "explicit", "superseded_by")),
    *(sa.Column(name, sa.JSON) for name in ("value", "meta")),
    *(sa.Column(name, UtcDateTime()) for name in ("created_at", "updated_at", "valid_to")),
)
_EVENTS = sa.table(
    "agentmem_events",
    *map(
        sa.column, ("item_id", "user_id", "agent_id", "session_id", "layer", "key", "op", "reason", "source")
    ),
    *(sa.column(name, sa.JSON) for name in ("old", "new")),
    sa.column("created_at", UtcDateTime()),
)
_META = sa.table("agentmem_meta", sa.column("key", sa.String), sa.column("value", sa.String))


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id(name: str, length: int = 255, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.String(length), nullable=nullable)


def _v1_items_events_meta(op: Operations) -> None:
    """Items (every layer's units), their events, the meta table, and SQLite's FTS5 index."""
    op.create_table(
        "agentmem_items",
        sa.Column("pk", sa.Integer, primary_key=True),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        _id("user_id"),
        _id("agent_id"),
        _id("session_id", nullable=True),
        _id("layer", 32),
        _id("key", 300),
        sa.Column("value", sa.JSON, nullable=True),
        sa.Column("text", sa.String, nullable=False),
        sa.Column("line", sa.String, nullable=False),
        _id("source", 16),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("explicit", sa.Boolean, nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
        _time("created_at"),
        _time("updated_at"),
        _time("valid_to", nullable=True),
        _id("superseded_by", 40, nullable=True),
    )
    live = sa.text("valid_to IS NULL")
    op.create_index(
        "ux_agentmem_items_live_key",
        "agentmem_items",
        ["user_id", "agent_id", "layer", "key"],
        unique=True,
        sqlite_where=live,
        postgresql_where=live,
    )
    op.create_index("ix_agentmem_items_user", "agentmem_items", ["user_id", "agent_id", "layer"])
    op.create_table(
        "agentmem_events",
        sa.Column("id", sa.Integer, primary_key=True),
        _id("item_id", 40),
        _id("user_id"),
        _id("agent_id"),
        _id("session_id", nullable=True),
        _id("layer", 32),
        _id("key", 300),
        _id("op", 16),
        sa.Column("old", sa.JSON, nullable=True),
        sa.Column("new", sa.JSON, nullable=True),
        sa.Column("reason", sa.String, nullable=True),
        _id("source", 16),
        _time("created_at"),
    )
    op.create_index("ix_agentmem_events_scope", "agentmem_events", ["user_id", "agent_id", "id"])
    op.create_index("ix_agentmem_events_item_id", "agentmem_events", ["item_id"])
    op.create_table(
        "agentmem_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String, nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            f"CREATE VIRTUAL TABLE {FTS_TABLE} "
            "USING fts5(text, owner, tokenize='porter unicode61 remove_diacritics 2')"
        )


def _v2_learned_and_pending(op: Operations) -> None:
    """The learn idempotency log, and failed extractions kept for ``retry_pending``."""
    op.create_table(
        "agentmem_learned",
        sa.Column("pk", sa.Integer, primary_key=True),
        _id("user_id"),
        _id("agent_id"),
        _id("key", 64),
        _time("created_at"),
    )
    op.create_index("ux_agentmem_learned", "agentmem_learned", ["user_id", "agent_id", "key"], unique=True)
    op.create_table(
        "agentmem_pending",
        sa.Column("id", sa.String(40), primary_key=True),
        _id("user_id"),
        _id("agent_id"),
        _id("session_id", nullable=True),
        _id("key", 64),
        sa.Column("messages", sa.JSON, nullable=False),
        sa.Column("error", sa.String, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        _time("created_at"),
        _time("updated_at"),
    )
    op.create_index("ux_agentmem_pending", "agentmem_pending", ["user_id", "agent_id", "key"], unique=True)


def _v3_sessions_and_messages(op: Operations) -> None:
    """Conversation sessions with their running summary, and their messages."""
    op.create_table(
        "agentmem_sessions",
        sa.Column("pk", sa.Integer, primary_key=True),
        _id("user_id"),
        _id("session_id"),
        _id("agent_id"),
        sa.Column("summary", sa.String, nullable=True),
        sa.Column("summarized_messages", sa.Integer, nullable=False),
        _time("created_at"),
        _time("updated_at"),
    )
    op.create_index("ux_agentmem_sessions", "agentmem_sessions", ["user_id", "session_id"], unique=True)
    op.create_table(
        "agentmem_messages",
        sa.Column("pk", sa.Integer, primary_key=True),
        _id("user_id"),
        _id("session_id"),
        _id("role", 16),
        sa.Column("content", sa.String, nullable=False),
        sa.Column("extra", sa.JSON, nullable=False),
        _time("created_at"),
    )
    op.create_index("ix_agentmem_messages_session", "agentmem_messages", ["user_id", "session_id", "pk"])


def _v4_event_observed_at(op: Operations) -> None:
    """When an extracted change's input was read: newer information wins whatever the write order."""
    op.add_column("agentmem_events", _time("observed_at", nullable=True))


def _v5_pending_watermark(op: Operations) -> None:
    """``pending.watermark`` and ``read_at``, which schema 4's code used without a migration: databases
    created at version 2 or 3 lack them; those created at 4, or at 1 and migrated by 4's code, have them."""
    have = set(op.get_bind().exec_driver_sql("SELECT * FROM agentmem_pending WHERE 1 = 0").keys())
    if "watermark" not in have:
        op.add_column("agentmem_pending", sa.Column("watermark", sa.Integer, nullable=True))
    if "read_at" not in have:
        op.add_column("agentmem_pending", _time("read_at", nullable=True))


def _v6_one_item_per_rule(op: Operations) -> None:
    """Each policy rule becomes an item of its own, keyed by its topic (a ``rules`` item held them all
    as one list): withdrawing one rule leaves the others, and an agent's rules add to the user's.
    Each rule's item is added with an event, the list item is deleted with one; its history stays."""
    from ..layers.policies import PoliciesLayer  # the rule keys as schema 6 defines them

    policies = PoliciesLayer()
    conn = op.get_bind()
    items, events = _ITEMS, _EVENTS
    now = datetime.now(UTC)
    rows = conn.execute(
        sa.select(items).where(
            items.c.layer == "policies", items.c.key == "rules", items.c.valid_to.is_(None)
        )
    ).all()
    for row in rows:
        rules = [
            str(rule) for rule in (row.value if isinstance(row.value, list) else []) if str(rule).strip()
        ]
        scope = {"user_id": row.user_id, "agent_id": row.agent_id, "session_id": row.session_id}
        for key, rule in {policies.element_key("rules", rule): rule for rule in rules}.items():
            item_id = "m_" + uuid.uuid4().hex[:24]
            values = {
                column.name: getattr(row, column.name)
                for column in items.c
                if column.name not in ("pk", "id")
            }
            values.update(id=item_id, key=key, value=rule, text=rule, line=f"rule: {rule}", count=1, meta={})
            pk = conn.execute(items.insert().values(**values)).inserted_primary_key
            if conn.dialect.name == "sqlite" and pk is not None:
                conn.exec_driver_sql(
                    f"INSERT INTO {FTS_TABLE}(rowid, text, owner) VALUES (?, ?, ?)",
                    (pk[0], rule, owner_token(row.user_id)),
                )
            conn.execute(
                events.insert().values(
                    item_id=item_id, layer="policies", key=key, op="add", old=None, new=rule,
                    reason=f"schema v6: one item per rule (was part of {row.id})", source=row.source,
                    created_at=now, **scope,
                )
            )  # fmt: skip
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(f"DELETE FROM {FTS_TABLE} WHERE rowid = ?", (row.pk,))
        conn.execute(items.delete().where(items.c.pk == row.pk))
        conn.execute(
            events.insert().values(
                item_id=row.id, layer="policies", key="rules", op="delete", old=row.value, new=None,
                reason="schema v6: split into one item per rule", source=row.source, created_at=now, **scope,
            )
        )  # fmt: skip


def _v7_user_generations(op: Operations) -> None:
    """Each user's current generation: what lets ``delete_user`` stop writes already under way."""
    op.create_table(
        "agentmem_generations",
        sa.Column("user_id", sa.String(255), primary_key=True),
        _id("token", 32),
    )


def _v8_ranked_reads(op: Operations) -> None:
    """Indexes for reading only the rows a budget or a limit can use: the newest live items of a
    scope and layer first, and on PostgreSQL full-text search in the database (a ``tsvector`` the
    database computes from ``text``, so rows written before this step are indexed too)."""
    live = sa.text("valid_to IS NULL")
    op.create_index(
        "ix_agentmem_items_recent",
        "agentmem_items",
        ["user_id", "agent_id", "layer", "updated_at"],
        sqlite_where=live,
        postgresql_where=live,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE agentmem_items ADD COLUMN search_vector tsvector "
            "GENERATED ALWAYS AS (to_tsvector('english'::regconfig, text)) STORED"
        )
        # fastupdate off: each write merges into the index at once, so no read scans a pending list
        # that only VACUUM would flush.
        op.execute(
            "CREATE INDEX ix_agentmem_items_search ON agentmem_items USING gin (search_vector)"
            " WITH (fastupdate = off)"
        )


def _v9_word_index(op: Operations) -> None:
    """Merge candidates through an index: the words of each item's text, as ``text.words`` splits them,
    where each backend looks them up (see ``search.index_items``). The words are the code's own, so a
    later change to ``text.words`` needs a step of its own that indexes every row anew."""
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        op.execute("ALTER TABLE agentmem_items ADD COLUMN words text[]")
        texts = conn.execute(sa.select(_ITEMS.c.pk, _ITEMS.c.text)).all()
        for start in range(0, len(texts), 1000):
            conn.execute(
                sa.text("UPDATE agentmem_items SET words = :words WHERE pk = :pk").bindparams(
                    sa.bindparam("words", type_=postgresql.ARRAY(sa.Text))
                ),
                [{"pk": r.pk, "words": sorted(word_set(r.text))} for r in texts[start : start + 1000]],
            )
        op.execute(
            "CREATE INDEX ix_agentmem_items_words ON agentmem_items USING gin (words) WITH (fastupdate = off)"
        )
        return
    # FTS5 now holds each text's words joined by spaces. ASCII text tokenizes to the same tokens either
    # way (Python's \w is the tokenizer's letters and digits, plus "_", which both cut at), so only
    # rows of other text are indexed anew.
    rows = conn.execute(
        sa.select(_ITEMS.c.pk, _ITEMS.c.user_id, _ITEMS.c.text).where(
            sa.func.length(_ITEMS.c.text) != sa.func.length(sa.cast(_ITEMS.c.text, sa.LargeBinary))
        )
    ).all()
    if rows:
        conn.exec_driver_sql(f"DELETE FROM {FTS_TABLE} WHERE rowid = ?", [(r.pk,) for r in rows])
        conn.exec_driver_sql(
            f"INSERT INTO {FTS_TABLE}(rowid, text, owner) VALUES (?, ?, ?)",
            [(r.pk, normalize(r.text), owner_token(r.user_id)) for r in rows],
        )


def _v9_variables(op: Operations) -> None:
    """Memory variables: one named value per user, agent (``""``: none) and session (``""``: none).
    Their history is events under the layer name ``variables``; no new history table."""
    op.create_table(
        "agentmem_variables",
        sa.Column("pk", sa.Integer, primary_key=True),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        _id("user_id"),
        _id("agent_id"),
        _id("session_id"),
        _id("name", 64),
        sa.Column("value", sa.String, nullable=False),
        _time("created_at"),
        _time("updated_at"),
    )
    op.create_index(
        "ux_agentmem_variables",
        "agentmem_variables",
        ["user_id", "agent_id", "session_id", "name"],
        unique=True,
    )


def _v9_expiry(op: Operations) -> None:
    """Items may expire: each its own ``expires_at`` (none for every item before this step), indexed
    over the live items that have one, so finding the expired ones reads no other row."""
    op.add_column("agentmem_items", _time("expires_at", nullable=True))
    dated = sa.text("expires_at IS NOT NULL AND valid_to IS NULL")
    op.create_index(
        "ix_agentmem_items_expiry",
        "agentmem_items",
        ["user_id", "agent_id", "layer", "expires_at"],
        sqlite_where=dated,
        postgresql_where=dated,
    )


def _v9_session_scope(op: Operations) -> None:
    """Session-scoped memory: each item and event says which session it belongs to (``""``: user-wide),
    and the live-key and recency indexes include it, so a user-wide item and a session's item of one
    key coexist and each scope's range is read through the index. A learned input that was kept in a
    session says so too: deleting the session forgets that it was learned."""
    for table in ("agentmem_items", "agentmem_events", "agentmem_learned"):
        op.add_column(table, sa.Column("session_scope", sa.String(255), nullable=False, server_default=""))
    live = sa.text("valid_to IS NULL")
    op.drop_index("ux_agentmem_items_live_key", table_name="agentmem_items")
    op.create_index(
        "ux_agentmem_items_live_key",
        "agentmem_items",
        ["user_id", "agent_id", "session_scope", "layer", "key"],
        unique=True,
        sqlite_where=live,
        postgresql_where=live,
    )
    op.drop_index("ix_agentmem_items_recent", table_name="agentmem_items")
    op.create_index(
        "ix_agentmem_items_recent",
        "agentmem_items",
        ["user_id", "agent_id", "session_scope", "layer", "updated_at"],
        sqlite_where=live,
        postgresql_where=live,
    )


def _v9(op: Operations) -> None:
    """Schema 9, one release's steps in one version."""
    for step in (_v9_word_index, _v9_variables, _v9_expiry, _v9_session_scope):
        step(op)


def _v10_owner_tags(op: Operations) -> None:
    """SQLite's full-text index scoped by tagged words instead of an ``owner`` phrase (see
    ``search.owner_tag``): the table is made anew with one column, each row's words tagged by the owner
    token its ``owner`` column held, copied over in batches. PostgreSQL's index is unchanged."""
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        return
    op.execute(f"ALTER TABLE {FTS_TABLE} RENAME TO {FTS_TABLE}_v9")
    op.execute(
        f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(text, tokenize='porter unicode61 remove_diacritics 2')"
    )
    last = -1
    while rows := conn.exec_driver_sql(
        f"SELECT rowid, text, owner FROM {FTS_TABLE}_v9 WHERE rowid > ? ORDER BY rowid LIMIT 5000", (last,)
    ).all():
        conn.exec_driver_sql(
            f"INSERT INTO {FTS_TABLE}(rowid, text) VALUES (?, ?)",
            [(pk, tagged(owner_tag(token), text)) for pk, text, token in rows],
        )
        last = rows[-1][0]
    op.execute(f"DROP TABLE {FTS_TABLE}_v9")


def _v10_user_pk_index(op: Operations) -> None:
    """PostgreSQL: a user's rows newest first, which the rank pool walks for a common word (see
    ``search.text_match``). Without it the walk went down the whole table's primary key, through every
    newer row of other users. SQLite's pools come from its full-text index alone."""
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_agentmem_items_user_pk", "agentmem_items", ["user_id", "pk"])


def _v10_api_keys(op: Operations) -> None:
    """The REST server's API keys: the SHA-256 of each secret (never the secret), what it is bound to
    (a user, an agent, or admin), and when it was created and revoked."""
    op.create_table(
        "agentmem_api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
        _id("user_id", nullable=True),
        _id("agent_id", nullable=True),
        sa.Column("admin", sa.Boolean, nullable=False),
        sa.Column("label", sa.String(200), nullable=True),
        _time("created_at"),
        _time("revoked_at", nullable=True),
    )
    op.create_index("ix_agentmem_api_keys_user_id", "agentmem_api_keys", ["user_id"])


def _v10(op: Operations) -> None:
    """Schema 10, one release's steps in one version."""
    for step in (_v10_owner_tags, _v10_user_pk_index, _v10_api_keys):
        step(op)


def _v11_vectors(op: Operations) -> None:
    """Embeddings for semantic search: one vector per item (float32, little-endian) of the model named
    beside it, with the item's owner for the scan of one owner's vectors. Deleting an item deletes its
    vector (the foreign key cascades; SQLite's connections turn foreign keys on). ``id`` only grows (no
    reuse, AUTOINCREMENT on SQLite): an owner's (count, largest id) changes with every change of its
    vectors, which is how a cached copy is checked (see ``store/vectors.py``). Items written before
    this step have no vector: they are pending embedding."""
    op.create_table(
        "agentmem_vectors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("pk", sa.Integer, sa.ForeignKey("agentmem_items.pk", ondelete="CASCADE"), nullable=False),
        _id("user_id"),
        _id("agent_id"),
        _id("model"),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("pk", name="ux_agentmem_vectors_pk"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_agentmem_vectors_owner", "agentmem_vectors", ["user_id", "model", "agent_id", "id"])


def _v12_cjk_and_topics(op: Operations) -> None:
    """Full-text search finds Chinese, Japanese and Korean words (``text.cjk_parts``, also in the words
    merge candidates are found by) and items by their topics (see ``search.index_items``). SQLite: the
    FTS5 rows of texts with other than ASCII characters or of values with topics are written anew (an
    ASCII text without topics indexes as before). PostgreSQL: ``search_vector`` becomes a column the
    code writes (its parser cannot cut CJK text): every row's is computed in one statement from its
    text as before, then rows of such texts or values get theirs and their ``words`` anew."""
    conn = op.get_bind()
    postgres = conn.dialect.name == "postgresql"
    items = _ITEMS
    if postgres:
        op.execute("ALTER TABLE agentmem_items DROP COLUMN search_vector")  # and its index
        op.execute("ALTER TABLE agentmem_items ADD COLUMN search_vector tsvector")
        op.execute("UPDATE agentmem_items SET search_vector = to_tsvector('english'::regconfig, text)")
    octets = (
        sa.func.octet_length(items.c.text)
        if postgres
        else sa.func.length(sa.cast(items.c.text, sa.LargeBinary))
    )
    other = sa.or_(
        sa.func.length(items.c.text) != octets,
        sa.cast(items.c.value, sa.Text).contains('"topics"'),
    )
    update = sa.text(
        "UPDATE agentmem_items SET words = :words,"
        " search_vector = to_tsvector('english'::regconfig, :document) WHERE pk = :pk"
    ).bindparams(sa.bindparam("words", type_=postgresql.ARRAY(sa.Text)))
    last = -1
    while rows := conn.execute(
        sa.select(items.c.pk, items.c.user_id, items.c.agent_id, items.c.text, items.c.value)
        .where(items.c.pk > last, other)
        .order_by(items.c.pk)
        .limit(1000)
    ).all():
        last = rows[-1].pk
        if postgres:
            conn.execute(
                update,
                [
                    {
                        "pk": r.pk,
                        "words": sorted(word_set(r.text)),
                        "document": search_document(r.text, r.value),
                    }
                    for r in rows
                ],
            )
            continue
        conn.exec_driver_sql(f"DELETE FROM {FTS_TABLE} WHERE rowid = ?", [(r.pk,) for r in rows])
        conn.exec_driver_sql(
            f"INSERT INTO {FTS_TABLE}(rowid, text) VALUES (?, ?)",
            [(r.pk, tagged(owner_tag(owner_token(_owner(r))), searched_text(r.text, r.value))) for r in rows],
        )
    if postgres:
        op.execute(
            "CREATE INDEX ix_agentmem_items_search ON agentmem_items USING gin (search_vector)"
            " WITH (fastupdate = off)"
        )


def _owner(row: Any) -> str:
    """The row's ``Scope.owner``: its user id, or for an agent's own memory (user id "") the agent's."""
    return f"\x1fagent:{row.agent_id}" if row.user_id == "" else str(row.user_id)


class Migration(NamedTuple):
    name: str
    run: Callable[[Operations], None]


# version -> the step that upgrades a database from version - 1 (0: an empty database).
MIGRATIONS: dict[int, Migration] = {
    1: Migration("items, events and full-text search", _v1_items_events_meta),
    2: Migration("learn idempotency log and pending extractions", _v2_learned_and_pending),
    3: Migration("conversation sessions and messages", _v3_sessions_and_messages),
    4: Migration("how current each extracted change was", _v4_event_observed_at),
    5: Migration("pending extractions' watermark where version 2 and 3 left it out", _v5_pending_watermark),
    6: Migration("one item per policy rule", _v6_one_item_per_rule),
    7: Migration("user generations, so a deleted user stays deleted", _v7_user_generations),
    8: Migration("ranked reads: recency index, and full-text search on PostgreSQL", _v8_ranked_reads),
    9: Migration("word index, memory variables, items that expire, session-scoped memory", _v9),
    10: Migration("full-text words tagged by owner, the rank pools' index, API keys", _v10),
    11: Migration("embeddings for semantic search", _v11_vectors),
    12: Migration("full-text search of CJK text and of topics", _v12_cjk_and_topics),
}
SCHEMA_VERSION = max(MIGRATIONS)


def stored_version(conn: Connection) -> int:
    """The database's schema version; 0 for a database agentmem never wrote to."""
    if not inspect(conn).has_table("agentmem_meta"):
        return 0
    value = conn.execute(sa.select(_META.c.value).where(_META.c.key == "schema_version")).scalar()
    return int(value) if value is not None else 0


def _set_version(conn: Connection, version: int) -> None:
    conn.execute(_META.delete().where(_META.c.key == "schema_version"))
    conn.execute(_META.insert().values(key="schema_version", value=str(version)))


def _lock(conn: Connection) -> None:
    """Let one process at a time migrate. SQLite: the caller's transaction already holds the write lock
    (BEGIN IMMEDIATE). PostgreSQL: a transaction-scoped advisory lock, one per schema, so processes
    opening a new database at once wait for the first instead of racing to create the same tables."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "SELECT pg_advisory_xact_lock(hashtextextended("
            "'agentmem.migrate:' || coalesce(current_schema(), ''), 0))"
        )


def migrate(engine: Engine, target: int = SCHEMA_VERSION) -> int:
    """Bring the database to ``target``; return the version it had before (0 when new)."""
    with engine.begin() as conn:
        _lock(conn)
        version = stored_version(conn)
        if version > target:
            raise StoreError(
                f"the database has schema version {version}, newer than this agentmem knows "
                f"({target}); upgrade agentmem"
            )
        if version == target:
            return version
        from alembic.migration import MigrationContext
        from alembic.operations import Operations

        op = Operations(MigrationContext.configure(connection=conn))
        for step in range(version + 1, target + 1):
            if step not in MIGRATIONS:
                raise StoreError(f"no migration to schema version {step}")
            MIGRATIONS[step].run(op)
            _set_version(conn, step)
        return version
