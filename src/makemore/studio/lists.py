"""A list brought to the studio: how ``makemore train`` reads it, and its summary.

The summary is made by the reader ``makemore train`` uses (``api.load_data`` over the stored file, with
the ``DataConfig`` the training child gets), so the lines it shows as refused are the lines ``train``
refuses, with ``train``'s own messages. ``train`` stops at the first refused line; to show them all,
each refused line is blanked (a blank line is skipped by every reader and keeps the line numbers) and
the file read again, up to ``MAX_REFUSED`` lines.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from pathlib import Path

from makemore import api, options
from makemore.errors import ConfigError, MakemoreError

FORMATS = ("lines", "labelled", "csv", "tsv")
MAX_REFUSED = 20  # refused lines listed (each costs one more read of the file)
CSV_DELIMITERS = ",;\t|"  # as the CSV reader picks its delimiter: the first of these in the header line


def data_config(path: Path, fmt: str, item_column: str = "", label_column: str = "") -> api.DataConfig:
    """The ``DataConfig`` that reads ``path`` as ``fmt`` says (what the training child is given)."""
    if fmt in ("csv", "tsv"):
        return api.DataConfig(input=str(path), item_column=item_column, label_column=label_column)
    return api.DataConfig(input=str(path), labelled=fmt == "labelled")


def train_flags(path: Path, fmt: str, item_column: str = "", label_column: str = "") -> list[str]:
    """``makemore train``'s flags for reading ``path`` as ``fmt`` says (from the declared options)."""
    config = data_config(path, fmt, item_column, label_column)
    flags = []
    for d in options.declared(api.DataConfig, options.CLI):
        value = getattr(config, d.name)
        if value == d.default:
            continue
        flags += [d.flag] if value is True else [d.flag, str(value)]
    return flags


def _flag(field: str) -> str:
    declared = options.find(api.DataConfig, field)
    return declared.flag if declared is not None else field


def message(exc: MakemoreError) -> str:
    """The error as ``makemore train`` prints it (settings named by their flags)."""
    return exc.render(_flag) if isinstance(exc, ConfigError) else str(exc)


def _split(text: str, source: str) -> tuple[int | None, str]:
    """(line, reason) of a reader's message ``SOURCE:LINE: reason`` (line None: ``SOURCE: reason``)."""
    rest = text.removeprefix(f"{source}:")
    if rest is text:  # a setting's error that names the file further on: the workspace's path left out
        return None, text.replace(f"{source}: ", "")
    found = re.match(r"([0-9]+): ", rest)
    return (int(found.group(1)), rest[found.end() :]) if found else (None, rest.lstrip())


def _blanked(raw: bytes, line: int) -> bytes:
    lines = raw.split(b"\n")
    lines[line - 1] = b""
    return b"\n".join(lines)


def _read(path: Path, fmt: str, columns: tuple[str, str]) -> tuple[api.Data | None, list[dict], str | None]:
    """(the data read with the refused lines blanked, the refused lines, the error that stops reading)."""
    probe = path.with_name(".probe-" + path.name)  # the file read again with its refused lines blanked
    raw, refused, current = None, [], path
    try:
        while True:
            try:
                return api.load_data(data_config(current, fmt, *columns)), refused, None
            except MakemoreError as exc:
                line, reason = _split(message(exc), str(current))
            if line is None:
                return None, refused, reason
            if len(refused) == MAX_REFUSED or any(r["line"] == line for r in refused):
                more = f"more than {MAX_REFUSED} lines are refused" if len(refused) == MAX_REFUSED else reason
                return None, refused, more
            refused.append({"line": line, "reason": reason})
            raw = _blanked(path.read_bytes() if raw is None else raw, line)
            probe.write_bytes(raw)
            current = probe
    finally:
        probe.unlink(missing_ok=True)


def _columns(path: Path, fmt: str) -> list[str] | None:
    """The header's column names of a CSV/TSV file (None for other formats or an unreadable header)."""
    if fmt not in ("csv", "tsv"):
        return None
    with open(path, "rb") as f:
        first = f.readline(64 * 1024)
    try:
        line = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        return None
    delimiter = next((d for d in CSV_DELIMITERS if d in line), ",")
    try:
        return [name.strip() for name in next(csv.reader(io.StringIO(line), delimiter=delimiter), [])]
    except csv.Error:
        return None


def summarize(path: Path, fmt: str, item_column: str = "", label_column: str = "") -> dict:
    """What ``makemore train`` reads of the list in ``path``: items, alphabet, lengths, labels, duplicates,
    the refused lines and why (its messages), and whether it can train on it."""
    data, refused, error = _read(path, fmt, (item_column, label_column))
    refused.sort(key=lambda r: r["line"])
    summary = {
        "items": 0,
        "distinct": 0,
        "duplicates": 0,
        "alphabet": "",
        "lengths": None,
        "labels": None,
        "columns": _columns(path, fmt),
        "refused": refused,
        "trainable": False,
        "error": error,
    }
    if data is None:
        return summary
    words, labels = data.words, data.labels
    lengths = Counter(len(w) for w in words)
    longest = max(lengths)
    summary.update(
        items=len(words),
        distinct=len(set(words)),
        alphabet="".join(data.vocab.chars),
        lengths={
            "min": min(lengths),
            "max": longest,
            "mean": round(sum(len(w) for w in words) / len(words), 3),
            "counts": [lengths.get(n, 0) for n in range(1, longest + 1)],
        },
        labels=None if labels is None else dict(Counter(labels).most_common()),
    )
    summary["duplicates"] = summary["items"] - summary["distinct"]
    train, dev, _ = data.split_sizes
    if not train or not dev:  # what train's plan refuses once the file is read
        summary["error"] = (
            f"too few items to split 80/10/10 into non-empty train and dev splits ({len(words)}; need at least 6)"
        )
    summary["trainable"] = not refused and summary["error"] is None
    return summary
