"""benchmarks/bench_scale.py runs end to end (a smoke run: its figures are read by people, not asserted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import postgres_url_or_skip

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "bench_scale.py"


def test_quick_run_prints_every_table_on_both_backends() -> None:
    url = postgres_url_or_skip()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--postgres-url", url],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for backend in ("sqlite", "postgres"):
        for op in ("learn (model excluded)", "compile(query, token_budget=1,800)", "search(query, limit=10)"):
            table = out.split(f"{backend}: {op}, ms", 1)[1].split("\n\n", 1)[0]
            sizes = re.findall(r"^\s+([\d,]+) \|", table, flags=re.MULTILINE)
            assert sizes == ["10", "100"], table
    assert "postgres multi-process: 4 processes x 2 users" in out
    assert re.search(r"^  throughput [\d.,]+ ops/s", out, flags=re.MULTILINE)
    for op in ("learn", "compile", "search"):
        assert re.search(rf"^  {op} +n +\d+ +p50 .* p95 ", out, flags=re.MULTILINE), op
    assert "PASS  multi-process errors: 0 (target 0)" in out
