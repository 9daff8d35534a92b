"""train(): the evaluations of a big corpus stay bounded (a seeded dev sample during training, a
bounded train sample in the report) while the report's dev NLL is the whole dev split."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import make_tiny_words, write_words
from makemore import api
from makemore.data.datasets import load_data
from makemore.evaluate.scoring import evaluate_nll
from makemore.store.runs import load_run
from makemore.train import execution


def _config(path, **train) -> api.RunConfig:
    return api.RunConfig(
        model="mlp",
        model_config=api.make_config("mlp", {"n_embd": 4, "n_hidden": 16}),
        data=api.DataConfig(input=str(path)),
        train=api.TrainConfig(steps=4, batch_size=16, eval_interval=2, log_interval=1, seed=5, threads=1, **train),
    )


def test_bounded_sample_is_seeded_in_corpus_order_and_whole_when_small():
    words = list(dict.fromkeys(make_tiny_words(200, seed=1)))[:50]  # distinct: a word names its position
    vocab = api.Vocab.from_words(words)
    corpus = api.EncodedCorpus.from_words(words, vocab)
    assert execution.bounded_sample(corpus, 50, seed=0) is corpus
    picked = execution.bounded_sample(corpus, 20, seed=0).decode(vocab)
    positions = [words.index(w) for w in picked]
    assert len(set(positions)) == 20 and positions == sorted(positions)
    assert execution.bounded_sample(corpus, 20, seed=0).decode(vocab) == picked
    assert execution.bounded_sample(corpus, 20, seed=1).decode(vocab) != picked


def test_a_big_dev_split_is_watched_on_a_sample_and_reported_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(execution, "WATCH_ITEMS", 12)
    monkeypatch.setattr(execution, "REPORT_ITEMS", 30)
    path = write_words(tmp_path / "words.txt", make_tiny_words(400, seed=3))
    metrics = api.train(_config(path), tmp_path / "run", progress=False)
    data = load_data(api.DataConfig(input=str(path)))
    dev, train = data.corpus("dev"), data.corpus("train")
    assert len(dev) == 40 and metrics["train_loss_items"] == 30 and metrics["train_items"] == len(train) == 320

    best = load_run(tmp_path / "run", "best").model
    watched = execution.bounded_sample(dev, 12, seed=5)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    last_dev = [r["dev_loss"] for r in rows if "dev_loss" in r][-1]
    final = load_run(tmp_path / "run", "last").model
    # the evaluations during training read the seeded sample of 12 dev items
    assert last_dev == pytest.approx(evaluate_nll(final, best.batcher(watched)), rel=1e-6)
    # the report: the whole dev split and a seeded sample of 30 train items
    assert metrics["dev_loss"] == pytest.approx(evaluate_nll(best, best.batcher(dev)), rel=1e-6)
    report = execution.bounded_sample(train, 30, seed=5)
    assert metrics["train_loss"] == pytest.approx(evaluate_nll(best, best.batcher(report)), rel=1e-6)
    assert not torch.isclose(torch.tensor(metrics["dev_loss"]), torch.tensor(last_dev), rtol=1e-4)


def test_the_report_names_its_train_sample(tmp_path, monkeypatch, capsys):
    from conftest import run_cli

    monkeypatch.setattr(execution, "REPORT_ITEMS", 30)
    path = write_words(tmp_path / "words.txt", make_tiny_words(400, seed=3))
    code, out, err = run_cli(
        capsys, "train", "-i", path, "-o", tmp_path / "run", "--model", "mlp", "--steps", 2, "-q", "--threads", 1
    )
    assert code == 0, err
    assert "train NLL" in out and "(a sample of 30 of 320 items)" in out
