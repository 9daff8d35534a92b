"""Scoring a file (``eval RUN --input FILE``, ``score RUN --input FILE``): the corpus NLL equals the
dev split's, a count model's NLL is its exact count arithmetic, and items the model cannot read
are counted, named and skipped."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from conftest import write_words
from makemore import api
from makemore.cli import main
from makemore.data.corpus import split_words
from makemore.errors import MakemoreError
from makemore.evaluate import heldout


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_dev_split_as_a_file_scores_as_evaluate_does(trained_run, tmp_path):
    run = api.load_run(trained_run.out_dir)
    dev = split_words(trained_run.words).dev
    result = api.evaluate_file(run, write_words(tmp_path / "dev.txt", dev))
    assert result.nll == pytest.approx(api.evaluate(run)["dev"], rel=1e-12)
    assert (result.items, result.targets) == (len(dev), sum(len(w) + 1 for w in dev))
    assert result.skipped == [] and result.unseen == "" and result.note == ""
    assert result.perplexity == math.exp(result.nll)
    assert result.bits_per_char == result.nll / math.log(2)


def test_chunks_and_per_item_scores_agree_with_score(trained_run, monkeypatch):
    run = api.load_run(trained_run.out_dir)
    items = trained_run.words[:50]
    whole = api.evaluate_items(run, items, per_item=True)
    monkeypatch.setattr(heldout, "FILE_CHUNK_ITEMS", 7)  # 8 chunks, the last one short
    chunked = api.evaluate_items(run, items, per_item=True)
    assert chunked.nll == pytest.approx(whole.nll, rel=1e-12) and chunked.targets == whole.targets
    assert [w for w, _ in chunked.scores] == items
    expected = [r.nll for r in api.score(run, items)]
    assert [nll for _, nll in chunked.scores] == pytest.approx(expected, rel=1e-9)
    assert [nll for _, nll in whole.scores] == pytest.approx(expected, rel=1e-9)
    assert api.evaluate_items(run, items).scores == []  # only when asked for


def test_items_with_unseen_characters_are_counted_named_and_skipped(trained_run, tmp_path):
    run = api.load_run(trained_run.out_dir)
    good = trained_run.words[:20]
    bad = ["xab", "aZ", "éxx", "bbbQ"]  # 'x', 'Z', 'Q' are not in the tiny alphabet; 'é' is
    lines = [*good[:10], bad[0], bad[1], *good[10:], bad[2], bad[3]]
    result = api.evaluate_file(run, write_words(tmp_path / "mixed.txt", lines))
    assert result.skipped == bad and result.unseen == "QZx" and result.too_long == 0
    assert result.items == 20 and result.targets == sum(len(w) + 1 for w in good)
    assert result.nll == pytest.approx(api.evaluate_items(run, good).nll, rel=1e-12)
    assert result.note == (
        "skipped 4 of 24 items: 4 with characters the model never saw ('Q', 'Z', 'x'): 'xab', 'aZ', 'éxx', ..."
    )


def test_nothing_scorable_is_an_error(trained_run, tmp_path):
    run = api.load_run(trained_run.out_dir)
    with pytest.raises(MakemoreError, match=r"none\.txt: no item can be scored \(skipped 2 of 2 items: .*'x', 'y'"):
        api.evaluate_file(run, write_words(tmp_path / "none.txt", ["xy", "yx"]))


def test_a_count_models_file_nll_is_its_count_arithmetic(tmp_path, tiny_words):
    config = api.RunConfig(
        model="ngram",
        model_config=api.make_config("ngram", {"order": 2, "k": 1.0}),
        data=api.DataConfig(input=str(write_words(tmp_path / "words.txt", tiny_words))),
    )
    api.train(config, tmp_path / "run", progress=False)
    run = api.load_run(tmp_path / "run")
    train = split_words(tiny_words).train
    stoi = {c: i + 1 for i, c in enumerate(sorted(set("".join(tiny_words))))}

    def pairs(words):
        for w in words:
            ids = [0, *(stoi[c] for c in w), 0]
            yield from zip(ids, ids[1:])

    counts, totals = Counter(pairs(train)), Counter(a for a, _ in pairs(train))
    held = ["abba", "cede", "e.a", "zzz", "d-b é"]
    logps = [math.log((counts[(a, b)] + 1) / (totals[a] + len(stoi) + 1)) for a, b in pairs(held[:3] + held[4:])]
    result = api.evaluate_file(run, write_words(tmp_path / "held.txt", held))
    assert result.nll == pytest.approx(-sum(logps) / len(logps), rel=1e-6)
    assert result.skipped == ["zzz"] and result.targets == len(logps)


def test_items_longer_than_the_model_reads_are_skipped(tmp_path, tiny_words):
    config = api.RunConfig(
        model="transformer",
        model_config=api.make_config("transformer", dict(block_size=6, n_layer=1, n_head=1, n_embd=8)),
        data=api.DataConfig(input=str(write_words(tmp_path / "words.txt", [w[:5] for w in tiny_words]))),
        train=api.TrainConfig(steps=2, batch_size=8, eval_interval=2),
    )
    api.train(config, tmp_path / "run", progress=False)
    run = api.load_run(tmp_path / "run")
    assert run.model_limit == 5
    result = api.evaluate_items(run, ["abc", "abcdeab", "abcde", "xy", "aaaaaaaa"], per_item=True)
    assert result.skipped == ["abcdeab", "xy", "aaaaaaaa"] and result.too_long == 2
    assert [w for w, _ in result.scores] == ["abc", "abcde"]
    assert "1 with characters the model never saw ('x', 'y'); 2 longer than the model can read (5 characters)" in (
        result.note
    )


def test_eval_and_score_with_input_from_the_cli(trained_run, tmp_path, capsys):
    run = api.load_run(trained_run.out_dir)
    items = [*trained_run.words[:5], "qq"]
    path = write_words(tmp_path / "held.txt", items)
    expected = api.evaluate_file(run, path, per_item=True)

    code, out, err = cli(capsys, "eval", trained_run.out_dir, "--input", path)
    assert code == 0 and err == ""
    assert out.splitlines() == [
        f"input      {path}",
        f"items      5 scored ({expected.targets} predictions: their characters and ends)",
        f"NLL        {expected.nll:.4f}",
        f"perplexity {math.exp(expected.nll):.4f}",
        f"bits/char  {expected.nll / math.log(2):.4f}",
        "skipped 1 of 6 items: 1 with characters the model never saw ('q'): 'qq'",
    ]
    code, out, err = cli(capsys, "score", trained_run.out_dir, "-i", path)
    assert code == 0
    assert out.splitlines() == [f"{w}\t{nll:.4f}" for w, nll in expected.scores]
    assert err == f"makemore: {path}: skipped 1 of 6 items: 1 with characters the model never saw ('q'): 'qq'\n"


@pytest.mark.parametrize(
    "extra, message",
    [(["abc"], "not both"), (["--detail"], "--detail"), ([], "no item can be scored")],
)
def test_score_input_refusals(trained_run, tmp_path, capsys, extra, message):
    path = write_words(tmp_path / "held.txt", ["qq"])
    code, out, err = cli(capsys, "score", trained_run.out_dir, "--input", path, *extra)
    assert code == 2 and out == "" and message in err and err.count("\n") == 1
