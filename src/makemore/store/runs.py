"""A trained run as objects: its model, vocabulary, description and config.

The description (``description.RunDescription``) is the JSON document every checkpoint
carries, parsed and checked once; ``load_run`` rebuilds the model from it, so commands that
read a run need no other flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from makemore.config import RunConfig
from makemore.data.corpus import Vocab
from makemore.data.datasets import Data, load_data
from makemore.errors import MakemoreError
from makemore.models import LanguageModel, build_model
from makemore.store.description import RunDescription
from makemore.store.rundir import RunDir


def _weights_mismatch(model: LanguageModel, state: dict[str, Any]) -> str | None:
    """What differs between the tensors a model (built on the meta device) expects and ``state``."""
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    missing = [n for n in expected if n not in state]
    unexpected = [n for n in state if n not in expected]
    shapes = [
        f"{n} is {tuple(state[n].shape)}, the config needs {shape}"
        for n, shape in expected.items()
        if n in state and tuple(state[n].shape) != shape and model.trains_by_gradient
    ]
    parts = [f"missing {', '.join(missing[:3])}"] if missing else []
    parts += [f"unexpected {', '.join(unexpected[:3])}"] if unexpected else []
    parts += shapes[:3]
    return "; ".join(parts) or None


@dataclass
class Run:
    """A trained model loaded from a run directory."""

    model: LanguageModel
    description: RunDescription
    path: Path  # the checkpoint it was loaded from

    @property
    def vocab(self) -> Vocab:
        return self.description.vocab

    @property
    def config(self) -> RunConfig:
        return self.description.config

    @property
    def meta(self) -> dict[str, Any]:
        """The description as its JSON document (``description`` has it typed)."""
        return self.description.raw

    @property
    def model_limit(self) -> int | None:
        """Most characters the model can generate (None: no limit of its own)."""
        return self.model.position_limit

    @property
    def casefolded(self) -> bool:
        """Whether the run was trained on case-folded items (it then folds what users type)."""
        return self.description.data.casefolded

    def fold(self, text: str) -> str:
        """``text`` as this run reads it: in lower case when its corpus was case-folded."""
        return text.lower() if self.casefolded else text

    @property
    def label_counts(self) -> dict[str, int]:
        """Training items per label (empty for a model trained without labels)."""
        return dict(self.description.data.label_counts)


def load_run(out_dir: str | Path, which: str = "best", device: str = "cpu") -> Run:
    """Load a trained model from a run directory.

    Args:
        out_dir: the run directory given to ``train``.
        which: "best" (lowest dev loss; falls back to "last") or "last".
        device: where to put the model.
    """
    run_dir = RunDir(out_dir)
    path, ckpt = run_dir.load(which)
    try:
        description = RunDescription.parse(ckpt.meta)
    except MakemoreError as exc:
        raise MakemoreError(f"{path}: {exc}") from None
    run_dir.check_identity(path, ckpt.meta)
    config, vocab = description.config, description.vocab
    with torch.device("meta"):  # shapes only: a header cannot make us allocate a model it has no weights for
        skeleton = build_model(config.model, config.model_config, vocab.size)
    problem = _weights_mismatch(skeleton, ckpt.model_state)
    if problem:
        raise MakemoreError(f"{path}: weights do not match the model described in it ({problem})")
    model = build_model(config.model, config.model_config, vocab.size)
    try:
        model.load_state_dict(ckpt.model_state)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise MakemoreError(f"{path}: weights do not match the model described in it ({detail})") from None
    model.to(device).eval()
    return Run(model=model, description=description, path=path)


def training_data(run: Run) -> Data:
    """The data a run was trained on, read again from the file its description names (and,
    with your own splits, the dev and test files).

    A file is used only when its checksum is the one recorded: a description (which anyone
    may edit) cannot make makemore read some other file.

    Raises:
        MakemoreError: the file is missing, unreadable or not the one the run was trained on.
    """
    data = load_data(run.config.data, run.vocab)
    changed = run.description.data.changed(data)  # the training file, or a dev or test file of your own splits
    if changed:
        raise MakemoreError(f"{changed}: not the file this run was trained on (it changed since: its checksum differs)")
    return data
