"""Conditional (labelled) models: which labels to generate, and with what probability.

A model trained on a labelled corpus reads each item after its label's start token
(``Vocab.label_id``), so it gives P(item | label). The labels' frequencies in the training
split are the prior P(label): the default mix when sampling, and with Bayes' rule
P(label | item) (``scoring.classify``).
"""

from __future__ import annotations

import torch

from makemore.data.corpus import Vocab
from makemore.errors import ConfigError
from makemore.generate.config import check_label_specs, parse_label  # noqa: F401 - used here and by callers


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
