"""Held-out items scored as the dev split is: ``evaluate_items`` and ``evaluate_file``.

Items the model cannot score (a character it never saw, longer than it can read, a label it
was not trained on) are counted, named and skipped, with tensor ops over chunks of
``FILE_CHUNK_ITEMS`` items; a case-folded run reads capitals as their letters.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from makemore.data.corpus import read_input_bytes
from makemore.data.datasets import parse_input
from makemore.errors import MakemoreError
from makemore.evaluate.scoring import item_log_likelihoods, item_nlls
from makemore.generate.conditional import label_distribution
from makemore.store.runs import Run

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
