"""Training in a learner's own loop: the model a run would start from, and the trainer whose
``step()`` takes one optimisation step with the library's batches (what ``train`` repeats,
without the run directory, the callbacks or the evaluations).

Example:
    >>> from makemore import api
    >>> data = api.load_data(api.DataConfig())
    >>> config = api.RunConfig(model="mlp", model_config=api.make_config("mlp", {"block_size": 3}))
    >>> model = api.new_model(config, data)
    >>> trainer = api.new_trainer(config, model, data)
    >>> losses = [trainer.step() for _ in range(100)]  # batch, forward, backward, update
    >>> api.split_nll(model, data, "dev")  # doctest: +SKIP
"""

from __future__ import annotations

import torch

from makemore.config import RunConfig
from makemore.data.datasets import Data
from makemore.errors import MakemoreError
from makemore.models import LanguageModel
from makemore.train import execution
from makemore.train.plan import build
from makemore.train.trainer import Trainer


def new_model(config: RunConfig, data: Data) -> LanguageModel:
    """The model ``train(config, ...)`` would start from: the family's config fitted to the data
    (e.g. a sequence model's positions) and initialised from ``config.train.seed``.

    Args:
        config: the run's config (family, model config, training seed).
        data: the corpus the model is for (its vocabulary sizes the model).
    Returns:
        the model on the CPU, in training mode; a count model is fitted too (it learns by
        counting the training split, not by steps).
    """
    _, model = build(config, data)
    if not model.trains_by_gradient:
        model.fit_batcher(model.batcher(data.corpus("train")))
    model.train()
    return model


def new_trainer(config: RunConfig, model: LanguageModel, data: Data) -> Trainer:
    """A trainer of ``model`` on the training split of ``data``, as ``train`` builds it: the
    family's batches, ``config.train``'s optimizer, learning-rate schedule, clipping and
    backward (autograd or the hand-written one). Each ``trainer.step()`` takes one step and
    returns the batch loss; ``trainer.state.step`` counts them.

    Args:
        config: the run's config (``config.train`` says how to train).
        model: the model to train (``new_model``), on the CPU.
        data: the corpus.
    Raises:
        MakemoreError: a count model (it is fitted by counting, in ``new_model``).
    """
    if not model.trains_by_gradient:
        raise MakemoreError(f"model {config.model!r} is fitted by counting; it takes no training steps")
    device = torch.device("cpu")
    batcher = model.batcher(data.corpus("train"), device, config.train.batching)
    step = execution.forward_backward_for(model, config.train, device)
    return Trainer(model, batcher, config.train, forward_backward=step)
