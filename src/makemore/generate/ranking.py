"""Ranking and scoring sampled items: closeness to a word (edit distance) and plausibility.

``edit_distances`` runs the dynamic programme over a whole batch of items at once, one step
per character of the word (tensor ops over every item and position), so ranking a large pool
has no Python loop per item and character.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from makemore.data.corpus import Vocab
from makemore.evaluate.scoring import item_nlls

CHUNK = 65_536  # items per block of the distance computation (bounds its memory)


def _codepoint_matrix(items: list[str], width: int) -> torch.Tensor:
    """(N, width) code points of ``items``, padded with 0 (items never contain NUL)."""
    if not items or width == 0:
        return torch.zeros(len(items), width, dtype=torch.int32)
    padded = "".join(s.ljust(width, "\0") for s in items).encode("utf-32-le", "surrogatepass")
    return torch.frombuffer(bytearray(padded), dtype=torch.int32).view(len(items), width)


def _block_distances(items: list[str], word: str) -> torch.Tensor:
    lengths = torch.tensor([len(s) for s in items], dtype=torch.int64)
    width = int(lengths.max()) if items else 0
    codes = _codepoint_matrix(items, width)  # (N, W)
    j = torch.arange(width + 1)  # (W + 1,)
    before = j.expand(len(items), width + 1)  # row i - 2 of the table
    prev = before  # row i - 1: D[0][j] = j
    for i, char in enumerate(map(ord, word), start=1):
        through = torch.empty_like(prev)  # (N, W + 1): every way into D[i][j] but an insertion
        through[:, 0] = i
        cost = (codes != char).to(torch.int64)  # (N, W) substitution cost
        through[:, 1:] = torch.minimum(prev[:, 1:] + 1, prev[:, :-1] + cost)
        if i >= 2 and width >= 2:  # word[i-2:i] == reversed item[j-2:j]: one transposition
            swap = (codes[:, :-1] == char) & (codes[:, 1:] == ord(word[i - 2]))  # (N, W - 1)
            through[:, 2:] = torch.where(swap, torch.minimum(through[:, 2:], before[:, :-2] + 1), through[:, 2:])
        # insertions: D[i][j] = min over k <= j of through[k] + (j - k), a running minimum
        before, prev = prev, torch.cummin(through - j, dim=1).values + j
    return prev.gather(1, lengths.unsqueeze(1)).squeeze(1)


def edit_distances(items: list[str], word: str) -> torch.Tensor:
    """Optimal-string-alignment distance of each item to ``word``.

    The number of insertions, deletions, substitutions and swaps of two neighbouring
    characters that turn an item into ``word`` (a swap counts one edit, as a typist's slip;
    no substring is edited twice).

    Args:
        items: the strings to compare.
        word: the target.
    Returns:
        (N,) int64 distances.
    """
    blocks = [_block_distances(items[i : i + CHUNK], word) for i in range(0, len(items), CHUNK)]
    return torch.cat(blocks) if blocks else torch.zeros(0, dtype=torch.int64)


def rank_similar(
    model, vocab: Vocab, items: list[str], word: str, num: int, label_probs: torch.Tensor | None = None
) -> list[str]:
    """The ``num`` distinct items closest to ``word``, closest first.

    Closeness is the edit distance (``edit_distances``), not normalised by length: the target
    is fixed, so the number of edits is what a reader sees, and dividing by the length would
    put a longer item ahead of a shorter one needing the same edits. Ties (common: distances
    are small integers) go to the more plausible item, the lower mean NLL per character under
    ``model``, then to the string, so the order is reproducible.

    Args:
        model: the model that made the items (scores the ties).
        vocab: its vocabulary.
        items: the pool (repeats are ranked once; ``sampling`` never puts ``word`` itself in it).
        word: the target.
        num: how many to return.
        label_probs: a model trained on labels: the labels the items were drawn from (``item_nlls``).
    Returns:
        At most ``num`` items.
    """
    distinct = list(dict.fromkeys(items))
    if not distinct or num == 0:
        return []
    distance = edit_distances(distinct, word)
    if len(distinct) > num:  # only the items as close as the num-th need a score
        cut = torch.kthvalue(distance, num).values
        close = (distance <= cut).nonzero().squeeze(1)
        distinct, distance = [distinct[i] for i in close.tolist()], distance[close]
    nll = item_nlls(model, vocab, distinct, label_probs).tolist()
    order = sorted(range(len(distinct)), key=lambda i: (int(distance[i]), nll[i], distinct[i]))
    return [distinct[i] for i in order[:num]]


@dataclass
class ItemScore:
    """A generated item, how plausible the model finds it and whether it is a training item."""

    item: str
    nll: float  # mean negative log-likelihood per character, end included (as ``makemore score``, see score_items)
    known: bool | None  # in the training file (None: the training file could not be read)
    distance: int | None = None  # edit distance to the word of ``similar_to``, when one is given


def score_items(
    model,
    vocab: Vocab,
    items: list[str],
    *,
    known_items: set[str] | None = None,
    similar_to: str = "",
    label_probs: torch.Tensor | None = None,
) -> list[ItemScore]:
    """Score a batch of items together.

    The score is the model's own likelihood of the item, the number ``makemore score`` gives
    for it, not the probability of drawing it: sampling masks the end at an item's first
    position (no item is empty), masks excluded characters and reshapes the distribution
    with temperature, top-k and top-p, and renormalising for some of these but not others
    would give one item two scores. (The end's probability at the first position, the only
    mass the no-empty-item mask removes, is what the model learned of empty items: next to
    nothing, since no training item is empty.)

    Args:
        model, vocab: the model that scores them and its vocabulary.
        items: items made of the vocabulary's characters (generated ones are).
        known_items: the training file's items (None: unknown, ``known`` is None).
        similar_to: when given, each item's edit distance to it.
        label_probs: a model trained on labels: the labels the items were drawn from (``item_nlls``).
    Returns:
        One ``ItemScore`` per item, in order.
    """
    nll = item_nlls(model, vocab, items, label_probs).tolist() if items else []
    distance = edit_distances(items, similar_to).tolist() if similar_to else [None] * len(items)
    known = [None if known_items is None else item in known_items for item in items]
    return [ItemScore(*row) for row in zip(items, nll, known, distance)]
