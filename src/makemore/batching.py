"""Minibatches of an encoded corpus, in the layout each kind of model reads.

A model's kind chooses its batcher (``LanguageModel.batcher``); the trainer, evaluation and
scoring only use ``sample`` and ``chunks``.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from makemore.data import EncodedCorpus

Batch = tuple[torch.Tensor, torch.Tensor]


class WindowBatcher:
    """Random minibatches of (context window, next token) examples.

    Attributes:
        X: (N, block_size) every context window of the corpus, in corpus order.
        Y: (N,) the token after each window.
    """

    def __init__(self, corpus: EncodedCorpus, block_size: int, device: str | torch.device = "cpu"):
        X, Y = corpus.windows(block_size)
        self.X, self.Y = X.to(device), Y.to(device)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """``batch_size`` examples drawn with replacement (0: every example, in order)."""
        if batch_size <= 0:
            return self.X, self.Y
        ix = torch.randint(0, self.Y.numel(), (batch_size,), generator=generator)
        ix = ix.to(self.X.device)
        return self.X[ix], self.Y[ix]

    def chunks(self, size: int = 16384) -> Iterator[Batch]:
        """Every example in corpus order, ``size`` at a time."""
        for i in range(0, self.Y.numel(), size):
            yield self.X[i : i + size], self.Y[i : i + size]


class SequenceBatcher:
    """Random minibatches of whole items, padded to the longest item of each batch."""

    def __init__(self, corpus: EncodedCorpus, device: str | torch.device = "cpu"):
        self.corpus = corpus
        self.device = torch.device(device)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """``batch_size`` items drawn with replacement (0: every item, in order)."""
        n = len(self.corpus)
        items = torch.arange(n) if batch_size <= 0 else torch.randint(0, n, (batch_size,), generator=generator)
        x, y = self.corpus.sequence_batch(items)
        return x.to(self.device), y.to(self.device)

    def chunks(self, size: int = 1024) -> Iterator[Batch]:
        """Items in corpus order, chunked; the targets come out in corpus order when flattened
        row by row and filtered for ``y != -1``."""
        n = len(self.corpus)
        for i in range(0, n, size):
            x, y = self.corpus.sequence_batch(torch.arange(i, min(i + size, n)))
            yield x.to(self.device), y.to(self.device)
