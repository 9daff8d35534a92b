"""What every model family shares: the config base, the three kinds of model, and helpers.

Every model has ``forward(idx, targets=None) -> (logits, loss)``. Generic code (training,
evaluation, sampling, scoring, plots) never asks which family a model is: it asks the model,
whose *kind* (its base class here) answers:

* ``WindowModel`` (bigram, mlp, wavenet) reads a fixed context of the previous ``block_size``
  tokens: ``idx`` is ``(B, block_size)``, ``targets`` ``(B,)``, ``logits`` ``(B, V)``.
* ``SequenceModel`` (rnn, gru, lstm, transformer) reads a whole item at once: ``idx`` is
  ``(B, T)``, ``targets`` ``(B, T)`` with ``-1`` on padding, ``logits`` ``(B, T, V)``;
  position ``t`` predicts token ``t + 1``.
* ``CountModel`` (ngram) is a window model fitted by counting, not by gradient descent.

Token 0 is always the boundary token (start and end of an item).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from makemore.data.batching import SequenceBatcher, WindowBatcher
from makemore.data.corpus import EncodedCorpus
from makemore.models.configs import ModelConfig

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
    """Base class of every model; subclass one of the three kinds below, not this class.

    Subclasses set ``config``, ``vocab_size`` and ``block_size`` and implement ``forward``.
    """

    input_kind: ClassVar[str]  # how the model reads its input: "window" or "sequence"
    trains_by_gradient: ClassVar[bool] = True  # False: fitted by counting (``CountModel``)
    has_manual_backward: ClassVar[bool] = False  # has ``manual_forward_backward`` (some configs)
    config: ModelConfig
    block_size: int
    vocab_size: int

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def fit_config(cls, config: ModelConfig, longest_item: int) -> ModelConfig:
        """The config to build for data whose longest item has ``longest_item`` characters."""
        return config

    def batcher(self, corpus: EncodedCorpus, device: str | torch.device = "cpu", batching: str = "length"):
        """A batcher (``sample``, ``chunks``) of ``corpus`` in the layout this model reads.

        Args:
            corpus: the encoded items.
            device: where the batches go.
            batching: how items are grouped into training batches (``TrainConfig.batching``;
                models whose examples all have one size ignore it).
        """
        raise NotImplementedError

    def read_contexts(self, corpus: EncodedCorpus) -> list[list[list[int]]]:
        """For each item of ``corpus``, the tokens this model reads before each of its targets."""
        raise NotImplementedError

    @property
    def position_limit(self) -> int | None:
        """Most characters the model can generate or read in one item (None: no limit)."""
        return None

    def char_embedding(self) -> torch.Tensor | None:
        """``(V, E)`` vector of each token, for plots (None when the model has none)."""
        for module in self.modules():
            if isinstance(module, nn.Embedding) and module.num_embeddings == self.vocab_size:
                return module.weight.detach()
        return None

    def manual_backward_error(self) -> str | None:
        """Why this model cannot train with the hand-written backward pass (None when it can)."""
        return None if self.has_manual_backward else "this model has no hand-written backward pass"

    def manual_forward_backward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """One training forward pass and a hand-written backward pass that fills ``.grad``."""
        raise NotImplementedError(self.manual_backward_error())

    @staticmethod
    def loss_from_logits(logits: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor | None:
        """Mean cross-entropy over all non-padding targets (None when targets is None)."""
        if targets is None:
            return None
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX)

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
            ``(logits (B, V), cache)``. The kinds' defaults recompute from the visible context;
            models with a KV cache or a recurrent state override this to only process the
            newest token.
        """
        raise NotImplementedError


class WindowModel(LanguageModel):
    """A model that predicts the next token from the previous ``block_size`` tokens."""

    input_kind = "window"

    def batcher(
        self, corpus: EncodedCorpus, device: str | torch.device = "cpu", batching: str = "length"
    ) -> WindowBatcher:
        return WindowBatcher(corpus, self.block_size, device)

    def read_contexts(self, corpus: EncodedCorpus) -> list[list[list[int]]]:
        windows = corpus.windows(self.block_size)[0].tolist()  # boundary-padded, as in training
        out, row = [], 0
        for length in corpus.lengths.tolist():
            out.append(windows[row : row + length + 1])
            row += length + 1
        return out

    @torch.no_grad()
    def next_token_logits(self, idx: torch.Tensor, cache: Any = None) -> tuple[torch.Tensor, Any]:
        context = idx[:, idx.size(1) - min(self.block_size, idx.size(1)) :]  # last block_size tokens (none for 0)
        if context.size(1) < self.block_size:
            pad = context.new_zeros(context.size(0), self.block_size - context.size(1))
            context = torch.cat([pad, context], dim=1)
        logits, _ = self(context)
        return logits, None


class CountModel(WindowModel):
    """A window model fitted by counting the training examples (no gradient descent)."""

    trains_by_gradient = False

    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> None:
        """Fit to ``(N, block_size)`` contexts ``X`` and their ``(N,)`` next tokens ``Y``."""
        raise NotImplementedError

    def fit_batcher(self, batcher: WindowBatcher) -> None:
        """Fit to every example of a batcher made by ``self.batcher``."""
        self.fit(batcher.X, batcher.Y)


class SequenceModel(LanguageModel):
    """A model that reads whole items and predicts every next token at once.

    ``block_size`` is the most positions it reads; a config's ``block_size`` of 0 is set to
    the longest training item + 1 (``fit_config``). Models without a position table
    (recurrent ones) set ``has_position_limit = False``: for them ``block_size`` is only
    recorded.
    """

    input_kind = "sequence"
    has_position_limit: ClassVar[bool] = True

    @classmethod
    def fit_config(cls, config: ModelConfig, longest_item: int) -> ModelConfig:
        if config.block_size == 0:
            return dataclasses.replace(config, block_size=longest_item + 1)
        return config

    def batcher(
        self, corpus: EncodedCorpus, device: str | torch.device = "cpu", batching: str = "length"
    ) -> SequenceBatcher:
        return SequenceBatcher(corpus, device, batching)

    def read_contexts(self, corpus: EncodedCorpus) -> list[list[list[int]]]:
        out = []
        for i in range(len(corpus)):
            item = corpus.item_tokens(i)  # the start token and the characters
            out.append([item[: t + 1] for t in range(len(item))])
        return out

    @property
    def position_limit(self) -> int | None:
        return self.block_size - 1 if self.has_position_limit else None

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

    @torch.no_grad()
    def next_token_logits(self, idx: torch.Tensor, cache: Any = None) -> tuple[torch.Tensor, Any]:
        logits, _ = self(idx[:, -self.block_size :])
        return logits[:, -1, :], None
