"""Conditional (labelled) models: which labels to generate, and with what probability.

A model trained on a labelled corpus reads each item after its label's start token
(``Vocab.label_id``), so it gives P(item | label). The labels' frequencies in the training
split are the prior P(label): the default mix when sampling, and with Bayes' rule
P(label | item) (``scoring.classify``).
"""

from __future__ import annotations

import math

import torch

from makemore.data.corpus import Vocab
from makemore.errors import ConfigError


def parse_label(spec: str) -> tuple[str, float]:
    """``"elf"`` -> ("elf", 1.0); ``"elf=0.7"`` -> ("elf", 0.7).

    A label whose text holds ``=`` is given whole when what follows the last ``=`` is not
    a number (``"a=b"`` -> ("a=b", 1.0)).

    Raises:
        ConfigError: (field ``label``) an empty label, or a weight that is not positive.
    """
    name, sep, weight = spec.rpartition("=")
    if not sep:
        name, value = spec, 1.0
    else:
        try:
            value = float(weight)
        except ValueError:
            name, value = spec, 1.0
    if not name.strip():
        raise ConfigError("label", f"{spec!r}: empty label (give LABEL or LABEL=WEIGHT)", owner="SampleConfig")
    if not (math.isfinite(value) and value > 0):
        raise ConfigError("label", f"{spec!r}: the weight must be a positive number", owner="SampleConfig")
    return name, value


def check_label_specs(specs) -> tuple[str, ...]:
    """``SampleConfig.label`` as a tuple of checked ``LABEL[=WEIGHT]`` strings (a string is one label)."""
    if isinstance(specs, (list, str)):
        specs = (specs,) if isinstance(specs, str) else tuple(specs)
    if not (isinstance(specs, tuple) and all(isinstance(x, str) for x in specs)):
        raise ConfigError("label", f"must be label names (LABEL or LABEL=WEIGHT), got {specs!r}", owner="SampleConfig")
    for spec in specs:
        parse_label(spec)
    return specs


def label_distribution(vocab: Vocab, counts: dict[str, int], specs: tuple[str, ...] = ()) -> torch.Tensor:
    """The probability of each label of ``vocab`` (in ``vocab.label_names`` order).

    Args:
        vocab: a labelled model's vocabulary.
        counts: training items per label (the default: labels as often as in training).
        specs: ``LABEL`` or ``LABEL=WEIGHT`` strings (a label given twice adds its weights).
    Returns:
        (L,) float64 probabilities summing to 1.
    Raises:
        MakemoreError: the model has no labels but ``specs`` asks for some, or an unknown label.
    """
    if not vocab.label_names:
        if specs:
            raise ConfigError("label", "this model was trained without labels (train with --labelled)")
        return torch.zeros(0, dtype=torch.float64)
    weights = torch.zeros(len(vocab.label_names), dtype=torch.float64)
    if specs:
        for spec in specs:
            name, value = parse_label(spec)
            weights[vocab.label_id(name) - vocab.num_chars] += value
    else:
        weights = torch.tensor([float(counts.get(name, 0)) for name in vocab.label_names], dtype=torch.float64)
        if float(weights.sum()) <= 0:
            weights = torch.ones_like(weights)
    return weights / weights.sum()
