"""Minibatch training: a loop with a public ``step`` and callbacks. It knows nothing of models.

The trainer needs a model with ``forward(idx, targets) -> (logits, loss)``, a batcher that
draws training batches (``sample(batch_size, generator)``) and, optionally, a function that
evaluates the dev split. Everything else (progress bar, metrics files, TensorBoard, update
ratios, early stopping, signals, checkpoints) is a ``Callback`` (see ``callbacks.py``).

``fit`` does not wait for the device at every step: each step's loss stays a 0-dim tensor
until a *read point* (a train_loss row, an evaluation, an interrupt, the end), where the
losses not read yet come to Python in one transfer (``read_losses``). A loss that is not
finite is caught at once on the CPU (where reading costs nothing: that step updates nothing)
and at the next read point elsewhere (see ``Trainer.advance``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from makemore.config import TrainConfig
from makemore.data.batching import Batcher
from makemore.errors import MakemoreError

ForwardBackward = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def lr_at(config: TrainConfig, step: int) -> float:
    """Learning rate for optimisation step ``step`` (0-based)."""
    if config.warmup_steps and step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "step":
        return config.lr * (config.step_factor if step >= int(config.step_at * config.steps) else 1.0)
    if config.schedule == "cosine":
        span = max(1, config.steps - config.warmup_steps)
        progress = min(1.0, (step - config.warmup_steps) / span)
        return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))
    return config.lr  # "constant"


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD or AdamW over the model's trainable parameters.

    AdamW decays only matrices (not biases, gains or other vectors). Both use PyTorch's
    fused implementation (one kernel for all parameters) where this PyTorch and device
    have it, else the multi-tensor ``foreach`` one; the maths is the same.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise MakemoreError("this model has no trainable parameters")
    if config.optimizer == "sgd":
        cls, groups, options = (torch.optim.SGD, [{"params": params}], dict(lr=config.lr, momentum=config.momentum))
    else:  # "adamw"
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        groups = [g for g in groups if g["params"]]
        cls, options = torch.optim.AdamW, dict(lr=config.lr, betas=(0.9, 0.99))
    try:
        return cls(groups, fused=True, **options)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device/dtype
        return cls(groups, foreach=True, **options)


def autograd_forward_backward(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The loss of one batch, with its gradients filled in by autograd."""
    _, loss = model(x, y)
    loss.backward()
    return loss


class TrainingInterrupted(Exception):
    """Raised after a signal stopped training and the last checkpoint was saved."""

    def __init__(self, step: int):
        super().__init__(f"interrupted at step {step}")
        self.step = step


class LossNotFinite(MakemoreError):
    """The training (or dev) loss became NaN or infinite at ``step`` (the first such step);
    nothing was saved from that step on."""

    def __init__(self, step: int, loss: float, what: str = "loss"):
        super().__init__(f"{what} became {loss} at step {step}")
        self.step, self.loss, self.what = step, loss, what


@dataclass
class TrainState:
    """Everything needed to continue a run exactly (with the optimizer and RNG states)."""

    step: int = 0
    best_dev: float = math.inf
    evals_since_best: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    window_losses: list[float] = field(default_factory=list)  # since the last train_loss row (read so far)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if not math.isfinite(out["best_dev"]):
            out["best_dev"] = None
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainState:
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["best_dev"] = math.inf if data.get("best_dev") is None else data["best_dev"]
        return cls(**data)


class Callback:
    """Hooks into ``Trainer.fit``; override the ones you need (each gets the trainer)."""

    def on_train_start(self, trainer: Trainer) -> None: ...

    def on_before_optimizer_step(self, trainer: Trainer) -> None: ...

    def on_after_optimizer_step(self, trainer: Trainer) -> None: ...

    def on_step_end(self, trainer: Trainer, loss: torch.Tensor) -> None:
        """After each step of ``fit``; ``loss`` is the step's loss as a 0-dim tensor on the
        device: reading it (``float(loss)``) makes the host wait for the device."""

    def on_log(self, trainer: Trainer, row: dict[str, Any]) -> None:
        """A metrics row: ``{"step": ..., "train_loss"/"dev_loss"/"update_ratio"...}``."""

    def on_eval(self, trainer: Trainer, dev_loss: float, improved: bool) -> None: ...

    def on_interrupt(self, trainer: Trainer) -> None:
        """A stop was asked for (``trainer.interrupt()``); ``TrainingInterrupted`` follows."""

    def on_train_end(self, trainer: Trainer) -> None:
        """The run reached its last step or stopped early."""

    def on_close(self, trainer: Trainer) -> None:
        """Always called last, also after an exception: release what ``on_train_start`` took."""


HOOKS = tuple(name for name in vars(Callback) if name.startswith("on_"))


