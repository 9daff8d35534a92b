"""The lecture split: which items are train, dev and test (or, with your own files, ``file_bounds``).

``random.seed(42); random.shuffle(words)``, then 80/10/10 with ``n1 = int(0.8 n)`` and
``n2 = int(0.9 n)``. ``random.shuffle`` draws the same swaps for any list of the same length,
so ``split_order`` shuffles the indices ``0 .. n-1`` and the permutation is applied with
tensors (``datasets.load_data``) or to a list (``split_words``).
"""

from __future__ import annotations

import array
import random
from dataclasses import dataclass

import torch

SPLITS = ("train", "dev", "test")


def split_order(n: int, seed: int = 42) -> torch.Tensor:
    """(n,) int64: the order ``random.Random(seed).shuffle`` puts ``n`` items in.

    The indices are shuffled as an array of machine integers: faster than a list of Python
    ints (no object per item kept) and read by a tensor without converting each.
    """
    if n == 0:
        return torch.zeros(0, dtype=torch.int64)
    order = array.array("q", range(n))
    random.Random(seed).shuffle(order)
    return torch.frombuffer(order, dtype=torch.int64).clone()


def split_bounds(n: int) -> dict[str, tuple[int, int]]:
    """Split name -> (first, end) positions of its items in the shuffled order of ``n`` items."""
    n1, n2 = int(0.8 * n), int(0.9 * n)
    return {"train": (0, n1), "dev": (n1, n2), "test": (n2, n)}


@dataclass
class Split:
    """The items of the train, dev and test splits (and their labels, for a labelled corpus)."""

    train: list[str]
    dev: list[str]
    test: list[str]
    labels: dict[str, list[str]] | None = None  # split name -> label of each item

    def labels_of(self, split: str) -> list[str] | None:
        return None if self.labels is None else self.labels[split]


def split_words(words: list[str], *, seed: int = 42, dedupe: bool = False, labels: list[str] | None = None) -> Split:
    """Deterministic 80/10/10 split of a list (see the module).

    Labelled items are shuffled by the same permutation.

    Args:
        words: items in file order.
        seed: shuffling seed.
        dedupe: drop repeated items (keeping the first; for labelled items, repeated
            (label, item) pairs) before splitting.
        labels: the label of each item, or None.
    """
    pairs = list(zip(labels, words)) if labels is not None else [(None, w) for w in words]
    if dedupe:
        pairs = list(dict.fromkeys(pairs))
    order = split_order(len(pairs), seed).tolist()
    shuffled = [pairs[i] for i in order]
    parts = {name: shuffled[a:b] for name, (a, b) in split_bounds(len(shuffled)).items()}
    items = {name: [item for _, item in part] for name, part in parts.items()}
    if labels is None:
        return Split(**items)
    return Split(**items, labels={name: [label for label, _ in part] for name, part in parts.items()})


def file_bounds(train: int, dev: int, test: int) -> dict[str, tuple[int, int]]:
    """Split name -> (first, end) positions of its items when each split is a file of its own,
    read one after another (your own splits; ``test`` is 0 without a test file).

    Args:
        train, dev, test: the items of each file.
    """
    return {"train": (0, train), "dev": (train, train + dev), "test": (train + dev, train + dev + test)}
