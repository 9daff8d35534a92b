"""Length-aware (bucket) batching of sequence models: what it draws, its padding, exact resume."""

from __future__ import annotations

import random

import pytest
import torch

from conftest import write_words
from makemore import api
from makemore.data import batching
from makemore.data.batching import SequenceBatcher
from makemore.data.corpus import EncodedCorpus, Vocab
from makemore.store.checkpoint import load_checkpoint


def _long_tailed_words(n: int = 400, seed: int = 0) -> list[str]:
    """Mostly short words and a few long ones, like a list of package names."""
    rng = random.Random(seed)
    return ["".join(rng.choice("abcdef") for _ in range(rng.choice([2, 3, 4, 5, 6, 30]))) for _ in range(n)]


def _corpus(words: list[str]) -> EncodedCorpus:
    return EncodedCorpus.from_words(words, Vocab(tuple(sorted(set("".join(words))))))


def _rows(x: torch.Tensor, y: torch.Tensor, corpus: EncodedCorpus) -> list[tuple[int, ...]]:
    """A batch's items as tuples of their tokens (x's start token, then the targets)."""
    return sorted(tuple(x[r, :1].tolist() + y[r][y[r] != -1].tolist()) for r in range(x.size(0)))


def _pool_batches(batcher: SequenceBatcher, batch_size: int, g: torch.Generator) -> list[tuple]:
    """Every batch of the next pool, in hand-out order."""
    first = batcher.sample(batch_size, g)
    return [first, *(batcher.sample(batch_size, g) for _ in range(batcher._pool.order.numel() - 1))]


def test_a_pool_holds_distinct_items_drawn_uniformly(monkeypatch):
    monkeypatch.setattr(batching, "POOL_BATCHES", 5)
    corpus = _corpus(_long_tailed_words())
    batcher = SequenceBatcher(corpus, batching="length")
    expected = torch.randperm(len(corpus), generator=torch.Generator().manual_seed(3))[: 5 * 16]
    batches = _pool_batches(batcher, 16, torch.Generator().manual_seed(3))
    drawn = sorted(row for x, y in batches for row in _rows(x, y, corpus))
    want = sorted(row for x, y in [corpus.sequence_batch(expected)] for row in _rows(x, y, corpus))
    assert drawn == want  # the items of a random draw without replacement, only grouped differently


def test_batches_of_a_pool_hold_about_the_same_number_of_targets(monkeypatch):
    monkeypatch.setattr(batching, "POOL_BATCHES", 10)
    corpus = _corpus(_long_tailed_words(2000))
    batches = _pool_batches(SequenceBatcher(corpus, batching="length"), 32, torch.Generator().manual_seed(2))
    targets = [int((y != -1).sum()) for _, y in batches]
    items = [x.size(0) for x, _ in batches]
    share, longest = sum(targets) / len(targets), int(corpus.lengths.max()) + 1
    assert len(batches) == 10 and sum(items) == 10 * 32
    assert all(abs(t - share) <= longest for t in targets)  # each within one item of its share
    assert max(items) > 2 * min(items)  # more short items than long ones


def test_batches_of_a_pool_are_disjoint_length_ranges_in_random_order(monkeypatch):
    monkeypatch.setattr(batching, "POOL_BATCHES", 8)
    corpus = _corpus(_long_tailed_words())
    ranges = []
    for _x, y in _pool_batches(SequenceBatcher(corpus, batching="length"), 16, torch.Generator().manual_seed(0)):
        lengths = (y != -1).sum(1) - 1  # characters of each item
        ranges.append((int(lengths.min()), int(lengths.max())))
    ordered = sorted(ranges)
    assert all(a[1] <= b[0] for a, b in zip(ordered, ordered[1:]))
    assert ranges != ordered  # handed out shuffled, not shortest first


def test_a_corpus_smaller_than_the_pool_is_one_pool_of_distinct_items():
    corpus = _corpus(_long_tailed_words(100))
    batches = _pool_batches(SequenceBatcher(corpus, batching="length"), 16, torch.Generator().manual_seed(0))
    rows = [row for x, y in batches for row in _rows(x, y, corpus)]
    assert len(rows) == 96  # 6 batches' worth: every item but 4, once each
    small = SequenceBatcher(_corpus(["ab", "abc", "abcd"]), batching="length")
    x, y = small.sample(8, torch.Generator().manual_seed(0))  # fewer items than a batch: with replacement
    assert x.size(0) == 8