class Trainer:
    """Trains a model with minibatches.

    Args:
        model: any model with ``forward(idx, targets) -> (logits, loss)``.
        batcher: draws training batches (``batching.Batcher``: ``sample(batch_size, generator)``); one that draws
            ahead (a pool of batches) also has ``state_dict()``/``load_state_dict()``, saved
            with the RNG states.
        config: the train config (steps, batch size, optimizer, schedule, ...).
        evaluate: returns the dev NLL of the model (every ``eval_interval`` steps), or None.
        callbacks: called in order at each hook.
        forward_backward: computes a batch's loss and fills the gradients (default autograd).
        lr_schedule: learning rate of each step (default ``lr_at(config, step)``).
    """

    # None: check each loss at once where it lives on the CPU, at the next read point elsewhere
    # (see ``advance``); True or False forces one way (tests)
    defer_checks: bool | None = None

    def __init__(
        self,
        model: torch.nn.Module,
        batcher: Batcher,
        config: TrainConfig,
        *,
        evaluate: Callable[[torch.nn.Module], float] | None = None,
        callbacks: Sequence[Callback] = (),
        forward_backward: ForwardBackward = autograd_forward_backward,
        lr_schedule: Callable[[int], float] | None = None,
    ):
        self.model, self.batcher, self.config = model, batcher, config
        self.evaluate = evaluate
        self.callbacks = list(callbacks)
        # each hook's methods, skipping callbacks that leave it as the base class's no-op
        self._hooks = {
            hook: [
                getattr(cb, hook)
                for cb in self.callbacks
                if getattr(type(cb), hook, None) is not getattr(Callback, hook)
            ]
            for hook in HOOKS
        }
        self.forward_backward = forward_backward
        self.lr_schedule = lr_schedule or (lambda step: lr_at(self.config, step))
        self.optimizer = build_optimizer(model, config)
        self.generator = torch.Generator().manual_seed(config.seed)  # draws the batches
        self.state = TrainState()
        self.stop_requested = False  # finish after this step (early stopping)
        self.interrupted = False  # save and raise TrainingInterrupted after this step
        self.loss: torch.Tensor | None = None  # the loss of the step being taken (0-dim, on the device)
        self._unread: list[torch.Tensor] = []  # losses of fit's steps not read yet, after the window's

    # -- state ----------------------------------------------------------------------------
    def rng_state(self) -> dict[str, torch.Tensor]:
        """The RNG states a resumed run needs: the global one (dropout) and the batches'."""
        state = {"torch": torch.get_rng_state(), "batches": self.generator.get_state()}
        state.update({f"batcher.{k}": v for k, v in self.batcher.state_dict().items()})  # batches drawn ahead
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state()
        return state

    def restore(self, optimizer_state: dict | None, rng_state: dict[str, torch.Tensor], state: TrainState) -> None:
        """Continue from a checkpoint's optimizer, RNG and step."""
        if optimizer_state is not None:
            try:
                self.optimizer.load_state_dict(optimizer_state)
            except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as exc:
                raise MakemoreError(f"the checkpoint's optimizer state does not fit this model ({exc})") from None
        if rng_state:
            torch.set_rng_state(rng_state["torch"])
            self.generator.set_state(rng_state["batches"])
            prefix = "batcher."
            batcher_state = {k[len(prefix) :]: v for k, v in rng_state.items() if k.startswith(prefix)}
            try:
                self.batcher.load_state_dict(batcher_state)
            except (KeyError, ValueError, TypeError, RuntimeError) as exc:
                raise MakemoreError(f"the checkpoint's batch state is unreadable ({exc})") from None
            if "cuda" in rng_state and torch.cuda.is_available():
                torch.cuda.set_rng_state(rng_state["cuda"])
        self.state = state

    def set_steps(self, steps: int) -> None:
        """Change the run's total steps (a time budget's new plan); the default lr schedule is
        laid over the new count from the next step on.

        Args:
            steps: the new total, more than the steps done so far.
        """
        if steps <= self.state.step:
            raise ValueError(f"set_steps: {steps} is not more than the {self.state.step} steps done")
        self.config = dataclasses.replace(self.config, steps=steps)

    def request_stop(self) -> None:
        """End the run after the current step (and its evaluation)."""
        self.stop_requested = True

    def interrupt(self) -> None:
        """Save and raise ``TrainingInterrupted`` after the current step (signal-safe)."""
        self.interrupted = True

    def log(self, row: dict[str, Any]) -> None:
        """Hand a metrics row to every callback."""
        self._call("on_log", row)

    def _call(self, hook: str, *args: Any) -> None:
        for method in self._hooks[hook]:
            method(self, *args)

    # -- the step -------------------------------------------------------------------------
    def step(self) -> float:
        """One optimisation step: learning rate, batch, forward and backward, clipping, update.

        Reads the loss (the host waits for the device): ``fit`` takes its steps with ``advance``.

        Returns:
            the batch loss. When it is not finite nothing is updated and the step count
            stays where it was (on every device).
        """
        return self._step(defer=False).item()

    def advance(self) -> torch.Tensor:
        """The step ``fit`` takes, without waiting for the device.

        The rule for a loss that is not finite: where the loss lives on the CPU (reading it
        costs nothing) it is read at once, and as in ``step`` nothing is updated and the step
        count stays; on an accelerator (or with ``defer_checks`` True) the step is taken
        unread, and ``fit`` raises ``LossNotFinite`` naming the first such step at its next
        read point (before any row or checkpoint of that step or later).

        Returns:
            the batch loss, a detached 0-dim tensor on the device.
        """
        return self._step(defer=self.defer_checks)

    def _step(self, defer: bool | None) -> torch.Tensor:
        config, step = self.config, self.state.step
        lr = self.lr_schedule(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x, y = self.batcher.sample(config.batch_size, self.generator)
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.forward_backward(self.model, x, y).detach()
        if defer is None:
            defer = loss.device.type != "cpu"
        if not defer and not math.isfinite(loss.item()):
            return loss
        self.loss = loss
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self._call("on_before_optimizer_step")
        self.optimizer.step()
        self._call("on_after_optimizer_step")
        self.state.step += 1
        return loss

    def read_losses(self) -> list[float]:
        """The losses of the steps since the last train_loss row (``state.window_losses``),
        with those ``fit`` has not read yet read now, in one transfer from the device.

        Raises:
            LossNotFinite: naming the first step whose loss is not finite (it never enters the window).
        """
        window, unread = self.state.window_losses, self._unread
        if unread:
            values = torch.stack(unread).tolist()
            unread.clear()
            for i, value in enumerate(values):
                if not math.isfinite(value):
                    raise LossNotFinite(self.state.step - len(values) + i + 1, value)
            window.extend(values)
        return window

    def reads_at(self, step: int) -> bool:
        """Whether ``fit`` reads the losses after ``step``: a train_loss row or an evaluation
        (an interrupt and the end are read points too)."""
        config = self.config
        at = step % config.log_interval == 0 or step == config.steps
        return at or (self.evaluate is not None and step % config.eval_interval == 0)

    # -- the loop -------------------------------------------------------------------------
    def fit(self) -> TrainState:
        """Train until ``config.steps`` (or a stop); returns the final state.

        Raises:
            TrainingInterrupted: after ``interrupt()`` (a signal), once callbacks have saved.
            LossNotFinite: when the loss stops being finite (see ``advance``).
        """
        state = self.state
        self.model.train()
        self._call("on_train_start")
        self._unread.clear()
        started = time.perf_counter()  # a resumed run goes on with its window
        try:
            while state.step < self.config.steps and not self.stop_requested:
                config = self.config  # set_steps may change it between steps
                before = state.step
                loss = self.advance()
                if state.step == before:  # read at once and not finite: nothing updated
                    raise LossNotFinite(before + 1, loss.item())
                self._unread.append(loss)
                self._call("on_step_end", loss)
                if state.step % config.log_interval == 0 or state.step == config.steps:
                    self._log_train(self.read_losses(), time.perf_counter() - started)
                    state.window_losses.clear()
                    started = time.perf_counter()
                if self.evaluate is not None and (state.step % config.eval_interval == 0 or state.step == config.steps):
                    self.read_losses()
                    self._evaluate()
                if self.interrupted:
                    self.read_losses()
                    self._call("on_interrupt")
                    raise TrainingInterrupted(state.step)
            self.read_losses()
            self._call("on_train_end")
        finally:
            self._call("on_close")
        return state

    def _log_train(self, losses: list[float], elapsed: float) -> None:
        train_loss = sum(losses) / len(losses)
        self.state.metrics["train_loss"] = train_loss
        steps_per_s = len(losses) / elapsed if elapsed > 0 else 0.0
        step = self.state.step
        self.log({"step": step, "train_loss": train_loss, "lr": self.lr_schedule(step - 1), "steps_per_s": steps_per_s})

    def _evaluate(self) -> None:
        state = self.state
        dev = self.evaluate(self.model)
        self.model.train()
        if not math.isfinite(dev):  # weights gone bad: save nothing from here on
            raise LossNotFinite(state.step, dev, "dev loss")
        state.metrics["dev_loss"] = dev
        improved = dev < state.best_dev
        if improved:
            state.best_dev, state.evals_since_best = dev, 0
            state.metrics["best_dev_loss"] = dev
            state.metrics["best_step"] = state.step
        else:
            state.evals_since_best += 1
        self.log({"step": state.step, "dev_loss": dev})
        self._call("on_eval", dev, improved)
