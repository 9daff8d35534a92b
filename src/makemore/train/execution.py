"""Where and how a run's training steps execute: the device, several processes (DDP),
``torch.compile`` and bfloat16 autocast.

``training`` asks this module for the trainer's ``forward_backward`` and for the dev
evaluation; the trainer itself stays the same for one process or many.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch.nn.parallel import DistributedDataParallel

from makemore import validation
from makemore.config import TrainConfig
from makemore.data.batching import Batcher
from makemore.data.corpus import EncodedCorpus
from makemore.evaluate.scoring import evaluate_nll, nll_sum_count
from makemore.models import LanguageModel
from makemore.train import distributed
from makemore.train.trainer import ForwardBackward


def resolve_device(name: str, world: distributed.World | None = None) -> torch.device:
    """The torch device of ``TrainConfig.device`` ("auto": CUDA when there is one); a rank of
    a distributed CUDA run takes its ``LOCAL_RANK`` GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        validation.fail(None, "device", f"{name}: no CUDA device is available")
    return distributed.device_for(torch.device(name), world)


def check_options(train: TrainConfig, model: LanguageModel, device: torch.device) -> None:
    """Refuse ``compile``/``dtype``/``backward`` settings this model or device cannot run.

    Raises:
        ConfigError: naming the field.
    """
    if train.backward == "manual":
        problem = model.manual_backward_error()
        if problem:
            validation.fail(None, "backward", f"{train.backward!r} is not possible: {problem}")
        if train.dtype != "float32" or train.compile:
            field = "dtype" if train.dtype != "float32" else "compile"
            validation.fail(None, field, "the hand-written backward pass runs in float32, without torch.compile")
    distributed.backend_for(train.backend, device)  # nccl needs CUDA, also for one process
    if train.compile and device.type != "cuda":
        validation.fail(
            None, "compile", "torch.compile is for CUDA runs (on CPU it needs a C++ toolchain and rarely pays)"
        )


def _autocast(train: TrainConfig, device: torch.device):
    if train.dtype == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def forward_backward_for(
    model: LanguageModel, train: TrainConfig, device: torch.device, world: distributed.World | None = None
) -> ForwardBackward:
    """The trainer's forward-and-backward for ``train.backward``, ``compile`` and ``dtype``,
    over this rank's rows of each global batch in a distributed run.

    The trainer keeps the plain model (its state dict, optimizer and checkpoints); the
    forward runs through the DDP-wrapped and/or compiled module built here.
    """
    check_options(train, model, device)
    if world is not None:  # BatchNorm's statistics over the global batch
        distributed.global_batchnorm(model)
    if train.backward == "manual":
        if world is None:
            return lambda m, x, y: m.manual_forward_backward(x, y)
        # BatchNorm's moments and the loss of the global batch: sums over the processes
        return distributed.forward_backward(
            world, None, lambda m, x, y: m.manual_forward_backward(x, y, distributed.total)
        )
    module: torch.nn.Module = model
    if world is not None:
        ids = [device.index] if device.type == "cuda" else None
        # buffers (BatchNorm's running statistics) are equal on every rank: no broadcast needed
        module = DistributedDataParallel(model, device_ids=ids, forward_sync_buffers=False)
    if train.compile:
        module = torch.compile(module)

    def forward(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with _autocast(train, device):
            _, loss = module(x, y)
        return loss.float()

    if world is not None:
        return distributed.forward_backward(world, forward, None)

    def step(m: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = forward(x, y)
        loss.backward()
        return loss

    return step


REPORT_ITEMS = 50_000  # the end-of-training report's train NLL: at most this many train items
WATCH_ITEMS = 20_000  # the dev evaluations during training: at most this many dev items


def bounded_sample(corpus: EncodedCorpus, limit: int, seed: int) -> EncodedCorpus:
    """All of ``corpus`` when it has at most ``limit`` items, else a seeded sample of ``limit``
    (in corpus order, the same on every rank and on resume), so an evaluation's cost does not
    grow with the corpus."""
    if len(corpus) <= limit:
        return corpus
    generator = torch.Generator().manual_seed(seed)
    items = torch.randperm(len(corpus), generator=generator)[:limit].sort().values
    return corpus.subset(items)


def dev_evaluation(batcher: Batcher, device: torch.device) -> Callable[[torch.nn.Module], float]:
    """The mean dev NLL of a model; in a distributed run ``batcher`` holds this rank's shard
    and the ranks' sums are all-reduced (the same number as one process, up to rounding)."""
    if distributed.current() is None:
        return lambda model: evaluate_nll(model, batcher)
    return lambda model: distributed.sharded_nll(lambda: nll_sum_count(model, batcher), device)
