"""The Python API on small real runs: load, score, evaluate, sample, train/overwrite/resume."""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from conftest import (
    TRAINED_RUN_EVAL_INTERVAL,
    TRAINED_RUN_LOG_INTERVAL,
    TRAINED_RUN_STEPS,
    tiny_mlp_config,
    write_words,
)
from makemore import api
from makemore.data.corpus import EncodedCorpus, Vocab, split_words
from makemore.errors import MakemoreError
from makemore.models import build_model
from makemore.store.checkpoint import load_checkpoint, save_checkpoint


def direct_log_probs(model, vocab, words):
    """Log-probabilities of every target, computed straight from the model's windows."""
    X, Y = EncodedCorpus.from_words(words, vocab).windows(model.block_size)
    with torch.no_grad():
        logits, _ = model(X)
    return F.log_softmax(logits.double(), dim=-1).gather(1, Y[:, None]).squeeze(1)


# -- load_run -------------------------------------------------------------------------------


def test_load_run_best_and_last(trained_run):
    best = api.load_run(trained_run.out_dir)
    last = api.load_run(trained_run.out_dir, "last")
    assert best.path.name == "best.safetensors"
    assert last.path.name == "last.safetensors"
    assert last.meta["state"]["step"] == TRAINED_RUN_STEPS
    assert best.meta["state"]["step"] == trained_run.metrics["best_step"]
    assert trained_run.metrics["steps"] == TRAINED_RUN_STEPS
    for run in (best, last):
        assert not run.model.training
        assert run.config.model == "mlp"
        assert run.config.model_config.n_embd == 4 and run.config.model_config.n_hidden == 16
        assert run.vocab == Vocab.from_words(trained_run.words)
        assert run.model_limit is None
        assert run.meta["data"]["items"] == len(trained_run.words)
        assert run.meta["data"]["split_sizes"] == [240, 30, 30]
        assert run.meta["data"]["longest_item"] == max(map(len, trained_run.words))
        assert run.meta["model"]["parameters"] == sum(p.numel() for p in run.model.parameters())


