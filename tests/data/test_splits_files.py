"""Your own splits: --dev-input/--test-input files read as the dev and test splits, recorded
with their checksums, checked when a run's data is read again."""

from __future__ import annotations

import hashlib
import math
from collections import Counter

import pytest

from conftest import write_words
from makemore import api
from makemore.config import DataConfig
from makemore.data.datasets import load_data
from makemore.data.splits import file_bounds, split_words
from makemore.errors import ConfigError, MakemoreError
from makemore.store.description import RunDescription

pytestmark = pytest.mark.usefixtures("one_thread")

TRAIN = ["anna", "bob", "anna", "carl", "bob", "dan"]
DEV = ["dora", "ézra", "bob", "dora"]  # 'é' and 'z' are not in TRAIN; 'bob' is also a training item
TEST = ["eve", "xo"]


@pytest.fixture
def files(tmp_path):
    return (
        write_words(tmp_path / "train.txt", TRAIN),
        write_words(tmp_path / "dev.txt", DEV),
        write_words(tmp_path / "test.txt", TEST),
    )


def own(train, dev, test=None, **options) -> DataConfig:
    return DataConfig(input=str(train), dev_input=str(dev), test_input=str(test or ""), **options)


def test_file_bounds_are_the_files_one_after_another():
    assert file_bounds(6, 4, 2) == {"train": (0, 6), "dev": (6, 10), "test": (10, 12)}
    assert file_bounds(3, 1, 0) == {"train": (0, 3), "dev": (3, 4), "test": (4, 4)}


def test_each_split_is_its_file_in_file_order(files):
    train, dev, test = files
    data = load_data(own(train, dev, test))
    assert data.own_splits
    assert (data.split.train, data.split.dev, data.split.test) == (TRAIN, DEV, TEST)
    assert data.split_sizes == (6, 4, 2)
    assert data.num_items == 12 and data.words == TRAIN + DEV + TEST
    assert data.corpus("dev").decode(data.vocab) == DEV
    for split, path in zip(("train", "dev", "test"), files):
        recorded = data.files[split]
        assert recorded.source == str(path.resolve())
        assert recorded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert data.files["dev"].items == 4 and data.sha256 == data.files["train"].sha256
    assert data.source == str(train.resolve())


def test_the_vocabulary_covers_every_file(files):
    train, dev, _ = files
    data = load_data(own(train, dev))
    assert set("éz") <= set(data.vocab.chars)
    assert data.vocab.chars == tuple(sorted(set("".join(TRAIN + DEV))))


def test_without_a_test_file_the_test_split_is_empty(files):
    train, dev, _ = files
    data = load_data(own(train, dev))
    assert set(data.files) == {"train", "dev"}
    assert data.split_items("test").numel() == 0
    assert len(data.corpus("test")) == 0 and data.split.test == []
    assert data.split_sizes == (6, 4, 0)


def test_dedupe_drops_repeats_of_the_training_file_only(files):
    train, dev, test = files
    data = load_data(own(train, dev, test, dedupe=True))
    assert data.split.train == ["anna", "bob", "carl", "dan"]
    assert data.split.dev == DEV  # its repeat and the item it shares with TRAIN stay
    assert data.split_items("train").tolist() == [0, 1, 3, 5]
    assert data.order.tolist() == [0, 1, 3, 5, *range(6, 12)]


def test_known_items_are_every_file(files):
    train, dev, test = files
    known = load_data(own(train, dev, test)).known_items()
    assert known.contains(["dora", "eve", "dan", "zed"]).tolist() == [True, True, True, False]


def test_the_lecture_split_is_unchanged_without_dev_input(files):
    train, _, _ = files
    data = load_data(DataConfig(input=str(train)))
    assert data.files == {} and not data.own_splits
    assert data.split == split_words(TRAIN)


