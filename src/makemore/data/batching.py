"""Minibatches of an encoded corpus, in the layout each kind of model reads.

A model's kind chooses its batcher (``LanguageModel.batcher``); the trainer, evaluation and
scoring only use what the ``Batcher`` protocol declares.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import torch

from makemore.data.corpus import EncodedCorpus

Batch = tuple[torch.Tensor, torch.Tensor]


class Batcher(Protocol):
    """What the trainer, evaluation and scoring ask of a batcher."""

    corpus: EncodedCorpus  # the items it draws from

    @property
    def num_targets(self) -> int:
        """How many tokens it predicts over the whole corpus."""

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """One training batch, drawn with ``generator``."""

    def chunks(self, size: int = ..., *, ordered: bool = True) -> Iterator[Batch]:
        """The whole corpus in batches of about ``size`` (in corpus order when ``ordered``)."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Where its draws stand, for a resumed run (empty when it keeps nothing between draws)."""

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Continue from ``state_dict()``."""


class WindowBatcher:
    """Random minibatches of (context window, next token) examples, built when drawn.

    Example ``t`` is the corpus's ``t``-th target (item order, then character order, as
    ``EncodedCorpus.windows``); its window is read from the token stream when it is drawn
    (``EncodedCorpus.windows_at``), so memory does not grow with targets x ``block_size``.
    The draws are those of a table of every window: ``batch_size`` indices from
    ``torch.randint``.
    """

    def __init__(self, corpus: EncodedCorpus, block_size: int, device: str | torch.device = "cpu"):
        self.corpus = corpus
        self.block_size = block_size
        self.device = torch.device(device)

    @property
    def num_targets(self) -> int:
        return self.corpus.tokens.numel() - 1

    def examples(self, ix: torch.Tensor) -> Batch:
        """(X (B, block_size), Y (B,)) int64 of the examples ``ix``, on the batcher's device."""
        X, Y = self.corpus.windows_at(ix + 1, self.block_size)
        return X.to(self.device), Y.to(self.device)

    @property
    def X(self) -> torch.Tensor:
        """(N, block_size) every context window, in corpus order (built each time: small corpora)."""
        return self.corpus.windows(self.block_size)[0].to(self.device)

    @property
    def Y(self) -> torch.Tensor:
        """(N,) the token after each window."""
        return self.corpus.tokens[1:].long().to(self.device)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """``batch_size`` examples drawn with replacement (0: every example, in order)."""
        if batch_size <= 0:
            X, Y = self.corpus.windows(self.block_size)
            return X.to(self.device), Y.to(self.device)
        return self.examples(torch.randint(0, self.num_targets, (batch_size,), generator=generator))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Nothing: every batch is drawn from the trainer's generator alone."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state:
            raise ValueError(f"a window batcher keeps no state, got {sorted(state)}")

    def chunks(self, size: int = 1 << 16, *, ordered: bool = True) -> Iterator[Batch]:
        """Every example in corpus order, ``size`` at a time (``ordered`` is for the signature
        of ``SequenceBatcher.chunks``: windows are always in order)."""
        for i in range(0, self.num_targets, size):
            X, Y = self.corpus.windows_range(i + 1, min(i + size, self.num_targets) + 1, self.block_size)
            yield X.to(self.device), Y.to(self.device)


BATCHINGS = ("length", "random")
POOL_BATCHES = 100  # length batching: batches cut from one sorted pool
# a pool of k items from a corpus of at least this many times k is drawn without a permutation of the corpus
BIG_CORPUS = 64
CHUNK_POSITIONS = 1 << 12  # padded positions per evaluation chunk: bounded memory; the LSTM runs fastest near this
SORT_WINDOW = 1 << 16  # chunks(ordered=False): consecutive items sorted by length together


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
        items = _distinct(n, batches * batch_size, generator)
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

    def chunks(self, size: int = CHUNK_POSITIONS, *, ordered: bool = True) -> Iterator[Batch]:
        """Every item once, about ``size`` padded positions (rows x columns) at a time.

        Args:
            size: padded positions per chunk (a chunk holds one item at least).
            ordered: items in corpus order, so the targets come out in corpus order when
                flattened row by row and filtered for ``y != -1`` (what per-item scores
                need): runs of ``size // (longest item + 1)`` items. False: the items of
                each ``SORT_WINDOW`` consecutive ones sorted by length and cut into chunks
                of about ``size`` targets, nearly without padding (for sums over the corpus).
        """
        n = len(self.corpus)
        if ordered:
            step = max(1, size // (self.corpus.max_len + 1))
            runs = (torch.arange(i, min(i + step, n)) for i in range(0, n, step))
        else:
            runs = (
                part for i in range(0, n, SORT_WINDOW) for part in self._sorted_runs(i, min(i + SORT_WINDOW, n), size)
            )
        for items in runs:
            x, y = self.corpus.sequence_batch(items)
            yield x.to(self.device), y.to(self.device)

    def _sorted_runs(self, a: int, b: int, size: int) -> list[torch.Tensor]:
        """Items ``a .. b-1`` sorted by length, cut where the targets so far pass a multiple of ``size``."""
        lengths, order = torch.sort(self.corpus.lengths[a:b], stable=True)
        targets = torch.cumsum(lengths + 1, 0)  # sorted: a run's padded positions are about its targets
        total = int(targets[-1])
        cuts = torch.searchsorted(targets, torch.arange(size, max(total, size), size), right=True)
        bounds = torch.unique(torch.cat([torch.tensor([0]), cuts, torch.tensor([b - a])])).tolist()
        return [order[lo:hi] + a for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]


def _distinct(n: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """(k,) distinct items of ``0 .. n-1`` in a uniformly random order (k <= n).

    The first ``k`` of a random permutation; for a corpus of at least ``BIG_CORPUS * k``
    items, the first ``k`` distinct values of uniform draws instead (the same distribution,
    another random stream): the cost of a pool then does not grow with the corpus.
    """
    if n < BIG_CORPUS * k:
        return torch.randperm(n, generator=generator)[:k]
    picked = torch.zeros(0, dtype=torch.int64)
    while picked.numel() < k:
        drawn = torch.cat([picked, torch.randint(0, n, (k + k // 8 + 16,), generator=generator)])
        values, order = torch.sort(drawn, stable=True)
        first = torch.ones(drawn.numel(), dtype=torch.bool)
        first[1:] = values[1:] != values[:-1]
        picked = drawn[order[first].sort().values]  # each value's first draw, in draw order
    return picked[:k]
