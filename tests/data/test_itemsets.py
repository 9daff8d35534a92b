"""Items compared in bulk: dedupe keeps what dict.fromkeys keeps and KnownItems answers as a set
does, also when the hash collides all the time (a few-bit hash)."""

from __future__ import annotations

import random

import pytest
import torch

from conftest import make_tiny_words, write_words
from makemore.config import DataConfig
from makemore.data import itemsets
from makemore.data.corpus import EncodedCorpus, Vocab, split_words
from makemore.data.datasets import load_data
from makemore.data.itemsets import KnownItems, equal_items, first_occurrences, item_hashes


def few_bits(monkeypatch, bits: int = 2) -> None:
    """Make every item hash to one of 2**bits values: collisions everywhere."""
    real = itemsets.item_hashes
    monkeypatch.setattr(itemsets, "item_hashes", lambda corpus, **kw: real(corpus, **kw) & ((1 << bits) - 1))


def repeated_words(n: int = 600, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice("abé") for _ in range(rng.randint(0, 4))) for _ in range(n)]


def corpus_of(words, labels=None) -> EncodedCorpus:
    return EncodedCorpus.from_words(words, Vocab.from_words(words, labels), labels)


def test_equal_items_have_equal_hashes_and_others_differ():
    words = ["ab", "ba", "ab", "", "a", "aab", "", "b"]
    hashes = item_hashes(corpus_of(words)).tolist()
    assert all((hashes[i] == hashes[j]) == (words[i] == words[j]) for i in range(8) for j in range(8))
    assert all(0 <= h < 2**62 for h in hashes)


def test_hashes_do_not_depend_on_the_chunking(monkeypatch):
    corpus = corpus_of(repeated_words())
    whole = item_hashes(corpus)
    monkeypatch.setattr(itemsets, "CHUNK_TOKENS", 7)
    assert torch.equal(item_hashes(corpus), whole)


def test_equal_items_compares_tokens_and_labels():
    a = corpus_of(["ab", "abc", "ba", "x"], ["m", "f", "m", "f"])
    i, j = torch.tensor([0, 0, 1, 2, 3]), torch.tensor([0, 2, 1, 0, 3])
    assert equal_items(a, i, a, j).tolist() == [True, False, True, False, True]
    relabelled = corpus_of(["ab", "abc", "ba", "x"], ["f", "f", "m", "m"])
    assert equal_items(a, i, relabelled, i, with_labels=True).tolist() == [False, False, True, True, False]
    assert equal_items(a, i, relabelled, i).tolist() == [True] * 5  # labels aside, the same items


@pytest.mark.parametrize("bits", [None, 1, 3])
def test_first_occurrences_are_what_dict_fromkeys_keeps(monkeypatch, bits):
    if bits is not None:
        few_bits(monkeypatch, bits)
    words = repeated_words()
    kept = first_occurrences(corpus_of(words)).tolist()
    assert [words[i] for i in kept] == list(dict.fromkeys(words))
    assert kept == sorted(kept)


@pytest.mark.parametrize("bits", [None, 2])
def test_labelled_first_occurrences_are_of_label_item_pairs(monkeypatch, bits):
    if bits is not None:
        few_bits(monkeypatch, bits)
    words = repeated_words(300, seed=1)
    labels = [random.Random(i).choice("fm") for i in range(300)]
    kept = first_occurrences(corpus_of(words, labels)).tolist()
    assert [(labels[i], words[i]) for i in kept] == list(dict.fromkeys(zip(labels, words)))


def test_load_data_dedupe_splits_as_split_words(tmp_path, monkeypatch):
    words = [w for w in repeated_words(800, seed=2) if w] + make_tiny_words(50)
    path = write_words(tmp_path / "w.txt", words)
    data = load_data(DataConfig(input=str(path), dedupe=True))
    want = split_words(words, dedupe=True)
    assert (data.split.train, data.split.dev, data.split.test) == (want.train, want.dev, want.test)
    few_bits(monkeypatch)
    again = load_data(DataConfig(input=str(path), dedupe=True))
    assert again.split.train == want.train and again.corpus("dev").decode(again.vocab) == want.dev


@pytest.mark.parametrize("bits", [None, 2])
def test_known_items_answer_as_a_set(monkeypatch, bits):
    if bits is not None:
        few_bits(monkeypatch, bits)
    words = [w for w in repeated_words(400, seed=3) if len(w) != 3]  # no item of 3 characters is known
    known = KnownItems(corpus_of(words), Vocab.from_words(words))
    queries = repeated_words(300, seed=4) + ["abz", "a\nb", "zz", ""]
    assert known.contains(queries).tolist() == [q in set(words) for q in queries]
    assert ("ab" in known) == ("ab" in words) and "abz" not in known and 3 not in known
    assert len(known) == len(words) and known.contains([]).tolist() == []
