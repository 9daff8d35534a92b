"""Labelled corpora: ``label<TAB>item`` lines, or the columns of a CSV file.

Labels come only from where the user says they are (``DataConfig.labelled``, or the columns
of ``label_column``/``item_column``), never from the content: an unlabelled file whose items
hold tabs reads exactly as before.
"""

from __future__ import annotations

import csv
import io

from makemore.data.corpus import DEFAULT_MAX_ITEM_LEN, check_item_length, decode_text
from makemore.errors import ConfigError, MakemoreError

CSV_DELIMITERS = ",;\t|"


def parse_labelled(
    raw: bytes, *, source: str = "<input>", max_len: int = DEFAULT_MAX_ITEM_LEN
) -> tuple[list[str], list[str]]:
    """Parse ``label<TAB>item`` lines (the first tab separates; the item may hold more tabs).

    Blank lines are skipped; spaces around the label and at the end of the item are dropped.

    Returns:
        (labels, items), one of each per line, in file order.
    Raises:
        MakemoreError: naming ``source:line`` for a line without a tab, an empty label or
            item, an item longer than ``max_len``, or a file without items.
    """
    labels, items = [], []
    for lineno, line in enumerate(decode_text(raw, source).split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        label, tab, item = line.partition("\t")
        label, item = label.strip(), item.rstrip()
        if not tab:
            raise MakemoreError(f"{source}:{lineno}: expected label<TAB>item (a labelled file), found no tab")
        if not label:
            raise MakemoreError(f"{source}:{lineno}: empty label before the tab")
        if not item:
            raise MakemoreError(f"{source}:{lineno}: no item after the label {label!r}")
        check_item_length(item, max_len, source, lineno)
        labels.append(label)
        items.append(item)
    if not items:
        raise MakemoreError(f"{source}: contains no items (empty or blank lines only)")
    return labels, items


def _column(header: list[str], spec: str, field: str, source: str) -> int:
    """The index of column ``spec`` (a header name, or a 1-based number) in ``header``."""
    if spec in header:
        return header.index(spec)
    if spec.isdigit() and 1 <= int(spec) <= len(header):
        return int(spec) - 1
    shown = ", ".join(repr(name) for name in header[:10])
    raise ConfigError(
        field, f"{source}: no column {spec!r} (the header has {len(header)}: {shown})", owner="DataConfig"
    )


def parse_csv(
    raw: bytes,
    *,
    item_column: str,
    label_column: str = "",
    source: str = "<input>",
    max_len: int = DEFAULT_MAX_ITEM_LEN,
) -> tuple[list[str] | None, list[str]]:
    """Parse a CSV file with a header line; columns are named or numbered from 1.

    The delimiter is the first of ``, ; TAB |`` found in the header line. Rows whose item is
    empty are skipped; spaces around fields are dropped.

    Args:
        raw: the file's bytes.
        item_column: the column holding the items.
        label_column: the column holding the labels ("" = an unlabelled file).
    Returns:
        (labels or None, items), in file order.
    Raises:
        MakemoreError: naming ``source:line`` for a short row, an empty label, a long item;
            ``ConfigError`` for a column the header does not have.
    """
    text = decode_text(raw, source)
    first_line = text.split("\n", 1)[0]
    delimiter = next((d for d in CSV_DELIMITERS if d in first_line), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise MakemoreError(f"{source}: empty (a CSV file starts with a header line)")
        item_at = _column(header, item_column, "item_column", source)
        label_at = _column(header, label_column, "label_column", source) if label_column else None
        labels, items = [], []
        for row in reader:
            if not any(field.strip() for field in row):
                continue
            lineno = reader.line_num
            needed = max(item_at, label_at or 0)
            if len(row) <= needed:
                raise MakemoreError(f"{source}:{lineno}: {len(row)} fields, column {needed + 1} is missing")
            item = row[item_at].strip()
            if not item:
                continue
            if "\n" in item:
                raise MakemoreError(f"{source}:{lineno}: item holds a line break")
            check_item_length(item, max_len, source, lineno)
            if label_at is not None:
                label = row[label_at].strip()
                if not label:
                    raise MakemoreError(f"{source}:{lineno}: empty label in column {label_column!r}")
                labels.append(label)
            items.append(item)
    except csv.Error as exc:
        raise MakemoreError(f"{source}:{reader.line_num}: not valid CSV ({exc})") from None
    if not items:
        raise MakemoreError(f"{source}: contains no items (no row has a value in column {item_column!r})")
    return (labels if label_at is not None else None), items
