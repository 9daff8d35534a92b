"""The trainer's callbacks: what happens around the training loop besides training.

Each is small and does one thing; ``training.train`` picks the ones a run needs. Write a new
one by subclassing ``trainer.Callback`` and overriding the hooks it uses.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from tqdm.auto import tqdm

from makemore.store.rundir import RunDir
from makemore.train import budget, distributed
from makemore.train.averaging import WeightAverage
from makemore.train.trainer import Callback, Trainer


class ProgressBar(Callback):
    """A tqdm bar with the last train and dev loss, the learning rate and the speed."""

    def __init__(self) -> None:
        self.bar = None
        self.postfix: dict[str, str] = {}

    def on_train_start(self, trainer: Trainer) -> None:
        self.bar = tqdm(
            total=trainer.config.steps,
            initial=trainer.state.step,
            unit="step",
            dynamic_ncols=True,
            mininterval=0.5 if sys.stderr.isatty() else 10.0,
        )

    def on_step_end(self, trainer: Trainer, loss: torch.Tensor) -> None:
        if self.bar.total != trainer.config.steps:  # a time budget's new plan
            self.bar.total = trainer.config.steps
        self.bar.update(1)

    def on_log(self, trainer: Trainer, row: dict[str, Any]) -> None:
        if self.bar is None:  # a row from a step taken outside fit()
            return
        if "train_loss" in row:
            self.postfix.update(
                loss=f"{row['train_loss']:.4f}", lr=f"{row['lr']:.2e}", **{"it/s": f"{row['steps_per_s']:.0f}"}
            )
        if "dev_loss" in row:
            self.postfix["dev"] = f"{row['dev_loss']:.4f}"
        order = ("loss", "dev", "lr", "it/s")
        self.bar.set_postfix({k: self.postfix[k] for k in order if k in self.postfix}, refresh=False)

    def on_close(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class MetricsFile(Callback):
    """Every metrics row appended to the run directory's ``metrics.jsonl``."""

    def __init__(self, run_dir: RunDir):
        self.run_dir = run_dir

    def on_log(self, trainer: Trainer, row: dict[str, Any]) -> None:
        self.run_dir.append_metrics(row)


def tensorboard_writer(log_dir, start_step: int):
    """A TensorBoard ``SummaryWriter`` for ``log_dir``, or None when tensorboard is not installed.

    Events after ``start_step`` (left by an interrupted run being resumed) are purged.
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the optional extra: pip install 'makemore[tensorboard]'
        return None
    return SummaryWriter(str(log_dir), purge_step=start_step or None)


class TensorBoard(Callback):
    """Every metrics row as TensorBoard scalars, when tensorboard is installed."""

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.writer = None

    def on_train_start(self, trainer: Trainer) -> None:
        self.writer = tensorboard_writer(self.log_dir, trainer.state.step)

    def on_log(self, trainer: Trainer, row: dict[str, Any]) -> None:
        if self.writer is None:
            return
        for key, value in row.items():
            if key == "step":
                continue
            if isinstance(value, dict):  # update ratios: one scalar per parameter
                for name, v in value.items():
                    self.writer.add_scalar(f"{key}/{name}", v, row["step"])
            else:
                self.writer.add_scalar(key, value, row["step"])

    def on_close(self, trainer: Trainer) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class UpdateRatios(Callback):
    """Every ``every`` steps, log10(std of the update / std of the values) of each matrix
    (lecture 3's diagnostic), as an ``update_ratio`` metrics row."""

    def __init__(self, every: int):
        self.every = every
        self.before: dict[str, torch.Tensor] | None = None

    def on_before_optimizer_step(self, trainer: Trainer) -> None:
        self.before = None
        if trainer.state.step % self.every == 0:
            self.before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.dim() == 2}

    def on_after_optimizer_step(self, trainer: Trainer) -> None:
        if self.before is None:
            return
        names, ratios = [], []
        for name, param in trainer.model.named_parameters():
            if name in self.before:
                update_std = (param.detach() - self.before[name]).std()
                names.append(name)
                ratios.append(torch.log10(update_std / param.detach().std() + 1e-20).float())
        self.before = None
        # one read of the ratios and the step's loss: a loss not finite that fit reads later
        # (on an accelerator) leaves no row, as it would have left no update on the CPU
        *values, loss = torch.stack([*ratios, trainer.loss.float()]).tolist()
        if math.isfinite(loss):
            trainer.log({"step": trainer.state.step + 1, "update_ratio": dict(zip(names, values))})


