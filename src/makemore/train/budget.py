"""Time-budgeted training: how many steps fit a wall-clock budget (``makemore train --time 90s``).

With ``TrainConfig.time_budget`` set, ``training.train`` first measures what the run costs on a
throwaway copy of the model: a few training steps (forward, backward, optimizer) on real
batches, then one dev evaluation and a copy of the state a checkpoint writes. From that it
fixes ``steps`` so that the whole call (setup, this calibration, the steps, an evaluation and
checkpoint every ``eval_interval`` steps, and the best checkpoint's train and dev NLL at the
end) ends at the budget; the learning-rate schedule (warm-up, cosine, step) is then laid over
those steps. The copy, its optimizer, its batch generator and the RNG states it used are all
discarded, so while the plan holds the run is exactly the run ``steps=N`` makes: with the same
seed its weights are bit-identical. The calibration costs about 3% of the budget (at most a few
seconds).

The machine's speed can change during the run (other work starting or ending), and a few steps
on a copy do not see everything a run costs. ``callbacks.Pacer`` checks the pace every 10% of
the steps (up to 90%) and, when the steps that still fit are more than ``REPLAN_TOLERANCE`` off
the plan, lays the rest of the schedule over the new count; each change is recorded
(``time_budget.replans`` in the checkpoint: ``[step, new steps]``) and the current count is the
run's ``train.steps``, so ``--resume`` continues the same schedule (a resumed run is not timed
again). Should the run still fall behind, ``callbacks.Deadline`` stops it at 105% of the budget,
short of its steps, and ``--resume`` finishes them.

A short budget keeps the run's shape: when fewer steps fit than the config's, the warm-up
shrinks in proportion (``scaled_warmup``: 200 of 6,000 steps stays 1/30 of the steps), and when
the end-of-run report (the train sample and the whole dev split) would take more than
``REPORT_SHARE`` of the budget, it is made on seeded samples that fit (``report_fraction``),
which the report names.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from makemore.config import TrainConfig, format_duration, parse_duration  # noqa: F401  (the budget's spelling)
from makemore.data.batching import Batcher
from makemore.data.corpus import EncodedCorpus
from makemore.train import execution
from makemore.train.trainer import ForwardBackward, Trainer

CALIBRATION_SHARE = 0.03  # of the budget spent timing steps on the copy...
CALIBRATION_MAX_SECONDS = 5.0  # ...but no more than this
WARMUP_STEPS = 2  # untimed first steps (allocations, kernel selection)
MIN_TIMED_STEPS = 10  # timed steps wanted, unless a step is slow enough to take twice the time share
DEADLINE_SLACK = 0.05  # a run that falls behind (a busier machine) stops at 105% of its budget
REPLAN_TOLERANCE = 0.03  # re-plan when the pace so far puts the end more than 3% of the steps off
REPORT_SHARE = 0.1  # the end-of-run report's most of a budget
MIN_REPORT_ITEMS = 1000  # ...but it evaluates at least this many items of a split (all of a smaller one)
REPLAN_CHECKS = 10  # how often the pace is checked over a run (every 10% of its steps, up to 90%)


@dataclass(frozen=True)
class Calibration:
    """What a run costs, measured on a throwaway copy of its model (seconds)."""

    step_seconds: float  # one training step
    eval_seconds: float  # one dev evaluation with its checkpoints
    final_seconds: float  # after the last step: reload the best checkpoint, its train and dev NLL
    spent_seconds: float  # budget used before the first real step (setup and this calibration)
    timed_steps: int  # steps the step time was measured over

    def cost(self, steps: int, eval_interval: int) -> float:
        """Predicted wall time, from the budget's start, of a run of ``steps`` steps."""
        evals = -(-steps // eval_interval)  # at every eval_interval steps and at the last one
        return self.spent_seconds + steps * self.step_seconds + evals * self.eval_seconds + self.final_seconds

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def plan_steps(budget: float, calibration: Calibration, eval_interval: int) -> int:
    """The most steps whose predicted cost (``Calibration.cost``) fits in ``budget`` seconds.

    Returns:
        that number of steps; 0 when not even one fits.
    """
    if calibration.cost(1, eval_interval) > budget:
        return 0
    room = budget - calibration.spent_seconds - calibration.final_seconds
    low, high = 1, max(1, int(room / max(calibration.step_seconds, 1e-9)) + 1)  # cost(high) > budget
    while high - low > 1:  # the cost grows with the steps: bisect for the last that fits
        mid = (low + high) // 2
        low, high = (mid, high) if calibration.cost(mid, eval_interval) <= budget else (low, mid)
    return low


def scaled_warmup(warmup_steps: int, planned: int, configured: int) -> int:
    """The warm-up of a run that fits ``planned`` of the config's ``configured`` steps: the same
    share of its steps when fewer fit (at least 1 step of a warm-up there was), else unchanged."""
    if warmup_steps == 0 or planned >= configured:
        return warmup_steps
    return min(warmup_steps, max(1, math.ceil(warmup_steps * planned / configured)))


def report_fraction(budget: float, calibration: Calibration) -> float:
    """The share of the report's items that keeps it within ``REPORT_SHARE`` of ``budget`` (1: all)."""
    if calibration.final_seconds <= REPORT_SHARE * budget:
        return 1.0
    return REPORT_SHARE * budget / calibration.final_seconds


def bounded_report(
    budget: float, calibration: Calibration, report: EncodedCorpus, dev: EncodedCorpus, seed: int
) -> tuple[int, EncodedCorpus | None, Calibration]:
    """The end-of-run report that fits ``REPORT_SHARE`` of ``budget``.

    Args:
        report: the train items the report evaluates; dev: the dev split.
    Returns:
        (train items to evaluate, the dev sample or None for all of it, the calibration with
        the report's cost scaled to those samples).
    """
    fraction = report_fraction(budget, calibration)
    if fraction >= 1:
        return len(report), None, calibration
    train_items = max(MIN_REPORT_ITEMS, int(fraction * len(report)))
    dev_sample = execution.bounded_sample(dev, max(MIN_REPORT_ITEMS, int(fraction * len(dev))), seed)
    after = execution.bounded_sample(report, train_items, seed).num_targets + dev_sample.num_targets
    scale = after / (report.num_targets + dev.num_targets)
    return train_items, dev_sample, dataclasses.replace(calibration, final_seconds=calibration.final_seconds * scale)


def further_steps(room: float, pace: float, eval_seconds: float, step: int, eval_interval: int) -> int:
    """The most steps after ``step`` that fit in ``room`` seconds at ``pace`` seconds a step,
    an evaluation (with its checkpoints) every ``eval_interval`` steps and one at the end.

    Returns:
        that number of steps (0 when not even one fits).
    """

    def cost(k: int) -> float:
        end = step + k
        evals = end // eval_interval - step // eval_interval + (1 if end % eval_interval else 0)
        return k * pace + evals * eval_seconds

    if room <= 0 or cost(1) > room:
        return 0
    low, high = 1, max(2, int(room / max(pace, 1e-9)) + 2)  # cost(high) > room
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if cost(mid) <= room else (low, mid)
    return low


def _state_copy(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Copy to the CPU what a ``last`` checkpoint holds (the weights and optimizer state)."""
    tensors = list(model.state_dict().values())
    tensors += [v for state in optimizer.state.values() for v in state.values() if isinstance(v, torch.Tensor)]
    return sum(t.detach().to("cpu", copy=True).numel() for t in tensors)


def _time_steps(trainer: Trainer, share: float, clock: Callable[[], float]) -> tuple[float, int]:
    """Seconds per step over at least ``MIN_TIMED_STEPS`` steps and ``share`` seconds (or, for
    slow steps, until ``2 * share`` seconds have gone). The mean, not the median: the machine's
    hiccups recur during the run and cost time there too.

    The steps are ``fit``'s (``advance``: the host does not wait for each one); the device
    is waited for after the warm-up and before the last reading of the clock.
    """
    loss = None
    for _ in range(WARMUP_STEPS):
        loss = trainer.advance()
    if loss is not None:
        loss.item()  # the warm-up is done on the device too
    start, timed = clock(), 0
    while True:
        loss = trainer.advance()
        timed += 1
        elapsed = clock() - start
        if elapsed >= share and (timed >= MIN_TIMED_STEPS or elapsed >= 2 * share):
            loss.item()  # the steps queued on the device are done
            elapsed = clock() - start
            return elapsed / timed, timed


def calibrate(
    model: torch.nn.Module,
    batcher: Batcher,
    config: TrainConfig,
    *,
    evaluate: Callable[[torch.nn.Module], float],
    forward_backward: ForwardBackward,
    started: float,
    final_evals: float,
    clock: Callable[[], float] = time.perf_counter,
) -> Calibration:
    """Time training steps, a dev evaluation and a checkpoint's state copy on a copy of ``model``.

    Nothing of the run changes: the copy gets its own optimizer and batch generator, and the
    global RNG states (dropout) are put back afterwards.

    Args:
        model, batcher, config, forward_backward: what the run trains with.
        evaluate: the run's dev evaluation.
        started: ``clock()`` when the budget started (setup counts).
        final_evals: the end-of-run evaluations in dev evaluations (the report's train and dev
            NLL: their targets over those of one dev evaluation during training).
        clock: seconds (injected by tests).
    Returns:
        the measured costs.
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        twin = copy.deepcopy(model)
        # a copy of the batcher too: one that draws pools ahead keeps its place in the run's pool
        trainer = Trainer(twin, copy.copy(batcher), config, forward_backward=forward_backward)
        share = min(CALIBRATION_SHARE * config.time_budget, CALIBRATION_MAX_SECONDS)
        step_seconds, timed = _time_steps(trainer, share, clock)
        t0 = clock()
        evaluate(twin)
        t1 = clock()
        _state_copy(twin, trainer.optimizer)
        t2 = clock()
    eval_seconds = (t1 - t0) + 2 * (t2 - t1)  # best and last: the weights (and the optimizer) written
    return Calibration(step_seconds, eval_seconds, final_evals * (t1 - t0), clock() - started, timed)


def too_short(budget: float, calibration: Calibration, eval_interval: int) -> str:
    """Why not even one step fits in ``budget`` seconds, and what would."""
    c = calibration
    least = math.ceil(1.25 * c.cost(max(1, min(eval_interval, 100)), eval_interval))
    return (
        f"{format_duration(budget)} is too short for this run: setting it up and timing it took "
        f"{c.spent_seconds:.2f} s, a step takes {c.step_seconds:.3f} s and the evaluations at the end "
        f"{c.final_seconds:.2f} s; give at least {format_duration(least)}"
    )
