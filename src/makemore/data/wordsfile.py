"""Words files as tensors: one item per line, read with tensor ops over the whole file.

``parse_lines`` splits the bytes of a words file on ``\\n``, strips trailing whitespace
(what ``str.rstrip`` strips) and drops blank lines without a Python object per line: the
file is read a chunk of lines at a time (``CHUNK_BYTES``), so the temporaries of a chunk
bound the memory, and the result is one tensor of code points plus the items' lengths.
The errors are those of reading the file line by line: the file and line of a NUL byte,
invalid UTF-8 or an item that is too long, or a file without items.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

import torch

from makemore.errors import ConfigError, MakemoreError

DEFAULT_MAX_ITEM_LEN = 256
CHUNK_BYTES = 1 << 23  # a chunk of the file ends at the first line end after this many bytes
NEWLINE = ord("\n")
# The code points ``str.isspace`` is true for (tests/test_wordsfile.py checks the list), "\n" aside
WHITESPACE = (9, 11, 12, 13, 28, 29, 30, 31, 32, 133, 160, 5760, *range(8192, 8203), 8232, 8233, 8239, 8287, 12288)


@dataclass
class Lines:
    """The items of a words file as code points.

    Attributes:
        text: (M + n,) code points of every item, each followed by ``\\n`` (uint8 for an ASCII
            file, int32 otherwise).
        lengths: (n,) int64 characters of each item.
    """

    text: torch.Tensor
    lengths: torch.Tensor

    def __len__(self) -> int:
        return self.lengths.numel()

    def items(self) -> list[str]:
        """The items as strings (one Python object per item: for small files and the API)."""
        data = self.text.numpy().tobytes()
        text = data.decode("ascii") if self.text.dtype == torch.uint8 else data.decode("utf-32-le")
        return text.split("\n")[:-1]


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


def check_item_length(item: str, max_len: int, source: str, lineno: int) -> None:
    if len(item) > max_len:
        raise _too_long(len(item), max_len, source, lineno)


def _too_long(length: int, max_len: int, source: str, lineno: int) -> ConfigError:
    return ConfigError(
        None,
        f"{source}:{lineno}: item is {length} characters long, more than max_item_len ({max_len})",
        related=("max_item_len",),
    )


def _check_nul(raw: bytes, base: int, source: str) -> None:
    nul = raw.find(b"\x00", base)
    if nul >= 0:
        line = raw.count(b"\n", base, nul) + 1
        raise MakemoreError(f"{source}:{line}: contains a NUL byte (is this a binary or UTF-16 file?)")


def _decode(raw: bytes, start: int, end: int, base: int, source: str) -> str:
    try:
        return raw[start:end].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = start + exc.start
        line = raw.count(b"\n", base, at) + 1
        raise MakemoreError(f"{source}:{line}: invalid UTF-8 (byte 0x{raw[at]:02x})") from None


def decode_text(raw: bytes, source: str) -> str:
    """The text of a UTF-8 file's bytes (a byte-order mark dropped).

    Raises:
        MakemoreError: naming ``source`` and the line of a NUL byte or invalid UTF-8.
    """
    base = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    _check_nul(raw, base, source)
    return _decode(raw, base, len(raw), base, source)


def _codepoints(raw: bytes, start: int, end: int, base: int, source: str) -> torch.Tensor:
    """(L,) code points of ``raw[start:end]``: uint8 when ASCII, else int32."""
    piece = raw[start:end]
    if piece.isascii():
        return torch.frombuffer(bytearray(piece), dtype=torch.uint8) if piece else torch.zeros(0, dtype=torch.uint8)
    text = _decode(raw, start, end, base, source)
    return torch.frombuffer(bytearray(text.encode("utf-32-le")), dtype=torch.int32)


def _whitespace(cp: torch.Tensor) -> torch.Tensor:
    """(L,) bool: the code points that ``str.rstrip`` strips, "\\n" aside."""
    ws = (cp == 32) | ((cp >= 9) & (cp <= 13) & (cp != NEWLINE)) | ((cp >= 28) & (cp <= 31))
    if cp.dtype != torch.uint8:
        ws |= torch.isin(cp, torch.tensor(WHITESPACE[9:], dtype=cp.dtype))
    return ws


def _chunk_lines(cp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The lines of a chunk that ends with a line end.

    Returns:
        (the code points of each non-blank line's item followed by its "\\n",
        (lines,) characters of each line's item (0: blank), (lines,) bool non-blank).
    """
    newline = cp == NEWLINE
    ends = newline.nonzero().squeeze(1)  # (lines,) where each line ends
    starts = torch.cat([ends.new_zeros(1), ends[:-1] + 1])
    ws = _whitespace(cp)
    if not bool(ws.any()):  # nothing to strip: an item is its line
        lengths = ends - starts
        keep = ~newline
        keep[ends] = lengths > 0  # a blank line's end goes with it
        return cp[keep], lengths, lengths > 0
    significant = (~(ws | newline)).nonzero().squeeze(1)  # (S,)
    last = torch.searchsorted(significant, ends) - 1  # the last significant character before each line end
    last_pos = significant[last.clamp(min=0)] if significant.numel() else starts - 1
    nonblank = (last >= 0) & (last_pos >= starts)
    stop = torch.where(nonblank, last_pos + 1, starts)  # (lines,) where each item ends (exclusive)
    lengths = stop - starts
    # per line: the item's characters kept, the trailing whitespace dropped, the line end kept if non-blank
    pattern = torch.stack([torch.ones_like(nonblank), torch.zeros_like(nonblank), nonblank], 1).flatten()
    counts = torch.stack([lengths, ends - stop, torch.ones_like(lengths)], 1).flatten()
    return cp[torch.repeat_interleave(pattern, counts)], lengths, nonblank


