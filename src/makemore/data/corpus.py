"""Data layer: reading word files, the vocabulary and the encoded corpus with its tensor examples.

A corpus is held in memory as one flat tensor of token ids (in the narrowest integer dtype the
vocabulary allows: ``Vocab.token_dtype``) with a boundary token (0) before the first item,
between items and after the last one::

    0 e m m a 0 o l i v i a 0

From it, context-window examples (``windows_at``) and padded per-item batches
(``sequence_batch``) are built with tensor ops only, as int64, a batch at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from makemore.data.splits import Split, split_order, split_words  # noqa: F401 (re-exported: the lecture split)
from makemore.data.wordsfile import (  # noqa: F401 (re-exported: reading words files)
    DEFAULT_MAX_ITEM_LEN,
    NEWLINE,
    Lines,
    check_item_length,
    decode_text,
    parse_lines,
    parse_words,
    read_input_bytes,
    read_words,
)
from makemore.errors import MakemoreError

BOUNDARY = 0
# Shown for the boundary token in tables and plots; the first one not in the alphabet is used.
# "¶" comes before "␃" because matplotlib's default font (DejaVu Sans) has no glyph for "␃".
_BOUNDARY_DISPLAY_CANDIDATES = (".", "¶", "␃", "<END>")
_VISIBLE_SPACE = "␣"
ENCODE_CHUNK = 1 << 23  # code points encoded, or tokens gathered, per tensor op (bounds the int64 temporaries)
GATHER_ITEMS = 1 << 19  # items copied per tensor op by ``EncodedCorpus.subset``


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

    @classmethod
    def from_lines(cls, lines: Lines) -> Vocab:
        """The characters of a words file's items (``wordsfile.parse_lines``), with tensor ops."""
        present = torch.bincount(lines.text, minlength=NEWLINE + 1) > 0
        present[NEWLINE] = False
        return cls(tuple(chr(c) for c in present.nonzero().squeeze(1).tolist()))

    @property
    def token_dtype(self) -> torch.dtype:
        """The narrowest integer dtype that holds every token id (how corpora store tokens)."""
        if self.size <= 256:
            return torch.uint8
        return torch.int16 if self.size <= 2**15 else torch.int32

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

    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        """Token ids of code points ``text`` (``\\n``: the boundary), in ``token_dtype``.

        Raises:
            ValueError: naming the first code point that is not in the vocabulary.
        """
        size = max(int(text.max()) + 1 if text.numel() else 0, NEWLINE + 1)
        table = torch.full((size,), -1, dtype=torch.int32)  # code point -> id (-1: not in the vocabulary)
        codepoints = self._lookup()
        inside = codepoints < size
        table[codepoints[inside]] = torch.arange(1, len(self.chars) + 1, dtype=torch.int32)[inside]
        table[NEWLINE] = BOUNDARY
        out = torch.empty(text.numel(), dtype=self.token_dtype)
        for a in range(0, text.numel(), ENCODE_CHUNK):  # int32 indices a chunk at a time: bounded temporaries
            ids = table.index_select(0, text[a : a + ENCODE_CHUNK].to(torch.int32))
            if bool((ids < 0).any()):
                raise ValueError(int(text[a + int((ids < 0).nonzero()[0])]))
            out[a : a + ENCODE_CHUNK] = ids
        return out

    def encode(self, word: str) -> torch.Tensor:
        """Ids of the characters of one item (no boundary tokens)."""
        return self.encode_codepoints(_codepoints(word), word)

    def encode_codepoints(self, codepoints: torch.Tensor, text: str) -> torch.Tensor:
        table = self._lookup()
        pos = torch.searchsorted(table, codepoints).clamp(max=max(len(table) - 1, 0))
        known = table[pos] == codepoints if len(table) else torch.zeros_like(codepoints, dtype=torch.bool)
        if not bool(known.all()):
            raise _unknown(int(codepoints[~known][0]), text)
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


