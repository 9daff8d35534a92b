"""The neural bigram: one weight matrix from the previous character to next-character logits."""

from __future__ import annotations

import torch
from torch import nn

from makemore.models.base import WindowModel
from makemore.models.configs import BigramConfig


class BigramModel(WindowModel):
    """``logits = onehot(prev) @ W``; an embedding lookup computes the same product."""

    def __init__(self, config: BigramConfig, vocab_size: int):
        super().__init__()
        self.config = config
        self.vocab_size = vocab_size
        self.block_size = 1
        self.W = nn.Parameter(torch.randn(vocab_size, vocab_size) * 0.01)  # (V, V)

    def char_embedding(self) -> torch.Tensor:
        """Row ``i`` of ``W`` is what the model does after token ``i``: its vector."""
        return self.W.detach()

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.W[idx[:, -1]]  # (B, V) == one_hot(idx) @ W
        loss = self.loss_from_logits(logits, targets)
        if loss is not None and self.config.reg:
            loss = loss + self.config.reg * (self.W**2).mean()
        return logits, loss
