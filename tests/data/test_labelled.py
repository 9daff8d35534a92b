"""Labelled corpora: reading them, the label tokens in the vocabulary and in the model's input."""

from __future__ import annotations

import random

import pytest
import torch

from makemore import api
from makemore.config import DataConfig
from makemore.data.corpus import BOUNDARY, EncodedCorpus, Vocab, split_words
from makemore.data.datasets import builtin_datasets, is_labelled, load_data
from makemore.data.labelled import parse_csv, parse_labelled
from makemore.errors import ConfigError, MakemoreError


def test_labelled_lines_split_at_the_first_tab_only():
    raw = b"f\temma\n\nm \tliam  \r\nx\ta\tb\n"
    assert parse_labelled(raw) == (["f", "m", "x"], ["emma", "liam", "a\tb"])


@pytest.mark.parametrize(
    "text, message",
    [
        ("f\temma\nliam\n", r"^f\.tsv:2: expected label<TAB>item \(a labelled file\), found no tab$"),
        ("f\temma\n\tliam\n", r"^f\.tsv:2: empty label before the tab$"),
        ("f\temma\nm\t  \n", r"^f\.tsv:2: no item after the label 'm'$"),
        ("\n\n", r"^f\.tsv: contains no items"),
        ("f\t" + "a" * 9 + "\n", r"^f\.tsv:1: item is 9 characters long, more than max_item_len \(8\)$"),
    ],
)
def test_bad_labelled_lines_name_the_line(text, message):
    with pytest.raises(MakemoreError, match=message):
        parse_labelled(text.encode(), source="f.tsv", max_len=8)


def test_csv_columns_by_name_or_number_and_the_delimiter_of_the_header():
    raw = b'id,name,lang\n1,"o\'neil, jr",en\n2,,en\n3,lukas,de\n'
    assert parse_csv(raw, item_column="name", label_column="lang") == (["en", "de"], ["o'neil, jr", "lukas"])
    assert parse_csv(raw, item_column="2") == (None, ["o'neil, jr", "lukas"])
    assert parse_csv(b"name;lang\nana;es\n", item_column="name", label_column="2") == (["es"], ["ana"])
    with pytest.raises(ConfigError, match=r"^DataConfig\.label_column: x\.csv: no column 'sex' \(the header has 3"):
        parse_csv(raw, item_column="name", label_column="sex", source="x.csv")
    with pytest.raises(MakemoreError, match=r"^x\.csv:3: 1 fields, column 3 is missing$"):
        parse_csv(b"a,b,c\n1,2,3\n4\n", item_column="b", label_column="c", source="x.csv")
    with pytest.raises(MakemoreError, match=r"^x\.csv:2: empty label in column 'c'$"):
        parse_csv(b"a,b,c\n1,2,\n", item_column="b", label_column="c", source="x.csv")


def test_an_unlabelled_file_with_tabs_reads_as_before(tmp_path):
    path = tmp_path / "w.txt"
    path.write_text("a\tb\nc d\n" * 5)
    data = load_data(DataConfig(input=str(path)))
    assert data.labels is None and data.split.labels is None
    assert data.words == ["a\tb", "c d"] * 5
    assert data.vocab == Vocab(("\t", " ", "a", "b", "c", "d"))
    assert data.vocab.size == 7 and data.corpus("train").start_tokens is None


def test_labelled_split_is_the_unlabelled_permutation():
    words = [f"w{i}" for i in range(57)]
    labels = [random.Random(i).choice("xyz") for i in range(57)]
    plain, labelled = split_words(words, seed=3), split_words(words, seed=3, labels=labels)
    for name in ("train", "dev", "test"):
        assert getattr(labelled, name) == getattr(plain, name)
        assert labelled.labels[name] == [labels[int(w[1:])] for w in getattr(plain, name)]
    deduped = split_words(["a", "a", "a"], labels=["x", "y", "x"], dedupe=True)
    assert sorted(zip(deduped.labels_of("train") + deduped.labels_of("test"), deduped.train + deduped.test)) == [
        ("x", "a"),
        ("y", "a"),
    ]


