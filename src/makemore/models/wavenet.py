"""WaveNet-style hierarchical MLP (lecture 5).

The context window is fused two neighbours at a time: ``block_size = 8`` characters become
4 pairs, then 2 quadruples, then 1 group of 8, each level being
``FlattenConsecutive(2) -> Linear -> BatchNorm -> Tanh``.
"""

from __future__ import annotations

import torch
from torch import nn

from makemore.errors import MakemoreError
from makemore.models.base import Dropout, WindowModel
from makemore.models.configs import WaveNetConfig
from makemore.models.layers import BatchNorm


class FlattenConsecutive(nn.Module):
    """Concatenate ``n`` consecutive time steps: ``(B, T, C) -> (B, T // n, C * n)``."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        return x.reshape(B, T // self.n, C * self.n)

    def extra_repr(self) -> str:
        return f"n={self.n}"


class WaveNet(WindowModel):
    """Hierarchical MLP over a window: idx ``(B, block_size)`` -> logits ``(B, V)``."""

    def __init__(self, config: WaveNetConfig, vocab_size: int):
        super().__init__()
        self.config = config
        self.block_size = config.block_size
        self.vocab_size = vocab_size
        n_levels = config.block_size.bit_length() - 1  # log2(block_size)

        self.wte = nn.Embedding(vocab_size, config.n_embd)
        layers: list[nn.Module] = []
        width = config.n_embd
        for _ in range(n_levels):
            layers += [
                FlattenConsecutive(2),
                nn.Linear(2 * width, config.n_hidden, bias=False),
                BatchNorm(config.n_hidden, momentum=0.1),  # lecture 5's momentum
                nn.Tanh(),
            ]
            if config.dropout > 0:
                layers.append(Dropout(config.dropout))
            width = config.n_hidden
        self.layers = nn.Sequential(*layers)
        self.lm_head = nn.Linear(width, vocab_size)
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        nn.init.normal_(self.wte.weight, std=1.0)
        for m in self.layers:
            if isinstance(m, nn.Linear):  # BatchNorm follows, so only the scale ratio matters
                nn.init.normal_(m.weight, std=m.in_features**-0.5)
        # small last layer: initial predictions are nearly uniform (loss ~ ln V)
        nn.init.normal_(self.lm_head.weight, std=0.1 * self.lm_head.in_features**-0.5)
        nn.init.zeros_(self.lm_head.bias)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        if idx.dim() != 2 or idx.size(1) != self.block_size:
            raise MakemoreError(f"wavenet expects idx of shape (B, {self.block_size}), got {tuple(idx.shape)}")
        x = self.wte(idx)  # (B, T, n_embd)
        x = self.layers(x)  # (B, 1, n_hidden) after log2(T) levels
        x = x.squeeze(1)  # (B, n_hidden): the lecture's bug fix
        logits = self.lm_head(x)  # (B, V)
        return logits, self.loss_from_logits(logits, targets)
