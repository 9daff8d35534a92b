"""Training one model on several processes: ``torchrun ... -m makemore train`` (DDP).

torchrun starts the processes and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the
rendezvous; this module joins them into one ``torch.distributed`` process group (``nccl`` on
CUDA, ``gloo`` on CPU) and holds what the processes must agree on:

* every rank draws the same *global* batch from the same seeded generator and trains on its
  rows ``rank::world`` (so N processes see exactly the examples one process sees);
* each rank's loss is weighted by its share of the global targets (sequence models have a
  different number of characters per rank), so DDP's averaged gradient is the one-process
  gradient, and the loss reported is the global mean;
* BatchNorm statistics and the hand-written backward's batch sums are totals over all ranks
  (``total``: an all-reduce autograd sees through);
* dev evaluation is sharded over ranks and its sums all-reduced;
* only rank 0 prints and writes; a signal stops every rank after the same step.

Dropout masks are each rank's own (rank 0 goes on with the run's random stream, rank r > 0
draws from a stream seeded by the seed, the rank and the step), so a run with dropout is the
same training in distribution, not bit for bit, with another number of processes.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist

from makemore import validation
from makemore.errors import MakemoreError
from makemore.models.layers import BatchNorm

ForwardBackward = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]  # as trainer.ForwardBackward

IGNORE_INDEX = -1  # padding targets (models.base.IGNORE_INDEX)


@dataclass(frozen=True)
class World:
    """This process's place in a distributed run."""

    rank: int
    size: int
    local_rank: int
    local_size: int

    @property
    def main(self) -> bool:
        """Rank 0: the one process that prints and writes."""
        return self.rank == 0


_world: World | None = None  # the run training now (None: one process)


def current() -> World | None:
    """The distributed run this process is in, or None when it trains alone."""
    return _world


def is_main() -> bool:
    """True unless this process is a rank other than 0 of a distributed run training now."""
    return _world is None or _world.main


def is_main_process() -> bool:
    """False in the processes torchrun started other than rank 0 (which alone prints and writes)."""
    world = from_environment()
    return world is None or world.main


def launched(environ: dict[str, str] | None = None) -> bool:
    """Whether a launcher (torchrun) started this process as one of several."""
    return _env_int(os.environ if environ is None else environ, "WORLD_SIZE", 1) > 1


def _env_int(environ, name: str, default: int) -> int:
    value = environ.get(name)
    if value is None:
        return default
    if not value.strip().isdigit():
        raise MakemoreError(f"{name}={value!r}: expected a non-negative integer (set by torchrun)")
    return int(value)


def backend_for(name: str, device: torch.device) -> str:
    """The process group backend for ``TrainConfig.backend`` ("auto": nccl on CUDA, gloo on CPU)."""
    if name == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if name == "nccl" and device.type != "cuda":
        validation.fail(None, "backend", "nccl needs CUDA devices; use gloo (or auto) on CPU")
    return name


def from_environment(environ: dict[str, str] | None = None) -> World | None:
    """This process's place as torchrun set it in the environment (None: it runs alone).

    Raises:
        MakemoreError: a launcher's variable that is not a count, or a rank out of range.
    """
    env = os.environ if environ is None else environ
    if not launched(env):
        return None
    size = _env_int(env, "WORLD_SIZE", 1)
    rank, local_rank = _env_int(env, "RANK", 0), _env_int(env, "LOCAL_RANK", 0)
    local_size = _env_int(env, "LOCAL_WORLD_SIZE", size)
    if rank >= size or local_rank >= local_size:
        raise MakemoreError(f"RANK={rank}, LOCAL_RANK={local_rank}: out of range for WORLD_SIZE={size}")
    return World(rank, size, local_rank, local_size)


def device_for(device: torch.device, world: World | None) -> torch.device:
    """The device of this rank: its ``LOCAL_RANK`` GPU on CUDA, else ``device`` unchanged."""
    if world is not None and device.type == "cuda":
        return torch.device("cuda", world.local_rank)
    return device


@contextlib.contextmanager
def joined(world: World | None, backend: str, device: torch.device) -> Iterator[None]:
    """Join the process group of a distributed run for the time of the block (nothing alone).

    Args:
        world: this process's place (``from_environment``), or None.
        backend: ``TrainConfig.backend`` ("auto": nccl on CUDA, gloo on CPU).
        device: this rank's device.
    """
    global _world
    if world is None:
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    started_here = not dist.is_initialized()
    if started_here:
        dist.init_process_group(backend_for(backend, device), rank=world.rank, world_size=world.size)
    _world = world
    try:
        yield
    except RuntimeError as exc:
        if not _is_collective_failure(exc):
            raise
        what = re.sub(r"^\[[^\]]*\]\s*", "", str(exc).strip().splitlines()[0]).split(". ")[0]  # no source path
        raise MakemoreError(
            f"rank {world.rank}: another process of this run stopped or cannot be reached ({what}); "
            "the run ends here: continue it from its last checkpoint with --resume"
        ) from None
    finally:
        _world = None
        if started_here:
            gc.collect()  # what still holds the group (a DDP module in a reference cycle) goes first
            dist.destroy_process_group()


