"""Minibatch trainer. It knows nothing about any model family.

It needs a model following ``forward(idx, targets) -> (logits, loss)``, a batcher that
draws training batches from in-memory tensors, and a function that evaluates the dev split.
Checkpoints (``last`` with optimizer and RNG state, ``best`` by dev loss) go through a
callback so that the caller decides what metadata describes the run.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from makemore.checkpoint import atomic_write_text
from makemore.data import EncodedCorpus
from makemore.errors import MakemoreError
from makemore.models.base import IGNORE_INDEX


@dataclass
class TrainConfig:
    """How to train a neural model (ignored by count models)."""

    steps: int = 20000  # optimisation steps
    batch_size: int = 128  # examples (window models) or items (sequence models) per step; 0 = full batch
    optimizer: str = "adamw"  # "adamw" or "sgd"
    lr: float = 0.01  # peak learning rate
    schedule: str = "cosine"  # "cosine", "step" (x step_factor at step_at of the run) or "constant"
    warmup_steps: int = 0  # linear warm-up steps
    min_lr_ratio: float = 0.01  # cosine floor as a fraction of lr
    step_at: float = 0.75  # step schedule: fraction of the run where lr drops
    step_factor: float = 0.1  # step schedule: lr multiplier after the drop
    weight_decay: float = 0.0  # AdamW decoupled weight decay on matrices; L2-free for SGD
    momentum: float = 0.0  # SGD momentum
    grad_clip: float = 0.0  # max global grad norm (0 = off)
    eval_interval: int = 1000  # steps between dev evaluations (and checkpoints)
    log_interval: int = 100  # steps between metrics rows
    patience: int = 0  # stop after this many evaluations without dev improvement (0 = off)
    seed: int = 1337  # initialisation, batches and dropout
    device: str = "cpu"  # "cpu", "cuda" or "auto"
    backward: str = "autograd"  # "autograd" or "manual" (models with a hand-written backward)
    track_update_ratio: int = 0  # every N steps record log10 update:data std ratios (0 = off)


def validate_train_config(config: TrainConfig) -> None:
    """Raise MakemoreError naming the option for any out-of-range training setting."""
    checks = [
        (config.steps >= 1, "--steps must be at least 1"),
        (config.batch_size >= 0, "--batch-size must be at least 0 (0 = full batch)"),
        (config.optimizer in ("adamw", "sgd"), f"--optimizer: unknown optimizer '{config.optimizer}' (adamw, sgd)"),
        (config.schedule in ("cosine", "step", "constant"), f"--schedule: unknown schedule '{config.schedule}' (cosine, step, constant)"),
        (config.backward in ("autograd", "manual"), f"--backward: unknown value '{config.backward}' (autograd, manual)"),
        (math.isfinite(config.lr) and config.lr >= 0, "--lr must be a finite number at least 0"),
        (config.warmup_steps >= 0, "--warmup-steps must be at least 0"),
        (0 <= config.min_lr_ratio <= 1, "--min-lr-ratio must be between 0 and 1"),
        (0 <= config.step_at <= 1, "--step-at must be between 0 and 1"),
        (config.step_factor >= 0, "--step-factor must be at least 0"),
        (config.weight_decay >= 0, "--weight-decay must be at least 0"),
        (0 <= config.momentum < 1, "--momentum must be in [0, 1)"),
        (config.grad_clip >= 0, "--grad-clip must be at least 0 (0 = off)"),
        (config.eval_interval >= 1, "--eval-interval must be at least 1"),
        (config.log_interval >= 1, "--log-interval must be at least 1"),
        (config.patience >= 0, "--patience must be at least 0 (0 = off)"),
        (config.track_update_ratio >= 0, "--track-update-ratio must be at least 0 (0 = off)"),
    ]
    for ok, message in checks:
        if not ok:
            raise MakemoreError(message)


def check_backward(model, config: TrainConfig) -> None:
    """Raise MakemoreError when ``--backward manual`` is asked of a model that cannot do it."""
    if config.backward == "manual":
        problem = model.manual_backward_error()
        if problem:
            raise MakemoreError(f"--backward manual: {problem}")


def lr_at(config: TrainConfig, step: int) -> float:
    """Learning rate for optimisation step ``step`` (0-based)."""
    if config.warmup_steps and step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return config.lr
    if config.schedule == "step":
        return config.lr * (config.step_factor if step >= int(config.step_at * config.steps) else 1.0)
    if config.schedule == "cosine":
        span = max(1, config.steps - config.warmup_steps)
        progress = min(1.0, (step - config.warmup_steps) / span)
        return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))
    raise MakemoreError(f"--schedule: unknown schedule '{config.schedule}' (cosine, step, constant)")


class WindowBatcher:
    """Random minibatches of (context window, next token) examples."""

    def __init__(self, corpus: EncodedCorpus, block_size: int, device: str | torch.device = "cpu"):
        X, Y = corpus.windows(block_size)
        self.X, self.Y = X.to(device), Y.to(device)

    @property
    def num_examples(self) -> int:
        return self.Y.numel()

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if batch_size <= 0:
            return self.X, self.Y
        ix = torch.randint(0, self.Y.numel(), (batch_size,), generator=generator)
        ix = ix.to(self.X.device)
        return self.X[ix], self.Y[ix]

    def chunks(self, size: int = 16384):
        for i in range(0, self.Y.numel(), size):
            yield self.X[i : i + size], self.Y[i : i + size]


class SequenceBatcher:
    """Random minibatches of whole items, padded to the longest item of each batch."""

    def __init__(self, corpus: EncodedCorpus, device: str | torch.device = "cpu"):
        self.corpus = corpus
        self.device = torch.device(device)

    @property
    def num_examples(self) -> int:
        return self.corpus.num_targets

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self.corpus)
        items = torch.arange(n) if batch_size <= 0 else torch.randint(0, n, (batch_size,), generator=generator)
        x, y = self.corpus.sequence_batch(items)
        return x.to(self.device), y.to(self.device)

    def chunks(self, size: int = 1024):
        """Items in corpus order, chunked; the targets come out in corpus order when flattened
        row by row and filtered for ``y != -1``."""
        n = len(self.corpus)
        for i in range(0, n, size):
            x, y = self.corpus.sequence_batch(torch.arange(i, min(i + size, n)))
            yield x.to(self.device), y.to(self.device)


def make_batcher(model, corpus: EncodedCorpus, device: str | torch.device = "cpu"):
    """The batcher that fits ``model.input_kind``."""
    if model.input_kind == "window":
        return WindowBatcher(corpus, model.block_size, device)
    return SequenceBatcher(corpus, device)


@torch.no_grad()
def target_log_probs(model, batcher) -> torch.Tensor:
    """Log-probability the model gives each target of the batcher's corpus, in corpus order.

    Runs in eval mode (BatchNorm uses running statistics) and restores the previous mode.
    """
    was_training = model.training
    model.eval()
    try:
        out = []
        for x, y in batcher.chunks():
            logits, _ = model(x)
            logp = F.log_softmax(logits.float(), dim=-1)  # (B, V) or (B, T, V)
            keep = y != IGNORE_INDEX
            picked = logp.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            out.append(picked[keep].cpu())
        return torch.cat(out) if out else torch.zeros(0)
    finally:
        model.train(was_training)


def evaluate_nll(model, batcher) -> float:
    """Mean negative log-likelihood per target (characters plus item ends)."""
    return float(-target_log_probs(model, batcher).double().mean())


def tensorboard_writer(log_dir: Path, start_step: int):
    """A TensorBoard ``SummaryWriter`` for ``log_dir``, or None when tensorboard is not installed.

    Events after ``start_step`` (left by an interrupted run being resumed) are purged.
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the optional extra: pip install 'makemore[tensorboard]'
        return None
    return SummaryWriter(str(log_dir), purge_step=start_step or None)


