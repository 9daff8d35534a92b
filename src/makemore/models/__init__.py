"""Model registry: family name -> (config dataclass, model class).

Adding a family is one file under ``models/`` (a model that subclasses one of the kinds in
``models/base.py``), its config dataclass in ``models/configs.py``, and one line in
``REGISTRY``. Every model is built as ``model_cls(config, vocab_size)``.

Importing this package imports no torch: the configs are plain dataclasses, and a family's
model class is imported when it is first asked for (``Family.model``), so the command line
reads every family's options at once.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any, NamedTuple

from makemore.errors import ConfigError, MakemoreError
from makemore.models import configs
from makemore.models.configs import ModelConfig

if TYPE_CHECKING:
    from makemore.models.base import LanguageModel


class Family(NamedTuple):
    """A family's config class and where its model class lives (``module.Class`` under models/)."""

    config: type[ModelConfig]
    where: str

    @property
    def model(self) -> type[LanguageModel]:
        module, name = self.where.rsplit(".", 1)
        return getattr(importlib.import_module(f"makemore.models.{module}"), name)


REGISTRY: dict[str, Family] = {
    "ngram": Family(configs.NGramConfig, "ngram.NGramModel"),
    "bigram": Family(configs.BigramConfig, "bigram.BigramModel"),
    "mlp": Family(configs.MLPConfig, "mlp.MLP"),
    "bn-mlp": Family(configs.BNMLPConfig, "mlp.BatchNormMLP"),
    "wavenet": Family(configs.WaveNetConfig, "wavenet.WaveNet"),
    "rnn": Family(configs.RNNConfig, "rnn.RNNModel"),
    "gru": Family(configs.GRUConfig, "rnn.RNNModel"),
    "lstm": Family(configs.LSTMConfig, "rnn.RNNModel"),
    "transformer": Family(configs.TransformerConfig, "transformer.Transformer"),
}


def __getattr__(name: str) -> Any:
    """``LanguageModel`` and ``IGNORE_INDEX`` (from ``models.base``, which imports torch) on first use."""
    if name in ("LanguageModel", "IGNORE_INDEX"):
        from makemore.models import base

        return getattr(base, name)
    raise AttributeError(f"module 'makemore.models' has no attribute {name!r}")


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
