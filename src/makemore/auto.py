"""``--preset auto``: the family, size, regularisation and length of a run chosen from its data
and its time budget, by a small table read from a measured study (``benchmarks/bench_auto.py``,
``benchmarks/RESULTS.md`` "Auto").

The study trained every candidate below on lists of 200 to 3,000,000 items (names, dictionary
words, package-style names, synthetic big lists) for 30 s, 2 min and 10 min and kept, per list
size and budget, the one with the best held-out NLL. ``RULE`` is that table; ``choose`` reads it.
Beside a recurrent pick, a Kneser-Ney n-gram is fitted and kept when it is better on dev (the
floor: ``train/floor.py``).
What the user gave explicitly is kept: a model option only some candidates have restricts the
choice to them (``--order`` to the count model, ``--n-hidden`` to the recurrent ones), a training
option that only gradient training reads rules the count model out, and every given value
overrides the chosen one.

Without ``--time`` the run is planned for ``DEFAULT_BUDGET`` seconds (the steps of each candidate
that take about that long on 2 CPU cores: a fixed count, so the run stays deterministic). Every
recurrent candidate stops after ``max_epochs`` passes over the training split at most, so a small
list ends long before a big budget does (and overfits less).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from makemore import validation
from makemore.config import Auto, RunConfig, TrainConfig, default_train_config, format_duration
from makemore.models import REGISTRY, make_config

DEFAULT_BUDGET = 120.0  # seconds auto plans for without --time (also in train --help)
# The Kneser-Ney orders auto fits and keeps the best of on dev (a count pick, or the floor beside a
# recurrent one: train/floor.py): all of them below 500,000 training items (2-6 took 3 s in all at
# 240,000 in the study), else the table's order and the one below (orders 4-6 took 2, 3 and 7 s at 2.4M)
FLOOR_ORDERS = (2, 3, 4, 5, 6)
FLOOR_ALL_ORDERS_BELOW = 500_000


def count_orders(items: int, order: int) -> list[int]:
    """The Kneser-Ney orders tried for a list of ``items`` training items (``order``: the table's)."""
    return list(FLOOR_ORDERS) if items < FLOOR_ALL_ORDERS_BELOW else [order - 1, order]


COUNT_FIELDS = frozenset({"device", "backend", "time_budget", "threads", "seed"})  # what counting reads


@dataclass(frozen=True)
class Candidate:
    """One setting the study tried: a family with its options and training.

    ``steps`` is the count that takes about ``DEFAULT_BUDGET`` on 2 CPU cores (used without
    ``--time``); ``max_epochs`` caps the steps at that many passes over the training split.
    """

    family: str
    summary: str
    model_options: dict[str, Any] = field(default_factory=dict)
    train_options: dict[str, Any] = field(default_factory=dict)
    steps: int = 0
    max_epochs: float = 0.0

    @property
    def counts(self) -> bool:
        return not self.steps


_LSTM_TRAIN = dict(batch_size=64, weight_decay=0.1, warmup_steps=200, eval_interval=500)
_EPOCHS = 60  # the most passes over the training split (the study's small lists peaked well before)


def _lstm(summary: str, lr: float, steps: int, **model: Any) -> Candidate:
    batch = model.pop("batch_size", 64)
    train = {**_LSTM_TRAIN, "batch_size": batch, "lr": lr}
    return Candidate("lstm", summary, model, train, steps=steps, max_epochs=_EPOCHS)


# steps: what 120 s gave on names.txt with 2 free threads (default 5,589; lstm-m 4,880); the small
# ones scaled by their speed beside default's in the study, where the epoch cap binds first anyway
# fmt: off
CANDIDATES: dict[str, Candidate] = {
    "count": Candidate("ngram", "Kneser-Ney n-gram", dict(smoothing="kneser-ney")),
    "lstm-xs": _lstm("1-layer LSTM of 64, dropout 0.3", 0.006, 30000,
                     n_embd=32, n_hidden=64, n_layers=1, dropout=0.3),
    "lstm-s": _lstm("2-layer LSTM of 128, dropout 0.3, DropConnect 0.2", 0.005, 13000,
                    n_embd=48, n_hidden=128, n_layers=2, dropout=0.3, weight_dropout=0.2),
    "default": _lstm("2-layer LSTM of 256, dropout 0.25 (--preset default)", 0.004, 5500,
                     n_embd=64, n_hidden=256, n_layers=2, dropout=0.25),
    "lstm-m": _lstm("2-layer LSTM of 256, dropout 0.3, DropConnect 0.2", 0.003, 4800,
                    n_embd=64, n_hidden=256, n_layers=2, dropout=0.3, weight_dropout=0.2),
    "lstm-l": _lstm("2-layer LSTM of 512, dropout 0.1", 0.002, 400,
                    n_embd=96, n_hidden=512, n_layers=2, dropout=0.1, batch_size=128),
}
# fmt: on


@dataclass(frozen=True)
class Row:
    """A row of ``RULE``: training splits of fewer than ``targets`` targets (characters and item
    ends: what an epoch costs and teaches) and budgets under ``seconds`` train ``pick`` (a key of
    ``CANDIDATES``); ``order`` is the count model's, and ``neural`` the recurrent candidate when
    the options given rule the count model out."""

    targets: float
    seconds: float
    pick: str
    order: int
    neural: str


# From benchmarks/RESULTS.md "Auto" (bench_auto.py): the first row that matches is used. Training
# targets: 1.2k-7.1k for the 200- and 1,000-item lists, 29k-71k at 5,000 items, 172k-430k at 30,000
# and 1.7M-17M for the big lists. A small LSTM beat every Kneser-Ney n-gram of names and words below
# 50k targets at every budget; past that, 30 s trained no LSTM far enough, nor 2 min past 1M. The
# n-gram still won lists of some recurrent picks (dictionary words, package names, where items share
# stems): the floor (train/floor.py) keeps it there. INF: no bound.
INF = math.inf
RULE: tuple[Row, ...] = (
    Row(targets=10_000, seconds=INF, pick="lstm-xs", order=3, neural="lstm-xs"),
    Row(targets=50_000, seconds=INF, pick="lstm-s", order=5, neural="lstm-s"),
    Row(targets=1_000_000, seconds=60, pick="count", order=5, neural="lstm-s"),
    Row(targets=1_000_000, seconds=300, pick="default", order=5, neural="default"),
    Row(targets=1_000_000, seconds=INF, pick="lstm-m", order=5, neural="lstm-m"),
    Row(targets=INF, seconds=300, pick="count", order=5, neural="default"),
    Row(targets=INF, seconds=INF, pick="lstm-m", order=5, neural="lstm-m"),
)


@dataclass(frozen=True)
class Stats:
    """What the rule reads of a corpus (its training split)."""

    items: int
    targets: int  # characters and item ends: what the models predict
    characters: int  # the alphabet: the vocabulary without its start tokens
    labels: int

    def describe(self) -> str:
        labels = f", {self.labels} labels" if self.labels > 1 else ""
        return (
            f"{self.items:,} training items, {self.targets:,} characters and ends, alphabet {self.characters}{labels}"
        )


def stats_of(data) -> Stats:
    """The ``Stats`` of a loaded ``Data`` (its training split)."""
    train = data.corpus("train")
    return Stats(len(train), train.num_targets, len(data.vocab.chars), len(data.vocab.label_names))


def _allowed(name: str, auto: Auto) -> bool:
    """Whether candidate ``name`` can take the options the user gave."""
    candidate = CANDIDATES[name]
    known = {f.name for f in dataclasses.fields(REGISTRY[candidate.family].config)}
    if not set(auto.model_options) <= known:
        return False
    return not candidate.counts or (set(auto.train_options) <= COUNT_FIELDS and auto.epochs is None)


def conflict(auto: Auto) -> tuple[str, str] | None:
    """A model option and a training option given that no candidate takes together (``--order``
    is the count model's, ``--lr`` only gradient training's), else None."""
    if any(_allowed(name, auto) for name in CANDIDATES):
        return None
    trained = sorted({*auto.train_options} - COUNT_FIELDS) or ["epochs"]
    return sorted(auto.model_options)[0], trained[0]


def choose(stats: Stats, seconds: float, auto: Auto) -> tuple[str, int, str]:
    """The candidate for a corpus and budget under what the user gave.

    Returns:
        (candidate name, the count model's order, the reason in words).
    Raises:
        ConfigError: the options given fit no candidate (``conflict``).
    """
    clash = conflict(auto)
    if clash is not None:
        validation.fail(auto, "model_options", f"{clash[0]} goes with no candidate that takes {clash[1]}; choose "
                        "the model family")  # fmt: skip
    row = next(r for r in RULE if stats.targets < r.targets and seconds < r.seconds)
    size = f"{stats.describe()}, {format_duration(seconds)}"
    if auto.candidate is not None:
        return auto.candidate, row.order, f"{auto.candidate} asked for ({size})"
    if _allowed(row.pick, auto):
        return row.pick, row.order, f"best measured for {size}"
    other = row.neural if row.pick == "count" else "count"
    given = ", ".join(sorted({*auto.model_options, *auto.train_options} | ({"epochs"} if auto.epochs else set())))
    if not _allowed(other, auto):
        return row.pick, row.order, f"best measured for {size} (given: {given})"
    return other, row.order, f"{row.pick} is best measured for {size}, but {given} given"


def steps_for(epochs: float, items: int, batch_size: int) -> int:
    """The steps of ``epochs`` passes over ``items`` items in batches of ``batch_size`` (at least 1)."""
    return max(1, math.ceil(epochs * items / batch_size))


def resolve(config: RunConfig, data) -> RunConfig:
    """``config`` (with ``auto`` requested) made concrete for ``data``: the chosen family,
    options and training, the user's given values on top, and ``auto.choice`` recorded.

    Returns:
        the new RunConfig (``auto.choice`` set: what run.json records under "auto").
    """
    auto = config.auto
    if auto.candidate is not None and auto.candidate not in CANDIDATES:
        validation.fail(
            auto, "candidate", f"unknown candidate {auto.candidate!r} (choose from: {', '.join(CANDIDATES)})"
        )
    stats = stats_of(data)
    budgeted = auto.train_options.get("time_budget") or 0.0
    seconds = budgeted or DEFAULT_BUDGET
    name, order, reason = choose(stats, seconds, auto)
    candidate = CANDIDATES[name]
    model_options = {**candidate.model_options, **({"order": order} if candidate.counts else {}), **auto.model_options}
    train = default_train_config(candidate.family, candidate.train_options)
    choice: dict[str, Any] = {"candidate": name, "reason": reason, "budget_seconds": seconds,
                              "corpus": dataclasses.asdict(stats)}  # fmt: skip
    if not candidate.counts:
        cap = steps_for(candidate.max_epochs, stats.items, train.batch_size)
        steps = min(candidate.steps, cap) if not budgeted else cap
        if auto.epochs is not None:
            steps = steps_for(auto.epochs, stats.items, train.batch_size)
        eval_interval = max(25, min(train.eval_interval, steps // 20))
        train = dataclasses.replace(train, steps=steps, eval_interval=eval_interval,
                                    log_interval=min(train.log_interval, eval_interval),
                                    warmup_steps=min(train.warmup_steps, max(1, steps // 30)))  # fmt: skip
        choice["max_steps"] = steps
    train = TrainConfig(**{**dataclasses.asdict(train), **auto.train_options})
    choice["summary"] = summary(candidate, model_options, train)
    orders = count_orders(stats.items, order)
    if not candidate.counts and auto.candidate is None and _allowed("count", auto):
        choice["floor_orders"] = orders
    elif candidate.counts and "order" not in auto.model_options and len(orders) > 1:
        choice["orders"] = orders  # the order best on dev (train/floor.py), fitted when the run starts
    return dataclasses.replace(
        config,
        model=candidate.family,
        model_config=make_config(candidate.family, model_options),
        train=train,
        auto=dataclasses.replace(auto, choice=choice),
    )


def summary(candidate: Candidate, model_options: dict[str, Any], train: TrainConfig) -> str:
    """The choice in a few words: the family and size, and how long it trains."""
    if candidate.counts:
        return f"{candidate.summary}, order {model_options['order']}"
    length = f"up to {train.steps:,} steps of {train.batch_size}" if train.time_budget else f"{train.steps:,} steps"
    return f"{candidate.summary}, {length}"
