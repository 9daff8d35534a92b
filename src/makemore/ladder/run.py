"""Train every rung of the ladder on one corpus within one time budget, each in its own run
directory, and measure each the same way.

The ladder's state is ``DIR/ladder.json`` (written atomically after each rung): a rerun skips
the rungs it lists as done, resumes a rung whose run directory holds an unfinished run, and
trains the others.

The time rule: count rungs first (fitting is counting: seconds); then each rung trained by
gradient gets ``--time`` of (the ladder's budget - the time spent so far) / (gradient rungs
left), at least ``MIN_RUNG_SECONDS``; the time spent counts every rung's training and
measurements, done rungs of an earlier run of the ladder included.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from makemore import files
from makemore.config import DataConfig, RunConfig, default_train_config
from makemore.data.datasets import load_data
from makemore.durations import format_duration
from makemore.errors import MakemoreError
from makemore.evaluate.diagnostics import training_curve
from makemore.evaluate.samples import sample_metrics
from makemore.evaluate.scoring import evaluate
from makemore.generate.sampling import SampleConfig, sample
from makemore.ladder import MIN_RUNG_SECONDS, LadderConfig, Rung
from makemore.ladder.report import write_report
from makemore.models import REGISTRY, make_config
from makemore.store.description import count_parameters
from makemore.store.rundir import RunDir
from makemore.store.runs import load_run, training_data
from makemore.train.training import resume, train

FORMAT, VERSION = "makemore-ladder", 1
STATE_FILE = "ladder.json"
SHOWN_SAMPLES = 10  # samples per rung in the report


def run_ladder(
    data: DataConfig,
    config: LadderConfig,
    out_dir: str | Path,
    *,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train the ladder's rungs on ``data`` into ``out_dir/<rung>`` and write ``out_dir/report.md``.

    Args:
        data: the corpus (and its splits), as ``train`` reads it.
        config: the time budget, the rungs, the sample metrics' size and the seed.
        out_dir: the ladder's directory (created; a rerun continues it).
        progress: show each rung's progress bar.
        log: where the ladder's progress lines go (default: standard error).
    Returns:
        The ladder's state: ``{"rungs": {name: result}, ...}`` as ``ladder.json`` holds it.
    Raises:
        MakemoreError: bad input (before anything is written), or a directory holding another ladder.
    """
    log = log or (lambda line: print(line, file=sys.stderr))
    out = Path(out_dir)
    rungs = config.chosen
    by_gradient = [r for r in rungs if REGISTRY[r.model].model.trains_by_gradient]
    _check_budget(config, len(by_gradient))
    load_data(data)  # bad input is refused before anything is written
    state = _read_state(out, data, config)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter() - sum(r["seconds"] for r in state["rungs"].values())
    for i, rung in enumerate(sorted(rungs, key=lambda r: r in by_gradient), start=1):
        where = f"ladder [{i}/{len(rungs)}] {rung.name}"
        if rung.name in state["rungs"]:
            log(f"{where}: done (dev NLL {_nll(state['rungs'][rung.name]['dev_nll'])}), skipped")
            continue
        share = None
        if rung in by_gradient:
            left = [r for r in by_gradient if r.name not in state["rungs"]]
            remaining = config.time_budget - (time.perf_counter() - started)
            share = max(MIN_RUNG_SECONDS, remaining / len(left))
            if RunDir(out / rung.name).holds_run():
                log(f"{where}: resuming its interrupted run ({_left(remaining)} of the ladder left)")
            else:
                log(f"{where}: training for {format_duration(round(share))} ({_left(remaining)} of the ladder left)")
        else:
            log(f"{where}: counting")
        begun = time.perf_counter()
        result = train_rung(rung, data, config, out / rung.name, share, progress=progress)
        result["seconds"] = time.perf_counter() - begun
        state["rungs"][rung.name] = result
        files.atomic_write_text(out / STATE_FILE, json.dumps(state, indent=1) + "\n")
        log(f"{where}: dev NLL {_nll(result['dev_nll'])} in {result['seconds']:.0f} s")
    write_report(out, state, [r.name for r in rungs])
    log(f"ladder: {len(rungs)} rungs in {time.perf_counter() - started:.0f} s -> {out / 'report.md'}")
    return state


