"""The Python API: everything the CLI does, as functions over dataclass configs.

A *run directory* holds ``best.safetensors`` and ``last.safetensors`` (self-describing
checkpoints, see ``checkpoint.py``), ``metrics.jsonl`` and ``run.json`` (a readable copy of
the run's description).

Example:
    >>> from makemore import api
    >>> cfg = api.RunConfig(model="ngram", model_config=api.make_config("ngram", {"order": 3}))
    >>> api.train(cfg, "runs/trigram", progress=False)
    >>> run = api.load_run("runs/trigram")
    >>> api.sample(run, api.SampleConfig(num=5, seed=1))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from makemore import __version__
from makemore.checkpoint import atomic_write_text, load_checkpoint, save_checkpoint
from makemore.data import DEFAULT_MAX_ITEM_LEN, EncodedCorpus, Split, Vocab, parse_words, read_words, split_words  # noqa: F401
from makemore.errors import MakemoreError
from makemore.models import build_model, get_family, make_config, model_names
from makemore.sampling import SampleConfig, sample_items
from makemore.trainer import (
    TrainConfig,
    Trainer,
    TrainingInterrupted,
    check_backward,
    evaluate_nll,
    make_batcher,
    validate_train_config,
    target_log_probs,
    train_state_from_json,
    train_state_to_json,
)

BUILTIN_PREFIX = "builtin:"
DEFAULT_DATASET = "names"
SPLITS = ("train", "dev", "test")

__all__ = [
    "DataConfig",
    "RunConfig",
    "SampleConfig",
    "TrainConfig",
    "PRESETS",
    "builtin_datasets",
    "evaluate",
    "load_data",
    "load_run",
    "lr_find",
    "make_config",
    "model_names",
    "preset_config",
    "sample",
    "score",
    "train",
]


@dataclass
class DataConfig:
    """Where the items come from and how they are split."""

    input: str = ""  # words file, or builtin:NAME; empty = the built-in names corpus
    max_item_len: int = DEFAULT_MAX_ITEM_LEN  # longest item accepted, in characters
    split_seed: int = 42  # 42 reproduces the lectures' split
    dedupe: bool = False  # drop repeated items before splitting


@dataclass
class RunConfig:
    """A whole training run: model family and its config, data, and training."""

    model: str = "mlp"
    model_config: Any = None  # the family's config dataclass (None = its defaults)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        if self.model_config is None:
            self.model_config = make_config(self.model)


# name -> (model, model options, train options, what it is)
PRESETS: dict[str, tuple[str, dict, dict, str]] = {
    "default": (
        "lstm",
        dict(n_embd=64, n_hidden=256, n_layers=2, dropout=0.25),
        dict(steps=6000, batch_size=64, lr=0.004, weight_decay=0.1, warmup_steps=200, eval_interval=500),
        "what `makemore train` trains: a 2-layer LSTM, about two minutes on 2 CPU cores for ~30k names",
    ),
    "best": (
        "lstm",
        dict(n_embd=64, n_hidden=256, n_layers=2, dropout=0.3, weight_dropout=0.2),
        dict(steps=14000, batch_size=64, lr=0.003, weight_decay=0.1, warmup_steps=200, eval_interval=1000),
        "the best model found for 10 minutes on 2 CPU cores: a 2-layer LSTM with dropout 0.3 and DropConnect 0.2 "
        "on the hidden-to-hidden weights (names.txt dev ~1.89)",
    ),
    "lecture2": (
        "mlp",
        dict(block_size=3, n_embd=10, n_hidden=200, init="naive"),
        dict(steps=200000, batch_size=32, optimizer="sgd", lr=0.1, schedule="step", step_at=0.5, weight_decay=0.0,
             eval_interval=10000, log_interval=1000),
        "lecture 2's MLP: block 3, n_embd 10, n_hidden 200, plain randn init, SGD 0.1 -> 0.01, 200k steps of 32",
    ),
    "lecture3": (
        "bn-mlp",
        dict(block_size=3, n_embd=10, n_hidden=200, bn_momentum=0.001),
        dict(steps=200000, batch_size=32, optimizer="sgd", lr=0.1, schedule="step", step_at=0.75, weight_decay=0.0,
             eval_interval=10000, log_interval=1000),
        "lecture 3's MLP with the init fixes and BatchNorm, SGD 0.1 -> 0.01 at 75%, 200k steps of 32",
    ),
    "lecture5": (
        "wavenet",
        dict(block_size=8, n_embd=24, n_hidden=128, dropout=0.0),
        dict(steps=200000, batch_size=32, optimizer="sgd", lr=0.1, schedule="step", step_at=0.75, weight_decay=0.0,
             eval_interval=10000, log_interval=1000),
        "lecture 5's WaveNet: block 8, n_embd 24, n_hidden 128, SGD 0.1 -> 0.01 at 75%, 200k steps of 32",
    ),
}
DEFAULT_PRESET = "default"  # used when neither --model nor --preset is given


def preset_config(name: str) -> RunConfig:
    """The RunConfig of a named preset (see ``PRESETS``)."""
    if name not in PRESETS:
        raise MakemoreError(f"--preset: unknown preset '{name}' (choose from: {', '.join(PRESETS)})")
    model, model_opts, train_opts, _ = PRESETS[name]
    return RunConfig(model=model, model_config=make_config(model, model_opts), train=default_train_config(model, train_opts))


def default_train_config(model: str, overrides: dict | None = None) -> TrainConfig:
    """TrainConfig defaults, then the family's own defaults, then ``overrides``."""
    config_cls, _ = get_family(model)
    values = dict(getattr(config_cls, "default_train", {}))
    values.update(overrides or {})
    return TrainConfig(**values)