def _is_collective_failure(exc: RuntimeError) -> bool:
    """Whether ``exc`` is a collective that failed because a peer went away (the backends raise
    plain RuntimeErrors or DistErrors naming themselves)."""
    text = str(exc)
    return isinstance(exc, dist.DistError) or "gloo" in text or "NCCL" in text or "Connection closed" in text


def barrier() -> None:
    """Wait for every rank (nothing alone)."""
    if _world is not None:
        dist.barrier()


def total(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over the ranks of a distributed run (``t`` itself alone); gradients flow
    back to every rank's part, so batch statistics over the global batch train correctly."""
    if _world is None:
        return t
    return _Total.apply(t)


class _Total(torch.autograd.Function):
    """Sum over ranks with its gradient: each rank's part gets the sum of every rank's upstream
    gradient (d total / d x_r = 1). torch.distributed.nn's differentiable all_reduce does this too
    but is deprecated, and the functional collectives have no autograd for all_reduce."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        out = t.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def batch_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """BatchNorm's batch mean and Bessel-corrected variance of ``x`` (..., C) over every
    dimension but the last, over the rows of every rank in a distributed run.

    Returns:
        (mean, var), each (C,).
    """
    if _world is None:
        dims = tuple(range(x.dim() - 1))
        return x.mean(dims), x.var(dims, unbiased=True)
    rows = x.reshape(-1, x.size(-1))  # (N, C)
    n = total(rows.new_tensor(float(rows.size(0))))
    mean = total(rows.sum(0)) / n  # (C,)
    var = total(((rows - mean) ** 2).sum(0)) / (n - 1)  # (C,)
    return mean, var


class GlobalBatchNorm(BatchNorm):
    """``layers.BatchNorm`` whose batch statistics are over every process's rows, as PyTorch's
    ``SyncBatchNorm``: ``global_batchnorm`` swaps it in for a distributed run."""

    def moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return batch_moments(x)


def global_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """Make every ``BatchNorm`` of ``model`` a ``GlobalBatchNorm``, in place (the same parameters
    and buffers: only where its statistics come from changes). Returns ``model``."""
    for module in model.modules():
        if type(module) is BatchNorm:
            module.__class__ = GlobalBatchNorm
    return model


def all_sum(values: list[float], device: torch.device, dtype: torch.dtype = torch.float64) -> list[float]:
    """``values`` summed over the ranks (``device``: where the backend wants tensors)."""
    t = torch.tensor(values, dtype=dtype, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def broadcast_state(module: torch.nn.Module) -> None:
    """Give every rank rank 0's weights and buffers of ``module`` (in place; nothing alone), so that
    ranks on other machines need not read rank 0's files."""
    if _world is None:
        return
    with torch.no_grad():
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src=0)


def local_rows(n: int, world: World, device: torch.device | None = None) -> torch.Tensor:
    """The rows of a global batch of ``n`` this rank trains on: ``rank, rank + size, ...``
    (strided, so that ranks get items of similar length from a length-sorted batch), on ``device``."""
    return torch.arange(world.rank, max(n, world.rank), world.size, device=device)  # empty past the batch


def forward_backward(
    world: World, forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None, manual: ForwardBackward | None
) -> ForwardBackward:
    """The trainer's forward-and-backward of one global batch, for this rank's rows.

    Args:
        world: this process's place.
        forward: (x, y) -> mean loss over the targets of x, through the model wrapped in
            ``DistributedDataParallel`` (autograd); None with ``manual``.
        manual: the hand-written pass (``model.manual_forward_backward``, whose batch sums are
            global through ``total``); its gradients are all-reduced here.
    Returns:
        a function (model, x, y) -> the global batch's mean loss (a float32 tensor on the
        device), with gradients filled in. The target counts and the loss stay on the device
        (all-reduced as tensors): the host does not wait for the device.
    """

    def step(m: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        rows = local_rows(x.size(0), world, x.device)
        weight = 1.0
        if rows.numel() == 0:  # a short length batch: compute one row, weigh it 0 (DDP needs every rank)
            rows, weight = rows.new_zeros(1), 0.0
        xs, ys = x.index_select(0, rows), y.index_select(0, rows)
        if manual is not None:
            loss = manual(m, xs, ys)
            for p in m.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            return loss
        # counts in float64 (exact), the arithmetic of Python floats
        n_global = (y != IGNORE_INDEX).sum().double()
        n_local = (ys != IGNORE_INDEX).sum().double() * weight
        loss = forward(xs, ys)  # mean over this rank's targets
        (loss * (n_local * world.size / n_global).to(loss.dtype)).backward()  # DDP averages over ranks
        mean = loss.detach().double() * n_local / n_global
        dist.all_reduce(mean, op=dist.ReduceOp.SUM)
        return mean.float()

    return step


def sharded_nll(evaluate_parts: Callable[[], tuple[float, int]], device: torch.device) -> float:
    """The mean NLL over every rank's shard: each rank's (sum, count), all-reduced."""
    nll, count = evaluate_parts()
    nll, count = all_sum([nll, float(count)], device)
    return nll / count if count else float("nan")


def rank_seed(seed: int, rank: int, step: int) -> int:
    """The seed of rank ``rank``'s dropout stream at ``step`` (ranks > 0 of a distributed run)."""
    return (seed * 1_000_003 + rank * 7_919 + step * 104_729) % (2**63)
