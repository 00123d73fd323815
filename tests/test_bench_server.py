"""benchmarks/bench_server.py runs end to end (a smoke run: its figures are read by people, not asserted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import postgres_url_or_skip

ROW = r"^  (context read|memory write) +(in-process|HTTP) +[\d,]+ +[\d.]+ +[\d.]+ +(\d+)$"
SCRIPT = Path(__file__).parent.parent / "benchmarks" / "bench_server.py"


def test_quick_run_prints_both_tables_with_no_errors() -> None:
    url = postgres_url_or_skip()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--requests", "64", "--postgres-url", url],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_PROXY": "127.0.0.1,localhost"},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for backend in ("sqlite", "postgres"):
        table = out.split(f"{backend}: 16 concurrent clients, 64 calls per row", 1)[1].split("\n\n", 1)[0]
        rows = re.findall(ROW, table, flags=re.MULTILINE)
        assert [(op, mode) for op, mode, _ in rows] == [
            ("context read", "in-process"),
            ("context read", "HTTP"),
            ("memory write", "in-process"),
            ("memory write", "HTTP"),
        ], table
        assert {errors for _, _, errors in rows} == {"0"}, table
        for op in ("context read", "memory write"):
            assert re.search(rf"^  {op}: HTTP / in-process  req/s x[\d.]+  p95 x[\d.]+$", table, re.MULTILINE)
    assert "PASS  errors: 0 (target 0)" in out
