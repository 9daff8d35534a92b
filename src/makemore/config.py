"""The configs of a run (data, training, the whole run) and the named presets, as data.

Each config validates itself when built (``__post_init__``), so a bad value is refused where
it enters (the API, the CLI, a checkpoint header) with a ``ConfigError`` naming its field.
A model family's own config lives with the family (``makemore.models``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from makemore import options, validation
from makemore.durations import MAX_TIME_BUDGET, format_duration, parse_duration  # noqa: F401 (re-exported)
from makemore.models import REGISTRY  # torch-free: the families' names and configs
from makemore.options import CLI, JSON, option

if TYPE_CHECKING:
    from makemore.models import ModelConfig

# This module imports no torch (the command line reads its option declarations before it
# imports anything heavy): the model families are imported where a config is built, and the
# two values below mirror batching.BATCHINGS and wordsfile.DEFAULT_MAX_ITEM_LEN (test_config checks).
BATCHINGS = ("length", "random")  # TrainConfig.batching (makemore.data.batching)
DEFAULT_MAX_ITEM_LEN = 256  # DataConfig.max_item_len (makemore.data.wordsfile)
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "step", "constant")
BACKWARDS = ("autograd", "manual")
BACKENDS = ("auto", "gloo", "nccl")  # torch.distributed backends (makemore.train.distributed)
DTYPES = ("float32", "bf16")


RUN_SURFACES = (CLI, JSON)  # the studio's training form will add the page


def run_option(default: Any, help: str, **how: Any) -> Any:
    """A data or training option: offered on the command line and in JSON."""
    return option(default, help, surfaces=RUN_SURFACES, **how)


@dataclass
class DataConfig:
    """Where the items come from and how they are split."""

    input: str = run_option(
        "", "words file, one item per line (default: the built-in names corpus; builtin:NAME for others)", short="-i"
    )
    max_item_len: int = run_option(DEFAULT_MAX_ITEM_LEN, f"longest item accepted, in characters (default "
                                   f"{DEFAULT_MAX_ITEM_LEN})", least=1)  # fmt: skip
    dev_input: str = run_option("", "your own splits: the dev split's file (no 80/10/10 split: train on all of "
                                "--input)", metavar="FILE")  # fmt: skip
    test_input: str = run_option("", "your own splits: the test split's file (with --dev-input; default: no test "
                                 "split)", metavar="FILE")  # fmt: skip
    split_seed: int = run_option(42, "seed of the 80/10/10 split (default 42: the lectures' split)")
    dedupe: bool = run_option(False, "drop repeated items before splitting (with --dev-input: of the training file)")
    labelled: bool = run_option(
        False, "lines are LABEL<TAB>ITEM: train a model conditional on the label (sample/score --label)"
    )
    label_column: str = run_option("", "CSV input: the column of labels (header name or number)", metavar="COLUMN")
    item_column: str = run_option(
        "", "read the input as CSV with a header line; the column of items (header name or number from 1)",
        metavar="COLUMN",
    )  # fmt: skip
    lowercase: bool = run_option(
        False, "fold the items to lower case before training; the run then folds what you type too"
    )

    def __post_init__(self) -> None:
        options.check(self)
        if self.test_input and not self.dev_input:
            validation.fail(self, "test_input", "needs dev_input (the dev split's file)", ("dev_input",))
        if self.dev_input and self.split_seed != 42:  # refused rather than silently ignored
            validation.fail(self, "split_seed", "has no effect with dev_input (files are splits)", ("dev_input",))
        if self.label_column and not self.item_column:
            validation.fail(
                self, "label_column", "needs item_column too (the CSV column holding the items)", ("item_column",)
            )
        if self.labelled and self.item_column and not self.label_column:
            validation.fail(
                self, "labelled", "a CSV input needs label_column (the column holding the labels)", ("label_column",)
            )


TIME_HELP = (
    "train for this long instead of --steps: 90s, 5m, 1h, 1m30s or seconds; the steps that fit "
    "(evaluations included) are measured on a copy of the model and recorded in the run"
)


@dataclass
class TrainConfig:
    """How to train a neural model (ignored by count models)."""

    steps: int = run_option(20000, "optimisation steps", least=1)
    time_budget: float = run_option(0.0, TIME_HELP, flag="time", metavar="DURATION", parse="duration", least=0,
                                    most=MAX_TIME_BUDGET)  # fmt: skip
    batch_size: int = run_option(128, "examples (window models) or items (sequence models, on average) per step; "
                                 "0 = full batch", least=0, note=" (0 = full batch)")  # fmt: skip
    batching: str = run_option("length", 'sequence models: "length" (items of about one length, equal characters) '
                               'or "random"', choices=BATCHINGS, what="batching")  # fmt: skip
    optimizer: str = run_option("adamw", '"adamw" or "sgd"', choices=OPTIMIZERS, what="optimizer")
    lr: float = run_option(0.01, "peak learning rate", least=0)
    schedule: str = run_option("cosine", '"cosine", "step" (x step_factor at step_at of the run) or "constant"',
                               choices=SCHEDULES, what="schedule")  # fmt: skip
    warmup_steps: int = run_option(0, "linear warm-up steps", least=0, note=" (0 = off)")
    min_lr_ratio: float = run_option(0.01, "cosine floor as a fraction of lr", least=0, most=1)
    step_at: float = run_option(0.75, "step schedule: fraction of the run where lr drops", least=0, most=1)
    step_factor: float = run_option(0.1, "step schedule: lr multiplier after the drop", least=0)
    weight_decay: float = run_option(0.0, "AdamW decoupled weight decay on matrices; L2-free for SGD", least=0)
    momentum: float = run_option(0.0, "SGD momentum", least=0, below=1)
    grad_clip: float = run_option(0.0, "max global grad norm (0 = off)", least=0)
    ema: float = run_option(0.0, "weight averaging: decay of a moving average of the weights (0 = off), best when "
                            "better", least=0, below=1)  # fmt: skip
    eval_interval: int = run_option(1000, "steps between dev evaluations (and checkpoints)", least=1)
    log_interval: int = run_option(100, "steps between metrics rows", least=1)
    patience: int = run_option(0, "stop after this many evaluations without dev improvement (0 = off)", least=0,
                               note=" (0 = off)")  # fmt: skip
    seed: int = run_option(1337, "initialisation, batches and dropout", checked=False)
    device: str = run_option("cpu", '"cpu", "cuda", "cuda:N" or "auto"', checked=False)
    threads: int = run_option(0, "CPU intra-op threads (0 = auto: the cores free at the start; the count is "
                              "recorded)", least=0, note=" (0 = auto)")  # fmt: skip
    backward: str = run_option("autograd", '"autograd" or "manual" (models with a hand-written backward)',
                               choices=BACKWARDS)  # fmt: skip
    backend: str = run_option("auto", 'processes started by torchrun: "auto" (nccl on CUDA, gloo on CPU), "gloo" '
                              'or "nccl"', choices=BACKENDS, what="backend")  # fmt: skip
    compile: bool = run_option(False, "CUDA: run the training forward and backward through torch.compile")
    dtype: str = run_option("float32", '"float32" or "bf16" (the training forward under bfloat16 autocast; weights '
                            "stay float32)", choices=DTYPES, what="dtype")  # fmt: skip
    track_update_ratio: int = run_option(0, "every N steps record log10 update:data std ratios (0 = off)", least=0,
                                         note=" (0 = off)")  # fmt: skip

    def __post_init__(self) -> None:
        options.check(self)
        if not (isinstance(self.seed, int) and not isinstance(self.seed, bool) and 0 <= self.seed < 2**64):
            validation.fail(self, "seed", f"must be an integer from 0 to 2**64 - 1, got {self.seed!r}")
        if not (isinstance(self.device, str) and re.fullmatch(r"cpu|auto|cuda(:\d+)?", self.device)):
            validation.fail(self, "device", f"unknown device {self.device!r} (cpu, cuda, cuda:N, auto)")


def default_train_config(model: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """TrainConfig defaults, then the family's own (``train_defaults``), then ``overrides``."""
    from makemore.models import get_family

    return TrainConfig(**{**get_family(model).config.train_defaults, **(overrides or {})})


