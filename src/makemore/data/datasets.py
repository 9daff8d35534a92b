"""Where a run's items come from: the built-in corpora or a words file, split and encoded.

``load_data(DataConfig)`` is the one way the rest of makemore reads a corpus: it resolves
the input, reads and encodes it (a plain words file with tensor ops, ``wordsfile``), builds
(or reuses) the vocabulary, fingerprints the file so that a run can tell when its training
file changed, and splits it when a split is first asked for.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch

from makemore import validation
from makemore.config import DataConfig
from makemore.data.corpus import EncodedCorpus, Vocab, parse_lines, parse_words, read_input_bytes
from makemore.data.itemsets import KnownItems, first_occurrences
from makemore.data.labelled import parse_csv, parse_labelled
from makemore.data.splits import SPLITS, Split, split_bounds, split_order
from makemore.errors import MakemoreError

BUILTIN_PREFIX = "builtin:"
DEFAULT_DATASET = "names"


def builtin_datasets() -> dict[str, dict]:
    """Built-in corpora: name -> {file, description, source, items, ...}."""
    return json.loads(resources.files("makemore").joinpath("data/datasets.json").read_text(encoding="utf-8"))


def builtin_path(name: str) -> Path:
    """The package-data file of the built-in corpus ``name``."""
    datasets = builtin_datasets()
    if name not in datasets:
        validation.fail(DataConfig, "input", f"unknown built-in corpus {name!r} (choose from: {', '.join(datasets)})")
    return Path(str(resources.files("makemore").joinpath("data", datasets[name]["file"])))


def resolve_input(data: DataConfig) -> tuple[str, Path]:
    """(label recorded in checkpoints, path to read) of the configured input."""
    if not data.input or data.input.startswith(BUILTIN_PREFIX):
        name = data.input[len(BUILTIN_PREFIX) :] if data.input else DEFAULT_DATASET
        return BUILTIN_PREFIX + name, builtin_path(name)
    path = Path(data.input).expanduser()
    return str(path.resolve()), path


@dataclass(eq=False)
class Data:
    """A loaded corpus: every item of the file encoded once, the split, the vocabulary and a
    fingerprint of the file.

    The items are one ``EncodedCorpus`` in file order (``items``) and each split is an index
    tensor into it (``order``: the kept items, shuffled; computed when first needed), so a
    corpus of millions of items holds no Python object per item. The lists of strings
    (``words``, ``labels``, ``split``) are decoded when asked for (the API, small corpora);
    training, evaluation and sampling never ask.
    """

    items: EncodedCorpus  # every item of the file, in file order, encoded with ``items_vocab``
    vocab: Vocab
    source: str
    sha256: str
    seed: int = 42  # the split's shuffling seed
    dedupe: bool = False  # the split drops repeated items (keeping the first)
    items_vocab: Vocab | None = None  # ``items``' vocabulary when ``vocab`` lacks a character of the file
    vocab_error: MakemoreError | None = None  # why ``vocab`` cannot encode the file (raised by ``corpus``)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.items_vocab = self.items_vocab or self.vocab

    def _cached(self, key: str, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def order(self) -> torch.Tensor:
        """(k,) int64 the kept items (all, or the first of each repeat), in split order."""

        def make() -> torch.Tensor:
            kept = first_occurrences(self.items) if self.dedupe else torch.arange(len(self.items))
            return kept[split_order(kept.numel(), self.seed)]

        return self._cached("order", make)

    def split_items(self, split: str) -> torch.Tensor:
        """(n,) int64 the indices in ``items`` of one split's items, in split order."""
        a, b = split_bounds(self.order.numel())[split]
        return self.order[a:b]

    @property
    def split_sizes(self) -> tuple[int, int, int]:
        return tuple(self.split_items(name).numel() for name in SPLITS)

    def corpus(self, split: str) -> EncodedCorpus:
        """The encoded items of one split ("train", "dev" or "test"), made once.

        Raises:
            MakemoreError: ``vocab`` (a trained model's) lacks a character of the file.
        """
        if self.vocab_error is not None:
            raise self.vocab_error
        return self._cached(split, lambda: self.items.subset(self.split_items(split)))

    def known_items(self) -> KnownItems:
        """The file's items for ``new_only`` and the new/known marks (``itemsets.KnownItems``)."""
        return KnownItems(self.items, self.items_vocab)

    @property
    def num_items(self) -> int:
        """Items in the file (repeats included)."""
        return len(self.items)

    @property
    def longest_item(self) -> int:
        return self.items.max_len

    @property
    def words(self) -> list[str]:
        """Every item of the file, in file order, as strings."""
        return self._cached("words", lambda: self.items.decode(self.items_vocab))

    @property
    def labels(self) -> list[str] | None:
        """The label of each item of ``words`` (a labelled corpus), else None."""
        return self._label_names(self.items.start_tokens)

    def _label_names(self, start_tokens: torch.Tensor | None) -> list[str] | None:
        if start_tokens is None:
            return None
        names = self.items_vocab.label_names
        first = self.items_vocab.num_chars
        return [names[t - first] for t in start_tokens.tolist()]

    @property
    def split(self) -> Split:
        """The items of each split as strings (and their labels, for a labelled corpus)."""

        def make() -> Split:
            parts = {name: self.items.subset(self.split_items(name)) for name in SPLITS}
            items = {name: part.decode(self.items_vocab) for name, part in parts.items()}
            labels = {name: self._label_names(part.start_tokens) for name, part in parts.items()}
            return Split(**items, labels=None if self.items.start_tokens is None else labels)

        return self._cached("split", make)

    def label_counts(self, split: str = "train") -> dict[str, int]:
        """How many items of ``split`` each label has, in label order (empty when unlabelled)."""
        vocab = self.items_vocab
        if self.items.start_tokens is None:
            return dict.fromkeys(vocab.label_names, 0)
        tokens = self.items.start_tokens[self.split_items(split)].long() - vocab.num_chars
        counts = torch.bincount(tokens, minlength=len(vocab.label_names)).tolist()
        return dict(zip(vocab.label_names, counts))


