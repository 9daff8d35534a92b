"""How plausible items are: per-target log-probabilities, corpus NLL, per-item scores.

Every function reads the model through its kind: its batcher gives the examples in the
layout it reads, ``read_contexts`` the context each character was predicted from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from makemore.data import EncodedCorpus
from makemore.datasets import SPLITS
from makemore.errors import MakemoreError
from makemore.models import IGNORE_INDEX
from makemore.runs import Run, training_data


@torch.no_grad()
def target_log_probs(model, batcher) -> torch.Tensor:
    """Log-probability the model gives each target of the batcher's corpus, in corpus order.

    Runs in eval mode (BatchNorm uses running statistics) and restores the previous mode.
    """
    was_training = model.training
    model.eval()
    try:
        out = []
        for x, y in batcher.chunks():
            logits, _ = model(x)
            logp = F.log_softmax(logits.float(), dim=-1)  # (B, V) or (B, T, V)
            keep = y != IGNORE_INDEX
            picked = logp.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            out.append(picked[keep].cpu())
        return torch.cat(out) if out else torch.zeros(0)
    finally:
        model.train(was_training)


def evaluate_nll(model, batcher) -> float:
    """Mean negative log-likelihood per target (characters plus item ends)."""
    return float(-target_log_probs(model, batcher).double().mean())


@dataclass
class CharScore:
    context: tuple[str, ...]  # the characters the model read before ``char``: its last
    # block_size for window models (boundary-padded at the start), the whole prefix for
    # sequence models; the boundary is shown as the vocab's boundary symbol
    char: str  # the predicted character
    prob: float
    logprob: float


@dataclass
class WordScore:
    word: str
    nll: float  # mean negative log-likelihood per character (end boundary included)
    chars: list[CharScore]


def _check_words(run: Run, words: list[str]) -> None:
    for word in words:
        if not word:
            raise MakemoreError("score: cannot score an empty item")
        if "\n" in word or "\r" in word:
            raise MakemoreError(f"score: {word!r} contains a line break; give one item per argument")
    limit = run.model_limit
    too_long = [w for w in words if limit is not None and len(w) > limit]
    if too_long:
        raise MakemoreError(f"score: {too_long[0]!r} is longer than this model can read ({limit} characters)")


def score(run: Run, words: list[str]) -> list[WordScore]:
    """Mean NLL per character of each word, with the per-character detail.

    Raises:
        MakemoreError: a word is empty, holds a character the model never saw, or is longer
            than the model can read.
    """
    _check_words(run, words)
    corpus = EncodedCorpus.from_words(words, run.vocab)
    logp = target_log_probs(run.model, run.model.batcher(corpus)).double()
    labels = run.vocab.labels()
    results = []
    per_item = torch.split(logp, (corpus.lengths + 1).tolist())
    for word, word_logp, contexts in zip(words, per_item, run.model.read_contexts(corpus)):
        chars = [
            CharScore(tuple(labels[t] for t in context), char, math.exp(lp), lp)
            for context, char, lp in zip(contexts, [*word, labels[0]], word_logp.tolist())
        ]
        results.append(WordScore(word, float(-word_logp.mean()), chars))
    return results


def evaluate(run: Run, splits=SPLITS) -> dict[str, float]:
    """Mean NLL per character on the run's train/dev/test splits (re-read from its input)."""
    data = training_data(run)
    return {name: evaluate_nll(run.model, run.model.batcher(data.corpus(name))) for name in splits}
