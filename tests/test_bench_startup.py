"""``benchmarks/bench_startup.py`` runs end to end (one round of a few rows) and writes what it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a benchmark's smoke test: with the slow checks (make test-slow, also in CI)

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_bench_startup_times_the_commands_in_turns_and_writes_json(tmp_path):
    out = tmp_path / "startup.json"
    rows = ["python -c pass", "makemore --help", "usage error (sample --top_k)"]
    argv = [sys.executable, str(BENCHMARKS / "bench_startup.py"), "--runs", "2", "--warmup", "0", "--out", str(out)]
    proc = subprocess.run([*argv, "--commands", *rows], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["benchmark"] == "startup" and result["target_s"] == 0.3
    assert list(result["rows"]) == rows
    for name, row in result["rows"].items():
        assert len(row["runs_s"]) == 2 and row["best_s"] <= row["median_s"] and row["median_s"] > 0
        assert name in proc.stdout
    assert result["rows"]["python -c pass"]["over_python_s"] == 0
