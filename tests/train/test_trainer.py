"""Trainer: loss goes down, checkpoints, exact resume (also after a real signal), NaN handling."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import mlp_loss_nan_from
from makemore import api
from makemore.config import TrainConfig
from makemore.data.batching import WindowBatcher
from makemore.data.datasets import load_data
from makemore.errors import MakemoreError
from makemore.models import build_model
from makemore.store.checkpoint import load_checkpoint, read_meta
from makemore.train.trainer import Trainer, lr_at


def _words(n: int = 400, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    syllables = ["ka", "ri", "mo", "an", "el", "su", "ta", "li", "no", "ve"]
    return ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(n)]


@pytest.fixture
def words_path(tmp_path: Path) -> Path:
    path = tmp_path / "words.txt"
    path.write_text("\n".join(_words()) + "\n", encoding="utf-8")
    return path


def _config(words_path: Path, **train) -> api.RunConfig:
    model_config = api.make_config("mlp", dict(block_size=3, n_embd=6, n_hidden=24, dropout=0.1))
    train_config = TrainConfig(
        **{**dict(steps=60, batch_size=16, lr=0.01, eval_interval=20, log_interval=10, seed=5), **train}
    )
    return api.RunConfig(
        model="mlp", model_config=model_config, data=api.DataConfig(input=str(words_path)), train=train_config
    )


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).model_state


def test_lr_schedules():
    step_cfg = TrainConfig(steps=200, lr=0.1, schedule="step", step_at=0.75, step_factor=0.1)
    assert lr_at(step_cfg, 149) == pytest.approx(0.1)
    assert lr_at(step_cfg, 150) == pytest.approx(0.01)
    cos = TrainConfig(steps=100, lr=1.0, schedule="cosine", min_lr_ratio=0.1, warmup_steps=10)
    assert lr_at(cos, 0) == pytest.approx(0.1)  # warm-up starts at lr/warmup
    assert lr_at(cos, 9) == pytest.approx(1.0)
    assert lr_at(cos, 10) == pytest.approx(1.0)
    assert lr_at(cos, 55) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_at(cos, 100) == pytest.approx(0.1)
    with pytest.raises(MakemoreError):
        lr_at(TrainConfig(schedule="bogus"), 0)


def test_training_lowers_loss_and_writes_checkpoints(tmp_path, words_path):
    out = tmp_path / "run"
    metrics = api.train(_config(words_path, steps=200, eval_interval=50), out, progress=False)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    dev = [r["dev_loss"] for r in rows if "dev_loss" in r]
    assert len(dev) == 4
    assert rows[0]["train_loss"] > rows[-2]["train_loss"]
    assert metrics["dev_loss"] < math.log(len(set("".join(_words())))) - 0.3  # well below uniform
    # best is the checkpoint with the lowest dev loss; last is at the final step
    assert read_meta(out / "best.safetensors")["metrics"]["best_dev_loss"] == pytest.approx(min(dev))
    assert read_meta(out / "last.safetensors")["state"]["step"] == 200
    assert metrics["dev_loss"] == pytest.approx(min(dev), abs=1e-6)
    assert sorted(p.name for p in out.iterdir()) == [
        "best.safetensors",
        "last.safetensors",
        "metrics.jsonl",
        "run.json",
    ]


def _train_until_sigint(words_path, out, at_batch, monkeypatch):
    """Train `_config` into `out`, delivering a real SIGINT while batch `at_batch` is drawn.

    Returns:
        The TrainingInterrupted raised by api.train.
    """
    calls = {"n": 0}
    original_sample = WindowBatcher.sample

    def sample_and_signal(self, batch_size, generator):
        calls["n"] += 1
        if calls["n"] == at_batch:
            os.kill(os.getpid(), signal.SIGINT)
        return original_sample(self, batch_size, generator)

    monkeypatch.setattr(WindowBatcher, "sample", sample_and_signal)
    try:
        with pytest.raises(api.TrainingInterrupted) as info:
            api.train(_config(words_path), out, progress=False)
    finally:
        monkeypatch.setattr(WindowBatcher, "sample", original_sample)
    return info.value


def test_resume_is_bit_identical_after_interruption(tmp_path, words_path, monkeypatch):
    full = tmp_path / "full"
    api.train(_config(words_path), full, progress=False)

    # interrupt by a real SIGINT delivered in the middle of step 37 (not at an eval boundary)
    part = tmp_path / "part"
    assert _train_until_sigint(words_path, part, 37, monkeypatch).step == 37
    assert read_meta(part / "last.safetensors")["state"]["step"] == 37
    with open(part / "metrics.jsonl", "a") as fh:  # a row cut short by a kill: dropped on resume
        fh.write('{"step": 38, "train_lo')

    api.resume(part, progress=False)
    a, b = _weights(full / "last.safetensors"), _weights(part / "last.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    # the optimizer state is identical too, and the metrics were not duplicated
    assert torch.equal(
        load_checkpoint(full / "last.safetensors").rng_state["batches"],
        load_checkpoint(part / "last.safetensors").rng_state["batches"],
    )
    steps = [json.loads(x)["step"] for x in (part / "metrics.jsonl").read_text().splitlines() if "dev_loss" in x]
    assert steps == [20, 40, 60]


@pytest.mark.slow  # 30 s; the default suite has the same check in tests/reliability/test_faults.py (SIGINT, mlp)
def test_resume_by_signal_from_the_cli(tmp_path, words_path):
    """A separate process gets SIGINT while training, exits 130, and --resume finishes identically."""
    model = "--block-size 3 --n-embd 6 --n-hidden 24 --dropout 0.1".split()
    train = "--steps 4000 --batch-size 16 --eval-interval 500 --log-interval 50 --seed 5 -q".split()
    common = ["-i", str(words_path), *model, *train]
    cli = [sys.executable, "-m", "makemore.cli", "train"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cli + ["-o", str(tmp_path / "part")] + common, env=env, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "part" / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and metrics.read_text().count("\n") >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("training finished before the signal arrived (machine too fast for this check)")
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    stopped_at = read_meta(tmp_path / "part" / "last.safetensors")["state"]["step"]
    assert 0 < stopped_at < 4000
    subprocess.run(cli + ["--resume", "-o", str(tmp_path / "part"), "-q"], env=env, check=True, capture_output=True)
    subprocess.run(cli + ["-o", str(tmp_path / "full")] + common, env=env, check=True, capture_output=True)
    a, b = _weights(tmp_path / "full" / "last.safetensors"), _weights(tmp_path / "part" / "last.safetensors")
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, words_path, monkeypatch):
    mlp_loss_nan_from(monkeypatch, 30)
    out = tmp_path / "run"
    with pytest.raises(MakemoreError, match="nan at step 30.*step 20"):
        api.train(_config(words_path), out, progress=False)
    monkeypatch.undo()  # the MLP's own forward again, to load the run
    meta = read_meta(out / "last.safetensors")
    assert meta["state"]["step"] == 20
    run = api.load_run(out, "last")
    assert all(torch.isfinite(p).all() for p in run.model.parameters())
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_early_stopping_with_patience(tmp_path, words_path):
    # lr 0 never improves after the first evaluation: patience 2 stops at the third
    out = tmp_path / "run"
    metrics = api.train(_config(words_path, lr=0.0, steps=200, eval_interval=10, patience=2), out, progress=False)
    assert metrics["steps"] == 30


def test_full_batch_and_sgd(tmp_path, words_path):
    out = tmp_path / "run"
    cfg = _config(words_path, batch_size=0, optimizer="sgd", lr=0.5, schedule="constant", steps=20, eval_interval=10)
    metrics = api.train(cfg, out, progress=False)
    assert math.isfinite(metrics["dev_loss"])


def test_update_ratio_tracking(tmp_path, words_path):
    out = tmp_path / "run"
    api.train(_config(words_path, track_update_ratio=10, steps=40), out, progress=False)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    ratio_rows = [r for r in rows if "update_ratio" in r]
    assert [r["step"] for r in ratio_rows] == [1, 11, 21, 31]
    assert set(ratio_rows[0]["update_ratio"]) == {"C.weight", "hidden.0.weight", "out.weight"}
    assert all(-6 < v < 0 for v in ratio_rows[-1]["update_ratio"].values())


def test_lr_find_gives_plot_and_finite_suggestion(tmp_path, words_path):
    from makemore.cli import main

    out = tmp_path / "lr.png"
    options = "--model mlp --n-embd 4 --n-hidden 16 --steps 150 --batch-size 32 -q".split()
    code = main(["lr-find", "-i", str(words_path), *options, "-o", str(out)])
    assert code == 0
    assert out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_size > 5000
    lrs, losses = api.lr_find(_config(words_path), steps=100, progress=False)
    assert len(lrs) == len(losses) and lrs[0] == pytest.approx(1e-3)
    assert all(b > a for a, b in zip(lrs, lrs[1:]))


def test_metrics_also_go_to_tensorboard_when_installed(tmp_path, words_path, monkeypatch):
    from makemore.train import callbacks

    class Recorder:
        def __init__(self):
            self.scalars, self.closed = [], False

        def add_scalar(self, tag, value, step):
            self.scalars.append((tag, step, value))

        def close(self):
            self.closed = True

    writers = []

    def fake_writer(log_dir, start_step):
        assert log_dir == tmp_path / "run" / "tensorboard" and start_step == 0
        writers.append(Recorder())
        return writers[-1]

    monkeypatch.setattr(callbacks, "tensorboard_writer", fake_writer)
    api.train(_config(words_path, steps=40, track_update_ratio=20), tmp_path / "run", progress=False)
    (writer,) = writers
    assert writer.closed
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    expected = []
    for row in rows:
        for key, value in row.items():
            if key == "update_ratio":
                expected += [(f"update_ratio/{name}", row["step"], v) for name, v in value.items()]
            elif key != "step":
                expected.append((key, row["step"], value))
    assert writer.scalars == expected
    assert {tag for tag, _, _ in writer.scalars} >= {
        "train_loss",
        "dev_loss",
        "lr",
        "steps_per_s",
        "update_ratio/out.weight",
    }


def test_tensorboard_writer_is_none_without_tensorboard(tmp_path, monkeypatch):
    from makemore.train import callbacks

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    assert callbacks.tensorboard_writer(tmp_path / "tb", 0) is None


# -- the loop and its public step, without any run directory ----------------------------------


def _tiny_trainer(words_path: Path, callbacks=(), evaluate=None, **train) -> Trainer:

    config = _config(words_path, **train)
    data = load_data(config.data)
    torch.manual_seed(config.train.seed)
    model = build_model("mlp", config.model_config, data.vocab.size)
    return Trainer(model, model.batcher(data.corpus("train")), config.train, evaluate=evaluate, callbacks=callbacks)


def test_fit_is_its_public_steps_and_writes_nothing(words_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.iterdir())
    looped = _tiny_trainer(words_path, steps=12)
    looped.fit()
    stepped = _tiny_trainer(words_path, steps=12)
    losses = [stepped.step() for _ in range(12)]
    assert looped.state.step == stepped.state.step == 12
    for (name, a), (_, b) in zip(looped.model.named_parameters(), stepped.model.named_parameters()):
        assert torch.equal(a, b), name
    assert all(math.isfinite(v) for v in losses)
    assert sorted(tmp_path.iterdir()) == before  # no callbacks, no files


class Recorder:
    """A callback that records every hook it gets (and can interrupt at a given step)."""

    def __init__(self, interrupt_at: int | None = None):
        self.calls: list[tuple] = []
        self.interrupt_at = interrupt_at

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def record(trainer, *args):
            self.calls.append((hook, trainer.state.step, *args))
            if hook == "on_step_end" and trainer.state.step == self.interrupt_at:
                trainer.interrupt()

        return record


def test_callbacks_get_every_hook_in_order(words_path):
    devs = iter([2.0, 1.5, 1.7])
    recorder = Recorder()
    trainer = _tiny_trainer(
        words_path, [recorder], evaluate=lambda model: next(devs), steps=6, log_interval=3, eval_interval=2
    )
    trainer.fit()
    hooks = [c[0] for c in recorder.calls]
    assert hooks[0] == "on_train_start" and hooks[-2:] == ["on_train_end", "on_close"]
    per_step = [c[0] for c in recorder.calls if c[0] in ("on_before_optimizer_step", "on_after_optimizer_step")]
    assert per_step == ["on_before_optimizer_step", "on_after_optimizer_step"] * 6
    evals = [
        (step, dev, improved) for hook, step, *rest in recorder.calls if hook == "on_eval" for dev, improved in [rest]
    ]
    assert evals == [(2, 2.0, True), (4, 1.5, True), (6, 1.7, False)]
    logged = [(step, sorted(row)) for hook, step, row in (c for c in recorder.calls if c[0] == "on_log")]
    assert logged == [
        (2, ["dev_loss", "step"]),
        (3, ["lr", "step", "steps_per_s", "train_loss"]),
        (4, ["dev_loss", "step"]),
        (6, ["lr", "step", "steps_per_s", "train_loss"]),
        (6, ["dev_loss", "step"]),
    ]
    assert trainer.state.best_dev == 1.5 and trainer.state.evals_since_best == 1


def test_an_interrupt_finishes_the_step_then_raises(words_path):
    from makemore.train.trainer import TrainingInterrupted

    recorder = Recorder(interrupt_at=3)
    trainer = _tiny_trainer(words_path, [recorder], steps=10)
    with pytest.raises(TrainingInterrupted) as info:
        trainer.fit()
    assert info.value.step == 3 == trainer.state.step
    hooks = [c[0] for c in recorder.calls]
    assert hooks[-2:] == ["on_interrupt", "on_close"] and "on_train_end" not in hooks


def test_a_loss_that_is_not_finite_updates_nothing(words_path):
    from makemore.train.trainer import LossNotFinite

    trainer = _tiny_trainer(words_path, steps=10)
    trainer.step()
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.forward_backward = lambda model, x, y: torch.tensor(float("inf"))
    assert trainer.step() == float("inf") and trainer.state.step == 1
    assert all(torch.equal(p, before[n]) for n, p in trainer.model.named_parameters())
    with pytest.raises(LossNotFinite, match="inf at step 2"):
        trainer.fit()


def test_the_lr_schedule_can_be_replaced(words_path):
    trainer = _tiny_trainer(words_path, steps=10)
    trainer.lr_schedule = lambda step: 0.5 * (step + 1)
    for step in range(3):
        trainer.step()
        assert [g["lr"] for g in trainer.optimizer.param_groups] == [0.5 * (step + 1)] * len(
            trainer.optimizer.param_groups
        )


def test_resume_in_the_middle_of_a_log_window_writes_the_same_rows(tmp_path, words_path, monkeypatch):
    """Interrupted at step 37 with rows every 10 steps: the row of step 40 still averages steps 31-40."""
    full = tmp_path / "full"
    api.train(_config(words_path), full, progress=False)
    part = tmp_path / "part"
    _train_until_sigint(words_path, part, 37, monkeypatch)
    assert len(read_meta(part / "last.safetensors")["state"]["window_losses"]) == 7  # steps 31-37
    api.resume(part, progress=False)

    def rows(run):
        return [
            {k: v for k, v in json.loads(line).items() if k != "steps_per_s"}
            for line in (run / "metrics.jsonl").read_text().splitlines()
        ]

    assert rows(part) == rows(full)
