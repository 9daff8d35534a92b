"""The neural bigram: one weight matrix from the previous character to next-character logits."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from makemore import validation
from makemore.models.base import ModelConfig, WindowModel


@dataclass
class BigramConfig(ModelConfig):
    reg: float = 0.001  # L2 penalty reg * mean(W**2), the seeds' "smoothing" of a neural bigram
    # Full-batch gradient descent, as in the seeds.
    train_defaults = dict(
        batch_size=0, optimizer="sgd", lr=50.0, schedule="constant", steps=1000, eval_interval=250, log_interval=50
    )

    def validate(self) -> None:
        validation.number(self, "reg", least=0)


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
