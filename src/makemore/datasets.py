"""Where a run's items come from: the built-in corpora or a words file, split and encoded.

``load_data(DataConfig)`` is the one way the rest of makemore reads a corpus: it resolves
the input, reads and splits it, builds (or reuses) the vocabulary and fingerprints the file
so that a run can tell when its training file changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from makemore import validation
from makemore.config import DataConfig
from makemore.data import EncodedCorpus, Split, Vocab, parse_words, read_input_bytes, split_words
from makemore.labelled import parse_csv, parse_labelled

BUILTIN_PREFIX = "builtin:"
DEFAULT_DATASET = "names"
SPLITS = ("train", "dev", "test")


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


@dataclass
class Data:
    """A loaded corpus: items, split, vocabulary and a fingerprint of the file."""

    words: list[str]
    split: Split
    vocab: Vocab
    source: str
    sha256: str
    labels: list[str] | None = None  # the label of each item of ``words`` (a labelled corpus)

    def corpus(self, split: str) -> EncodedCorpus:
        """The encoded items of one split ("train", "dev" or "test")."""
        return EncodedCorpus.from_words(getattr(self.split, split), self.vocab, self.split.labels_of(split))

    @property
    def longest_item(self) -> int:
        return max(len(w) for w in self.words)

    def label_counts(self, split: str = "train") -> dict[str, int]:
        """How many items of ``split`` each label has, in label order (empty when unlabelled)."""
        labels = self.split.labels_of(split) or []
        counts = dict.fromkeys(self.vocab.label_names, 0)
        for label in labels:
            counts[label] += 1
        return counts


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
        return parse_csv(
            raw, item_column=data.item_column, label_column=data.label_column, source=source, max_len=data.max_item_len
        )
    if is_labelled(data):
        return parse_labelled(raw, source=source, max_len=data.max_item_len)
    return None, parse_words(raw, source=source, max_len=data.max_item_len)


def load_data(data: DataConfig, vocab: Vocab | None = None) -> Data:
    """Read, split and fingerprint the configured input.

    Args:
        data: the data config.
        vocab: use this vocabulary (a trained model's) instead of the file's own characters.
    """
    source, path = resolve_input(data)
    raw = read_input_bytes(path)
    labels, words = parse_input(raw, data, str(path))
    sha = hashlib.sha256(raw).hexdigest()
    split = split_words(words, seed=data.split_seed, dedupe=data.dedupe, labels=labels)
    return Data(words, split, vocab or Vocab.from_words(words, labels), source, sha, labels)