# -- data ---------------------------------------------------------------------------------


def builtin_datasets() -> dict[str, dict]:
    """Built-in corpora: name -> {file, description, source, items, ...}."""
    info = json.loads(resources.files("makemore").joinpath("data/datasets.json").read_text(encoding="utf-8"))
    return info


def builtin_path(name: str) -> Path:
    datasets = builtin_datasets()
    if name not in datasets:
        raise MakemoreError(f"-i: unknown built-in corpus '{name}' (choose from: {', '.join(datasets)})")
    return Path(str(resources.files("makemore").joinpath("data", datasets[name]["file"])))


def resolve_input(data: DataConfig) -> tuple[str, Path]:
    """(label recorded in checkpoints, path to read) for the configured input."""
    if not data.input or data.input.startswith(BUILTIN_PREFIX):
        name = data.input[len(BUILTIN_PREFIX) :] if data.input else DEFAULT_DATASET
        return BUILTIN_PREFIX + name, builtin_path(name)
    path = Path(data.input).expanduser()
    return str(path.resolve()), path


@dataclass
class Data:
    """A loaded corpus: items, split, vocabulary and a fingerprint of the file."""

    words: list[str]
    split: Split
    vocab: Vocab
    source: str
    sha256: str

    def corpus(self, split: str) -> EncodedCorpus:
        return EncodedCorpus.from_words(getattr(self.split, split), self.vocab)


def load_data(data: DataConfig, vocab: Vocab | None = None) -> Data:
    """Read, split and encode the configured input.

    Args:
        data: the data config.
        vocab: use this vocabulary (a trained model's) instead of the file's own characters.
    """
    source, path = resolve_input(data)
    if path.is_file():
        raw = path.read_bytes()
        words = parse_words(raw, source=str(path), max_len=data.max_item_len)
    else:
        words = read_words(path, max_len=data.max_item_len)  # raises the right error
        raw = b""
    sha = hashlib.sha256(raw).hexdigest()
    return Data(words, split_words(words, seed=data.split_seed, dedupe=data.dedupe), vocab or Vocab.from_words(words), source, sha)


# -- checkpoints ----------------------------------------------------------------------------


def _run_meta(config: RunConfig, data: Data, model, extra: dict) -> dict:
    return {
        "makemore_version": __version__,
        "model": {"kind": config.model, "config": asdict(config.model_config), "parameters": count_parameters(model)},
        "vocab": data.vocab.to_json(),
        "data": {
            **asdict(config.data),
            "input": data.source,
            "sha256": data.sha256,
            "items": len(data.words),
            "longest_item": max(len(w) for w in data.words),
            "split_sizes": [len(data.split.train), len(data.split.dev), len(data.split.test)],
        },
        "train": asdict(config.train),
        **extra,
    }


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _checkpoint_path(out_dir: Path, which: str) -> Path:
    return out_dir / f"{which}.safetensors"


@dataclass
class Run:
    """A trained model loaded from a run directory."""

    model: torch.nn.Module
    vocab: Vocab
    meta: dict
    config: RunConfig
    path: Path

    @property
    def model_limit(self) -> int | None:
        """Most characters the model can generate (sequence models have positions)."""
        if self.model.input_kind == "sequence" and getattr(self.model, "has_position_limit", True):
            return self.model.block_size - 1
        return None


