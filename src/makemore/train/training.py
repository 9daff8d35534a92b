"""Training runs end to end: data, model, trainer and callbacks, run directory.

``train`` is what ``makemore train`` does. It checks everything (data, configs, the run
directory) before writing anything, so a refused run leaves nothing behind.

It is longer than 400 lines because the plan of a run (data, model, batchers, device, world,
budget) and the loop around the trainer still share this module; the consolidation splits them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from makemore import validation
from makemore.config import RunConfig
from makemore.data.corpus import EncodedCorpus
from makemore.data.datasets import Data, load_data
from makemore.errors import MakemoreError
from makemore.evaluate.scoring import evaluate_nll
from makemore.models import LanguageModel, build_model, get_family
from makemore.store.checkpoint import Checkpoint
from makemore.store.description import RunDescription, new_run_id, run_meta
from makemore.store.rundir import RunDir
from makemore.store.runs import load_run
from makemore.train import budget, distributed, execution
from makemore.train import threads as thread_policy
from makemore.train.averaging import AverageWeights, WeightAverage, evaluate_with_average
from makemore.train.callbacks import (
    Checkpointer,
    Deadline,
    EarlyStopping,
    MetricsFile,
    Pacer,
    ProgressBar,
    StopOnSignal,
    StopTogether,
    TensorBoard,
    UpdateRatios,
)
from makemore.train.trainer import Callback, ForwardBackward, LossNotFinite, Trainer, TrainState


def build(config: RunConfig, data: Data) -> tuple[RunConfig, LanguageModel]:
    """The config fitted to the data (e.g. a sequence model's positions) and its model,
    initialised from the run's seed."""
    model_cls = get_family(config.model).model
    config = dataclasses.replace(config, model_config=model_cls.fit_config(config.model_config, data.longest_item))
    torch.manual_seed(config.train.seed)
    return config, build_model(config.model, config.model_config, data.vocab.size)


def _resumed(run_dir: RunDir, changes: dict[str, Any]) -> tuple[RunConfig, Data, Checkpoint, RunDescription]:
    run_dir.check_not_written()
    last = run_dir.checkpoint("last")
    if not last.exists():
        validation.fail(None, "resume", f"no checkpoint to resume in {run_dir.path} (expected {last.name})")
    path, ckpt = run_dir.load("last")
    resumed = RunDescription.parse(ckpt.meta)
    run_dir.check_identity(path, ckpt.meta)
    config = resumed.config
    if changes:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, **changes))
    if get_family(config.model).model.trains_by_gradient:
        _check_resumable(run_dir, config, resumed.step, changes)
    data = load_data(config.data, resumed.vocab)
    if data.sha256 != resumed.data.sha256:
        validation.fail(None, "resume", f"{data.source} changed since this run started (its checksum differs)")
    return config, data, ckpt, resumed


def _check_resumable(run_dir: RunDir, config: RunConfig, step: int, changes: dict[str, Any]) -> None:
    """Refuse a resume that would do nothing, or diverge again where the run already did."""
    steps = config.train.steps
    if step >= steps and "steps" in changes:
        validation.fail(None, "steps", f"{steps}: the run is already at step {step}; give more to train longer")
    if step >= steps:
        finished = f"{run_dir.path}: the run already finished ({step} of {steps} steps)"
        validation.fail(None, "resume", f"{finished}; give more steps to train longer", ("steps",))
    stops = [row for row in run_dir.read_metrics(strict=False) or [] if "stopped" in row and row["step"] > step]
    if stops and not {"lr", "grad_clip"} & set(changes):
        row = stops[-1]
        stopped = f"{run_dir.path}: training stopped at step {row['step']} ({row['stopped']})"
        again = "with the same settings it would again (training is deterministic)"
        fix = f"resume with a lower lr (e.g. {config.train.lr / 2:g}) or a grad_clip"
        validation.fail(None, "resume", f"{stopped}; {again}: {fix}", ("lr", "grad_clip"))


