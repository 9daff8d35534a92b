"""Train named configurations on a words file (the lectures' names.txt) and report dev NLL,
wall time, steps/s and peak memory: medians over repeated runs, each in its own process.

Usage:
    python benchmarks/bench_train.py ../shared/data/names.txt --configs mlp bn-mlp --repeats 3
    python benchmarks/bench_train.py ../shared/data/names.txt --configs lecture2 lecture3 lecture3-manual lecture5
    python benchmarks/bench_train.py ../shared/data/names.txt --configs best --repeats 3

The split is the lectures' (random.seed(42) shuffle, 80/10/10). Writes a table to stdout and
JSON to --out (default benchmarks/results/train.json).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import write_json  # benchmarks/benchlib.py

# name -> makemore train options
CONFIGS: dict[str, list[str]] = {
    "default": ["--preset", "default"],
    "best": ["--preset", "best"],
    "bigram": ["--model", "bigram"],
    "lecture2": ["--preset", "lecture2"],
    "lecture3": ["--preset", "lecture3"],
    "lecture3-manual": ["--preset", "lecture3", "--backward", "manual"],
    "lecture5": ["--preset", "lecture5"],
    "mlp": ["--model", "mlp"],
    "bn-mlp": ["--model", "bn-mlp"],
    "wavenet": ["--model", "wavenet"],
    "rnn": ["--model", "rnn"],
    "gru": ["--model", "gru"],
    "lstm": ["--model", "lstm"],
    "transformer": ["--model", "transformer"],
}


def run_once(data: str, options: list[str], seed: int) -> dict:
    """Train in this process; returns metrics and this process's peak RSS."""
    from makemore import api
    from makemore.cli import build_parser, run_config_from_args

    with tempfile.TemporaryDirectory() as tmp:
        args = build_parser().parse_args(["train", "-i", data, "-o", tmp + "/run", "-q", "--seed", str(seed), *options])
        config = run_config_from_args(args)
        started = time.perf_counter()
        metrics = api.train(config, tmp + "/run", progress=False)
        wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "dev_loss": metrics["dev_loss"],
        "train_loss": metrics["train_loss"],
        "steps": metrics.get("steps", 0),
        "wall_s": wall,
        "steps_per_s": metrics.get("steps", 0) / wall if wall else 0.0,
        "peak_rss_mb": peak_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="words file, e.g. ../shared/data/names.txt")
    parser.add_argument("--configs", nargs="+", default=["mlp", "bn-mlp"], help=f"from: {', '.join(CONFIGS)}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more train options for every config")
    parser.add_argument("--out", default="benchmarks/results/train.json")
    parser.add_argument("--single", help=argparse.SUPPRESS)  # internal: one run, JSON on stdout
    parser.add_argument("--seed", type=int, default=1337, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.single:
        print(json.dumps(run_once(args.data, json.loads(args.single), args.seed)))
        return

    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown config(s): {', '.join(unknown)}")
    results = {}
    print(
        f"{'config':<16} {'dev NLL':>8} {'train NLL':>9} {'wall s':>7} {'steps/s':>8} {'peak MB':>8}  (median of {args.repeats})"
    )
    for name in args.configs:
        runs = []
        for repeat in range(args.repeats):
            options = CONFIGS[name] + list(args.extra)
            proc = subprocess.run(
                [sys.executable, __file__, args.data, "--single", json.dumps(options), "--seed", str(1337 + repeat)],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                sys.exit(f"{name}: run failed:\n{proc.stderr[-2000:]}")
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        results[name] = {"options": CONFIGS[name] + list(args.extra), "median": med, "runs": runs}
        print(
            f"{name:<16} {med['dev_loss']:>8.4f} {med['train_loss']:>9.4f} {med['wall_s']:>7.1f} "
            f"{med['steps_per_s']:>8.0f} {med['peak_rss_mb']:>8.0f}",
            flush=True,
        )

    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.exists() else {}
    previous.update(results)
    previous["_machine"] = {"cpus": os.cpu_count(), "torch_threads": __import__("torch").get_num_threads()}
    write_json(out, previous)


if __name__ == "__main__":
    main()
