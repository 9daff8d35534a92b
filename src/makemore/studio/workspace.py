"""The studio's workspace on disk: only this module names its files.

```
WS/studio.json               {"format": "makemore-studio", "version": 1}
WS/lists/<id>/items.txt      the list as given (bytes); list.json: its name, format, columns, summary
WS/runs/<id>/                a makemore run directory (written by the training child)
WS/runs/<id>.json            the run's record: name, list, model, time, status, its last job
WS/favourites/<run id>.json  [{"item", "score", "label"}]
WS/jobs.json                 the training queue
WS/logs/<job id>.log         a training child's stderr
```

Ids are made here (``secrets.token_hex(6)``) and a request's id is used only after it matched
``ID`` and named a record that exists: names given by users are display strings kept in JSON, never
part of a path. Every record is written atomically (``files.atomic_write_text``).
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

from makemore import files
from makemore.errors import MakemoreError
from makemore.serve import params
from makemore.studio import lists

ID = re.compile(r"[0-9a-f]{12}")
FORMAT = {"format": "makemore-studio", "version": 1}
MAX_NAME = 100  # characters of a display name
MAX_ITEM = 1000  # characters of a favourite item (a run's items are at most max_item_len, 256 by default)
MAX_FAVOURITES = 10_000  # favourites of one run


def new_id() -> str:
    return secrets.token_hex(6)


def check_name(value: Any, field: str = "name") -> str:
    """A display name: a string of 1 to ``MAX_NAME`` printable characters (spaces around dropped).

    Raises:
        RequestError: 400 naming ``field``.
    """
    if not isinstance(value, str):
        raise params.bad(f"{field}: must be a string, got {type(value).__name__}")
    name = value.strip()
    if not name or len(name) > MAX_NAME:
        raise params.bad(f"{field}: must be 1 to {MAX_NAME} characters, got {len(name)}")
    if not name.isprintable():
        raise params.bad(f"{field}: holds a character that cannot be shown (a control character or a line break)")
    return name


def check_id(value: Any, field: str) -> str:
    """An id of the workspace's form (the record may still not exist): 404 otherwise."""
    if not (isinstance(value, str) and ID.fullmatch(value)):
        shown = value[:40] if isinstance(value, str) else value
        raise params.RequestError(404, f"{field}: no such {field} {shown!r}")
    return value


