"""Fixtures for tests that reach a model over real HTTP: a LoopbackServer on 127.0.0.1 and managers
pointed at it through litellm (``openai/test-model``). Nothing leaves this machine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentmem import MemoryManager
from agentmem.testing import LoopbackServer

MODEL = "openai/test-model"

MakeManager = Callable[..., MemoryManager]


@pytest.fixture(autouse=True)
def _loopback_is_not_proxied(monkeypatch: pytest.MonkeyPatch) -> None:
    # httpx honours HTTP(S)_PROXY from the environment; loopback must never go through one.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(scope="session", autouse=True)
def _quiet_litellm() -> None:
    import litellm

    litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banner on expected errors


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as running:
        yield running


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "memory.db"


@pytest.fixture
def make_mem(server: LoopbackServer, db_path: Path) -> Iterator[MakeManager]:
    """Build a manager on the test's SQLite file whose model is the loopback server."""
    made: list[MemoryManager] = []

    def make(**options: Any) -> MemoryManager:
        manager = MemoryManager(
            db=f"sqlite:///{db_path}",
            model=MODEL,
            model_options={"api_base": server.url, "api_key": "test-key"},
            **options,
        )
        made.append(manager)
        return manager

    yield make
    for manager in made:
        manager.close()


@pytest.fixture
def http_mem(make_mem: MakeManager) -> MemoryManager:
    return make_mem()
