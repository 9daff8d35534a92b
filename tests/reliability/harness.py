"""Fault injection and torn reads: what the reliability tests and ``benchmarks/bench_reliability.py`` share.

Training runs in a subprocess (``python -m makemore.cli train``) that is killed with SIGKILL at a
random moment or in the middle of a file write, then resumed until it finishes; the finished run
must be bit-identical to one that was never interrupted ("nothing lost, nothing overwritten").
A second race has one process rewrite a checkpoint in a loop while another loads it.

Plain functions, no pytest; makemore is imported inside the functions that need it.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

TMP_SUFFIX = ".tmp"  # the suffix of makemore's temp files (makemore.files.TMP_SUFFIX)
MODEL_ARGS = {
    "mlp": "--model mlp --n-embd 4 --n-hidden 16 --batch-size 16 --seed 5",
    "lstm": "--model lstm --n-embd 8 --n-hidden 16 --n-layers 1 --dropout 0.1 --batch-size 8 --seed 5",
}
MIN_KILL_DELAY_S = 0.5
WRITE_SKIP_MAX = 6  # a 40-step run writes ~20 files, of which the 1 ms poll sees ~12
DEFAULT_KILL_AFTER_S = 5.0  # about one tiny run on 2 cores, most of it importing torch
RUN_TIMEOUT_S = 300
IGNORED_METRICS = ("steps_per_s",)  # timing: differs between any two runs


def subprocess_env() -> dict[str, str]:
    """The environment of every training subprocess: this one's, with one BLAS/OpenMP thread.

    Returns:
        a copy of ``os.environ`` with ``OMP_NUM_THREADS=1`` and ``MKL_NUM_THREADS=1``.
    """
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def write_corpus(path: str | Path, n: int = 300, seed: int = 0) -> Path:
    """Write a deterministic small words file: ``n`` words of 2..8 letters a-e.

    Args:
        path: the file to write.
        n: number of words.
        seed: seed of ``random.Random``.
    Returns:
        the path written.
    """
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcde") for _ in range(rng.randint(2, 8))) for _ in range(n)]
    path = Path(path)
    path.write_text("".join(w + "\n" for w in words), encoding="utf-8")
    return path


def train_cmd(run_dir: str | Path, words: str | Path, model: str, steps: int) -> list[str]:
    """The argv of a new tiny training run.

    Args:
        run_dir: the run directory (``-o``).
        words: the words file (``-i``).
        model: "mlp" or "lstm".
        steps: training steps (evaluation and logging every 5).
    Returns:
        the argv list, starting with ``sys.executable``.
    """
    if model not in MODEL_ARGS:
        raise ValueError(f"model: {model!r} is not one of {sorted(MODEL_ARGS)}")
    argv = [sys.executable, "-m", "makemore.cli", "train", "-i", str(words), "-o", str(run_dir), "-q"]
    return argv + MODEL_ARGS[model].split() + ["--steps", str(steps), "--eval-interval", "5", "--log-interval", "5"]


def resume_cmd(run_dir: str | Path) -> list[str]:
    """The argv that resumes the run in ``run_dir``.

    Args:
        run_dir: the run directory.
    Returns:
        the argv list.
    """
    return [sys.executable, "-m", "makemore.cli", "train", "--resume", "-o", str(run_dir), "-q"]


def run_cmd(argv: list[str]) -> subprocess.CompletedProcess:
    """Run ``argv`` to its end with ``subprocess_env()``, capturing its output as text.

    Args:
        argv: the command.
    Returns:
        the completed process.
    """
    return subprocess.run(argv, env=subprocess_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


def timed_train(run_dir: str | Path, words: str | Path, model: str, steps: int) -> float:
    """Train a run straight through (the uninterrupted reference).

    Args:
        run_dir, words, model, steps: as for ``train_cmd``.
    Returns:
        the wall-clock seconds it took (a bound for random kill delays).
    Raises:
        RuntimeError: the run failed.
    """
    started = time.perf_counter()
    proc = run_cmd(train_cmd(run_dir, words, model, steps))
    if proc.returncode != 0:
        raise RuntimeError(f"straight {model} run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return time.perf_counter() - started


def checkpoint_step(run_dir: str | Path) -> int | None:
    """The training step saved in ``run_dir/last.safetensors``, or None when there is none.

    Args:
        run_dir: the run directory.
    Returns:
        the step, or None.
    """
    from makemore.store.checkpoint import read_meta

    last = Path(run_dir) / "last.safetensors"
    return read_meta(last)["state"]["step"] if last.exists() else None


def temp_files(run_dir: str | Path) -> set[str]:
    """Names of the temp files (``*.tmp``) in ``run_dir`` (empty when it does not exist).

    Args:
        run_dir: the run directory.
    Returns:
        the set of names.
    """
    try:
        with os.scandir(run_dir) as entries:
            return {entry.name for entry in entries if entry.name.endswith(TMP_SUFFIX)}
    except FileNotFoundError:
        return set()


def _wait_then_kill(proc: subprocess.Popen, delay_s: float) -> None:
    """SIGKILL ``proc`` after ``delay_s`` unless it ends first."""
    try:
        proc.wait(timeout=delay_s)
    except subprocess.TimeoutExpired:
        proc.kill()


def _kill_in_write(proc: subprocess.Popen, run_dir: Path, ignore: set[str], skip: int) -> None:
    """SIGKILL ``proc`` as soon as a temp file (other than ``ignore``) is seen in ``run_dir``, after
    letting ``skip`` distinct ones go by; polls about every millisecond until ``proc`` ends."""
    seen: set[str] = set()
    while proc.poll() is None:
        seen |= temp_files(run_dir) - ignore
        if len(seen) > skip:
            proc.kill()
            return
        time.sleep(0.001)


def _start(run_dir: Path, words: str | Path, model: str, steps: int) -> list[str] | None:
    """The command that continues the run in ``run_dir``: a resume when it holds an unfinished
    run, a new run when it holds none, None when it is finished."""
    step = checkpoint_step(run_dir)
    if step is None:
        return train_cmd(run_dir, words, model, steps)
    return resume_cmd(run_dir) if step < steps else None


def finish_run(run_dir: str | Path, words: str | Path, model: str, steps: int, returncodes: list[int]) -> bool:
    """Resume (or, with no checkpoint to resume, start again) the run in ``run_dir`` until it is finished.

    Args:
        run_dir, words, model, steps: as for ``train_cmd``.
        returncodes: each command's exit code is appended.
    Returns:
        whether a resume command ran.
    Raises:
        RuntimeError: the run did not finish after a few tries.
    """
    run_dir, resumed, errors = Path(run_dir), False, []
    for _ in range(3):
        argv = _start(run_dir, words, model, steps)
        if argv is None:
            return resumed
        proc = run_cmd(argv)
        returncodes.append(proc.returncode)
        resumed = resumed or "--resume" in argv
        if proc.returncode == 2 and "--resume" not in argv:  # a partial run without last.safetensors
            proc = run_cmd([*argv, "--overwrite"])
            returncodes.append(proc.returncode)
        if proc.returncode == 0:
            return resumed
        errors.append(proc.stderr.strip()[-1000:])
    raise RuntimeError(f"{run_dir}: the run did not finish: {errors}")


def kill_and_resume(
    run_dir: str | Path,
    words: str | Path,
    model: str,
    steps: int,
    kill_after_s: float | None = None,
    during_write: bool = False,
    rng: random.Random | None = None,
    *,
    finish: bool = True,
    write_skip_max: int = WRITE_SKIP_MAX,
) -> dict:
    """Continue the run in ``run_dir`` in a subprocess, SIGKILL it, then resume it to its end.

    The subprocess is a new run (``train_cmd``) when ``run_dir`` holds no checkpoint, else a resume;
    a finished run is left alone (nothing to kill). It is killed after a delay drawn uniformly from
    [0.5 s, ``kill_after_s``], or with ``during_write`` as soon as a temp file appears (inside a
    checkpoint, ``run.json`` or ``metrics.jsonl`` write), letting ``rng.randint(0, write_skip_max)``
    temp files go by first so that kills spread over the first half of the run's writes.

    Args:
        run_dir, words, model, steps: as for ``train_cmd``.
        kill_after_s: upper bound of the random delay (default ``DEFAULT_KILL_AFTER_S``).
        during_write: kill inside a write instead of at a random moment.
        rng: the random source (default ``random.Random(0)``).
        finish: resume until the run is finished (False: leave it killed, for another kill).
        write_skip_max: most temp files let go by before a ``during_write`` kill (0: the first;
            a resumed run that has little left to do may write fewer than ``WRITE_SKIP_MAX``).
    Returns:
        ``killed`` (the SIGKILL ended the process), ``during_write`` (a temp file it was writing was
        left behind), ``stopped_at_step`` (step of ``last.safetensors`` after the kill, or None),
        ``resumed`` (a resume command ran) and ``returncodes`` (of every command, in order).
    """
    run_dir, rng = Path(run_dir), rng or random.Random(0)
    argv = _start(run_dir, words, model, steps)
    result = {"killed": False, "during_write": False, "stopped_at_step": checkpoint_step(run_dir)}
    result.update(resumed=False, returncodes=[])
    if argv is None:
        return result
    before = temp_files(run_dir)  # left by an earlier kill: the new process removes them
    proc = subprocess.Popen(argv, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if during_write:
            _kill_in_write(proc, run_dir, before, skip=rng.randint(0, write_skip_max))
        else:
            upper = max(kill_after_s or DEFAULT_KILL_AFTER_S, MIN_KILL_DELAY_S)
            _wait_then_kill(proc, rng.uniform(MIN_KILL_DELAY_S, upper))
        returncode = proc.wait(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    result["returncodes"].append(returncode)
    result["killed"] = returncode == -signal.SIGKILL
    result["during_write"] = result["killed"] and bool(temp_files(run_dir) - before)
    result["stopped_at_step"] = checkpoint_step(run_dir)
    if finish:
        result["resumed"] = finish_run(run_dir, words, model, steps, result["returncodes"])
    return result


def signal_and_resume(run_dir: str | Path, words: str | Path, model: str, steps: int, signum: int) -> dict:
    """Start a new run, send it ``signum`` once its first checkpoint exists, then resume it to its end.

    Args:
        run_dir, words, model, steps: as for ``train_cmd``.
        signum: e.g. ``signal.SIGINT`` or ``signal.SIGTERM``.
    Returns:
        ``returncode`` (of the signalled process), ``stderr`` (its), ``interrupted_step`` (the step
        its message names, or None), ``saved_step`` (of ``last.safetensors`` after it ended),
        ``temp_files`` (left behind) and ``resume_returncode`` (None when nothing was resumed).
    """
    run_dir = Path(run_dir)
    last = run_dir / "last.safetensors"
    proc = subprocess.Popen(
        train_cmd(run_dir, words, model, steps),
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while proc.poll() is None and not last.exists():
            time.sleep(0.001)
        if proc.poll() is None:
            proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    found = re.search(r"interrupted at step (\d+)", stderr)
    result = {"returncode": proc.returncode, "stderr": stderr, "interrupted_step": int(found[1]) if found else None}
    result.update(saved_step=checkpoint_step(run_dir), temp_files=sorted(temp_files(run_dir)), resume_returncode=None)
    if result["saved_step"] is not None and result["saved_step"] < steps:
        result["resume_returncode"] = run_cmd(resume_cmd(run_dir)).returncode
    return result


def _same_tensors(a: dict, b: dict, what: str) -> str:
    """'' when the two name -> tensor dicts are bit-identical, else what differs."""
    import torch

    if sorted(a) != sorted(b):
        return f"{what}: different names {sorted(set(a) ^ set(b))}"
    for name in sorted(a):
        x, y = a[name], b[name]
        if x.dtype != y.dtype or x.shape != y.shape or not torch.equal(x, y):
            return f"{what}: {name} differs"
    return ""


def _same_optimizer(a: dict | None, b: dict | None) -> str:
    """'' when two optimizer state dicts (``{"state", "param_groups"}``) are identical, else what differs."""
    import torch

    if a is None or b is None:
        return "" if a is b else "optimizer state: present in only one"
    if a["param_groups"] != b["param_groups"]:
        return "optimizer param_groups differ"
    if sorted(a["state"]) != sorted(b["state"]):
        return "optimizer state: different parameters"
    for param_id in sorted(a["state"]):
        sa, sb = a["state"][param_id], b["state"][param_id]
        tensors = [k for k, v in sa.items() if isinstance(v, torch.Tensor)]
        problem = _same_tensors({k: sa[k] for k in tensors}, {k: sb.get(k) for k in tensors}, f"optimizer {param_id}")
        plain_a = {k: v for k, v in sa.items() if k not in tensors}
        plain_b = {k: v for k, v in sb.items() if not isinstance(v, torch.Tensor)}
        if problem or plain_a != plain_b or set(sa) != set(sb):
            return problem or f"optimizer {param_id}: plain values differ ({plain_a} vs {plain_b})"
    return ""


def _same_checkpoint(dir_a: Path, dir_b: Path, which: str) -> str:
    """'' when checkpoint ``which`` of two runs holds the same tensors, optimizer, RNG and state."""
    from makemore.store.checkpoint import load_checkpoint

    path_a, path_b = dir_a / f"{which}.safetensors", dir_b / f"{which}.safetensors"
    if not (path_a.exists() and path_b.exists()):
        return "" if path_a.exists() == path_b.exists() else f"{which}.safetensors: in only one run"
    a, b = load_checkpoint(path_a), load_checkpoint(path_b)
    problem = (
        _same_tensors(a.model_state, b.model_state, f"{which} model")
        or _same_optimizer(a.optimizer_state, b.optimizer_state)
        or _same_tensors(a.rng_state, b.rng_state, f"{which} rng")
    )
    if not problem and a.meta.get("state") != b.meta.get("state"):
        problem = f"{which} meta state: {a.meta.get('state')} vs {b.meta.get('state')}"
    return problem


def metrics_rows(run_dir: str | Path) -> list[dict]:
    """The rows of ``run_dir/metrics.jsonl`` without their timing keys (``IGNORED_METRICS``).

    Args:
        run_dir: the run directory.
    Returns:
        the rows (empty when there is no file).
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{k: v for k, v in row.items() if k not in IGNORED_METRICS} for row in rows]


