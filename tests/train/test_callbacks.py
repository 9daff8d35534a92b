"""The trainer's callbacks one by one, on a tiny MLP."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch

from conftest import make_tiny_words
from makemore.config import TrainConfig
from makemore.data.corpus import EncodedCorpus, Vocab
from makemore.models import build_model, make_config
from makemore.store.checkpoint import FORMAT_VERSION
from makemore.store.rundir import RunDir
from makemore.train.callbacks import Checkpointer, EarlyStopping, MetricsFile, StopOnSignal, UpdateRatios
from makemore.train.trainer import Trainer, TrainingInterrupted


@pytest.fixture
def make_trainer():
    words = make_tiny_words(200)
    vocab = Vocab.from_words(words)
    corpus = EncodedCorpus.from_words(words, vocab)

    def make(callbacks, evaluate=None, **train):
        torch.manual_seed(0)
        model = build_model("mlp", make_config("mlp", {"n_embd": 4, "n_hidden": 8}), vocab.size)
        config = TrainConfig(**{"steps": 8, "batch_size": 16, "log_interval": 4, "eval_interval": 4, **train})
        return Trainer(model, model.batcher(corpus), config, evaluate=evaluate, callbacks=callbacks)

    return make


def test_metrics_file_gets_every_row(make_trainer, tmp_path):
    run_dir = RunDir(tmp_path)
    make_trainer([MetricsFile(run_dir)], evaluate=lambda m: 2.0).fit()
    rows = run_dir.read_metrics()
    assert [(r["step"], "dev_loss" in r) for r in rows] == [(4, False), (4, True), (8, False), (8, True)]


def test_update_ratios_every_n_steps(make_trainer):
    rows = []
    trainer = make_trainer([UpdateRatios(3)])
    trainer.log = rows.append
    trainer.fit()
    assert [r["step"] for r in rows if "update_ratio" in r] == [1, 4, 7]
    assert set(rows[0]["update_ratio"]) == {"C.weight", "hidden.0.weight", "out.weight"}


def test_early_stopping_after_patience_evaluations_without_improvement(make_trainer):
    trainer = make_trainer([EarlyStopping(2)], evaluate=lambda m: 3.0, steps=100, eval_interval=5)
    trainer.fit()
    assert trainer.state.step == 15  # best at 5, no better at 10 and 15


def test_checkpointer_saves_best_on_improvement_and_last_at_each_evaluation(make_trainer, tmp_path):
    devs = iter([2.0, 2.5])
    run_dir = RunDir(tmp_path)
    checkpointer = Checkpointer(run_dir, lambda trainer: {"state": {"step": trainer.state.step}})
    make_trainer([checkpointer], evaluate=lambda m: next(devs)).fit()
    assert run_dir.load("best")[1].meta == {"state": {"step": 4}, "format_version": FORMAT_VERSION}
    _, last = run_dir.load("last")
    assert last.meta["state"]["step"] == 8 and last.optimizer_state and set(last.rng_state) >= {"torch", "batches"}
    assert checkpointer.saved_step == 8
    assert json.loads(run_dir.run_json.read_text()) == {"state": {"step": 8}}


def test_checkpointer_saves_last_at_the_end_without_evaluations(make_trainer, tmp_path):
    run_dir = RunDir(tmp_path)
    make_trainer([Checkpointer(run_dir, lambda trainer: {"step": trainer.state.step})]).fit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.safetensors", "run.json"]


def test_a_signal_stops_after_the_step_and_the_handlers_come_back(make_trainer, tmp_path):
    previous = signal.getsignal(signal.SIGTERM)
    run_dir = RunDir(tmp_path)

    class SendSignal(StopOnSignal):
        def on_step_end(self, trainer, loss):
            if trainer.state.step == 3:
                os.kill(os.getpid(), signal.SIGTERM)

    trainer = make_trainer([Checkpointer(run_dir, lambda t: {"step": t.state.step}), SendSignal()])
    with pytest.raises(TrainingInterrupted):
        trainer.fit()
    assert trainer.state.step == 3
    assert run_dir.load("last")[1].meta["step"] == 3
    assert signal.getsignal(signal.SIGTERM) is previous
