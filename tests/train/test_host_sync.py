"""fit does not wait for the device at every step: the losses are read at the read points only
(train_loss rows, evaluations, an interrupt, the end), the rows are the exact means of the
per-step losses, and a loss that is not finite is caught there (deferred) or at once (CPU)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.distributed as dist

from conftest import make_tiny_words, mlp_loss_nan_from, tiny_mlp_config, write_words
from makemore import api
from makemore.config import TrainConfig
from makemore.data.corpus import EncodedCorpus, Vocab
from makemore.errors import MakemoreError
from makemore.models import build_model, make_config
from makemore.store.checkpoint import read_meta
from makemore.store.rundir import RunDir
from makemore.train import distributed
from makemore.train.callbacks import StopTogether, UpdateRatios
from makemore.train.trainer import Callback, LossNotFinite, Trainer, TrainingInterrupted, autograd_forward_backward

pytestmark = pytest.mark.usefixtures("one_thread")

READS = ("item", "tolist", "__float__", "__int__", "__bool__")


@pytest.fixture(scope="module")
def corpus():
    words = make_tiny_words(200)
    vocab = Vocab.from_words(words)
    return EncodedCorpus.from_words(words, vocab), vocab


def _trainer(corpus, callbacks=(), evaluate=None, forward_backward=autograd_forward_backward, **train) -> Trainer:
    corpus, vocab = corpus
    torch.manual_seed(0)
    model = build_model("mlp", make_config("mlp", {"n_embd": 4, "n_hidden": 8}), vocab.size)
    config = TrainConfig(**{"steps": 12, "batch_size": 16, "log_interval": 4, "eval_interval": 6, **train})
    return Trainer(
        model, model.batcher(corpus), config, evaluate=evaluate, callbacks=callbacks, forward_backward=forward_backward
    )


class ReadCounter:
    """Counts the tensor reads (``item``, ``tolist``, ``float()``...) made while it is on."""

    def __init__(self, monkeypatch):
        self.count, self.on = 0, True
        for name in READS:
            original = getattr(torch.Tensor, name)

            def counted(t, *args, _original=original, **kwargs):
                if self.on:
                    self.count += 1
                return _original(t, *args, **kwargs)

            monkeypatch.setattr(torch.Tensor, name, counted)


class Rows(Callback):
    """Records each step's read count and loss (read off the counter), and the rows."""

    def __init__(self, counter: ReadCounter | None = None):
        self.counter, self.reads, self.losses, self.rows = counter, {}, [], []

    def on_step_end(self, trainer, loss):
        if self.counter is not None:
            self.reads[trainer.state.step] = self.counter.count
            self.counter.on = False
        self.losses.append(loss.item())
        if self.counter is not None:
            self.counter.on = True

    def on_log(self, trainer, row):
        self.rows.append(dict(row))


def test_deferred_steps_read_nothing_between_read_points(corpus, monkeypatch):
    counter = ReadCounter(monkeypatch)
    recorder = Rows(counter)
    trainer = _trainer(corpus, [recorder], evaluate=lambda model: 2.0, steps=24, log_interval=8, eval_interval=12)
    trainer.defer_checks = True
    trainer.fit()
    reads = recorder.reads
    # the reads made during step s show at the end of step s, after those of step s - 1's read point
    made = {s: reads[s] - reads.get(s - 1, reads[1]) for s in range(2, 25)}
    read_points = {s for s in range(1, 25) if s % 8 == 0 or s % 12 == 0}
    assert all(made[s] == 0 for s in made if s - 1 not in read_points), made
    assert [s for s in made if made[s]] == sorted(s + 1 for s in read_points if s < 24)
    # one transfer for the window's losses at each read point
    assert made[9] == 1 and made[17] == 1 and made[13] == 1


def test_cpu_steps_read_each_loss_at_once(corpus, monkeypatch):
    counter = ReadCounter(monkeypatch)
    recorder = Rows(counter)
    _trainer(corpus, [recorder], log_interval=100).fit()
    assert [recorder.reads[s] - recorder.reads[s - 1] for s in range(2, 13)] == [1] * 11  # the check, nothing more