def test_length_batches_have_less_padding_than_random_ones():
    corpus = _corpus(_long_tailed_words(2000))

    def padding(kind: str) -> float:
        batcher, g = SequenceBatcher(corpus, batching=kind), torch.Generator().manual_seed(1)
        pads = [(y == -1).float().mean() for _, y in (batcher.sample(32, g) for _ in range(200))]
        return float(torch.stack(pads).mean())

    random_pad, length_pad = padding("random"), padding("length")
    assert random_pad > 0.6  # nearly every random batch of 32 holds a 30-character item
    assert length_pad < 0.25 * random_pad


def test_state_dict_continues_inside_the_pool(monkeypatch):
    monkeypatch.setattr(batching, "POOL_BATCHES", 4)
    corpus = _corpus(_long_tailed_words())
    straight, g = SequenceBatcher(corpus), torch.Generator().manual_seed(7)
    expected = [straight.sample(8, g) for _ in range(11)]
    for cut in (0, 1, 3, 4, 6):  # before any pool, inside one, at a pool boundary
        first, g1 = SequenceBatcher(corpus), torch.Generator().manual_seed(7)
        for _ in range(cut):
            first.sample(8, g1)
        resumed, g2 = SequenceBatcher(corpus), torch.Generator()
        resumed.load_state_dict({k: v.clone() for k, v in first.state_dict().items()})
        g2.set_state(g1.get_state())
        for want_x, want_y in expected[cut:]:
            x, y = resumed.sample(8, g2)
            assert torch.equal(x, want_x) and torch.equal(y, want_y), cut


def test_random_batching_draws_as_before():
    corpus = _corpus(_long_tailed_words())
    x, y = SequenceBatcher(corpus, batching="random").sample(16, torch.Generator().manual_seed(5))
    want_x, want_y = corpus.sequence_batch(
        torch.randint(0, len(corpus), (16,), generator=torch.Generator().manual_seed(5))
    )
    assert torch.equal(x, want_x) and torch.equal(y, want_y)
    assert SequenceBatcher(corpus, batching="random").state_dict() == {}


def _gru_config(path, steps: int) -> api.RunConfig:
    train = dict(steps=steps, batch_size=8, eval_interval=3, log_interval=1, schedule="constant", warmup_steps=0)
    return api.RunConfig(
        model="gru",
        model_config=api.make_config("gru", {"n_embd": 4, "n_hidden": 8}),
        data=api.DataConfig(input=str(path)),
        train=api.default_train_config("gru", train),
    )


def test_a_resumed_sequence_run_is_bit_identical(tmp_path, monkeypatch):
    monkeypatch.setattr(batching, "POOL_BATCHES", 4)  # checkpoints at steps 3 and 6: inside pools
    words = write_words(tmp_path / "words.txt", _long_tailed_words(200))
    assert _gru_config(words, 9).train.batching == "length"  # the default
    api.train(_gru_config(words, 9), tmp_path / "straight", progress=False)
    api.train(_gru_config(words, 3), tmp_path / "resumed", progress=False)
    api.resume(tmp_path / "resumed", steps=6, progress=False)
    api.resume(tmp_path / "resumed", steps=9, progress=False)
    a = load_checkpoint(tmp_path / "straight" / "last.safetensors")
    b = load_checkpoint(tmp_path / "resumed" / "last.safetensors")
    assert a.model_state.keys() == b.model_state.keys()
    for name in a.model_state:
        assert torch.equal(a.model_state[name], b.model_state[name]), name
    assert torch.equal(a.rng_state["batcher.pool"], b.rng_state["batcher.pool"])


def test_unknown_batching_names_the_field():
    with pytest.raises(api.ConfigError, match="batching"):
        api.TrainConfig(batching="sorted")


# -- windows built when drawn; evaluation chunks; pools of a big corpus ------------------------


