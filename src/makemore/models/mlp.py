"""The MLP of Bengio et al. 2003 (lecture 2) and its BatchNorm version (lectures 3 and 4).

Embedding table C -> concatenated context -> tanh hidden layer(s) -> output layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from makemore.errors import MakemoreError
from makemore.models import manual_backprop
from makemore.models.base import Dropout, WindowModel
from makemore.models.configs import BNMLPConfig, MLPConfig
from makemore.models.layers import BatchNorm

TANH_GAIN = 5.0 / 3.0


class MLP(WindowModel):
    """Bengio et al. 2003: ``logits = tanh(concat(C[ctx]) W1 + b1) W2 + b2``."""

    batchnorm = False  # bias-free Linear -> BatchNorm -> tanh hidden layers

    def __init__(self, config: MLPConfig | BNMLPConfig, vocab_size: int):
        super().__init__()
        self.config = config
        self.vocab_size = vocab_size
        self.block_size = config.block_size
        self.C = nn.Embedding(vocab_size, config.n_embd)
        layers: list[nn.Module] = []
        fan_in = config.block_size * config.n_embd
        for _ in range(config.n_layers):
            linear = nn.Linear(fan_in, config.n_hidden, bias=not self.batchnorm)
            layers.append(linear)
            if self.batchnorm:
                layers.append(BatchNorm(config.n_hidden, config.bn_momentum, config.eps))
            layers.append(nn.Tanh())
            if config.dropout:
                layers.append(Dropout(config.dropout))
            fan_in = config.n_hidden
        self.hidden = nn.Sequential(*layers)
        self.out = nn.Linear(config.n_hidden, vocab_size)
        self._init_weights(self._init_scheme())

    def _init_scheme(self) -> str:
        return self.config.init

    @torch.no_grad()
    def _init_weights(self, scheme: str) -> None:
        nn.init.normal_(self.C.weight)
        if scheme == "naive":  # lecture 2: every tensor plain randn
            for module in [*self.hidden, self.out]:
                if isinstance(module, nn.Linear):
                    nn.init.normal_(module.weight)
                    if module.bias is not None:
                        nn.init.normal_(module.bias)
            return
        for module in self.hidden:
            if isinstance(module, nn.Linear):  # tanh not saturated: Kaiming with gain 5/3
                nn.init.normal_(module.weight, std=TANH_GAIN / math.sqrt(module.in_features))
                if module.bias is not None:
                    nn.init.normal_(module.bias, std=0.01)
        nn.init.normal_(self.out.weight, std=0.01)  # initial loss ~ ln(V)
        nn.init.zeros_(self.out.bias)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        emb = self.C(idx)  # (B, block, E)
        h = self.hidden(emb.flatten(1))  # (B, H)
        logits = self.out(h)  # (B, V)
        return logits, self.loss_from_logits(logits, targets)


class BatchNormMLP(MLP):
    """The MLP with bias-free Linear -> BatchNorm -> tanh hidden layers (lecture 3)."""

    batchnorm = True
    has_manual_backward = True

    def _init_scheme(self) -> str:
        return "kaiming"  # lecture 3's fixes: BatchNorm came with them

    def _lecture_params(self) -> dict[str, torch.Tensor]:
        """Parameters in the lecture's layout (views, so gradients map back by transposing)."""
        linear, bn = self.hidden[0], self.hidden[1]
        return {
            "C": self.C.weight,
            "W1": linear.weight.t(),
            "bngain": bn.gain,
            "bnbias": bn.bias,
            "W2": self.out.weight.t(),
            "b2": self.out.bias,
        }

    def manual_backward_error(self) -> str | None:
        if self.config.n_layers != 1 or self.config.dropout:
            return "the hand-written backward pass covers bn-mlp with n_layers 1 and no dropout"
        return None

    def manual_forward_backward(
        self, idx: torch.Tensor, targets: torch.Tensor, total: manual_backprop.Total | None = None
    ) -> torch.Tensor:
        """One training forward pass and the hand-written backward pass (no autograd).

        Fills ``.grad`` of every parameter and updates the BatchNorm running statistics.

        Args:
            idx, targets: the batch (this process's rows of it in a distributed run).
            total: a distributed run's sum over the processes (``distributed.total``), so that
                BatchNorm's moments and the mean loss are the global batch's; None: this batch alone.
        Returns:
            the batch loss.
        """
        problem = self.manual_backward_error()
        if problem:
            raise MakemoreError(problem)
        bn = self.hidden[1]
        with torch.no_grad():
            params = {k: v.detach() for k, v in self._lecture_params().items()}
            loss, cache = manual_backprop.forward(params, idx, targets, eps=bn.eps, total=total)
            grads = manual_backprop.backward_fused(params, cache, idx, targets, total=total)
            self.C.weight.grad = grads["dC"]
            self.hidden[0].weight.grad = grads["dW1"].t().contiguous()
            bn.gain.grad = grads["dbngain"].reshape(bn.gain.shape)
            bn.bias.grad = grads["dbnbias"].reshape(bn.bias.shape)
            self.out.weight.grad = grads["dW2"].t().contiguous()
            self.out.bias.grad = grads["db2"].reshape(self.out.bias.shape)
            bn.update_running(cache["bnmeani"].reshape(-1), cache["bnvar"].reshape(-1))
        return loss