@pytest.mark.parametrize("defer", [True, False])
def test_rows_are_the_exact_means_of_the_step_losses(corpus, defer):
    recorder = Rows()
    trainer = _trainer(corpus, [recorder], steps=14, log_interval=4)
    trainer.defer_checks = defer
    trainer.fit()
    rows = [r for r in recorder.rows if "train_loss" in r]
    windows = [recorder.losses[0:4], recorder.losses[4:8], recorder.losses[8:12], recorder.losses[12:14]]
    assert [(r["step"], r["train_loss"]) for r in rows] == [
        (step, sum(w) / len(w)) for step, w in zip((4, 8, 12, 14), windows)
    ]


def test_deferred_and_immediate_checks_train_the_same(corpus):
    runs = []
    for defer in (True, False):
        recorder = Rows()
        trainer = _trainer(corpus, [recorder], evaluate=lambda model: 2.0, steps=14, log_interval=4)
        trainer.defer_checks = defer
        trainer.fit()
        rows = [{k: v for k, v in r.items() if k != "steps_per_s"} for r in recorder.rows]
        runs.append((rows, trainer.model.state_dict()))
    (rows_a, weights_a), (rows_b, weights_b) = runs
    assert rows_a == rows_b
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


def _nan_from(step: int):
    """A forward-backward whose loss (and gradients) are NaN from the ``step``-th batch on."""
    calls = {"n": 0}

    def forward_backward(model, x, y):
        calls["n"] += 1
        _, loss = model(x, y)
        if calls["n"] >= step:
            loss = loss * float("nan")
        loss.backward()
        return loss

    return forward_backward


class Saves(Callback):
    def __init__(self):
        self.saved, self.rows = [], []

    def on_log(self, trainer, row):
        self.rows.append(row)

    def on_eval(self, trainer, dev_loss, improved):
        finite = all(torch.isfinite(p).all() for p in trainer.model.parameters())
        self.saved.append((trainer.state.step, finite, list(trainer.state.window_losses)))

    def on_train_end(self, trainer):
        self.saved.append(("end", trainer.state.step))


def test_a_deferred_loss_that_is_not_finite_is_caught_at_the_next_read_point(corpus):
    saves = Saves()
    trainer = _trainer(
        corpus, [saves], evaluate=lambda model: 2.0, forward_backward=_nan_from(6), log_interval=4, eval_interval=4
    )
    trainer.defer_checks = True
    with pytest.raises(LossNotFinite, match="loss became nan at step 6") as info:
        trainer.fit()
    assert info.value.step == 6
    assert trainer.state.step == 8  # read at step 8's row: the steps in between were taken
    assert [r["step"] for r in saves.rows] == [4, 4]  # no row of step 8, no evaluation
    assert saves.saved == [(4, True, [])]
    assert all(math.isfinite(v) for v in trainer.state.window_losses)


def test_an_immediate_loss_that_is_not_finite_updates_nothing(corpus):
    trainer = _trainer(corpus, forward_backward=_nan_from(6), log_interval=4, eval_interval=4)
    with pytest.raises(LossNotFinite, match="loss became nan at step 6"):
        trainer.fit()
    assert trainer.state.step == 5
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_a_deferred_loss_that_is_not_finite_is_caught_before_the_end_saves(corpus):
    saves = Saves()
    trainer = _trainer(corpus, [saves], forward_backward=_nan_from(11), log_interval=100, steps=12)
    trainer.defer_checks = True
    with pytest.raises(LossNotFinite, match="at step 11"):
        trainer.fit()
    assert saves.saved == []  # on_train_end never came


def test_the_public_step_checks_at_once_on_every_device(corpus):
    trainer = _trainer(corpus, forward_backward=_nan_from(2))
    trainer.defer_checks = True
    assert math.isfinite(trainer.step())
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    assert math.isnan(trainer.step()) and trainer.state.step == 1
    assert all(torch.equal(p, before[n]) for n, p in trainer.model.named_parameters())


def test_update_ratios_leave_no_row_for_a_step_whose_loss_is_not_finite(corpus):
    rows = []
    trainer = _trainer(corpus, [UpdateRatios(2)], forward_backward=_nan_from(7), log_interval=100)
    trainer.defer_checks = True
    trainer.log = rows.append
    with pytest.raises(LossNotFinite, match="at step 7"):
        trainer.fit()
    assert [r["step"] for r in rows] == [1, 3, 5]
    assert all(math.isfinite(v) for r in rows for v in r["update_ratio"].values())


def _diverging_config(words_path, **train):
    return tiny_mlp_config(
        words_path, **{"steps": 12, "batch_size": 16, "log_interval": 4, "eval_interval": 4, **train}
    )


