"""A run's description: the JSON document every checkpoint (and run.json) carries, as typed values.

``run_meta`` writes it: model kind and config, vocabulary, data (file, checksum, split sizes,
labels; with your own splits each split's file and checksum), training config, the trainer's
state and metrics, and what a run adds (its time budget, its processes).
``RunDescription.parse`` is its schema: it checks every field once, when a checkpoint is read,
naming the first one that is missing or of the wrong kind, and gives the typed values that the
rest of makemore reads (no ``meta["..."]`` elsewhere).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from makemore import __version__
from makemore.config import DataConfig, RunConfig, TrainConfig
from makemore.data.corpus import Vocab
from makemore.data.datasets import Data, InputFile
from makemore.data.splits import SPLITS
from makemore.errors import ConfigError, MakemoreError
from makemore.models import LanguageModel, get_family


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def new_run_id(config: RunConfig, data: Data) -> str:
    """A new run's identity, recorded in each of its checkpoints and its run.json so that a
    checkpoint copied in from another run is refused (``RunDir.check_identity``).

    A digest of what defines the run (its config, the data's checksum and vocabulary), not a
    random number: training is deterministic, so two runs of the same recipe are the same run,
    and their files stay bit-identical.
    """
    recipe = {"config": asdict(config), "sha256": data.sha256, "vocab": data.vocab.to_json()}
    if data.files:
        recipe["files"] = {split: f.sha256 for split, f in data.files.items()}
    else:  # a lecture-split run keeps the identity it had before your own splits existed
        for key in ("dev_input", "test_input"):
            recipe["config"]["data"].pop(key)
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:32]


def run_meta(
    config: RunConfig, data: Data, model: LanguageModel, extra: dict[str, Any], run_id: str | None
) -> dict[str, Any]:
    """The description of a run written into its checkpoints (plus ``extra``: state, metrics).

    Args:
        run_id: the run's identity (``new_run_id``; None only for a run from before identities).
    """
    return {
        "makemore_version": __version__,
        **({"run_id": run_id} if run_id else {}),
        "model": {"kind": config.model, "config": asdict(config.model_config), "parameters": count_parameters(model)},
        "vocab": data.vocab.to_json(),
        "data": {
            **asdict(config.data),
            "input": data.source,
            "sha256": data.sha256,
            "items": data.num_items,
            "longest_item": data.longest_item,
            "split_sizes": list(data.split_sizes),
            "label_counts": data.label_counts("train"),  # training items per label (the prior of a label)
            "casefolded": is_casefolded(data.vocab.chars),  # what users type is folded too
            **_split_files(data),
        },
        "train": asdict(config.train),
        **extra,
    }


def _split_files(data: Data) -> dict[str, Any]:
    """Your own splits: each split's file (resolved, as the input is) and checksum; else nothing."""
    if not data.files:
        return {}
    files = {split: {"input": f.source, "sha256": f.sha256, "items": f.items} for split, f in data.files.items()}
    test = data.files.get("test")
    return {"dev_input": data.files["dev"].source, "test_input": test.source if test else "", "files": files}


def is_casefolded(chars: tuple[str, ...] | str) -> bool:
    """Whether a vocabulary is a case-folded corpus's: it has letters that have an upper case,
    and none in upper case (the built-in corpora, a file trained with ``lowercase``)."""
    return any(c != c.upper() for c in chars) and all(c == c.lower() for c in chars)


_HEX = re.compile(r"[0-9a-f]{64}")
_RUN_ID = re.compile(r"[0-9a-f]{32}")
_VERSION = re.compile(r"\d+\.\d+\.\d+\S*")


def _require(ok: bool, where: str, problem: str) -> None:
    if not ok:
        raise MakemoreError(f"{where}: {problem}")


def _is_int(value: Any, least: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def check_header(meta: dict[str, Any]) -> None:
    """Check the shape of a checkpoint's description before anything is built from it.

    Raises:
        MakemoreError: naming the first field that is missing or of the wrong kind.
    """
    _require(
        isinstance(meta.get("makemore_version"), str) and bool(_VERSION.fullmatch(meta["makemore_version"])),
        "makemore_version",
        f"expected a version like '0.2.0', got {meta.get('makemore_version')!r}",
    )
    run_id = meta.get("run_id")
    _require(
        run_id is None or (isinstance(run_id, str) and bool(_RUN_ID.fullmatch(run_id))), "run_id", "not 32 hex digits"
    )
    for key in ("model", "vocab", "data", "train", "state", "metrics"):
        _require(isinstance(meta.get(key), dict), key, "missing or not a JSON object")
    model, vocab, data, state = meta["model"], meta["vocab"], meta["data"], meta["state"]
    _require(isinstance(model.get("kind"), str), "model.kind", "missing or not a string")
    _require(isinstance(model.get("config"), dict), "model.config", "missing or not a JSON object")
    _require(isinstance(vocab.get("chars"), str), "vocab.chars", "missing or not a string")
    chars = vocab["chars"]
    _require(list(chars) == sorted(set(chars)), "vocab.chars", "not sorted and unique")
    _require(vocab.get("boundary_id") == 0, "vocab.boundary_id", f"expected 0, got {vocab.get('boundary_id')!r}")
    labels = vocab.get("labels", [])
    _require(
        isinstance(labels, list) and all(isinstance(x, str) and x for x in labels) and labels == sorted(set(labels)),
        "vocab.labels",
        "not a sorted list of unique non-empty strings",
    )
    counts = data.get("label_counts", dict.fromkeys(labels, 0))
    _require(
        isinstance(counts, dict) and list(counts) == labels and all(map(_is_int, counts.values())),
        "data.label_counts",
        "expected a count (integer >= 0) for each label of vocab.labels",
    )
    _require(isinstance(data.get("input"), str), "data.input", "missing or not a string")
    _require(isinstance(data.get("casefolded", False), bool), "data.casefolded", "not true or false")
    _require(
        isinstance(data.get("sha256"), str) and bool(_HEX.fullmatch(data["sha256"])),
        "data.sha256",
        "missing or not a SHA-256 in hex",
    )
    for key in ("items", "longest_item"):
        _require(_is_int(data.get(key), 1), f"data.{key}", f"expected a positive integer, got {data.get(key)!r}")
    sizes = data.get("split_sizes")
    _require(
        isinstance(sizes, list) and len(sizes) == 3 and all(map(_is_int, sizes)),
        "data.split_sizes",
        "expected three integers",
    )
    _check_files(data)
    _require(_is_int(state.get("step")), "state.step", f"expected an integer >= 0, got {state.get('step')!r}")
    _require(_is_number(state.get("best_dev")), "state.best_dev", "not a number")
    _require(_is_int(state.get("evals_since_best", 0)), "state.evals_since_best", "not an integer >= 0")
    window = state.get("window_losses", [])
    _require(isinstance(window, list) and all(map(_is_number, window)), "state.window_losses", "not numbers")
    metrics = state.get("metrics", {})
    _require(isinstance(metrics, dict) and all(map(_is_number, metrics.values())), "state.metrics", "not numbers")
    for key, value in meta["metrics"].items():
        _require(_is_number(value), f"metrics.{key}", f"expected a number, got {value!r}")


def _check_files(data: dict[str, Any]) -> None:
    """``data.files`` (your own splits): absent, or the train and dev (and test) files."""
    files = data.get("files", {})
    names = set(files) if isinstance(files, dict) else set()
    _require(
        isinstance(files, dict) and names <= set(SPLITS) and (not files or {"train", "dev"} <= names),
        "data.files",
        "expected a JSON object of the train, dev (and test) files",
    )
    for split, f in files.items():
        _require(
            isinstance(f, dict)
            and isinstance(f.get("input"), str)
            and isinstance(f.get("sha256"), str)
            and bool(_HEX.fullmatch(f["sha256"]))
            and _is_int(f.get("items"), 1),
            f"data.files.{split}",
            "expected input, sha256 (hex) and items (a positive integer)",
        )


def config_from_meta(meta: dict[str, Any]) -> RunConfig:
    """The RunConfig a checkpoint's description records, checked like any config.

    Raises:
        MakemoreError: a field of the description is missing, of the wrong kind or out of range.
    """
    check_header(meta)
    kind = meta["model"]["kind"]
    try:
        config_cls = get_family(kind).config
        model_config = config_cls(**meta["model"]["config"])
        data_fields = {f.name for f in dataclasses.fields(DataConfig)}
        data_config = DataConfig(**{k: v for k, v in meta["data"].items() if k in data_fields})
        # runs from before length batching was the default were trained with random batches
        train_config = TrainConfig(**{"batching": "random", **meta["train"]})
    except ConfigError as exc:
        raise MakemoreError(f"checkpoint header: {exc}") from None
    except TypeError as exc:
        raise MakemoreError(f"checkpoint header: not written by this makemore ({exc})") from None
    return RunConfig(model=kind, model_config=model_config, data=data_config, train=train_config)


@dataclass(frozen=True)
class ModelInfo:
    """The model a run trained: its family, config (as recorded) and parameter count."""

    kind: str
    config: dict[str, Any]
    parameters: int


@dataclass(frozen=True)
class DataInfo:
    """The data a run was trained on."""

    input: str  # the file (or builtin:NAME)
    sha256: str  # of the file's bytes
    items: int
    longest_item: int  # characters
    split_sizes: tuple[int, int, int]  # train, dev, test
    label_counts: dict[str, int]  # training items per label (empty: no labels)
    casefolded: bool  # trained on lower-case items (older runs: read from the vocabulary)
    files: dict[str, InputFile] = field(default_factory=dict)  # your own splits: split -> its file; else empty

    def split_source(self, split: str) -> str | None:
        """Where a split's items came from: its file (your own splits), None for a split without
        one (no test file given), or the lecture split of the input."""
        if self.files:
            return self.files[split].source if split in self.files else None
        return f"80/10/10 split of {self.input}"

    def changed(self, data: Data) -> str | None:
        """The first of ``data``'s files whose checksum is not the recorded one (its source), else None."""
        if data.sha256 != self.sha256:
            return data.source
        for split in SPLITS:
            now, then = data.files.get(split), self.files.get(split)
            if (now and now.sha256) != (then and then.sha256):
                return (now or then).source
        return None


@dataclass(frozen=True)
class RunDescription:
    """A checkpoint's description, parsed and checked (``parse``); ``raw`` is the JSON document."""

    makemore_version: str
    run_id: str | None  # None: a run from before run ids
    model: ModelInfo
    vocab: Vocab
    data: DataInfo
    config: RunConfig  # what was trained (model, data, train), checked like any config
    step: int  # the trainer's step when it was written
    metrics: dict[str, float | None]
    time_budget: dict[str, Any] | None  # a time-budgeted run: the plan and what it was made from
    processes: int | None  # a torchrun run: how many processes
    auto: dict[str, Any] | None  # --preset auto: what it chose and why (auto.resolve)
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def state(self) -> dict[str, Any]:
        """The trainer's state as saved (``trainer.TrainState.from_json`` reads it)."""
        return self.raw["state"]

    @classmethod
    def parse(cls, meta: dict[str, Any]) -> RunDescription:
        """The description of a checkpoint's JSON document.

        Raises:
            MakemoreError: a field is missing, of the wrong kind or out of range (named).
        """
        config = config_from_meta(meta)
        vocab = Vocab.from_json(meta["vocab"])
        data, model = meta["data"], meta["model"]
        parameters = model.get("parameters", 0)
        _require(_is_int(parameters), "model.parameters", f"expected an integer >= 0, got {parameters!r}")
        processes, budget = meta.get("processes"), meta.get("time_budget")
        _require(processes is None or _is_int(processes, 1), "processes", "not a positive integer")
        _require(budget is None or isinstance(budget, dict), "time_budget", "not a JSON object")
        auto = meta.get("auto")
        _require(auto is None or isinstance(auto, dict), "auto", "not a JSON object")
        casefolded = data.get("casefolded")
        return cls(
            makemore_version=meta["makemore_version"],
            run_id=meta.get("run_id"),
            model=ModelInfo(model["kind"], dict(model["config"]), parameters),
            vocab=vocab,
            data=DataInfo(
                input=data["input"],
                sha256=data["sha256"],
                items=data["items"],
                longest_item=data["longest_item"],
                split_sizes=tuple(data["split_sizes"]),
                label_counts=dict(data.get("label_counts", {})),
                casefolded=casefolded if isinstance(casefolded, bool) else is_casefolded(vocab.chars),
                files={
                    split: InputFile(f["input"], f["sha256"], f["items"]) for split, f in data.get("files", {}).items()
                },
            ),
            config=config,
            step=meta["state"]["step"],
            metrics=dict(meta["metrics"]),
            time_budget=budget,
            processes=processes,
            auto=auto,
            raw=meta,
        )
