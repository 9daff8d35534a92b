"""The lectures' quantities computed from a corpus or a model in a learner's hands, not from a
saved run: the bigram count matrix N and probability matrix P, the NLL of a split under P or
under a model, and the shapes a batch takes through a model's layers.

Token 0 is the boundary (an item's start and end); tokens ``1..`` are the characters in sorted
order (``Vocab``), so for lower-case names row and column ``i`` of N are ``vocab.labels()[i]``.

Example:
    >>> from makemore import api
    >>> data = api.load_data(api.DataConfig())
    >>> N = api.count_bigrams(data)  # (V, V) counts of the training split
    >>> P = api.bigram_probs(N, k=1.0)  # add-one smoothing, rows sum to 1
    >>> round(api.bigram_nll(P, api.count_bigrams(data, "dev")), 4)  # doctest: +SKIP
"""

from __future__ import annotations

import torch
from torch import nn

from makemore import validation
from makemore.data.datasets import SPLITS, Data
from makemore.errors import MakemoreError
from makemore.evaluate.diagnostics import count_pairs
from makemore.evaluate.scoring import evaluate_nll
from makemore.models import LanguageModel


def _split(split: str) -> str:
    if split not in SPLITS:
        validation.fail(None, "split", f"unknown split {split!r} (choose from: {', '.join(SPLITS)})")
    return split


def count_bigrams(data: Data, split: str = "train") -> torch.Tensor:
    """The lecture's N: how often each token follows each other in one split.

    Args:
        data: a loaded corpus (``load_data``).
        split: "train", "dev" or "test".
    Returns:
        (V, V) int64 counts; ``N[i, j]``: token j read after token i (row 0: the first
        characters of items, column 0: their last ones).
    """
    X, Y = data.corpus(_split(split)).windows(1)  # (n, 1), (n,)
    return count_pairs(X[:, 0].long(), Y.long(), data.vocab.size)


def bigram_probs(counts: torch.Tensor, k: float = 1.0) -> torch.Tensor:
    """The lecture's P: each row of counts smoothed with ``k`` and normalised, as the ngram model
    of order 2 with add-k smoothing computes it (a row never seen is uniform, also with k = 0).

    Args:
        counts: (V, V) counts (``count_bigrams``).
        k: pseudo count added to every cell (0: maximum likelihood).
    Returns:
        (V, V) float32 probabilities, each row summing to 1.
    """
    if not isinstance(counts, torch.Tensor) or counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise MakemoreError(f"counts: expected a square (V, V) tensor, got {getattr(counts, 'shape', counts)!r}")
    validation.number(None, "k", least=0, value=k)
    smoothed = counts.double() + k  # (V, V)
    totals = smoothed.sum(1, keepdim=True)  # (V, 1)
    V = counts.shape[1]
    probs = torch.where(totals > 0, smoothed / totals.clamp_min(1e-300), torch.full_like(smoothed, 1.0 / V))
    return probs.float()


def bigram_nll(probs: torch.Tensor, counts: torch.Tensor) -> float:
    """Mean negative log-likelihood per character of the pairs counted in ``counts`` under ``probs``:
    ``-(N * log P).sum() / N.sum()``, the loss of every pair of a split at once.

    Args:
        probs: (V, V) rows of next-token probabilities (``bigram_probs``).
        counts: (V, V) counts of the pairs to score (``count_bigrams`` of a split).
    Returns:
        nats per character (``inf`` when a counted pair has probability 0).
    """
    if probs.shape != counts.shape:
        raise MakemoreError(f"probs {tuple(probs.shape)} and counts {tuple(counts.shape)} differ in shape")
    total = int(counts.sum())
    if total == 0:
        raise MakemoreError("counts: no pairs to score")
    seen = counts > 0  # 0 * log 0 counts for nothing
    log_likelihood = (counts[seen].double() * probs[seen].double().log()).sum()
    return float(-log_likelihood / total)


def split_nll(model: LanguageModel, data: Data, split: str = "dev") -> float:
    """Mean NLL per character of a model (trained or not, saved or not) on one split, as
    ``evaluate`` reports for a run; the model is left in the train/eval mode it was in.

    Args:
        model: a model built for ``data``'s vocabulary (``new_model``).
        data: the corpus.
        split: "train", "dev" or "test".
    """
    was_training = model.training
    try:
        return evaluate_nll(model, model.batcher(data.corpus(_split(split))))
    finally:
        model.train(was_training)


def layer_shapes(model: nn.Module, x: torch.Tensor) -> list[tuple[str, str, tuple[int, ...]]]:
    """The shape of each layer's output as a batch goes through the model (lecture 5's
    hierarchy), in the order the layers run; nothing is trained or changed.

    Args:
        model: any module whose ``forward(x)`` runs.
        x: a batch of inputs, e.g. ``(B, T)`` token ids.
    Returns:
        (name, class name, output shape) of every leaf module (one without children), once per
        call, e.g. ``("layers.0", "FlattenConsecutive", (4, 4, 48))``.
    """
    shapes: list[tuple[str, str, tuple[int, ...]]] = []

    def hook(name: str):
        def record(module, inputs, output) -> None:
            out = output[0] if isinstance(output, (tuple, list)) else output
            if isinstance(out, torch.Tensor):
                shapes.append((name, type(module).__name__, tuple(out.shape)))

        return record

    leaves = [(name, m) for name, m in model.named_modules() if name and not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook(name)) for name, m in leaves]
    was_training = model.training
    try:
        model.eval()  # no dropout, BatchNorm's running statistics untouched
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return shapes
