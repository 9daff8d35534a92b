"""Constrained sampling throughput: accepted items per second and acceptance rate.

For each constraint (none, ``--suffix a``, ``--contains ar``, ``--exclude-chars aeiou``,
``--regex '^[^aeiou]+$'``) the run's model is asked for ``--num`` items; the rounds take
turns over the constraints so that a busy spell of a shared machine hits all alike, with
a different seed each round. Reported: the median over rounds of accepted items per second,
rows drawn per second and the acceptance rate (accepted / drawn). Excluded characters are
masked, so their acceptance is 1; the others are met by rejection.

Usage:
    python benchmarks/bench_sampling.py --run runs/default [--num 1000] [--rounds 5]
    python benchmarks/bench_sampling.py --data ../shared/data/names.txt --train-steps 3000

Without ``--run``, the default preset is trained for ``--train-steps`` steps on ``--data``
(default: the built-in names corpus) into a temporary directory first; a fully trained
default model (``makemore train -o runs/default``) gives the numbers worth quoting.
Prints a table and writes JSON (default benchmarks/results/sampling.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from benchlib import run_info, write_json  # benchmarks/benchlib.py
from makemore import api

CONSTRAINTS = {
    "none": {},
    "--suffix a": {"suffix": "a"},
    "--contains ar": {"contains": ("ar",)},
    "--exclude-chars aeiou": {"exclude_chars": "aeiou"},
    "--regex '^[^aeiou]+$'": {"regex": "^[^aeiou]+$"},
}


def measure(run: api.Run, config: api.SampleConfig) -> dict:
    """One request: items accepted, rows drawn, seconds, and whether the budget ran out."""
    stats = api.SampleStats()
    started = time.perf_counter()
    try:
        api.sample(run, config, stats)
    except api.BudgetExhausted:
        pass  # what was found counts
    seconds = time.perf_counter() - started
    return {
        "found": stats.found,
        "tried": stats.tried,
        "seconds": seconds,
        "items_per_s": stats.found / seconds,
        "rows_per_s": stats.tried / seconds,
        "acceptance": stats.acceptance,
        "stopped": stats.stopped,
    }


def default_run(args, workdir: Path) -> api.Run:
    """``--run``, or the default preset trained briefly on ``--data``."""
    if args.run:
        return api.load_run(args.run)
    config = api.preset_config(api.DEFAULT_PRESET)
    config.train = dataclasses.replace(
        config.train,
        steps=args.train_steps,
        eval_interval=args.train_steps,
        log_interval=max(1, args.train_steps // 10),
    )
    if args.data:
        config.data = dataclasses.replace(config.data, input=args.data)
    print(f"training the default preset ({config.model}) for {args.train_steps} steps ...")
    api.train(config, workdir / "run", progress=False)
    return api.load_run(workdir / "run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a trained run directory (default: train the default preset briefly)")
    parser.add_argument("--data", help="words file to train on without --run (default: the built-in names)")
    parser.add_argument("--train-steps", type=int, default=2000)
    parser.add_argument("--num", type=int, default=1000, help="items asked for in each request")
    parser.add_argument("--rounds", type=int, default=5, help="rounds over all constraints (the median is reported)")
    parser.add_argument("--time-limit", type=float, default=60.0, help="time limit of each request, seconds")
    parser.add_argument("--constraints", nargs="+", default=list(CONSTRAINTS), choices=list(CONSTRAINTS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/sampling.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        run = default_run(args, Path(workdir))
        result = {**run_info("sampling", args), "model": run.config.model, "rows": {}}
        per_round: dict[str, list[dict]] = {name: [] for name in args.constraints}
        for round_ in range(args.rounds):
            for name in list(per_round):
                config = api.SampleConfig(num=args.num, seed=round_, time_limit=args.time_limit, **CONSTRAINTS[name])
                try:
                    per_round[name].append(measure(run, config))
                except api.ConfigError as exc:  # e.g. a character this corpus does not have
                    print(f"{name}: not possible with this model ({exc}); skipped")
                    del per_round[name]
    print(f"\n{run.config.model}, {args.num} items per request, median of {args.rounds} rounds")
    print(f"{'constraint':<24} {'items/s':>9} {'rows/s':>9} {'acceptance':>11} {'found':>7}")
    for name, rounds in per_round.items():
        row = {
            key: statistics.median(r[key] for r in rounds)
            for key in ("items_per_s", "rows_per_s", "acceptance", "found", "seconds")
        }
        row["stopped"] = [r["stopped"] for r in rounds]
        row["rounds"] = rounds
        result["rows"][name] = row
        print(
            f"{name:<24} {row['items_per_s']:>9.0f} {row['rows_per_s']:>9.0f} {100 * row['acceptance']:>10.2f}% "
            f"{row['found']:>7.0f}" + ("  (budget ran out)" if any(row["stopped"]) else "")
        )
    write_json(args.out, result)


if __name__ == "__main__":
    main()
