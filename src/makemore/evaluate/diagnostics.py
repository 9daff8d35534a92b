"""What a trained run learned, as data for plots: bigram counts, character vectors,
activation statistics and the update ratios recorded while training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from makemore import validation
from makemore.data.datasets import Data
from makemore.errors import MakemoreError
from makemore.plots import collect_activation_stats
from makemore.store.rundir import RunDir
from makemore.store.runs import Run, training_data


def training_windows(run: Run, block_size: int = 1, data: Data | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(X, Y) examples of the run's training split (for plots and diagnostics); ``data``: the
    run's data already read (``training_data``), else it is read again."""
    return (data or training_data(run)).corpus("train").windows(block_size)


def bigram_counts(run: Run, data: Data | None = None) -> torch.Tensor:
    """(V, V) counts of (previous, next) token pairs in the run's training split (``data``: the
    run's data already read, else it is read again)."""
    X, Y = training_windows(run, 1, data)
    return count_pairs(X[:, 0], Y, run.vocab.size)


def count_pairs(previous: torch.Tensor, following: torch.Tensor, V: int) -> torch.Tensor:
    """(V, V) counts of the (previous, following) token pairs of two (N,) tensors."""
    return torch.bincount(previous * V + following, minlength=V * V).view(V, V)


def char_embedding(run: Run) -> torch.Tensor:
    """(V, E) vector the model keeps for each token.

    Raises:
        MakemoreError: the model has none (count models).
    """
    weights = run.model.char_embedding()
    if weights is None:
        raise MakemoreError(f"model {run.config.model!r} has no character embedding to plot")
    return weights


def activation_stats(run: Run, batch_size: int = 512, seed: int = 0) -> dict[str, Any]:
    """Lecture 3's diagnostics of one training batch (``plots.collect_activation_stats``).

    Args:
        run: a model trained by gradient descent.
        batch_size: examples in the batch (at least 2, for BatchNorm's batch variance).
        seed: which batch.
    """
    if batch_size < 2:
        validation.fail(None, "batch_size", f"must be at least 2 (BatchNorm needs a batch variance), got {batch_size}")
    if not run.model.trains_by_gradient:
        raise MakemoreError(
            f"model {run.config.model!r} is fitted by counting; it has no activations or gradients to plot"
        )
    batcher = run.model.batcher(training_data(run).corpus("train"))
    x, y = batcher.sample(batch_size, torch.Generator().manual_seed(seed))
    return collect_activation_stats(run.model, x, y)


def training_curve(run_dir: str | Path) -> list[dict[str, Any]]:
    """The metrics rows a run recorded while training (for the loss plot).

    Raises:
        MakemoreError: no such run directory, or no metrics (count models record none).
    """
    run_dir = RunDir(run_dir)
    if not run_dir.path.is_dir():
        raise MakemoreError(f"{run_dir.path}: no such run directory")
    rows = run_dir.read_metrics()
    if rows is None:
        raise MakemoreError(f"{run_dir.path}: no metrics.jsonl (count models have no training curve)")
    return rows


def update_ratios(run_dir: str | Path) -> tuple[dict[str, list[float]], list[int]]:
    """The log10 update:data ratios the trainer recorded (``track_update_ratio``), per
    parameter, and the steps they were recorded at (both empty when none were)."""
    ratios: dict[str, list[float]] = {}
    steps: list[int] = []
    for row in RunDir(run_dir).read_metrics() or []:
        if "update_ratio" in row:
            steps.append(row["step"])
            for name, value in row["update_ratio"].items():
                ratios.setdefault(name, []).append(value)
    return ratios, steps