def test_window_batches_are_the_rows_of_every_window_drawn_as_before():
    from makemore.data.batching import WindowBatcher

    corpus = _corpus(_long_tailed_words(300))
    X, Y = corpus.windows(4)
    batcher = WindowBatcher(corpus, 4)
    x, y = batcher.sample(32, torch.Generator().manual_seed(9))
    ix = torch.randint(0, Y.numel(), (32,), generator=torch.Generator().manual_seed(9))  # the draws of before
    assert torch.equal(x, X[ix]) and torch.equal(y, Y[ix])
    chunks = list(batcher.chunks(100))
    assert torch.equal(torch.cat([c[0] for c in chunks]), X) and torch.equal(torch.cat([c[1] for c in chunks]), Y)
    assert torch.equal(batcher.X, X) and torch.equal(batcher.Y, Y) and batcher.num_targets == corpus.num_targets


@pytest.mark.parametrize("ordered", [True, False])
def test_evaluation_chunks_hold_every_item_once_in_bounded_batches(ordered):
    corpus = _corpus(_long_tailed_words(1000))
    batcher = SequenceBatcher(corpus)
    chunks = list(batcher.chunks(256, ordered=ordered))
    rows = [row for x, y in chunks for row in _rows(x, y, corpus)]
    assert sorted(rows) == _rows(*corpus.sequence_batch(torch.arange(len(corpus))), corpus)
    longest = corpus.max_len + 1
    padding = sum(int((y == -1).sum()) for _, y in chunks) / sum(y.numel() for _, y in chunks)
    if ordered:  # targets in corpus order, runs of 256 // 31 items
        assert all(x.numel() <= 256 for x, _ in chunks) and padding > 0.5
        assert torch.equal(torch.cat([y[y != -1] for _, y in chunks]), corpus.windows(1)[1])
    else:  # sorted by length within a window: little padding, about 256 targets a chunk
        assert padding < 0.1 and all(int((y != -1).sum()) <= 256 + longest for _, y in chunks)


def test_a_big_corpus_draws_its_pools_without_a_permutation_and_resumes_exactly(monkeypatch):
    monkeypatch.setattr(batching, "POOL_BATCHES", 4)
    monkeypatch.setattr(batching, "BIG_CORPUS", 2)  # 400 items >= 2 x 4 x 16: the draws of a big corpus
    corpus = _corpus(_long_tailed_words())
    items = batching._distinct(len(corpus), 64, torch.Generator().manual_seed(3))
    assert items.numel() == items.unique().numel() == 64
    assert torch.equal(items, batching._distinct(len(corpus), 64, torch.Generator().manual_seed(3)))
    straight, g = SequenceBatcher(corpus), torch.Generator().manual_seed(7)
    expected = [straight.sample(16, g) for _ in range(9)]
    first, g1 = SequenceBatcher(corpus), torch.Generator().manual_seed(7)
    for _ in range(5):
        first.sample(16, g1)
    resumed, g2 = SequenceBatcher(corpus), torch.Generator()
    resumed.load_state_dict(first.state_dict())
    g2.set_state(g1.get_state())
    for want_x, want_y in expected[5:]:
        x, y = resumed.sample(16, g2)
        assert torch.equal(x, want_x) and torch.equal(y, want_y)


def test_distinct_draws_are_uniform():
    counts = torch.zeros(50)
    g = torch.Generator().manual_seed(0)
    for _ in range(2000):
        counts[batching._distinct(50, 1, g)] += 1  # k = 1: always the uniform draws' path
        counts[batching._distinct(50, 5, g)[0]] += 1
    assert counts.sum() == 4000 and counts.min() > 40 and counts.max() < 125  # about 80 each


def test_evaluation_chunks_of_a_corpus_smaller_than_a_chunk():
    corpus = _corpus(["ab", "c", "abc"])
    for ordered in (True, False):
        chunks = list(SequenceBatcher(corpus).chunks(ordered=ordered))
        assert len(chunks) == 1 and sorted(_rows(*chunks[0], corpus)) == _rows(
            *corpus.sequence_batch(torch.arange(3)), corpus
        )
    assert list(SequenceBatcher(_corpus(["ab"]).subset(torch.zeros(0, dtype=torch.int64))).chunks(ordered=False)) == []
