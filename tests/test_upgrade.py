"""Upgrades from every earlier schema version, with databases those versions' own code wrote.

tests/fixtures/v<N>.db (SQLite) and v<N>.pg.sql (a PostgreSQL dump) come from build_fixtures.py,
which ran each version's commit. Every fixture is opened by the current code on each backend it exists
for, and must then: keep all its data, learn, fail a learn into a pending extraction (an
ExtractionError, not a raw database error), retry it, export everything exactly, and have the very
schema a new database gets.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from conftest import PostgresSchemas
from schema_snapshot import snapshot
from sqlalchemy import create_engine
from sqlmodel import SQLModel

from agentmem import ExtractionError, MemoryManager
from agentmem.scope import Scope
from agentmem.server.keys import ApiKeys
from agentmem.store.migrations import SCHEMA_VERSION
from agentmem.testing import HashingEmbedder, ScriptedModel

FIXTURES = Path(__file__).parent / "fixtures"
VERSIONS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
CASES = [
    pytest.param(
        v, backend, id=f"v{v}-{backend}", marks=[pytest.mark.postgres] if backend == "postgres" else []
    )
    for v in VERSIONS
    for backend in ("sqlite", "postgres")
]
NEVER_VALID = "this reply is not JSON"


def load(version: int, backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A copy of the version's fixture database, on the backend; its URL."""
    if backend == "sqlite":
        path = tmp_path / f"v{version}.db"
        shutil.copyfile(FIXTURES / f"v{version}.db", path)
        return f"sqlite:///{path}"
    dump = FIXTURES / f"v{version}.pg.sql"
    if not dump.exists():
        pytest.skip(f"version {version} has no PostgreSQL fixture")
    schemas: PostgresSchemas = request.getfixturevalue("pg_schemas")
    name = schemas.new("fx")
    sql = re.sub(r"\bagentmem_fixture\b", name, dump.read_text())
    # Drop psql's meta-commands (\restrict) and the schema creation: the schema already exists.
    lines = [ln for ln in sql.splitlines() if not ln.startswith("\\") and not ln.startswith("CREATE SCHEMA")]
    schemas.load("\n".join(lines))
    return schemas.url_for(name)


@pytest.fixture
def managers() -> Iterator[list[MemoryManager]]:
    made: list[MemoryManager] = []
    yield made
    for mem in made:
        mem.close()


def schema_of(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return snapshot(conn)
    finally:
        engine.dispose()


def test_a_new_database_has_exactly_the_schema_of_the_models(db_url: str) -> None:
    """tables.py (what the code reads and writes) and the migrations (what databases get) agree."""
    MemoryManager(db=db_url).close()
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    # The full-text index is not a model: it is the migrations' own business (SQLite's
                    # FTS5 tables; PostgreSQL's generated tsvector column, the words array and their
                    # GIN indexes; the index its rank pools walk). The snapshot comparison of new and
                    # upgraded databases below covers it.
                    "include_name": lambda name, kind, _parent: (
                        not (
                            (kind == "table" and str(name).startswith("agentmem_items_fts"))
                            or (kind == "column" and name in ("search_vector", "words"))
                            or (
                                kind == "index"
                                and name
                                in (
                                    "ix_agentmem_items_search",
                                    "ix_agentmem_items_words",
                                    "ix_agentmem_items_user_pk",
                                )
                            )
                        )
                    ),
                },
            )
            assert compare_metadata(context, SQLModel.metadata) == []
    finally:
        engine.dispose()


@pytest.mark.parametrize(("version", "backend"), CASES)
def test_an_upgraded_database_has_exactly_the_schema_of_a_new_one(
    version: int, backend: str, tmp_path: Path, request: pytest.FixtureRequest, new_db_url: Any
) -> None:
    old = load(version, backend, tmp_path, request)
    MemoryManager(db=old).close()
    fresh = new_db_url()
    MemoryManager(db=fresh).close()
    assert schema_of(old) == schema_of(fresh)