def test_each_file_is_read_as_the_input_is(tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text("lo\tab\nhi\tCD\nlo\tba\n", encoding="utf-8")
    dev = tmp_path / "dev.tsv"
    dev.write_text("mid\tAc\nhi\tdc\n", encoding="utf-8")
    data = load_data(own(train, dev, labelled=True, lowercase=True))
    assert data.split.train == ["ab", "cd", "ba"] and data.split.dev == ["ac", "dc"]
    assert data.split.labels == {"train": ["lo", "hi", "lo"], "dev": ["mid", "hi"], "test": []}
    assert data.vocab.label_names == ("hi", "lo", "mid")  # a label of the dev file only is a token too
    assert data.label_counts("train") == {"hi": 1, "lo": 2, "mid": 0}  # never drawn: no training item


def test_csv_columns_apply_to_each_file(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("id,name\n1,amy\n2,bo\n", encoding="utf-8")
    dev = tmp_path / "dev.csv"
    dev.write_text("id,name\n7,cy\n", encoding="utf-8")
    data = load_data(own(train, dev, item_column="name"))
    assert (data.split.train, data.split.dev) == (["amy", "bo"], ["cy"])


def test_errors_name_the_dev_or_test_file(files, tmp_path):
    train, dev, _ = files
    with pytest.raises(MakemoreError, match=r"missing\.txt: no such file"):
        load_data(own(train, tmp_path / "missing.txt"))
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\xff\n")
    with pytest.raises(MakemoreError, match=r"bad\.txt:2: invalid UTF-8"):
        load_data(own(train, dev, bad))


@pytest.mark.parametrize(
    "fields, field",
    [
        (dict(input="a.txt", test_input="t.txt"), "test_input"),
        (dict(input="a.txt", dev_input="d.txt", split_seed=7), "split_seed"),
    ],
)
def test_config_refuses_what_has_no_meaning(fields, field):
    with pytest.raises(ConfigError) as info:
        DataConfig(**fields)
    assert info.value.field == field


def _bigram_nll(train: list[str], items: list[str], vocab_size: int) -> float:
    """Mean NLL per character of ``items`` under the add-1 count bigram of ``train``."""
    pairs = Counter((a, b) for w in train for a, b in zip([None, *w], [*w, None]))
    rows = Counter()
    for (a, _), c in pairs.items():
        rows[a] += c
    logps = [
        math.log((pairs[(a, b)] + 1) / (rows[a] + vocab_size)) for w in items for a, b in zip([None, *w], [*w, None])
    ]
    return -sum(logps) / len(logps)


@pytest.fixture
def ngram_run(files, tmp_path):
    config = api.RunConfig(
        model="ngram",
        model_config=api.make_config("ngram", {"order": 2, "smoothing": "add-k", "k": 1.0}),
        data=own(*files),
    )
    api.train(config, tmp_path / "run", progress=False)
    return tmp_path / "run"


def test_a_run_records_the_files_and_is_evaluated_on_them(ngram_run, files):
    run = api.load_run(ngram_run)
    info = run.description.data
    assert {split: f.source for split, f in info.files.items()} == {
        split: str(path.resolve()) for split, path in zip(("train", "dev", "test"), files)
    }
    assert run.config.data.dev_input == str(files[1].resolve())
    assert info.split_sizes == (6, 4, 2) and info.split_source("dev") == str(files[1].resolve())
    nll = api.evaluate(run)
    vocab_size = len(run.vocab.chars) + 1  # add-1 over every character of every file, and the boundary
    for split, items in (("train", TRAIN), ("dev", DEV), ("test", TEST)):
        assert nll[split] == pytest.approx(_bigram_nll(TRAIN, items, vocab_size), abs=1e-5)


def test_reading_the_run_again_checks_every_file(ngram_run, files):
    run = api.load_run(ngram_run)
    assert api.training_data(run).files == load_data(run.config.data).files
    files[2].write_text("eve\nxo\nmore\n", encoding="utf-8")
    with pytest.raises(MakemoreError, match=r"test\.txt: not the file this run was trained on"):
        api.training_data(run)


def test_the_header_refuses_broken_files(ngram_run):
    meta = api.load_run(ngram_run).description.raw
    broken = {**meta, "data": {**meta["data"], "files": {"dev": meta["data"]["files"]["dev"]}}}
    with pytest.raises(MakemoreError, match=r"data\.files"):
        RunDescription.parse(broken)
    bad_sha = {**meta["data"]["files"], "test": {**meta["data"]["files"]["test"], "sha256": "xyz"}}
    with pytest.raises(MakemoreError, match=r"data\.files\.test"):
        RunDescription.parse({**meta, "data": {**meta["data"], "files": bad_sha}})
    assert RunDescription.parse(meta).data.split_sizes == (6, 4, 2)