@dataclass
class _Run:
    """Everything a run needs once its inputs are checked (nothing written yet)."""

    config: RunConfig
    data: Data
    model: LanguageModel
    device: torch.device
    train_batcher: Any
    dev_batcher: Any  # the dev evaluations during training (at most ``execution.WATCH_ITEMS`` items)
    report_dev_batcher: Any  # the final report's dev NLL: the whole dev split
    forward_backward: ForwardBackward | None  # set once the processes of a distributed run have joined
    ckpt: Checkpoint | None  # the checkpoint resumed from (its weights and optimizer state)
    world: distributed.World | None = None  # this process's place in a torchrun run
    budget: dict | None = None  # a time-budgeted run: the steps chosen and what they were chosen from
    deadline: tuple[float, float] | None = None  # and its (end by, seconds kept for the end)
    pace: tuple[float, float, float] | None = None  # and its (end at, seconds kept for the end, eval seconds)
    run_id: str | None = None  # kept across resumes (description.new_run_id)
    resumed: RunDescription | None = None  # the description of the checkpoint resumed from
    report_train_items: int | None = None  # the final report's train sample (None: execution.REPORT_ITEMS)


def _prepare(config: RunConfig | None, run_dir: RunDir, *, resume: bool, overwrite: bool, changes: dict) -> _Run:
    ckpt = resumed = None
    if resume:
        config, data, ckpt, resumed = _resumed(run_dir, changes)
    else:
        run_dir.check_new(overwrite=overwrite)
        run_dir.check_not_written()
        data = load_data(config.data)
    world = distributed.from_environment()
    device = execution.resolve_device(config.train.device, world)
    config, model = build(config, data)
    if ckpt is not None:
        model.load_state_dict(ckpt.model_state)
    model.to(device)
    train_corpus, dev_corpus = data.corpus("train"), data.corpus("dev")
    if len(train_corpus) == 0 or len(dev_corpus) == 0:
        n = len(data.split.train) + len(data.split.dev) + len(data.split.test)
        raise MakemoreError(
            f"{data.source}: too few items to split 80/10/10 into non-empty train and dev splits ({n}; need at least 6)"
        )
    train_batcher = model.batcher(train_corpus, device, config.train.batching)
    if world is not None and model.trains_by_gradient:
        if config.train.time_budget and not resume:
            validation.fail(None, "time_budget", "is for one process (each rank would plan its own steps)")
        if config.train.batch_size < world.size:  # BatchNorm's global moments need a row from every rank
            validation.fail(config.train, "batch_size", f"{config.train.batch_size}: below the {world.size} processes")
    watched = execution.bounded_sample(dev_corpus, execution.WATCH_ITEMS, config.train.seed)
    if world is not None and model.trains_by_gradient:  # each rank evaluates its part of the dev split
        watched, dev_corpus = (c.shard(world.rank, world.size) for c in (watched, dev_corpus))
    report_dev_batcher = model.batcher(dev_corpus, device)
    dev_batcher = model.batcher(watched, device) if len(watched) < len(dev_corpus) else report_dev_batcher
    execution.check_options(config.train, model, device)
    run_id = (resumed.run_id if resumed is not None else None) or new_run_id(config, data)
    return _Run(
        config,
        data,
        model,
        device,
        train_batcher,
        dev_batcher,
        report_dev_batcher,
        None,
        ckpt,
        world,
        run_id=run_id,
        resumed=resumed,
    )


def train(
    config: RunConfig,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
    on_start: Callable[[RunConfig], None] | None = None,
    budget_start: float | None = None,
) -> dict:
    """Train a new run and write its checkpoints into ``out_dir``.

    With ``config.train.time_budget`` set (a model trained by gradient), the steps are chosen
    so that this whole call ends within that many seconds (see ``makemore.train.budget``).

    Args:
        config: what to train.
        out_dir: the run directory (created if needed).
        overwrite: replace a run already in ``out_dir`` (once the new run's inputs are checked).
        progress: show a progress bar.
        on_start: called with the run's config once everything is checked, before anything is written.
        budget_start: the ``time.perf_counter()`` a time budget counts from (default: this
            call; the CLI gives the time makemore was imported, so that start-up counts too).
    Returns:
        The final metrics: train and dev NLL of the best checkpoint, steps, ``wall_seconds``.
    Raises:
        MakemoreError: bad input or a diverged run. TrainingInterrupted: stopped by a signal.
    """
    return _train(config, out_dir, {}, overwrite=overwrite, progress=progress, on_start=on_start, start=budget_start)


