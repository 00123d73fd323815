"""``agentmem serve`` as a real process on loopback, its refusal to run open beyond loopback, ``--agents``
loading, and that ``import agentmem`` never loads the server's dependencies."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from agentmem import Agent, ConfigurationError, MemoryManager
from agentmem.cli import is_loopback
from agentmem.server.agents import load_agents
from agentmem.store.migrations import SCHEMA_VERSION
from agentmem.testing import LoopbackServer

from .conftest import free_port, serve_command, serving


def refused(*args: str) -> subprocess.CompletedProcess[str]:
    """``agentmem serve ARGS`` on port 1, which it must refuse before it binds: its exit and output."""
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.run(
        serve_command(*args, "--port", "1"), env=env, capture_output=True, text=True, timeout=120
    )


def test_a_served_process_runs_open_until_a_key_is_created(serve_process: str, db_url: str) -> None:
    assert httpx.get(f"{serve_process}/healthz").json() == {"status": "ok", "schema_version": SCHEMA_VERSION}
    assert httpx.get(f"{serve_process}/v1/me").json()["admin"] is True  # open mode

    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    created = subprocess.run(
        [sys.executable, "-m", "agentmem.cli", "keys", "create", "--db", db_url, "--user", "alice"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    key = created.stdout.splitlines()[-1]
    refused = httpx.get(f"{serve_process}/v1/me")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert httpx.get(f"{serve_process}/v1/me", headers={"X-API-Key": key}).json()["user_id"] == "alice"
    assert (
        httpx.get(f"{serve_process}/v1/keys", headers={"Authorization": f"Bearer {key}"}).status_code == 404
    )
    too_large = httpx.post(f"{serve_process}/v1/keys", content=b"x" * 1_000_001, headers={"X-API-Key": key})
    assert (too_large.status_code, too_large.json()["error"]["code"]) == (413, "body_too_large")
    assert httpx.get(f"{serve_process}/openapi.json").json()["info"]["title"] == "agentmem"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "example.org"])
def test_serve_refuses_to_run_open_beyond_loopback(sqlite_url: str, host: str) -> None:
    done = refused("--db", sqlite_url, "--host", host)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"error: refusing to bind to {host}: no API key exists yet")
    assert "agentmem keys create --admin" in done.stderr


def test_is_loopback() -> None:
    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "10.0.0.1", "example.org", ""):
        assert not is_loopback(host), host


def test_importing_agentmem_loads_no_server_dependency(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    code = (
        "import sys\n"
        "import agentmem, agentmem.server, agentmem.cli\n"
        "from agentmem.cli import main\n"
        f"assert main(['--db', {url!r}, 'keys', 'create', '--admin']) == 0\n"
        f"assert main(['--db', {url!r}, 'keys', 'list']) == 0\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette', 'uvicorn')]\n"
        "assert not loaded, loaded\n"
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# ---- --agents ----------------------------------------------------------------------------------


@pytest.fixture
def agents_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module ``served_agents`` on sys.path with every shape --agents takes, and wrong ones."""
    (tmp_path / "served_agents.py").write_text(
        "from agentmem import Agent\n"
        "from agentmem.testing import ScriptedModel\n"
        "agents = [Agent(ScriptedModel(), agent_id='helper'), Agent(ScriptedModel(), agent_id='coach')]\n"
        "by_id = {'helper': agents[0]}\n"
        "wrong_keys = {'other': agents[0]}\n"
        "one = agents[1]\n"
        "def make(memory):\n"
        "    return [Agent(ScriptedModel(), memory=memory, agent_id='bound')]\n"
        "anonymous = [Agent(ScriptedModel())]\n"
        "twins = [Agent(ScriptedModel(), agent_id='x'), Agent(ScriptedModel(), agent_id='x')]\n"
        "not_agents = [1, 2]\n"
        "number = 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "served_agents"


def test_load_agents_takes_a_list_a_dict_one_agent_or_a_function(
    agents_module: str, mem: MemoryManager
) -> None:
    assert list(load_agents(f"{agents_module}:agents", mem)) == ["helper", "coach"]
    assert list(load_agents(f"{agents_module}:by_id", mem)) == ["helper"]
    assert list(load_agents(f"{agents_module}:one", mem)) == ["coach"]
    made = load_agents(f"{agents_module}:make", mem)
    assert isinstance(made["bound"], Agent)
    assert made["bound"].memory is mem


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("served_agents", "must be 'module:attribute'"),
        (":agents", "must be 'module:attribute'"),
        ("no_such_module_here:agents", "cannot import"),
        ("served_agents:missing", "has no attribute"),
        ("served_agents:anonymous", "needs an agent_id"),
        ("served_agents:twins", "two agents"),
        ("served_agents:not_agents", "not an agentmem Agent"),
        ("served_agents:number", "is of type int"),
        ("served_agents:wrong_keys", "not their agents' agent_id"),
    ],
)
def test_load_agents_says_what_is_wrong(
    agents_module: str, mem: MemoryManager, spec: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_agents(spec, mem)


def test_serve_says_when_agents_cannot_be_loaded(sqlite_url: str) -> None:
    done = refused("--db", sqlite_url, "--agents", "no_such_module_here:agents")
    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot import 'no_such_module_here' for --agents")


def test_serve_prints_where_it_listens_once_and_nothing_per_request(
    serve_process: str, tmp_path: Path
) -> None:
    for _ in range(3):
        assert httpx.get(f"{serve_process}/v1/me").status_code == 200
    rebound = httpx.get(f"{serve_process}/v1/users", headers={"Host": "rebind.attacker.example"})
    assert (rebound.status_code, rebound.json()["error"]["code"]) == (400, "host_not_allowed")
    printed = (tmp_path / "serve.log").read_text()  # the fixture's stdout and stderr
    port = serve_process.rsplit(":", 1)[1]
    assert printed.splitlines() == [
        f"agentmem serving on http://127.0.0.1:{port} (open mode: no API key exists, loopback only)"
    ]


def test_serve_answers_an_allowed_host_and_logs_requests_to_stderr_when_asked(sqlite_url: str) -> None:
    port = free_port()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_PROXY": "127.0.0.1,localhost"}
    proc = subprocess.Popen(
        serve_command(
            "--db", sqlite_url, "--port", str(port), "--allowed-host", "box.example", "--access-log"
        ),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):  # up to a minute to start
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert httpx.get(f"{base}/v1/me", headers={"Host": "box.example"}).status_code == 200
        assert httpx.get(f"{base}/v1/me", headers={"Host": "other.example"}).status_code == 400
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert out.splitlines() == [
        f"agentmem serving on http://127.0.0.1:{port} (open mode: no API key exists, loopback only)"
    ]
    assert '"GET /v1/me HTTP/1.1" 200' in err


def test_serve_with_an_embedding_model_embeds_what_it_stores_and_what_it_is_asked(
    sqlite_url: str, tmp_path: Path
) -> None:
    with LoopbackServer() as model:
        args = ["--embedding-model", "openai/test-embedding", "--embedding-api-base", model.url]
        env = {"OPENAI_API_KEY": "test-key"}  # the model's usual variable, as the option's help says
        with serving("--db", sqlite_url, *args, log=tmp_path / "serve.log", env=env) as (base, _proc):
            added = httpx.post(
                f"{base}/v1/users/sarah/items",
                json={"layer": "knowledge", "text": "Lives in Berlin"},
                timeout=60,  # the first embedding call imports litellm
            )
            assert added.status_code == 201, added.text
            found = httpx.get(f"{base}/v1/users/sarah/search", params={"query": "Berlin"}, timeout=60).json()
            assert [hit["item"]["text"] for hit in found["hits"]] == ["Lives in Berlin"]
    assert [r["input"] for r in model.embedding_requests] == [["Lives in Berlin"], ["Berlin"]]


def test_serve_refuses_an_embedding_server_without_a_model(sqlite_url: str) -> None:
    done = refused("--db", sqlite_url, "--embedding-api-base", "http://127.0.0.1:1")
    assert done.returncode == 1
    assert done.stderr == "error: --embedding-api-base needs --embedding-model\n"
