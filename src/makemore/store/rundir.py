"""The run directory: the one owner of a run's file names and of reading and writing them.

A run directory holds ``best.safetensors`` (lowest dev loss) and ``last.safetensors`` (with
optimizer and RNG state, for resuming), ``metrics.jsonl`` (one JSON object per line) and
``run.json`` (a readable copy of the last checkpoint's description); TensorBoard event
files go under ``tensorboard/``.

One process at a time writes a run directory: ``writing()`` takes an OS lock (``flock`` on
``.lock``, which holds the writer's pid) that the kernel releases when the process ends, even
when it is killed. Readers need no lock: every file is replaced atomically.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from makemore import files
from makemore.errors import ConfigError, MakemoreError
from makemore.store.checkpoint import Checkpoint, load_checkpoint, read_meta, save_checkpoint

CHECKPOINTS = ("best", "last")
NUMBER_FIELDS = ("train_loss", "dev_loss", "lr", "steps_per_s")  # of a metrics row


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_row(row: Any) -> bool:
    """A metrics row as the trainer writes it: a step, numbers, update ratios as numbers."""
    if not isinstance(row, dict) or not isinstance(row.get("step"), int) or isinstance(row["step"], bool):
        return False
    if not all(_is_number(row[key]) for key in NUMBER_FIELDS if key in row):
        return False
    ratios = row.get("update_ratio", {})
    return isinstance(ratios, dict) and all(isinstance(k, str) and _is_number(v) for k, v in ratios.items())


class RunDir:
    """The files of one run directory.

    Args:
        path: the directory (it need not exist yet).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # -- names ---------------------------------------------------------------------------
    def checkpoint(self, which: str) -> Path:
        """Path of checkpoint ``which`` ("best" or "last")."""
        if which not in CHECKPOINTS:
            raise MakemoreError(f"which: unknown checkpoint {which!r} (best, last)")
        return self.path / f"{which}.safetensors"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tensorboard"

    @property
    def lock_path(self) -> Path:
        return self.path / ".lock"

    def holds_run(self) -> bool:
        """Whether a run was started here (it has a ``last`` checkpoint)."""
        return self.checkpoint("last").exists()

    def _holds_other_files(self) -> bool:
        """Whether the directory has entries that are not a run's (nor a run's left-overs)."""
        own = {p.name for p in (*map(self.checkpoint, CHECKPOINTS), self.metrics_path, self.run_json)}
        own |= {self.lock_path.name, self.tensorboard_dir.name}
        return self.path.is_dir() and any(p.name not in own for p in self.path.iterdir())

    # -- creating ------------------------------------------------------------------------
    def check_new(self, *, overwrite: bool) -> None:
        """Refuse a new run here unless the directory is free (or ``overwrite``)."""
        if self.path.exists() and not self.path.is_dir():
            raise MakemoreError(f"{self.path}: exists and is not a directory")
        if overwrite and not self.holds_run() and self._holds_other_files():
            raise ConfigError(
                None,
                f"{self.path}: holds files but no run (overwrite replaces a run's files only): choose another directory",
                related=("overwrite",),
            )
        if self.holds_run() and not overwrite:
            raise ConfigError(
                None,
                f"{self.path}: already holds a run (resume continues it, overwrite replaces it)",
                related=("resume", "overwrite"),
            )

    def create(self, *, overwrite: bool) -> None:
        """Make the directory for a new run; ``overwrite`` removes a previous run's files."""
        self.path.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for path in (*map(self.checkpoint, CHECKPOINTS), self.metrics_path, self.run_json):
                path.unlink(missing_ok=True)
        else:  # a run that never wrote a checkpoint may have left rows
            self.metrics_path.unlink(missing_ok=True)

    def writer(self) -> tuple[int, int | None] | None:
        """(pid, step of its first checkpoint or None) of the live process writing this run, else None.

        Read-only: the lock file names its holder, and a holder that is gone (killed) left a
        stale file behind, which does not count.
        """
        try:
            lines = self.lock_path.read_text(encoding="ascii").split()
            pid = int(lines[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError, UnicodeDecodeError):
            return None
        due = int(lines[1]) if len(lines) > 1 and lines[1].isascii() and lines[1].isdigit() else None
        return pid, due

    def check_not_written(self) -> None:
        """Refuse while another process is training this run (naming it and its first checkpoint)."""
        writer = self.writer()
        if writer is None or writer[0] == os.getpid():
            return
        pid, due = writer
        if self.checkpoint("last").exists():
            raise MakemoreError(f"{self.path}: another makemore process (pid {pid}) is writing this run")
        rows = self.read_metrics(strict=False) or []
        at = f", now at step {rows[-1]['step']}" if rows else ""
        when = f"due at step {due}{at}" if due is not None else "not written yet"
        raise MakemoreError(f"{self.path}: being trained by pid {pid}; its first checkpoint is {when}")

    @contextlib.contextmanager
    def writing(self, *, new: bool, overwrite: bool = False, first_checkpoint: int | None = None) -> Iterator[RunDir]:
        """Hold the directory's write lock for the block (``new``: create the directory first,
        checking under the lock that it is still free, and clear it for the new run).
        ``first_checkpoint``: the step of the first checkpoint, for readers that find none yet.

        A new run that ends in an exception before it saved a checkpoint leaves no directory
        behind if it made it.

        Raises:
            MakemoreError: another process is writing the directory (its pid is named).
        """
        made = new and not self.path.exists()
        if new:
            self.path.mkdir(parents=True, exist_ok=True)
        fd = self._lock(first_checkpoint)
        try:
            files.remove_stale_temp_files(self.path)  # only a killed writer leaves them
            if new:
                self.check_new(overwrite=overwrite)
                self.create(overwrite=overwrite)
            yield self
        except BaseException:
            if new and not self.holds_run():
                self._remove_new_run(made)
            raise
        finally:
            self.lock_path.unlink(missing_ok=True)  # before releasing: see _lock
            os.close(fd)

    def _lock(self, first_checkpoint: int | None) -> int:
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = (os.read(fd, 32).decode("ascii", "replace").split() or ["?"])[0]
                os.close(fd)
                raise MakemoreError(
                    f"{self.path}: another makemore process (pid {holder}) is writing this run"
                ) from None
            try:  # the holder before us unlinks the file it locked: ours must still be the one there
                if os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        due = "" if first_checkpoint is None else f"{first_checkpoint}\n"
        os.write(fd, f"{os.getpid()}\n{due}".encode("ascii"))
        return fd

    def _remove_new_run(self, made: bool) -> None:
        """Remove what a new run that never saved a checkpoint wrote (and its directory if it made it)."""
        self.metrics_path.unlink(missing_ok=True)
        self.run_json.unlink(missing_ok=True)
        if made:
            self.lock_path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # not empty: something else is in it; leave it
                if self.tensorboard_dir.is_dir() and not any(self.tensorboard_dir.iterdir()):
                    self.tensorboard_dir.rmdir()
                self.path.rmdir()

    # -- checkpoints ---------------------------------------------------------------------
    def save(
        self,
        which: str,
        *,
        model_state: dict[str, torch.Tensor],
        meta: dict[str, Any],
        optimizer_state: dict | None = None,
        rng_state: dict[str, torch.Tensor] | None = None,
        average_state: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """Write checkpoint ``which`` atomically; ``last`` also refreshes ``run.json``.

        ``run.json`` is written first: a kill between the two writes leaves a ``last`` behind
        it, which a resume then brings up to date (the other order could leave a finished
        run's ``run.json`` behind for good).
        """
        if which == "last":
            files.atomic_write_text(self.run_json, json.dumps(meta, indent=2) + "\n")
        save_checkpoint(
            self.checkpoint(which),
            model_state=model_state,
            meta=meta,
            optimizer_state=optimizer_state,
            rng_state=rng_state,
            average_state=average_state,
        )

    def load(self, which: str = "best") -> tuple[Path, Checkpoint]:
        """(path, contents) of checkpoint ``which``; "best" falls back to "last".

        Raises:
            MakemoreError: there is no such directory or no checkpoint in it.
        """
        if not self.path.is_dir():
            raise MakemoreError(f"{self.path}: no such run directory")
        path = self.checkpoint(which)
        if which == "best" and not path.exists():
            path = self.checkpoint("last")
        if not path.exists():
            self.check_not_written()
            raise MakemoreError(f"{self.path}: no checkpoint in this directory (not a trained run?)")
        return path, load_checkpoint(path)

    def _identity(self, path: Path) -> dict[str, Any] | None:
        """The run this directory holds, as ``run.json`` records it (else as ``last`` does)."""
        if path != self.run_json and self.run_json.is_file():
            try:
                meta = json.loads(self.run_json.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                meta = None
            if isinstance(meta, dict):
                return meta
        last = self.checkpoint("last")
        return read_meta(last) if path != last and last.is_file() else None

    def check_identity(self, path: Path, meta: dict[str, Any]) -> None:
        """Refuse a checkpoint of another run (another run id or vocabulary) than the directory's.

        Called once the checkpoint's header is known to be well formed (``description.RunDescription.parse``).

        Raises:
            MakemoreError: naming the checkpoint.
        """
        own = self._identity(path)
        if own is None:
            return
        theirs, ours = meta.get("run_id"), own.get("run_id")
        if theirs and ours and theirs != ours:
            raise MakemoreError(
                f"{path}: belongs to another run (run id {theirs[:8]}, this directory's is {ours[:8]}): "
                "copied in from elsewhere?"
            )
        if isinstance(own.get("vocab"), dict) and own["vocab"] != meta.get("vocab"):
            raise MakemoreError(f"{path}: its vocabulary is not this run's (copied in from another run?)")

    # -- metrics -------------------------------------------------------------------------
    def append_metrics(self, row: dict[str, Any]) -> None:
        """Append one row to ``metrics.jsonl``."""
        with open(self.metrics_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")

    def read_metrics(self, *, strict: bool = True) -> list[dict[str, Any]] | None:
        """Rows of ``metrics.jsonl`` (None when there is none).

        Args:
            strict: raise on a line that is not a JSON object (else skip it: a row cut short
                when a run was killed).
        Raises:
            MakemoreError: naming the file and line of a bad row (strict only).
        """
        if not self.metrics_path.is_file():
            return None
        rows = []
        for lineno, line in enumerate(self.metrics_path.read_bytes().split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                row = None
            if _is_row(row):
                rows.append(row)
            elif strict:
                raise MakemoreError(
                    f"{self.metrics_path}:{lineno}: not a metrics row (a write cut short? delete the line)"
                )
        return rows

    def truncate_metrics(self, step: int) -> None:
        """Keep only the rows up to ``step`` (a resumed run rewrites what came after), and drop
        a row cut short when the run was killed."""
        rows = self.read_metrics(strict=False)
        if rows is None:
            return
        kept = [json.dumps(row) + "\n" for row in rows if row["step"] <= step]
        files.atomic_write_text(self.metrics_path, "".join(kept))