@pytest.mark.parametrize(("version", "backend"), CASES)
def test_an_old_database_is_opened_used_and_exported(
    version: int, backend: str, tmp_path: Path, request: pytest.FixtureRequest, managers: list[MemoryManager]
) -> None:
    url = load(version, backend, tmp_path, request)
    mem = MemoryManager(db=url)
    managers.append(mem)

    # Everything the old code wrote is there.
    sarah = mem.get(user_id="sarah")
    assert sarah.profile.name == "Sarah"
    assert sarah.profile.role == "lead data scientist"
    assert sarah.profile.languages == ["English", "German"]
    assert sarah.policies.response_style == "concise"
    assert sarah.policies.rules == ["never use emojis", "cite your sources", "answer in British English"]
    # One item per rule: written so from schema 6 on; before, split by the upgrade, with an event each
    # and the list's history.
    rules = [i for i in sarah.items if i.layer == "policies" and i.key.startswith("rules:")]
    assert (rules[0].key, rules[0].text) == ("rules:emojis", "never use emojis")
    assert len({i.id for i in rules}) == 3
    split = [e for e in mem.history(user_id="sarah") if e.reason and e.reason.startswith("schema v6")]
    assert sorted(e.op for e in split) == (["add", "add", "add", "delete"] if version < 6 else [])
    assert sarah.policies.tone is None  # the reviewer's, not shared
    assert [k.text for k in sarah.knowledge] == [
        "Builds a demand forecast for the retail team",
        "Uses pandas and DuckDB",
    ]
    assert {f.text: f.count for f in sarah.feedback} == {"Liked the pandas example": 2, "Too much theory": 1}
    reviewer = mem.get(user_id="sarah", agent_id="reviewer")
    assert reviewer.policies.tone == "blunt"
    assert reviewer.profile.company == "Acme Retail"
    assert "Reviews pull requests on Fridays" in [k.text for k in reviewer.knowledge]
    assert "Reviews pull requests on Fridays" not in mem.compile(user_id="sarah")
    ops = [(e.layer, e.op) for e in mem.history(user_id="sarah")]
    assert ("knowledge", "supersede") in ops
    assert ("profile", "update") in ops
    marco = mem.get(user_id="marco")
    assert marco.profile.name == "Marco"
    assert marco.knowledge[0].text == "Maintains the billing service"
    if version >= 2:  # learned by the old code's learn(), which recorded the input as learned
        assert marco.profile.location == "Turin"
        again = mem.learn(
            [{"role": "user", "content": "I'm learning Rust and I live in Turin."}], user_id="marco"
        )
        assert again.usage.skipped == "this input was already learned"
    else:
        assert marco.profile.location == "Milan"
    if version >= 3:
        (session,) = mem.sessions.list(user_id="sarah")
        assert (session.session_id, session.agent_id, session.messages) == ("review-1", "reviewer", 4)
        assert session.summary
        messages = mem.sessions.messages("review-1", user_id="sarah")
        assert messages[1]["tool_calls"][0]["function"]["name"] == "fetch_pr"
        assert messages[2]["tool_call_id"] == "call_1"

    # Items written before the upgrade are found by full-text search (on PostgreSQL through the index
    # schema 8 added) and ranked into a budgeted compile.
    found = [h.item.text for h in mem.search("pandas examples", user_id="sarah")]
    assert sorted(found) == ["Liked the pandas example", "Uses pandas and DuckDB"]
    assert [h.item.text for h in mem.search("forecasting", user_id="sarah", layers=["knowledge"])] == [
        "Builds a demand forecast for the retail team"
    ]
    assert "Uses pandas and DuckDB" in mem.compile(user_id="sarah", query="duckdb", token_budget=200)
    # A topic finds its item, and filters, once schema 11 indexed the old rows' topics.
    assert [h.item.text for h in mem.search("stack", user_id="sarah")] == ["Uses pandas and DuckDB"]
    filtered = mem.compile(user_id="sarah", topics=["Stack"])
    assert "Uses pandas and DuckDB" in filtered
    assert "demand forecast" not in filtered
    if version >= 10:  # Chinese, Japanese and Korean text the old code wrote, found by its words
        for query, text in (
            ("咖啡", "我每天早上喝咖啡"),
            ("日常", "我每天早上喝咖啡"),
            ("東京", "東京でPythonを教えています"),
            ("python", "東京でPythonを教えています"),
            ("서울", "서울에서 데이터 분석을 합니다"),
        ):
            assert [h.item.text for h in mem.search(query, user_id="mei")] == [text]

    # The current code learns into it...
    learned = mem.learn([{"role": "user", "content": "Hi, I'm Sam, a nurse in Leeds."}], user_id="sam")
    assert learned.changes["profile"]
    assert mem.get(user_id="sam").profile.name == "Sam"
    # ...keeps memory variables (schema 9), with their history, in an old database...
    mem.variables.set("current_task", "book a GP visit", user_id="sam", session_id="s9")
    assert mem.variables.values(user_id="sam", session_id="s9") == {"current_task": "book a GP visit"}

    # ...takes the REST server's API keys (schema 10)...
    made = ApiKeys(mem).create(user_id="sam", label="upgraded")
    assert ApiKeys(mem).find(made.secret) == made.key
    # ...embeds the old items, all pending embedding (schema 11), and finds them by their vectors...
    embedder = HashingEmbedder()
    semantic = MemoryManager(db=url, embedding_model=embedder)
    managers.append(semantic)
    assert semantic.reembed(user_id="sarah") >= 8  # every live item of hers, none of marco's
    assert semantic.reembed(user_id="sarah") == 0
    with semantic._store.engine.connect() as conn:
        query = semantic._embedder.embed(["What does she build for retail?"])[0]  # type: ignore[union-attr]
        best, _score = semantic._store.dense_hits(conn, Scope.of("sarah"), query, 1)[0]
    found = semantic.item(_item_id(semantic, best), user_id="sarah")
    assert found is not None
    assert found.text == "Builds a demand forecast for the retail team"

    # ...keeps a failed extraction as pending (an ExtractionError, not a database error)...
    failing = MemoryManager(db=url, model=ScriptedModel(lambda _m: NEVER_VALID), max_retries=0)
    managers.append(failing)
    with pytest.raises(ExtractionError) as failed:
        failing.learn([{"role": "user", "content": "I moved to York and work nights now."}], user_id="sam")
    assert failed.value.pending_id

    # ...and retries it, with the old code's own pending extraction, once the model answers.
    fixed = MemoryManager(db=url, model=ScriptedModel(lambda _m: {"knowledge": [{"text": "Works nights"}]}))
    managers.append(fixed)
    report = fixed.retry_pending()
    expected = 2 if version >= 2 else 1
    assert (report.retried, len(report.results), report.still_pending) == (expected, expected, 0)
    assert "Works nights" in [k.text for k in fixed.get(user_id="sam").knowledge]
    if version >= 2:
        assert "Works nights" in [k.text for k in fixed.get(user_id="marco").knowledge]

    # Everything exports, and comes back exactly.
    for user in ("sarah", "marco", "sam"):
        exported = mem.export_user(user)
        assert exported["items"]
        mem.delete_user(user)
        mem.import_user(exported)
        assert mem.export_user(user) == exported
    assert len(mem.export_user("sarah")["sessions"]) == (1 if version >= 3 else 0)
    assert [v["name"] for v in mem.export_user("sam")["variables"]] == ["current_task"]


def _item_id(mem: MemoryManager, pk: int) -> str:
    with mem._store.engine.connect() as conn:
        return str(conn.exec_driver_sql(f"SELECT id FROM agentmem_items WHERE pk = {int(pk)}").scalar_one())


def test_every_fixture_is_older_than_the_current_schema() -> None:
    assert list(range(1, SCHEMA_VERSION)) == VERSIONS, (
        "add a fixture for each earlier schema version: its commit in build_fixtures.COMMITS, then run it"
    )
    for version in VERSIONS:
        assert (FIXTURES / f"v{version}.db").exists()
    assert (FIXTURES / "v3.pg.sql").exists()
    assert (FIXTURES / "v4.pg.sql").exists()
    assert (FIXTURES / "v6.pg.sql").exists()
    assert (FIXTURES / "v7.pg.sql").exists()
    assert (FIXTURES / "v8.pg.sql").exists()
    assert (FIXTURES / "v9.pg.sql").exists()
    assert (FIXTURES / "v10.pg.sql").exists()
