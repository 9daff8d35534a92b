"""The interface every model family shares.

Two kinds of input exist:

* ``"window"`` models (ngram, bigram, mlp, wavenet) read a fixed context of the
  previous ``block_size`` tokens: ``idx`` is ``(B, block_size)``, ``targets`` is
  ``(B,)`` and ``logits`` is ``(B, V)``.
* ``"sequence"`` models (rnn, gru, lstm, transformer) read a whole item at once:
  ``idx`` is ``(B, T)``, ``targets`` is ``(B, T)`` with ``-1`` on padding and
  ``logits`` is ``(B, T, V)``; position ``t`` predicts token ``t + 1``.

Token 0 is always the boundary token (start and end of an item).
Sampling, scoring, evaluation and training only rely on this module.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = -1


class Packing:
    """Where the needed rows of a padded ``(B, T)`` batch sit, for packed computation.

    Position-wise layers (LayerNorm, projections, MLP, output head) then run on the
    ``(N, C)`` needed rows only; layers that mix positions (attention, a recurrence) work on
    the ``(B, T, C)`` layout and their output is packed again.
    """

    def __init__(self, rows: torch.Tensor, B: int, T: int):
        self.rows, self.B, self.T = rows, B, T  # rows: (N,) flat indices into B * T

    @classmethod
    def from_mask(cls, needed: torch.Tensor) -> Packing:
        """The True positions of a ``(B, T)`` bool mask, row by row."""
        return cls(needed.view(-1).nonzero().squeeze(1), *needed.shape)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (N, C)."""
        return x.reshape(self.B * self.T, x.size(-1)).index_select(0, self.rows)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C) -> (B, T, C), zeros where no row was packed."""
        full = x.new_zeros(self.B * self.T, x.size(-1)).index_copy(0, self.rows, x)
        return full.view(self.B, self.T, x.size(-1))


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by 1/(1 - p).

    On CPU the mask comes from 64-bit random integers cut into four 16-bit ones: PyTorch's
    own dropout draws a Bernoulli sample per element, about four times slower here
    (``benchmarks/bench_dropout.py``). ``p`` is then rounded to a multiple of 1/65536 and the
    scale uses the rounded rate, so the expected output is still ``x``.

    Args:
        x: any tensor.
        p: dropout rate in [0, 1).
        training: when False, ``x`` is returned unchanged.
    Returns:
        a tensor of ``x``'s shape (a new tensor when anything is dropped).
    """
    if not training or p == 0.0:
        return x
    dropped = round(p * 65536)  # out of 65536
    if x.device.type != "cpu" or dropped >= 65536:
        return F.dropout(x, p, training=True)
    n = x.numel()
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
    keep = words.view(torch.int16)[:n].view(x.shape) >= dropped - 32768  # P(keep) = 1 - dropped / 65536
    return x * keep * (65536 / (65536 - dropped))


class Dropout(nn.Module):
    """``nn.Dropout`` with the faster CPU mask of :func:`dropout` (no parameters, no state)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LanguageModel(nn.Module):
    """Base class: subclasses set ``input_kind`` and ``block_size`` and implement ``forward``."""

    input_kind: ClassVar[str] = "window"
    block_size: int
    vocab_size: int

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def loss_from_logits(logits: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor | None:
        """Mean cross-entropy over all non-padding targets (None when targets is None)."""
        if targets is None:
            return None
        return F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX
        )

    @staticmethod
    def needed_mask(targets: torch.Tensor | None) -> torch.Tensor | None:
        """Which positions of a padded ``(B, T)`` batch a sequence loss needs.

        A position is needed when it, or a later position of its row, has a target (not
        ``IGNORE_INDEX``); with causal models the positions after a row's last target
        cannot change the loss, so they need not be computed (the padding of a batch).

        Args:
            targets: ``(B, T)`` targets with ``IGNORE_INDEX`` on padding, or None.
        Returns:
            ``(B, T)`` bool mask, or None when every position is needed.
        """
        if targets is None or targets.dim() != 2:
            return None
        has_target = targets != IGNORE_INDEX  # (B, T)
        needed = has_target.flip(1).cummax(1).values.flip(1)  # up to each row's last target
        return None if bool(needed.all()) else needed

    @classmethod
    def needed_positions(cls, targets: torch.Tensor | None) -> torch.Tensor | None:
        """Flat indices into ``B * T`` of the ``needed_mask`` positions, row by row (or None)."""
        needed = cls.needed_mask(targets)
        return None if needed is None else Packing.from_mask(needed).rows

    def manual_backward_error(self) -> str | None:
        """Why this model cannot train with ``--backward manual`` (None when it can)."""
        if not hasattr(self, "manual_forward_backward"):
            return "this model has no hand-written backward pass (bn-mlp with n_layers 1 has one)"
        return None

    def select_cache_rows(self, cache: Any, rows: torch.Tensor) -> Any:
        """Keep only ``rows`` (indices into the batch) of a ``next_token_logits`` cache.

        Sampling calls this to drop the rows that have ended. The default cache (None) holds
        nothing per row; models with a KV cache or a recurrent state override it.
        """
        return cache

    @torch.no_grad()
    def next_token_logits(self, idx: torch.Tensor, cache: Any = None) -> tuple[torch.Tensor, Any]:
        """Logits for the token after ``idx``.

        Args:
            idx: ``(B, t)`` tokens generated so far, starting with the boundary token.
            cache: whatever this method returned last time for the same rows (None at first).
        Returns:
            ``(logits (B, V), cache)``. The default recomputes from the visible context;
            models with a KV cache or a recurrent state override this to only process the
            newest token.
        """
        if self.input_kind == "window":
            context = idx[:, idx.size(1) - min(self.block_size, idx.size(1)) :]  # last block_size tokens (none for 0)
            if context.size(1) < self.block_size:
                pad = context.new_zeros(context.size(0), self.block_size - context.size(1))
                context = torch.cat([pad, context], dim=1)
            logits, _ = self(context)
            return logits, None
        logits, _ = self(idx[:, -self.block_size :])
        return logits[:, -1, :], None
