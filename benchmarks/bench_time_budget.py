"""How well ``makemore train --time`` keeps its budget: asked vs taken, for 30 s, 90 s and 5 min.

Each budget runs ``makemore train --time T`` (the default preset, the built-in corpus unless
``--input`` is given) as its own process, as a user would, and measures the process's wall
time from start to exit (Python and PyTorch start-up included; the budget counts from
makemore's import). Also reports the steps chosen, whether the run stopped at its deadline
(a busier machine), and the dev NLL reached.

Usage:
    python benchmarks/bench_time_budget.py                       # 30s 90s 5m, about 7 minutes
    python benchmarks/bench_time_budget.py --budgets 30s 90s 5m --repeats 3
    python benchmarks/bench_time_budget.py --input ../shared/data/names.txt --budgets 60s

Writes a table to stdout and JSON to --out (default benchmarks/results/time_budget.json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import run_info, write_json  # benchmarks/benchlib.py


def run_once(budget: str, input_path: str | None, extra: list[str]) -> dict:
    """One ``makemore train --time budget`` in a fresh process: its wall time and what it chose."""
    from makemore.train.budget import parse_duration

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        command = [sys.executable, "-m", "makemore", "train", "-o", str(run), "--time", budget, "-q", *extra]
        if input_path:
            command += ["-i", input_path]
        started = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True)
        taken = time.perf_counter() - started
        if proc.returncode != 0:
            sys.exit(f"--time {budget}: makemore train failed:\n{proc.stderr[-2000:]}")
        meta = json.loads((run / "run.json").read_text())
    asked = parse_duration(budget)
    record = meta.get("time_budget", {})
    return {
        "asked_s": asked,
        "taken_s": taken,
        "error_pct": 100 * (taken - asked) / asked,
        "planned_steps": meta["train"]["steps"],
        "steps": meta["state"]["step"],
        "stopped_at_deadline": meta["state"]["step"] < meta["train"]["steps"],
        "dev_loss": meta["metrics"].get("best_dev_loss"),
        "calibration": record,
        "stdout": proc.stdout.strip(),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", nargs="+", default=["30s", "90s", "5m"], help="durations for --time")
    parser.add_argument("--input", default=None, help="words file (default: the built-in names corpus)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per budget (the table shows medians)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more train options for every run")
    parser.add_argument("--out", default="benchmarks/results/time_budget.json")
    args = parser.parse_args(argv)

    result = {**run_info("time_budget", args), "cpus": os.cpu_count(), "budgets": {}}
    print(
        f"{'asked':>7} {'taken s':>8} {'error %':>8} {'steps':>7} {'deadline':>8} {'dev NLL':>8}  (median of {args.repeats})"
    )
    for budget in args.budgets:
        runs = [run_once(budget, args.input, list(args.extra)) for _ in range(args.repeats)]
        median = {key: statistics.median(r[key] for r in runs) for key in ("taken_s", "error_pct", "steps")}
        deadline = sum(r["stopped_at_deadline"] for r in runs)
        dev = [r["dev_loss"] for r in runs if r["dev_loss"] is not None]
        result["budgets"][budget] = {"median": median, "stopped_at_deadline": deadline, "runs": runs}
        print(
            f"{budget:>7} {median['taken_s']:>8.1f} {median['error_pct']:>+8.1f} {median['steps']:>7.0f} "
            f"{deadline:>8} {statistics.median(dev) if dev else float('nan'):>8.4f}",
            flush=True,
        )
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
