"""Data layer: reading word files, the vocabulary, splits and tensor examples.

A corpus is held in memory as one flat tensor of token ids with a boundary token (0)
before the first item, between items and after the last one::

    0 e m m a 0 o l i v i a 0

From it, context-window examples (``windows``) and padded per-item batches
(``sequence_batch``) are built with tensor ops only.

longer than 400 lines for now: EncodedCorpus with its shard/subset views; to be split with the big-corpus work.
"""

from __future__ import annotations

import codecs
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from makemore.errors import ConfigError, MakemoreError

DEFAULT_MAX_ITEM_LEN = 256
BOUNDARY = 0
# Shown for the boundary token in tables and plots; the first one not in the alphabet is used.
# "¶" comes before "␃" because matplotlib's default font (DejaVu Sans) has no glyph for "␃".
_BOUNDARY_DISPLAY_CANDIDATES = (".", "¶", "␃", "<END>")
_VISIBLE_SPACE = "␣"


def read_words(path: str | Path, *, max_len: int = DEFAULT_MAX_ITEM_LEN) -> list[str]:
    """Read one item per line from a UTF-8 text file.

    A UTF-8 byte-order mark is ignored, CR line ends and trailing whitespace are stripped
    and blank lines are dropped.

    Args:
        path: the words file.
        max_len: longest item accepted, in characters.
    Returns:
        The items in file order.
    Raises:
        MakemoreError: naming the file (and line) for a missing file, a directory, invalid
            UTF-8, NUL bytes, no items, or an item longer than ``max_len``.
    """
    return parse_words(read_input_bytes(path), source=str(path), max_len=max_len)