def test_run_directory_contents(trained_run):
    names = sorted(p.name for p in trained_run.out_dir.iterdir())
    assert names == ["best.safetensors", "last.safetensors", "metrics.jsonl", "run.json"]
    last_meta = load_checkpoint(trained_run.out_dir / "last.safetensors").meta
    run_json = json.loads((trained_run.out_dir / "run.json").read_text(encoding="utf-8"))
    assert run_json == {k: v for k, v in last_meta.items() if k != "format_version"}
    rows = [json.loads(line) for line in (trained_run.out_dir / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in rows if "train_loss" in r]
    dev_steps = [r["step"] for r in rows if "dev_loss" in r]
    assert train_steps == list(range(TRAINED_RUN_LOG_INTERVAL, TRAINED_RUN_STEPS + 1, TRAINED_RUN_LOG_INTERVAL))
    assert dev_steps == list(range(TRAINED_RUN_EVAL_INTERVAL, TRAINED_RUN_STEPS + 1, TRAINED_RUN_EVAL_INTERVAL))
    assert all(math.isfinite(r.get("train_loss", r.get("dev_loss"))) for r in rows)


def test_load_run_falls_back_to_last(trained_run, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(trained_run.out_dir, out)
    (out / "best.safetensors").unlink()
    run = api.load_run(out)
    assert run.path.name == "last.safetensors"


def test_load_run_errors(trained_run, tmp_path):
    with pytest.raises(MakemoreError, match="no such run directory"):
        api.load_run(tmp_path / "missing")
    with pytest.raises(MakemoreError, match="no checkpoint"):
        api.load_run(tmp_path)
    (tmp_path / "last.safetensors").write_bytes(b"not a checkpoint at all")
    with pytest.raises(MakemoreError, match="not a makemore checkpoint"):
        api.load_run(tmp_path)


def test_load_run_weights_not_matching_meta(trained_run, tmp_path):
    ckpt = load_checkpoint(trained_run.out_dir / "best.safetensors")
    state = dict(ckpt.model_state)
    state["out.weight"] = torch.zeros(3, 3)
    save_checkpoint(tmp_path / "best.safetensors", model_state=state, meta=ckpt.meta)
    with pytest.raises(MakemoreError, match="do not match"):
        api.load_run(tmp_path)


def test_load_run_checkpoint_without_run_description(tmp_path):
    save_checkpoint(tmp_path / "best.safetensors", model_state={"w": torch.zeros(2)}, meta={"something": "else"})
    with pytest.raises(MakemoreError):
        api.load_run(tmp_path)


# -- score ----------------------------------------------------------------------------------


SCORE_WORDS = ["abc", "a.b", "e é-d", "a", "dd  e"]


def test_score_entries(trained_run):
    run = api.load_run(trained_run.out_dir)
    boundary = run.vocab.boundary_symbol
    results = api.score(run, SCORE_WORDS)
    assert [r.word for r in results] == SCORE_WORDS
    for word, result in zip(SCORE_WORDS, results):
        assert len(result.chars) == len(word) + 1
        assert [c.char for c in result.chars] == [*word, boundary]
        # the context is the model's own input window (block_size 5), boundary-padded
        X, _ = EncodedCorpus.from_words([word], run.vocab).windows(run.model.block_size)
        labels = run.vocab.labels()
        assert [c.context for c in result.chars] == [tuple(labels[t] for t in row) for row in X.tolist()]
        logprobs = [c.logprob for c in result.chars]
        assert result.nll == pytest.approx(-sum(logprobs) / len(logprobs), rel=1e-12)
        for c in result.chars:
            assert c.logprob < 0
            assert c.prob == pytest.approx(math.exp(c.logprob), rel=1e-12)
        direct = direct_log_probs(run.model, run.vocab, [word])
        assert logprobs == pytest.approx(direct.tolist(), abs=1e-5)


def test_score_contexts_spelled_out(trained_run):
    run = api.load_run(trained_run.out_dir)
    b = run.vocab.boundary_symbol
    assert run.model.block_size == 5
    [result] = api.score(run, ["abc"])
    assert [(c.context, c.char) for c in result.chars] == [
        ((b, b, b, b, b), "a"),
        ((b, b, b, b, "a"), "b"),
        ((b, b, b, "a", "b"), "c"),
        ((b, b, "a", "b", "c"), b),
    ]


def test_score_contexts_of_a_sequence_model_are_whole_prefixes(tmp_path):
    words = write_words(tmp_path / "words.txt", ["abcabc", "cab", "bca", "abba"] * 8)
    config = api.RunConfig(
        model="gru",
        model_config=api.make_config("gru", {"n_embd": 4, "n_hidden": 8}),
        data=api.DataConfig(input=str(words)),
        train=api.default_train_config("gru", {"steps": 2, "batch_size": 4, "eval_interval": 2}),
    )
    api.train(config, tmp_path / "run", progress=False)
    run = api.load_run(tmp_path / "run")
    b = run.vocab.boundary_symbol
    [result] = api.score(run, ["abca"])
    assert [c.context for c in result.chars] == [
        (b,),
        (b, "a"),
        (b, "a", "b"),
        (b, "a", "b", "c"),
        (b, "a", "b", "c", "a"),
    ]
    assert [c.char for c in result.chars] == ["a", "b", "c", "a", b]


def test_score_batch_equals_single(trained_run):
    run = api.load_run(trained_run.out_dir)
    together = api.score(run, SCORE_WORDS)
    for word, result in zip(SCORE_WORDS, together):
        assert api.score(run, [word])[0].nll == pytest.approx(result.nll, rel=1e-6)


def test_score_errors(trained_run):
    run = api.load_run(trained_run.out_dir)
    with pytest.raises(MakemoreError, match="'z'"):
        api.score(run, ["abc", "abz"])
    with pytest.raises(MakemoreError, match="empty"):
        api.score(run, ["abc", ""])


def test_score_word_with_newline_is_rejected(trained_run):
    run = api.load_run(trained_run.out_dir)
    with pytest.raises(MakemoreError):
        api.score(run, ["ab\ncd"])


# -- evaluate -------------------------------------------------------------------------------


def test_evaluate_matches_training_metrics_and_direct_nll(trained_run):
    run = api.load_run(trained_run.out_dir)
    result = api.evaluate(run)
    assert list(result) == ["train", "dev", "test"]
    assert all(math.isfinite(v) and 0 < v < 10 for v in result.values())
    assert result["dev"] == trained_run.metrics["dev_loss"]
    assert result["train"] == trained_run.metrics["train_loss"]
    split = split_words(trained_run.words)
    for name in ("train", "dev", "test"):
        direct = -direct_log_probs(run.model, run.vocab, getattr(split, name)).mean().item()
        assert result[name] == pytest.approx(direct, abs=1e-5)
    # a model that learned something beats the uniform distribution on the training split
    assert result["train"] < math.log(run.vocab.size)


def test_checkpoint_round_trip_matches_in_memory_model(trained_run, tmp_path):
    trained = api.load_run(trained_run.out_dir)
    torch.manual_seed(123)
    model = build_model("mlp", trained.config.model_config, trained.vocab.size).eval()
    in_memory = api.Run(model=model, description=trained.description, path=tmp_path)
    out = tmp_path / "copy"
    out.mkdir()
    save_checkpoint(out / "best.safetensors", model_state=model.state_dict(), meta=trained.meta)
    loaded = api.load_run(out)

    assert api.evaluate(loaded) == api.evaluate(in_memory)
    assert api.evaluate(loaded) != api.evaluate(trained)  # really a different model
    assert [r.nll for r in api.score(loaded, SCORE_WORDS)] == [r.nll for r in api.score(in_memory, SCORE_WORDS)]
    config = api.SampleConfig(num=20, seed=5)
    assert api.sample(loaded, config) == api.sample(in_memory, config)


# -- sample ---------------------------------------------------------------------------------


def test_sample_deterministic(trained_run):
    run = api.load_run(trained_run.out_dir)
    first = api.sample(run, api.SampleConfig(num=20, seed=1))
    assert len(first) == 20
    assert api.sample(run, api.SampleConfig(num=20, seed=1)) == first
    assert api.sample(run, api.SampleConfig(num=20, seed=2)) != first
    # the default length bound is max(16, 2 x the longest training item)
    bound = max(16, 2 * max(map(len, trained_run.words)))
    assert all(len(s) <= bound and set(s) <= set(run.vocab.chars) for s in first)


def test_sample_new_only_and_unique(trained_run):
    run = api.load_run(trained_run.out_dir)
    known = set(trained_run.words)
    new = api.sample(run, api.SampleConfig(num=30, seed=0, new_only=True, unique=True))
    assert len(new) == len(set(new)) == 30
    assert not set(new) & known
    prefixed = api.sample(run, api.SampleConfig(num=10, seed=0, prefix="a.", max_len=4))
    assert all(s.startswith("a.") and len(s) <= 4 for s in prefixed)


# -- train ----------------------------------------------------------------------------------


def checkpoint_tensors(path):
    return load_checkpoint(path).model_state


def assert_same_tensors(a, b):
    assert set(a) == set(b)
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_train_refuses_existing_run_and_overwrite_reproduces_it(tmp_path, tiny_words):
    words = write_words(tmp_path / "words.txt", tiny_words)
    out = tmp_path / "run"
    config = tiny_mlp_config(words, steps=4, eval_interval=2, log_interval=2)
    api.train(config, out, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(MakemoreError, match="already holds a run"):
        api.train(config, out, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # a bad input is found before the old run is removed
    bad = tiny_mlp_config(tmp_path / "missing.txt", steps=10)
    with pytest.raises(MakemoreError, match="no such file"):
        api.train(bad, out, progress=False, overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # overwriting with the same config and seed gives the same weights (deterministic on CPU)
    api.train(config, out, progress=False, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == sorted(before)
    for name in ("best.safetensors", "last.safetensors"):
        assert_same_tensors(checkpoint_tensors(out / name), load_checkpoint_bytes(before[name], tmp_path))


@pytest.mark.parametrize(
    "model, options",
    [
        ("lstm", {"n_embd": 8, "n_hidden": 16, "n_layers": 2, "dropout": 0.2}),  # oneDNN's kernel on CPU
        ("lstm", {"n_embd": 8, "n_hidden": 16, "n_layers": 2, "dropout": 0.2, "weight_dropout": 0.3}),
        ("gru", {"n_embd": 8, "n_hidden": 16, "dropout": 0.2}),
        ("transformer", {"n_layer": 2, "n_head": 2, "n_embd": 8, "dropout": 0.1}),
    ],
)
def test_sequence_model_training_is_deterministic_given_the_seed(tmp_path, words_file, model, options):
    weights = []
    for run in ("a", "b"):
        config = api.RunConfig(
            model=model,
            model_config=api.make_config(model, options),
            data=api.DataConfig(input=str(words_file)),
            train=api.default_train_config(model, dict(steps=12, batch_size=16, eval_interval=6, log_interval=6)),
        )
        api.train(config, tmp_path / run, progress=False)
        weights.append(checkpoint_tensors(tmp_path / run / "last.safetensors"))
    assert_same_tensors(*weights)
    config.train.seed += 1  # a different seed gives different weights: the check can fail
    api.train(config, tmp_path / "c", progress=False)
    other = checkpoint_tensors(tmp_path / "c" / "last.safetensors")
    assert any(not torch.equal(other[name], weights[0][name]) for name in other)


def load_checkpoint_bytes(data: bytes, tmp_path):
    path = tmp_path / "restored.safetensors"
    path.write_bytes(data)
    return checkpoint_tensors(path)


def test_train_into_a_file_is_refused(tmp_path, words_file):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(MakemoreError, match="not a directory"):
        api.train(tiny_mlp_config(words_file, steps=2), target, progress=False)


def test_resume_continues_exactly(tmp_path, words_file):
    common = dict(eval_interval=3, log_interval=1, schedule="constant")
    straight = tmp_path / "straight"
    api.train(tiny_mlp_config(words_file, steps=6, **common), straight, progress=False)
    resumed = tmp_path / "resumed"
    api.train(tiny_mlp_config(words_file, steps=3, **common), resumed, progress=False)
    metrics = api.resume(resumed, steps=6, progress=False)
    assert metrics["steps"] == 6
    a, b = load_checkpoint(straight / "last.safetensors"), load_checkpoint(resumed / "last.safetensors")
    assert_same_tensors(a.model_state, b.model_state)
    assert a.meta["state"] == b.meta["state"]
    for pid, pstate in a.optimizer_state["state"].items():
        for key, value in pstate.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(b.optimizer_state["state"][pid][key]))

    def rows(path):
        out = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k != "steps_per_s"} for r in out]

    assert rows(straight) == rows(resumed)


def test_resume_without_checkpoint(tmp_path):
    with pytest.raises(MakemoreError, match="resume"):
        api.resume(tmp_path / "nothing", progress=False)
    assert not (tmp_path / "nothing").exists()


def test_too_few_items(tmp_path):
    words = write_words(tmp_path / "few.txt", ["ab", "cd", "ef"])
    with pytest.raises(MakemoreError, match="too few items"):
        api.train(tiny_mlp_config(words, steps=2), tmp_path / "run", progress=False)


def test_too_few_items_writes_nothing(tmp_path):
    words = write_words(tmp_path / "few.txt", ["ab", "cd", "ef"])
    with pytest.raises(MakemoreError):
        api.train(tiny_mlp_config(words, steps=2), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_bigram_trains_and_evaluate_checks_the_file(tmp_path, tiny_words):
    words = write_words(tmp_path / "words.txt", tiny_words)
    config = api.RunConfig(
        model="bigram",
        data=api.DataConfig(input=str(words)),
        train=api.default_train_config("bigram", {"steps": 10, "eval_interval": 5, "log_interval": 5}),
    )
    assert config.train.batch_size == 0 and config.train.optimizer == "sgd"  # the family's own defaults
    metrics = api.train(config, tmp_path / "run", progress=False)
    V = len(set("".join(tiny_words))) + 1
    assert metrics["steps"] == 10
    assert metrics["dev_loss"] < math.log(V) - 0.05  # better than uniform
    run = api.load_run(tmp_path / "run")
    assert run.config.model == "bigram" and run.model.W.shape == (V, V)
    assert api.evaluate(run)["dev"] == metrics["dev_loss"]
    # the run refuses to evaluate a changed training file
    write_words(words, tiny_words + ["abc"])
    with pytest.raises(MakemoreError, match="changed"):
        api.evaluate(run)


def test_ngram_nll_equals_direct_count(tmp_path, tiny_words):
    words = write_words(tmp_path / "words.txt", tiny_words)
    config = api.RunConfig(
        model="ngram",
        model_config=api.make_config("ngram", {"order": 2, "k": 1.0}),
        data=api.DataConfig(input=str(words)),
    )
    metrics = api.train(config, tmp_path / "run", progress=False)
    split = split_words(tiny_words)
    chars = sorted(set("".join(tiny_words)))
    stoi = {c: i + 1 for i, c in enumerate(chars)}
    V = len(chars) + 1

    def pairs(ws):
        for w in ws:
            ids = [0] + [stoi[c] for c in w] + [0]
            yield from zip(ids, ids[1:])

    counts = Counter(pairs(split.train))
    totals = Counter(a for a, _ in pairs(split.train))

    def nll(ws):
        logps = [math.log((counts[(a, b)] + 1) / (totals[a] + V)) for a, b in pairs(ws)]
        return -sum(logps) / len(logps)

    assert metrics["train_loss"] == pytest.approx(nll(split.train), rel=1e-6)
    assert metrics["dev_loss"] == pytest.approx(nll(split.dev), rel=1e-6)
    result = api.evaluate(api.load_run(tmp_path / "run"))
    assert result["test"] == pytest.approx(nll(split.test), rel=1e-6)
    assert result["dev"] == metrics["dev_loss"]


def test_manual_backward_training_matches_autograd(tmp_path, words_file):
    """``--backward manual`` trains a bn-mlp as autograd does: loss within 1e-5 at each of 20 steps."""
    losses, metrics = {}, {}
    for backward in ("autograd", "manual"):
        train = dict(
            steps=20,
            batch_size=32,
            optimizer="sgd",
            lr=0.1,
            schedule="constant",
            weight_decay=0.0,
            eval_interval=10,
            log_interval=1,
            backward=backward,
        )
        config = api.RunConfig(
            model="bn-mlp",
            model_config=api.make_config("bn-mlp", {"n_embd": 4, "n_hidden": 16}),
            data=api.DataConfig(input=str(words_file)),
            train=api.default_train_config("bn-mlp", train),
        )
        metrics[backward] = api.train(config, tmp_path / backward, progress=False)
        rows = [json.loads(line) for line in (tmp_path / backward / "metrics.jsonl").read_text().splitlines()]
        losses[backward] = [r["train_loss"] for r in rows if "train_loss" in r]
    assert len(losses["manual"]) == len(losses["autograd"]) == 20
    assert max(abs(a - b) for a, b in zip(losses["manual"], losses["autograd"])) <= 1e-5
    assert metrics["manual"]["dev_loss"] == pytest.approx(metrics["autograd"]["dev_loss"], abs=1e-5)
    assert losses["manual"][-1] < losses["manual"][0] - 0.01  # it trains


@pytest.mark.parametrize("options", [dict(n_layers=2), dict(dropout=0.1)])
def test_manual_backward_refused_before_anything_is_written(tmp_path, words_file, options):
    config = api.RunConfig(
        model="bn-mlp",
        model_config=api.make_config("bn-mlp", dict(n_embd=4, n_hidden=8, **options)),
        data=api.DataConfig(input=str(words_file)),
        train=api.TrainConfig(steps=5, backward="manual"),
    )
    with pytest.raises(MakemoreError, match="backward: 'manual' is not possible: .*n_layers 1 and no dropout"):
        api.train(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