@dataclass(frozen=True)
class Auto:
    """``--preset auto``: the family, options and training chosen from the data and the budget
    when the run starts (``makemore.auto``), under what the user gave explicitly.

    Args:
        model_options, train_options: the options given (they override the choice).
        epochs: ``--epochs`` given (steps from the chosen batch size), else None.
        candidate: train this candidate of ``auto.CANDIDATES`` instead of the rule's (the study).
        choice: set once resolved (run.json's "auto"): the candidate, the reason, the corpus.
    """

    model_options: dict[str, Any] = field(default_factory=dict)
    train_options: dict[str, Any] = field(default_factory=dict)
    epochs: float | None = None
    candidate: str | None = None
    choice: dict[str, Any] | None = None


@dataclass
class RunConfig:
    """A whole training run: model family and its config, data, and training.

    ``RunConfig()`` is what ``makemore train`` trains (the default preset). Given a ``model``,
    a missing ``model_config`` is the family's defaults and a missing ``train`` the family's
    training defaults.
    """

    model: str | None = run_option(
        None, "model family, trained with the family's own defaults (default: the 'default' preset; see "
        "makemore models)", choices=tuple(REGISTRY), checked=False,
    )  # fmt: skip
    model_config: ModelConfig | None = None  # the family's config dataclass
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig | None = None
    auto: Auto | None = None  # --preset auto: model and train are chosen when the data is read

    def __post_init__(self) -> None:
        from makemore.models import get_family, make_config

        if self.model is None:
            if self.model_config is not None:
                validation.fail(self, "model_config", "needs the model family it belongs to (model=...)")
            preset = PRESETS[DEFAULT_PRESET]
            self.model, self.model_config = preset.model, make_config(preset.model, preset.model_options)
            if self.train is None:
                self.train = default_train_config(preset.model, preset.train_options)
        family = get_family(self.model)
        if self.model_config is None:
            self.model_config = family.config()
        elif not isinstance(self.model_config, family.config):
            validation.fail(self, "model_config", f"expected a {family.config.__name__} for model {self.model!r}")
        if self.train is None:
            self.train = default_train_config(self.model)
        if not isinstance(self.data, DataConfig) or not isinstance(self.train, TrainConfig):
            validation.fail(self, "data" if not isinstance(self.data, DataConfig) else "train", "has the wrong type")


