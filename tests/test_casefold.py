"""Case-folded runs: a run trained on lower-case items reads what users type in lower case."""

from __future__ import annotations

import pytest

from conftest import run_cli, tiny_mlp_config, write_words
from makemore import api
from makemore.generate.sampling import folded
from makemore.store.checkpoint import read_meta
from makemore.store.description import is_casefolded


@pytest.mark.parametrize(
    "chars, expected",
    [("abc", True), ("a.b- é", True), ("aBc", False), ("ABC", False), ("123.-", False), ("ßa", True), ("", False)],
)
def test_a_vocabulary_is_case_folded_when_it_has_letters_and_no_capitals(chars, expected):
    assert is_casefolded(chars) is expected


def test_lowercase_folds_a_words_file_and_the_items_not_the_labels_of_a_labelled_one(tmp_path):
    plain = write_words(tmp_path / "plain.txt", ["Anna", "ÉMILE", "bob"] * 4)
    data = api.load_data(api.DataConfig(input=str(plain), lowercase=True))
    assert sorted(set(data.items.decode(data.vocab))) == ["anna", "bob", "émile"]
    assert data.sha256 == api.load_data(api.DataConfig(input=str(plain))).sha256  # the file's own checksum
    labelled = tmp_path / "labelled.tsv"
    labelled.write_text("".join(f"{label}\t{item}\n" for label, item in [("F", "Anna"), ("M", "BOB")] * 4))
    data = api.load_data(api.DataConfig(input=str(labelled), labelled=True, lowercase=True))
    assert data.vocab.label_names == ("F", "M") and set(data.vocab.chars) == set("anbo")


def test_a_run_records_whether_its_corpus_was_case_folded(tmp_path):
    words = [w + s for w in ("Anna", "Bob", "Cleo") for s in ("", "a", "bb", "c", "dd")]
    path = write_words(tmp_path / "cased.txt", words)
    api.train(tiny_mlp_config(path, steps=4, eval_interval=2), tmp_path / "cased", progress=False)
    config = tiny_mlp_config(path, steps=4, eval_interval=2)
    config.data.lowercase = True
    api.train(config, tmp_path / "folded", progress=False)
    assert read_meta(tmp_path / "cased" / "best.safetensors")["data"]["casefolded"] is False
    assert read_meta(tmp_path / "folded" / "best.safetensors")["data"]["casefolded"] is True
    cased, lowered = api.load_run(tmp_path / "cased"), api.load_run(tmp_path / "folded")
    assert (cased.casefolded, lowered.casefolded) == (False, True)
    assert cased.fold("Anna") == "Anna" and lowered.fold("Anna") == "anna"
    assert api.score(lowered, ["ANNA"])[0].nll == api.score(lowered, ["anna"])[0].nll
    assert api.score(cased, ["Anna"])[0].word == "Anna"
    with pytest.raises(api.MakemoreError, match="character 'N' .* in 'ANNA'"):  # read as typed: no 'N' in it
        api.score(cased, ["ANNA"])


def test_a_case_folded_run_scores_samples_and_evaluates_what_was_typed_in_capitals(trained_run, tmp_path):
    run = api.load_run(trained_run.out_dir)
    assert run.casefolded  # the tiny corpus is in lower case
    word = trained_run.words[0]
    assert [s.word for s in api.score(run, [word.upper()])] == [word]
    assert api.score(run, [word.upper()])[0].nll == api.score(run, [word])[0].nll
    items = api.sample(run, api.SampleConfig(num=5, seed=1, prefix="AB", suffix="E", max_len=12))
    assert all(item.startswith("ab") and item.endswith("e") for item in items)
    matched = api.sample(run, api.SampleConfig(num=3, seed=1, regex="^A"))
    assert all(item.startswith("a") for item in matched)
    held_out = write_words(tmp_path / "held.txt", [w.upper() for w in trained_run.words[:20]])
    result = api.evaluate_file(run, held_out)
    assert result.items == 20 and not result.skipped
    assert result.nll == pytest.approx(api.evaluate_items(run, trained_run.words[:20]).nll)


def test_folding_a_sample_config_leaves_an_uncased_request_alone(trained_run):
    run = api.load_run(trained_run.out_dir)
    config = api.SampleConfig(num=2, prefix="Ab", contains=("C",), not_contains=("D",), exclude_chars="E")
    assert folded(run, config) == api.SampleConfig(
        num=2, prefix="ab", contains=("c",), not_contains=("d",), exclude_chars="e"
    )
    plain = api.SampleConfig(num=2, prefix="ab")
    assert folded(run, plain) == plain
    assert folded(run, api.SampleConfig(num=2, regex="^A")).regex == "(?i)^A"


def test_the_cli_says_once_that_it_folds_what_was_typed(trained_run, capsys):
    word = trained_run.words[0]
    code, out, err = run_cli(capsys, "score", trained_run.out_dir, word.upper(), word.title())
    assert code == 0 and [line.split("\t")[0] for line in out.splitlines()] == [word, word]
    assert err.count("reads what you typed in lower case") == 1
    code, out, err = run_cli(capsys, "score", trained_run.out_dir, word)
    assert code == 0 and err == ""
    code, out, err = run_cli(capsys, "sample", trained_run.out_dir, "-n", "2", "--seed", "1", "--prefix", "A")
    assert code == 0 and all(line.startswith("a") for line in out.splitlines())
    assert err.count("reads what you typed in lower case") == 1
