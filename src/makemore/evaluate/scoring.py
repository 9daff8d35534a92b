"""How plausible items are: per-target log-probabilities, corpus NLL, per-item scores.

Every function reads the model through its kind: its batcher gives the examples in the
layout it reads, ``read_contexts`` the context each character was predicted from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from makemore.data.batching import Batcher
from makemore.data.corpus import EncodedCorpus, Vocab
from makemore.data.datasets import SPLITS, Data
from makemore.errors import ConfigError, MakemoreError
from makemore.generate.conditional import label_distribution
from makemore.models import IGNORE_INDEX, LanguageModel
from makemore.store.runs import Run, training_data


@torch.no_grad()
def target_log_probs(model: LanguageModel, batcher: Batcher) -> torch.Tensor:
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


@torch.no_grad()
def nll_sum_count(model: LanguageModel, batcher: Batcher) -> tuple[float, int]:
    """Summed negative log-likelihood over the batcher's corpus and the number of targets.

    Chunk by chunk, so memory is bounded by one chunk whatever the corpus size; the chunks hold
    items of about one length (``chunks(ordered=False)``: a sum needs no order, and a sequence
    model then computes next to no padding). Runs in eval mode and restores the previous mode.

    Returns:
        (sum of -log p over all targets, as a float64 sum; number of targets).
    """
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64)
    count = 0
    try:
        for x, y in batcher.chunks(ordered=False):
            logits, _ = model(x)
            logp = F.log_softmax(logits.float(), dim=-1)  # (B, V) or (B, T, V)
            keep = y != IGNORE_INDEX
            picked = logp.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            total -= picked[keep].double().sum().cpu()
            count += int(keep.sum())
        return float(total), count
    finally:
        model.train(was_training)


def evaluate_nll(model: LanguageModel, batcher: Batcher) -> float:
    """Mean negative log-likelihood per target (characters plus item ends)."""
    total, count = nll_sum_count(model, batcher)
    return total / count if count else float("nan")


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


def item_log_likelihoods(
    model: LanguageModel, vocab: Vocab, items: list[str], labels: list[str] | None = None
) -> torch.Tensor:
    """log P(item | label) of each item (every character and the end), many items at once.

    Args:
        model: any makemore model.
        vocab: its vocabulary.
        items: the items (made of the vocabulary's characters).
        labels: the label of each item, for a model trained on labels (None: unlabelled).
    Returns:
        (N,) float64 total log-probabilities.
    """
    corpus = EncodedCorpus.from_words(items, vocab, labels)
    logp = target_log_probs(model, model.batcher(corpus)).double()  # (targets,) in corpus order
    owner = torch.repeat_interleave(torch.arange(len(items)), corpus.lengths + 1)  # (targets,)
    return torch.zeros(len(items), dtype=torch.float64).index_add_(0, owner, logp)


def joint_log_likelihoods(model: LanguageModel, vocab: Vocab, items: list[str]) -> torch.Tensor:
    """(N, L) log P(item | label) for every item and every label of ``vocab``."""
    L = len(vocab.label_names)
    if not L:
        raise ConfigError("label", "this model was trained without labels (train with --labelled)")
    repeated = [item for item in items for _ in range(L)]
    return item_log_likelihoods(model, vocab, repeated, list(vocab.label_names) * len(items)).view(len(items), L)


def item_nlls(
    model: LanguageModel, vocab: Vocab, items: list[str], label_probs: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean NLL per character of each item (end boundary included), as ``score`` gives it,
    for many items at once (no per-character detail; an empty item scores its end alone).

    Args:
        model, vocab: the model and its vocabulary.
        items: the items.
        label_probs: for a model trained on labels, (L,) P(label) (``label_distribution``):
            an item is scored under the mixture sum_l P(l) P(item | l), which for a single
            label is P(item | label). Needed when ``vocab`` has labels.
    Returns:
        (N,) float64.
    """
    counts = torch.tensor([len(item) + 1 for item in items], dtype=torch.float64)  # characters and the end
    if not vocab.label_names:
        return -item_log_likelihoods(model, vocab, items) / counts
    used = (label_probs > 0).nonzero().squeeze(1)  # only the labels that can be drawn
    names = [vocab.label_names[i] for i in used.tolist()]
    repeated = [item for item in items for _ in names]
    joint = item_log_likelihoods(model, vocab, repeated, names * len(items)).view(len(items), len(names))
    return -torch.logsumexp(joint + label_probs[used].log(), dim=1) / counts


@dataclass
class Classification:
    """P(label | item) for every label, most probable first."""

    word: str
    posteriors: list[tuple[str, float]]
    nll: float  # mean NLL per character of the item under the mixture of the labels (their prior)

    @property
    def label(self) -> str:
        return self.posteriors[0][0]


def classify(model: LanguageModel, vocab: Vocab, counts: dict[str, int], words: list[str]) -> list[Classification]:
    """P(label | word) by Bayes' rule: P(word | label) from the model, P(label) from ``counts``.

    Args:
        model: a model trained on a labelled corpus.
        vocab: its vocabulary.
        counts: training items per label (the prior).
        words: the items to classify.
    Returns:
        One ``Classification`` per word, in order (the prior for a word no label can make).
    """
    prior = label_distribution(vocab, counts)  # (L,)
    joint = joint_log_likelihoods(model, vocab, words) + prior.log()  # (N, L)
    evidence = torch.logsumexp(joint, dim=1)  # (N,) log P(word)
    posterior = (joint - evidence[:, None]).exp()
    impossible = torch.isneginf(evidence)  # no label can make it (a count model without smoothing)
    posterior[impossible] = prior  # then the word tells nothing: the prior
    out = []
    for i, word in enumerate(words):
        pairs = sorted(zip(vocab.label_names, posterior[i].tolist()), key=lambda p: (-p[1], p[0]))
        out.append(Classification(word, pairs, float(-evidence[i]) / (len(word) + 1)))
    return out


def classify_run(run: Run, words: list[str]) -> list[Classification]:
    """``classify`` with a run's model and label frequencies (words checked and folded as ``score`` does)."""
    words = [run.fold(word) for word in words]
    _check_words(run, words)
    _check_vocab(run, words)
    return classify(run.model, run.vocab, run.label_counts, words)


def _check_vocab(run: Run, words: list[str]) -> None:
    """Raise naming the first word with a character the model never saw."""
    for word in words:
        run.vocab.encode(word)


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


def score(run: Run, words: list[str], label: str | None = None) -> list[WordScore]:
    """Mean NLL per character of each word, with the per-character detail.

    Args:
        run: the trained run.
        words: the items.
        label: for a model trained on labels, score the words as items of this label; None
            scores each under its most probable label (``classify``).
    Raises:
        MakemoreError: a word is empty, holds a character the model never saw, or is longer
            than the model can read; an unknown label. (A case-folded run reads them in lower case.)
    """
    words = [run.fold(word) for word in words]
    _check_words(run, words)
    labels = None
    if label is not None:
        if not run.vocab.label_names:
            raise ConfigError("label", "this model was trained without labels (train with --labelled)")
        run.vocab.label_id(label)  # an unknown label: one line before any work
        labels = [label] * len(words)
    elif run.vocab.label_names:
        _check_vocab(run, words)
        labels = [c.label for c in classify(run.model, run.vocab, run.label_counts, words)]
    corpus = EncodedCorpus.from_words(words, run.vocab, labels)
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


def evaluate(run: Run, splits=SPLITS, data: Data | None = None) -> dict[str, float | None]:
    """Mean NLL per character on the run's train/dev/test splits (None for an empty split: also
    the test split of a run trained on your own splits without a test file).

    Args:
        run: a loaded run.
        splits: the splits to evaluate.
        data: the run's data already read (``training_data``); else it is read again from its input.
    """
    data = data or training_data(run)
    corpora = {name: data.corpus(name) for name in splits}
    return {name: evaluate_nll(run.model, run.model.batcher(c)) if len(c) else None for name, c in corpora.items()}
