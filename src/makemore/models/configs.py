"""The model families' configs: one ``@dataclass`` per family, each option declared once.

They live apart from the models (``models/<family>.py``, which import torch) so that the
command line builds its flags from them at once (``makemore --help`` imports no torch); each
family's file imports its config from here. ``train_defaults`` are the family's own training
settings (``TrainConfig`` fields), applied before the user's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from makemore import options, validation
from makemore.options import CLI, JSON, option

MODEL_SURFACES = (CLI, JSON)  # the studio's training form will add the page
MAX_ORDER = 8  # n-gram orders above this are refused (tables of vocab ** 7 contexts)
SMOOTHINGS = ("add-k", "kneser-ney")
CELLS = ("rnn", "gru", "lstm")
INITS = ("kaiming", "naive")


def model_option(default: Any, help: str, **how: Any) -> Any:
    """A model option: offered on the command line and in JSON."""
    return option(default, help, surfaces=MODEL_SURFACES, **how)


def _context(default: int) -> Any:
    return model_option(default, "characters of context", least=1)


def _auto_block(what: str) -> Any:
    return model_option(0, f"{what}; 0: set by the API to the longest training item + 1", least=0,
                        note=" (0 = longest item + 1)")  # fmt: skip


def _rate(default: float, help: str) -> Any:
    return model_option(default, help, least=0, below=1)


@dataclass
class ModelConfig:
    """Base of every family's config dataclass.

    Building a config checks it (the declared limits, then ``validate``), so a bad value is
    refused where it enters, naming its field.
    """

    train_defaults: ClassVar[dict[str, Any]] = {}

    def __post_init__(self) -> None:
        options.check(self)
        self.validate()

    def validate(self) -> None:
        """Raise ``ConfigError`` naming the field of a value the declared limits cannot state."""


@dataclass
class NGramConfig(ModelConfig):
    """Order and smoothing of a count-based n-gram model."""

    order: int = model_option(2, f"n: the context is the n - 1 previous tokens (1..{MAX_ORDER})", least=1,
                              most=MAX_ORDER)  # fmt: skip
    smoothing: str = model_option(
        "add-k", '"add-k" or "kneser-ney" (interpolated Kneser-Ney)', choices=SMOOTHINGS, what="smoothing"
    )
    k: float = model_option(1.0, "add-k pseudo count; 0 = unsmoothed maximum likelihood", least=0)
    discount: float = model_option(0.75, "absolute discount D of Kneser-Ney, in [0, 1]", least=0, most=1)


@dataclass
class BigramConfig(ModelConfig):
    """The lectures' neural bigram: one weight matrix, full-batch gradient descent."""

    reg: float = model_option(0.001, 'L2 penalty reg * mean(W**2), the seeds\' "smoothing" of a neural bigram', least=0)
    # Full-batch gradient descent, as in the seeds.
    train_defaults = dict(
        batch_size=0, optimizer="sgd", lr=50.0, schedule="constant", steps=1000, eval_interval=250, log_interval=50
    )


@dataclass
class MLPConfig(ModelConfig):
    """Defaults: dev NLL about 2.00 on names.txt in about 15 s on 2 CPU cores."""

    block_size: int = _context(5)
    n_embd: int = model_option(24, "embedding size per character", least=1)
    n_hidden: int = model_option(320, "units per hidden layer", least=1)
    n_layers: int = model_option(1, "hidden tanh layers", least=1)
    dropout: float = _rate(0.0, "dropout after each hidden layer")
    init: str = model_option(
        "kaiming", '"kaiming" (lecture 3\'s fixes) or "naive" (lecture 2\'s plain randn)', choices=INITS, what="init"
    )
    # longer runs overfit this small corpus; stronger weight decay underfits
    train_defaults = dict(steps=15000, batch_size=128, optimizer="adamw", lr=0.01, schedule="cosine", weight_decay=0.01)