def read_input_bytes(path: str | Path) -> bytes:
    """The bytes of an input file.

    Raises:
        MakemoreError: naming the file when it is missing, a directory, not a regular file
            (a FIFO or a device would block or never end) or unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise MakemoreError(f"{path}: no such file")
    if path.is_dir():
        raise MakemoreError(f"{path}: is a directory, expected a text file with one item per line")
    if not path.is_file():
        raise MakemoreError(f"{path}: not a regular file, expected a text file with one item per line")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MakemoreError(f"{path}: cannot read ({exc.strerror})") from None


def parse_words(raw: bytes, *, source: str = "<input>", max_len: int = DEFAULT_MAX_ITEM_LEN) -> list[str]:
    """Parse the bytes of a words file (see ``read_words``)."""
    text = decode_text(raw, source)
    words = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        item = line.rstrip()
        if not item:
            continue
        check_item_length(item, max_len, source, lineno)
        words.append(item)
    if not words:
        raise MakemoreError(f"{source}: contains no items (empty or blank lines only)")
    return words


def check_item_length(item: str, max_len: int, source: str, lineno: int) -> None:
    if len(item) > max_len:
        raise ConfigError(
            None,
            f"{source}:{lineno}: item is {len(item)} characters long, more than max_item_len ({max_len})",
            related=("max_item_len",),
        )


def decode_text(raw: bytes, source: str) -> str:
    """The text of a UTF-8 file's bytes (a byte-order mark dropped).

    Raises:
        MakemoreError: naming ``source`` and the line of a NUL byte or invalid UTF-8.
    """
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise MakemoreError(f"{source}:{line}: contains a NUL byte (is this a binary or UTF-16 file?)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise MakemoreError(f"{source}:{line}: invalid UTF-8 (byte 0x{raw[exc.start]:02x})") from None
    return text


@dataclass(frozen=True)
class Vocab:
    """Sorted characters of the data plus one boundary token, plus one token per label.

    The boundary token has id 0 and is not a character, so it can never collide with data
    (a corpus containing '.', spaces or '-' round-trips exactly). Character ``chars[i]`` has
    id ``i + 1``, which gives the lectures' layout for a-z. A labelled corpus adds one
    start-of-item token per label after the characters (``label_id``): an item of label L is
    read as ``<L> c1 c2 ... 0`` instead of ``0 c1 c2 ... 0``; label tokens are never targets.
    """

    chars: tuple[str, ...]
    label_names: tuple[str, ...] = ()

    def __post_init__(self):
        if list(self.chars) != sorted(set(self.chars)):
            raise ValueError("Vocab.chars must be sorted and unique")
        if any(len(c) != 1 for c in self.chars):
            raise ValueError("Vocab.chars must be single characters")
        if list(self.label_names) != sorted(set(self.label_names)) or not all(self.label_names):
            raise ValueError("Vocab.label_names must be sorted, unique and not empty")

    @classmethod
    def from_words(cls, words: list[str], labels: list[str] | None = None) -> Vocab:
        return cls(tuple(sorted(set("".join(words)))), tuple(sorted(set(labels or ()))))

    @property
    def size(self) -> int:
        """Number of token ids: the boundary, the characters and the label tokens."""
        return len(self.chars) + 1 + len(self.label_names)

    @property
    def num_chars(self) -> int:
        """Ids ``0 .. num_chars - 1`` are the boundary and the characters (what is generated)."""
        return len(self.chars) + 1

    def label_id(self, label: str) -> int:
        """The start token of items labelled ``label``.

        Raises:
            MakemoreError: the vocabulary has no such label (naming the known ones).
        """
        try:
            return self.num_chars + self.label_names.index(label)
        except ValueError:
            known = ", ".join(self.label_names) if self.label_names else "none: the model was trained without labels"
            raise MakemoreError(f"unknown label {label!r} (labels: {known})") from None

    def label_ids(self, labels: list[str]) -> torch.Tensor:
        """(n,) start tokens of ``labels`` (see ``label_id``)."""
        index = {name: self.num_chars + i for i, name in enumerate(self.label_names)}
        try:
            return torch.tensor([index[label] for label in labels], dtype=torch.int64)
        except KeyError as exc:
            self.label_id(exc.args[0])  # raises, naming the label
            raise  # pragma: no cover

    def __len__(self) -> int:
        return self.size

    @property
    def boundary_symbol(self) -> str:
        """How the boundary token is shown to people (never used for encoding)."""
        for symbol in _BOUNDARY_DISPLAY_CANDIDATES:
            if symbol not in self.chars:
                return symbol
        return "<END>"  # pragma: no cover - a multi-character symbol can never be a char

    def labels(self) -> list[str]:
        """Display string of every token id (a label token as ``<label>``)."""
        return [self.boundary_symbol, *self.chars, *(f"<{name}>" for name in self.label_names)]

    def display_labels(self) -> list[str]:
        """Like ``labels`` but with whitespace and control characters made visible.

        A space is shown as "␣" (when that is not itself a data character); other
        whitespace and control characters as escapes such as "\\t". For tables and plots.
        """
        out = [self.boundary_symbol]
        for c in self.chars:
            if c == " ":
                out.append(_VISIBLE_SPACE if _VISIBLE_SPACE not in self.chars else "\\x20")
            elif c.isspace() or not c.isprintable():
                out.append(c.encode("unicode_escape").decode("ascii"))
            else:
                out.append(c)
        return out + [f"<{name}>" for name in self.label_names]

    def _lookup(self) -> torch.Tensor:
        return torch.tensor([ord(c) for c in self.chars], dtype=torch.int64)

    def encode(self, word: str) -> torch.Tensor:
        """Ids of the characters of one item (no boundary tokens)."""
        return self.encode_codepoints(_codepoints(word), word)

    def encode_codepoints(self, codepoints: torch.Tensor, text: str) -> torch.Tensor:
        table = self._lookup()
        pos = torch.searchsorted(table, codepoints).clamp(max=max(len(table) - 1, 0))
        known = table[pos] == codepoints if len(table) else torch.zeros_like(codepoints, dtype=torch.bool)
        if not bool(known.all()):
            bad = chr(int(codepoints[~known][0]))
            raise MakemoreError(
                f"character {bad!r} (U+{ord(bad):04X}) in {text[:40]!r} is not in the model's vocabulary"
            )
        return pos + 1

    def decode(self, ids) -> str:
        """Characters of the given ids; boundary tokens are skipped."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        return "".join(self.chars[i - 1] for i in ids if i != BOUNDARY)

    def to_json(self) -> dict:
        return {"chars": "".join(self.chars), "boundary_id": BOUNDARY, "labels": list(self.label_names)}

    @classmethod
    def from_json(cls, data: dict) -> Vocab:
        return cls(tuple(data["chars"]), tuple(data.get("labels", ())))