@dataclass(frozen=True)
class Preset:
    """A named run configuration: a family, its options and its training options."""

    model: str
    description: str
    model_options: dict[str, Any] = field(default_factory=dict)
    train_options: dict[str, Any] = field(default_factory=dict)

    def run_config(self) -> RunConfig:
        from makemore.models import make_config

        return RunConfig(
            model=self.model,
            model_config=make_config(self.model, self.model_options),
            train=default_train_config(self.model, self.train_options),
        )


def _lecture(model: str, description: str, step_at: float, **model_options: Any) -> Preset:
    """A lecture's run: SGD 0.1 -> 0.01 at ``step_at`` of 200k steps of 32."""
    sgd = dict(steps=200000, batch_size=32, optimizer="sgd", lr=0.1, schedule="step", step_at=step_at)
    return Preset(model, description, model_options, {**sgd, **_LECTURE_LOGGING})


_LECTURE_LOGGING = dict(weight_decay=0.0, eval_interval=10000, log_interval=1000)

PRESETS: dict[str, Preset] = {
    "default": Preset(
        "lstm",
        "a 2-layer LSTM, about two minutes on 2 CPU cores for ~30k names (what `makemore train` trained before "
        "--preset auto, which picks it for such lists at such budgets)",
        dict(n_embd=64, n_hidden=256, n_layers=2, dropout=0.25),
        dict(steps=6000, batch_size=64, lr=0.004, weight_decay=0.1, warmup_steps=200, eval_interval=500),
    ),
    "best": Preset(
        "lstm",
        "the best model found for 10 minutes on 2 CPU cores: a 2-layer LSTM with dropout 0.3 and DropConnect 0.2 "
        "on the hidden-to-hidden weights (names.txt dev ~1.89)",
        dict(n_embd=64, n_hidden=256, n_layers=2, dropout=0.3, weight_dropout=0.2),
        dict(steps=14000, batch_size=64, lr=0.003, weight_decay=0.1, warmup_steps=200, eval_interval=1000),
    ),
    "lecture2": _lecture(
        "mlp",
        "lecture 2's MLP: block 3, n_embd 10, n_hidden 200, plain randn init, SGD 0.1 -> 0.01, 200k steps of 32",
        0.5,
        block_size=3,
        n_embd=10,
        n_hidden=200,
        init="naive",
    ),
    "lecture3": _lecture(
        "bn-mlp",
        "lecture 3's MLP with the init fixes and BatchNorm, SGD 0.1 -> 0.01 at 75%, 200k steps of 32",
        0.75,
        block_size=3,
        n_embd=10,
        n_hidden=200,
        bn_momentum=0.001,
    ),
    "lecture5": _lecture(
        "wavenet",
        "lecture 5's WaveNet: block 8, n_embd 24, n_hidden 128, SGD 0.1 -> 0.01 at 75%, 200k steps of 32",
        0.75,
        block_size=8,
        n_embd=24,
        n_hidden=128,
        dropout=0.0,
    ),
}
DEFAULT_PRESET = "default"  # what RunConfig() and `makemore train` without --model/--preset train


def preset_config(name: str) -> RunConfig:
    """The RunConfig of a named preset (see ``PRESETS``)."""
    if name not in PRESETS:
        validation.fail(None, "preset", f"unknown preset {name!r} (choose from: {', '.join(PRESETS)})")
    return PRESETS[name].run_config()


