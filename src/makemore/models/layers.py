"""Layers more than one family uses.

``BatchNorm`` is the lectures' hand-written batch normalisation (the MLP of lectures 3-4 and
WaveNet of lecture 5 use it). Its batch statistics come from ``moments``, over the rows of this
process; a distributed run swaps in ``distributed.GlobalBatchNorm`` (as PyTorch's
``SyncBatchNorm`` is swapped in), whose moments are over every process's rows, so no model
file knows about processes.
"""

from __future__ import annotations

import torch
from torch import nn


class BatchNorm(nn.Module):
    """Batch normalisation over every dimension but the last, as written in the lectures.

    Training normalises ``(B, C)`` or ``(B, T, C)`` inputs with the batch mean and the
    Bessel-corrected batch variance (over ``(0,)`` or ``(0, 1)``, as in lecture 5) and moves the
    running estimates by ``momentum`` towards them; evaluation uses the running estimates.
    """

    def __init__(self, dim: int, momentum: float = 0.001, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.gain = nn.Parameter(torch.ones(dim))  # (C,)
        self.bias = nn.Parameter(torch.zeros(dim))  # (C,)
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))

    def moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch mean and Bessel-corrected variance of ``x``, each (C,)."""
        dims = tuple(range(x.dim() - 1))
        return x.mean(dims), x.var(dims, unbiased=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C) or (B, T, C)
        if self.training:
            mean, var = self.moments(x)  # (C,), (C,)
            self.update_running(mean, var)
        else:
            mean, var = self.running_mean, self.running_var
        return self.gain * (x - mean) * torch.rsqrt(var + self.eps) + self.bias

    @torch.no_grad()
    def update_running(self, mean: torch.Tensor, var: torch.Tensor) -> None:
        self.running_mean.lerp_(mean.detach(), self.momentum)
        self.running_var.lerp_(var.detach(), self.momentum)
