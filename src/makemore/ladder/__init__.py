"""``makemore ladder``: every rung of the lectures' ladder trained on one corpus, in one report.

This module is torch-free (the command line reads ``LadderConfig``'s declarations before it
imports anything heavy): the rungs as data and the config. ``ladder.run`` trains them,
``ladder.report`` writes the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from makemore import options, validation
from makemore.config import RUN_SURFACES
from makemore.durations import MAX_TIME_BUDGET
from makemore.options import option


@dataclass(frozen=True)
class Rung:
    """One rung: a model family with the options that make it the lectures' rung."""

    name: str
    model: str
    model_options: dict[str, Any] = field(default_factory=dict)
    train_options: dict[str, Any] = field(default_factory=dict)


def _ngram(order: int) -> Rung:
    return Rung(f"ngram-{order}", "ngram", {"order": order, "smoothing": "kneser-ney"})


RUNGS: tuple[Rung, ...] = (
    *(_ngram(order) for order in range(1, 6)),
    Rung("bigram", "bigram"),
    Rung("mlp", "mlp"),
    # the hand-written backward pass covers one hidden layer without dropout
    Rung("bn-mlp-manual", "bn-mlp", {"n_layers": 1, "dropout": 0.0}, {"backward": "manual"}),
    Rung("wavenet", "wavenet"),
    Rung("rnn", "rnn"),
    Rung("gru", "gru"),
    Rung("lstm", "lstm"),
    Rung("transformer", "transformer"),
)
RUNG_NAMES = tuple(rung.name for rung in RUNGS)
MIN_RUNG_SECONDS = 10.0  # a rung trained by gradient gets at least this (its --time)


@dataclass
class LadderConfig:
    """How ``makemore ladder`` shares its time and what it measures."""

    time_budget: float = option(
        600.0, "the whole ladder's time: the n-grams first (seconds), then the rest split evenly among the rungs "
        "trained by gradient, each share recomputed from the time left before each rung; a duration like 90s, 10m, "
        "1h (default 10m)", flag="time", metavar="DURATION", parse="duration", above=0, most=MAX_TIME_BUDGET,
        surfaces=RUN_SURFACES,
    )  # fmt: skip
    rungs: tuple[str, ...] = option(
        (), f"train only these rungs, in the ladder's order (repeat the flag; default all: {', '.join(RUNG_NAMES)})",
        flag="rung", metavar="NAME", choices=RUNG_NAMES, surfaces=RUN_SURFACES,
    )  # fmt: skip
    samples: int = option(1000, "items generated per rung for the sample metrics and samples/s", least=10,
                          most=100_000, surfaces=RUN_SURFACES)  # fmt: skip
    seed: int = option(0, "seed of every rung's training and samples", least=0, most=2**31 - 1,
                       surfaces=RUN_SURFACES)  # fmt: skip

    def __post_init__(self) -> None:
        options.check(self)
        unknown = [name for name in self.rungs if name not in RUNG_NAMES]
        if unknown:
            validation.fail(self, "rungs", f"unknown rung {unknown[0]!r} (choose from: {', '.join(RUNG_NAMES)})")
        if len(set(self.rungs)) != len(self.rungs):
            validation.fail(self, "rungs", "a rung is named twice")

    @property
    def chosen(self) -> tuple[Rung, ...]:
        """The rungs to train, in the ladder's order."""
        return tuple(rung for rung in RUNGS if not self.rungs or rung.name in self.rungs)


__all__ = ["MIN_RUNG_SECONDS", "RUNGS", "RUNG_NAMES", "LadderConfig", "Rung"]
