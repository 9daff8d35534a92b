"""Model registry: name -> (config dataclass, model class).

Adding a family is one file under ``models/`` plus one line in ``REGISTRY``.
Every model is built as ``model_cls(config, vocab_size)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from makemore.errors import MakemoreError
from makemore.models.base import IGNORE_INDEX, LanguageModel

REGISTRY: dict[str, tuple[type, type]] = {}


def _register_builtin() -> None:
    from makemore.models import bigram, mlp, ngram

    REGISTRY["ngram"] = (ngram.NGramConfig, ngram.NGramModel)
    REGISTRY["bigram"] = (bigram.BigramConfig, bigram.BigramModel)
    REGISTRY["mlp"] = (mlp.MLPConfig, mlp.MLP)
    REGISTRY["bn-mlp"] = (mlp.BNMLPConfig, mlp.BatchNormMLP)
    try:  # sequence models land in a later issue; keep the registry usable without them
        from makemore.models import wavenet

        REGISTRY["wavenet"] = (wavenet.WaveNetConfig, wavenet.WaveNet)
    except ImportError:
        pass
    try:
        from makemore.models import rnn

        REGISTRY["rnn"] = (rnn.RNNConfig, rnn.RNNModel)
        REGISTRY["gru"] = (rnn.GRUConfig, rnn.RNNModel)
        REGISTRY["lstm"] = (rnn.LSTMConfig, rnn.RNNModel)
    except ImportError:
        pass
    try:
        from makemore.models import transformer

        REGISTRY["transformer"] = (transformer.TransformerConfig, transformer.Transformer)
    except ImportError:
        pass


def model_names() -> list[str]:
    if not REGISTRY:
        _register_builtin()
    return list(REGISTRY)


def get_family(name: str) -> tuple[type, type]:
    """Return ``(config_cls, model_cls)`` for a registered family name."""
    if not REGISTRY:
        _register_builtin()
    if name not in REGISTRY:
        raise MakemoreError(f"unknown model '{name}' (choose from: {', '.join(REGISTRY)})")
    return REGISTRY[name]


def make_config(name: str, overrides: dict[str, Any] | None = None):
    """Build the family's config with the given field overrides (unknown fields are an error)."""
    config_cls, _ = get_family(name)
    fields = {f.name for f in dataclasses.fields(config_cls)}
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise MakemoreError(f"model '{name}' has no option(s) {', '.join(unknown)}")
    return config_cls(**overrides)


def validate_config(name: str, config) -> None:
    """Range checks shared by every family: sizes at least 1, dropout in [0, 1)."""
    _, model_cls = get_family(name)
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        flag = "--" + f.name.replace("_", "-")
        if f.name == "block_size":
            least = 0 if model_cls.input_kind == "sequence" else (0 if name == "ngram" else 1)
            if value < least:
                raise MakemoreError(f"{flag} must be at least {least}" + (" (0 = longest item + 1)" if least == 0 else ""))
        elif f.name.startswith("n_") and isinstance(value, int) and value < 1:
            raise MakemoreError(f"{flag} must be at least 1")
        elif f.name == "dropout" and not 0 <= value < 1:
            raise MakemoreError(f"{flag} must be in [0, 1)")


def build_model(name: str, config, vocab_size: int) -> LanguageModel:
    """Build a model, turning bad option values into a MakemoreError."""
    _, model_cls = get_family(name)
    validate_config(name, config)
    try:
        return model_cls(config, vocab_size)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise MakemoreError(f"model '{name}': invalid options ({str(exc).splitlines()[0]})") from None


__all__ = ["IGNORE_INDEX", "LanguageModel", "REGISTRY", "build_model", "get_family", "make_config", "model_names"]
