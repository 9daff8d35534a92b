"""Start-up: how long ``makemore --help``, a subcommand's help and a usage error take, whole process.

Each command runs as a user starts it (the ``makemore`` console script next to this Python,
else ``python -m makemore``), in turns with ``python -c pass`` (the interpreter alone) and
``python -c 'import torch'`` (what every command paid before the arguments were parsed without
torch), so that a busy spell of the machine hits all alike. Reported per command: the median
and best wall time over ``--runs`` rounds, and the median minus the bare interpreter's. The
target is a median of at most 0.3 s for help, version and usage errors on a 2-core machine.

``--before SRC`` adds the same help and usage-error rows for another source tree (its ``src``
directory first on ``PYTHONPATH``, run as ``python -m makemore``), timed in the same turns: e.g.
the tree before this change, from ``git archive HEAD src | tar -x -C /tmp/before``.

Usage:
    python benchmarks/bench_startup.py
    python benchmarks/bench_startup.py --runs 21 --before /tmp/before/src

Writes a table to stdout and JSON to --out (default benchmarks/results/startup.json).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import run_info, write_json  # benchmarks/benchlib.py

TARGET_S = 0.3


def makemore_command() -> list[str]:
    script = Path(sys.executable).with_name("makemore")
    return [str(script)] if script.exists() else [sys.executable, "-m", "makemore"]


ROWS = ("makemore --help", "makemore sample --help", "usage error (train --learning-rate)")


def commands() -> dict[str, tuple[list[str], int]]:
    """name -> (argv, expected exit code)."""
    mm = makemore_command()
    return {
        "python -c pass": ([sys.executable, "-c", "pass"], 0),
        "makemore --help": ([*mm, "--help"], 0),
        "makemore --version": ([*mm, "--version"], 0),
        "makemore sample --help": ([*mm, "sample", "--help"], 0),
        "makemore train --help": ([*mm, "train", "--help"], 0),
        "usage error (train --learning-rate)": ([*mm, "train", "-o", "x", "--learning-rate", "0.01"], 2),
        "usage error (sample --top_k)": ([*mm, "sample", "RUN", "--top_k", "5"], 2),
        "python -c 'import torch'": ([sys.executable, "-c", "import torch"], 0),
    }


def before_commands(src: str) -> dict[str, tuple[list[str], int, str]]:
    """The ``ROWS`` commands run from another source tree: name -> (argv, expected exit code, PYTHONPATH)."""
    out = {}
    for name in ROWS:
        argv, expected = commands()[name]
        rest = argv[len(makemore_command()) :]
        out[f"before: {name}"] = ([sys.executable, "-m", "makemore", *rest], expected, src)
    return out


def run_once(argv: list[str], expected: int, cwd: str, pythonpath: str = "") -> float:
    env = {**os.environ, "COLUMNS": "80"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, cwd=cwd, env=env)
    took = time.perf_counter() - started
    if proc.returncode != expected:
        sys.exit(f"{' '.join(argv)}: exit code {proc.returncode}, expected {expected}:\n{proc.stderr.decode()[-2000:]}")
    return took


def time_commands(names: list[str], runs: int, warmup: int, cwd: str, before: str = "") -> dict:
    """Every command ``runs`` times, in turns, after ``warmup`` untimed rounds."""
    table = commands()
    chosen = {name: (*table[name], "") for name in names}
    chosen.update(before_commands(before) if before else {})
    seconds: dict[str, list[float]] = {name: [] for name in chosen}
    for round_ in range(warmup + runs):
        for name, (argv, expected, pythonpath) in chosen.items():
            took = run_once(argv, expected, cwd, pythonpath)
            if round_ >= warmup:
                seconds[name].append(took)
    base = statistics.median(seconds["python -c pass"]) if "python -c pass" in seconds else 0.0
    return {
        name: {
            "median_s": statistics.median(s),
            "best_s": min(s),
            "over_python_s": statistics.median(s) - base,
            "runs_s": s,
            "argv": chosen[name][0],
        }
        for name, s in seconds.items()
    }


def print_table(rows: dict) -> None:
    print(f"{'command':<44} {'median s':>9} {'best s':>8} {'- python':>9}  target")
    for name, r in rows.items():
        target = "" if not name.startswith(("makemore", "usage")) else ("ok" if r["median_s"] <= TARGET_S else "SLOW")
        print(f"{name:<44} {r['median_s']:>9.3f} {r['best_s']:>8.3f} {r['over_python_s']:>9.3f}  {target}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=11, help="timed rounds (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (file caches)")
    parser.add_argument(
        "--commands", nargs="+", default=list(commands()), choices=list(commands()), help="which rows (default all)"
    )
    parser.add_argument("--before", default="", metavar="SRC", help="another tree's src directory: its rows too")
    parser.add_argument("--out", default="benchmarks/results/startup.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as cwd:  # nothing a command might write lands here
        rows = time_commands(
            args.commands, args.runs, args.warmup, cwd, str(Path(args.before).resolve()) if args.before else ""
        )
    print_table(rows)
    write_json(args.out, {**run_info("startup", args), "cpus": os.cpu_count(), "target_s": TARGET_S, "rows": rows})
    return rows


if __name__ == "__main__":
    main()