def resume(
    out_dir: str | Path,
    *,
    progress: bool = True,
    steps: int | None = None,
    lr: float | None = None,
    grad_clip: float | None = None,
    threads: int | None = None,
    on_start: Callable[[RunConfig], None] | None = None,
) -> dict:
    """Continue the run in ``out_dir`` from its ``last`` checkpoint, with its optimizer, RNG
    and step restored (the checkpoint's config is used; a time-budgeted run keeps its plan).

    Args:
        out_dir: the run directory.
        progress: show a progress bar.
        steps: a new total number of steps (None keeps the recorded one).
        lr, grad_clip: a new peak learning rate or gradient clipping (a run that stopped on a
            NaN/inf loss is only resumed with one of them changed).
        threads: other CPU threads (``TrainConfig.threads``; speed only).
        on_start: called with the run's config once everything is checked, before anything is written.
    Returns:
        The final metrics, as ``train``'s.
    Raises:
        MakemoreError: no run to resume, a changed training file, a finished or diverged run.
    """
    changes = {k: v for k, v in dict(steps=steps, lr=lr, grad_clip=grad_clip, threads=threads).items() if v is not None}
    return _train(None, out_dir, changes, progress=progress, on_start=on_start)


def _train(
    config: RunConfig | None,
    out_dir: str | Path,
    changes: dict[str, Any],
    *,
    overwrite: bool = False,
    progress: bool = True,
    on_start: Callable[[RunConfig], None] | None = None,
    start: float | None = None,
) -> dict:
    """``train`` (``config`` given) or ``resume`` (None, with its ``changes``)."""
    resume = config is None
    started = time.perf_counter() if start is None else start
    run_dir = RunDir(out_dir)
    look = thread_policy.CpuLook()  # what else runs, seen while the data loads
    run = _prepare(config, run_dir, resume=resume, overwrite=overwrite, changes=changes)
    main = run.world is None or run.world.main
    with _threads(run, look), distributed.joined(run.world, run.config.train.backend, run.device), _step_released(run):
        distributed.barrier()  # every rank checked its inputs before rank 0 writes anything
        if run.model.trains_by_gradient:
            run.forward_backward = execution.forward_backward_for(run.model, run.config.train, run.device, run.world)
        elif not main:
            return {}  # a count model is fitted once, by rank 0
        if run.config.train.time_budget and not resume and run.model.trains_by_gradient:
            _fit_time_budget(run, started)
        if on_start is not None and main:
            on_start(run.config)
        # only now: a refused run leaves nothing behind
        writing = run_dir.writing(new=not resume, overwrite=overwrite, first_checkpoint=_first_checkpoint(run))
        with writing if main else contextlib.nullcontext():
            if not run.model.trains_by_gradient:
                return _fit_count_model(run, run_dir)
            metrics = _fit_by_gradient(run, run_dir, progress and main)
    metrics.update({"planned_steps": run.config.train.steps} if run.budget else {})
    return {**metrics, "wall_seconds": time.perf_counter() - started}


