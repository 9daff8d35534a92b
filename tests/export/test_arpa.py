"""ARPA export of count models, read back with an independent back-off reader (and KenLM when installed)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch

from conftest import labelled_pairs, make_tiny_words, write_words
from makemore import api
from makemore.data.corpus import split_words
from makemore.errors import MakemoreError
from makemore.evaluate.scoring import item_log_likelihoods
from makemore.export.arpa import arpa_bytes, escape

from .arpa_reader import LN10, ArpaModel

pytestmark = pytest.mark.usefixtures("one_thread")

SMOOTHINGS = ("kneser-ney", "add-k")
ORDERS = (1, 2, 3, 4, 5)
NAMES = api.builtin_path("names").read_text(encoding="utf-8").split()[:300]


def train_ngram(directory: Path, words_path: Path, labelled: bool = False, **config) -> api.Run:
    run_config = api.RunConfig(
        model="ngram",
        model_config=api.make_config("ngram", config),
        data=api.DataConfig(input=str(words_path), labelled=labelled),
    )
    api.train(run_config, directory, progress=False)
    return api.load_run(directory)


def scored_items(words: list[str], seed: int = 1) -> list[str]:
    """The dev items and random strings of the same characters (unseen contexts, so back-off)."""
    rng = random.Random(seed)
    alphabet = sorted(set("".join(words)))
    made_up = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9))) for _ in range(40)]
    return split_words(words).dev + made_up


def arpa_log_likelihoods(model: ArpaModel, items: list[str], start: str = "<s>") -> torch.Tensor:
    """Natural-log probability of each item (its end included) read from the file."""
    return torch.tensor(
        [model.sentence_log10([escape(c) for c in item], start) * LN10 for item in items], dtype=torch.float64
    )


@pytest.fixture(scope="module")
def names_runs(tmp_path_factory) -> dict[tuple[str, int], api.Run]:
    """A count model of every order and smoothing, on 300 names."""
    base = tmp_path_factory.mktemp("arpa")
    words_path = write_words(base / "names.txt", NAMES)
    runs = {}
    for smoothing in SMOOTHINGS:
        for order in ORDERS:
            config = dict(order=order, smoothing=smoothing)
            runs[(smoothing, order)] = train_ngram(base / f"{smoothing}{order}", words_path, **config)
    return runs


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("order", ORDERS)
def test_every_items_log_probability_is_the_models(names_runs, smoothing, order):
    run = names_runs[(smoothing, order)]
    model = ArpaModel.parse(arpa_bytes(run).decode("utf-8"))
    assert model.order == max(order, 2)  # order 1 is written as order 2 (KenLM reads 2 and up)
    assert model.missing_contexts() == []
    items = scored_items(NAMES)
    ours = item_log_likelihoods(run.model, run.vocab, items)
    assert torch.allclose(arpa_log_likelihoods(model, items), ours, atol=1e-4, rtol=0)


def test_the_header_counts_each_section_and_comments_the_model(names_runs):
    text = arpa_bytes(names_runs[("kneser-ney", 3)]).decode("utf-8")
    model = ArpaModel.parse(text)  # the reader checks each section has as many n-grams as its count
    by_order = {m: sum(len(gram) == m for gram in model.logp) for m in (1, 2, 3)}
    assert model.counts == by_order
    assert by_order[1] == 26 + 3  # the letters, </s>, <s> and <unk>
    assert model.logp[("<s>",)] == model.logp[("<unk>",)] == -99.0
    assert model.comments[0] == (
        "# makemore ARPA export: character n-gram model of order 3 (kneser-ney, discount=0.75), 27 tokens"
    )
    assert text.startswith("#") and text.endswith("\\end\\\n")


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_every_history_is_a_distribution(names_runs, smoothing):
    """Back-off weights make each history's probabilities sum to 1, stored histories or not."""
    model = ArpaModel.parse(arpa_bytes(names_runs[(smoothing, 4)]).decode("utf-8"))
    targets = ["</s>", *sorted(set("".join(NAMES)))]
    histories = [*model.bow, ("<s>", "q", "x"), ("z", "z", "z"), ("q",)]
    assert len(model.bow) > 100
    for history in histories:
        total = sum(10 ** model.log10_prob(history, w) for w in targets)
        assert total == pytest.approx(1.0, abs=2e-5), history


def test_add_k_holds_its_seen_ngrams_not_the_full_table(names_runs):
    run = names_runs[("add-k", 5)]
    model = ArpaModel.parse(arpa_bytes(run).decode("utf-8"))
    seen = int((run.model.state_dict()["order5_counts"] > 0).sum())  # 5-grams seen, item starts included
    starts = [gram for gram in model.logp if gram[0] == "<s>" and len(gram) > 1]  # "0 0 0 e m": "<s> e m"
    within = [gram for gram in model.logp if len(gram) == 5 and gram[0] != "<s>"]
    assert len(within) + len(starts) == seen
    assert sum(model.counts.values()) < 27**5 // 1000  # the full table would have about 27 ** 5 5-grams
    # lower orders are uniform with weight 1: only the top order and the item starts carry counts
    assert model.logp[("e", "m")] == pytest.approx(math.log10(1 / 27), abs=1e-6)
    assert ("e", "m") not in model.bow


def test_the_export_is_deterministic(names_runs, tmp_path):
    run = names_runs[("kneser-ney", 2)]
    assert arpa_bytes(run) == arpa_bytes(api.load_run(run.path.parent))


ZERO_SMOOTHING = [{"smoothing": "add-k", "k": 0.0}, {"smoothing": "kneser-ney", "discount": 0.0}]


