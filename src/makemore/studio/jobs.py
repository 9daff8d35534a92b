"""The studio's trainings: one ``makemore train`` child process at a time, the rest queued (first in,
first out), each job recorded in ``jobs.json``.

A child is the command line's own ``makemore train`` (``sys.executable -m makemore``), in a session
of its own, with its output in ``logs/<job>.log``: a crash, a NaN or a kill of it ends its job
("failed", with the log's last line), never the server. Cancel sends SIGINT (``train`` saves its last
checkpoint and exits), then SIGKILL after ``KILL_AFTER_S``. Progress is read from the run directory
(``metrics.jsonl``, ``run.json``). A job recorded as running when the studio starts belonged to a
server that stopped: it becomes "interrupted" (its child, if still there, is interrupted too), and its
run can be resumed from its last checkpoint (``train --resume``).

The child trains with one intra-op thread (``CHILD_THREADS``) so that on a 2-core machine one core
stays free for the server's requests (docs/studio.md measures it).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from makemore import api, options
from makemore.serve import params
from makemore.studio import lists
from makemore.studio.workspace import Workspace, new_id

KILL_AFTER_S = 30.0  # after SIGINT, seconds a child has to save its checkpoint before SIGKILL
POLL_S = 0.2  # how often the runner looks at its child
CHILD_THREADS = 1
ACTIVE = ("queued", "running")
CURVE_POINTS = 400  # points of a job's loss curve, at most (rows are thinned evenly)
PUBLIC = ("id", "run", "list", "name", "model", "time", "status", "error", "created")


def _flag(cls: type, name: str) -> str:
    return options.find(cls, name).flag


def model_flags(model: str) -> list[str]:
    """``train``'s flags for the studio's model choice: "auto" (train's default), a preset or a family."""
    if model == "auto":
        return []
    if model in api.PRESETS:
        return ["--preset", model]
    return [_flag(api.RunConfig, "model"), model]


def _last_line(path: Path) -> str:
    try:
        lines = path.read_bytes()[-4096:].decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


def _alive(pid: int, run_dir: Path) -> bool:
    """Whether process ``pid`` is still a training child of ``run_dir`` (not a process that reused the pid)."""
    try:
        os.kill(pid, 0)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    return str(run_dir).encode() in cmdline


class Jobs:
    """The queue of trainings and the thread that runs it.

    Args:
        ws: the workspace.
        on_end: called with a job when its child has ended (not under the queue's lock).
        train_args: flags that replace ``--time N`` (tests: a few steps instead of 30 s or more).
    """

    def __init__(self, ws: Workspace, on_end: Callable[[dict], None], train_args: Sequence[str] | None = None):
        self.ws, self.on_end, self.train_args = ws, on_end, train_args
        self.lock = threading.RLock()
        self.jobs = ws.load_jobs()
        self.proc: subprocess.Popen | None = None
        self.running: dict | None = None
        self._wake, self._stop = threading.Event(), threading.Event()
        self._curves: dict[str, tuple[tuple, list, int | None]] = {}  # job -> (file stamp, curve, steps)
        self._recover()
        self._thread = threading.Thread(target=self._loop, name="makemore-studio-jobs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _recover(self) -> None:
        """Jobs recorded as running by a server that stopped: interrupted (their children too)."""
        for job in self.jobs:
            if job["status"] != "running":
                continue
            run_dir = self.ws.run_dir(job["run"])
            if job.get("pid") and _alive(job["pid"], run_dir):
                self._interrupt_pid(job["pid"], run_dir)
            job.update(status="interrupted", ended=time.time(), pid=None)
            job["error"] = "the studio stopped while it trained"
            self.on_end(job)
        self.ws.save_jobs(self.jobs)

    def _interrupt_pid(self, pid: int, run_dir: Path) -> None:
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + KILL_AFTER_S
        while _alive(pid, run_dir) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        if _alive(pid, run_dir):
            os.kill(pid, signal.SIGKILL)

    def submit(self, run: dict, time_s: int, model: str, *, resume: bool = False) -> dict:
        """Queue a training of ``run`` (its list and name from its record)."""
        job = {
            "id": new_id(),
            "run": run["id"],
            "list": run["list"],
            "name": run["name"],
            "model": model,
            "time": time_s,
            "status": "queued",
            "error": None,
            "created": round(time.time(), 3),
            "resume": resume,
            "pid": None,
            "started": None,
            "ended": None,
            "cancel": False,
        }
        with self.lock:
            self.jobs.append(job)
            self.ws.save_jobs(self.jobs)
        self._wake.set()
        return job

    def find(self, job_id: str) -> dict:
        with self.lock:
            job = next((j for j in self.jobs if j["id"] == job_id), None)
        if job is None:
            raise params.RequestError(404, f"job: no such job {job_id[:40]!r}")
        return job

    def of_run(self, run_id: str) -> dict | None:
        """The run's queued or running job, if any."""
        with self.lock:
            return next((j for j in self.jobs if j["run"] == run_id and j["status"] in ACTIVE), None)

    def cancel(self, job_id: str) -> dict:
        """Cancel a queued job at once, a running one by SIGINT (its checkpoint is kept)."""
        ended = None
        with self.lock:
            job = self.find(job_id)
            if job["status"] == "queued":
                job.update(status="cancelled", ended=time.time())
                ended = job
            elif job["status"] == "running" and not job["cancel"]:
                job.update(cancel=True, cancel_at=time.monotonic())
                self.proc.send_signal(signal.SIGINT)
            self.ws.save_jobs(self.jobs)
        if ended is not None:
            self.on_end(ended)
        return job

    def rename(self, run_id: str, name: str) -> None:
        with self.lock:
            for job in self.jobs:
                if job["run"] == run_id:
                    job["name"] = name
            self.ws.save_jobs(self.jobs)

    def forget(self, run_id: str) -> None:
        """Drop the jobs of a deleted run."""
        with self.lock:
            self.jobs = [j for j in self.jobs if j["run"] != run_id]
            self.ws.save_jobs(self.jobs)

    def command(self, job: dict) -> list[str]:
        """The child's command line."""
        run_dir = self.ws.run_dir(job["run"])
        threads = [_flag(api.TrainConfig, "threads"), str(CHILD_THREADS), "--quiet"]
        if job["resume"]:
            return [sys.executable, "-m", "makemore", "train", "--resume", "-o", str(run_dir), *threads]
        record = self.ws.get_list(job["list"])
        data = lists.train_flags(
            self.ws.items_path(job["list"]), record["format"], record["item_column"] or "", record["label_column"] or ""
        )
        budget = [_flag(api.TrainConfig, "time_budget"), str(job["time"])]
        if self.train_args is not None:
            budget = list(self.train_args)
        return [sys.executable, "-m", "makemore", "train", *data, "-o", str(run_dir), *model_flags(job["model"]),
                *budget, *threads]  # fmt: skip

    def _start(self, job: dict) -> None:
        """Start the child of ``job`` (under the lock); a child that cannot start fails the job."""
        try:
            with open(self.ws.log_path(job["id"]), "ab") as log:
                self.proc = subprocess.Popen(
                    self.command(job), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    cwd=self.ws.root, start_new_session=True,  # a Ctrl-C of the server's terminal is the server's
                )  # fmt: skip
        except (OSError, params.RequestError) as exc:
            job.update(outcome={"status": "failed", "error": f"cannot start the training: {exc}"}, ended=time.time())
            return
        job.update(status="running", pid=self.proc.pid, started=time.time())
        self.running = job

    def _ended(self, code: int) -> dict:
        """Note how the running job's child ended (under the lock): its ``outcome``, applied by ``_finish``
        once the run is loaded, so that a finished job's run is already served when it shows "finished"."""
        job, self.running, self.proc = self.running, None, None
        job.update(pid=None, ended=time.time())
        if code == 0:
            job["outcome"] = {"status": "finished", "error": None}
        elif job["cancel"]:
            job["outcome"] = {"status": "cancelled", "error": None}
        else:
            how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            job["outcome"] = {"status": "failed", "error": _last_line(self.ws.log_path(job["id"])) or how}
        return job

    def _finish(self, job: dict) -> None:
        """Tell ``on_end`` (outside the lock), then record the job's outcome."""
        try:
            self.on_end({**job, **job["outcome"]})
        except Exception as exc:  # the queue goes on: one line, no traceback
            print(f"makemore: studio: job {job['id']}: {type(exc).__name__}: {exc}", file=sys.stderr)
        with self.lock:
            job.update(job.pop("outcome"))
            self.ws.save_jobs(self.jobs)

    def _step(self) -> list[dict]:
        """One look at the queue: end, kill or start children; the jobs that ended."""
        ended, started = [], False
        with self.lock:
            if self.proc is not None:
                code = self.proc.poll()
                if code is not None:
                    ended.append(self._ended(code))
                elif self.running["cancel"] and time.monotonic() - self.running["cancel_at"] > KILL_AFTER_S:
                    self.proc.kill()
            while self.proc is None and not ended:  # the next starts once the last one's run is served
                job = next((j for j in self.jobs if j["status"] == "queued"), None)
                if job is None:
                    break
                self._start(job)
                started = True
                if "outcome" in job:  # it could not start
                    ended.append(job)
                    break
            if ended or started:
                self.ws.save_jobs(self.jobs)
        return ended

    def _loop(self) -> None:
        while not self._stop.is_set():
            for job in self._step():
                self._finish(job)
            self._wake.wait(POLL_S)
            self._wake.clear()

    def close(self) -> None:
        """Stop the runner; a running child is interrupted (its checkpoint saved) and its job marked so."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()
        job = None
        with self.lock:
            if self.proc is not None:
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(KILL_AFTER_S)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                job = self._ended(self.proc.returncode)
                if job["outcome"]["status"] != "finished":
                    job["outcome"] = {"status": "interrupted", "error": "the studio stopped while it trained"}
        if job is not None:
            self._finish(job)

    def snapshot(self) -> list[dict]:
        """Every job as the API shows it (``public``), oldest first."""
        with self.lock:
            jobs = [dict(j) for j in self.jobs]
        queued = [j["id"] for j in jobs if j["status"] == "queued"]
        return [self.public(j, queued) for j in jobs]

    def public(self, job: dict, queued: list[str] | None = None) -> dict:
        """A job as the API shows it: its record, progress (step, steps, curve), times, queue position."""
        if queued is None:
            with self.lock:
                queued = [j["id"] for j in self.jobs if j["status"] == "queued"]
        out = {k: job.get(k) for k in PUBLIC}
        step, steps, curve = self._progress(job)
        started, ended = job.get("started"), job.get("ended")
        elapsed = None if started is None else round((ended or time.time()) - started, 1)
        running = job["status"] == "running"
        out.update(step=step, steps=steps, curve=curve, elapsed_s=elapsed)
        out["left_s"] = round(max(0.0, job["time"] - elapsed), 1) if running and elapsed is not None else None
        out["position"] = 0 if running else (queued.index(job["id"]) + 1 if job["id"] in queued else None)
        return out

    def _progress(self, job: dict) -> tuple[int | None, int | None, list]:
        """(last step, planned steps, loss curve) from the run directory, read again only when it changed."""
        if job["status"] == "queued":
            return None, None, []
        run_dir = api.RunDir(self.ws.run_dir(job["run"]))
        stamp = tuple(_stamp(p) for p in (run_dir.metrics_path, run_dir.run_json))
        cached = self._curves.get(job["id"])
        if cached is None or cached[0] != stamp:
            rows = run_dir.read_metrics() or []
            try:
                steps = json.loads(run_dir.run_json.read_text(encoding="utf-8"))["train"]["steps"]
            except (OSError, ValueError, KeyError, TypeError):
                steps = None
            cached = self._curves[job["id"]] = (stamp, _curve(rows), steps)
        _, curve, steps = cached
        return (curve[-1][0] if curve else None), steps, curve


def _stamp(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except OSError:
        return (-1, -1)
    return (info.st_size, info.st_mtime_ns)


def _curve(rows: list[dict]) -> list[list]:
    """[[step, train loss or None, dev loss or None], ...]: one point per step, at most ``CURVE_POINTS``
    (every dev point kept, train points thinned evenly)."""
    points: dict[int, list] = {}
    for row in rows:
        if "train_loss" in row or "dev_loss" in row:
            point = points.setdefault(row["step"], [row["step"], None, None])
            point[1] = row.get("train_loss", point[1])
            point[2] = row.get("dev_loss", point[2])
    curve = list(points.values())
    if len(curve) > CURVE_POINTS:
        every = -(-len(curve) // CURVE_POINTS)
        curve = [p for i, p in enumerate(curve) if p[2] is not None or i % every == 0 or i == len(curve) - 1]
    return [[s, _finite(t), _finite(d)] for s, t, d in curve]


def _finite(value) -> float | None:
    """A loss as JSON holds it: NaN and infinities as None (a NaN loss fails the run)."""
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None
