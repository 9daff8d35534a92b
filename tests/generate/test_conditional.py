"""Conditional models: trained on labels, they generate, score and classify by label."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import labelled_pairs
from conftest import run_cli as cli
from makemore import api
from makemore.errors import ConfigError, MakemoreError
from makemore.evaluate.scoring import classify, item_log_likelihoods, item_nlls
from makemore.generate.conditional import label_distribution, parse_label

LOW, HIGH = "abcdefghijklm", "nopqrstuvwxyz"
FAMILIES = {  # small and quick; each family reads the label its own way
    "ngram": dict(model_config={"order": 2, "k": 0.01}),
    "bigram": dict(train=dict(steps=300, batch_size=256, lr=0.3)),
    "mlp": dict(model_config={"block_size": 3, "n_embd": 8, "n_hidden": 48}, train=dict(steps=300, batch_size=64)),
    "lstm": dict(model_config={"n_embd": 16, "n_hidden": 32, "dropout": 0.0}, train=dict(steps=150, batch_size=32)),
    "transformer": dict(
        model_config={"n_embd": 16, "n_head": 2, "n_layer": 1, "dropout": 0.0},
        train=dict(steps=250, batch_size=32, lr=3e-3),
    ),
}


def halves(n: int, seed: int) -> list[tuple[str, str]]:
    """(label, item) pairs: label 'lo' items use a-m only, 'hi' items n-z only."""
    return labelled_pairs(n, seed, LOW, HIGH)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("conditional")
    path = root / "halves.tsv"
    path.write_text("".join(f"{label}\t{item}\n" for label, item in halves(400, 0)))
    out = {}
    for family, options in FAMILIES.items():
        config = api.RunConfig(model=family, data=api.DataConfig(input=str(path), labelled=True))
        if "model_config" in options:
            config.model_config = api.with_options(family, config.model_config, options["model_config"])
        train = dict(eval_interval=10_000, log_interval=50, seed=1, **options.get("train", {}))
        config.train = api.TrainConfig(**{**{"steps": 100}, **train})
        api.train(config, root / family, progress=False)
        out[family] = api.load_run(root / family)
    exact = api.RunConfig(model="ngram", model_config=api.make_config("ngram", {"order": 2, "k": 0.0}))
    exact.data = api.DataConfig(input=str(path), labelled=True)
    api.train(exact, root / "exact", progress=False)  # no smoothing: a label's bigrams only
    out["exact"] = api.load_run(root / "exact")
    return out


def _in_half(items: list[str], letters: str) -> float:
    text = "".join(items)
    return sum(c in letters for c in text) / len(text)


@pytest.mark.parametrize("family", FAMILIES)
def test_each_label_samples_its_own_letters(runs, family):
    run = runs[family]
    lo = api.sample(run, api.SampleConfig(num=200, seed=3, min_len=2, label=("lo",)))
    hi = api.sample(run, api.SampleConfig(num=200, seed=3, min_len=2, label=("hi",)))
    assert _in_half(lo, LOW) > 0.9 and _in_half(hi, HIGH) > 0.9  # chance: 0.5
    # the first character is drawn right after the label token
    assert _in_half([w[0] for w in lo], LOW) > 0.9 and _in_half([w[0] for w in hi], HIGH) > 0.9
    mixed = api.sample(run, api.SampleConfig(num=400, seed=4, min_len=2, label=("lo=3", "hi=1")))
    share = sum(w[0] in LOW for w in mixed) / len(mixed)
    assert 0.65 < share < 0.85  # about 3 of 4 start in a-m


def test_a_count_model_without_smoothing_samples_only_the_labels_letters(runs):
    run = runs["exact"]
    for label, letters in (("lo", LOW), ("hi", HIGH)):
        items = api.sample(run, api.SampleConfig(num=300, seed=1, label=(label,)))
        assert set("".join(items)) <= set(letters)
    # an item no label can make has the prior as its posterior
    [result] = classify(run.model, run.vocab, run.label_counts, ["az"])
    prior = label_distribution(run.vocab, run.label_counts).tolist()
    assert [p for _, p in sorted(result.posteriors)] == pytest.approx(prior) and result.nll == math.inf


def test_unconstrained_labelled_samples_follow_the_training_mix(runs):
    run = runs["mlp"]
    items = api.sample(run, api.SampleConfig(num=600, seed=5, min_len=2))
    share = sum(w[0] in LOW for w in items) / len(items)
    expected = run.label_counts["lo"] / sum(run.label_counts.values())
    assert abs(share - expected) < 0.06
    [scored] = api.Sampler.of(run, api.SampleConfig(num=1, seed=5, label=("lo",))).scored()
    prob = torch.tensor([0.0, 1.0])  # label order: hi, lo
    assert scored.nll == pytest.approx(float(item_nlls(run.model, run.vocab, [scored.item], prob)))


@pytest.mark.parametrize("family", FAMILIES)
def test_labels_round_trip_through_checkpoints(runs, family):
    run = runs[family]
    assert run.vocab.label_names == ("hi", "lo")
    assert run.model.vocab_size == len(run.vocab.chars) + 3  # boundary, 26 letters, 2 label tokens
    assert sum(run.label_counts.values()) == run.meta["data"]["split_sizes"][0]
    assert run.config.data.labelled


@pytest.mark.parametrize("family", FAMILIES)
def test_held_out_items_are_classified_by_their_letters(runs, family):
    held_out = halves(40, 99)
    results = classify(runs[family].model, runs[family].vocab, runs[family].label_counts, [w for _, w in held_out])
    assert [r.label for r in results] == [label for label, _ in held_out]
    for r in results:
        assert sum(p for _, p in r.posteriors) == pytest.approx(1.0, abs=1e-9)
        assert r.posteriors[0][1] > 0.9


def test_the_posterior_is_bayes_rule_over_the_likelihoods(runs):
    run = runs["ngram"]
    words = ["abc", "xyz", "amz"]
    prior = label_distribution(run.vocab, run.label_counts)
    lik = torch.stack([item_log_likelihoods(run.model, run.vocab, words, [label] * 3) for label in ("hi", "lo")], 1)
    joint = lik.exp() * prior  # (3, 2) exact for a count model in float64
    expected = joint / joint.sum(1, keepdim=True)
    for word, result, row in zip(words, classify(run.model, run.vocab, run.label_counts, words), expected):
        assert dict(result.posteriors) == pytest.approx(dict(zip(("hi", "lo"), row.tolist())), rel=1e-9)
        assert result.nll == pytest.approx(-math.log(float(joint[words.index(word)].sum())) / (len(word) + 1))


def test_score_with_a_label_is_the_conditional_nll(runs):
    run = runs["ngram"]
    [lo] = api.score(run, ["abc"], label="lo")
    [hi] = api.score(run, ["abc"], label="hi")
    assert lo.nll < hi.nll
    assert lo.nll == pytest.approx(-float(item_log_likelihoods(run.model, run.vocab, ["abc"], ["lo"])) / 4)
    assert lo.chars[0].context[-1] == "<lo>"  # the detail shows the label token read first
    [auto] = api.score(run, ["abc"])  # no label: the most probable one
    assert auto.nll == pytest.approx(lo.nll)


def test_an_unknown_label_is_one_line(runs, tmp_path, capsys):
    with pytest.raises(MakemoreError, match=r"^unknown label 'elf' \(labels: hi, lo\)$"):
        api.score(runs["mlp"], ["abc"], label="elf")
    run_dir = runs["mlp"].path.parent
    for args in (["score", run_dir, "--label", "elf", "abc"], ["sample", run_dir, "--label", "elf", "-o", "x.txt"]):
        code, out, err = cli(capsys, *args)
        assert (code, out, err) == (2, "", "makemore: error: unknown label 'elf' (labels: hi, lo)\n")
    assert not (tmp_path / "x.txt").exists()


def test_the_cli_samples_scores_and_classifies_by_label(runs, tmp_path, capsys):
    run_dir = runs["mlp"].path.parent
    code, out, err = cli(capsys, "sample", run_dir, "--label", "hi", "-n", "5", "--min-len", "2", "--seed", "2")
    assert code == 0 and err == ""
    assert out.splitlines() == api.sample(runs["mlp"], api.SampleConfig(num=5, seed=2, min_len=2, label=("hi",)))
    code, out, err = cli(capsys, "score", run_dir, "--classify", "abc", "xyz")
    rows = [line.split("\t") for line in out.splitlines()]
    assert code == 0 and [row[0] for row in rows] == ["abc", "xyz"] and rows[0][1].startswith("lo 0.9")
    expected = classify(runs["mlp"].model, runs["mlp"].vocab, runs["mlp"].label_counts, ["abc", "xyz"])
    assert rows[1] == ["xyz", *(f"{label} {p:.4f}" for label, p in expected[1].posteriors)]
    (tmp_path / "plain.txt").write_text("abc\nxyz\n")
    assert cli(capsys, "score", run_dir, "--classify", "--input", tmp_path / "plain.txt")[1] == out
    code, out, err = cli(capsys, "score", run_dir, "--label", "hi", "abc")
    assert code == 0 and out == f"abc\t{api.score(runs['mlp'], ['abc'], label='hi')[0].nll:.4f}\n"
    code, _, err = cli(capsys, "score", run_dir, "--label", "hi", "--input", tmp_path / "plain.txt")
    assert code == 2 and "--label does not go with --input" in err
    code, _, err = cli(capsys, "score", runs["exact"].path.parent.parent / "mlp", "--classify", "--detail", "abc")
    assert code == 2 and "--classify" in err


def test_labels_on_a_model_trained_without_them(trained_run, capsys):
    code, out, err = cli(capsys, "sample", trained_run.out_dir, "--label", "f")
    assert (code, out) == (
        2,
        "",
    ) and err == "makemore: error: --label: this model was trained without labels (train with --labelled)\n"
    code, out, err = cli(capsys, "score", trained_run.out_dir, "--classify", "abc")
    assert (code, out) == (2, "") and "trained without labels" in err


def test_label_weights():
    vocab = api.Vocab(("a",), ("dwarf", "elf", "orc"))
    weights = label_distribution(vocab, {}, ("elf=0.7", "dwarf=0.3"))
    assert weights.tolist() == pytest.approx([0.3, 0.7, 0.0])
    assert label_distribution(vocab, {"dwarf": 1, "elf": 3, "orc": 0}).tolist() == [0.25, 0.75, 0.0]
    assert parse_label("a=b") == ("a=b", 1.0) and parse_label("x=2") == ("x", 2.0)
    for bad in ("=1", "elf=0", "elf=-1", "elf=nan"):
        with pytest.raises(ConfigError, match="label"):
            parse_label(bad)
    with pytest.raises(ConfigError, match="trained without labels"):
        label_distribution(api.Vocab(("a",)), {}, ("elf",))


def test_scoring_a_labelled_file(runs, tmp_path):
    run = runs["mlp"]
    held_out = halves(30, 7)
    path = tmp_path / "held.tsv"
    path.write_text("".join(f"{label}\t{item}\n" for label, item in held_out) + "elf\tabc\n")
    result = api.evaluate_file(run, path, per_item=True)
    words, labels = [w for _, w in held_out], [label for label, _ in held_out]
    loglik = item_log_likelihoods(run.model, run.vocab, words, labels)
    targets = sum(len(w) + 1 for w in words)
    assert (result.items, result.targets) == (30, targets)
    assert result.nll == pytest.approx(-float(loglik.sum()) / targets, rel=1e-9)
    assert result.skipped == ["abc"] and "1 with labels the model was not trained on ('elf')" in result.note
    # without labels, each item is scored under the mixture of the labels (as score_items does)
    mixture = api.evaluate_items(run, words, per_item=True)
    prior = label_distribution(run.vocab, run.label_counts)
    assert [nll for _, nll in mixture.scores] == pytest.approx(item_nlls(run.model, run.vocab, words, prior).tolist())
    assert mixture.nll > result.nll  # knowing the label helps


def test_the_dev_split_is_scored_with_its_labels(runs):
    run = runs["lstm"]
    assert api.evaluate(run, splits=("dev",))["dev"] == pytest.approx(run.meta["metrics"]["best_dev_loss"], abs=1e-6)
