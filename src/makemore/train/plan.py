"""The plan of a training run: the config fitted to the data, the model, its batchers, device
and torchrun world, the checkpoint resumed from and, for ``--time``, the steps that fit.

A ``Plan`` is built once its inputs are checked (nothing is written before) and never
changed in place: the thread count chosen and a ``--time`` plan are new values
(``with_threads``, ``for_time_budget``). What changes while training (a ``--time`` re-plan)
belongs to the trainer (``Trainer.set_steps``), not to the plan.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from makemore import auto, validation
from makemore.config import RunConfig
from makemore.data.batching import Batcher, WindowBatcher
from makemore.data.datasets import Data, load_data
from makemore.errors import MakemoreError
from makemore.evaluate.scoring import evaluate_nll
from makemore.models import LanguageModel, build_model, get_family
from makemore.store.checkpoint import Checkpoint
from makemore.store.description import RunDescription, new_run_id
from makemore.store.rundir import RunDir
from makemore.train import budget, distributed, execution
from makemore.train import floor as count_floor
from makemore.train import threads as thread_policy
from makemore.train.floor import Floor
from makemore.train.trainer import ForwardBackward


@dataclass(frozen=True)
class Budget:
    """What ``--time`` chose: recorded in run.json (``info``), the deadline and pace callbacks'
    arguments, and the final report's train sample when all of it would not fit."""

    info: dict[str, Any]  # seconds, steps and what they were chosen from
    deadline: tuple[float, float]  # (end by, seconds kept for the end)
    pace: tuple[float, float, float]  # (end at, seconds kept for the end, eval seconds)
    report_train_items: int | None = None  # None: execution.REPORT_ITEMS
    most_steps: int | None = None  # --preset auto's cap on the steps (re-plans included)


@dataclass(frozen=True)
class Plan:
    """Everything a run needs once its inputs are checked (nothing written yet)."""

    config: RunConfig
    data: Data
    model: LanguageModel
    device: torch.device
    train_batcher: Batcher
    dev_batcher: Batcher  # the dev evaluations during training (at most ``execution.WATCH_ITEMS`` items)
    report_dev_batcher: Batcher  # the final report's dev NLL: the whole dev split (or a --time sample)
    ckpt: Checkpoint | None  # the checkpoint resumed from (its weights and optimizer state)
    world: distributed.World | None  # this process's place in a torchrun run
    run_id: str  # kept across resumes (description.new_run_id)
    resumed: RunDescription | None  # the description of the checkpoint resumed from
    budget: Budget | None = None  # a time-budgeted run's plan
    floor: Floor | None = None  # --preset auto: the count model kept instead when better on dev
    fitted: bool = False  # a count model already fitted (--preset auto chose its order on dev)

    @property
    def main(self) -> bool:
        """This process writes the run (one process, or rank 0 of a torchrun run)."""
        return self.world is None or self.world.main


def build(config: RunConfig, data: Data) -> tuple[RunConfig, LanguageModel]:
    """The config fitted to the data (e.g. a sequence model's positions) and its model,
    initialised from the run's seed."""
    model_cls = get_family(config.model).model
    config = dataclasses.replace(config, model_config=model_cls.fit_config(config.model_config, data.longest_item))
    torch.manual_seed(config.train.seed)
    return config, build_model(config.model, config.model_config, data.vocab.size)


def examples_per_epoch(config: RunConfig) -> int:
    """The training split's examples, as the run's model counts them in a batch (``--epochs``)."""
    data = load_data(config.data)
    _, model = build(config, data)
    batcher = model.batcher(data.corpus("train"))
    return batcher.num_targets if isinstance(batcher, WindowBatcher) else len(batcher.corpus)


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
    changed = resumed.data.changed(data)  # the training file, or a dev or test file of your own splits
    if changed:
        validation.fail(None, "resume", f"{changed} changed since this run started (its checksum differs)")
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


def prepare(config: RunConfig | None, run_dir: RunDir, *, overwrite: bool, changes: dict[str, Any]) -> Plan:
    """The plan of a new run (``config``) or of the run in ``run_dir`` resumed (None, with ``changes``).

    Raises:
        MakemoreError: bad data, config or run directory (nothing written).
    """
    resume = config is None
    ckpt = resumed = None
    if resume:
        config, data, ckpt, resumed = _resumed(run_dir, changes)
    else:
        run_dir.check_new(overwrite=overwrite)
        run_dir.check_not_written()
        data = load_data(config.data)
    fitted = None  # auto's count model, fitted while its order was chosen on dev
    if config.auto is not None and config.auto.choice is None:
        config = auto.resolve(config, data)
        if config.auto.choice.get("orders"):
            config, fitted = count_floor.best_order(config, data)
    world = distributed.from_environment()
    device = execution.resolve_device(config.train.device, world)
    config, model = build(config, data)
    model = fitted or model
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
    config, floor = _floor(config, data, resumed, world)
    return Plan(
        config, data, model, device, train_batcher, dev_batcher, report_dev_batcher, ckpt, world, run_id, resumed,
        floor=floor, fitted=fitted is not None,
    )  # fmt: skip


