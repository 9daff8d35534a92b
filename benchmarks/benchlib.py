"""Helpers shared by the benchmark scripts: timing in turns on a noisy machine, JSON output."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path


def time_in_turns(fns: dict[str, Callable[[], object]], *, rounds: int, calls: int, warmup: int) -> dict:
    """Milliseconds per call of each function, timed in turns so a busy spell hits all alike.

    Every round times ``calls`` calls of each function in turn, after ``warmup`` untimed calls
    of each.

    Returns:
        name -> ``ms_per_step`` (median over rounds), ``best_ms``, ``steps_per_s`` (from the
        median) and ``rounds_ms`` (every round).
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    per_round: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            started = time.perf_counter()
            for _ in range(calls):
                fn()
            per_round[name].append((time.perf_counter() - started) / calls * 1000)
    return {
        name: {
            "ms_per_step": statistics.median(ms),
            "best_ms": min(ms),
            "steps_per_s": 1000 / statistics.median(ms),
            "rounds_ms": ms,
        }
        for name, ms in per_round.items()
    }


def run_info(benchmark: str, args) -> dict:
    """What every result file records first: the benchmark, the software and its options."""
    import platform

    import torch

    return {
        "benchmark": benchmark,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "args": {k: str(v) for k, v in vars(args).items()},
    }


def write_json(path: str | Path, result: dict) -> None:
    """Write ``result`` to ``path`` atomically (``makemore.files``); say where."""
    from makemore import files

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    files.atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


def step_timing_parser(doc: str, configs: list[str], out: str) -> argparse.ArgumentParser:
    """The options every training-step timing script takes: the words file, which
    configurations, steps per round, rounds, warm-up steps and the JSON output path."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="words file, e.g. ../shared/data/names.txt")
    p.add_argument("--configs", nargs="+", default=list(configs), choices=list(configs))
    p.add_argument("--steps", type=int, default=20, help="training steps per timed round")
    p.add_argument("--rounds", type=int, default=7, help="timed rounds (the median is reported)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path(out))
    return p


def training_step(model, config, data) -> Callable[[], float]:
    """One makemore training step (``Trainer.step``: batch, forward, backward, optimizer) of
    ``model`` per call, with ``config.train``'s settings and no callbacks."""
    from makemore.train.trainer import Trainer

    return Trainer(model, model.batcher(data.corpus("train")), config.train).step