def _first_checkpoint(run: _Run) -> int:
    """The step at which the run writes its next checkpoint (the first evaluation)."""
    step, train = run.resumed.step if run.resumed is not None else 0, run.config.train
    return (
        min((step // train.eval_interval + 1) * train.eval_interval, train.steps) if run.model.trains_by_gradient else 0
    )


@contextlib.contextmanager
def _step_released(run: _Run) -> Iterator[None]:
    """Drop the run's forward-and-backward (a DDP module holds the process group and gloo's
    pending work) when the block ends, so it goes before the group is destroyed rather than at
    interpreter exit, where freeing gloo's work aborts the process."""
    try:
        yield
    finally:
        run.forward_backward = None


@contextlib.contextmanager
def _threads(run: _Run, look: thread_policy.CpuLook) -> Iterator[None]:
    """Set the CPU threads of a run trained by gradient (auto becomes the count it records), and
    put back the previous count afterwards."""
    if run.device.type != "cpu" or not run.model.trains_by_gradient:
        yield
        return
    share = run.world.local_size if run.world else 1  # processes x threads <= cores
    count = thread_policy.choose(run.config.train.threads, share=share, busy=look.busy_elsewhere)
    run.config = dataclasses.replace(run.config, train=dataclasses.replace(run.config.train, threads=count))
    previous = thread_policy.apply(count)
    try:
        yield
    finally:
        thread_policy.apply(previous)


def _fit_time_budget(run: _Run, started: float) -> None:
    """Choose the steps of a time-budgeted run (``budget.calibrate``, on a copy of the model)."""
    train = run.config.train
    # the final report (a bounded train sample and the whole dev split) in evaluations during training
    report = execution.bounded_sample(run.data.corpus("train"), execution.REPORT_ITEMS, train.seed)
    final_evals = (report.num_targets + run.data.corpus("dev").num_targets) / run.dev_batcher.corpus.num_targets
    evaluations = 2 if train.ema else 1  # weight averaging evaluates the average too

    def evaluate(model: torch.nn.Module) -> float:
        return [evaluate_nll(model, run.dev_batcher) for _ in range(evaluations)][-1]

    calibration = budget.calibrate(
        run.model,
        run.train_batcher,
        train,
        evaluate=evaluate,
        forward_backward=run.forward_backward,
        started=started,
        final_evals=final_evals,
    )
    calibration = _bound_report(run, report, calibration)
    steps = budget.plan_steps(train.time_budget, calibration, train.eval_interval)
    if steps < 1:
        validation.fail(train, "time_budget", budget.too_short(train.time_budget, calibration, train.eval_interval))
    warmup = budget.scaled_warmup(train.warmup_steps, steps, train.steps)
    run.config = dataclasses.replace(run.config, train=dataclasses.replace(train, steps=steps, warmup_steps=warmup))
    run.budget = {"seconds": train.time_budget, "steps": steps, **calibration.to_json()}
    reserve = calibration.eval_seconds + calibration.final_seconds
    run.deadline = (started + (1 + budget.DEADLINE_SLACK) * train.time_budget, reserve)
    run.pace = (started + train.time_budget, calibration.final_seconds, calibration.eval_seconds)


def _bound_report(run: _Run, report: EncodedCorpus, calibration: budget.Calibration) -> budget.Calibration:
    """Make the end-of-run report on seeded samples when all of it would eat the budget."""
    train_items, dev, calibration = budget.bounded_report(
        run.config.train.time_budget, calibration, report, run.data.corpus("dev"), run.config.train.seed
    )
    if dev is not None:
        run.report_train_items, run.report_dev_batcher = train_items, run.model.batcher(dev, run.device)
    return calibration


def _callbacks(run: _Run, run_dir: RunDir, progress: bool, checkpointer: Checkpointer) -> list[Callback]:
    train = run.config.train
    world = run.world
    stop = StopOnSignal() if world is None else StopTogether(world, train.seed, run.device)
    if world is not None and not world.main:  # ranks > 0 write nothing; their decisions are rank 0's
        return [*([EarlyStopping(train.patience)] if train.patience else []), stop]
    callbacks: list[Callback] = [ProgressBar()] if progress else []
    callbacks += [MetricsFile(run_dir), TensorBoard(run_dir.tensorboard_dir)]
    if train.track_update_ratio:
        callbacks.append(UpdateRatios(train.track_update_ratio))
    if train.patience:
        callbacks.append(EarlyStopping(train.patience))
    if run.deadline is not None:
        callbacks.append(Deadline(*run.deadline))
    if run.pace is not None:

        def replanned(step: int, steps: int) -> None:  # checkpoints record the new total
            run.config = dataclasses.replace(run.config, train=dataclasses.replace(run.config.train, steps=steps))
            run.budget["steps"] = steps
            run.budget.setdefault("replans", []).append([step, steps])

        every = max(1, train.steps // budget.REPLAN_CHECKS)
        callbacks.append(Pacer(*run.pace, every, budget.REPLAN_TOLERANCE, replanned))
    return [*callbacks, checkpointer, stop]


def _evaluation(run: _Run, average: WeightAverage | None) -> Callable[[torch.nn.Module], float]:
    """The run's dev evaluation (of the weights and, with weight averaging, of their average)."""
    evaluate = execution.dev_evaluation(run.dev_batcher, run.device)
    return evaluate if average is None else evaluate_with_average(evaluate, average)


def _fit_by_gradient(run: _Run, run_dir: RunDir, progress: bool) -> dict:
    started = time.perf_counter()
    timing = run.budget or (run.resumed.time_budget if run.resumed is not None else None)

    def describe(trainer: Trainer) -> dict:
        extra = {"state": trainer.state.to_json(), "metrics": dict(trainer.state.metrics)}
        if timing:
            extra["time_budget"] = timing
        if run.world is not None:
            extra["processes"] = run.world.size
        return run_meta(run.config, run.data, run.model, extra, run.run_id)

    average = WeightAverage(run.model, run.config.train.ema) if run.config.train.ema else None
    saved_step = run.resumed.step if run.resumed is not None else 0
    checkpointer = Checkpointer(run_dir, describe, saved_step=saved_step, average=average)
    trainer = Trainer(
        run.model,
        run.train_batcher,
        run.config.train,
        evaluate=_evaluation(run, average),
        callbacks=[*([AverageWeights(average)] if average else []), *_callbacks(run, run_dir, progress, checkpointer)],
        forward_backward=run.forward_backward,
    )
    if run.ckpt is not None:
        trainer.restore(run.ckpt.optimizer_state, run.ckpt.rng_state, TrainState.from_json(run.resumed.state))
        if average is not None:
            try:
                average.load_state_dict(run.ckpt.average_state)
            except ValueError as exc:
                raise MakemoreError(f"{run_dir.checkpoint('last')}: {exc}") from None
        if distributed.is_main():
            run_dir.truncate_metrics(trainer.state.step)
    try:
        state = trainer.fit()
    except LossNotFinite as exc:
        if not distributed.is_main():
            raise MakemoreError(str(exc)) from None
        raise _diverged(exc, run_dir, checkpointer.saved_step if run_dir.holds_run() else None) from None
    best = load_run(run_dir.path, "best", device=str(run.device)).model if distributed.is_main() else run.model
    distributed.broadcast_state(best)  # the other ranks take rank 0's best
    return {
        **_train_report(best, run),
        "dev_loss": execution.dev_evaluation(run.report_dev_batcher, run.device)(best),
        "best_step": state.metrics.get("best_step", state.step),
        "steps": state.step,
        "train_seconds": time.perf_counter() - started,
    }


def _train_report(model: LanguageModel, run: _Run) -> dict:
    """The train NLL of the report: on a bounded sample of a big train split (``train_loss_items``)."""
    corpus = run.data.corpus("train")
    report = execution.bounded_sample(corpus, run.report_train_items or execution.REPORT_ITEMS, run.config.train.seed)
    nll = evaluate_nll(model, model.batcher(report, run.device))
    dev_items, all_dev = len(run.report_dev_batcher.corpus), len(run.data.split.dev)
    sampled = {"dev_loss_items": dev_items, "dev_items": all_dev} if dev_items < all_dev else {}
    return {"train_loss": nll, "train_loss_items": len(report), "train_items": len(corpus), **sampled}


def _diverged(exc: LossNotFinite, run_dir: RunDir, kept_step: int | None) -> MakemoreError:
    """Record where a run stopped on a NaN/inf loss (so that a resume will not run into it
    blindly) and say what is kept."""
    if kept_step is None:
        return MakemoreError(f"{exc}; stopped before the first checkpoint, nothing is kept (try a lower learning rate)")
    run_dir.append_metrics({"step": exc.step, "stopped": str(exc)})
    return MakemoreError(
        f"{exc}; stopped, the last good checkpoint (step {kept_step}) is kept "
        "(a lower learning rate or gradient clipping may help: resume with them)"
    )


def _fit_count_model(run: _Run, run_dir: RunDir) -> dict:
    """Count models: fitting is counting; both checkpoints hold the fitted tables."""
    started = time.perf_counter()
    run.model.fit_batcher(run.train_batcher)
    metrics = {
        **_train_report(run.model, run),
        "dev_loss": evaluate_nll(run.model, run.report_dev_batcher),
        "fit_seconds": time.perf_counter() - started,
    }
    meta = run_meta(run.config, run.data, run.model, {"state": {"step": 0}, "metrics": metrics}, run.run_id)
    for which in ("best", "last"):
        run_dir.save(which, model_state=run.model.state_dict(), meta=meta)
    return metrics
