"""Weight averaging (``TrainConfig.ema``): an exponential moving average of the weights.

After every optimisation step the average moves towards the weights,
``avg <- decay * avg + (1 - decay) * w``, so it averages about the last ``1 / (1 - decay)``
steps. At each evaluation both the weights and their average are evaluated; the better one
is the evaluation's dev loss and, when it improves, what ``best`` holds. ``last`` holds the
weights (training goes on from them) and the average, so a resumed run continues exactly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from makemore.train.trainer import Callback, Trainer


class WeightAverage:
    """The moving average of a model's floating-point parameters.

    Args:
        model: the model whose weights are averaged (buffers, such as BatchNorm's running
            statistics, are taken from the model as they are).
        decay: in (0, 1); 0.999 averages about the last 1,000 steps.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.names = [n for n, p in model.named_parameters() if p.requires_grad and p.is_floating_point()]
        params = dict(model.named_parameters())
        self.params = [params[n] for n in self.names]
        self.average = [p.detach().clone() for p in self.params]
        self.best_is_average = False  # whether the last evaluation's better weights were the average
        self.evaluated: tuple[float, float] | None = None  # the last evaluation: (weights, average)

    @torch.no_grad()
    def update(self) -> None:
        """One step of the average towards the current weights."""
        torch._foreach_lerp_(self.average, [p.detach() for p in self.params], 1.0 - self.decay)

    @contextlib.contextmanager
    @torch.no_grad()
    def swapped(self) -> Iterator[None]:
        """The model holds the average inside the block, its own weights again after it."""
        saved = [p.detach().clone() for p in self.params]
        for p, a in zip(self.params, self.average):
            p.copy_(a)
        try:
            yield
        finally:
            for p, s in zip(self.params, saved):
                p.copy_(s)

    def model_state(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """``model.state_dict()`` with the averaged parameters in place of the weights."""
        state = dict(model.state_dict())
        state.update({n: a.detach().clone() for n, a in zip(self.names, self.average)})
        return state

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {n: a for n, a in zip(self.names, self.average)}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Continue from a saved average (a checkpoint from before averaging was on has none:
        the average starts from the current weights)."""
        if not state:
            self.average = [p.detach().clone() for p in self.params]
            return
        missing = [n for n in self.names if n not in state]
        if missing or len(state) != len(self.names):
            raise ValueError(f"the saved weight average does not fit this model (missing {missing[:3]})")
        for a, n in zip(self.average, self.names):
            if state[n].shape != a.shape:
                raise ValueError(f"the saved weight average of {n} has shape {tuple(state[n].shape)}")
            a.copy_(state[n])


class AverageWeights(Callback):
    """Moves a ``WeightAverage`` after every optimizer step; adds both dev losses to the dev
    loss rows (``dev_loss_weights``, ``dev_loss_average``; it must come before the callbacks
    that write rows)."""

    def __init__(self, average: WeightAverage):
        self.average = average

    def on_after_optimizer_step(self, trainer: Trainer) -> None:
        self.average.update()

    def on_log(self, trainer: Trainer, row: dict) -> None:
        if "dev_loss" in row and self.average.evaluated is not None:
            row["dev_loss_weights"], row["dev_loss_average"] = self.average.evaluated


def evaluate_with_average(evaluate, average: WeightAverage):
    """An evaluation that also evaluates the average and returns the better dev loss.

    Args:
        evaluate: the run's dev evaluation, ``model -> float``.
        average: the weight average of the model being evaluated.
    Returns:
        ``model -> float``, the lower of the two; ``average.best_is_average`` says which.
    """

    def both(model: torch.nn.Module) -> float:
        live = evaluate(model)
        with average.swapped():
            averaged = evaluate(model)
        average.best_is_average, average.evaluated = averaged < live, (live, averaged)
        return min(live, averaged)

    return both
