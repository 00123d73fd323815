"""Shared fixtures: every test gets its own real database; nothing reaches the network.

``db_url`` runs a test on both backends: a fresh SQLite file, and a fresh schema (namespace) on the
PostgreSQL server named by ``AGENTMEM_TEST_POSTGRES_URL``, dropped afterwards. Other checkouts test
against the same server at other schema versions, so no test ever touches the ``public`` schema.
Without the variable the PostgreSQL half is skipped, unless ``AGENTMEM_REQUIRE_POSTGRES`` is set (CI),
where it fails instead.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentmem import MemoryManager

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

PG_URL = os.environ.get("AGENTMEM_TEST_POSTGRES_URL")
REQUIRE_PG = bool(os.environ.get("AGENTMEM_REQUIRE_POSTGRES"))


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The embedded default must never touch the developer's real ~/.agentmem from a test.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AGENTMEM_DB_URL", raising=False)


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly on any connection that is not to this machine."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (
            host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/")
        ):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


class PostgresSchemas:
    """Creates uniquely named schemas on the test server; ``drop_all`` drops the ones it made."""

    def __init__(self, url: str, admin: Any) -> None:
        self.url = url
        self._plain = url.replace("postgresql+psycopg://", "postgresql://")
        self._admin = admin  # an autocommit psycopg connection, shared by the session
        self._made: list[str] = []

    def new(self, prefix: str = "t") -> str:
        """A new empty schema's name."""
        name = f"agentmem_{prefix}_{uuid.uuid4().hex[:12]}"
        self._admin.execute(f'CREATE SCHEMA "{name}"')
        self._made.append(name)
        return name

    def url_for(self, schema: str) -> str:
        """The test server's URL with ``schema`` as the only schema on the search path."""
        sep = "&" if "?" in self.url else "?"
        return f"{self.url}{sep}options=-csearch_path%3D{schema}%20-csynchronous_commit%3Doff"

    def new_url(self, prefix: str = "t") -> str:
        return self.url_for(self.new(prefix))

    def load(self, script: str) -> None:
        """Run an SQL script (several statements, e.g. a dump) on a connection of its own."""
        import psycopg

        with psycopg.connect(self._plain, autocommit=True) as conn:
            conn.execute(script.encode())  # bytes, no parameters: sent as one simple query

    def drop_all(self) -> None:
        for name in self._made:
            self._admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        self._made.clear()


def postgres_url_or_skip() -> str:
    if PG_URL:
        return PG_URL
    if REQUIRE_PG:
        pytest.fail("AGENTMEM_REQUIRE_POSTGRES is set but AGENTMEM_TEST_POSTGRES_URL is not")
    pytest.skip("set AGENTMEM_TEST_POSTGRES_URL to run the PostgreSQL half of the suite")


@pytest.fixture(scope="session")
def _pg_admin() -> Iterator[Any]:
    url = postgres_url_or_skip()
    import psycopg

    try:
        conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
    except psycopg.Error as exc:
        if REQUIRE_PG:
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    yield conn
    conn.close()


@pytest.fixture
def pg_schemas(_pg_admin: Any) -> Iterator[PostgresSchemas]:
    """Fresh PostgreSQL schemas for this test, dropped after it (skipped, or failed in CI, without
    a server)."""
    assert PG_URL is not None
    schemas = PostgresSchemas(PG_URL, _pg_admin)
    yield schemas
    schemas.drop_all()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def new_db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[], str]:
    """Makes the URL of another new, empty database on this test's backend."""
    if backend == "sqlite":
        counter = iter(range(1_000_000))
        return lambda: f"sqlite:///{tmp_path / f'memory-{next(counter)}.db'}"
    schemas: PostgresSchemas = request.getfixturevalue("pg_schemas")
    return schemas.new_url


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A new, empty database on each backend: a SQLite file, a PostgreSQL schema."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'memory.db'}"
    schemas: PostgresSchemas = request.getfixturevalue("pg_schemas")
    return schemas.new_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A new SQLite file, for tests of behaviour that does not depend on the store's backend."""
    return f"sqlite:///{tmp_path / 'memory.db'}"


@pytest.fixture
def make_mem(db_url: str) -> Iterator[Callable[..., MemoryManager]]:
    """``make_mem(**options)``: managers on the test's database, all closed afterwards."""
    made: list[MemoryManager] = []

    def factory(**options: Any) -> MemoryManager:
        made.append(MemoryManager(db=db_url, **options))
        return made[-1]

    yield factory
    for manager in made:
        manager.close()


@pytest.fixture
def mem(db_url: str) -> Iterator[MemoryManager]:
    manager = MemoryManager(db=db_url)
    yield manager
    manager.close()