def same_run(dir_a: str | Path, dir_b: str | Path) -> tuple[bool, str]:
    """Whether two finished run directories hold the same run, bit for bit.

    Compares ``last`` and ``best`` (model tensors, optimizer tensors and plain values, RNG state,
    ``meta["state"]``), the ``metrics.jsonl`` rows (without ``steps_per_s``) and ``run.json``.

    Args:
        dir_a, dir_b: the run directories (e.g. an uninterrupted run and a killed-and-resumed one).
    Returns:
        ``(True, "")``, or ``(False, what differs)``.
    """
    dir_a, dir_b = Path(dir_a), Path(dir_b)
    if not (dir_b / "last.safetensors").exists():
        return False, f"{dir_b}: no last.safetensors"
    problem = _same_checkpoint(dir_a, dir_b, "last") or _same_checkpoint(dir_a, dir_b, "best")
    if problem:
        return False, problem
    rows_a, rows_b = metrics_rows(dir_a), metrics_rows(dir_b)
    if rows_a != rows_b:
        first = next((i for i, (x, y) in enumerate(zip(rows_a, rows_b)) if x != y), min(len(rows_a), len(rows_b)))
        return False, f"metrics.jsonl: {len(rows_a)} vs {len(rows_b)} rows, first difference at row {first}"
    run_a, run_b = (json.loads((d / "run.json").read_text(encoding="utf-8")) for d in (dir_a, dir_b))
    if run_a != run_b:
        return False, f"run.json differs (state {run_a.get('state')} vs {run_b.get('state')})"
    return True, ""


