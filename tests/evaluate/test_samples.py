"""Sample quality beyond NLL (``api.sample_metrics``): cases with known answers (a model that only
repeats training items, a model whose length distribution is known), and every metric against a
plain-Python computation over the same items."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from conftest import labelled_pairs, make_tiny_words, write_words
from makemore import api
from makemore.data import itemsets
from makemore.evaluate import samples

pytestmark = pytest.mark.usefixtures("one_thread")


def count_run(root, name: str, items: list[str], order: int, k: float, labelled: bool = False) -> api.Run:
    """A count n-gram of ``order`` with add-``k`` smoothing trained on ``items`` (lines of a file)."""
    path = write_words(root / f"{name}.txt", items)
    config = api.RunConfig(model="ngram", model_config=api.make_config("ngram", {"order": order, "k": k}))
    config.data = api.DataConfig(input=str(path), labelled=labelled)
    api.train(config, root / name, progress=False)
    return api.load_run(root / name)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample_metrics")
    pairs = labelled_pairs(200, 1, "abcd", "wxyz")
    return {
        # after its first character each item is determined: it can only repeat a training item
        "repeats": count_run(root, "repeats", ["ab", "cd", "ef"] * 10, order=2, k=0),
        # every token 1/3 (a, b, the end) whatever the context: lengths 1 + Geometric(1/3)
        "unigram": count_run(root, "unigram", ["ab", "ba"] * 10, order=1, k=0),
        "trigram": count_run(root, "trigram", make_tiny_words(300), order=3, k=0.5),
        "labelled": count_run(root, "labelled", [f"{label}\t{item}" for label, item in pairs], 2, 0.1, True),
    }


def reference(run: api.Run, items: list[str]) -> dict:
    """The metrics of ``items`` computed with sets, Counters and ``api.score``: no hashing, no tensors."""
    split = api.training_data(run).split
    n = len(items)
    share = lambda known: sum(item in known for item in items) / n  # noqa: E731
    everything = set(split.train) | set(split.dev) | set(split.test)

    def tv(p: Counter, q: Counter) -> float:
        total_p, total_q = sum(p.values()), sum(q.values())
        return 0.5 * sum(abs(p[key] / total_p - q[key] / total_q) for key in set(p) | set(q))

    scores = api.score(run, items)
    return {
        "unique": len(set(items)) / n,
        "in_train": share(set(split.train)),
        "in_dev": share(set(split.dev)),
        "in_test": share(set(split.test)),
        "new": sum(item not in everything for item in items) / n,
        "length_tv": tv(Counter(map(len, items)), Counter(map(len, split.train))),
        "char_tv": tv(Counter("".join(items)), Counter("".join(split.train))),
        "mean_nll": sum(s.nll * (len(s.word) + 1) for s in scores) / sum(len(item) + 1 for item in items),
    }


def test_a_model_that_only_repeats_training_items_has_novelty_zero(runs):
    run = runs["repeats"]
    m = api.sample_metrics(run, num=300, seed=4)
    items = api.sample(run, api.SampleConfig(num=300, seed=4))
    assert set(items) == {"ab", "cd", "ef"}  # each of the three, nothing else
    assert (m.num, m.seed, m.unique, m.in_train, m.new, m.length_tv) == (300, 4, 3 / 300, 1.0, 0.0, 0.0)
    split = api.training_data(run).split
    assert m.in_dev == sum(item in split.dev for item in items) / 300  # every split holds some of the three
    assert m.in_test == sum(item in split.test for item in items) / 300
    # each item costs only its first character: -log(its share of the training items), over 3 targets
    first = Counter(split.train)
    nll = sum(-math.log(first[item] / len(split.train)) for item in items) / (3 * len(items))
    assert m.mean_nll == pytest.approx(nll, rel=1e-6)  # the model's log-probabilities are float32
    chars = Counter("".join(items))
    train_chars = Counter("".join(split.train))
    expected_tv = 0.5 * sum(abs(chars[c] / 600 - train_chars[c] / (2 * len(split.train))) for c in "abcdef")
    assert m.char_tv == pytest.approx(expected_tv, abs=1e-12)


def test_a_model_with_a_known_length_distribution(runs):
    run, num = runs["unigram"], 20_000
    m = api.sample_metrics(run, num=num, seed=1)
    items = api.sample(run, api.SampleConfig(num=num, seed=1))
    lengths = Counter(map(len, items))
    # no empty item (the end is masked first), then the end with probability 1/3 at each step, cut at 16
    for length in range(1, 6):
        assert lengths[length] / num == pytest.approx((2 / 3) ** (length - 1) / 3, abs=0.012)
    assert max(lengths) <= 16
    # the training items all have 2 characters: the distance is the share of the others, exactly
    assert m.length_tv == pytest.approx(1 - lengths[2] / num, abs=1e-12)
    assert m.length_tv == pytest.approx(1 - 2 / 9, abs=0.012)
    share_a = Counter("".join(items))["a"] / sum(lengths[n] * n for n in lengths)
    assert m.char_tv == pytest.approx(abs(share_a - 0.5), abs=1e-12) and m.char_tv < 0.01  # a and b half each
    assert m.mean_nll == pytest.approx(math.log(3), rel=1e-6)  # every target, end included, has p = 1/3


def test_every_metric_equals_a_plain_python_computation_of_the_same_items(runs):
    run = runs["trigram"]
    m = api.sample_metrics(run, num=400, seed=7)
    items = api.sample(run, api.SampleConfig(num=400, seed=7))  # the items of makemore sample -n 400 --seed 7
    expected = reference(run, items)
    got = m.as_dict()
    assert got.pop("num") == 400 and got.pop("seed") == 7 and set(got) == set(expected)
    for name, value in expected.items():  # shares and distances exact; the NLL as float32 log-probabilities
        assert got[name] == pytest.approx(value, rel=1e-6 if name == "mean_nll" else 1e-12, abs=1e-12), name
    assert 0 < m.new < 1 and 0 < m.in_train < 1 and m.unique < 1  # a case where every count matters


def test_the_same_seed_gives_the_same_metrics_and_another_seed_other_items(runs):
    run = runs["trigram"]
    first = api.sample_metrics(run, num=200, seed=11)
    assert api.sample_metrics(run, num=200, seed=11) == first
    assert api.sample_metrics(run, num=200, seed=12) != first
    assert samples.metrics_of(run, api.sample(run, api.SampleConfig(num=200, seed=11)), seed=11) == first


def test_hash_collisions_never_make_items_equal(runs, monkeypatch):
    run = runs["trigram"]
    items = api.sample(run, api.SampleConfig(num=60, seed=3))
    honest = samples.metrics_of(run, items)
    collide = lambda corpus, with_labels=False: corpus.lengths * 0  # noqa: E731 - every item the same hash
    monkeypatch.setattr(itemsets, "item_hashes", collide)
    monkeypatch.setattr(samples, "item_hashes", collide)
    assert samples.metrics_of(run, items) == honest


def test_repeated_training_items_and_a_split_without_items_are_counted_right(runs):
    run = runs["trigram"]
    data = api.training_data(run)
    train = data.split.train
    items = [train[0]] * 3 + [train[1], "abba"]  # "abba": in no split of the tiny words
    assert "abba" not in set(train) | set(data.split.dev) | set(data.split.test)
    m = samples.metrics_of(run, items, data=data)
    assert (m.unique, m.in_train, m.new) == (3 / 5, 4 / 5, 1 / 5)
    empty = api.EncodedCorpus.from_words([], run.vocab)
    query = api.EncodedCorpus.from_words(items, run.vocab)
    found = samples.in_items(query, itemsets.item_hashes(query), itemsets.KnownItems(empty, run.vocab))
    assert not found.any()


def test_a_labelled_run_samples_follow_the_label_prior_and_are_scored_under_it(runs):
    run = runs["labelled"]
    m = api.sample_metrics(run, num=40, seed=2)
    items = api.sample(run, api.SampleConfig(num=40, seed=2))
    prior = {label: count / sum(run.label_counts.values()) for label, count in run.label_counts.items()}
    total = 0.0
    for item in items:  # -log sum_l P(l) P(item | l), from score's per-label NLLs
        per_label = {label: api.score(run, [item], label=label)[0].nll for label in prior}
        total -= math.log(sum(p * math.exp(-per_label[label] * (len(item) + 1)) for label, p in prior.items()))
    assert m.mean_nll == pytest.approx(total / sum(len(item) + 1 for item in items), rel=1e-6)
    assert m.unique == len(set(items)) / 40 and 0 <= m.new <= 1


def test_bad_requests_raise_one_line_errors(runs):
    run = runs["repeats"]
    with pytest.raises(api.ConfigError, match=r"^EvalConfig\.samples: must be an integer from 1 to 1000000, got 0"):
        api.sample_metrics(run, num=0)
    with pytest.raises(api.ConfigError, match=r"^EvalConfig\.seed: "):
        api.sample_metrics(run, num=5, seed=-1)
    with pytest.raises(api.MakemoreError, match="no items to measure"):
        samples.metrics_of(run, [])


def test_total_variation_of_counts():
    import torch

    assert samples.total_variation(torch.tensor([1, 1]), torch.tensor([1, 1])) == 0
    assert samples.total_variation(torch.tensor([2, 0]), torch.tensor([0, 0, 5])) == 1
    assert samples.total_variation(torch.tensor([3, 1]), torch.tensor([1, 1])) == pytest.approx(0.25)
