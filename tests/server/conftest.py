"""Fixtures for the REST server's tests. Each runs on both backends (through the root ``db_url``/``mem``).

- ``mem``: the root fixture, the :class:`MemoryManager` the app serves (a fresh database).
- ``app``: ``create_app(mem)``; add test-only routes to it before making clients if needed.
- ``make_key(user_id=None, agent_id=None, admin=False, label=None) -> str``: creates a key in ``mem``'s
  database and returns its secret. A key must be admin or bound to a user and/or an agent. Creating
  any key ends open mode: from then on every ``/v1`` request needs a key.
- ``admin_key``: the secret of an admin key made with ``make_key(admin=True)``.
- ``client``: a ``fastapi.testclient.TestClient`` on ``app`` sending ``admin_key`` as
  ``Authorization: Bearer``. Server exceptions are raised in the test (a 500 is a failing test).
- ``client_for(key: str | None, header="bearer") -> TestClient``: a client of the same ``app`` sending
  ``key`` (``header="x-api-key"``: as ``X-API-Key``; ``key=None``: no key at all).
- ``serve_process``: the base URL (``http://127.0.0.1:PORT``) of a real ``agentmem serve`` subprocess
  on a free loopback port against ``db_url`` (the test's backend), ready (``/healthz`` answered); it is
  terminated after the test. Take ``db_url`` too to make keys in its database (``make_key`` does).
- ``free_port() -> int`` and ``serve_command(*args) -> list[str]`` (plain functions) for tests that
  start ``agentmem serve`` themselves.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agentmem import MemoryManager
from agentmem.server import create_app
from agentmem.server.keys import ApiKeys

MakeKey = Callable[..., str]
ClientFor = Callable[..., TestClient]
READY_SECONDS = 60  # how long a starting server may take to answer /healthz (a busy CI machine)


@pytest.fixture(autouse=True)
def _loopback_is_not_proxied(monkeypatch: pytest.MonkeyPatch) -> None:
    # httpx honours HTTP(S)_PROXY from the environment; loopback must never go through one.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def app(mem: MemoryManager) -> FastAPI:
    # TestClient sends ``Host: testserver``, which open mode answers only when allowed.
    return create_app(mem, allowed_hosts=["testserver"])


@pytest.fixture
def make_key(mem: MemoryManager) -> MakeKey:
    keys = ApiKeys(mem)

    def make(
        user_id: str | None = None, agent_id: str | None = None, admin: bool = False, label: str | None = None
    ) -> str:
        return keys.create(user_id=user_id, agent_id=agent_id, admin=admin, label=label).secret

    return make


@pytest.fixture
def admin_key(make_key: MakeKey) -> str:
    return make_key(admin=True, label="tests")


@pytest.fixture
def client_for(app: FastAPI) -> Iterator[ClientFor]:
    made: list[TestClient] = []

    def client(key: str | None, header: str = "bearer") -> TestClient:
        if header not in ("bearer", "x-api-key"):
            raise ValueError(f"header must be 'bearer' or 'x-api-key', got {header!r}")
        headers = {}
        if key is not None:
            headers = {"Authorization": f"Bearer {key}"} if header == "bearer" else {"X-API-Key": key}
        made.append(TestClient(app, headers=headers))
        return made[-1]

    yield client
    for one in made:
        one.close()


@pytest.fixture
def client(client_for: ClientFor, admin_key: str) -> TestClient:
    return client_for(admin_key)


def free_port() -> int:
    """A port free on 127.0.0.1 just now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve_command(*args: str) -> list[str]:
    """``agentmem serve ARGS`` run by this test's Python (the project's venv)."""
    return [sys.executable, "-m", "agentmem.cli", "serve", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_PROXY": "127.0.0.1,localhost"}


@contextmanager
def serving(
    *args: str,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stop_seconds: float = 15,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A real ``agentmem serve ARGS`` on a free loopback port, its output in ``log``: yields the base URL
    once ``/healthz`` answers (and the process, to stop it early); stops it (SIGTERM, then SIGKILL)."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            serve_command(*args, "--port", str(port)),
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**_env(), **(env or {})},
            cwd=cwd,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            if proc.poll() is not None:
                pytest.fail(f"agentmem serve exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"agentmem serve did not answer /healthz in {READY_SECONDS} s:\n{log.read_text()}"
                )
            time.sleep(0.1)
        yield base, proc
    finally:
        proc.terminate()  # a graceful stop: the lifespan closes the served agents after their learning
        try:
            proc.wait(timeout=stop_seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def serve_process(db_url: str, tmp_path: Path) -> Iterator[str]:
    with serving("--db", db_url, log=tmp_path / "serve.log") as (base, _proc):
        yield base
