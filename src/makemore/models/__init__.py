"""Model registry: family name -> (config dataclass, model class).

Adding a family is one file under ``models/`` (a ``ModelConfig`` subclass and a model that
subclasses one of the kinds in ``models/base.py``) plus one line in ``REGISTRY``. Every model
is built as ``model_cls(config, vocab_size)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

from makemore.errors import ConfigError, MakemoreError
from makemore.models import bigram, mlp, ngram, rnn, transformer, wavenet
from makemore.models.base import IGNORE_INDEX, LanguageModel, ModelConfig


class Family(NamedTuple):
    config: type[ModelConfig]
    model: type[LanguageModel]


REGISTRY: dict[str, Family] = {
    "ngram": Family(ngram.NGramConfig, ngram.NGramModel),
    "bigram": Family(bigram.BigramConfig, bigram.BigramModel),
    "mlp": Family(mlp.MLPConfig, mlp.MLP),
    "bn-mlp": Family(mlp.BNMLPConfig, mlp.BatchNormMLP),
    "wavenet": Family(wavenet.WaveNetConfig, wavenet.WaveNet),
    "rnn": Family(rnn.RNNConfig, rnn.RNNModel),
    "gru": Family(rnn.GRUConfig, rnn.RNNModel),
    "lstm": Family(rnn.LSTMConfig, rnn.RNNModel),
    "transformer": Family(transformer.TransformerConfig, transformer.Transformer),
}


def model_names() -> list[str]:
    return list(REGISTRY)


def get_family(name: str) -> Family:
    """``(config_cls, model_cls)`` of a registered family."""
    if name not in REGISTRY:
        raise ConfigError("model", f"unknown model {name!r} (choose from: {', '.join(REGISTRY)})")
    return REGISTRY[name]


def make_config(name: str, overrides: dict[str, Any] | None = None) -> ModelConfig:
    """The family's config with the given field overrides (validated; unknown fields are an error)."""
    config_cls = get_family(name).config
    _check_known(name, config_cls, overrides or {})
    return config_cls(**(overrides or {}))


def with_options(name: str, config: ModelConfig, overrides: dict[str, Any]) -> ModelConfig:
    """A copy of ``config`` (of family ``name``) with the given fields replaced, validated."""
    _check_known(name, type(config), overrides)
    return dataclasses.replace(config, **overrides)


def _check_known(name: str, config_cls: type, overrides: dict[str, Any]) -> None:
    known = {f.name for f in dataclasses.fields(config_cls) if f.init}
    for key in overrides:
        if key not in known:
            raise ConfigError(key, f"model {name!r} has no such option (see: makemore models)")


def build_model(name: str, config: ModelConfig, vocab_size: int) -> LanguageModel:
    """Build a model of family ``name`` from its config."""
    family = get_family(name)
    if not isinstance(config, family.config):
        raise ConfigError("model_config", f"expected a {family.config.__name__} for model {name!r}, got {config!r}")
    try:
        return family.model(config, vocab_size)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise MakemoreError(f"model {name!r}: invalid options ({str(exc).splitlines()[0]})") from None


__all__ = [
    "IGNORE_INDEX",
    "REGISTRY",
    "Family",
    "LanguageModel",
    "ModelConfig",
    "build_model",
    "get_family",
    "make_config",
    "model_names",
]