def is_labelled(data: DataConfig) -> bool:
    """Whether the configured input is read as labelled items (asked for, or a labelled built-in)."""
    if data.labelled or data.label_column:
        return True
    source, _ = resolve_input(data)
    if source.startswith(BUILTIN_PREFIX):
        return bool(builtin_datasets()[source[len(BUILTIN_PREFIX) :]].get("labelled"))
    return False


def parse_input(raw: bytes, data: DataConfig, source: str) -> tuple[list[str] | None, list[str]]:
    """(labels or None, items) of a file's bytes, read as ``data`` says (plain, labelled, CSV)."""
    if data.item_column:
        labels, words = parse_csv(
            raw, item_column=data.item_column, label_column=data.label_column, source=source, max_len=data.max_item_len
        )
        return (None, words) if labels is None else _few_labels(labels, words, source)
    if is_labelled(data):
        return _few_labels(*parse_labelled(raw, source=source, max_len=data.max_item_len), source)
    return None, parse_words(raw, source=source, max_len=data.max_item_len)


# Each label is a token of the model's vocabulary (every family reads it like a character and
# predicts over it), so labels cost memory and time in every layer that spans the vocabulary.
# Measured on names.txt with random labels, default preset: 1,000 labels train in 0.59 GB RSS;
# 10,000 took 1.1 GB and 3x the step time after 30 steps and about 4 GB over a whole run.
MAX_LABELS = 1000


def _few_labels(labels: list[str], words: list[str], source: str) -> tuple[list[str], list[str]]:
    distinct = len(set(labels))
    if distinct > MAX_LABELS:
        raise MakemoreError(
            f"{source}: {distinct:,} distinct labels; at most {MAX_LABELS:,} (each label is a token of the model, "
            "so memory and time grow with them): group rare labels together"
        )
    return labels, words


def _encode(
    raw: bytes, data: DataConfig, source: str, vocab: Vocab | None
) -> tuple[EncodedCorpus, Vocab, Exception | None]:
    """(the items encoded with ``vocab`` or, if it lacks a character of the file, with the
    file's own vocabulary; that vocabulary; why ``vocab`` could not encode them)."""
    if not data.item_column and not is_labelled(data):  # a plain words file: read as tensors
        if data.lowercase:  # invalid UTF-8 is kept as it is, for parse_lines to name its line
            raw = raw.decode("utf-8", "surrogateescape").lower().encode("utf-8", "surrogateescape")
        lines = parse_lines(raw, source=source, max_len=data.max_item_len)
        own, encode = Vocab.from_lines(lines), lambda v: EncodedCorpus.from_lines(lines, v)
    else:
        labels, words = parse_input(raw, data, source)
        if data.lowercase:  # the items only, not their labels (an item holds no line break)
            words = "\n".join(words).lower().split("\n")
        own, encode = Vocab.from_words(words, labels), lambda v: EncodedCorpus.from_words(words, v, labels)
    if vocab is not None and vocab != own:
        try:
            return encode(vocab), vocab, None
        except MakemoreError as exc:
            return encode(own), own, exc
    return encode(own), own, None


def load_data(data: DataConfig, vocab: Vocab | None = None) -> Data:
    """Read, encode and fingerprint the configured input (the split is drawn when first used).

    Args:
        data: the data config.
        vocab: use this vocabulary (a trained model's) instead of the file's own characters.
    """
    source, path = resolve_input(data)
    raw = read_input_bytes(path)
    sha = hashlib.sha256(raw).hexdigest()
    items, items_vocab, error = _encode(raw, data, str(path), vocab)
    del raw  # the bytes are not needed once encoded
    return Data(items, vocab or items_vocab, source, sha, data.split_seed, data.dedupe, items_vocab, error)
