"""The words-file reader with tensor ops agrees with reading line by line, chunk boundaries included."""

from __future__ import annotations

import codecs
import random

import pytest
import torch

from makemore.data import wordsfile
from makemore.data.wordsfile import WHITESPACE, parse_lines
from makemore.errors import ConfigError, MakemoreError


def line_by_line(raw: bytes, max_len: int = 256) -> list[str]:
    """The reader as it was: decode, split on newlines, rstrip, drop blank lines."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[3:]
    items = []
    for lineno, line in enumerate(raw.decode("utf-8").split("\n"), start=1):
        item = line.rstrip()
        if item:
            if len(item) > max_len:
                raise ConfigError(None, f"<input>:{lineno}: too long")
            items.append(item)
    return items


def random_file(rng: random.Random, lines: int) -> bytes:
    pieces = ["a", "b", "é", "日", " ", "\t", "\r", "\u3000", "\xa0", "\x1c", "-", ".", "\u2028"]
    out = []
    for _ in range(lines):
        out.append("".join(rng.choice(pieces) for _ in range(rng.randint(0, 6))))
    text = "\n".join(out) + rng.choice(["", "\n", "\r\n"])
    return (codecs.BOM_UTF8 if rng.random() < 0.2 else b"") + text.encode("utf-8")


def test_the_whitespace_table_is_what_str_rstrip_strips():
    assert sorted(WHITESPACE) == [c for c in range(0x110000) if chr(c).isspace() and c != 10]


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1 << 23])
def test_random_files_read_as_line_by_line_at_any_chunk_size(monkeypatch, chunk):
    monkeypatch.setattr(wordsfile, "CHUNK_BYTES", chunk)
    rng = random.Random(chunk)
    for _ in range(40):
        raw = random_file(rng, rng.randint(1, 30))
        want = line_by_line(raw)
        if not want:
            with pytest.raises(MakemoreError, match="no items"):
                parse_lines(raw)
            continue
        lines = parse_lines(raw)
        assert lines.items() == want
        assert lines.lengths.tolist() == [len(w) for w in want]


def test_ascii_files_are_read_as_bytes_and_others_as_code_points():
    ascii_lines = parse_lines(b"emma\nava \r\n\nbo\n")
    assert ascii_lines.text.dtype == torch.uint8
    assert ascii_lines.text.tolist() == list(b"emma\nava\nbo\n") and ascii_lines.lengths.tolist() == [4, 3, 2]
    wide = parse_lines("zoé\nab\n".encode())
    assert wide.text.dtype == torch.int32 and wide.text.tolist() == [ord(c) for c in "zoé\nab\n"]


def test_a_file_of_ascii_and_non_ascii_chunks(monkeypatch):
    monkeypatch.setattr(wordsfile, "CHUNK_BYTES", 4)
    lines = parse_lines("abc\nabd\nzoé\nx\n".encode())
    assert lines.items() == ["abc", "abd", "zoé", "x"] and lines.text.dtype == torch.int32


@pytest.mark.parametrize("chunk", [2, 1 << 23])
def test_errors_name_the_line_in_any_chunk(monkeypatch, chunk):
    monkeypatch.setattr(wordsfile, "CHUNK_BYTES", chunk)
    with pytest.raises(MakemoreError, match=r"^f:4: invalid UTF-8 \(byte 0xff\)"):
        parse_lines(b"ab\ncd\n\nx\xff\n", source="f")
    with pytest.raises(MakemoreError, match=r"^f:3: contains a NUL byte"):
        parse_lines(b"ab\ncd\nx\x00\n\xff", source="f")
    with pytest.raises(ConfigError, match=r"^f:5: item is 4 characters long, more than max_item_len \(3\)"):
        parse_lines("ab\n\n \ncd\néééé  \nabcdef\n".encode(), source="f", max_len=3)
    # invalid UTF-8 anywhere comes before an item that is too long (the whole file is decoded first)
    with pytest.raises(MakemoreError, match=r"^f:3: invalid UTF-8"):
        parse_lines(b"abcdef\nab\n\xff\n", source="f", max_len=3)
