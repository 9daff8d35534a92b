"""The run directory: the one owner of a run's file names and of reading and writing them.

A run directory holds ``best.safetensors`` (lowest dev loss) and ``last.safetensors`` (with
optimizer and RNG state, for resuming), ``metrics.jsonl`` (one JSON object per line) and
``run.json`` (a readable copy of the last checkpoint's description); TensorBoard event
files go under ``tensorboard/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from makemore import files
from makemore.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from makemore.errors import ConfigError, MakemoreError

CHECKPOINTS = ("best", "last")


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

    def holds_run(self) -> bool:
        """Whether a run was started here (it has a ``last`` checkpoint)."""
        return self.checkpoint("last").exists()

    # -- creating ------------------------------------------------------------------------
    def check_new(self, *, overwrite: bool) -> None:
        """Refuse a new run here unless the directory is free (or ``overwrite``)."""
        if self.path.exists() and not self.path.is_dir():
            raise MakemoreError(f"{self.path}: exists and is not a directory")
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

    # -- checkpoints ---------------------------------------------------------------------
    def save(
        self,
        which: str,
        *,
        model_state: dict[str, torch.Tensor],
        meta: dict[str, Any],
        optimizer_state: dict | None = None,
        rng_state: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """Write checkpoint ``which`` atomically; ``last`` also refreshes ``run.json``."""
        save_checkpoint(
            self.checkpoint(which),
            model_state=model_state,
            meta=meta,
            optimizer_state=optimizer_state,
            rng_state=rng_state,
        )
        if which == "last":
            files.atomic_write_text(self.run_json, json.dumps(meta, indent=2) + "\n")

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
            raise MakemoreError(f"{self.path}: no checkpoint in this directory (not a trained run?)")
        return path, load_checkpoint(path)

    # -- metrics -------------------------------------------------------------------------
    def append_metrics(self, row: dict[str, Any]) -> None:
        """Append one row to ``metrics.jsonl``."""
        with open(self.metrics_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")

    def read_metrics(self) -> list[dict[str, Any]] | None:
        """Rows of ``metrics.jsonl`` (None when there is none).

        Raises:
            MakemoreError: naming the file and line of a row that is not a JSON object.
        """
        if not self.metrics_path.is_file():
            return None
        rows = []
        for lineno, line in enumerate(self.metrics_path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise MakemoreError(
                    f"{self.metrics_path}:{lineno}: not a JSON metrics row (a write was cut short? delete the line)"
                ) from None
            if not isinstance(row, dict):
                raise MakemoreError(f"{self.metrics_path}:{lineno}: not a JSON metrics row")
            rows.append(row)
        return rows

    def truncate_metrics(self, step: int) -> None:
        """Keep only the rows up to ``step`` (a resumed run rewrites what came after), and drop
        a row cut short when the run was killed."""
        if not self.metrics_path.exists():
            return
        kept = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and row.get("step", 0) <= step:
                kept.append(line)
        files.atomic_write_text(self.metrics_path, "".join(line + "\n" for line in kept))
