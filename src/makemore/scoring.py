"""How plausible items are: per-target log-probabilities, corpus NLL, per-item scores.

Every function reads the model through its kind: its batcher gives the examples in the
layout it reads, ``read_contexts`` the context each character was predicted from.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from makemore.conditional import label_distribution
from makemore.data import EncodedCorpus, Vocab, read_input_bytes
from makemore.datasets import SPLITS, parse_input
from makemore.errors import ConfigError, MakemoreError
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


@torch.no_grad()
def nll_sum_count(model, batcher) -> tuple[float, int]:
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


def evaluate_nll(model, batcher) -> float:
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


def item_log_likelihoods(model, vocab: Vocab, items: list[str], labels: list[str] | None = None) -> torch.Tensor:
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


def joint_log_likelihoods(model, vocab: Vocab, items: list[str]) -> torch.Tensor:
    """(N, L) log P(item | label) for every item and every label of ``vocab``."""
    L = len(vocab.label_names)
    if not L:
        raise ConfigError("label", "this model was trained without labels (train with --labelled)")
    repeated = [item for item in items for _ in range(L)]
    return item_log_likelihoods(model, vocab, repeated, list(vocab.label_names) * len(items)).view(len(items), L)


def item_nlls(model, vocab: Vocab, items: list[str], label_probs: torch.Tensor | None = None) -> torch.Tensor:
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


def classify(model, vocab: Vocab, counts: dict[str, int], words: list[str]) -> list[Classification]:
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


def evaluate(run: Run, splits=SPLITS) -> dict[str, float]:
    """Mean NLL per character on the run's train/dev/test splits (re-read from its input)."""
    data = training_data(run)
    return {name: evaluate_nll(run.model, run.model.batcher(data.corpus(name))) for name in splits}


FILE_CHUNK_ITEMS = 4096  # items checked and scored together: bounds the memory a large file needs
SHOWN_SKIPPED = 3  # skipped items named in the note


@dataclass
class FileEval:
    """A model's NLL on a list of items (a held-out file), with what it could not score."""

    source: str  # the file, or "<items>"
    items: int  # items scored
    targets: int  # predictions scored: every character of those items plus one end each
    nll: float  # mean negative log-likelihood per target, in nats (as training reports it)
    skipped: list[str]  # items not scored, in order: characters the model never saw, or too long
    unseen: str  # the characters of skipped items that the model never saw, sorted
    too_long: int  # skipped items longer than the model can read
    note: str  # one line: how many were skipped, why, and the first few ("" when none)
    scores: list[tuple[str, float]]  # (item, mean NLL per character) of each scored item, when asked

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll)

    @property
    def bits_per_char(self) -> float:
        return self.nll / math.log(2)


def _unscorable(run: Run, items: list[str]) -> tuple[torch.Tensor, torch.Tensor, set[str]]:
    """Masks of the items holding a character the model never saw and of those (otherwise
    fine) longer than it can read, and the unseen characters; with tensor ops, no loop per item."""
    text = "\n".join(items)
    if not text:  # one empty item
        none = torch.zeros(len(items), dtype=torch.bool)
        return none, none, set()
    codepoints = torch.frombuffer(bytearray(text.encode("utf-32-le", "surrogatepass")), dtype=torch.int32).long()
    newline = codepoints == ord("\n")
    if int(newline.sum()) != len(items) - 1:
        raise MakemoreError("an item contains a line break; give one item per line")
    owner = torch.cumsum(newline, 0) - newline.long()  # the item each code point belongs to
    chars = run.vocab.chars
    if run.casefolded:  # a capital is read as its letter: unseen only when the letter is
        chars = (*chars, *(u for c in chars for u in {c.upper(), c.title()} if len(u) == 1 and u != c))
    alphabet = torch.tensor([ord(c) for c in chars], dtype=torch.int64)
    known = torch.isin(codepoints, alphabet) | newline
    unseen = torch.zeros(len(items), dtype=torch.bool)
    unseen[owner[~known]] = True
    limit = run.model_limit
    lengths = torch.bincount(owner[~newline], minlength=len(items))
    too_long = (lengths > limit) & ~unseen if limit is not None else torch.zeros_like(unseen)
    return unseen, too_long, {chr(c) for c in codepoints[~known].unique().tolist()}


def _skip_note(skipped: list[str], total: int, why: dict[str, int], unseen: str, labels: list[str], limit) -> str:
    """One line: how many items were skipped, for which reasons, and the first few."""
    if not skipped:
        return ""
    reasons = []
    if why["label"]:
        reasons.append(f"{why['label']} with labels the model was not trained on ({', '.join(map(repr, labels))})")
    if why["chars"]:
        reasons.append(f"{why['chars']} with characters the model never saw ({', '.join(map(repr, unseen))})")
    if why["long"]:
        reasons.append(f"{why['long']} longer than the model can read ({limit} characters)")
    first = ", ".join(repr(item) for item in skipped[:SHOWN_SKIPPED])
    more = ", ..." if len(skipped) > SHOWN_SKIPPED else ""
    return f"skipped {len(skipped)} of {total} items: {'; '.join(reasons)}: {first}{more}"


