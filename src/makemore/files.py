"""Writing files that matter: atomically (temp file in the same directory, fsync, rename,
fsync of the directory), and only onto regular files.

A reader never sees a half-written checkpoint, sample file, plot or benchmark result; a
failed or interrupted write leaves the previous file as it was; an output path that is a
FIFO, a device, a directory, a symlink or a read-only file is refused before any work, so
nothing but a regular file is ever replaced. Errors name the target, not the temp file.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from makemore.errors import ConfigError

TMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (where the platform allows opening a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _as_target(exc: OSError, path: Path) -> OSError:
    """The same error, naming the file being written rather than its temp file."""
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """A temporary path next to ``path`` (same suffix) that replaces ``path`` on success.

    For writers that want a file name (matplotlib's ``savefig``); the temp file is removed if
    the block raises.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f"{path.suffix}{TMP_SUFFIX}")
    except OSError as exc:
        raise _as_target(exc, path) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise _as_target(exc, path) from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory and a rename."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    except OSError as exc:
        raise _as_target(exc, path) from None
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _as_target(exc, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """``atomic_write_bytes`` of ``text`` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temp_files(directory: str | Path, older_than_s: float = 0.0) -> list[Path]:
    """Remove the temp files that interrupted writes left in ``directory``.

    Only call this while holding the directory's write lock (no other writer is then in the
    middle of a write there). Returns the paths removed.
    """
    removed = []
    now = time.time()
    for entry in os.scandir(directory):
        if entry.name.startswith(".") and entry.name.endswith(TMP_SUFFIX) and entry.is_file(follow_symlinks=False):
            if now - entry.stat(follow_symlinks=False).st_mtime >= older_than_s:
                Path(entry.path).unlink(missing_ok=True)
                removed.append(Path(entry.path))
    return removed


def check_output(path: str | Path, field: str = "output", *, suffixes: Sequence[str] = (), force: bool = False) -> Path:
    """Refuse an output path that cannot be written as a regular file, before any work is done.

    Args:
        path: where the output will go.
        field: the argument that named it (for the error).
        suffixes: accepted file suffixes (lower case, e.g. ``(".png",)``); empty = any.
        force: also replace a read-only file, and write through a symlink to the regular file it
            points to (FIFOs, devices, sockets and directories are always refused).
    Returns:
        the path to write: ``path``, or with ``force`` the file a symlink points to.
    Raises:
        ConfigError: naming ``field`` and the path.
    """
    out = Path(path)
    if suffixes and out.suffix.lower() not in suffixes:
        raise ConfigError(field, f"{out}: expected a {' or '.join(suffixes)} file name")
    if out.is_symlink():
        if not force:
            raise ConfigError(field, f"{out}: is a symlink; give the file it points to (or force)", related=("force",))
        out = out.resolve()
    try:
        st = out.stat()
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise ConfigError(field, f"{out}: {exc.strerror}") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise ConfigError(field, f"{out}: is a directory, expected a file name")
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(
                field, f"{out}: exists and is not a regular file (a FIFO, device or socket); not replaced"
            )
        if not st.st_mode & 0o222 and not force:
            raise ConfigError(field, f"{out}: is read-only; not replaced (force replaces it)", related=("force",))
    if not out.resolve().parent.is_dir():
        raise ConfigError(field, f"{out}: directory {out.parent} does not exist")
    return out
