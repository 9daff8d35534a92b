"""Shared fixtures and helpers: a tiny deterministic corpus, one small trained run reused by many tests,
the in-process CLI and its bad-input check, one intra-op thread for tiny tensors, PNG checks."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

# Letters that may start or end a word, and the characters that may appear inside one:
# '.', '-' and ' ' must round-trip like any other character, and 'é' is not ASCII.
EDGE_CHARS = "abcde"
INNER_CHARS = "abcde.- é"
TINY_ALPHABET = sorted(set(EDGE_CHARS + INNER_CHARS))

# Small sizes: the machine has 2 cores shared with other jobs.
TRAINED_RUN_STEPS = 60
TRAINED_RUN_EVAL_INTERVAL = 30
TRAINED_RUN_LOG_INTERVAL = 15


def make_tiny_words(n: int = 300, seed: int = 0) -> list[str]:
    """``n`` deterministic words of 2..8 characters over ``TINY_ALPHABET``."""
    rng = random.Random(seed)
    words = []
    for _ in range(n):
        inner = "".join(rng.choice(INNER_CHARS) for _ in range(rng.randint(0, 6)))
        words.append(rng.choice(EDGE_CHARS) + inner + rng.choice(EDGE_CHARS))
    assert sorted(set("".join(words))) == TINY_ALPHABET  # every character occurs
    return words


def write_words(path: Path, words: list[str]) -> Path:
    path.write_bytes("".join(w + "\n" for w in words).encode("utf-8"))
    return path


@pytest.fixture
def tiny_words() -> list[str]:
    return make_tiny_words()


@pytest.fixture
def words_file(tmp_path, tiny_words) -> Path:
    return write_words(tmp_path / "words.txt", tiny_words)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run from an empty temporary directory so that stray files would be seen."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module's tiny tensors: more only add overhead, and stall on a busy
    2-core machine (``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_mlp_config(input_path: Path, **train_overrides):
    """A RunConfig for a very small MLP on ``input_path``."""
    from makemore import api

    train = dict(
        steps=TRAINED_RUN_STEPS,
        batch_size=32,
        eval_interval=TRAINED_RUN_EVAL_INTERVAL,
        log_interval=TRAINED_RUN_LOG_INTERVAL,
    )
    train.update(train_overrides)
    return api.RunConfig(
        model="mlp",
        model_config=api.make_config("mlp", {"n_embd": 4, "n_hidden": 16}),
        data=api.DataConfig(input=str(input_path)),
        train=api.default_train_config("mlp", train),
    )


class TrainedRun:
    """A run directory trained once per session; treat it as read-only."""

    def __init__(self, out_dir: Path, words_path: Path, words: list[str], metrics: dict):
        self.out_dir = out_dir
        self.words_path = words_path
        self.words = words
        self.metrics = metrics


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> TrainedRun:
    from makemore import api

    base = tmp_path_factory.mktemp("trained_run")
    words = make_tiny_words()
    words_path = write_words(base / "words.txt", words)
    out_dir = base / "run"
    metrics = api.train(tiny_mlp_config(words_path), out_dir, progress=False)
    return TrainedRun(out_dir, words_path, words, metrics)


@pytest.fixture
def cli_run(trained_run):
    """(run directory, words file, words) of the session's small trained run; read-only."""
    return trained_run.out_dir, trained_run.words_path, trained_run.words


# The flags of a tiny, quiet MLP for ``makemore train``.
TINY_TRAIN_FLAGS = ["--model", "mlp", "--n-embd", "4", "--n-hidden", "16", "--batch-size", "32", "--quiet"]


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """Run ``makemore ARGS`` in-process: (exit code, stdout, stderr)."""
    from makemore.cli import main

    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def labelled_pairs(n: int, seed: int, low: str, high: str) -> list[tuple[str, str]]:
    """``n`` deterministic (label, item) pairs of 2..6 letters: 'lo' items of ``low``'s letters only,
    'hi' items of ``high``'s."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        label = rng.choice(["lo", "hi"])
        letters = low if label == "lo" else high
        pairs.append((label, "".join(rng.choice(letters) for _ in range(rng.randint(2, 6)))))
    return pairs


def snapshot(*dirs: Path) -> dict:
    """Every path under ``dirs`` with its bytes (None for directories)."""
    state = {}
    for d in dirs:
        for p in sorted(d.rglob("*")):
            state[str(p)] = None if p.is_dir() else p.read_bytes()
    return state


def assert_bad_input(capsys, args, *watched: Path, match: str | None = None) -> str:
    """Exit code 2, exactly one line on stderr starting with 'makemore', nothing written under
    ``watched``; returns the line (``match``: a regex it must contain)."""
    before = snapshot(*watched)
    code, out, err = run_cli(capsys, *args)
    assert code == 2, (code, out, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("makemore")
    assert "Traceback" not in err
    assert out == ""
    assert snapshot(*watched) == before
    if match:
        assert re.search(match, lines[0]), lines[0]
    return lines[0]


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path, directory: Path | None = None, min_bytes: int = 5_000) -> None:
    """A valid, non-trivial PNG (more than 100 pixels each way); with ``directory``, nothing else
    (no temp files) in it."""
    path = Path(path)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > min_bytes
    assert data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 100 and height > 100
    if directory is not None:
        leftovers = [p.name for p in directory.rglob("*") if p.is_file() and p != path]
        assert leftovers == []


def mlp_loss_nan_from(monkeypatch, step: int) -> None:
    """From the ``step``-th training batch on, the MLP's loss (and its gradients) is NaN."""
    from makemore.models import mlp as mlp_module

    original, calls = mlp_module.MLP.forward, {"n": 0}

    def forward(self, idx, targets=None):
        logits, loss = original(self, idx, targets)
        if self.training and targets is not None:
            calls["n"] += 1
            if calls["n"] >= step:
                loss = loss * float("nan")
        return logits, loss

    monkeypatch.setattr(mlp_module.MLP, "forward", forward)


def load_browser_script():
    """``scripts/screenshot_serve.py`` as a module: the browser tests drive Chromium with its helpers."""
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[1] / "scripts" / "screenshot_serve.py"
    spec = importlib.util.spec_from_file_location("screenshot_serve", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
