"""``sample`` says on stderr what makes a list repeatable and what it holds: the seed drawn when
none is given, and how many of the items are in the training file. Standard output holds the
items only."""

from __future__ import annotations

import re
import shutil

import pytest

from conftest import make_tiny_words, write_words
from conftest import run_cli as cli
from makemore import api

SEED_LINE = re.compile(r"makemore: seed (\d{6}) \(repeat with --seed (\d{6})\)")


@pytest.fixture(scope="module")
def memorising_run(tmp_path_factory):
    """An order-4 n-gram with little smoothing: many items it makes are training items."""
    base = tmp_path_factory.mktemp("memorising")
    words = write_words(base / "words.txt", make_tiny_words(200, seed=5))
    config = api.RunConfig(model="ngram", model_config=api.make_config("ngram", {"order": 4, "k": 0.01}))
    config.data = api.DataConfig(input=str(words))
    api.train(config, base / "run", progress=False)
    return base / "run"


def test_without_seed_each_call_draws_one_and_prints_how_to_repeat_it(trained_run, capsys):
    run = trained_run.out_dir
    lists, seeds = [], []
    for _ in range(3):
        code, out, err = cli(capsys, "sample", run, "-n", "20", "--new-only")
        assert code == 0
        match = SEED_LINE.fullmatch(err.strip())
        assert match and match.group(1) == match.group(2), err
        seeds.append(match.group(1))
        lists.append(out)
        assert len(out.splitlines()) == 20 and "makemore" not in out  # the items only
    assert len(set(seeds)) > 1 and len(set(lists)) > 1  # not the same list every time
    code, out, err = cli(capsys, "sample", run, "-n", "20", "--new-only", "--seed", seeds[0])
    assert (code, out, err) == (0, lists[0], "")  # repeated; a seed given is not printed again
    assert out.splitlines() == api.sample(
        api.load_run(run), api.SampleConfig(num=20, seed=int(seeds[0]), new_only=True)
    )


def test_the_count_of_training_items_is_printed_and_exact(memorising_run, tmp_path, capsys):
    code, out, err = cli(capsys, "sample", memorising_run, "-n", "20", "--seed", "4")
    items = out.splitlines()
    known = api.training_items(api.load_run(memorising_run)).contains(items)
    count = int(known.sum())
    assert code == 0 and len(items) == 20 and 0 < count < 20
    assert err == f"makemore: {count} of 20 are items of the training file (--new-only leaves them out)\n"
    code, out, err = cli(capsys, "sample", memorising_run, "-n", "20", "--seed", "4", "--new-only")
    assert code == 0 and err == "" and len(out.splitlines()) == 20  # none left to count
    code, out, err = cli(capsys, "sample", memorising_run, "-n", "20", "--seed", "4", "--scores")
    assert code == 0 and err == ""  # each line says new or known itself
    assert sum(line.endswith("\tknown") for line in out.splitlines()) == count
    code, out, err = cli(capsys, "sample", memorising_run, "-n", "20", "--seed", "4", "-o", tmp_path / "items.txt")
    assert code == 0 and out == "" and f"{count} of 20 are items of the training file" in err
    assert (tmp_path / "items.txt").read_text().splitlines() == items


def test_without_the_training_file_the_count_is_a_warning(memorising_run, tmp_path, capsys):
    from reliability.bad_inputs import _edit_meta

    shutil.copytree(memorising_run, tmp_path / "run")
    _edit_meta(lambda meta: meta["data"].update(input=str(tmp_path / "gone.txt")))(tmp_path)
    code, out, err = cli(capsys, "sample", tmp_path / "run", "-n", "4", "--seed", "1")
    assert code == 0 and len(out.splitlines()) == 4
    assert err.startswith("makemore: warning: cannot tell which items are in the training file (")
    assert len(err.splitlines()) == 1 and "gone.txt" in err


def test_sample_help_documents_stderr(capsys):
    code, out, _ = cli(capsys, "sample", "--help")
    flat = " ".join(out.split())
    assert code == 0
    assert "--seed SEED random seed: the same seed gives the same items (default: a new one each time" in flat
    assert "standard output holds the items only" in flat
    assert '("makemore: seed 123456 (repeat with --seed 123456)")' in flat
    assert "(--new-only leaves them out)" in flat
