"""Training and sampling speed of two source trees of makemore, taking turns: did a change slow
them, or change what they compute?

Each configuration is trained with ``python -m makemore.cli train`` under each tree in turn
(``PYTHONPATH=<tree>/src``), ``--rounds`` times, in the order old-new then new-old, so that a
busy spell or a slow drift of a shared machine hits both alike; each run then samples
``--sample`` items (``sample -n N --seed 1``, timed inside the process by its own clock on the
items' stream, start-up excluded). Reports, per configuration and tree, the median wall time,
the median steps/s the trainer logged, the median items/s sampled, the new/old ratios, and
whether the final dev NLL and the sampled items agree.

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


def train_once(tree: Path, data: str, options: list[str], samples: int = 0) -> dict:
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
        sampled = sample_once(env, f"{tmp}/run", samples) if samples else {}
    rates = [r["steps_per_s"] for r in rows if "steps_per_s" in r]
    dev = float(re.search(r"dev NLL (\d+\.\d+)", proc.stdout).group(1))
    return {"wall_s": wall, "steps_per_s": statistics.median(rates), "dev_nll": dev, **sampled}


SAMPLE_TIMER = """
import sys, time
from makemore import api
run = api.load_run(sys.argv[1])
config = api.SampleConfig(num=int(sys.argv[2]), seed=1)
api.sample(run, api.SampleConfig(num=100, seed=2))  # warm: the first batch pays one-off costs
started = time.perf_counter()
items = api.sample(run, config)
seconds = time.perf_counter() - started
print(seconds); print("\\n".join(items))
"""


def sample_once(env: dict, run: str, n: int) -> dict:
    """Sample ``n`` items from ``run`` with the API of the tree on ``env``'s PYTHONPATH."""
    proc = subprocess.run([sys.executable, "-c", SAMPLE_TIMER, run, str(n)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"sampling {run} failed:\n{proc.stderr[-2000:]}")
    seconds, *items = proc.stdout.splitlines()
    return {"items_per_s": n / float(seconds), "items_digest": hash_items(items)}


def hash_items(items: list[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(items).encode()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="words file, e.g. ../shared/data/names.txt")
    parser.add_argument("--old", type=Path, required=True, help="the source tree to compare against")
    parser.add_argument("--new", type=Path, default=Path("."), help="the source tree under test (default: here)")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sample", type=int, default=5000, help="items each run samples (0: none)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more train options for every config")
    parser.add_argument("--out", default="benchmarks/results/compare.json")
    args = parser.parse_args()

    trees = {"old": args.old, "new": args.new}
    results = {}
    print(
        f"{'config':<12} {'old s':>7} {'new s':>7} {'old st/s':>9} {'new st/s':>9} {'new/old':>8} "
        f"{'old it/s':>9} {'new it/s':>9} {'new/old':>8}  dev NLL old/new  same items"
    )
    for name in args.configs:
        runs: dict[str, list[dict]] = {"old": [], "new": []}
        for round_ in range(args.rounds):  # old, new, then new, old: neither always goes first
            for label in ("old", "new") if round_ % 2 == 0 else ("new", "old"):
                runs[label].append(train_once(trees[label], args.data, CONFIGS[name] + args.extra, args.sample))
        numbers = [k for k in runs["old"][0] if k != "items_digest"]
        med = {label: {k: statistics.median(r[k] for r in rs) for k in numbers} for label, rs in runs.items()}
        ratio = med["new"]["steps_per_s"] / med["old"]["steps_per_s"]
        digests = {r.get("items_digest") for rs in runs.values() for r in rs}
        sample_ratio = med["new"]["items_per_s"] / med["old"]["items_per_s"] if args.sample else float("nan")
        results[name] = {
            "options": CONFIGS[name] + args.extra,
            "median": med,
            "runs": runs,
            "steps_per_s_ratio": ratio,
            "items_per_s_ratio": sample_ratio,
            "same_items": len(digests) == 1,
        }
        its = {label: med[label].get("items_per_s", float("nan")) for label in med}
        print(
            f"{name:<12} {med['old']['wall_s']:>7.1f} {med['new']['wall_s']:>7.1f} {med['old']['steps_per_s']:>9.0f} "
            f"{med['new']['steps_per_s']:>9.0f} {ratio:>8.3f} {its['old']:>9.0f} {its['new']:>9.0f} "
            f"{sample_ratio:>8.3f}  {med['old']['dev_nll']:.4f}/{med['new']['dev_nll']:.4f}  {len(digests) == 1}",
            flush=True,
        )
    write_json(
        args.out,
        {"old": str(args.old), "new": str(args.new), "rounds": args.rounds, "sample": args.sample, "configs": results},
    )


if __name__ == "__main__":
    main()
