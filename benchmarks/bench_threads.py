"""Training steps/s with 1 and 2 intra-op threads, alone and beside one busy core, in turns.

For each model configuration, thread count, OpenMP wait policy and neighbour (none, or one
process spinning on a core), a fresh process builds the model on the built-in corpus (or
``--input``), takes ``--warmup`` untimed steps and times ``--steps`` steps. The measurements of a
round take turns, so a slow spell of the shared machine hits all alike; the table shows medians
over rounds and, for each setting, its speed beside a busy core as a share of its speed alone.

Usage:
    python benchmarks/bench_threads.py                       # mlp, default (LSTM), transformer
    python benchmarks/bench_threads.py --configs default --rounds 5 --policies default passive
    python benchmarks/bench_threads.py --configs sample-1000 serve-100 --run runs/default   # calls/s

Writes a table to stdout and JSON to --out (default benchmarks/results/threads.json).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time

from benchlib import run_info, write_json  # benchmarks/benchlib.py

CONFIGS = {  # name -> makemore train options
    "mlp": ["--model", "mlp"],
    "default": ["--preset", "default"],
    "transformer": ["--model", "transformer"],
}
SAMPLING = {  # name -> items per call of api.sample on --run (a `sample -n 1000` and a web request)
    "sample-1000": 1000,
    "serve-100": 100,
}
SPIN = "while True:\n    pass\n"


def sample_worker(items: int, threads: int, warmup: int, calls: int, run_dir: str) -> None:
    """Time ``api.sample`` calls of ``items`` items and print ``{"steps_per_s": calls/s}``."""
    import torch

    from makemore import api
    from makemore.train.threads import choose

    torch.set_num_threads(choose(threads))  # 0: makemore's auto policy
    run = api.load_run(run_dir)
    for i in range(warmup + calls):
        if i == warmup:
            started = time.perf_counter()
        api.sample(run, api.SampleConfig(num=items, seed=i))
    print(json.dumps({"steps_per_s": calls / (time.perf_counter() - started)}))


def worker(options: list[str], threads: int, warmup: int, steps: int, data: str | None) -> None:
    """Time training steps in this process and print ``{"steps_per_s": ...}``."""
    import torch

    from makemore import api
    from makemore.train.threads import choose

    torch.set_num_threads(choose(threads))  # 0: makemore's auto policy, as `makemore train` applies it
    from makemore.cli import build_parser, run_config_from_args
    from makemore.train.execution import forward_backward_for
    from makemore.train.plan import build  # noqa: PLC2701 - what train builds

    argv = ["train", "-o", "unused", *options] + (["-i", data] if data else [])
    config = run_config_from_args(build_parser().parse_args(argv))
    loaded = api.load_data(config.data)
    config, model = build(config, loaded)
    trainer = _trainer(model, loaded, config, forward_backward_for(model, config.train, torch.device("cpu")))
    for _ in range(warmup):
        trainer.step()
    started = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    print(json.dumps({"steps_per_s": steps / (time.perf_counter() - started)}))


def _trainer(model, loaded, config, forward_backward):
    from makemore.train.trainer import Trainer

    model.train()
    return Trainer(model, model.batcher(loaded.corpus("train")), config.train, forward_backward=forward_backward)


def measure(name: str, threads: int, policy: str, busy: bool, args) -> float:
    """Steps/s of one setting, in a fresh process (beside a spinning one when ``busy``)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads or os.cpu_count()))
    env.pop("OMP_WAIT_POLICY", None)
    if policy != "default":
        env["OMP_WAIT_POLICY"] = policy.upper()
    spinner = subprocess.Popen([sys.executable, "-c", SPIN]) if busy else None
    if spinner is not None:
        time.sleep(0.3)  # running before the measured process looks at the CPUs
    try:
        if name in SAMPLING:
            command = [sys.executable, __file__, "--sample-worker", str(SAMPLING[name]), str(threads)]
            command += [str(max(1, args.warmup // 5)), str(max(3, args.steps // 6)), args.run]
        else:
            command = [sys.executable, __file__, "--worker", json.dumps(CONFIGS[name]), str(threads)]
            command += [str(args.warmup), str(args.steps), args.input or ""]
        out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    return json.loads(out.strip().splitlines()[-1])["steps_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=[*CONFIGS, *SAMPLING])
    parser.add_argument("--run", default="runs/default", help="the run that sample-1000 and serve-100 sample from")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="counts; 0 = makemore's auto")
    parser.add_argument("--policies", nargs="+", default=["default"], choices=["default", "passive", "active"])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every setting in turn (medians reported)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--input", default=None, help="words file (default: the built-in names corpus)")
    parser.add_argument("--out", default="benchmarks/results/threads.json")
    args = parser.parse_args()

    settings = list(itertools.product(args.configs, args.threads, args.policies, (False, True)))
    rates: dict[tuple, list[float]] = {s: [] for s in settings}
    for _ in range(args.rounds):
        for setting in settings:
            rates[setting].append(measure(*setting, args))
    rows = []
    print(f"{os.cpu_count()} CPUs, median of {args.rounds} rounds, {args.steps} steps each")
    print(f"{'config':<12} {'threads':>7} {'policy':<8} {'alone':>8} {'busy':>8} {'busy/alone':>10}")
    for name, threads, policy in itertools.product(args.configs, args.threads, args.policies):
        alone = statistics.median(rates[(name, threads, policy, False)])
        busy = statistics.median(rates[(name, threads, policy, True)])
        rows.append(dict(config=name, threads=threads, policy=policy, alone=alone, busy=busy, ratio=busy / alone))
        shown = threads or "auto"
        print(f"{name:<12} {shown:>7} {policy:<8} {alone:>8.1f} {busy:>8.1f} {busy / alone:>10.2f}")
    result = run_info("threads", args)
    result.update(cpus=os.cpu_count(), rows=rows, rounds={" ".join(map(str, k)): v for k, v in rates.items()})
    write_json(args.out, result)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--sample-worker":
        items, threads, warmup, calls, run_dir = sys.argv[2:7]
        sample_worker(int(items), int(threads), int(warmup), int(calls), run_dir)
    elif len(sys.argv) > 1 and sys.argv[1] == "--worker":
        options, threads, warmup, steps, data = sys.argv[2:7]
        worker(json.loads(options), int(threads), int(warmup), int(steps), data or None)
    else:
        main()
