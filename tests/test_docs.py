"""The README's Python snippets and every example run, offline, as part of the suite."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("[!_]*.py"))  # "_support.py" is a helper, not an example


def run_script(script: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(cwd), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env.pop("AGENTMEM_MODEL", None)  # offline unless a developer asks otherwise
    env.pop("AGENTMEM_DB_URL", None)
    return subprocess.run(
        [sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_readme_python_snippets_run_in_order(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.DOTALL)
    assert len(blocks) >= 3
    script = tmp_path / "readme_snippets.py"
    script.write_text("\n".join(blocks))  # one session, in order, like a reader would
    result = run_script(script, tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(example: Path, tmp_path: Path) -> None:
    result = run_script(example, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
