"""The README's code blocks and every example run, offline, as part of the suite.

Each README block runs by itself, as a reader would paste it: in a fresh folder with a fresh HOME, in a
new process, then a second time in the same folder (a reader runs a snippet again; it must still work).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("[!_]*.py"))  # "_support.py" is a helper, not an example
BIN = Path(sys.executable).parent  # this checkout's environment: its python and its agentmem command
# Shell blocks whose commands are not run here: "make test" would run this suite inside itself, and
# "pip install" needs the network. Every other shell block runs.
NOT_RUN = ("make", "pip")


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int  # where the block starts in the README, to find it from a failure


def readme_blocks() -> list[Block]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [
        Block(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1)
        for m in re.finditer(r"^```(\w*)\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)
    ]


BLOCKS = readme_blocks()
PYTHON = [b for b in BLOCKS if b.language == "python"]
SHELL = [b for b in BLOCKS if b.language == "sh" and b.code.split()[0] not in NOT_RUN]


def offline_env(home: Path) -> dict[str, str]:
    env = {**os.environ, "HOME": str(home), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    # Offline unless a developer asks otherwise; a key in the environment must not make a block call out.
    for name in ("AGENTMEM_MODEL", "AGENTMEM_DB_URL", "OPENAI_API_KEY"):
        env.pop(name, None)
    return env


def run_script(command: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=offline_env(home), capture_output=True, text=True, timeout=120
    )


SERVER_PORT = re.compile(r"(?<=:)87\d\d\b|(?<=--port )87\d\d\b")
"""The ports the README's server blocks use (8765...): each run gets free ones instead, so the docs
tests can run twice, or beside another run, without two servers on one port."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def with_free_ports(code: str) -> str:
    """``code`` with each README port replaced by a port free just now (the same one each time)."""
    chosen: dict[str, str] = {}
    return SERVER_PORT.sub(lambda m: chosen.setdefault(m.group(0), str(free_port())), code)


def run_twice(block: Block, command: list[str], tmp_path: Path) -> None:
    script = tmp_path / "block"
    script.write_text(with_free_ports(block.code), encoding="utf-8")
    home, folder = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    folder.mkdir()
    for attempt in ("first run", "second run, same folder"):
        done = run_script([*command, str(script)], cwd=folder, home=home)
        assert done.returncode == 0, f"README line {block.line}, {attempt}:\n{done.stdout}\n{done.stderr}"
        assert done.stderr == "", f"README line {block.line}, {attempt} printed to stderr:\n{done.stderr}"


def test_the_readme_has_blocks_to_run() -> None:
    assert len(PYTHON) >= 10
    assert len(SHELL) >= 1
    # A block in another language would be silently left out: every block is Python, shell or output.
    assert {b.language for b in BLOCKS} <= {"python", "sh", ""}


@pytest.mark.parametrize("block", PYTHON, ids=[f"line-{b.line}" for b in PYTHON])
def test_readme_python_block_runs_alone_and_again(block: Block, tmp_path: Path) -> None:
    run_twice(block, [sys.executable], tmp_path)


@pytest.mark.parametrize("block", SHELL, ids=[f"line-{b.line}" for b in SHELL])
def test_readme_shell_block_runs_alone_and_again(block: Block, tmp_path: Path) -> None:
    run_twice(block, ["bash", "-euo", "pipefail"], tmp_path)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(example: Path, tmp_path: Path) -> None:
    result = run_script([sys.executable, str(example)], cwd=tmp_path, home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_server_blocks_get_free_ports_and_wait_for_their_server() -> None:
    served = [b for b in SHELL if "agentmem serve" in b.code]
    assert served
    for block in served:
        assert SERVER_PORT.search(block.code), block.line
        assert "8765" not in with_free_ports("agentmem serve --port 8765 x http://127.0.0.1:8765/docs")
        # The server has exited when the block ends, so the next run can use the folder and port.
        assert block.code.rstrip().splitlines()[-1].startswith("kill $!; wait $!"), block.line
    moved = with_free_ports("--port 8765 http://127.0.0.1:8765/ http://127.0.0.1:8766/")
    assert len(set(re.findall(r"\d{4,5}", moved))) == 2
