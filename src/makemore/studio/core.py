"""The studio without HTTP: lists, trainings, runs and favourites of a workspace, as JSON-ready dicts.

Each method checks its request (``RequestError``: 400 naming the field, 404 an unknown id, 409 a
conflict) and answers what the route sends. Runs with a checkpoint are served by a serve ``App``
(``serve_id``: their id in ``/api/generate`` and the other serve routes).
"""

from __future__ import annotations

import csv
import io
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from makemore import api
from makemore.errors import MakemoreError
from makemore.serve import App, params
from makemore.studio import lists
from makemore.studio.jobs import ACTIVE, Jobs
from makemore.studio.workspace import MAX_ITEM, MAX_NAME, Workspace, check_id, check_name, new_id

UPLOAD_MAX_BYTES = 20 * 1024 * 1024  # bytes of an uploaded list
UPLOAD_MAX_LINES = 1_000_000  # lines of a list
TIME = {"least": 30, "most": 1800, "default": 120}  # seconds of a training
RESUMABLE = ("cancelled", "failed", "interrupted")


AUTO = {"name": "auto", "label": "auto (chosen for the list and the time)",
        "description": "the family, size and training measured best for a list of this size in this time"}  # fmt: skip


def models() -> list[dict]:
    """The studio's model choices: auto (train's default) first, the presets, then the families
    with their defaults."""
    choices = [AUTO, *({"name": n, "label": n, "description": p.description} for n, p in api.PRESETS.items())]
    for name in api.model_names():
        choices.append({"name": name, "label": f"{name} (family)", "description": f"{name} with its own defaults"})
    return choices


def fields(body: dict, allowed: Sequence[str]) -> None:
    unknown = next((k for k in body if k not in allowed), None)
    if unknown is not None:
        raise params.bad(f"{str(unknown)[:40]}: unknown field (fields: {', '.join(allowed)})")


def text_field(body: dict, field: str, most: int, default: str = "") -> str:
    value = body.get(field, default)
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > most or not value.isprintable():
        raise params.bad(f"{field}: must be a string of at most {most} printable characters")
    return value.strip()


def list_options(body: dict) -> tuple[str, str, str]:
    """(format, item column, label column) of a list's request."""
    fmt = body.get("format", "lines")
    if fmt not in lists.FORMATS:
        raise params.bad(f"format: must be one of {', '.join(lists.FORMATS)}, got {str(fmt)[:40]!r}")
    item_column, label_column = text_field(body, "item_column", MAX_NAME), text_field(body, "label_column", MAX_NAME)
    if fmt in ("csv", "tsv") and not item_column:
        raise params.bad(f"item_column: a {fmt} list needs the column of its items (a header name or number)")
    if fmt not in ("csv", "tsv") and (item_column or label_column):
        raise params.bad(f"{'item_column' if item_column else 'label_column'}: only a csv or tsv list has columns")
    return fmt, item_column, label_column


def check_lines(raw: bytes, field: str) -> None:
    if len(raw) > UPLOAD_MAX_BYTES:
        raise params.RequestError(413, f"{field}: {len(raw):,} bytes; at most {UPLOAD_MAX_BYTES:,}")
    lines = raw.count(b"\n") + (not raw.endswith(b"\n"))
    if lines > UPLOAD_MAX_LINES:
        raise params.RequestError(413, f"{field}: {lines:,} lines; at most {UPLOAD_MAX_LINES:,}")


