"""The lectures' API: N, P and their NLL against plain-Python counting and the ngram model, a
model's split NLL, layer shapes, and the learner's own training loop against ``api.train``."""

from __future__ import annotations

import math

import pytest
import torch

from makemore import api
from makemore.errors import ConfigError, MakemoreError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def data(words_file):
    return api.load_data(api.DataConfig(input=str(words_file)))


def _pairs(words: list[str], vocab) -> list[tuple[int, int]]:
    """(previous, next) token pairs of ``words``, counted the slow and obvious way."""
    pairs = []
    for word in words:
        tokens = [0, *(vocab.chars.index(c) + 1 for c in word), 0]
        pairs.extend(zip(tokens, tokens[1:]))
    return pairs


def _mlp(words_file, **train) -> api.RunConfig:
    options = {"block_size": 3, "n_embd": 4, "n_hidden": 16}
    train = {"steps": 12, "batch_size": 16, "eval_interval": 12, "log_interval": 4, **train}
    return api.RunConfig(
        model="mlp",
        model_config=api.make_config("mlp", options),
        data=api.DataConfig(input=str(words_file)),
        train=api.default_train_config("mlp", train),
    )


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_count_bigrams_counts_every_pair_of_the_split(data, split):
    N = api.count_bigrams(data, split)
    V = data.vocab.size
    expected = torch.zeros(V, V, dtype=torch.int64)
    for i, j in _pairs(getattr(data.split, split), data.vocab):
        expected[i, j] += 1
    assert N.dtype == torch.int64 and torch.equal(N, expected)


def test_bigram_probs_is_add_k_with_uniform_empty_rows():
    counts = torch.tensor([[1, 3, 0], [0, 0, 0], [2, 0, 2]])
    P = api.bigram_probs(counts, k=0.5)
    assert torch.allclose(P[0], torch.tensor([1.5, 3.5, 0.5]) / 5.5)
    assert torch.allclose(P[1], torch.full((3,), 1 / 3))
    P0 = api.bigram_probs(counts, k=0.0)
    assert torch.allclose(P0[0], torch.tensor([0.25, 0.75, 0.0])) and torch.allclose(P0[1], torch.full((3,), 1 / 3))
    assert torch.allclose(P0.sum(1), torch.ones(3))


def test_bigram_nll_is_the_mean_over_pairs_and_inf_for_an_impossible_pair():
    counts = torch.tensor([[1, 3, 0], [0, 0, 0], [2, 0, 2]])
    P = api.bigram_probs(counts, k=1.0)
    expected = -(1 * math.log(P[0, 0]) + 3 * math.log(P[0, 1]) + 2 * math.log(P[2, 0]) + 2 * math.log(P[2, 2])) / 8
    assert api.bigram_nll(P, counts) == pytest.approx(expected, rel=1e-6)
    unseen = torch.tensor([[0, 0, 1], [0, 0, 0], [0, 0, 0]])
    assert api.bigram_nll(api.bigram_probs(counts, k=0.0), unseen) == math.inf


def test_bigram_nll_equals_the_ngram_run_and_split_nll(data, words_file, tmp_path):
    config = api.RunConfig(
        model="ngram",
        model_config=api.make_config("ngram", {"order": 2, "k": 0.5}),
        data=api.DataConfig(input=str(words_file)),
    )
    api.train(config, tmp_path / "run", progress=False)
    run = api.load_run(tmp_path / "run")
    reported = api.evaluate(run)
    P = api.bigram_probs(api.count_bigrams(data), k=0.5)
    model = api.new_model(config, data)  # a count model comes fitted
    for split in ("train", "dev", "test"):
        ours = api.bigram_nll(P, api.count_bigrams(data, split))
        assert ours == pytest.approx(reported[split], abs=1e-6)
        assert api.split_nll(model, data, split) == pytest.approx(reported[split], abs=1e-6)


def test_bad_arguments_name_what_is_wrong(data):
    with pytest.raises(ConfigError, match="split"):
        api.count_bigrams(data, "validation")
    with pytest.raises(ConfigError, match="k"):
        api.bigram_probs(torch.zeros(3, 3), k=-1)
    with pytest.raises(MakemoreError, match="square"):
        api.bigram_probs(torch.zeros(3, 4))
    with pytest.raises(MakemoreError, match="differ in shape"):
        api.bigram_nll(torch.ones(3, 3), torch.ones(2, 2))
    with pytest.raises(MakemoreError, match="no pairs"):
        api.bigram_nll(torch.ones(3, 3), torch.zeros(3, 3))


def test_the_learners_loop_takes_the_steps_train_takes(data, words_file, tmp_path):
    config = _mlp(words_file)
    api.train(config, tmp_path / "run", progress=False)
    trained = api.load_run(tmp_path / "run", "last").model.state_dict()

    model = api.new_model(config, data)
    trainer = api.new_trainer(config, model, data)
    losses = [trainer.step() for _ in range(config.train.steps)]
    assert trainer.state.step == config.train.steps and all(math.isfinite(v) for v in losses)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, trained[name], rtol=1e-5, atol=1e-6, msg=name)


def test_new_model_starts_where_train_starts_and_split_nll_keeps_the_mode(data, words_file):
    config = _mlp(words_file)
    a, b = api.new_model(config, data), api.new_model(config, data)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert a.training
    nll = api.split_nll(a, data, "dev")
    assert a.training and nll == pytest.approx(api.split_nll(b, data, "dev"))
    assert 0 < nll < 2 * math.log(data.vocab.size)  # an untrained model, near uniform


def test_a_count_model_takes_no_steps(data, words_file):
    config = api.RunConfig(model="ngram", data=api.DataConfig(input=str(words_file)))
    with pytest.raises(MakemoreError, match="counting"):
        api.new_trainer(config, api.new_model(config, data), data)


def test_layer_shapes_follow_the_batch_through_the_layers(data, words_file):
    model = api.new_model(_mlp(words_file), data)
    x = torch.zeros(5, 3, dtype=torch.long)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    shapes = api.layer_shapes(model, x)
    assert shapes == [
        ("C", "Embedding", (5, 3, 4)),
        ("hidden.0", "Linear", (5, 16)),
        ("hidden.1", "Tanh", (5, 16)),
        ("out", "Linear", (5, data.vocab.size)),
    ]
    assert model.training and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
