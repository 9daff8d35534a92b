"""``train --epochs N``: the steps of N passes over the training split, known once the data is read.

One epoch is as many examples as the training split holds, in the unit ``--batch-size``
counts: its items for a model that reads whole items, its targets (characters and item ends)
for a window model. The model is asked through the batcher it trains with, so no family is
named here. The words file is read here once more (``training.train`` reads it again): a
second pass over the file, the price of knowing the steps before training starts.
"""

from __future__ import annotations

import math

from makemore.config import RunConfig
from makemore.errors import MakemoreError


def check_epochs(epochs: float) -> None:
    """Raises MakemoreError unless ``epochs`` is a finite number above 0."""
    if not (isinstance(epochs, (int, float)) and math.isfinite(epochs) and epochs > 0):
        raise MakemoreError(f"--epochs: must be a finite number above 0, got {epochs:g}")


def steps_for_epochs(config: RunConfig, epochs: float) -> int:
    """``ceil(epochs x examples / batch_size)`` (at least 1; ``ceil(epochs)`` for a full batch).

    Raises:
        MakemoreError: ``epochs`` is not a finite number above 0, or the data is bad.
    """
    check_epochs(epochs)
    from makemore import api  # torch: only when --epochs is given

    batch_size = config.train.batch_size
    if batch_size == 0:  # every example in each step
        return max(1, math.ceil(epochs))
    return max(1, math.ceil(epochs * api.examples_per_epoch(config) / batch_size))