class Studio:
    """A workspace's lists, runs and trainings.

    Args:
        workspace: its folder (created on first use).
        train_args: flags that replace a training's ``--time`` (tests: a few steps).
        token_required: whether the server asks for a token (shown in ``state``).
    """

    def __init__(self, workspace: str | Path, *, train_args: Sequence[str] | None = None, token_required=False):
        self.ws = Workspace(workspace)
        self.app = App([])
        self.token_required = token_required
        self.closing = threading.Event()  # ends the event streams
        self.serve_ids: dict[str, int] = {}
        for run in self.ws.all_runs():
            self._serve(run)
        self.jobs = Jobs(self.ws, self._job_ended, train_args)

    def start(self) -> None:
        self.jobs.start()

    def close(self) -> None:
        """Stop the queue (a running child is interrupted and keeps its checkpoint)."""
        self.closing.set()
        self.jobs.close()
        self.app.close()

    def _serve(self, run: dict) -> None:
        """Serve the run's best checkpoint (again, after a training), if it has one."""
        old = self.serve_ids.pop(run["id"], None)
        if old is not None:
            self.app.remove_run(old)
        path = self.ws.run_dir(run["id"])
        if api.RunDir(path).checkpoint("best").is_file():
            try:
                self.serve_ids[run["id"]] = self.app.add_run(path, run["name"])
            except MakemoreError as exc:
                print(f"makemore: studio: run {run['id']}: cannot load it ({exc})", file=sys.stderr)

    def _job_ended(self, job: dict) -> None:
        try:
            run = self.ws.get_run(job["run"])
        except params.RequestError:  # deleted meanwhile
            return
        run.update(status=job["status"], job=job["id"])
        self.ws.save_run(run)
        self._serve(run)

    def state(self) -> dict:
        """``GET /api/studio/state``."""
        return {
            "workspace": str(self.ws.root),
            "token_required": self.token_required,
            "lists": self.ws.all_lists(),
            "runs": self.runs(),
            "jobs": self.jobs.snapshot(),
            "models": models(),
            "time": TIME,
            "limits": {"upload_bytes": UPLOAD_MAX_BYTES, "upload_lines": UPLOAD_MAX_LINES},
        }

    def add_list(self, body: dict) -> dict:
        """``POST /api/studio/lists``: ``{"name", "text", "format", "item_column"?, "label_column"?}``."""
        fields(body, ("name", "text", "format", "item_column", "label_column"))
        name = check_name(body.get("name"))
        text = body.get("text")
        if not isinstance(text, str):
            raise params.bad(f"text: must be a string (the list, one item per line), got {type(text).__name__}")
        raw = text.encode("utf-8")
        check_lines(raw, "text")
        return {"list": self.ws.add_list(name, raw, *list_options(body), field="text")}

    def upload_list(self, form: dict, raw: bytes) -> dict:
        """``POST /api/studio/lists/upload``: the form's fields (strings) and the file's bytes."""
        fields(form, ("name", "format", "item_column", "label_column"))
        check_lines(raw, "file")
        name = check_name(form.get("name"))
        return {"list": self.ws.add_list(name, raw, *list_options(form), field="file")}

    def delete_list(self, list_id: str) -> dict:
        self.ws.get_list(list_id)
        with self.jobs.lock:
            if any(j["list"] == list_id and j["status"] in ACTIVE for j in self.jobs.jobs):
                raise params.RequestError(409, "list: a training of this list is queued or running")
            self.ws.delete_list(list_id)
        return {"deleted": list_id}

    def train(self, body: dict) -> dict:
        """``POST /api/studio/train``: ``{"list", "name"?, "time", "model"}`` -> the job and its run."""
        fields(body, ("list", "name", "time", "model"))
        record = self.ws.get_list(check_id(body.get("list"), "list"))
        if not record["summary"]["trainable"]:
            problem = record["summary"]["error"] or f"{len(record['summary']['refused'])} refused lines"
            raise params.bad(f"list: makemore train refuses it ({problem})")
        seconds = body.get("time", TIME["default"])
        if not (
            isinstance(seconds, int) and not isinstance(seconds, bool) and TIME["least"] <= seconds <= TIME["most"]
        ):
            raise params.bad(f"time: must be whole seconds from {TIME['least']} to {TIME['most']}, got {seconds!r}")
        model = body.get("model", AUTO["name"])
        if model not in {m["name"] for m in models()}:
            raise params.bad(f"model: unknown model {str(model)[:40]!r} (a preset or a family of state.models)")
        name = check_name(body["name"]) if body.get("name") is not None else f"{record['name']} ({model})"
        run = {"id": new_id(), "name": name, "list": record["id"], "model": model, "time": seconds}
        run.update(created=round(time.time(), 3), status="queued", job=None)
        job = self.jobs.submit(run, seconds, model)
        run["job"] = job["id"]
        self.ws.save_run(run)
        return {"job": self.jobs.public(job), "run": self.public_run(run)}

    def cancel(self, job_id: str) -> dict:
        return {"job": self.jobs.public(self.jobs.cancel(check_id(job_id, "job")))}

    def resume(self, run_id: str) -> dict:
        """``POST /api/studio/runs/{id}/resume``: from its last checkpoint (or from the start without one)."""
        run = self.ws.get_run(run_id)
        if self.jobs.of_run(run_id) is not None:
            raise params.RequestError(409, "run: it is queued or training already")
        if run["status"] not in RESUMABLE:
            raise params.RequestError(
                409, f"run: it is {run['status']}; only a cancelled, failed or interrupted run resumes"
            )
        checkpoint = api.RunDir(self.ws.run_dir(run_id)).checkpoint("last").is_file()
        job = self.jobs.submit(run, run["time"], run["model"], resume=checkpoint)
        run.update(status="queued", job=job["id"])
        self.ws.save_run(run)
        return {"job": self.jobs.public(job)}

    def public_run(self, run: dict) -> dict:
        """A run as the API shows it."""
        try:
            list_name = self.ws.get_list(run["list"])["name"]
        except params.RequestError:
            list_name = None  # the list was deleted
        served = self.serve_ids.get(run["id"])
        dev = chosen = None
        if served is not None:
            s = self.app.served[served]
            metrics = s.run.description.metrics if s is not None else {}
            dev = metrics.get("best_dev_loss", metrics.get("dev_loss"))
            auto = s.run.description.auto if s is not None else None
            chosen = {"summary": auto["summary"], "reason": auto["reason"]} if auto else None
        with self.jobs.lock:
            spans = [(j["started"], j["ended"]) for j in self.jobs.jobs if j["run"] == run["id"] and j["started"]]
        seconds = sum((end or time.time()) - start for start, end in spans)
        out = {k: run[k] for k in ("id", "name", "list", "model", "created", "status")}
        out.update(list_name=list_name, dev_nll=dev, train_seconds=round(seconds, 1), serve_id=served, auto=chosen)
        return out

    def runs(self) -> list[dict]:
        return [self.public_run(run) for run in self.ws.all_runs()]

    def rename(self, run_id: str, body: dict) -> dict:
        fields(body, ("name",))
        run = self.ws.get_run(run_id)
        run["name"] = check_name(body.get("name"))
        self.ws.save_run(run)
        self.jobs.rename(run_id, run["name"])
        if run_id in self.serve_ids:
            self.app.rename_run(self.serve_ids[run_id], run["name"])
        return {"run": self.public_run(run)}

    def delete_run(self, run_id: str, body: dict) -> dict:
        fields(body, ("confirm",))
        self.ws.get_run(run_id)
        if body.get("confirm") != run_id:
            raise params.bad("confirm: repeat the run's id to delete it")
        with self.jobs.lock:
            if self.jobs.of_run(run_id) is not None:
                raise params.RequestError(409, "run: it is queued or training; cancel it first")
            self.jobs.forget(run_id)
        served = self.serve_ids.pop(run_id, None)
        if served is not None:
            self.app.remove_run(served)
        self.ws.delete_run(run_id)
        return {"deleted": run_id}

    def star(self, run_id: str, body: dict) -> list[dict]:
        """``POST /api/studio/runs/{id}/favourites``: ``{"item", "score", "label", "starred"}``."""
        fields(body, ("item", "score", "label", "starred"))
        item, score, label, starred = (body.get(k) for k in ("item", "score", "label", "starred"))
        if not isinstance(item, str) or not 1 <= len(item) <= MAX_ITEM or not item.isprintable():
            raise params.bad(f"item: must be a string of 1 to {MAX_ITEM} printable characters")
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
            raise params.bad(f"score: must be a number or null, got {type(score).__name__}")
        if label is not None:
            label = text_field(body, "label", MAX_NAME)
        if not isinstance(starred, bool):
            raise params.bad("starred: must be true or false")
        return self.ws.set_favourite(run_id, item, score, label, starred)

    def favourites_file(self, run_id: str, kind: str) -> tuple[bytes, str]:
        """The run's favourites as a .txt (one item a line) or .csv (``item,score,label``) file, and its name."""
        run = self.ws.get_run(run_id)
        rows = self.ws.favourites(run_id)
        if kind == "txt":
            text = "".join(f["item"] + "\n" for f in rows)
        else:
            text = csv_text(
                [["item", "score", "label"], *([f["item"], _num(f["score"]), f["label"] or ""] for f in rows)]
            )
        return text.encode("utf-8"), f"{run['name']} favourites.{kind}"


def _num(value: Any) -> str:
    return "" if value is None else repr(float(value)) if isinstance(value, float) else str(value)


def csv_text(rows: list[list[str]]) -> str:
    """Rows as CSV text (quoted where needed; a cell starting with = + - @ is prefixed by ' against spreadsheet formulas)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow(["'" + c if c[:1] in ("=", "+", "-", "@") and not _is_number(c) else c for c in row])
    return out.getvalue()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
