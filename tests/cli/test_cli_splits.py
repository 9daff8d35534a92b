"""makemore train --dev-input/--test-input: your own splits trained, evaluated, reported and resumed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import TINY_TRAIN_FLAGS, assert_bad_input, make_tiny_words, run_cli, write_words
from makemore import api

pytestmark = pytest.mark.usefixtures("one_thread")

NGRAM = ["--model", "ngram", "--order", "3", "--smoothing", "kneser-ney", "--quiet"]


@pytest.fixture
def split_files(in_tmp):
    """train.txt, dev.txt (with a character the training file lacks) and test.txt in the working directory."""
    words = make_tiny_words(240, seed=5)
    train = write_words(in_tmp / "train.txt", [w for w in words[:200] if "é" not in w])
    dev = write_words(in_tmp / "dev.txt", [*words[200:220], "zebra"])
    test = write_words(in_tmp / "test.txt", words[220:])
    return train, dev, test


def test_train_and_eval_report_each_file(split_files, capsys):
    train, dev, test = split_files
    code, _, err = run_cli(capsys, "train", "-i", train, "--dev-input", dev, "--test-input", test, "-o", "run", *NGRAM)
    assert code == 0, err
    run = api.load_run("run")
    assert set("zé") <= set(run.vocab.chars) and "é" not in train.read_text(encoding="utf-8")
    code, out, err = run_cli(capsys, "eval", "run")
    assert code == 0, err
    nll = api.evaluate(run)
    assert out == "".join(
        f"{split:<6} NLL {nll[split]:.4f}  {path.resolve()}\n"
        for split, path in zip(("train", "dev", "test"), split_files)
    )
    for split, path in (("dev", dev), ("test", test)):  # the split is exactly the file, scored as any file is
        assert api.evaluate_file(run, path).nll == pytest.approx(nll[split], abs=1e-5)
    recorded = json.loads(Path("run", "run.json").read_text())["data"]["files"]
    assert [recorded[s]["items"] for s in ("train", "dev", "test")] == [
        len(train.read_text(encoding="utf-8").splitlines()),
        21,
        20,
    ]


def test_without_a_test_file_eval_says_so(split_files, capsys):
    train, dev, _ = split_files
    code, _, err = run_cli(capsys, "train", "-i", train, "--dev-input", dev, "-o", "run", *NGRAM)
    assert code == 0, err
    code, out, err = run_cli(capsys, "eval", "run")
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["train", "dev", "test"]
    assert lines[2] == "test   none: no test file (the run was trained without --test-input)"
    assert "nan" not in out.lower()


def test_a_changed_dev_or_test_file_is_refused(split_files, capsys, in_tmp):
    train, dev, test = split_files
    code, _, err = run_cli(capsys, "train", "-i", train, "--dev-input", dev, "--test-input", test, "-o", "run", *NGRAM)
    assert code == 0, err
    resume = ["train", "--resume", "-o", "run", "--quiet"]
    for path in (dev, test):
        original = path.read_bytes()
        path.write_bytes(original + b"extra\n")
        assert_bad_input(capsys, resume, in_tmp, match=rf"{path.name} changed since this run started")
        assert_bad_input(capsys, ["eval", "run"], in_tmp, match=rf"{path.name}: not the file this run was trained on")
        path.write_bytes(original)
    assert run_cli(capsys, "eval", "run")[0] == 0


@pytest.mark.slow  # trains a network (about 3 s)
def test_training_evaluates_on_the_dev_file_and_resumes(split_files, capsys, in_tmp):
    train, dev, test = split_files
    flags = [*TINY_TRAIN_FLAGS, "--steps", "20", "--eval-interval", "10", "--log-interval", "10"]
    code, _, err = run_cli(capsys, "train", "-i", train, "--dev-input", dev, "--test-input", test, "-o", "run", *flags)
    assert code == 0, err
    metrics = json.loads((in_tmp / "run" / "run.json").read_text())["metrics"]
    assert metrics["best_dev_loss"] == pytest.approx(api.evaluate(api.load_run("run"), ("dev",))["dev"], abs=1e-4)
    code, _, err = run_cli(capsys, "train", "--resume", "-o", "run", "--steps", "30", "--quiet")
    assert code == 0, err
    assert api.load_run("run", "last").description.step == 30


def test_new_only_leaves_out_the_items_of_every_file(split_files, capsys):
    train, dev, test = split_files
    code, _, err = run_cli(capsys, "train", "-i", train, "--dev-input", dev, "--test-input", test, "-o", "run", *NGRAM)
    assert code == 0, err
    code, out, err = run_cli(capsys, "sample", "run", "-n", "30", "--seed", "1", "--new-only")
    assert code == 0, err
    known = {w for path in split_files for w in path.read_text(encoding="utf-8").split("\n") if w}
    assert len(out.splitlines()) == 30 and not set(out.splitlines()) & known


@pytest.mark.parametrize(
    "args, match",
    [
        (["--test-input", "test.txt"], "--test-input: needs --dev-input"),
        (["--dev-input", "dev.txt", "--split-seed", "3"], "--split-seed: has no effect with --dev-input"),
        (["--dev-input", "missing.txt"], r"missing\.txt: no such file"),
    ],
)
def test_bad_split_options_are_refused(split_files, capsys, in_tmp, args, match):
    assert_bad_input(capsys, ["train", "-i", "train.txt", *args, "-o", "run", *NGRAM], in_tmp, match=match)
