"""Sample quality beyond NLL: of N items a run generates, how many are unique, how many are
items of its training / dev / test splits and how many are new, how far their lengths and
characters are from the training items', and how plausible the model finds them.

Distances between distributions are total variation distances, ``0.5 * sum |p - q|``: 0 for
equal distributions, 1 for distributions with no value in common. Items are compared in bulk
by their hashes (``itemsets``), each hit checked token by token: no Python step per item.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from makemore.config import EvalConfig
from makemore.data.corpus import BOUNDARY, EncodedCorpus
from makemore.data.datasets import Data
from makemore.data.itemsets import KnownItems, equal_items, first_occurrences, item_hashes
from makemore.errors import MakemoreError
from makemore.evaluate.heldout import evaluate_items
from makemore.generate.config import SampleConfig
from makemore.generate.sampling import Sampler
from makemore.store.runs import Run, training_data

COUNT_CHUNK = 1 << 23  # tokens counted per bincount (bounds the int64 copy of a large split)


@dataclass(frozen=True)
class SampleMetrics:
    """What N generated items look like next to the run's data.

    Attributes:
        num: items generated.
        seed: the seed they were generated with (``makemore sample -n NUM --seed SEED`` prints them).
        unique: share of the items that are distinct (distinct items / num).
        in_train, in_dev, in_test: share of the items that are items of that split.
        new: share of the items in none of the splits.
        length_tv: total variation distance between the items' lengths and the training items'.
        char_tv: total variation distance between the characters of the items and those of the
            training items (each character's share of all characters; item ends not counted).
        mean_nll: nats per character (item ends included) the model gives the items, as ``eval``
            gives a split's NLL; a labelled run scores each under the mixture of its labels.
    """

    num: int
    seed: int
    unique: float
    in_train: float
    in_dev: float
    in_test: float
    new: float
    length_tv: float
    char_tv: float
    mean_nll: float

    def as_dict(self) -> dict[str, int | float]:
        """The metrics by name, as JSON can hold them (a dict of numbers)."""
        return dataclasses.asdict(self)

    def report(self) -> str:
        """The metrics as ``makemore eval --samples`` prints them: one per line, shares with 4 decimals."""
        rows = [
            ("samples", f"{self.num} generated with seed {self.seed} (temperature 1, no constraints)"),
            ("unique", f"{self.unique:.4f}"),
            ("in train", f"{self.in_train:.4f}"),
            ("in dev", f"{self.in_dev:.4f}"),
            ("in test", f"{self.in_test:.4f}"),
            ("new", f"{self.new:.4f}  (in none of the splits)"),
            ("length TV", f"{self.length_tv:.4f}  (total variation distance 0.5 * sum |p - q|, to training lengths)"),
            ("char TV", f"{self.char_tv:.4f}  (the same, to the training items' characters)"),
            ("NLL", f"{self.mean_nll:.4f}  (mean per character of the samples, item ends included, as the splits')"),
        ]
        return "\n".join(f"{name:<10} {value}" for name, value in rows)


def total_variation(p_counts: torch.Tensor, q_counts: torch.Tensor) -> float:
    """Total variation distance ``0.5 * sum |p - q|`` between two distributions given as counts.

    Args:
        p_counts, q_counts: (K,) and (M,) non-negative counts of values 0..K-1 and 0..M-1 (the
            shorter is padded with zeros), each with a positive sum.
    Returns:
        a distance from 0 (same distribution) to 1 (no value in common).
    """
    size = max(p_counts.numel(), q_counts.numel())
    p = torch.zeros(size, dtype=torch.float64)
    q = torch.zeros(size, dtype=torch.float64)
    p[: p_counts.numel()] = p_counts.double()
    q[: q_counts.numel()] = q_counts.double()
    return float(0.5 * (p / p.sum() - q / q.sum()).abs().sum())


def char_counts(corpus: EncodedCorpus, num_chars: int) -> torch.Tensor:
    """(num_chars,) how often each token id occurs as a character of ``corpus``' items (the
    boundary's count, at index 0, is zero)."""
    counts = torch.zeros(num_chars, dtype=torch.int64)
    for a in range(0, corpus.tokens.numel(), COUNT_CHUNK):
        counts += torch.bincount(corpus.tokens[a : a + COUNT_CHUNK].long(), minlength=num_chars)[:num_chars]
    counts[BOUNDARY] = 0
    return counts


def in_items(query: EncodedCorpus, hashes: torch.Tensor, known: KnownItems) -> torch.Tensor:
    """(n,) bool: whether each item of ``query`` (its ``item_hashes``: ``hashes``) is one of ``known``'s.

    A query item is compared token by token with the first known item of its hash, and only
    when that differs (a hash collision) with the other known items of that hash.
    """
    found = torch.zeros(len(query), dtype=torch.bool)
    if not len(known) or not len(query):
        return found
    lo = torch.searchsorted(known.hashes, hashes)
    hi = torch.searchsorted(known.hashes, hashes, right=True)
    hit = (hi > lo).nonzero().squeeze(1)
    found[hit] = equal_items(query, hit, known.corpus, known.order[lo[hit]])
    rest = hit[~found[hit] & (hi[hit] - lo[hit] > 1)]  # collided with the first: try the others
    if rest.numel():
        count = hi[rest] - lo[rest] - 1  # (R,) the other known items of each hash
        q = torch.repeat_interleave(rest, count)
        offsets = torch.arange(q.numel()) - torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
        at = torch.repeat_interleave(lo[rest] + 1, count) + offsets
        same = equal_items(query, q, known.corpus, known.order[at])
        found[q[same]] = True
    return found


def metrics_of(run: Run, items: list[str], *, data: Data | None = None, seed: int = 0) -> SampleMetrics:
    """The metrics of given items (``sample_metrics`` measures the items a run generates).

    Args:
        run: the trained run (its model scores the items; its vocabulary encodes them).
        items: at least one item, of the run's characters.
        data: the run's data already read (``training_data``); else it is read again.
        seed: recorded in the result as the items' seed.
    Returns:
        the ``SampleMetrics`` of ``items`` (``num`` is their count).
    Raises:
        MakemoreError: no items, a character the run never saw, or the training file cannot be read.
    """
    if not items:
        raise MakemoreError("no items to measure")
    data = data or training_data(run)
    vocab = run.vocab
    query = EncodedCorpus.from_words(items, vocab)
    n = len(query)
    hashes = item_hashes(query)
    splits = {name: data.corpus(name) for name in ("train", "dev", "test")}
    inside = {name: in_items(query, hashes, KnownItems(corpus, vocab)) for name, corpus in splits.items()}
    train = splits["train"]
    return SampleMetrics(
        num=n,
        seed=seed,
        unique=first_occurrences(query, with_labels=False).numel() / n,
        in_train=float(inside["train"].sum()) / n,
        in_dev=float(inside["dev"].sum()) / n,
        in_test=float(inside["test"].sum()) / n,
        new=float((~(inside["train"] | inside["dev"] | inside["test"])).sum()) / n,
        length_tv=total_variation(torch.bincount(query.lengths), torch.bincount(train.lengths)),
        char_tv=total_variation(char_counts(query, vocab.num_chars), char_counts(train, vocab.num_chars)),
        mean_nll=evaluate_items(run, items, source="the samples").nll,
    )


def sample_metrics(run: Run, num: int = 1000, seed: int = 0, *, data: Data | None = None) -> SampleMetrics:
    """Generate ``num`` items and measure them (``metrics_of``).

    The items are those ``makemore sample RUN -n NUM --seed SEED`` prints: the run's default
    sampling (temperature 1, no constraints, labels drawn as often as in training), from the
    one ``Sampler``; the same seed gives the same items and the same metrics.

    Args:
        run: the trained run.
        num: items to generate, 1 to 1,000,000 (``EvalConfig.samples``).
        seed: their seed, 0 to 2**64 - 1 (``EvalConfig.seed``).
        data: the run's data already read (``training_data``); else it is read again.
    Raises:
        ConfigError: ``num`` or ``seed`` out of range.
        MakemoreError: the training file cannot be read (it is needed for the shares and distances).
    """
    config = EvalConfig(samples=num, seed=seed)
    data = data or training_data(run)  # before generating: a missing file fails at once
    items = Sampler.of(run, SampleConfig(num=config.samples, seed=config.seed)).all()
    return metrics_of(run, items, data=data, seed=config.seed)