class TrainingInterrupted(Exception):
    """Raised after a signal stopped training and the last checkpoint was saved."""

    def __init__(self, step: int):
        super().__init__(f"interrupted at step {step}")
        self.step = step


@dataclass
class TrainState:
    """Everything needed to continue a run exactly."""

    step: int = 0
    best_dev: float = math.inf
    evals_since_best: int = 0
    metrics: dict[str, float] = field(default_factory=dict)


def _rng_state(generator: torch.Generator) -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state(), "batches": generator.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(generator: torch.Generator, state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["batches"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


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
        cls, groups, options = torch.optim.SGD, [{"params": params}], dict(lr=config.lr, momentum=config.momentum)
    elif config.optimizer == "adamw":
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        groups = [g for g in groups if g["params"]]
        cls, options = torch.optim.AdamW, dict(lr=config.lr, betas=(0.9, 0.99))
    else:
        raise MakemoreError(f"--optimizer: unknown optimizer '{config.optimizer}' (adamw, sgd)")
    try:
        return cls(groups, fused=True, **options)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device/dtype
        return cls(groups, foreach=True, **options)


class Trainer:
    """Trains a model with minibatches and keeps the best and the last checkpoint.

    Args:
        model: any model with ``forward(idx, targets) -> (logits, loss)``.
        train_batcher: draws training batches (``sample(batch_size, generator)``).
        evaluate: returns the dev NLL of the model (called every ``eval_interval`` steps).
        config: the train config.
        run_dir: where ``metrics.jsonl`` is written.
        save: ``save(kind, model, optimizer, rng_state, state)`` writes checkpoint ``kind``
            ("last" or "best").
        progress: show a tqdm progress bar.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        train_batcher,
        evaluate: Callable[[torch.nn.Module], float] | None,
        config: TrainConfig,
        run_dir: str | Path,
        save: Callable[..., None],
        progress: bool = True,
    ):
        validate_train_config(config)
        self.model = model
        self.train_batcher = train_batcher
        self.evaluate = evaluate
        self.config = config
        self.run_dir = Path(run_dir)
        self.save = save
        self.progress = progress
        self.optimizer = build_optimizer(model, config)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.state = TrainState()
        self._stop_signal: int | None = None
        self._tensorboard = None  # a SummaryWriter while running, when tensorboard is installed
        check_backward(model, config)

    # -- resume -------------------------------------------------------------------------
    def restore(self, optimizer_state: dict | None, rng_state: dict[str, torch.Tensor], state: TrainState) -> None:
        """Continue from a checkpoint's optimizer, RNG and step."""
        if optimizer_state is not None:
            self.optimizer.load_state_dict(optimizer_state)
        if rng_state:
            _set_rng_state(self.generator, rng_state)
        self.state = state
        self._truncate_metrics(state.step)

    def _truncate_metrics(self, step: int) -> None:
        path = self.run_dir / "metrics.jsonl"
        if not path.exists():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a row cut short when the run was killed
                continue
            if isinstance(row, dict) and row.get("step", 0) <= step:
                kept.append(line)
        atomic_write_text(path, "".join(line + "\n" for line in kept))

    # -- the loop -----------------------------------------------------------------------
    def _checkpoint(self, kind: str) -> None:
        self.save(kind, self.model, self.optimizer, _rng_state(self.generator), self.state)

    def _on_signal(self, signum, frame) -> None:
        self._stop_signal = signum

    def _train_step(self, step: int) -> float:
        config = self.config
        lr = lr_at(config, step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x, y = self.train_batcher.sample(config.batch_size, self.generator)
        self.optimizer.zero_grad(set_to_none=True)
        if config.backward == "manual":
            loss = self.model.manual_forward_backward(x, y)
        else:
            _, loss = self.model(x, y)
            loss.backward()
        loss_value = loss.detach().item()
        if not math.isfinite(loss_value):
            return loss_value
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        track = config.track_update_ratio and step % config.track_update_ratio == 0
        before = {n: p.detach().clone() for n, p in self.model.named_parameters() if p.dim() == 2} if track else None
        self.optimizer.step()
        if track:
            ratios = {}
            for name, param in self.model.named_parameters():
                if name in before:
                    update_std = (param.detach() - before[name]).std()
                    ratios[name] = float(torch.log10(update_std / param.detach().std() + 1e-20))
            self._write_metrics({"step": step + 1, "update_ratio": ratios})
        return loss_value

    def _write_metrics(self, row: dict[str, Any]) -> None:
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        if self._tensorboard is not None:
            for key, value in row.items():
                if key == "step":
                    continue
                if isinstance(value, dict):  # update ratios: one scalar per parameter
                    for name, v in value.items():
                        self._tensorboard.add_scalar(f"{key}/{name}", v, row["step"])
                else:
                    self._tensorboard.add_scalar(key, value, row["step"])

    def run(self) -> TrainState:
        """Train until ``config.steps`` (or early stop); returns the final state.

        Raises:
            TrainingInterrupted: after SIGINT/SIGTERM, once the last checkpoint is saved.
            MakemoreError: when the loss stops being finite (the last good checkpoint stays).
        """
        config, state = self.config, self.state
        self.model.train()
        self._tensorboard = tensorboard_writer(self.run_dir / "tensorboard", state.step)
        handlers = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                handlers[signum] = signal.signal(signum, self._on_signal)
            except ValueError:  # not in the main thread
                pass
        bar = tqdm(total=config.steps, initial=state.step, disable=not self.progress, unit="step", dynamic_ncols=True,
                   mininterval=0.5 if sys.stderr.isatty() else 10.0)
        window_losses: list[float] = []
        window_start = time.perf_counter()
        steps_per_s = 0.0
        try:
            while state.step < config.steps:
                loss = self._train_step(state.step)
                if not math.isfinite(loss):
                    raise MakemoreError(
                        f"loss became {loss} at step {state.step + 1}; stopped, the last good checkpoint "
                        f"(step {self._last_saved_step()}) is kept. Try a lower --lr or --grad-clip"
                    )
                state.step += 1
                window_losses.append(loss)
                bar.update(1)
                if state.step % config.log_interval == 0 or state.step == config.steps:
                    elapsed = time.perf_counter() - window_start
                    steps_per_s = len(window_losses) / elapsed if elapsed > 0 else 0.0
                    train_loss = sum(window_losses) / len(window_losses)
                    state.metrics["train_loss"] = train_loss
                    self._write_metrics(
                        {"step": state.step, "train_loss": train_loss, "lr": lr_at(config, state.step - 1), "steps_per_s": steps_per_s}
                    )
                    bar.set_postfix(self._postfix(train_loss, steps_per_s), refresh=False)
                    window_losses, window_start = [], time.perf_counter()
                stop_early = False
                if self.evaluate and (state.step % config.eval_interval == 0 or state.step == config.steps):
                    stop_early = self._evaluate_and_checkpoint()
                    bar.set_postfix(self._postfix(state.metrics.get("train_loss", loss), steps_per_s), refresh=False)
                if self._stop_signal is not None:
                    self._checkpoint("last")
                    raise TrainingInterrupted(state.step)
                if stop_early:
                    break
            if not self.evaluate:
                self._checkpoint("last")
        finally:
            bar.close()
            if self._tensorboard is not None:
                self._tensorboard.close()
                self._tensorboard = None
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        return state

    def _postfix(self, train_loss: float, steps_per_s: float) -> dict[str, str]:
        post = {"loss": f"{train_loss:.4f}"}
        if "dev_loss" in self.state.metrics:
            post["dev"] = f"{self.state.metrics['dev_loss']:.4f}"
        post["lr"] = f"{lr_at(self.config, max(self.state.step - 1, 0)):.2e}"
        post["it/s"] = f"{steps_per_s:.0f}"
        return post

    def _last_saved_step(self) -> int:
        return self.state.metrics.get("last_saved_step", 0)

    def _evaluate_and_checkpoint(self) -> bool:
        state = self.state
        dev = self.evaluate(self.model)
        self.model.train()
        state.metrics["dev_loss"] = dev
        improved = dev < state.best_dev
        if improved:
            state.best_dev, state.evals_since_best = dev, 0
            state.metrics["best_dev_loss"] = dev
            state.metrics["best_step"] = state.step
        else:
            state.evals_since_best += 1
        self._write_metrics({"step": state.step, "dev_loss": dev})
        state.metrics["last_saved_step"] = state.step
        if improved:
            self._checkpoint("best")
        self._checkpoint("last")
        return bool(self.config.patience) and state.evals_since_best >= self.config.patience


def train_state_to_json(state: TrainState) -> dict[str, Any]:
    out = asdict(state)
    if not math.isfinite(out["best_dev"]):
        out["best_dev"] = None
    return out


def train_state_from_json(data: dict[str, Any]) -> TrainState:
    data = dict(data)
    data["best_dev"] = math.inf if data.get("best_dev") is None else data["best_dev"]
    return TrainState(**data)
