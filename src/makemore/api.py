"""The Python API: everything the CLI does, as functions over dataclass configs.

This module only gathers the public names; each lives with the module that owns it (see
DEVELOPERS.md). A *run directory* holds ``best.safetensors`` and ``last.safetensors``
(self-describing checkpoints), ``metrics.jsonl`` and ``run.json``.

Example:
    >>> from makemore import api
    >>> config = api.RunConfig(model="ngram", model_config=api.make_config("ngram", {"order": 3}))
    >>> api.train(config, "runs/trigram", progress=False)
    >>> run = api.load_run("runs/trigram")
    >>> api.sample(run, api.SampleConfig(num=5, seed=1))
"""

from makemore.config import (
    DEFAULT_PRESET,
    PRESETS,
    Auto,
    DataConfig,
    EvalConfig,
    ExportConfig,
    Preset,
    RunConfig,
    ScoreConfig,
    ServeConfig,
    TrainConfig,
    default_train_config,
    preset_config,
)
from makemore.data.corpus import EncodedCorpus, Vocab, parse_words, read_words
from makemore.data.datasets import SPLITS, Data, builtin_datasets, builtin_path, load_data
from makemore.errors import ConfigError, MakemoreError
from makemore.evaluate.diagnostics import (
    activation_stats,
    bigram_counts,
    char_embedding,
    training_curve,
    training_windows,
    update_ratios,
)
from makemore.evaluate.heldout import FileEval, evaluate_file, evaluate_items
from makemore.evaluate.lectures import bigram_nll, bigram_probs, count_bigrams, layer_shapes, split_nll
from makemore.evaluate.samples import SampleMetrics, sample_metrics
from makemore.evaluate.scoring import CharScore, Classification, WordScore, evaluate, score
from makemore.evaluate.scoring import classify_run as classify
from makemore.export import Exported, export, export_bytes
from makemore.generate.constraints import BudgetExhausted, SampleStats
from makemore.generate.ranking import ItemScore, edit_distances
from makemore.generate.sampling import SampleConfig, Sampler, sample, training_items
from makemore.ladder import LadderConfig
from makemore.ladder.run import run_ladder as ladder
from makemore.models import make_config, model_names, with_options
from makemore.models.manual_backprop import format_gradcheck, gradcheck
from makemore.store.rundir import RunDir
from makemore.store.runs import Run, load_run, training_data
from makemore.train.budget import parse_duration
from makemore.train.distributed import is_main_process
from makemore.train.learner import new_model, new_trainer
from makemore.train.plan import examples_per_epoch
from makemore.train.sweep import lr_find
from makemore.train.trainer import TrainingInterrupted
from makemore.train.training import resume, train

__all__ = [
    "Auto",
    "DEFAULT_PRESET",
    "PRESETS",
    "BudgetExhausted",
    "SPLITS",
    "CharScore",
    "Classification",
    "ConfigError",
    "Data",
    "DataConfig",
    "EvalConfig",
    "EncodedCorpus",
    "ExportConfig",
    "Exported",
    "ItemScore",
    "LadderConfig",
    "FileEval",
    "MakemoreError",
    "Preset",
    "Run",
    "RunConfig",
    "RunDir",
    "SampleConfig",
    "SampleMetrics",
    "SampleStats",
    "ScoreConfig",
    "ServeConfig",
    "TrainConfig",
    "TrainingInterrupted",
    "Vocab",
    "WordScore",
    "activation_stats",
    "bigram_counts",
    "bigram_nll",
    "bigram_probs",
    "count_bigrams",
    "layer_shapes",
    "new_model",
    "new_trainer",
    "split_nll",
    "builtin_datasets",
    "builtin_path",
    "char_embedding",
    "classify",
    "default_train_config",
    "edit_distances",
    "evaluate",
    "evaluate_file",
    "evaluate_items",
    "examples_per_epoch",
    "export",
    "export_bytes",
    "format_gradcheck",
    "gradcheck",
    "is_main_process",
    "load_data",
    "ladder",
    "load_run",
    "lr_find",
    "make_config",
    "model_names",
    "parse_duration",
    "parse_words",
    "read_words",
    "preset_config",
    "sample",
    "sample_metrics",
    "Sampler",
    "score",
    "train",
    "resume",
    "training_curve",
    "training_data",
    "training_items",
    "training_windows",
    "update_ratios",
    "with_options",
]
