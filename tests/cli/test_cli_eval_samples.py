"""``makemore eval RUN --samples N [--seed S]``: the quality of generated items on the command line,
the same numbers as ``api.sample_metrics``; bad input is one line and exit 2."""

from __future__ import annotations

import pytest

from conftest import assert_bad_input, run_cli, write_words
from makemore import api

pytestmark = pytest.mark.usefixtures("one_thread")

ROWS = ("samples", "unique", "in train", "in dev", "in test", "new", "length TV", "char TV", "NLL")


@pytest.fixture(scope="module")
def bigram(tmp_path_factory):
    """A bigram count model of the tiny words (fitted in one pass)."""
    from conftest import make_tiny_words

    root = tmp_path_factory.mktemp("eval_samples")
    path = write_words(root / "words.txt", make_tiny_words())
    config = api.RunConfig(model="ngram", model_config=api.make_config("ngram", {"order": 2}))
    config.data = api.DataConfig(input=str(path))
    api.train(config, root / "run", progress=False)
    return root / "run"


def test_eval_samples_prints_the_metrics_of_the_api(capsys, bigram):
    code, out, err = run_cli(capsys, "eval", bigram, "--samples", 500, "--seed", 9)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert [line[:10].rstrip() for line in lines] == list(ROWS)
    m = api.sample_metrics(api.load_run(bigram), 500, 9)
    assert lines[0] == "samples    500 generated with seed 9 (temperature 1, no constraints)"
    values = [float(line[11:].split()[0]) for line in lines[1:]]
    expected = [m.unique, m.in_train, m.in_dev, m.in_test, m.new, m.length_tv, m.char_tv, m.mean_nll]
    assert values == [round(v, 4) for v in expected]
    assert "0.5 * sum |p - q|" in lines[6]
    assert run_cli(capsys, "eval", bigram, "--samples", 500, "--seed", 9)[1] == out  # the seed decides
    first_line = run_cli(capsys, "eval", bigram, "--samples", 500)[1].splitlines()[0]
    assert first_line == "samples    500 generated with seed 0 (temperature 1, no constraints)"  # the default seed


def test_the_help_states_the_measure(capsys):
    code, out, _ = run_cli(capsys, "eval", "--help")
    text = " ".join(out.split())
    assert code == 0 and "--samples N" in text and "total variation distance 0.5 * sum |p - q|" in text
    assert "--seed SEED" in text


@pytest.mark.parametrize(
    "args, match",
    [
        (["--samples", "0"], r"--samples: must be an integer from 1 to 1000000, got 0"),
        (["--samples", "1000001"], r"--samples: must be an integer from 1 to 1000000"),
        (["--samples", "5", "--seed", "-1"], r"--seed: must be an integer from 0 to 18446744073709551615"),
        (["--seed", "3"], r"--seed goes with --samples N"),
        (["--samples", "5", "-i", "words.txt"], r"does not go with --input"),
    ],
)
def test_bad_samples_are_one_line_and_exit_2(capsys, bigram, in_tmp, args, match):
    write_words(in_tmp / "words.txt", ["ab"])
    assert_bad_input(capsys, ["eval", bigram, *args], in_tmp, bigram, match=match)


def test_a_missing_training_file_is_one_line(capsys, bigram, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(bigram, copy)
    moved = tmp_path / "words.txt"
    source = api.load_run(copy).config.data.input
    shutil.move(source, moved)
    try:
        assert_bad_input(capsys, ["eval", copy, "--samples", "5"], tmp_path, match="words.txt")
    finally:
        shutil.move(moved, source)
