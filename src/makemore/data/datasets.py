"""Where a run's items come from: the built-in corpora or a words file, split and encoded.

``load_data(DataConfig)`` is the one way the rest of makemore reads a corpus: it resolves
the input, reads and encodes it (a plain words file with tensor ops, ``wordsfile``), builds
(or reuses) the vocabulary, fingerprints the file so that a run can tell when its training
file changed, and splits it when a split is first asked for.

Your own splits (``DataConfig.dev_input``, ``test_input``): the training file and the given dev
(and test) files are read one after another into the same ``items``, each split being its
file's range of them; the vocabulary covers the characters of every file, so a dev character
the training file lacks can still be scored, and ``dedupe`` drops repeats of the training file
only (the dev and test files are evaluated as they were published).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch

from makemore import validation
from makemore.config import DataConfig
from makemore.data.corpus import EncodedCorpus, Lines, Vocab, parse_lines, parse_words, read_input_bytes
from makemore.data.itemsets import KnownItems, first_occurrences
from makemore.data.labelled import parse_csv, parse_labelled
from makemore.data.splits import SPLITS, Split, file_bounds, split_bounds, split_order
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
    return resolve_source(data.input)


def resolve_source(spec: str) -> tuple[str, Path]:
    """(label recorded in checkpoints, path to read) of a file named as ``--input`` names one
    (empty: the default built-in corpus)."""
    if not spec or spec.startswith(BUILTIN_PREFIX):
        name = spec[len(BUILTIN_PREFIX) :] if spec else DEFAULT_DATASET
        return BUILTIN_PREFIX + name, builtin_path(name)
    path = Path(spec).expanduser()
    return str(path.resolve()), path


@dataclass(frozen=True)
class InputFile:
    """A file a split was read from (your own splits)."""

    source: str  # as recorded: the resolved path, or builtin:NAME
    sha256: str  # of the file's bytes
    items: int  # items read from it (repeats included)


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
    files: dict[str, InputFile] = field(default_factory=dict)  # your own splits: split -> its file; else empty
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.items_vocab = self.items_vocab or self.vocab

    def _cached(self, key: str, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def own_splits(self) -> bool:
        """Whether each split is a file of its own (``dev_input``) rather than the lecture split."""
        return bool(self.files)

    @property
    def order(self) -> torch.Tensor:
        """(k,) int64 the kept items (all, or the first of each repeat), in split order."""

        def make() -> torch.Tensor:
            if self.files:
                return torch.cat([self.split_items(name) for name in SPLITS])
            kept = first_occurrences(self.items) if self.dedupe else torch.arange(len(self.items))
            return kept[split_order(kept.numel(), self.seed)]

        return self._cached("order", make)

    def split_items(self, split: str) -> torch.Tensor:
        """(n,) int64 the indices in ``items`` of one split's items, in split order (your own
        splits: file order; empty for a test split without a file)."""
        if self.files:
            return self._cached("items:" + split, lambda: self._file_items(split))
        a, b = split_bounds(self.order.numel())[split]
        return self.order[a:b]

    def _file_items(self, split: str) -> torch.Tensor:
        a, b = file_bounds(*(self.files[name].items if name in self.files else 0 for name in SPLITS))[split]
        if split == "train" and self.dedupe:  # the training file comes first: its indices are its own
            return first_occurrences(self.items.subset(torch.arange(a, b)))
        return torch.arange(a, b)

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


def _read_items(raw: bytes, data: DataConfig, source: str, labelled: bool) -> Lines | tuple[list[str] | None, list]:
    """One file's items: ``Lines`` for a plain words file (read as tensors), else (labels or None, items)."""
    if not data.item_column and not labelled:
        if data.lowercase:  # invalid UTF-8 is kept as it is, for parse_lines to name its line
            raw = raw.decode("utf-8", "surrogateescape").lower().encode("utf-8", "surrogateescape")
        return parse_lines(raw, source=source, max_len=data.max_item_len)
    labels, words = parse_input(raw, data, source)
    if data.lowercase:  # the items only, not their labels (an item holds no line break)
        words = "\n".join(words).lower().split("\n")
    return labels, words


def _joined(parts: list) -> Lines | tuple[list[str] | None, list[str]]:
    """The items of several files (``_read_items`` of each), one file after another."""
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], Lines):
        wide = any(part.text.dtype != torch.uint8 for part in parts)  # any non-ASCII file: every file as int32
        text = torch.cat([part.text.to(torch.int32) if wide else part.text for part in parts])
        return Lines(text, torch.cat([part.lengths for part in parts]))
    words = list(itertools.chain.from_iterable(part for _, part in parts))
    labels = None if parts[0][0] is None else list(itertools.chain.from_iterable(part for part, _ in parts))
    return labels, words


def _encode(
    raws: list[tuple[bytes, str]], data: DataConfig, vocab: Vocab | None
) -> tuple[EncodedCorpus, Vocab, Exception | None, list[int]]:
    """(the items of the files (bytes, source), one after another, encoded with ``vocab`` or,
    if it lacks a character of a file, with the files' own vocabulary; that vocabulary; why
    ``vocab`` could not encode them; the items of each file)."""
    labelled = is_labelled(data)
    parts = [_read_items(raw, data, source, labelled) for raw, source in raws]
    sizes = [len(part) if isinstance(part, Lines) else len(part[1]) for part in parts]
    joined = _joined(parts)
    del parts
    if isinstance(joined, Lines):
        own, encode = Vocab.from_lines(joined), lambda v: EncodedCorpus.from_lines(joined, v)
    else:
        labels, words = joined
        if labels is not None and len(raws) > 1:  # each file was checked alone; together they may hold more
            _few_labels(labels, words, ", ".join(source for _, source in raws))
        own, encode = Vocab.from_words(words, labels), lambda v: EncodedCorpus.from_words(words, v, labels)
    if vocab is not None and vocab != own:
        try:
            return encode(vocab), vocab, None, sizes
        except MakemoreError as exc:
            return encode(own), own, exc, sizes
    return encode(own), own, None, sizes


def load_data(data: DataConfig, vocab: Vocab | None = None) -> Data:
    """Read, encode and fingerprint the configured input, and the dev and test files when given
    (the lecture split is drawn when first used).

    Args:
        data: the data config.
        vocab: use this vocabulary (a trained model's) instead of the files' own characters.
    Returns:
        the Data; with ``data.dev_input``, its ``files`` name each split's file.
    """
    given = {"train": data.input, "dev": data.dev_input, "test": data.test_input}
    sources = {split: resolve_source(spec) for split, spec in given.items() if spec or split == "train"}
    raws = {split: read_input_bytes(path) for split, (_, path) in sources.items()}
    shas = {split: hashlib.sha256(raw).hexdigest() for split, raw in raws.items()}
    items, items_vocab, error, sizes = _encode([(raws[s], str(sources[s][1])) for s in raws], data, vocab)
    del raws  # the bytes are not needed once encoded
    files = {s: InputFile(sources[s][0], shas[s], n) for s, n in zip(sources, sizes)} if data.dev_input else {}
    source, sha = sources["train"][0], shas["train"]
    return Data(items, vocab or items_vocab, source, sha, data.split_seed, data.dedupe, items_vocab, error, files=files)
