"""Training runs end to end: data, model, trainer and callbacks, run directory.

``train`` is what ``makemore train`` does. It checks everything (data, configs, the run
directory) before writing anything, so a refused run leaves nothing behind.

The plan of a run (data, model, batchers, device, world, ``--time`` steps) is built once, in
``plan.py``; this module runs the trainer on it, with the callbacks around the loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from makemore.config import Auto, RunConfig
from makemore.errors import MakemoreError
from makemore.evaluate.scoring import evaluate_nll
from makemore.models import LanguageModel
from makemore.store.description import run_meta
from makemore.store.rundir import RunDir
from makemore.store.runs import load_run
from makemore.train import budget, distributed, execution
from makemore.train import floor as count_floor
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
from makemore.train.plan import Plan, for_time_budget, prepare, with_threads
from makemore.train.trainer import Callback, ForwardBackward, LossNotFinite, Trainer, TrainState


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
    planned = prepare(config, run_dir, overwrite=overwrite, changes=changes)
    with with_threads(planned, look) as plan, distributed.joined(plan.world, plan.config.train.backend, plan.device):
        distributed.barrier()  # every rank checked its inputs before rank 0 writes anything
        if not plan.model.trains_by_gradient and not plan.main:
            return {}  # a count model is fitted once, by rank 0
        step = None
        if plan.model.trains_by_gradient:
            step = execution.forward_backward_for(plan.model, plan.config.train, plan.device, plan.world)
        try:
            if plan.config.train.time_budget and not resume and step is not None:
                plan = for_time_budget(plan, started, step)
            if on_start is not None and plan.main:
                on_start(plan.config)
            # only now: a refused run leaves nothing behind
            writing = run_dir.writing(new=not resume, overwrite=overwrite, first_checkpoint=_first_checkpoint(plan))
            with writing if plan.main else contextlib.nullcontext():
                if step is None:
                    return _fit_count_model(plan, run_dir, fitted=plan.fitted)
                metrics = _fit_by_gradient(plan, step, run_dir, progress and plan.main)
                if plan.floor is not None and plan.main:
                    metrics = _keep_floor(plan, run_dir, metrics)
        finally:  # a DDP module holds the process group and gloo's pending work: drop it before the
            step = None  # group is destroyed, not at interpreter exit, where freeing gloo's work aborts
    return {**metrics, "wall_seconds": time.perf_counter() - started}


def _auto(plan: Plan) -> dict[str, Any]:
    """run.json's "auto": what ``--preset auto`` chose and why (kept across resumes)."""
    return {"auto": _choice(plan)} if _choice(plan) else {}


def _choice(plan: Plan) -> dict[str, Any] | None:
    if plan.config.auto is not None and plan.config.auto.choice is not None:
        return plan.config.auto.choice
    return plan.resumed.auto if plan.resumed is not None else None


def _keep_floor(plan: Plan, run_dir: RunDir, metrics: dict) -> dict:
    """The run's report, or, unless it beat ``--preset auto``'s count model on the same dev items by
    more than ``floor.MARGIN``, the count model written as the run (``train/floor.py``) and its report."""
    report_dev = plan.report_dev_batcher.corpus
    loss = count_floor.beats(plan.floor, report_dev, metrics["dev_loss"])
    if loss is None:
        return metrics
    floor = plan.floor
    order = floor.config.model_config.order
    kept = f"Kneser-Ney n-gram, order {order}, kept: dev NLL {loss:.4f} against the {plan.config.model}'s "
    kept += f"{metrics['dev_loss']:.4f}"
    choice = {**_choice(plan), "kept": "count", "recurrent_dev_loss": metrics["dev_loss"], "count_dev_loss": loss,
              "summary": kept}  # fmt: skip
    config = dataclasses.replace(floor.config, auto=Auto(choice=choice))
    count_plan = dataclasses.replace(
        plan, config=config, model=floor.model, train_batcher=floor.model.batcher(plan.data.corpus("train")),
        report_dev_batcher=floor.model.batcher(report_dev), budget=None,
    )  # fmt: skip
    run_dir.append_metrics({"step": metrics["steps"], "auto": choice["summary"]})
    return {**_fit_count_model(count_plan, run_dir, fitted=True), "auto_kept": choice}


