"""Random vs length-aware batches for sequence models: padding, training speed, dev NLL.

For each words file, the default preset's LSTM is timed with random batches and with
length-aware ones (``TrainConfig.batching``), over the whole padded batch (oneDNN's LSTM kernel,
what the model runs on CPU) and over a packed sequence (only the real positions), taking turns
in every round; the padding fraction is measured over 500 batches. With ``--train``, the
default preset is trained to the end with both batchings (one process per run, seeds 1337...)
and the dev NLL and wall time recorded.

Usage:
    python benchmarks/bench_batching.py ../shared/data/names.txt /usr/share/dict/words pkgs.txt big.txt
    python benchmarks/bench_batching.py ../shared/data/names.txt --train --seeds 3

Make the long-tailed and the big lists with scripts/make_synthetic_corpus.py. Prints a table
and writes JSON (default benchmarks/results/batching.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import torch

from benchlib import run_info, time_in_turns, write_json  # benchmarks/benchlib.py
from makemore import api
from makemore.models import build_model
from makemore.train.trainer import Trainer

BATCHINGS = ("random", "length")
PATHS = ("padded", "packed")


def padding_fraction(data, batching: str, batch_size: int, batches: int = 500) -> float:
    """The share of padded positions over ``batches`` training batches."""
    model = build_model("lstm", api.preset_config("default").model_config, data.vocab.size)
    batcher = model.batcher(data.corpus("train"), batching=batching)
    g = torch.Generator().manual_seed(0)
    pads = [float((y == -1).float().mean()) for _, y in (batcher.sample(batch_size, g) for _ in range(batches))]
    return statistics.mean(pads)


def step_functions(data) -> dict:
    """One training-step function per (batching, recurrence path), each with its own model."""
    config = api.preset_config("default")  # an LSTM: any length, no block size to fit
    fns = {}
    for batching in BATCHINGS:
        for path in PATHS:
            torch.manual_seed(0)
            model = build_model(config.model, config.model_config, data.vocab.size)
            model.runs_padded = lambda x, needed=None, padded=(path == "padded"): padded
            model.train()
            batcher = model.batcher(data.corpus("train"), batching=batching)
            fns[f"{batching}/{path}"] = Trainer(model, batcher, config.train).step
    return fns


def train_runs(path: str, batching: str, seeds: int, steps: int | None = None) -> list[dict]:
    """Default-preset runs in their own processes (bench_train.py's single-run mode)."""
    bench_train = Path(__file__).with_name("bench_train.py")
    runs = []
    for seed in range(1337, 1337 + seeds):
        options = ["--preset", "default", "--batching", batching, *(["--steps", str(steps)] if steps else [])]
        proc = subprocess.run(
            [sys.executable, bench_train, path, "--single", json.dumps(options), "--seed", str(seed)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            sys.exit(f"{path} {batching}: run failed:\n{proc.stderr[-2000:]}")
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return runs


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="+", help="words files")
    p.add_argument("--steps", type=int, default=30, help="training steps per timed round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--train", action="store_true", help="also train the default preset to the end, both ways")
    p.add_argument("--seeds", type=int, default=1, help="with --train: runs per batching (seeds 1337...)")
    p.add_argument("--train-steps", type=int, default=None, help="with --train: steps (default: the preset's)")
    p.add_argument("--no-timing", action="store_true", help="with --train: skip the step timing")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/batching.json"))
    args = p.parse_args(argv)

    result = {"info": run_info("bench_batching", args), "corpora": {}}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; default preset (LSTM 2x256), batch 64")
    print(f"{'corpus':<24} {'batching/path':<15} {'padding':>8} {'steps/s':>8} {'vs random/padded':>17}")
    for path in args.data:
        data = api.load_data(api.DataConfig(input=path))
        lengths = torch.tensor([len(w) for w in data.split.train], dtype=torch.float64)
        entry = {
            "items": len(data.words),
            "mean_length": float(lengths.mean()),
            "longest": int(lengths.max()),
            "padding": {b: padding_fraction(data, b, 64) for b in BATCHINGS},
        }
        name = Path(path).name
        timing = {}
        if not args.no_timing:
            timing = time_in_turns(step_functions(data), rounds=args.rounds, calls=args.steps, warmup=args.warmup)
            entry["timing"] = timing
        for key, t in timing.items():
            base = timing["random/padded"]["steps_per_s"]
            batching = key.split("/")[0]
            print(
                f"{name:<24} {key:<15} {entry['padding'][batching]:>8.1%} {t['steps_per_s']:>8.1f} "
                f"{t['steps_per_s'] / base:>16.2f}x",
                flush=True,
            )
        if args.train:
            entry["train"] = {}
            for batching in BATCHINGS:
                runs = train_runs(path, batching, args.seeds, args.train_steps)
                med = {k: statistics.median(r[k] for r in runs) for k in ("dev_loss", "wall_s", "steps_per_s")}
                entry["train"][batching] = {"median": med, "runs": runs}
                each = ", ".join(f"{r['dev_loss']:.4f}" for r in runs)
                print(
                    f"{name:<24} train {batching:<9} dev {med['dev_loss']:.4f} (runs {each}) wall {med['wall_s']:.0f} s",
                    flush=True,
                )
        result["corpora"][name] = entry
    write_json(args.out, result)


if __name__ == "__main__":
    main()
