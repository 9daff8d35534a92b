"""Training speed of two source trees of makemore, taking turns: did a change slow training?

Each configuration is trained with ``python -m makemore.cli train`` under each tree in turn
(``PYTHONPATH=<tree>/src``), ``--rounds`` times, in the order old-new then new-old, so that a
busy spell or a slow drift of a shared machine hits both alike. Reports, per configuration and
tree, the median wall time and the median steps/s the trainer logged, the new/old ratio, and
whether the final dev NLL agrees.

Usage (the previous commit in a temporary directory against this checkout):
    git worktree add /tmp/old HEAD~1
    python benchmarks/bench_compare.py ../shared/data/names.txt --old /tmp/old --new .

Writes a table to stdout and JSON to --out (default benchmarks/results/compare.json).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import write_json  # benchmarks/benchlib.py

CONFIGS = {  # name -> train options (spelled as both old and new CLIs accept them)
    "mlp": ["--model", "mlp"],
    "default": ["--preset", "default", "--steps", "1500"],
    "transformer": ["--model", "transformer", "--steps", "1500"],
}


def train_once(tree: Path, data: str, options: list[str]) -> dict:
    """One training run under ``tree``: wall seconds, median logged steps/s, dev NLL."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYTHONPATH=str(tree.resolve() / "src"))
        cmd = [sys.executable, "-m", "makemore.cli", "train", "-i", data, "-o", f"{tmp}/run", "-q", *options]
        started = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            sys.exit(f"{tree}: {' '.join(options)} failed:\n{proc.stderr[-2000:]}")
        rows = [json.loads(line) for line in Path(tmp, "run", "metrics.jsonl").read_text().splitlines()]
    rates = [r["steps_per_s"] for r in rows if "steps_per_s" in r]
    dev = float(re.search(r"dev NLL (\d+\.\d+)", proc.stdout).group(1))
    return {"wall_s": wall, "steps_per_s": statistics.median(rates), "dev_nll": dev}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="words file, e.g. ../shared/data/names.txt")
    parser.add_argument("--old", type=Path, required=True, help="the source tree to compare against")
    parser.add_argument("--new", type=Path, default=Path("."), help="the source tree under test (default: here)")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more train options for every config")
    parser.add_argument("--out", default="benchmarks/results/compare.json")
    args = parser.parse_args()

    trees = {"old": args.old, "new": args.new}
    results = {}
    print(f"{'config':<12} {'old s':>7} {'new s':>7} {'old st/s':>9} {'new st/s':>9} {'new/old':>8}  dev NLL old/new")
    for name in args.configs:
        runs: dict[str, list[dict]] = {"old": [], "new": []}
        for round_ in range(args.rounds):  # old, new, then new, old: neither always goes first
            for label in ("old", "new") if round_ % 2 == 0 else ("new", "old"):
                runs[label].append(train_once(trees[label], args.data, CONFIGS[name] + args.extra))
        med = {label: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for label, rs in runs.items()}
        ratio = med["new"]["steps_per_s"] / med["old"]["steps_per_s"]
        results[name] = {"options": CONFIGS[name], "median": med, "runs": runs, "steps_per_s_ratio": ratio}
        print(
            f"{name:<12} {med['old']['wall_s']:>7.1f} {med['new']['wall_s']:>7.1f} {med['old']['steps_per_s']:>9.0f} "
            f"{med['new']['steps_per_s']:>9.0f} {ratio:>8.3f}  {med['old']['dev_nll']:.4f}/{med['new']['dev_nll']:.4f}",
            flush=True,
        )
    write_json(args.out, {"old": str(args.old), "new": str(args.new), "rounds": args.rounds, "configs": results})


if __name__ == "__main__":
    main()