def test_a_deferred_divergence_keeps_the_last_finite_checkpoint(tmp_path, monkeypatch):
    words = write_words(tmp_path / "words.txt", make_tiny_words())
    mlp_loss_nan_from(monkeypatch, 6)
    monkeypatch.setattr(Trainer, "defer_checks", True)
    run = tmp_path / "run"
    with pytest.raises(MakemoreError, match="loss became nan at step 6; stopped, the last good checkpoint .step 4."):
        api.train(_diverging_config(words), run, progress=False)
    meta = read_meta(run / "last.safetensors")
    assert meta["state"]["step"] == 4 and all(math.isfinite(v) for v in meta["metrics"].values())
    assert all(math.isfinite(v) for v in meta["state"]["window_losses"])
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [4, 4, 6] and rows[-1] == {"step": 6, "stopped": "loss became nan at step 6"}


def test_deferred_checks_write_the_same_run(tmp_path, monkeypatch):
    words = write_words(tmp_path / "words.txt", make_tiny_words())
    runs = []
    for defer in (None, True):
        monkeypatch.setattr(Trainer, "defer_checks", defer)
        run = tmp_path / f"run-{defer}"
        api.train(_diverging_config(words, steps=10, log_interval=3), run, progress=False)
        rows = [
            {k: v for k, v in json.loads(line).items() if k != "steps_per_s"}
            for line in (run / "metrics.jsonl").read_text().splitlines()
        ]
        runs.append((rows, RunDir(run).load("last")[1].model_state))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])


def test_ranks_agree_on_a_stop_every_few_steps_and_at_read_points(corpus, monkeypatch):
    agreed = []

    def all_sum(values, device, dtype=torch.float64):  # one rank's flag: the sum of one
        agreed.append(trainer.state.step)
        return list(values)

    monkeypatch.setattr(distributed, "all_sum", all_sum)
    world = distributed.World(0, 2, 0, 2)
    stop = StopTogether(world, 0, torch.device("cpu"), every=3)
    trainer = _trainer(corpus, [stop], steps=12, log_interval=4, eval_interval=100)
    trainer.fit()
    assert agreed == [3, 4, 6, 8, 9, 12]

    agreed.clear()
    trainer = _trainer(corpus, [stop], steps=12, log_interval=4, eval_interval=100)
    stop.pending = True  # a signal during the first steps
    with pytest.raises(TrainingInterrupted, match="interrupted at step 3"):
        trainer.fit()
    assert agreed == [3]


def test_the_distributed_step_keeps_its_counts_and_loss_on_the_device(corpus, monkeypatch):
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        trainer = _trainer(corpus)
        model = trainer.model
        step = distributed.forward_backward(distributed.World(0, 1, 0, 1), lambda x, y: model(x, y)[1], None)
        x, y = trainer.batcher.sample(16, trainer.generator)
        expected = model(x, y)[1].detach()
        counter = ReadCounter(monkeypatch)
        loss = step(model, x, y)
        assert counter.count == 0
        counter.on = False
        assert loss.dtype == torch.float32 and loss.dim() == 0 and torch.equal(loss, expected)
    finally:
        dist.destroy_process_group()


class _OnDevice:
    """A batcher of one fixed batch already on the device (so that only the trainer's step is checked)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def sample(self, batch_size, generator):
        return self.x, self.y


class _SyncsAreErrors(Callback):
    """CUDA's sync debug mode set to "error" from the start to the last step's end (before the read)."""

    def on_train_start(self, trainer):
        torch.cuda.set_sync_debug_mode("error")

    def on_step_end(self, trainer, loss):
        if trainer.state.step == trainer.config.steps:
            torch.cuda.set_sync_debug_mode("default")

    def on_close(self, trainer):
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_steps_do_not_synchronize_until_the_read_point(corpus):
    cpu = _trainer(corpus)
    x, y = cpu.batcher.sample(16, cpu.generator)
    rows = Saves()
    config = TrainConfig(steps=12, batch_size=16, log_interval=12, grad_clip=1.0)
    trainer = Trainer(cpu.model.cuda(), _OnDevice(x.cuda(), y.cuda()), config, callbacks=[_SyncsAreErrors(), rows])
    trainer.fit()  # a synchronizing CUDA call before the last step's end raises
    assert trainer.state.step == 12 and [r["step"] for r in rows.rows] == [12]
    assert math.isfinite(rows.rows[0]["train_loss"])