@dataclass
class BNMLPConfig(ModelConfig):
    """Defaults: dev NLL about 2.00 on names.txt in about 25 s on 2 CPU cores."""

    block_size: int = _context(5)
    n_embd: int = model_option(24, "embedding size per character", least=1)
    n_hidden: int = model_option(320, "units per hidden layer", least=1)
    n_layers: int = model_option(1, "hidden Linear-BatchNorm-tanh layers", least=1)
    dropout: float = _rate(0.0, "dropout after each hidden layer")
    bn_momentum: float = model_option(0.01, "BatchNorm running statistics update rate (lecture: 0.001)", least=0,
                                      most=1)  # fmt: skip
    eps: float = model_option(1e-5, "BatchNorm epsilon added to the variance", above=0)
    # large batches: batch statistics of 128 examples are too noisy; AdamW wants a lower lr
    # with BatchNorm (the layer before it is scale-invariant)
    train_defaults = dict(steps=6000, batch_size=512, optimizer="adamw", lr=0.003, schedule="cosine", weight_decay=0.01)


@dataclass
class WaveNetConfig(ModelConfig):
    """Defaults: dev NLL about 1.96 on names.txt in about a minute on 2 CPU cores.

    Lecture 5's configuration (n_embd 24, n_hidden 128, SGD, 200k steps; dev 1.993) is the
    ``lecture5`` preset.
    """

    block_size: int = model_option(8, "context length; must be a power of two", checked=False)
    n_embd: int = model_option(32, "character embedding size", least=1)
    n_hidden: int = model_option(192, "width of every hidden level", least=1)
    dropout: float = _rate(0.1, "dropout after every Tanh (0 = none)")
    # BatchNorm wants large batches and, with AdamW, a lower lr (see BNMLPConfig)
    train_defaults = dict(steps=8000, batch_size=512, optimizer="adamw", lr=0.003, schedule="cosine", weight_decay=0.01)

    def validate(self) -> None:
        bs = self.block_size
        if isinstance(bs, bool) or not isinstance(bs, int) or bs < 1 or bs & (bs - 1):
            validation.fail(self, "block_size", f"must be a power of two (1, 2, 4, 8, ...), got {bs!r}")


def _cell(default: str) -> Any:
    return model_option(default, '"rnn" (tanh), "gru" or "lstm"', choices=CELLS, what="rnn cell")


@dataclass
class RNNConfig(ModelConfig):
    """Defaults (as a GRU): dev NLL about 1.93 on names.txt in about two minutes on 2 CPU cores."""

    n_embd: int = model_option(64, "character embedding size", least=1)
    n_hidden: int = model_option(256, "hidden state size", least=1)
    n_layers: int = model_option(1, "stacked recurrent layers", least=1)
    dropout: float = _rate(0.2, "on the embeddings, between layers and before the output layer")
    weight_dropout: float = _rate(0.0, "DropConnect on the hidden-to-hidden weights (AWD-LSTM), training only")
    embed_dropout: float = _rate(0.0, "drop whole characters: each token's embedding vector, per batch (AWD-LSTM)")
    locked_dropout: bool = model_option(False, "one dropout mask per item, reused at every position (variational)")
    block_size: int = _auto_block("recorded only")
    cell: str = _cell("rnn")
    train_defaults = dict(
        steps=12000, batch_size=64, optimizer="adamw", lr=0.003, schedule="cosine", warmup_steps=200, weight_decay=0.1
    )


@dataclass
class GRUConfig(RNNConfig):
    cell: str = _cell("gru")


@dataclass
class LSTMConfig(RNNConfig):
    cell: str = _cell("lstm")


@dataclass
class TransformerConfig(ModelConfig):
    """Defaults: dev NLL about 1.955 on names.txt in three to four minutes on 2 CPU cores."""

    block_size: int = _auto_block("longest sequence")
    n_layer: int = model_option(4, "transformer blocks", least=1)
    n_head: int = model_option(4, "attention heads per block (n_embd must be a multiple)", least=1)
    n_embd: int = model_option(64, "width of the residual stream", least=1)
    dropout: float = _rate(0.1, "on embeddings, attention weights and residual branches")
    bias: bool = model_option(True, "biases in the Linear layers and LayerNorms")
    tie_weights: bool = model_option(False, "share the output matrix with the token embedding")
    train_defaults = dict(
        steps=15000, batch_size=64, optimizer="adamw", lr=0.003, schedule="cosine", warmup_steps=500, weight_decay=0.1
    )

    def validate(self) -> None:
        if self.n_embd % self.n_head:
            validation.fail(self, "n_embd", f"{self.n_embd} must be divisible by n_head ({self.n_head})", ("n_head",))