def _floor(
    config: RunConfig, data: Data, resumed: RunDescription | None, world: distributed.World | None
) -> tuple[RunConfig, Floor | None]:
    """The count model ``--preset auto`` fits beside a recurrent choice (``train/floor.py``): for a
    new run, or a resumed one that has one; recorded in the choice (run.json's "auto")."""
    choice = config.auto.choice if config.auto is not None else (resumed.auto if resumed is not None else None)
    if not choice or not choice.get("floor_orders") or choice.get("kept") or world is not None:
        return config, None
    floor = count_floor.fit(config, data, choice["floor_orders"])
    if config.auto is not None:
        choice = {**choice, "floor": floor.to_json()}
        config = dataclasses.replace(config, auto=dataclasses.replace(config.auto, choice=choice))
    return config, floor


@contextlib.contextmanager
def with_threads(plan: Plan, look: thread_policy.CpuLook) -> Iterator[Plan]:
    """The plan with the CPU threads of a run trained by gradient set (auto becomes the count it
    records), applied while the block runs; the previous count is put back afterwards."""
    if plan.device.type != "cpu" or not plan.model.trains_by_gradient:
        yield plan
        return
    share = plan.world.local_size if plan.world else 1  # processes x threads <= cores
    count = thread_policy.choose(plan.config.train.threads, share=share, busy=look.busy_elsewhere)
    previous = thread_policy.apply(count)
    try:
        yield _with_train(plan, threads=count)
    finally:
        thread_policy.apply(previous)


def _with_train(plan: Plan, **changes: Any) -> Plan:
    config = dataclasses.replace(plan.config, train=dataclasses.replace(plan.config.train, **changes))
    return dataclasses.replace(plan, config=config)


def for_time_budget(plan: Plan, started: float, forward_backward: ForwardBackward) -> Plan:
    """The plan with the steps of a time-budgeted run chosen (``budget.calibrate``, on a copy of
    the model) and its ``Budget``."""
    train = plan.config.train
    # the final report (a bounded train sample and the whole dev split) in evaluations during training
    report = execution.bounded_sample(plan.data.corpus("train"), execution.REPORT_ITEMS, train.seed)
    final_evals = (report.num_targets + plan.data.corpus("dev").num_targets) / plan.dev_batcher.corpus.num_targets
    evaluations = 2 if train.ema else 1  # weight averaging evaluates the average too

    def evaluate(model: torch.nn.Module) -> float:
        return [evaluate_nll(model, plan.dev_batcher) for _ in range(evaluations)][-1]

    calibration = budget.calibrate(
        plan.model,
        plan.train_batcher,
        train,
        evaluate=evaluate,
        forward_backward=forward_backward,
        started=started,
        final_evals=final_evals,
    )
    train_items, report_dev, calibration = budget.bounded_report(
        train.time_budget, calibration, report, plan.data.corpus("dev"), train.seed
    )
    steps = budget.plan_steps(train.time_budget, calibration, train.eval_interval)
    most = train.steps if plan.config.auto is not None else None  # --preset auto: at most max_epochs passes
    steps = steps if most is None else min(steps, most)
    if steps < 1:
        validation.fail(train, "time_budget", budget.too_short(train.time_budget, calibration, train.eval_interval))
    warmup = budget.scaled_warmup(train.warmup_steps, steps, train.steps)
    reserve = calibration.eval_seconds + calibration.final_seconds
    chosen = Budget(
        {"seconds": train.time_budget, "steps": steps, **calibration.to_json()},
        (started + (1 + budget.DEADLINE_SLACK) * train.time_budget, reserve),
        (started + train.time_budget, calibration.final_seconds, calibration.eval_seconds),
        train_items if report_dev is not None else None,
        most,
    )
    plan = _with_train(plan, steps=steps, warmup_steps=warmup)
    if report_dev is not None:  # the end-of-run report on seeded samples: all of it would eat the budget
        plan = dataclasses.replace(plan, report_dev_batcher=plan.model.batcher(report_dev, plan.device))
    return dataclasses.replace(plan, budget=chosen)