def _first_checkpoint(plan: Plan) -> int:
    """The step at which the run writes its next checkpoint (the first evaluation)."""
    step, train = plan.resumed.step if plan.resumed is not None else 0, plan.config.train
    return (
        min((step // train.eval_interval + 1) * train.eval_interval, train.steps)
        if plan.model.trains_by_gradient
        else 0
    )


def _callbacks(
    plan: Plan, run_dir: RunDir, progress: bool, checkpointer: Checkpointer, replans: list[list[int]]
) -> list[Callback]:
    """The callbacks around the loop (rank 0 writes; the others only stop with it); a ``--time``
    re-plan is appended to ``replans`` as ``[step, new steps]``."""
    train = plan.config.train
    world = plan.world
    stop = StopOnSignal() if world is None else StopTogether(world, train.seed, plan.device)
    if world is not None and not world.main:  # ranks > 0 write nothing; their decisions are rank 0's
        return [*([EarlyStopping(train.patience)] if train.patience else []), stop]
    callbacks: list[Callback] = [ProgressBar()] if progress else []
    callbacks += [MetricsFile(run_dir), TensorBoard(run_dir.tensorboard_dir)]
    if train.track_update_ratio:
        callbacks.append(UpdateRatios(train.track_update_ratio))
    if train.patience:
        callbacks.append(EarlyStopping(train.patience))
    if plan.budget is not None:
        callbacks.append(Deadline(*plan.budget.deadline))
        every = max(1, train.steps // budget.REPLAN_CHECKS)
        pacer = Pacer(
            *plan.budget.pace, every, budget.REPLAN_TOLERANCE, lambda step, steps: replans.append([step, steps]),
            most=plan.budget.most_steps,
        )  # fmt: skip
        callbacks.append(pacer)
    return [*callbacks, checkpointer, stop]


def _evaluation(plan: Plan, average: WeightAverage | None) -> Callable[[torch.nn.Module], float]:
    """The run's dev evaluation (of the weights and, with weight averaging, of their average)."""
    evaluate = execution.dev_evaluation(plan.dev_batcher, plan.device)
    return evaluate if average is None else evaluate_with_average(evaluate, average)


def _fit_by_gradient(plan: Plan, step: ForwardBackward, run_dir: RunDir, progress: bool) -> dict:
    """Train a model by gradient on ``plan`` with ``step`` (its forward and backward), write its
    checkpoints, and report on the best one."""
    started = time.perf_counter()
    timing = plan.budget.info if plan.budget else (plan.resumed.time_budget if plan.resumed is not None else None)
    replans: list[list[int]] = []

    def describe(trainer: Trainer) -> dict:
        extra = {"state": trainer.state.to_json(), "metrics": dict(trainer.state.metrics)}
        if plan.budget:  # the steps are the trainer's: a --time re-plan changes them
            extra["time_budget"] = {
                **timing,
                "steps": trainer.config.steps,
                **({"replans": replans} if replans else {}),
            }
        elif timing:
            extra["time_budget"] = timing
        if plan.world is not None:
            extra["processes"] = plan.world.size
        extra.update(_auto(plan))
        config = dataclasses.replace(plan.config, train=trainer.config)
        return run_meta(config, plan.data, plan.model, extra, plan.run_id)

    average = WeightAverage(plan.model, plan.config.train.ema) if plan.config.train.ema else None
    saved_step = plan.resumed.step if plan.resumed is not None else 0
    checkpointer = Checkpointer(run_dir, describe, saved_step=saved_step, average=average)
    callbacks = _callbacks(plan, run_dir, progress, checkpointer, replans)
    trainer = Trainer(
        plan.model,
        plan.train_batcher,
        plan.config.train,
        evaluate=_evaluation(plan, average),
        callbacks=[*([AverageWeights(average)] if average else []), *callbacks],
        forward_backward=step,
    )
    if plan.ckpt is not None:
        trainer.restore(plan.ckpt.optimizer_state, plan.ckpt.rng_state, TrainState.from_json(plan.resumed.state))
        if average is not None:
            try:
                average.load_state_dict(plan.ckpt.average_state)
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
    best = load_run(run_dir.path, "best", device=str(plan.device)).model if distributed.is_main() else plan.model
    distributed.broadcast_state(best)  # the other ranks take rank 0's best
    return {
        **_train_report(best, plan),
        "dev_loss": execution.dev_evaluation(plan.report_dev_batcher, plan.device)(best),
        "best_step": state.metrics.get("best_step", state.step),
        "steps": state.step,
        "train_seconds": time.perf_counter() - started,
        **({"planned_steps": trainer.config.steps} if plan.budget else {}),
    }


def _train_report(model: LanguageModel, plan: Plan) -> dict:
    """The train NLL of the report: on a bounded sample of a big train split (``train_loss_items``)."""
    corpus = plan.data.corpus("train")
    items = (plan.budget.report_train_items if plan.budget else None) or execution.REPORT_ITEMS
    report = execution.bounded_sample(corpus, items, plan.config.train.seed)
    nll = evaluate_nll(model, model.batcher(report, plan.device))
    dev_items, all_dev = len(plan.report_dev_batcher.corpus), len(plan.data.split.dev)
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


def _fit_count_model(plan: Plan, run_dir: RunDir, *, fitted: bool = False) -> dict:
    """Count models: fitting is counting (unless ``fitted``); both checkpoints hold the tables."""
    started = time.perf_counter()
    if not fitted:
        plan.model.fit_batcher(plan.train_batcher)
    metrics = {
        **_train_report(plan.model, plan),
        "dev_loss": evaluate_nll(plan.model, plan.report_dev_batcher),
        "fit_seconds": time.perf_counter() - started,
    }
    extra = {"state": {"step": 0}, "metrics": metrics, **_auto(plan)}
    meta = run_meta(plan.config, plan.data, plan.model, extra, plan.run_id)
    for which in ("best", "last"):
        run_dir.save(which, model_state=plan.model.state_dict(), meta=meta)
    return metrics