class EarlyStopping(Callback):
    """Stop after ``patience`` evaluations in a row without a better dev loss."""

    def __init__(self, patience: int):
        self.patience = patience

    def on_eval(self, trainer: Trainer, dev_loss: float, improved: bool) -> None:
        if trainer.state.evals_since_best >= self.patience:
            trainer.request_stop()


class Deadline(Callback):
    """A time-budgeted run's guard: stop (as early stopping does) once finishing would pass the
    deadline, when the machine got slower than the calibration measured. ``--resume`` goes on.

    Args:
        deadline: the ``clock()`` time the run must end by.
        reserve: seconds kept for what follows the last step (its evaluation, the final NLLs).
        clock: seconds (injected by tests).
    """

    def __init__(self, deadline: float, reserve: float, clock: Callable[[], float] = time.perf_counter):
        self.deadline, self.reserve, self.clock = deadline, reserve, clock
        self.stopped_at: int | None = None

    def on_step_end(self, trainer: Trainer, loss: torch.Tensor) -> None:
        if self.stopped_at is None and self.clock() + self.reserve > self.deadline:
            self.stopped_at = trainer.state.step
            trainer.request_stop()


class Pacer(Callback):
    """A time-budgeted run's pace keeper: the calibration predicts the pace, the run measures it.

    Every ``every`` steps (up to 90% of the run) the pace so far gives the steps that still fit
    before ``end``: the time of the steps (between evaluations) and of the evaluations with their
    checkpoints are measured apart, since evaluations come every ``eval_interval`` steps. When
    that count is off the plan by more than ``tolerance`` of the steps (the machine got faster or
    slower), ``trainer.set_steps`` lays the rest of the schedule over the new count and
    ``on_replan(step, steps)`` records it.

    Args:
        end: the ``clock()`` time the run should end at.
        reserve: seconds after the last step and its evaluation (the final NLLs).
        eval_seconds: the calibration's cost of an evaluation, until one is measured.
        every: steps between checks.
        tolerance: the share of the steps a plan may be off before it is changed.
        on_replan: called with (step, new total steps).
        most: the most steps the run may take (``--preset auto``'s cap), else None.
        clock: seconds (injected by tests).
    """

    def __init__(
        self,
        end: float,
        reserve: float,
        eval_seconds: float,
        every: int,
        tolerance: float,
        on_replan: Callable[[int, int], None],
        clock: Callable[[], float] = time.perf_counter,
        most: int | None = None,
    ):
        self.end, self.reserve, self.eval_seconds, self.every = end, reserve, eval_seconds, max(1, every)
        self.most = most
        self.tolerance, self.on_replan, self.clock = tolerance, on_replan, clock
        self.step_time = self.eval_time = 0.0
        self.steps = self.evals = 0
        self.last: float | None = None
        self.evaluated = False

    def on_train_start(self, trainer: Trainer) -> None:
        self.last = self.clock()

    def on_eval(self, trainer: Trainer, dev_loss: float, improved: bool) -> None:
        self.evaluated = True

    def on_step_end(self, trainer: Trainer, loss: torch.Tensor) -> None:
        now = self.clock()
        if self.evaluated:  # the time since the last step was an evaluation and its checkpoints
            self.eval_time, self.evals, self.evaluated = self.eval_time + (now - self.last), self.evals + 1, False
        else:
            self.step_time, self.steps = self.step_time + (now - self.last), self.steps + 1
        self.last = now
        step, planned = trainer.state.step, trainer.config.steps
        if step % self.every or step >= 0.9 * planned or not self.steps:
            return
        eval_seconds = self.eval_time / self.evals if self.evals else self.eval_seconds
        room = self.end - self.reserve - now
        steps = step + max(
            1, budget.further_steps(room, self.step_time / self.steps, eval_seconds, step, trainer.config.eval_interval)
        )
        steps = steps if self.most is None else min(steps, self.most)
        if abs(steps - planned) > self.tolerance * planned:
            trainer.set_steps(steps)
            self.on_replan(step, steps)
        self.last = self.clock()


