"""Reliability: nothing lost, nothing overwritten.

In a temporary directory, this script

* trains a tiny MLP and a tiny LSTM straight through (40 steps, a checkpoint every 5);
* runs ``--kills`` trials split over the two models, each in its own run directory: a new run
  is SIGKILLed (every second trial of a model inside a file write, the others at a random
  moment), resumed until it finishes and compared bit for bit with the uninterrupted run
  (checkpoints with optimizer and RNG state, metrics.jsonl, run.json);
* loads a checkpoint ``--loads`` times while another process rewrites it in a tight loop,
  counting errors and torn reads (a header of one write with the tensors of another);
* runs the table of bad inputs (``tests/reliability/bad_inputs.py``) when it is there: each
  must exit 2 with one line and leave every file as it was.

Usage:
    python benchmarks/bench_reliability.py [--kills 20] [--loads 1000] [--seed 0]
        [--out benchmarks/results/reliability.json]

Prints a table and writes JSON. The kill timing is random (``--seed``), so "landed" varies.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
import tempfile
import time
from pathlib import Path

from benchlib import run_info, write_json  # benchmarks/benchlib.py

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.reliability import harness  # noqa: E402  (needs the repository root on sys.path)

MODELS = ("mlp", "lstm")
STEPS = 40


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=20, help="kill/resume trials, split over mlp and lstm")
    p.add_argument("--loads", type=int, default=1000, help="checkpoint loads during the torn-read race")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill timing")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/reliability.json"))
    args = p.parse_args(argv)
    if args.kills < 0 or args.loads < 1:
        p.error("--kills must be >= 0 and --loads >= 1")
    return args


def kill_trials(base: Path, kills: int, seed: int) -> list[dict]:
    """``kills`` kill/resume trials, each compared with its model's uninterrupted run.

    Returns:
        one dict per trial: model, kind ("write" or "random"), the ``kill_and_resume`` result,
        ``identical`` and ``why`` (what differs), ``seconds``.
    """
    words = harness.write_corpus(base / "words.txt")
    straight = {
        m: (base / f"straight_{m}", harness.timed_train(base / f"straight_{m}", words, m, STEPS)) for m in MODELS
    }
    rng, trials = random.Random(seed), []
    for i in range(kills):
        model, during_write = MODELS[i % 2], (i // 2) % 2 == 1  # half of each model's trials in a write
        reference, seconds = straight[model]
        started = time.perf_counter()
        run_dir = base / f"trial_{i}_{model}"
        result = harness.kill_and_resume(run_dir, words, model, STEPS, 0.9 * seconds, during_write, rng)
        identical, why = harness.same_run(reference, run_dir)
        trials.append(
            dict(result, model=model, kind="write" if during_write else "random", identical=identical, why=why)
        )
        trials[-1]["seconds"] = time.perf_counter() - started
        print(f"  trial {i + 1}/{kills} {model} {trials[-1]['kind']}: {_trial_line(trials[-1])}", flush=True)
    return trials


def _trial_line(trial: dict) -> str:
    where = "before a checkpoint" if trial["stopped_at_step"] is None else f"at step {trial['stopped_at_step']}"
    landed = ("killed inside a write " if trial["during_write"] else "killed ") + where if trial["killed"] else "missed"
    return f"{landed}; {'bit-identical' if trial['identical'] else 'DIFFERS: ' + trial['why']}"


def bad_inputs(base: Path) -> dict | None:
    """Run the bad-input table of ``tests/reliability/bad_inputs.py`` if that module exists.

    Returns:
        ``tried``, ``clean`` and ``failures`` (name: problem), or None when it is not there.
    """
    if importlib.util.find_spec("tests.reliability.bad_inputs") is None:
        return None
    from tests.reliability import bad_inputs as table

    cases = table.bad_input_cases()
    template = table.make_template(base / "bad_inputs_template")
    failures = {}
    for i, case in enumerate(cases):
        passed, problem = table.run_case(case, template, base / f"bad_input_{i}")
        if not passed:
            failures[case.name] = problem
    return {"tried": len(cases), "clean": len(cases) - len(failures), "failures": failures}


def summary(trials: list[dict]) -> dict:
    """Counts per model and in all: tried, landed, during a write, bit-identical."""
    rows = {}
    for name in (*MODELS, "all"):
        mine = [t for t in trials if name in (t["model"], "all")]
        rows[name] = {
            "tried": len(mine),
            "landed": sum(t["killed"] for t in mine),
            "during_write": sum(t["during_write"] for t in mine),
            "after_a_checkpoint": sum(t["killed"] and t["stopped_at_step"] is not None for t in mine),
            "identical": sum(t["identical"] for t in mine),
        }
    return rows


def print_table(kills: dict, race: dict, bad: dict | None) -> None:
    print(f"\n{'kills':<8}{'tried':>7}{'landed':>8}{'in a write':>12}{'after a ckpt':>14}{'bit-identical':>15}")
    for name, row in kills.items():
        print(
            f"{name:<8}{row['tried']:>7}{row['landed']:>8}{row['during_write']:>12}"
            f"{row['after_a_checkpoint']:>14}{row['identical']:>15}"
        )
    print(f"\n{'loads':>7}{'errors':>8}{'torn':>6}{'writes seen':>13}")
    print(f"{race['loads']:>7}{race['errors']:>8}{race['torn']:>6}{race['distinct_steps']:>13}")
    if race["first_error"]:
        print(f"first error: {race['first_error']}")
    if bad is None:
        print("\nbad inputs: not measured")
    else:
        print(f"\nbad inputs tried {bad['tried']}, clean {bad['clean']}")
        for name, problem in bad["failures"].items():
            print(f"  {name}: {problem}")


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_reliability_") as tmp:
        base = Path(tmp)
        print(f"{args.kills} kill/resume trials ({STEPS}-step runs of {', '.join(MODELS)})", flush=True)
        trials = kill_trials(base, args.kills, args.seed)
        race = harness.torn_read_race(base / "race.safetensors", loads=args.loads, seed=args.seed)
        bad = bad_inputs(base)
    kills = summary(trials)
    print_table(kills, race, bad)
    result = run_info("reliability", args)
    result.update(kills=kills, trials=trials, torn_reads=race, bad_inputs=bad, seconds=time.perf_counter() - started)
    write_json(args.out, result)
    clean = kills["all"]["identical"] == len(trials) and not race["errors"] + race["torn"]
    return 0 if clean and (bad is None or not bad["failures"]) else 1


if __name__ == "__main__":
    sys.exit(main())