def parse_lines(raw: bytes, *, source: str = "<input>", max_len: int = DEFAULT_MAX_ITEM_LEN) -> Lines:
    """Parse the bytes of a words file: one item per line, with tensor ops (see the module).

    A UTF-8 byte-order mark is ignored, CR line ends and trailing whitespace are stripped
    and blank lines are dropped.

    Args:
        raw: the file's bytes.
        source: the file, for messages.
        max_len: longest item accepted, in characters.
    Returns:
        The items, in file order.
    Raises:
        MakemoreError: naming ``source`` (and the line) for NUL bytes, invalid UTF-8, no
            items, or an item longer than ``max_len`` (a ``ConfigError``).
    """
    base = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    _check_nul(raw, base, source)
    pieces, lengths, too_long, line, start = [], [], None, 0, base
    while start < len(raw):
        cut = raw.find(b"\n", min(start + CHUNK_BYTES, len(raw) - 1))
        end = len(raw) if cut < 0 else cut + 1
        cp = _codepoints(raw, start, end, base, source)
        if cut < 0:  # the last line has no line end: give it one
            cp = torch.cat([cp, torch.full((1,), NEWLINE, dtype=cp.dtype)])
        piece, line_lengths, nonblank = _chunk_lines(cp)
        if too_long is None and bool((line_lengths > max_len).any()):  # reported once the whole file decodes
            first = int((line_lengths > max_len).nonzero()[0])
            too_long = _too_long(int(line_lengths[first]), max_len, source, line + first + 1)
        pieces.append(piece)
        lengths.append(line_lengths[nonblank])
        line, start = line + line_lengths.numel(), end
    if too_long is not None:
        raise too_long
    lengths = torch.cat(lengths) if lengths else torch.zeros(0, dtype=torch.int64)
    if not lengths.numel():
        raise MakemoreError(f"{source}: contains no items (empty or blank lines only)")
    wide = any(p.dtype != torch.uint8 for p in pieces)
    text = torch.cat([p.to(torch.int32) if wide else p for p in pieces])
    return Lines(text, lengths)


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


def parse_words(raw: bytes, *, source: str = "<input>", max_len: int = DEFAULT_MAX_ITEM_LEN) -> list[str]:
    """Parse the bytes of a words file (see ``read_words``)."""
    return parse_lines(raw, source=source, max_len=max_len).items()