def test_label_tokens_come_after_the_characters():
    vocab = Vocab.from_words(["ab", "ba"], ["m", "f", "m"])
    assert vocab.chars == ("a", "b") and vocab.label_names == ("f", "m")
    assert vocab.size == 5 and vocab.num_chars == 3
    assert [vocab.label_id("f"), vocab.label_id("m")] == [3, 4]
    assert vocab.labels() == [".", "a", "b", "<f>", "<m>"]
    assert Vocab.from_json(vocab.to_json()) == vocab
    assert Vocab.from_json({"chars": "ab", "boundary_id": 0}) == Vocab(("a", "b"))  # a 0.2 header
    with pytest.raises(MakemoreError, match=r"^unknown label 'x' \(labels: f, m\)$"):
        vocab.label_ids(["f", "x"])


def test_window_models_read_the_label_where_the_boundary_was():
    vocab = Vocab.from_words(["ab", "c"], ["p", "q"])  # a=1 b=2 c=3 <p>=4 <q>=5
    corpus = EncodedCorpus.from_words(["ab", "c"], vocab, ["q", "p"])
    X, Y = corpus.windows(3)
    assert X.tolist() == [[0, 0, 5], [0, 5, 1], [5, 1, 2], [0, 0, 4], [0, 4, 3]]
    assert Y.tolist() == [1, 2, 0, 3, 0]  # the end target is still the boundary
    plain_X, plain_Y = EncodedCorpus.from_words(["ab", "c"], vocab).windows(3)
    assert torch.equal(plain_Y, Y) and torch.equal(plain_X, X.masked_fill(X >= 4, BOUNDARY))


def test_sequence_models_read_the_label_first():
    vocab = Vocab.from_words(["ab", "c"], ["p", "q"])
    corpus = EncodedCorpus.from_words(["ab", "c"], vocab, ["q", "p"])
    x, y = corpus.sequence_batch(torch.tensor([1, 0]))
    assert x.tolist() == [[4, 3, 0], [5, 1, 2]]
    assert y.tolist() == [[3, 0, -1], [1, 2, 0]]
    assert [corpus.item_tokens(i) for i in range(2)] == [[5, 1, 2], [4, 3]]


def test_the_builtin_labelled_corpus(tmp_path):
    info = builtin_datasets()["names-by-sex"]
    assert info["labelled"] is True
    data = load_data(DataConfig(input="builtin:names-by-sex"))
    assert is_labelled(DataConfig(input="builtin:names-by-sex")) and not is_labelled(DataConfig())
    assert data.vocab.label_names == ("f", "m") and len(data.words) == info["items"]
    assert set(data.words) == set(load_data(DataConfig()).words)  # the same names, by sex
    counts = data.label_counts("train")
    assert sum(counts.values()) == len(data.split.train) and counts["f"] > counts["m"] > 10_000


def test_config_refuses_half_a_csv_setting():
    with pytest.raises(ConfigError, match=r"^DataConfig\.label_column: needs item_column too"):
        DataConfig(label_column="sex")
    with pytest.raises(ConfigError, match=r"^DataConfig\.labelled: a CSV input needs label_column"):
        DataConfig(labelled=True, item_column="name")
    assert api.DataConfig(labelled=True).labelled


@pytest.mark.parametrize("csv", [False, True])
def test_more_labels_than_the_limit_are_refused_up_front(tmp_path, csv, monkeypatch):
    from makemore.data import datasets

    monkeypatch.setattr(datasets, "MAX_LABELS", 20)
    for distinct, refused in ((20, False), (21, True)):
        rows = [(f"L{i % distinct}", "ab" + "abc"[i % 3]) for i in range(60)]
        path = tmp_path / f"{distinct}.{'csv' if csv else 'tsv'}"
        if csv:
            path.write_text("label,name\n" + "".join(f"{label},{item}\n" for label, item in rows))
            config = DataConfig(input=str(path), item_column="name", label_column="label")
        else:
            path.write_text("".join(f"{label}\t{item}\n" for label, item in rows))
            config = DataConfig(input=str(path), labelled=True)
        if refused:
            with pytest.raises(MakemoreError, match=rf"{path.name}: 21 distinct labels; at most 20 \(each label"):
                load_data(config)
        else:
            assert len(load_data(config).vocab.label_names) == 20