class Workspace:
    """The workspace folder ``root``, created on first use.

    Raises:
        MakemoreError: ``root`` is a file, or a folder that holds other things and no ``studio.json``.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        self.lock = threading.RLock()  # read-modify-write of records (favourites, jobs)
        marker = self.root / "studio.json"
        if self.root.exists() and not self.root.is_dir():
            raise MakemoreError(f"{self.root}: is not a folder (the studio's workspace is one)")
        if marker.is_file():
            if self._read(marker, None) != FORMAT:
                raise MakemoreError(f"{marker}: not a makemore studio workspace of version {FORMAT['version']}")
        elif self.root.is_dir() and any(self.root.iterdir()):
            raise MakemoreError(f"{self.root}: not empty and not a studio workspace (no studio.json): choose another")
        for folder in ("lists", "runs", "favourites", "logs"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        if not marker.is_file():
            self._write(marker, FORMAT)
        for stale in (self.root / "lists").glob(".new-*"):  # a list whose upload was cut short
            shutil.rmtree(stale, ignore_errors=True)

    # paths: made from checked ids only
    def list_dir(self, list_id: str) -> Path:
        return self.root / "lists" / check_id(list_id, "list")

    def items_path(self, list_id: str) -> Path:
        return self.list_dir(list_id) / "items.txt"

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / check_id(run_id, "run")

    def log_path(self, job_id: str) -> Path:
        return self.root / "logs" / f"{check_id(job_id, 'job')}.log"

    @property
    def jobs_path(self) -> Path:
        return self.root / "jobs.json"

    def _read(self, path: Path, default: Any) -> Any:
        """A JSON file's value (``default`` when missing; a damaged file is reported on stderr and skipped)."""
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return default
        except (OSError, ValueError) as exc:
            print(f"makemore: studio: {path}: cannot read ({exc}); skipped", file=sys.stderr)
            return default

    def _write(self, path: Path, value: Any) -> None:
        files.atomic_write_text(path, json.dumps(value, ensure_ascii=False, indent=1) + "\n")

    # lists
    def add_list(
        self, name: str, raw: bytes, fmt: str, item_column: str = "", label_column: str = "", *, field: str = "text"
    ) -> dict:
        """Store a list and its summary (the folder appears whole, by a rename).

        Raises:
            RequestError: 400 when no item can be read (nothing is kept).
        """
        list_id = new_id()
        staging = self.root / "lists" / f".new-{list_id}"
        staging.mkdir()
        try:
            files.atomic_write_bytes(staging / "items.txt", raw)
            summary = lists.summarize(staging / "items.txt", fmt, item_column, label_column)
            if not summary["items"]:
                raise params.bad(f"{field}: no item can be read: {summary['error']}")
            record = {
                "id": list_id,
                "name": name,
                "created": round(time.time(), 3),
                "format": fmt,
                "item_column": item_column or None,
                "label_column": label_column or None,
                "summary": summary,
            }
            self._write(staging / "list.json", record)
            staging.rename(self.list_dir(list_id))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return record

    def get_list(self, list_id: Any) -> dict:
        record = self._read(self.list_dir(list_id) / "list.json", None)
        if record is None:
            raise params.RequestError(404, f"list: no such list {list_id!r}")
        return record

    def all_lists(self) -> list[dict]:
        found = [self._read(p / "list.json", None) for p in (self.root / "lists").iterdir() if ID.fullmatch(p.name)]
        return sorted((r for r in found if r), key=lambda r: r["created"])

    def delete_list(self, list_id: Any) -> None:
        folder = self.list_dir(list_id)
        self.get_list(list_id)
        shutil.rmtree(folder)

    # runs
    def save_run(self, record: dict) -> None:
        self._write(self.root / "runs" / f"{check_id(record['id'], 'run')}.json", record)

    def get_run(self, run_id: Any) -> dict:
        record = self._read(self.root / "runs" / f"{check_id(run_id, 'run')}.json", None)
        if record is None:
            raise params.RequestError(404, f"run: no such run {run_id!r}")
        return record

    def all_runs(self) -> list[dict]:
        found = [self._read(p, None) for p in (self.root / "runs").glob("*.json") if ID.fullmatch(p.stem)]
        return sorted((r for r in found if r), key=lambda r: r["created"])

    def delete_run(self, run_id: Any) -> None:
        self.get_run(run_id)
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)
        (self.root / "favourites" / f"{run_id}.json").unlink(missing_ok=True)
        (self.root / "runs" / f"{run_id}.json").unlink()

    # favourites
    def favourites(self, run_id: Any) -> list[dict]:
        self.get_run(run_id)
        return self._read(self.root / "favourites" / f"{run_id}.json", [])

    def set_favourite(self, run_id: Any, item: str, score: float | None, label: str | None, starred: bool) -> list:
        """Star (or unstar) ``item`` of a run; the run's favourites after it."""
        with self.lock:
            kept = [f for f in self.favourites(run_id) if f["item"] != item or f["label"] != label]
            if starred:
                if len(kept) >= MAX_FAVOURITES:
                    raise params.RequestError(409, f"item: a run keeps at most {MAX_FAVOURITES:,} favourites")
                kept.append({"item": item, "score": score, "label": label})
            self._write(self.root / "favourites" / f"{run_id}.json", kept)
            return kept

    # jobs
    def load_jobs(self) -> list[dict]:
        jobs = self._read(self.jobs_path, [])
        return jobs if isinstance(jobs, list) else []

    def save_jobs(self, jobs: list[dict]) -> None:
        with self.lock:
            self._write(self.jobs_path, jobs)
