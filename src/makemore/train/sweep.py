"""The learning-rate sweep (``makemore lr-find``): one training step per learning rate, with the
training step ``train`` uses."""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from makemore import validation
from makemore.config import RunConfig
from makemore.data.datasets import load_data
from makemore.errors import MakemoreError
from makemore.train import execution
from makemore.train.plan import build
from makemore.train.trainer import Trainer


def lr_find(
    config: RunConfig, *, start: float = 1e-3, end: float = 1.0, steps: int = 1000, progress: bool = True
) -> tuple[list[float], list[float]]:
    """Sweep the learning rate exponentially from ``start`` to ``end``, one training step each.

    Returns:
        (lrs, losses), stopped early once the loss diverges (4x its minimum, or not finite).
    """
    validation.number(None, "start", above=0, value=start)
    if not (isinstance(end, (int, float)) and math.isfinite(end) and end > start):
        validation.fail(None, "end", f"must be a finite number above start ({start:g}), got {end!r}", ("start",))
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 5:
        validation.fail(None, "steps", f"need at least 5 steps, got {steps!r}")
    data = load_data(config.data)
    config, model = build(config, data)
    if not model.trains_by_gradient:
        raise MakemoreError(f"lr-find: model {config.model!r} is fitted by counting, it has no learning rate")

    def sweep(i: int) -> float:
        return start * (end / start) ** (i / (steps - 1))

    trainer = Trainer(
        model,
        # random batches: the sweep compares consecutive losses, and batches grouped by length
        # differ in loss by their lengths
        model.batcher(data.corpus("train"), batching="random"),
        config.train,
        lr_schedule=sweep,
        forward_backward=execution.forward_backward_for(model, config.train, torch.device("cpu")),
    )
    model.train()
    lrs, losses = [], []
    for i in tqdm(range(steps), disable=not progress, unit="step"):
        loss = trainer.step()
        lrs.append(sweep(i))
        losses.append(loss)
        if not math.isfinite(loss) or loss > 4 * min(losses):
            break
    return lrs, losses