class StopOnSignal(Callback):
    """SIGINT and SIGTERM end the run cleanly: the step finishes, ``last`` is saved, and
    ``TrainingInterrupted`` is raised (the previous handlers are put back afterwards)."""

    def __init__(self) -> None:
        self.previous: dict[int, Any] = {}

    def on_train_start(self, trainer: Trainer) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[signum] = signal.signal(signum, lambda *_: trainer.interrupt())
            except ValueError:  # not in the main thread: leave signals alone
                pass

    def on_close(self, trainer: Trainer) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous.clear()


class StopTogether(Callback):
    """A distributed run's ``StopOnSignal``: a signal to any rank stops every rank after the
    same step (rank 0 saves ``last``), and ranks > 0 reseed their dropout stream from the seed,
    their rank and the step (so a resumed run draws what the uninterrupted one drew).

    The ranks agree on a stop (an all-reduce the host waits for) only after the steps where
    ``fit`` reads its losses anyway and every ``every`` steps, not after every step.

    Args:
        world: this process's place in the run.
        seed: the run's seed.
        device: where the backend wants the tensors of its collectives.
        every: the most steps between two agreements (a signal is acted on within them).
    """

    def __init__(self, world: distributed.World, seed: int, device: torch.device, every: int = 16):
        self.world, self.seed, self.device, self.every = world, seed, device, max(1, every)
        self.pending = False
        self.previous: dict[int, Any] = {}

    def _reseed(self, step: int) -> None:
        if self.world.rank > 0:
            torch.manual_seed(distributed.rank_seed(self.seed, self.world.rank, step))

    def on_train_start(self, trainer: Trainer) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[signum] = signal.signal(signum, self._signalled)
            except ValueError:  # not in the main thread: leave signals alone
                pass
        self._reseed(trainer.state.step)

    def _signalled(self, *_: Any) -> None:
        self.pending = True

    def on_step_end(self, trainer: Trainer, loss: torch.Tensor) -> None:
        step = trainer.state.step
        if step % self.every == 0 or trainer.reads_at(step):
            (stop,) = distributed.all_sum([1.0 if self.pending else 0.0], self.device, torch.float32)
            if stop > 0:
                trainer.interrupt()
        self._reseed(trainer.state.step)

    def on_close(self, trainer: Trainer) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous.clear()


class Checkpointer(Callback):
    """Saves ``best`` when the dev loss improves, ``last`` at every evaluation, when
    interrupted and at the end.

    Args:
        run_dir: where to save.
        describe: the JSON description of the run at the trainer's current state.
        saved_step: the step of the checkpoint the run resumed from (0 for a new run).
        average: the run's weight average, if any: ``best`` holds it when the evaluation
            found it better than the weights, and ``last`` keeps it to resume from.
    """

    def __init__(
        self,
        run_dir: RunDir,
        describe: Callable[[Trainer], dict[str, Any]],
        saved_step: int = 0,
        average: WeightAverage | None = None,
    ):
        self.run_dir, self.describe, self.average = run_dir, describe, average
        self.saved_step = saved_step  # step of the last checkpoint written (for messages)
        self._saved_last_at: int | None = None

    def save(self, trainer: Trainer, which: str) -> None:
        last, average = which == "last", self.average
        averaged = average is not None and not last and average.best_is_average
        self.run_dir.save(
            which,
            model_state=average.model_state(trainer.model) if averaged else trainer.model.state_dict(),
            meta=self.describe(trainer),
            optimizer_state=trainer.optimizer.state_dict() if last else None,
            rng_state=trainer.rng_state() if last else None,
            average_state=average.state_dict() if last and average is not None else None,
        )
        if last:
            self.saved_step = self._saved_last_at = trainer.state.step

    def on_eval(self, trainer: Trainer, dev_loss: float, improved: bool) -> None:
        if improved:
            self.save(trainer, "best")
        self.save(trainer, "last")

    def on_interrupt(self, trainer: Trainer) -> None:
        if self._saved_last_at != trainer.state.step:
            self.save(trainer, "last")

    def on_train_end(self, trainer: Trainer) -> None:
        if self._saved_last_at != trainer.state.step:
            self.save(trainer, "last")