def _codepoints(text: str) -> torch.Tensor:
    data = bytearray(text.encode("utf-32-le", "surrogatepass"))
    if not data:
        return torch.zeros(0, dtype=torch.int64)
    return torch.frombuffer(data, dtype=torch.int32).to(torch.int64)


@dataclass
class EncodedCorpus:
    """Items as one flat tensor ``0 w1 0 w2 0 ... wn 0`` plus boundary positions.

    Attributes:
        tokens: (N,) int64 flat token stream.
        starts: (n_items,) position of the boundary token *before* each item.
        lengths: (n_items,) characters in each item.
        start_tokens: (n_items,) the token each item is read after: its label's token in a
            labelled corpus, else None (the boundary). The end target stays the boundary.
    """

    tokens: torch.Tensor
    starts: torch.Tensor
    lengths: torch.Tensor
    start_tokens: torch.Tensor | None = None

    @classmethod
    def from_words(cls, words: list[str], vocab: Vocab, labels: list[str] | None = None) -> EncodedCorpus:
        """Encode ``words`` (and, for a labelled corpus, each item's label) with ``vocab``."""
        start_tokens = vocab.label_ids(labels) if labels is not None else None
        if not words:
            return cls(
                torch.zeros(1, dtype=torch.int64),
                torch.zeros(0, dtype=torch.int64),
                torch.zeros(0, dtype=torch.int64),
                start_tokens,
            )
        text = "\n".join(words)
        codepoints = _codepoints(text)
        newline = codepoints == ord("\n")
        ids = torch.zeros_like(codepoints)
        try:
            ids[~newline] = vocab.encode_codepoints(codepoints[~newline], text)
        except MakemoreError:
            vocab.encode(next(w for w in words if not set(w) <= set(vocab.chars)))  # names the item
            raise
        tokens = torch.cat([ids.new_zeros(1), ids, ids.new_zeros(1)])
        boundaries = torch.nonzero(tokens == BOUNDARY).squeeze(1)
        starts = boundaries[:-1]
        lengths = boundaries[1:] - starts - 1
        return cls(tokens, starts, lengths, start_tokens)

    def __len__(self) -> int:
        return self.starts.numel()

    @property
    def num_targets(self) -> int:
        """Number of predictions over the corpus: every character plus one end per item."""
        return int(self.lengths.sum()) + len(self)

    @property
    def max_len(self) -> int:
        return int(self.lengths.max()) if len(self) else 0

    def windows(self, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Context-window examples, in item order then character order (as the lectures).

        Returns:
            X (num_targets, block_size) previous tokens, boundary-padded at item starts;
            Y (num_targets,) next token (0 at the end of each item).
        """
        target_pos = torch.arange(1, self.tokens.numel(), dtype=torch.int64)  # (N,)
        item_start = torch.repeat_interleave(self.starts, self.lengths + 1)  # (N,) boundary before item
        offsets = torch.arange(-block_size, 0, dtype=torch.int64)  # (b,)
        ctx_pos = target_pos[:, None] + offsets[None, :]  # (N, b)
        inside = ctx_pos >= item_start[:, None]
        X = torch.where(inside, self.tokens[ctx_pos.clamp(min=0)], torch.zeros((), dtype=torch.int64))
        if self.start_tokens is not None:  # the item's label token where the boundary was
            start = torch.repeat_interleave(self.start_tokens, self.lengths + 1)  # (N,)
            X = torch.where(ctx_pos == item_start[:, None], start[:, None], X)
        Y = self.tokens[target_pos]
        return X, Y

    def sequence_batch(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded (x, y) for the given item indices, padded to the longest item in the batch.

        Returns:
            x (B, T) with x[:, 0] = boundary, then the characters, then 0 padding;
            y (B, T) next tokens: the characters, the end boundary, then -1 on padding;
            T = longest item in the batch + 1.
        """
        starts = self.starts[items]  # (B,)
        lengths = self.lengths[items]  # (B,)
        T = int(lengths.max()) + 1
        steps = torch.arange(T, dtype=torch.int64)  # (T,)
        valid = steps[None, :] <= lengths[:, None]  # (B, T)
        pos = (starts[:, None] + steps[None, :]).clamp(max=self.tokens.numel() - 2)  # (B, T)
        x = torch.where(valid, self.tokens[pos], torch.zeros((), dtype=torch.int64))
        if self.start_tokens is not None:
            x[:, 0] = self.start_tokens[items]
        y = torch.where(valid, self.tokens[pos + 1], torch.full((), -1, dtype=torch.int64))
        return x, y

    def shard(self, index: int, count: int) -> EncodedCorpus:
        """Shard ``index`` of ``count``: a contiguous run of items; the shards cover every item once.

        Args:
            index: which shard, 0 <= index < count.
            count: how many shards.
        Returns:
            an EncodedCorpus of items ``[index * n // count, (index + 1) * n // count)``.
        """
        if not 0 <= index < count:
            raise ValueError(f"shard {index} of {count}")
        n = len(self)
        a, b = index * n // count, (index + 1) * n // count
        if a == b:
            start_tokens = None if self.start_tokens is None else self.start_tokens[:0]
            empty = self.starts[:0]
            return EncodedCorpus(self.tokens[:1], empty, empty, start_tokens)
        first = int(self.starts[a])
        last = int(self.starts[b - 1] + self.lengths[b - 1]) + 1  # the boundary after item b-1
        start_tokens = None if self.start_tokens is None else self.start_tokens[a:b]
        return EncodedCorpus(self.tokens[first : last + 1], self.starts[a:b] - first, self.lengths[a:b], start_tokens)

    def subset(self, items: torch.Tensor) -> EncodedCorpus:
        """The corpus of the given items, in the given order.

        Args:
            items: (k,) int64 item indices.
        """
        lengths = self.lengths[items]  # (k,)
        starts = torch.cumsum(lengths + 1, 0) - (lengths + 1)  # (k,) new boundary positions
        span = lengths + 1  # each item's boundary and characters
        item_of = torch.repeat_interleave(torch.arange(items.numel()), span)  # (M,)
        within = torch.arange(item_of.numel()) - starts[item_of]  # (M,)
        tokens = self.tokens[self.starts[items][item_of] + within]  # (M,)
        tokens = torch.cat([tokens, tokens.new_zeros(1)])  # the final boundary
        start_tokens = None if self.start_tokens is None else self.start_tokens[items]
        return EncodedCorpus(tokens, starts, lengths, start_tokens)

    def item_tokens(self, i: int) -> list[int]:
        """Item ``i`` as the model reads it: its start token (boundary or label), then its characters."""
        start, length = int(self.starts[i]), int(self.lengths[i])
        first = BOUNDARY if self.start_tokens is None else int(self.start_tokens[i])
        return [first, *self.tokens[start + 1 : start + 1 + length].tolist()]


@dataclass
class Split:
    """The items of the train, dev and test splits (and their labels, for a labelled corpus)."""

    train: list[str]
    dev: list[str]
    test: list[str]
    labels: dict[str, list[str]] | None = None  # split name -> label of each item

    def labels_of(self, split: str) -> list[str] | None:
        return None if self.labels is None else self.labels[split]


def split_words(words: list[str], *, seed: int = 42, dedupe: bool = False, labels: list[str] | None = None) -> Split:
    """Deterministic 80/10/10 split.

    The default reproduces the lectures' split exactly:
    ``random.seed(42); random.shuffle(words)``; ``n1 = int(0.8 n)``, ``n2 = int(0.9 n)``.
    Labelled items are shuffled by the same permutation (``random.shuffle`` draws the same
    swaps for any list of the same length).

    Args:
        words: items in file order.
        seed: shuffling seed.
        dedupe: drop repeated items (keeping the first; for labelled items, repeated
            (label, item) pairs) before splitting.
        labels: the label of each item, or None.
    """
    if labels is None:
        words = list(dict.fromkeys(words)) if dedupe else list(words)
        rng = random.Random(seed)
        rng.shuffle(words)
        n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
        return Split(words[:n1], words[n1:n2], words[n2:])
    pairs = list(dict.fromkeys(zip(labels, words))) if dedupe else list(zip(labels, words))
    random.Random(seed).shuffle(pairs)
    n1, n2 = int(0.8 * len(pairs)), int(0.9 * len(pairs))
    parts = {"train": pairs[:n1], "dev": pairs[n1:n2], "test": pairs[n2:]}
    items = {name: [item for _, item in part] for name, part in parts.items()}
    return Split(**items, labels={name: [label for label, _ in part] for name, part in parts.items()})
