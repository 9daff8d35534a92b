"""Minibatches of an encoded corpus, in the layout each kind of model reads.

A model's kind chooses its batcher (``LanguageModel.batcher``); the trainer, evaluation and
scoring only use ``sample`` and ``chunks``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

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


BATCHINGS = ("length", "random")
POOL_BATCHES = 100  # length batching: batches cut from one sorted pool


@dataclass
class _Pool:
    """A pool of length-sorted items cut into batches: batch ``k`` is
    ``items[bounds[k]:bounds[k + 1]]``, handed out in the order ``order``."""

    items: torch.Tensor  # (N,) item indices, shortest first
    bounds: torch.Tensor  # (P + 1,) where each batch starts in ``items``
    order: torch.Tensor  # (P,) the batches in hand-out order
    batch_size: int  # the batch size it was drawn for
    state: torch.Tensor  # the generator state it was drawn from

    def batch(self, k: int) -> torch.Tensor:
        b = int(self.order[k])
        return self.items[int(self.bounds[b]) : int(self.bounds[b + 1])]


class SequenceBatcher:
    """Minibatches of whole items, each padded to its longest item.

    ``batching="random"`` draws each batch's items at random (with replacement).
    ``"length"`` (the bucket iterator) draws a pool of ``POOL_BATCHES`` batches' worth of
    distinct items at once (or the whole corpus, when smaller), sorts the pool by length, cuts
    it into batches holding about the same number of characters (so about ``batch_size``
    items on average: more short items, fewer long ones) and hands them out in a random order.
    A batch then holds items of about one length and little padding, and every target weighs
    in the loss as it does with random batches (a batch's loss is the mean over its targets);
    every item is still drawn uniformly, only the grouping changes. The pool is redrawn from
    the generator state it started from on resume (``state_dict``), so a resumed run gets the
    same batches.

    Args:
        corpus: the encoded items.
        device: where batches are put.
        batching: "length" or "random".
    """

    def __init__(self, corpus: EncodedCorpus, device: str | torch.device = "cpu", batching: str = "length"):
        if batching not in BATCHINGS:
            raise ValueError(f"batching must be one of {BATCHINGS}, got {batching!r}")
        self.corpus = corpus
        self.device = torch.device(device)
        self.batching = batching
        self._pool: _Pool | None = None
        self._next = 0  # the pool's next batch

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """A batch of about ``batch_size`` items (exactly, for random batches; 0: every item, in order)."""
        n = len(self.corpus)
        if batch_size <= 0:
            items = torch.arange(n)
        elif self.batching == "random":
            items = torch.randint(0, n, (batch_size,), generator=generator)
        else:
            pool = self._pool
            if pool is None or self._next >= pool.order.numel() or pool.batch_size != batch_size:
                pool = self._pool = self._draw_pool(batch_size, generator)
                self._next = 0
            items = pool.batch(self._next)
            self._next += 1
        x, y = self.corpus.sequence_batch(items)
        return x.to(self.device), y.to(self.device)

    def _draw_pool(self, batch_size: int, generator: torch.Generator) -> _Pool:
        state = generator.get_state()
        n = len(self.corpus)
        if n < batch_size:  # fewer items than a batch: one batch drawn with replacement
            items = torch.randint(0, n, (batch_size,), generator=generator)
            return _Pool(items, torch.tensor([0, batch_size]), torch.zeros(1, dtype=torch.int64), batch_size, state)
        batches = min(POOL_BATCHES, n // batch_size)
        items = torch.randperm(n, generator=generator)[: batches * batch_size]
        items = items[torch.sort(self.corpus.lengths[items], stable=True).indices]  # shortest first
        targets = torch.cumsum(self.corpus.lengths[items] + 1, 0)  # (N,) characters and end, so far
        share = targets[-1] * torch.arange(1, batches, dtype=torch.float64) / batches  # (P - 1,)
        cuts = torch.searchsorted(targets.double(), share) + 1  # a batch ends on the item that reaches its share
        bounds = torch.unique(torch.cat([torch.tensor([0]), cuts, torch.tensor([items.numel()])]))
        order = torch.randperm(bounds.numel() - 1, generator=generator)
        return _Pool(items, bounds, order, batch_size, state)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Where the batches stand in the current pool (empty for random batches or no pool yet)."""
        if self._pool is None:
            return {}
        return {"pool": self._pool.state.clone(), "next": torch.tensor([self._next, self._pool.batch_size])}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Continue inside the pool that ``state`` describes (redrawn from its generator state)."""
        if not state:
            self._pool, self._next = None, 0
            return
        generator = torch.Generator()
        generator.set_state(state["pool"])
        self._next, batch_size = (int(v) for v in state["next"])
        self._pool = self._draw_pool(batch_size, generator)

    def chunks(self, size: int = 1024) -> Iterator[Batch]:
        """Items in corpus order, chunked; the targets come out in corpus order when flattened
        row by row and filtered for ``y != -1``."""
        n = len(self.corpus)
        for i in range(0, n, size):
            x, y = self.corpus.sequence_batch(torch.arange(i, min(i + size, n)))
            yield x.to(self.device), y.to(self.device)
