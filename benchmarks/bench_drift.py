"""How far apart do a 1-process run and a 2-process (torchrun, gloo) run drift, step by step?

A 2-process run sums each gradient in two halves and all-reduces them: the same sum as one
process up to float rounding (about 1e-7 relative per step). Training then amplifies such
differences (Adam divides by the root of tiny second moments; a changed sample at a decision
boundary changes the next step), so the distance grows with the steps. To tell rounding from
a bug, the same run is also trained by one process with 2 threads instead of 1: that changes
only the order of the sums inside matrix products, nothing else. If the 2-process drift stays
of the order of the 2-thread drift, it is rounding.

Each variant trains once and is resumed to the next step count (resume is bit-exact), and the
weights of ``last.safetensors`` are compared after each stage: the largest absolute difference
from the 1-thread run over every weight, and the per-step train losses' largest difference.

Usage:
    python benchmarks/bench_drift.py                      # 1,500 items of the built-in corpus
    python benchmarks/bench_drift.py --input ../shared/data/names.txt --stages 25 50 100 200 400 600
    python benchmarks/bench_drift.py --stages 1 100 300 600 \
        --flags "--preset default --dropout 0 --embed-dropout 0 --weight-dropout 0"

Writes a table to stdout and JSON to --out (default benchmarks/results/drift.json).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from safetensors.torch import load_file

from benchlib import run_info, write_json  # benchmarks/benchlib.py

VARIANTS = {"1 thread": (0, 1), "2 threads": (0, 2), "torchrun x2": (2, 1)}  # (processes, threads each)


def command(processes: int, threads: int, args: list[str]) -> tuple[list[str], dict[str, str]]:
    """The command and environment of one variant (torchrun for processes > 0)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "CUDA_VISIBLE_DEVICES": ""}
    if processes == 0:
        return [sys.executable, "-m", "makemore", *args, "--threads", str(threads)], env
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    return [*launcher, "-m", "makemore", *args], env


def weight_gap(a: Path, b: Path) -> float:
    """The largest absolute difference between the model weights of two checkpoints."""
    wa, wb = load_file(a), load_file(b)
    names = [n for n in wa if n.startswith("model.") and wa[n].is_floating_point()]
    return max(float((wa[n] - wb[n]).abs().max()) for n in names)


def loss_gap(a: Path, b: Path) -> float:
    """The largest difference between two runs' logged train losses (same steps)."""

    def losses(run: Path) -> dict[int, float]:
        rows = map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
        return {r["step"]: r["train_loss"] for r in rows if "train_loss" in r}

    la, lb = losses(a), losses(b)
    return max(abs(la[s] - lb[s]) for s in la if s in lb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", default="", help="words file (default: 1,500 items of the built-in corpus)")
    parser.add_argument("--stages", type=int, nargs="+", default=[25, 50, 100, 200, 400, 600])
    parser.add_argument("--flags", default="--model mlp", help="the model's train flags, quoted (no dropout)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "drift.json"))
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        words = opts.input
        if not words:
            from makemore.data.datasets import DEFAULT_DATASET, builtin_path

            lines = builtin_path(DEFAULT_DATASET).read_text(encoding="utf-8").splitlines()[:1500]
            words = str(work / "words.txt")
            Path(words).write_text("".join(w + "\n" for w in lines), encoding="utf-8")
        common = ["--batch-size", "32", "--eval-interval", "25", "--log-interval", "1", "--seed", "3", "-q"]
        rows = []
        for i, steps in enumerate(opts.stages):
            for name, (processes, threads) in VARIANTS.items():
                run = work / name.replace(" ", "-")
                args = ["train", "-o", str(run), "--steps", str(steps)]
                args += ["--resume"] if i else ["-i", words, *common, *shlex.split(opts.flags)]
                cmd, env = command(processes, threads, args)
                result = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True)
                if result.returncode != 0:
                    raise SystemExit(f"{name} at {steps} steps failed:\n{result.stderr[-2000:]}")
            base = work / "1-thread"
            row = {"steps": steps}
            for name in ("2 threads", "torchrun x2"):
                run = work / name.replace(" ", "-")
                row[f"{name} weights"] = weight_gap(base / "last.safetensors", run / "last.safetensors")
                row[f"{name} losses"] = loss_gap(base, run)
            rows.append(row)
            print(
                f"{steps:>6} steps  2 threads: weights {row['2 threads weights']:.2e} losses {row['2 threads losses']:.2e}"
                f"   torchrun x2: weights {row['torchrun x2 weights']:.2e} losses {row['torchrun x2 losses']:.2e}",
                flush=True,
            )
    write_json(opts.out, {**run_info("drift", opts), "rows": rows})


if __name__ == "__main__":
    main()