def _unknown(codepoint: int, text: str) -> MakemoreError:
    bad = chr(codepoint)
    return MakemoreError(f"character {bad!r} (U+{codepoint:04X}) in {text[:40]!r} is not in the model's vocabulary")


@dataclass
class EncodedCorpus:
    """Items as one flat tensor ``0 w1 0 w2 0 ... wn 0`` plus boundary positions.

    Attributes:
        tokens: (N,) flat token stream, in the vocabulary's ``token_dtype`` (uint8 for up to
            256 tokens); batches read from it are int64.
        starts: (n_items,) int64 position of the boundary token *before* each item.
        lengths: (n_items,) int64 characters in each item.
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
        start_tokens = vocab.label_ids(labels).to(vocab.token_dtype) if labels is not None else None
        codepoints = _codepoints("\n".join(words) + "\n" if words else "")
        ends = (codepoints == NEWLINE).nonzero().squeeze(1)
        lengths = ends - torch.cat([ends.new_zeros(1), ends[:-1] + 1])
        return cls.from_lines(Lines(codepoints, lengths), vocab, start_tokens)

    @classmethod
    def from_lines(cls, lines: Lines, vocab: Vocab, start_tokens: torch.Tensor | None = None) -> EncodedCorpus:
        """Encode the items of a words file (``wordsfile.parse_lines``) with ``vocab``.

        Raises:
            MakemoreError: naming a character that is not in ``vocab`` and its item.
        """
        try:
            ids = vocab.encode_text(lines.text)
        except ValueError as exc:
            codepoint = exc.args[0]
            at = int((lines.text == codepoint).nonzero()[0])
            first = int((lines.text[:at] == NEWLINE).sum())
            stop = int(lines.lengths[: first + 1].sum()) + first
            item = lines.text[stop - int(lines.lengths[first]) : stop].tolist()
            raise _unknown(codepoint, "".join(map(chr, item))) from None
        tokens = torch.cat([ids.new_zeros(1), ids])
        span = lines.lengths + 1
        return cls(tokens, torch.cumsum(span, 0) - span, lines.lengths, start_tokens)

    def __len__(self) -> int:
        return self.starts.numel()

    @property
    def num_targets(self) -> int:
        """Number of predictions over the corpus: every character plus one end per item."""
        return int(self.lengths.sum()) + len(self)

    @property
    def max_len(self) -> int:
        return int(self.lengths.max()) if len(self) else 0

    def windows_at(self, positions: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The context windows of the targets at ``positions`` of ``tokens`` (int64, built on demand).

        Target ``t`` of the corpus (``windows``' order) is at position ``t + 1``. Its window is
        read backwards from the position before it up to its item's start boundary (``tokens``
        has a 0 there and nowhere inside an item), boundary-padded before that.

        Args:
            positions: (B,) int64 positions, 1 <= p < ``tokens.numel()``.
            block_size: tokens of context.
        Returns:
            X (B, block_size) int64 previous tokens, Y (B,) int64 the tokens at ``positions``.
        """
        back = [self.tokens[(positions - j).clamp_(min=0)].long() for j in range(1, block_size + 1)]
        return self._windows(positions, back), self.tokens[positions].long()

    def windows_range(self, start: int, stop: int, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``windows_at`` of the positions ``start .. stop - 1``, read with slices (no gather)."""
        first = max(start - block_size, 0)
        stream = self.tokens[first:stop].long()  # a boundary 0 pads what precedes position 0
        stream = torch.cat([stream.new_zeros(block_size - (start - first)), stream])
        n = stop - start
        back = [stream[block_size - j : block_size - j + n] for j in range(1, block_size + 1)]
        return self._windows(torch.arange(start, stop), back), stream[block_size:]

    def _windows(self, positions: torch.Tensor, back: list[torch.Tensor]) -> torch.Tensor:
        """(B, len(back)) windows from ``back[j - 1]``, the tokens ``j`` before each position."""
        X = torch.zeros(positions.numel(), len(back), dtype=torch.int64)
        inside = torch.ones(positions.numel(), dtype=torch.bool)  # not past the item's start yet
        label = None
        if self.start_tokens is not None:  # the item's label token where its boundary is
            label = self.start_tokens[torch.searchsorted(self.starts, positions) - 1].long()
        for j, token in enumerate(back, start=1):
            start = inside & (token == BOUNDARY)
            column = torch.where(inside, token, 0)
            X[:, len(back) - j] = column if label is None else torch.where(start, label, column)
            inside &= ~start
        return X

    def windows(self, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Every context-window example, in item order then character order (as the lectures).

        Returns:
            X (num_targets, block_size) previous tokens, boundary-padded at item starts;
            Y (num_targets,) next token (0 at the end of each item).
        """
        return self.windows_range(1, self.tokens.numel(), block_size)

    def sequence_batch(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded (x, y) for the given item indices, padded to the longest item in the batch.

        Returns:
            x (B, T) int64 with x[:, 0] = boundary, then the characters, then 0 padding;
            y (B, T) int64 next tokens: the characters, the end boundary, then -1 on padding;
            T = longest item in the batch + 1.
        """
        starts = self.starts[items]  # (B,)
        lengths = self.lengths[items]  # (B,)
        T = int(lengths.max()) + 1
        steps = torch.arange(T, dtype=torch.int64)  # (T,)
        valid = steps[None, :] <= lengths[:, None]  # (B, T)
        pos = (starts[:, None] + steps[None, :]).clamp(max=self.tokens.numel() - 2)  # (B, T)
        x = torch.where(valid, self.tokens[pos].long(), 0)
        if self.start_tokens is not None:
            x[:, 0] = self.start_tokens[items]
        y = torch.where(valid, self.tokens[pos + 1].long(), -1)
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

        Copied ``GATHER_ITEMS`` items at a time, so the int64 temporaries stay bounded
        whatever the corpus size (a split of millions of items).

        Args:
            items: (k,) int64 item indices.
        """
        lengths = self.lengths[items]  # (k,)
        span = lengths + 1  # each item's boundary and characters
        starts = torch.cumsum(span, 0) - span  # (k,) new boundary positions
        tokens = torch.zeros(int(span.sum()) + 1, dtype=self.tokens.dtype)  # the final boundary stays 0
        for a in range(0, items.numel(), GATHER_ITEMS):
            part = span[a : a + GATHER_ITEMS]
            item_of = torch.repeat_interleave(torch.arange(part.numel()), part)  # (M,)
            within = torch.arange(item_of.numel()) - (torch.cumsum(part, 0) - part)[item_of]  # (M,)
            at = int(starts[a]) if part.numel() else 0
            tokens[at : at + item_of.numel()] = self.tokens[self.starts[items[a : a + GATHER_ITEMS]][item_of] + within]
        start_tokens = None if self.start_tokens is None else self.start_tokens[items]
        return EncodedCorpus(tokens, starts, lengths, start_tokens)

    def item_tokens(self, i: int) -> list[int]:
        """Item ``i`` as the model reads it: its start token (boundary or label), then its characters."""
        start, length = int(self.starts[i]), int(self.lengths[i])
        first = BOUNDARY if self.start_tokens is None else int(self.start_tokens[i])
        return [first, *self.tokens[start + 1 : start + 1 + length].tolist()]

    def decode(self, vocab: Vocab) -> list[str]:
        """Every item as a string (one Python object per item: for the API and small corpora)."""
        table = torch.tensor([NEWLINE, *map(ord, vocab.chars)], dtype=torch.int32)
        text = (
            table.index_select(0, self.tokens[1:].to(torch.int32))
            .numpy()
            .tobytes()
            .decode("utf-32-le", "surrogatepass")
        )
        return text.split("\n")[:-1]