def _chunk_log_likelihoods(run: Run, items: list[str], labels: list[str] | None) -> torch.Tensor:
    """(N,) log-likelihood of each item: given its label, or for a model trained on labels and
    no labels given, under the mixture of the labels (their training frequencies)."""
    if labels is not None or not run.vocab.label_names:
        return item_log_likelihoods(run.model, run.vocab, items, labels)
    prior = label_distribution(run.vocab, run.label_counts)
    counts = torch.tensor([len(item) + 1 for item in items], dtype=torch.float64)
    return -item_nlls(run.model, run.vocab, items, prior) * counts


def evaluate_items(
    run: Run, items: list[str], *, labels: list[str] | None = None, per_item: bool = False, source: str = "<items>"
) -> FileEval:
    """Corpus NLL per character of ``items`` (each scored on its own, as the dev split is).

    Items the model cannot score (a character it never saw, or longer than it can read, or a
    label it was not trained on) are counted, named in ``FileEval.note`` and skipped. Scored
    ``FILE_CHUNK_ITEMS`` at a time.

    Args:
        run: the trained run.
        items: the items (no line breaks).
        labels: for a model trained on labels, each item's label (None: each item is scored
            under the mixture of the labels, weighted as in training).
        per_item: also give each scored item's mean NLL per character (``FileEval.scores``).
        source: what the items are, for messages.
    Raises:
        MakemoreError: no item can be scored, labels for a model trained without them, or an
            item holds a line break.
    """
    if labels is not None and not run.vocab.label_names:
        raise MakemoreError(f"{source}: has labels, but the model was trained without them")
    total, targets, scored, skipped, unseen, scores = 0.0, 0, 0, [], set(), []
    why, known_labels, unknown_labels = {"label": 0, "chars": 0, "long": 0}, set(run.vocab.label_names), set()
    for start in range(0, len(items), FILE_CHUNK_ITEMS):
        chunk = items[start : start + FILE_CHUNK_ITEMS]
        chunk_labels = None if labels is None else labels[start : start + FILE_CHUNK_ITEMS]
        bad_chars, bad_length, chars = _unscorable(run, chunk)
        bad_label = torch.tensor([label not in known_labels for label in chunk_labels or ()], dtype=torch.bool)
        if chunk_labels is not None:  # a label it never saw comes first: the characters are not scored
            unknown_labels |= set(chunk_labels) - known_labels
            bad_chars, bad_length = bad_chars & ~bad_label, bad_length & ~bad_label
        else:
            bad_label = torch.zeros_like(bad_chars)
        for reason, mask in (("label", bad_label), ("chars", bad_chars), ("long", bad_length)):
            why[reason] += int(mask.sum())
        unseen |= chars
        bad = (bad_label | bad_chars | bad_length).tolist()
        skipped += [item for item, b in zip(chunk, bad) if b]
        kept = [item for item, b in zip(chunk, bad) if not b]
        if not kept:
            continue
        kept_labels = None if chunk_labels is None else [label for label, b in zip(chunk_labels, bad) if not b]
        read = [run.fold(item) for item in kept] if run.casefolded else kept  # as score reads them
        loglik = _chunk_log_likelihoods(run, read, kept_labels)  # (N,)
        counts = torch.tensor([len(item) + 1 for item in kept], dtype=torch.float64)  # characters and the end
        total, targets, scored = total + float(loglik.sum()), targets + int(counts.sum()), scored + len(kept)
        if per_item:
            scores += zip(kept, (-loglik / counts).tolist())
    unseen_text = "".join(sorted(unseen))
    note = _skip_note(skipped, len(items), why, unseen_text, sorted(unknown_labels), run.model_limit)
    if not scored:
        raise MakemoreError(f"{source}: no item can be scored ({note or 'no items'})")
    return FileEval(source, scored, targets, -total / targets, skipped, unseen_text, why["long"], note, scores)


def evaluate_file(run: Run, path: str | Path, *, per_item: bool = False) -> FileEval:
    """``evaluate_items`` of a file read the way the run's training file was read: one item
    per line, ``label<TAB>item`` lines for a model trained on labels, or the same CSV columns.

    Raises:
        MakemoreError: the file is missing, not a regular file, not UTF-8 (naming file:line),
            holds no items, or none of its items can be scored.
    """
    # a length the model cannot read is skipped, not fatal
    config = dataclasses.replace(
        run.config.data, input=str(path), max_item_len=sys.maxsize, labelled=bool(run.vocab.label_names)
    )
    labels, items = parse_input(read_input_bytes(path), config, str(path))
    return evaluate_items(run, items, labels=labels, per_item=per_item, source=str(path))
