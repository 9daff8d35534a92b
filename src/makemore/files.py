"""Writing files that matter: atomically (temp file in the same directory, fsync, rename).

A reader never sees a half-written checkpoint, sample file, plot or benchmark result, and a
failed or interrupted write leaves the previous file as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from makemore.errors import ConfigError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """A temporary path next to ``path`` (same suffix) that replaces ``path`` on success.

    For writers that want a file name (matplotlib's ``savefig``); the temp file is removed if
    the block raises.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f"{path.suffix}.tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """``atomic_write_bytes`` of ``text`` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def check_output(path: str | Path, field: str = "output", *, suffixes: Sequence[str] = ()) -> Path:
    """Refuse an output path that cannot be written as a file, before any work is done.

    Args:
        path: where the output will go.
        field: the argument that named it (for the error).
        suffixes: accepted file suffixes (lower case, e.g. ``(".png",)``); empty = any.
    Returns:
        ``path`` as a Path.
    Raises:
        ConfigError: the directory does not exist, the path is a directory, or the suffix
            is not accepted.
    """
    out = Path(path)
    if suffixes and out.suffix.lower() not in suffixes:
        raise ConfigError(field, f"{out}: expected a {' or '.join(suffixes)} file name")
    if out.is_dir():
        raise ConfigError(field, f"{out}: is a directory, expected a file name")
    if not out.resolve().parent.is_dir():
        raise ConfigError(field, f"{out}: directory {out.parent} does not exist")
    return out