@dataclass
class ScoreConfig:
    """How items are scored (``makemore score``, the page's Score tab)."""

    label: str | None = option(
        None, "a model trained with --labelled: score the items as items of this label (default: each under its "
        "most probable label)", surfaces=(CLI, JSON),
    )  # fmt: skip
    detail: bool = option(False, "print the per-character table (context the model read, next character, "
                          "probability, log-probability)", surfaces=(CLI,))  # fmt: skip
    classify: bool = option(False, "a model trained with --labelled: print ITEM<TAB>LABEL P(LABEL|ITEM)... for every "
                            "label, most probable first (P(LABEL) as in training; with --input, one item per line)",
                            surfaces=(CLI,))  # fmt: skip

    def __post_init__(self) -> None:
        options.check(self)
        if self.classify and (self.detail or self.label is not None):
            validation.fail(
                self, "classify", "gives P(label | item) for every label; it goes without detail and label",
                ("detail", "label"),
            )  # fmt: skip


SERVE_THREADS = 1  # one intra-op thread per request (why: cli.commands.cmd_serve)


@dataclass
class ServeConfig:
    """Where ``makemore serve`` listens and how it uses the machine (command line only)."""

    host: str = option("127.0.0.1", "address to listen on (default 127.0.0.1: this machine only; any other prints "
                       "a warning)", surfaces=(CLI,))  # fmt: skip
    port: int = option(8000, "port to listen on (default 8000; 0 = a free one)", least=0, most=65535,
                       surfaces=(CLI,))  # fmt: skip
    threads: int = option(SERVE_THREADS, "CPU threads for PyTorch; 0 means as many as the cores other processes "
                          f"leave free when the server starts (default {SERVE_THREADS})", least=0, metavar="N",
                          surfaces=(CLI,))  # fmt: skip
    quiet: bool = option(False, "no line per request on stderr", short="-q", surfaces=(CLI,))

    def __post_init__(self) -> None:
        options.check(self)


EXPORT_FORMATS = {".onnx": "onnx", ".html": "html", ".htm": "html", ".mjs": "js", ".js": "js", ".arpa": "arpa"}
WEIGHT_TYPES = ("float32", "float16", "int8")


@dataclass
class ExportConfig:
    """What ``makemore export`` writes (the page's "Download this generator" is ``html``)."""

    format: str | None = option(
        None, "onnx (any ONNX runtime), html (one page that generates offline), js (one ES module), arpa "
        "(n-gram models, for KenLM/SRILM) (default: from the output file's suffix: "
        f"{', '.join(EXPORT_FORMATS)})", choices=tuple(dict.fromkeys(EXPORT_FORMATS.values())), what="format",
        surfaces=(CLI, JSON),
    )  # fmt: skip
    weights: str = option("float32", "how the weights are stored: float32 (exact), float16 (half the size) or "
                          "int8 (a quarter; one scale per row); the dev NLL each costs is printed",
                          choices=WEIGHT_TYPES, what="weight type", surfaces=(CLI, JSON))  # fmt: skip

    def __post_init__(self) -> None:
        options.check(self)
        if self.format == "arpa" and self.weights != "float32":
            validation.fail(self, "weights", "an ARPA file holds its log-probabilities as text: float32 only",
                            ("format",))  # fmt: skip

    def for_output(self, path: str) -> ExportConfig:
        """This config with the format read from ``path``'s suffix when none was given.

        Raises:
            ConfigError: no format given and the suffix names none, or the suffix names another.
        """
        suffix = PurePath(path).suffix.lower()
        if self.format is not None:
            if EXPORT_FORMATS.get(suffix, self.format) != self.format:
                validation.fail(self, "format", f"{self.format} does not go in a {suffix} file "
                                f"({suffix} is {EXPORT_FORMATS[suffix]})")  # fmt: skip
            return self
        if suffix not in EXPORT_FORMATS:
            validation.fail(self, "format", f"cannot tell it from the output's suffix {suffix or '(none)'!r}; give "
                            f"one of {', '.join(EXPORT_FORMATS)} or --format")  # fmt: skip
        return ExportConfig(format=EXPORT_FORMATS[suffix], weights=self.weights)


MAX_EVAL_SAMPLES = 1_000_000  # items one eval may generate (as sample -n)


@dataclass
class EvalConfig:
    """What ``makemore eval --samples`` measures: items generated by the run, next to its data
    (``evaluate.samples.sample_metrics``)."""

    samples: int | None = option(
        None, "generate N items (temperature 1, no constraints; those of makemore sample -n N --seed S) and report "
        "their share unique, in train/dev/test and new, the total variation distance 0.5 * sum |p - q| between "
        "their lengths and the training items' and between their characters and the training items', and their "
        "mean NLL per character (as the splits' NLL)", least=1, most=MAX_EVAL_SAMPLES, metavar="N",
        server_most=10_000, page_default=1000,
    )  # fmt: skip
    seed: int = option(0, "seed of the generated items: the same seed gives the same items and metrics (default 0)",
                       least=0, most=2**64 - 1, label="samples seed")  # fmt: skip

    def __post_init__(self) -> None:
        options.check(self)