def _nll(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _left(seconds: float) -> str:
    return format_duration(round(seconds)) if seconds >= 1 else "none"


def _check_budget(config: LadderConfig, by_gradient: int) -> None:
    least = MIN_RUNG_SECONDS * by_gradient
    if config.time_budget < least:
        from makemore.errors import ConfigError

        raise ConfigError(
            "time_budget",
            f"at least {format_duration(least)} for {by_gradient} rungs trained by gradient "
            f"({MIN_RUNG_SECONDS:g} s each), got {format_duration(config.time_budget)}",
            owner="LadderConfig",
        )


def _read_state(out: Path, data: DataConfig, config: LadderConfig) -> dict[str, Any]:
    """The ladder already in ``out`` (checked to be of the same corpus and seed), or a new state."""
    fresh = {
        "format": FORMAT,
        "version": VERSION,
        "data": dataclasses.asdict(data),
        "seed": config.seed,
        "samples": config.samples,
        "rungs": {},
    }
    path = out / STATE_FILE
    if not path.exists():
        if out.exists() and not out.is_dir():
            raise MakemoreError(f"-o {out}: not a directory")
        return fresh
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MakemoreError(f"{path}: not a ladder's state ({exc})") from None
    if not (isinstance(state, dict) and state.get("format") == FORMAT and isinstance(state.get("rungs"), dict)):
        raise MakemoreError(f"{path}: not a ladder's state (no {FORMAT!r} format)")
    for key in ("data", "seed", "samples"):
        if state.get(key) != fresh[key]:
            raise MakemoreError(
                f"-o {out}: holds a ladder with other {key} ({key} differs from this command's); "
                "give another -o, or the same settings to continue it"
            )
    for name, result in state["rungs"].items():
        if not (isinstance(result, dict) and isinstance(result.get("seconds"), (int, float))):
            raise MakemoreError(f"{path}: rung {name!r} has no result")
    return state


def train_rung(
    rung: Rung, data: DataConfig, config: LadderConfig, run_dir: Path, share: float | None, *, progress: bool
) -> dict[str, Any]:
    """Train (or resume) one rung into ``run_dir`` and measure it.

    Args:
        share: the rung's ``--time`` in seconds (None: a count model, fitted whole).
    Returns:
        The rung's result (see ``measure``), plus how it was trained.
    """
    if share is not None and RunDir(run_dir).holds_run():
        metrics = _resume(run_dir, progress)
    else:
        train_options = {**rung.train_options, "seed": config.seed}
        if share is not None:
            train_options["time_budget"] = share
        run_config = RunConfig(
            model=rung.model,
            model_config=make_config(rung.model, rung.model_options),
            data=data,
            train=default_train_config(rung.model, train_options),
        )
        metrics = train(run_config, run_dir, overwrite=True, progress=progress)
    return {"model": rung.model, "time_share": share, **measure(run_dir, metrics, config)}


def _resume(run_dir: Path, progress: bool) -> dict[str, Any] | None:
    """Resume an interrupted rung; None when its run had finished (then it is only measured)."""
    try:
        return resume(run_dir, progress=progress)
    except MakemoreError as exc:
        if "already finished" in str(exc):
            return None
        raise


def measure(run_dir: Path, metrics: dict[str, Any] | None, config: LadderConfig) -> dict[str, Any]:
    """What the report shows of one trained rung.

    Args:
        metrics: what training returned (None: a finished run found on disk).
    Returns:
        parameters, train/dev/test NLL, training seconds, steps and steps/s, samples/s (``samples``
        items, timed), the sample metrics, ``SHOWN_SAMPLES`` samples and the dev NLL curve.
    """
    run = load_run(run_dir)
    data = training_data(run)
    nll = evaluate(run, data=data)
    trained_by_gradient = run.model.trains_by_gradient
    seconds = steps = None
    if metrics is not None:
        seconds = metrics.get("train_seconds", metrics.get("fit_seconds"))
        steps = metrics.get("steps")
    began = time.perf_counter()
    items = sample(run, SampleConfig(num=config.samples, seed=config.seed))
    sampling = time.perf_counter() - began
    quality = sample_metrics(run, num=config.samples, seed=config.seed, data=data)
    return {
        "family_kind": run.model.input_kind,
        # a count model's size: the entries of its tables
        "parameters": count_parameters(run.model) if trained_by_gradient else _table_entries(run.model),
        "train_nll": nll["train"],
        "dev_nll": nll["dev"],
        "test_nll": nll["test"],
        "train_seconds": seconds,
        "steps": steps if trained_by_gradient else None,
        "steps_per_s": steps / seconds if trained_by_gradient and steps and seconds else None,
        "samples_per_s": len(items) / sampling if sampling > 0 else None,
        "sample_metrics": quality.as_dict(),
        "samples": items[:SHOWN_SAMPLES],
        "curve": dev_curve(run_dir) if trained_by_gradient else [],
    }


def _table_entries(model) -> int:
    return sum(t.numel() for t in model.state_dict().values())


def dev_curve(run_dir: Path) -> list[list[float]]:
    """``[[seconds, dev NLL], ...]`` of a run's evaluations: the seconds of optimisation steps
    before each, summed from the metrics rows' steps/s (evaluations' own time left out)."""
    points, seconds, last_step, rate = [], 0.0, 0, None
    for row in training_curve(run_dir):
        step = row.get("step", last_step)
        if row.get("steps_per_s"):
            seconds += (step - last_step) / row["steps_per_s"]
            last_step, rate = step, row["steps_per_s"]
        elif "dev_loss" in row:
            ahead = (step - last_step) / rate if rate and step > last_step else 0.0
            points.append([seconds + ahead, row["dev_loss"]])
    return points
