"""A trained run as objects: its model, vocabulary, description and config.

The description (``run_meta``) is the JSON document every checkpoint carries: model kind and
config, vocabulary, data (file, checksum, split sizes), training config, step and metrics.
``load_run`` rebuilds the model from it, so commands that read a run need no other flags.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from makemore import __version__
from makemore.config import DataConfig, RunConfig, TrainConfig
from makemore.data import Vocab
from makemore.datasets import Data
from makemore.errors import MakemoreError
from makemore.models import LanguageModel, build_model, get_family
from makemore.rundir import RunDir


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def run_meta(config: RunConfig, data: Data, model: LanguageModel, extra: dict[str, Any]) -> dict[str, Any]:
    """The description of a run written into its checkpoints (plus ``extra``: state, metrics)."""
    return {
        "makemore_version": __version__,
        "model": {"kind": config.model, "config": asdict(config.model_config), "parameters": count_parameters(model)},
        "vocab": data.vocab.to_json(),
        "data": {
            **asdict(config.data),
            "input": data.source,
            "sha256": data.sha256,
            "items": len(data.words),
            "longest_item": data.longest_item,
            "split_sizes": [len(data.split.train), len(data.split.dev), len(data.split.test)],
        },
        "train": asdict(config.train),
        **extra,
    }


def config_from_meta(meta: dict[str, Any]) -> RunConfig:
    """The RunConfig a checkpoint's description records (validated like any config)."""
    if not all(isinstance(meta.get(key), dict) for key in ("model", "data", "train", "vocab")):
        raise MakemoreError("checkpoint metadata is incomplete (not written by makemore train?)")
    kind = meta["model"].get("kind")
    config_cls = get_family(kind).config
    try:
        model_config = config_cls(**meta["model"]["config"])
        data_fields = {f.name for f in dataclasses.fields(DataConfig)}
        data_config = DataConfig(**{k: v for k, v in meta["data"].items() if k in data_fields})
        train_config = TrainConfig(**meta["train"])
    except (TypeError, KeyError) as exc:
        raise MakemoreError(f"checkpoint was written by an incompatible makemore version ({exc})") from None
    return RunConfig(model=kind, model_config=model_config, data=data_config, train=train_config)


@dataclass
class Run:
    """A trained model loaded from a run directory."""

    model: LanguageModel
    vocab: Vocab
    meta: dict[str, Any]
    config: RunConfig
    path: Path  # the checkpoint it was loaded from

    @property
    def model_limit(self) -> int | None:
        """Most characters the model can generate (None: no limit of its own)."""
        return self.model.position_limit


def load_run(out_dir: str | Path, which: str = "best", device: str = "cpu") -> Run:
    """Load a trained model from a run directory.

    Args:
        out_dir: the run directory given to ``train``.
        which: "best" (lowest dev loss; falls back to "last") or "last".
        device: where to put the model.
    """
    path, ckpt = RunDir(out_dir).load(which)
    config = config_from_meta(ckpt.meta)
    vocab = Vocab.from_json(ckpt.meta["vocab"])
    model = build_model(config.model, config.model_config, vocab.size)
    try:
        model.load_state_dict(ckpt.model_state)
    except RuntimeError as exc:
        raise MakemoreError(
            f"{path}: weights do not match the model described in it ({str(exc).splitlines()[0]})"
        ) from None
    model.to(device).eval()
    return Run(model=model, vocab=vocab, meta=ckpt.meta, config=config, path=path)