def _config_from_meta(meta: dict) -> RunConfig:
    if not all(isinstance(meta.get(key), dict) for key in ("model", "data", "train", "vocab")):
        raise MakemoreError("checkpoint metadata is incomplete (not written by makemore train?)")
    kind = meta["model"].get("kind")
    config_cls, _ = get_family(kind)
    try:
        model_config = config_cls(**meta["model"]["config"])
        data_fields = {f.name for f in dataclasses.fields(DataConfig)}
        data_config = DataConfig(**{k: v for k, v in meta["data"].items() if k in data_fields})
        train_config = TrainConfig(**meta["train"])
    except (TypeError, KeyError) as exc:
        raise MakemoreError(f"checkpoint was written by an incompatible makemore version ({exc})") from None
    return RunConfig(model=kind, model_config=model_config, data=data_config, train=train_config)


def load_run(out_dir: str | Path, which: str = "best", device: str = "cpu") -> Run:
    """Load a trained model from a run directory.

    Args:
        out_dir: the run directory given to ``train``.
        which: "best" (lowest dev loss; falls back to "last") or "last".
        device: where to put the model.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise MakemoreError(f"-o {out_dir}: no such run directory (train one with: makemore train -o {out_dir})")
    path = _checkpoint_path(out_dir, which)
    if which == "best" and not path.exists():
        path = _checkpoint_path(out_dir, "last")
    if not path.exists():
        raise MakemoreError(f"-o {out_dir}: no checkpoint in this directory (train one with: makemore train -o {out_dir})")
    ckpt = load_checkpoint(path)
    config = _config_from_meta(ckpt.meta)
    vocab = Vocab.from_json(ckpt.meta["vocab"])
    model = build_model(config.model, config.model_config, vocab.size)
    try:
        model.load_state_dict(ckpt.model_state)
    except RuntimeError as exc:
        raise MakemoreError(f"{path}: weights do not match the model described in it ({str(exc).splitlines()[0]})") from None
    model.to(device).eval()
    return Run(model=model, vocab=vocab, meta=ckpt.meta, config=config, path=path)


# -- training -----------------------------------------------------------------------------


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MakemoreError("--device cuda: no CUDA device is available")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise MakemoreError(f"--device: unknown device '{name}' (cpu, cuda, auto)")
    return torch.device(name)


def _fit_sequence_block_size(config: RunConfig, data: Data) -> RunConfig:
    """Sequence models with ``block_size`` 0 get the longest item + 1 positions."""
    mc = config.model_config
    if getattr(mc, "block_size", None) == 0 and get_family(config.model)[1].input_kind == "sequence":
        longest = max(len(w) for w in data.words)
        config = dataclasses.replace(config, model_config=dataclasses.replace(mc, block_size=longest + 1))
    return config


def train(
    config: RunConfig | None,
    out_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    steps: int | None = None,
    on_start: Callable[[RunConfig], None] | None = None,
) -> dict:
    """Train a model and write its checkpoints into ``out_dir``.

    Args:
        config: what to train (ignored when resuming: the checkpoint's config is used).
        out_dir: the run directory (created if needed).
        resume: continue from ``out_dir/last.safetensors`` with optimizer, RNG and step restored.
        overwrite: replace a run already in ``out_dir`` (its files are removed once the new
            run's data and config have been checked).
        progress: show a progress bar.
        steps: when resuming, a new total number of steps (None keeps the recorded one).
        on_start: called with the run's config once data, config and run directory have been
            checked, just before anything is written (e.g. to announce the run).
    Returns:
        The final metrics: train and dev NLL of the best checkpoint, steps, time.
    Raises:
        MakemoreError: bad input or a diverged run. TrainingInterrupted: stopped by a signal.
    """
    out_dir = Path(out_dir)
    ckpt = None
    if resume:
        last = _checkpoint_path(out_dir, "last")
        if not last.exists():
            raise MakemoreError(f"--resume: no checkpoint to resume in {out_dir} (expected {last.name})")
        ckpt = load_checkpoint(last)
        config = _config_from_meta(ckpt.meta)
        if steps is not None:
            config.train.steps = steps
        data = load_data(config.data, Vocab.from_json(ckpt.meta["vocab"]))
        if data.sha256 != ckpt.meta["data"]["sha256"]:
            raise MakemoreError(f"--resume: {data.source} changed since this run started (its checksum differs)")
    else:
        if out_dir.exists() and not out_dir.is_dir():
            raise MakemoreError(f"-o {out_dir}: exists and is not a directory")
        if _checkpoint_path(out_dir, "last").exists() and not overwrite:
            raise MakemoreError(f"-o {out_dir}: already holds a run (--resume continues it, --overwrite replaces it)")
        data = load_data(config.data)
        config = _fit_sequence_block_size(config, data)
    device = _resolve_device(config.train.device)
    validate_train_config(config.train)
    torch.manual_seed(config.train.seed)
    model = build_model(config.model, config.model_config, data.vocab.size)
    if ckpt is not None:
        model.load_state_dict(ckpt.model_state)
    model.to(device)
    train_corpus, dev_corpus = data.corpus("train"), data.corpus("dev")
    if len(train_corpus) == 0 or len(dev_corpus) == 0:
        raise MakemoreError(f"{data.source}: too few items to split into train/dev/test ({len(data.words)}; need at least 10)")
    train_batcher = make_batcher(model, train_corpus, device)
    dev_batcher = make_batcher(model, dev_corpus, device)
    check_backward(model, config.train)
    if on_start is not None:
        on_start(config)
    out_dir.mkdir(parents=True, exist_ok=True)  # only now: a refused run leaves nothing behind
    if overwrite and not resume:
        for name in ("best.safetensors", "last.safetensors", "metrics.jsonl", "run.json"):
            (out_dir / name).unlink(missing_ok=True)
    started = time.perf_counter()

    if hasattr(model, "fit"):  # count models: fitting is counting
        model.fit(train_batcher.X, train_batcher.Y)
        metrics = {"train_loss": evaluate_nll(model, train_batcher), "dev_loss": evaluate_nll(model, dev_batcher)}
        metrics["fit_seconds"] = time.perf_counter() - started
        meta = _run_meta(config, data, model, {"state": {"step": 0}, "metrics": metrics})
        for which in ("best", "last"):
            save_checkpoint(_checkpoint_path(out_dir, which), model_state=model.state_dict(), meta=meta)
        atomic_write_text(out_dir / "run.json", json.dumps(meta, indent=2) + "\n")
        return metrics

    def save(kind, model, optimizer, rng_state, state):
        meta = _run_meta(config, data, model, {"state": train_state_to_json(state), "metrics": dict(state.metrics)})
        opt_state = optimizer.state_dict() if kind == "last" else None
        save_checkpoint(_checkpoint_path(out_dir, kind), model_state=model.state_dict(), meta=meta, optimizer_state=opt_state,
                        rng_state=rng_state if kind == "last" else None)
        if kind == "last":
            atomic_write_text(out_dir / "run.json", json.dumps(meta, indent=2) + "\n")

    trainer = Trainer(model, train_batcher, lambda m: evaluate_nll(m, dev_batcher), config.train, out_dir, save, progress)
    if ckpt is not None:
        trainer.restore(ckpt.optimizer_state, ckpt.rng_state, train_state_from_json(ckpt.meta["state"]))
    elif (out_dir / "metrics.jsonl").exists():
        (out_dir / "metrics.jsonl").unlink()
    state = trainer.run()
    best = load_run(out_dir, "best", device=str(device)).model
    metrics = {
        "train_loss": evaluate_nll(best, train_batcher),
        "dev_loss": evaluate_nll(best, dev_batcher),
        "best_step": state.metrics.get("best_step", state.step),
        "steps": state.step,
        "train_seconds": time.perf_counter() - started,
    }
    return metrics


# -- using a trained model -----------------------------------------------------------------------


def _training_items(run: Run) -> set[str] | None:
    try:
        return set(load_data(_config_from_meta(run.meta).data, run.vocab).words)
    except MakemoreError:
        return None


def sample(run: Run, config: SampleConfig) -> list[str]:
    """Generate items with a trained model (see ``SampleConfig``)."""
    longest = run.meta["data"]["longest_item"]
    known = _training_items(run) if config.new_only else None
    if config.new_only and known is None:
        raise MakemoreError(f"--new-only: cannot read the training file {run.meta['data']['input']}")
    return sample_items(
        run.model, run.vocab, config, default_max_len=max(16, 2 * longest), model_limit=run.model_limit, known_items=known
    )


@dataclass
class CharScore:
    context: tuple[str, ...]  # the characters the model read before ``char``: its last
    # block_size for window models (boundary-padded at the start), the whole prefix for
    # sequence models; the boundary is shown as the vocab's boundary symbol
    char: str  # the predicted character
    prob: float
    logprob: float


@dataclass
class WordScore:
    word: str
    nll: float  # mean negative log-likelihood per character (end boundary included)
    chars: list[CharScore]


def score(run: Run, words: list[str]) -> list[WordScore]:
    """Mean NLL per character of each word, with the per-character detail.

    Raises:
        MakemoreError: a word is empty, holds a character the model never saw, or is longer
            than the model can read.
    """
    for word in words:
        if not word:
            raise MakemoreError("score: cannot score an empty item")
        if "\n" in word or "\r" in word:
            raise MakemoreError(f"score: {word!r} contains a line break; give one item per argument")
    if run.model_limit is not None:
        too_long = [w for w in words if len(w) > run.model_limit]
        if too_long:
            raise MakemoreError(f"score: {too_long[0]!r} is longer than this model can read ({run.model_limit} characters)")
    corpus = EncodedCorpus.from_words(words, run.vocab)
    logp = target_log_probs(run.model, make_batcher(run.model, corpus)).double()
    labels = run.vocab.labels()
    # window models read the same boundary-padded windows they were trained on
    windows = corpus.windows(run.model.block_size)[0].tolist() if run.model.input_kind == "window" else None
    results = []
    for word, word_logp, start, length in zip(
        words, torch.split(logp, (corpus.lengths + 1).tolist()), corpus.starts.tolist(), corpus.lengths.tolist()
    ):
        text = [labels[t] for t in corpus.tokens[start : start + length + 2].tolist()]  # boundary, word, boundary
        if windows is None:  # sequence models read the whole prefix
            contexts = [tuple(text[: i + 1]) for i in range(length + 1)]
        else:  # this word's rows of the windows: one per target, in corpus order like logp
            contexts = [tuple(labels[t] for t in row) for row in windows[start : start + length + 1]]
        chars = [CharScore(ctx, char, math.exp(lp), lp) for ctx, char, lp in zip(contexts, text[1:], word_logp.tolist())]
        results.append(WordScore(word, float(-word_logp.mean()), chars))
    return results


def evaluate(run: Run, splits=SPLITS) -> dict[str, float]:
    """Mean NLL per character on the run's train/dev/test splits (re-read from its input)."""
    data = load_data(run.config.data, run.vocab)
    if data.sha256 != run.meta["data"]["sha256"]:
        raise MakemoreError(f"eval: {data.source} changed since the model was trained (its checksum differs)")
    return {name: evaluate_nll(run.model, make_batcher(run.model, data.corpus(name))) for name in splits}


def training_windows(run: Run, block_size: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(X, Y) examples of the run's training split (for plots and diagnostics)."""
    data = load_data(run.config.data, run.vocab)
    return data.corpus("train").windows(block_size)


def bigram_counts(run: Run) -> torch.Tensor:
    """(V, V) counts of (previous, next) token pairs in the run's training split."""
    X, Y = training_windows(run, 1)
    V = run.vocab.size
    return torch.bincount(X[:, 0] * V + Y, minlength=V * V).view(V, V)


def lr_find(config: RunConfig, *, start: float = 1e-3, end: float = 1.0, steps: int = 1000, progress: bool = True) -> tuple[list[float], list[float]]:
    """Sweep the learning rate exponentially from ``start`` to ``end``, one step each.

    Returns:
        (lrs, losses), stopped early once the loss diverges (4x its minimum, or not finite).
    """
    if not (0 < start < end):
        raise MakemoreError("--start/--end: need 0 < start < end")
    if steps < 5:
        raise MakemoreError("--num-steps: need at least 5 steps")
    data = load_data(config.data)
    config = _fit_sequence_block_size(config, data)
    torch.manual_seed(config.train.seed)
    model = build_model(config.model, config.model_config, data.vocab.size)
    if hasattr(model, "fit"):
        raise MakemoreError(f"lr-find: model '{config.model}' is fitted by counting, it has no learning rate")
    batcher = make_batcher(model, data.corpus("train"))
    from makemore.trainer import build_optimizer

    optimizer = build_optimizer(model, config.train)
    generator = torch.Generator().manual_seed(config.train.seed)
    lrs, losses = [], []
    model.train()
    from tqdm.auto import tqdm

    for i in tqdm(range(steps), disable=not progress, unit="step"):
        lr = start * (end / start) ** (i / (steps - 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = batcher.sample(config.train.batch_size, generator)
        optimizer.zero_grad(set_to_none=True)
        _, loss = model(x, y)
        loss.backward()
        optimizer.step()
        value = loss.detach().item()
        lrs.append(lr)
        losses.append(value)
        if not math.isfinite(value) or value > 4 * min(losses):
            break
    return lrs, losses


__all__ += ["Run", "Data", "WordScore", "CharScore", "TrainingInterrupted", "bigram_counts", "training_windows", "default_train_config"]