WRITER = """
import sys, torch
from makemore.store.checkpoint import save_checkpoint
i = 0
while True:
    save_checkpoint(sys.argv[1], model_state={"w": torch.full((4096,), float(i))}, meta={"state": {"step": i}})
    i += 1
"""


def torn_read_race(path: str | Path, loads: int = 1000, seed: int = 0) -> dict:
    """Load a checkpoint ``loads`` times while a subprocess rewrites it in a tight loop.

    The writer saves step i as a tensor full of ``float(i)`` with ``{"state": {"step": i}}`` in the
    header, so a torn read (a header of one write with tensors of another) shows as a mismatch.

    Args:
        path: the checkpoint file (its directory must exist; temp files go there).
        loads: number of loads.
        seed: seed of the short random pauses between loads (spreads them over the writes).
    Returns:
        ``loads``, ``errors`` (loads that raised), ``first_error`` (its message, or None), ``torn``
        (header and tensors disagree), ``distinct_steps`` (how many writes were seen) and ``writes``
        (the step of the last load: about how many writes happened).
    """
    from makemore.store.checkpoint import load_checkpoint

    path, rng = Path(path), random.Random(seed)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=subprocess_env())
    counts = {"loads": 0, "errors": 0, "first_error": None, "torn": 0, "distinct_steps": 0, "writes": 0}
    steps: set[int] = set()
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not path.exists():
            if writer.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the checkpoint writer ended ({writer.returncode}) before writing {path}")
            time.sleep(0.01)
        for _ in range(loads):
            counts["loads"] += 1
            try:
                ckpt = load_checkpoint(path)
                step, w = ckpt.meta["state"]["step"], ckpt.model_state["w"]
            except Exception as exc:  # a torn or half-written file shows as any kind of error
                counts["errors"] += 1
                counts["first_error"] = counts["first_error"] or f"{type(exc).__name__}: {exc}"
                continue
            steps.add(step)
            if w.shape != (4096,) or not bool((w == float(step)).all()):
                counts["torn"] += 1
            if rng.random() < 0.5:
                time.sleep(rng.uniform(0, 0.0005))
    finally:
        writer.kill()
        writer.wait()
    counts["distinct_steps"], counts["writes"] = len(steps), max(steps, default=0)
    return counts
