"""One process or several: ``makemore train`` alone against ``torchrun --nproc_per_node=K`` (gloo, CPU).

Each configuration trains the same run (the default preset unless ``--extra`` says otherwise,
``--steps`` steps, the same seed and global batch) as its own command, as a user would start it,
taking turns over ``--rounds`` rounds so that a change in the machine's load hits every
configuration alike. Reported per configuration (medians over the rounds): the wall time of the
whole command (start-up, data, training, the final report), the steps/s of the training loop as
rank 0 logs it, and both as ratios to the single process. K processes use one thread each (as
torchrun sets ``OMP_NUM_THREADS=1``); the single process takes ``--threads auto``. The final dev
NLL of every configuration is shown too: the runs are the same run, up to float rounding.

On a 2-core machine two processes are not faster than one with two threads: the point is that
the distributed path works here and what it costs (process start-up, gloo's all-reduce per step).

Usage:
    python benchmarks/bench_processes.py --input ../shared/data/names.txt
    python benchmarks/bench_processes.py --input big.txt --steps 200 --processes 1 2 --rounds 3

Writes a table to stdout and JSON to --out (default benchmarks/results/processes.json).
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


def train_command(processes: int, input_path: str, run_dir: Path, steps: int, extra: list[str]) -> list[str]:
    """The command line of one configuration: plain ``makemore train`` for 0, torchrun for K >= 1."""
    train = ["train", "-i", input_path, "-o", str(run_dir), "--steps", str(steps), "--log-interval", "10", "-q", *extra]
    if processes == 0:
        return [sys.executable, "-m", "makemore", *train]
    launch = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    return [sys.executable, *launch, "-m", "makemore", *train]


def run_once(processes: int, input_path: str, steps: int, extra: list[str]) -> dict:
    """One configuration in fresh processes: wall time, the logged steps/s, the dev NLL reached."""
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        env = {**os.environ, "TMPDIR": tmp}  # torchrun's log directories go with the run
        if processes > 1:
            env["OMP_NUM_THREADS"] = "1"  # what torchrun sets for several processes, without its warning
        started = time.perf_counter()
        proc = subprocess.run(
            train_command(processes, input_path, run_dir, steps, extra), capture_output=True, text=True, env=env
        )
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            sys.exit(f"{processes} processes: makemore train failed:\n{proc.stderr[-2000:]}")
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        meta = json.loads((run_dir / "run.json").read_text())
    rates = [r["steps_per_s"] for r in rows if "steps_per_s" in r][1:] or [float("nan")]  # the first has warm-up
    return {
        "wall_s": wall,
        "steps_per_s": statistics.median(rates),
        "dev_loss": meta["metrics"].get("best_dev_loss"),
        "threads": meta["train"].get("threads"),
        "processes": meta.get("processes", 1),
    }


def process_rows(input_path: str, *, steps: int, processes: list[int], rounds: int, extra: list[str]) -> dict:
    """Every configuration ``rounds`` times, in turns; returns name -> {median, runs}."""
    names = {k: ("makemore train" if k == 0 else f"torchrun x{k}") for k in processes}
    runs: dict[str, list[dict]] = {name: [] for name in names.values()}
    for _ in range(rounds):
        for k, name in names.items():
            runs[name].append(run_once(k, input_path, steps, extra))
    result = {}
    for name, done in runs.items():
        median = {key: statistics.median(r[key] for r in done) for key in ("wall_s", "steps_per_s")}
        result[name] = {"median": median, "runs": done}
    base = result[names[processes[0]]]["median"]
    for entry in result.values():
        entry["median"]["wall_ratio"] = entry["median"]["wall_s"] / base["wall_s"]
        entry["median"]["speed_ratio"] = entry["median"]["steps_per_s"] / base["steps_per_s"]
    return result


def print_table(rows: dict) -> None:
    print(
        f"{'configuration':<16} {'wall s':>8} {'x base':>7} {'steps/s':>8} {'x base':>7} {'threads':>7} {'dev NLL':>8}"
    )
    for name, entry in rows.items():
        m, first = entry["median"], entry["runs"][0]
        print(
            f"{name:<16} {m['wall_s']:>8.1f} {m['wall_ratio']:>7.2f} {m['steps_per_s']:>8.1f} "
            f"{m['speed_ratio']:>7.2f} {first['threads']!s:>7} {first['dev_loss']:>8.4f}"
        )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="words file (e.g. ../shared/data/names.txt)")
    parser.add_argument("--steps", type=int, default=200, help="training steps of every run")
    parser.add_argument(
        "--processes", type=int, nargs="+", default=[0, 1, 2], help="0: makemore train alone; K: torchrun with K"
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs per configuration, in turns (medians shown)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more train options for every run")
    parser.add_argument("--out", default="benchmarks/results/processes.json")
    args = parser.parse_args(argv)
    rows = process_rows(args.input, steps=args.steps, processes=args.processes, rounds=args.rounds, extra=args.extra)
    print_table(rows)
    write_json(args.out, {**run_info("processes", args), "cpus": os.cpu_count(), "rows": rows})
    return rows


if __name__ == "__main__":
    main()
