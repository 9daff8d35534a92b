"""``--preset auto``'s floor: a Kneser-Ney n-gram fitted beside the recurrent model it chose, kept
as the run when it scores better on the dev split.

The study (``benchmarks/bench_auto.py``) found lists where a count model, fitted in seconds, beats
an LSTM trained for the whole budget: dictionary words and package names, whose items share
stems that a high-order n-gram memorises, and any list too big for the budget. The table cannot
tell those lists from names by their size alone, so auto fits the count model first (its time
counts as the run's set-up, inside ``--time``) and, unless the recurrent model's best checkpoint
ends better on the same dev items by more than ``MARGIN``, writes the count model as the run and
says so.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from makemore.config import RunConfig
from makemore.data.datasets import Data
from makemore.evaluate.scoring import evaluate_nll
from makemore.models import LanguageModel, build_model, make_config

# The count model stays unless the recurrent one is better on dev by more than this: a few thousand
# dev items measure a difference of NLL to about 0.005 (on 30,000 dictionary words the study's LSTM
# was 0.002 better on dev and 0.001 worse on test), and in a tie the n-gram is the better model to
# keep (fitted in seconds, exact in every export, faster to sample).
MARGIN = 0.005


@dataclass(frozen=True)
class Floor:
    """The count model fitted beside the run: its config, its model and its dev NLL."""

    config: RunConfig
    model: LanguageModel
    dev_loss: float  # on the whole dev split
    seconds: float  # fitting every order tried and scoring them

    def to_json(self) -> dict[str, Any]:
        return {"order": self.config.model_config.order, "dev_loss": self.dev_loss, "seconds": self.seconds}


def fit(config: RunConfig, data: Data, orders: list[int]) -> Floor:
    """The Kneser-Ney n-gram of the order in ``orders`` best on the dev split.

    Args:
        config: the run's (auto) config: its data and training settings are kept.
        data: the run's data.
        orders: the orders to try (``makemore.auto``'s choice).
    """
    started = time.perf_counter()
    train, dev = data.corpus("train"), data.corpus("dev")
    best: tuple[float, RunConfig, LanguageModel] | None = None
    for order in orders:
        model_config = make_config("ngram", {"order": order, "smoothing": "kneser-ney"})
        model = build_model("ngram", model_config, data.vocab.size)
        model.fit_batcher(model.batcher(train))
        loss = evaluate_nll(model, model.batcher(dev))
        if best is None or loss < best[0]:
            best = (loss, dataclasses.replace(config, model="ngram", model_config=model_config), model)
    loss, count_config, model = best
    return Floor(count_config, model, loss, time.perf_counter() - started)


def best_order(config: RunConfig, data: Data) -> tuple[RunConfig, LanguageModel]:
    """``--preset auto``'s count model (``config``) with the order of ``auto.choice["orders"]``
    best on the dev split (its dev NLL recorded in the choice), and that model, fitted."""
    fitted = fit(config, data, config.auto.choice["orders"])
    order = fitted.config.model_config.order
    choice = {**config.auto.choice, "order_dev_loss": fitted.dev_loss, "orders_seconds": fitted.seconds}
    choice["summary"] = choice["summary"].rsplit(", order ", 1)[0] + f", order {order} (best on dev)"
    return dataclasses.replace(fitted.config, auto=dataclasses.replace(config.auto, choice=choice)), fitted.model


def beats(floor: Floor, dev_items, dev_loss: float) -> float | None:
    """The floor's NLL on ``dev_items`` (the items the run's report scored) when the run's
    ``dev_loss`` there is not lower by more than ``MARGIN``; else None."""
    loss = floor.dev_loss if dev_items is None else evaluate_nll(floor.model, floor.model.batcher(dev_items))
    return loss if loss <= dev_loss + MARGIN else None