@pytest.mark.parametrize("config", ZERO_SMOOTHING)
def test_a_probability_of_zero_is_minus_99(tmp_path, config):
    run = train_ngram(tmp_path / "run", write_words(tmp_path / "w.txt", NAMES), order=3, **config)
    model = ArpaModel.parse(arpa_bytes(run).decode("utf-8"))
    items = NAMES[:20] + scored_items(NAMES)  # training items, then some the model cannot make
    ours = item_log_likelihoods(run.model, run.vocab, items)
    theirs = arpa_log_likelihoods(model, items)
    impossible = torch.isneginf(ours)
    assert 0 < int(impossible.sum()) < len(items)
    assert bool((theirs[impossible] <= -99 * LN10).all())
    assert torch.allclose(theirs[~impossible], ours[~impossible], atol=1e-4, rtol=0)
    assert -99.0 in model.bow.values()  # a history that gives nothing to the order below


def test_a_space_and_other_characters_are_escaped(tmp_path, tiny_words):
    path = write_words(tmp_path / "w.txt", tiny_words)
    run = train_ngram(tmp_path / "run", path, order=3, smoothing="kneser-ney")
    text = arpa_bytes(run).decode("utf-8")
    model = ArpaModel.parse(text)
    words = {w for gram in model.logp for w in gram}
    assert words == {"<s>", "</s>", "<unk>", "<U+0020>", *"abcde.-é"}
    assert "# <U+0020> is the character U+0020 SPACE" in model.comments
    items = scored_items(tiny_words)
    assert any(" " in item for item in items)
    assert torch.allclose(
        arpa_log_likelihoods(model, items),
        item_log_likelihoods(run.model, run.vocab, items),
        atol=1e-4,
        rtol=0,
    )
    assert escape("\t") == "<U+0009>" and escape("\u200b") == "<U+200B>" and escape("x") == "x"


def labelled_file(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{label}\t{item}\n" for label, item in pairs), encoding="utf-8")
    return path


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_a_labelled_item_starts_with_its_label_word(tmp_path, smoothing):
    pairs = labelled_pairs(300, 0, "abcd", "cdef")
    path = labelled_file(tmp_path / "l.tsv", pairs)
    run = train_ngram(tmp_path / "run", path, labelled=True, order=3, smoothing=smoothing)
    model = ArpaModel.parse(arpa_bytes(run).decode("utf-8"))
    assert {("<s:hi>",), ("<s:lo>",), ("<s>",)} <= set(model.logp)
    assert not [gram for gram in model.logp if gram[0] == "<s>" and len(gram) > 1]  # <s> starts nothing
    items = [item for _, item in pairs[:40]] + ["fa", "abcdef"]
    for label in ("lo", "hi"):
        ours = item_log_likelihoods(run.model, run.vocab, items, [label] * len(items))
        theirs = arpa_log_likelihoods(model, items, start=f"<s:{label}>")
        assert torch.allclose(theirs, ours, atol=1e-4, rtol=0)


def test_a_label_an_arpa_word_cannot_hold_is_refused(tmp_path):
    path = labelled_file(tmp_path / "l.tsv", [("new york", "ab"), ("paris", "ba")] * 4)
    run = train_ngram(tmp_path / "run", path, labelled=True, order=2)
    with pytest.raises(MakemoreError, match=r"^arpa: label 'new york' holds <U\+0020> \(SPACE\), which an"):
        arpa_bytes(run)


def test_a_neural_model_is_refused(trained_run):
    with pytest.raises(
        MakemoreError,
        match=r"^arpa: a mlp model is not a count n-gram model.*--format onnx or --format html$",
    ) as info:
        arpa_bytes(api.load_run(trained_run.out_dir))
    assert "\n" not in str(info.value)


@pytest.mark.slow
@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_kenlm_reads_the_models_log_probabilities(names_runs, tmp_path, smoothing):
    kenlm = pytest.importorskip("kenlm")
    items = scored_items(NAMES)
    for order in ORDERS:
        run = names_runs[(smoothing, order)]
        path = tmp_path / f"{order}.arpa"
        path.write_bytes(arpa_bytes(run))
        lm = kenlm.Model(str(path))
        scores = [lm.full_scores(" ".join(item), bos=True, eos=True) for item in items]
        theirs = [sum(p for p, _, _ in words) * LN10 for words in scores]
        ours = item_log_likelihoods(run.model, run.vocab, items)
        assert torch.allclose(torch.tensor(theirs, dtype=torch.float64), ours, atol=1e-4, rtol=0), order


@pytest.mark.slow
def test_kenlm_reads_labelled_and_escaped_models(tmp_path):
    kenlm = pytest.importorskip("kenlm")
    words = make_tiny_words()
    pairs = [(("lo", "hi")[i % 2], word) for i, word in enumerate(words)]
    run = train_ngram(tmp_path / "run", labelled_file(tmp_path / "l.tsv", pairs), labelled=True, order=4)
    path = tmp_path / "l.arpa"
    path.write_bytes(arpa_bytes(run))
    lm = kenlm.Model(str(path))
    items = words[:50]
    for label in ("lo", "hi"):
        theirs = []
        for item in items:
            state, after = kenlm.State(), kenlm.State()
            lm.NullContextWrite(state)
            lm.BaseScore(state, f"<s:{label}>", after)  # the label word's own score is left out
            total = 0.0
            for word in [*map(escape, item), "</s>"]:
                state, after = after, kenlm.State()
                total += lm.BaseScore(state, word, after)
            theirs.append(total * LN10)
        ours = item_log_likelihoods(run.model, run.vocab, items, [label] * len(items))
        assert torch.allclose(torch.tensor(theirs, dtype=torch.float64), ours, atol=1e-4, rtol=0), label
