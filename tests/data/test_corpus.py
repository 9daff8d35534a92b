"""Data layer: reading word files, Vocab, the lecture split and tensor examples."""

from __future__ import annotations

import codecs
import random

import pytest
import torch

from makemore.data.corpus import BOUNDARY, EncodedCorpus, Vocab, parse_words, read_words, split_words
from makemore.errors import MakemoreError

# -- read_words ---------------------------------------------------------------------------


def write(tmp_path, data: bytes, name: str = "words.txt"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_read_words_plain(tmp_path):
    path = write(tmp_path, b"emma\nolivia\nava\n")
    assert read_words(path) == ["emma", "olivia", "ava"]


def test_read_words_without_final_newline(tmp_path):
    assert read_words(write(tmp_path, b"emma\nava")) == ["emma", "ava"]


def test_read_words_tolerates_bom(tmp_path):
    path = write(tmp_path, codecs.BOM_UTF8 + "emma\nzoé\n".encode())
    words = read_words(path)
    assert words == ["emma", "zoé"]
    assert "\ufeff" not in "".join(words)


def test_read_words_strips_crlf_and_trailing_space_and_drops_blank_lines(tmp_path):
    path = write(tmp_path, b"emma \r\n\r\n  \r\nan-na\t\r\nmary jo\r\n\n\n.x.\n")
    assert read_words(path) == ["emma", "an-na", "mary jo", ".x."]


def test_read_words_keeps_utf8_characters(tmp_path):
    path = write(tmp_path, "zoé\nbjörk\n日本\n".encode())
    assert read_words(path) == ["zoé", "björk", "日本"]


def test_read_words_missing_file(tmp_path):
    path = tmp_path / "nope.txt"
    with pytest.raises(MakemoreError) as exc:
        read_words(path)
    assert str(path) in str(exc.value)


def test_read_words_directory(tmp_path):
    with pytest.raises(MakemoreError) as exc:
        read_words(tmp_path)
    assert str(tmp_path) in str(exc.value)
    assert "directory" in str(exc.value)


@pytest.mark.parametrize(
    "data, line",
    [
        (b"\xffabc\nb\n", 1),
        (b"ab\ncd\n\xc3\x28x\n", 3),
        (b"ab\r\ncd\r\nef\r\ngh\xe9\r\n", 4),  # latin-1 'é'
        (codecs.BOM_UTF8 + b"ab\n\x80\n", 2),
    ],
)
def test_read_words_invalid_utf8_names_line(tmp_path, data, line):
    path = write(tmp_path, data)
    with pytest.raises(MakemoreError) as exc:
        read_words(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}:{line}:")
    assert "UTF-8" in msg


@pytest.mark.parametrize("data, line", [(b"a\x00b\n", 1), (b"ab\ncd\nx\x00\n", 3)])
def test_read_words_nul_byte_names_line(tmp_path, data, line):
    path = write(tmp_path, data)
    with pytest.raises(MakemoreError) as exc:
        read_words(path)
    assert str(exc.value).startswith(f"{path}:{line}:")
    assert "NUL" in str(exc.value)


def test_read_words_utf16_file_is_rejected(tmp_path):
    path = write(tmp_path, "emma\nava\n".encode("utf-16"))
    with pytest.raises(MakemoreError) as exc:
        read_words(path)
    assert str(path) in str(exc.value)


@pytest.mark.parametrize("data", [b"", b"\n\n", b" \r\n\t\n  \n", codecs.BOM_UTF8, codecs.BOM_UTF8 + b"\r\n"])
def test_read_words_empty_or_blank_only(tmp_path, data):
    path = write(tmp_path, data)
    with pytest.raises(MakemoreError) as exc:
        read_words(path)
    assert str(path) in str(exc.value)
    assert "no items" in str(exc.value)


def test_read_words_max_len(tmp_path):
    path = write(tmp_path, b"abc\nab\nabcd\nabcde\n")
    with pytest.raises(MakemoreError) as exc:
        read_words(path, max_len=3)
    assert str(exc.value).startswith(f"{path}:3:")
    assert read_words(path, max_len=5) == ["abc", "ab", "abcd", "abcde"]
    # the length is counted in characters, not bytes, and trailing spaces do not count
    path2 = write(tmp_path, "éééé   \n".encode(), "e.txt")
    assert read_words(path2, max_len=4) == ["éééé"]


def test_parse_words_source_in_message():
    with pytest.raises(MakemoreError, match=r"^mine:2:"):
        parse_words(b"ok\n\xff\n", source="mine")


# -- Vocab ----------------------------------------------------------------------------------


def test_vocab_ids_follow_lecture_layout():
    vocab = Vocab.from_words(["emma", "ava", "zed"])
    assert vocab.chars == ("a", "d", "e", "m", "v", "z")
    assert vocab.size == len(vocab) == 7
    assert vocab.encode("emma").tolist() == [3, 4, 4, 1]
    assert vocab.encode("").tolist() == []
    assert vocab.encode("emma").dtype == torch.int64


def test_vocab_lecture_alphabet():
    vocab = Vocab.from_words(["abcdefghijklmnopqrstuvwxyz"])
    stoi = {s: i + 1 for i, s in enumerate("abcdefghijklmnopqrstuvwxyz")}
    assert vocab.encode("andrej").tolist() == [stoi[c] for c in "andrej"]
    assert vocab.boundary_symbol == "."
    assert vocab.labels() == ["."] + list("abcdefghijklmnopqrstuvwxyz")


def test_vocab_round_trip_special_characters(tiny_words):
    vocab = Vocab.from_words(tiny_words)
    for word in ["a.b", "a b", "a-b", "é", ". -é", *tiny_words]:
        ids = vocab.encode(word)
        assert vocab.decode(ids) == word
        assert vocab.decode(ids.tolist()) == word
        assert BOUNDARY not in ids.tolist()
        assert [vocab.chars[i - 1] for i in ids.tolist()] == list(word)


def test_vocab_boundary_is_not_a_char(tiny_words):
    vocab = Vocab.from_words(tiny_words)
    char_ids = vocab.encode("".join(vocab.chars)).tolist()
    assert char_ids == list(range(1, vocab.size))
    assert BOUNDARY == 0 and BOUNDARY not in char_ids
    # '.' is a data character here, so the boundary is shown differently
    assert "." in vocab.chars
    assert vocab.boundary_symbol not in vocab.chars
    assert vocab.labels()[0] == vocab.boundary_symbol
    assert vocab.labels()[1:] == list(vocab.chars)


def test_vocab_boundary_symbol_skips_used_symbols():
    assert Vocab.from_words(["ab"]).boundary_symbol == "."
    assert Vocab.from_words(["a.b"]).boundary_symbol == "¶"  # matplotlib's default font has no "␃"
    assert Vocab.from_words(["a.b¶"]).boundary_symbol == "␃"
    assert Vocab.from_words(["a.b␃¶"]).boundary_symbol == "<END>"


def test_vocab_display_labels_make_whitespace_visible():
    vocab = Vocab.from_words(["a b", "c\td", "e\xa0f", "é.-"])
    assert vocab.chars == ("\t", " ", "-", ".", "a", "b", "c", "d", "e", "f", "\xa0", "é")
    assert vocab.display_labels() == ["¶", "\\t", "␣", "-", ".", "a", "b", "c", "d", "e", "f", "\\xa0", "é"]
    assert vocab.labels() == ["¶", *vocab.chars]  # labels() itself is unchanged
    # a corpus that uses "␣" itself keeps the two apart
    assert Vocab.from_words(["a b␣"]).display_labels() == [".", "\\x20", "a", "b", "␣"]
    assert Vocab.from_words(["emma"]).display_labels() == Vocab.from_words(["emma"]).labels()


def test_vocab_decode_skips_boundary():
    vocab = Vocab.from_words(["abc"])
    assert vocab.decode([0, 1, 0, 2, 3, 0]) == "abc"


def test_vocab_unknown_character():
    vocab = Vocab.from_words(["abc"])
    with pytest.raises(MakemoreError) as exc:
        vocab.encode("abz")
    assert "'z'" in str(exc.value)
    with pytest.raises(MakemoreError, match="'é'"):
        vocab.encode("é")
    # characters between or outside the known ones
    for text in ["A", "~", "\n", "b c"]:
        with pytest.raises(MakemoreError):
            vocab.encode(text)


def test_vocab_json_round_trip(tiny_words):
    vocab = Vocab.from_words(tiny_words)
    data = vocab.to_json()
    assert data["boundary_id"] == 0
    assert data["chars"] == "".join(vocab.chars)
    again = Vocab.from_json(data)
    assert again == vocab
    assert again.encode("a.b é-c").tolist() == vocab.encode("a.b é-c").tolist()


def test_vocab_rejects_unsorted_chars():
    with pytest.raises(ValueError):
        Vocab(("b", "a"))
    with pytest.raises(ValueError):
        Vocab(("a", "a"))


# -- split_words --------------------------------------------------------------------------


def lecture_split(words):
    """The lectures' split, with the global random module (state restored afterwards)."""
    state = random.getstate()
    try:
        words = list(words)
        random.seed(42)
        random.shuffle(words)
    finally:
        random.setstate(state)
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    return words[:n1], words[n1:n2], words[n2:]


def test_split_matches_lecture(tiny_words):
    original = list(tiny_words)
    split = split_words(tiny_words)
    assert (split.train, split.dev, split.test) == lecture_split(original)
    assert tiny_words == original  # input not shuffled in place
    assert (len(split.train), len(split.dev), len(split.test)) == (240, 30, 30)


def test_split_other_seed_differs(tiny_words):
    assert split_words(tiny_words, seed=1).train != split_words(tiny_words, seed=42).train
    assert split_words(tiny_words, seed=1).train == split_words(tiny_words, seed=1).train


@pytest.mark.parametrize("n, sizes", [(10, (8, 1, 1)), (11, (8, 1, 2)), (19, (15, 2, 2)), (1, (0, 0, 1))])
def test_split_sizes(n, sizes):
    words = [f"w{i}" for i in range(n)]
    split = split_words(words)
    assert (len(split.train), len(split.dev), len(split.test)) == sizes
    assert sorted(split.train + split.dev + split.test) == sorted(words)


def test_split_dedupe():
    words = ["a", "b", "a", "c", "b", "d", "e", "f", "g", "h", "i", "j", "a"]
    kept = split_words(words)
    assert sorted(kept.train + kept.dev + kept.test) == sorted(words)
    deduped = split_words(words, dedupe=True)
    all_items = deduped.train + deduped.dev + deduped.test
    assert sorted(all_items) == sorted(set(words))
    assert len(deduped.train) == int(0.8 * 10) and len(deduped.dev) == 1 and len(deduped.test) == 1
    # without duplicates, dedupe changes nothing
    unique = sorted(set(words))
    assert split_words(unique, dedupe=True) == split_words(unique)


# -- EncodedCorpus ------------------------------------------------------------------------


def naive_build_dataset(words, vocab, block_size):
    """Lecture 2's build_dataset, with '.' replaced by the boundary id 0."""
    stoi = {c: i + 1 for i, c in enumerate(vocab.chars)}
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ix in [stoi[c] for c in w] + [0]:
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return X, Y


def test_corpus_layout():
    vocab = Vocab.from_words(["ab", "c"])
    corpus = EncodedCorpus.from_words(["ab", "c", "ba"], vocab)
    assert corpus.tokens.tolist() == [0, 1, 2, 0, 3, 0, 2, 1, 0]
    assert corpus.starts.tolist() == [0, 3, 5]
    assert corpus.lengths.tolist() == [2, 1, 2]
    assert len(corpus) == 3
    assert corpus.num_targets == 8
    assert corpus.max_len == 2


def test_corpus_with_special_characters_round_trips(tiny_words):
    vocab = Vocab.from_words(tiny_words)
    corpus = EncodedCorpus.from_words(tiny_words, vocab)
    decoded = [
        vocab.decode(corpus.tokens[s + 1 : s + 1 + n]) for s, n in zip(corpus.starts.tolist(), corpus.lengths.tolist())
    ]
    assert decoded == tiny_words
    assert corpus.num_targets == sum(len(w) + 1 for w in tiny_words)
    assert corpus.max_len == max(len(w) for w in tiny_words)


def test_corpus_unknown_character():
    vocab = Vocab.from_words(["ab"])
    with pytest.raises(MakemoreError, match="'x'"):
        EncodedCorpus.from_words(["ab", "bx"], vocab)


def test_corpus_empty():
    corpus = EncodedCorpus.from_words([], Vocab.from_words(["ab"]))
    assert len(corpus) == 0 and corpus.num_targets == 0 and corpus.max_len == 0


@pytest.mark.parametrize("block_size", [1, 2, 3, 4, 5])
def test_windows_match_naive_build_dataset(tiny_words, block_size):
    words = tiny_words[:60] + ["a", "ab"]
    vocab = Vocab.from_words(tiny_words)
    X, Y = EncodedCorpus.from_words(words, vocab).windows(block_size)
    X_ref, Y_ref = naive_build_dataset(words, vocab, block_size)
    assert X.dtype == torch.int64 and Y.dtype == torch.int64
    assert X.shape == (len(X_ref), block_size)
    assert X.tolist() == X_ref
    assert Y.tolist() == Y_ref


def test_windows_num_targets(tiny_words):
    corpus = EncodedCorpus.from_words(tiny_words, Vocab.from_words(tiny_words))
    X, Y = corpus.windows(3)
    assert Y.numel() == corpus.num_targets == sum(len(w) + 1 for w in tiny_words)
    assert int((Y == 0).sum()) == len(tiny_words)


def naive_sequence_batch(words, vocab, items):
    stoi = {c: i + 1 for i, c in enumerate(vocab.chars)}
    T = max(len(words[i]) for i in items) + 1
    xs, ys = [], []
    for i in items:
        ids = [stoi[c] for c in words[i]]
        x = [0] + ids
        y = ids + [0]
        xs.append(x + [0] * (T - len(x)))
        ys.append(y + [-1] * (T - len(y)))
    return xs, ys


@pytest.mark.parametrize("items", [[0], [3, 1, 2], [5, 5, 0, 7], list(range(10)), [9]])
def test_sequence_batch_matches_naive(items):
    words = ["ab", "c", "a.b c", "-", "éé", "abcabc", "b", "c-a", "a", "cab"]
    vocab = Vocab.from_words(words)
    corpus = EncodedCorpus.from_words(words, vocab)
    x, y = corpus.sequence_batch(torch.tensor(items))
    x_ref, y_ref = naive_sequence_batch(words, vocab, items)
    assert x.shape == y.shape == (len(items), max(len(words[i]) for i in items) + 1)
    assert x.tolist() == x_ref
    assert y.tolist() == y_ref


def test_sequence_batch_targets_count(tiny_words):
    vocab = Vocab.from_words(tiny_words)
    corpus = EncodedCorpus.from_words(tiny_words, vocab)
    x, y = corpus.sequence_batch(torch.arange(len(corpus)))
    assert int((y != -1).sum()) == corpus.num_targets
    # the flattened non-padding targets are the window targets in corpus order
    _, Y = corpus.windows(1)
    assert y[y != -1].tolist() == Y.tolist()


# -- narrow tokens, windows on demand, subsets, Data ------------------------------------------


@pytest.mark.parametrize(
    "num_chars, dtype", [(26, torch.uint8), (255, torch.uint8), (300, torch.int16), (40000, torch.int32)]
)
def test_tokens_are_stored_in_the_narrowest_dtype_and_batches_are_int64(num_chars, dtype):
    chars = [chr(0x100 + i) for i in range(num_chars)]
    words = ["".join(chars[i : i + 5]) for i in range(0, num_chars, 5)] + [chars[0]]  # one short: padding
    vocab = Vocab.from_words(words)
    corpus = EncodedCorpus.from_words(words, vocab)
    assert vocab.token_dtype == dtype and corpus.tokens.dtype == dtype
    assert int(corpus.tokens.max()) == num_chars and corpus.decode(vocab) == words
    x, y = corpus.sequence_batch(torch.arange(len(corpus)))
    X, Y = corpus.windows(2)
    assert x.dtype == y.dtype == X.dtype == Y.dtype == torch.int64 and int(y.min()) == -1


@pytest.mark.parametrize("labelled", [False, True])
def test_windows_at_any_positions_are_the_rows_of_windows(tiny_words, labelled):
    words = tiny_words[:80] + ["a"]
    labels = [("x", "y")[i % 2] for i in range(len(words))] if labelled else None
    corpus = EncodedCorpus.from_words(words, Vocab.from_words(words, labels), labels)
    for block_size in (1, 3, 8):
        X, Y = corpus.windows(block_size)
        positions = torch.randint(1, corpus.tokens.numel(), (200,), generator=torch.Generator().manual_seed(0))
        Xa, Ya = corpus.windows_at(positions, block_size)
        assert torch.equal(Xa, X[positions - 1]) and torch.equal(Ya, Y[positions - 1])
        Xr, Yr = corpus.windows_range(7, 90, block_size)
        assert torch.equal(Xr, X[6:89]) and torch.equal(Yr, Y[6:89])


def test_labelled_windows_read_the_label_where_the_boundary_was():
    vocab = Vocab.from_words(["ab", "c"], ["m", "f"])
    corpus = EncodedCorpus.from_words(["ab", "c"], vocab, ["m", "f"])
    X, Y = corpus.windows(3)
    m, f = vocab.label_id("m"), vocab.label_id("f")
    assert X.tolist() == [[0, 0, m], [0, m, 1], [m, 1, 2], [0, 0, f], [0, f, 3]]
    assert Y.tolist() == [1, 2, 0, 3, 0]


def test_subset_in_small_pieces_is_the_items_in_the_given_order(tiny_words, monkeypatch):
    from makemore.data import corpus as data_module

    vocab = Vocab.from_words(tiny_words)
    corpus = EncodedCorpus.from_words(tiny_words, vocab)
    items = torch.randperm(len(corpus), generator=torch.Generator().manual_seed(1))[:100]
    monkeypatch.setattr(data_module, "GATHER_ITEMS", 7)
    part = corpus.subset(items)
    assert part.decode(vocab) == [tiny_words[i] for i in items.tolist()]
    assert torch.equal(part.tokens, EncodedCorpus.from_words(part.decode(vocab), vocab).tokens)


def test_load_data_splits_as_the_lectures_and_decodes_lists_only_when_asked(tmp_path, tiny_words):
    from makemore.config import DataConfig
    from makemore.data.datasets import load_data

    path = tmp_path / "w.txt"
    path.write_text("".join(w + "\n" for w in tiny_words), encoding="utf-8")
    data = load_data(DataConfig(input=str(path)))
    assert not data._cache  # nothing split nor decoded yet
    train, dev, test = lecture_split(tiny_words)
    assert data.corpus("train").decode(data.vocab) == train and data.corpus("dev").decode(data.vocab) == dev
    assert data.corpus("train") is data.corpus("train")  # encoded once
    assert (data.split.train, data.split.dev, data.split.test) == (train, dev, test)
    assert data.words == tiny_words and data.split_sizes == (240, 30, 30) and data.num_items == 300
    assert data.items.tokens.dtype == torch.uint8 and data.longest_item == max(map(len, tiny_words))


def test_a_trained_vocabulary_without_a_character_of_the_file_fails_when_a_split_is_used(tmp_path):
    from makemore.config import DataConfig
    from makemore.data.datasets import load_data

    path = tmp_path / "w.txt"
    path.write_text("ab\nba\nabz\n", encoding="utf-8")
    data = load_data(DataConfig(input=str(path)), Vocab(("a", "b")))  # reading it works (a checksum may differ)
    assert data.words == ["ab", "ba", "abz"] and "abz" in data.known_items()
    with pytest.raises(MakemoreError, match="character 'z' .* in 'abz' is not in the model's vocabulary"):
        data.corpus("train")
