"""Sampling: logit filters, batched generation with a fake model, and item-level options."""

from __future__ import annotations

import pytest
import torch

from makemore.data.corpus import Vocab
from makemore.errors import MakemoreError
from makemore.generate.sampling import SampleConfig, Sampler, decode_rows, filter_logits, generate_tokens
from makemore.models.base import WindowModel


def sample_items(model, vocab, config, **kwargs) -> list[str]:
    """The items of one ``Sampler`` (its keyword arguments), as a list."""
    return Sampler(model, vocab, config, **kwargs).all()


NEG_INF = float("-inf")


# -- filter_logits --------------------------------------------------------------------------


def kept(logits: torch.Tensor) -> list[list[int]]:
    return [[i for i, v in enumerate(row) if v != NEG_INF] for row in logits.tolist()]


def test_temperature_zero_is_greedy():
    logits = torch.tensor([[1.0, 3.0, 2.0], [0.5, -1.0, 0.2]])
    out = filter_logits(logits, 0.0, 0, 1.0)
    assert out.tolist() == [[NEG_INF, 3.0, NEG_INF], [0.5, NEG_INF, NEG_INF]]
    # greedy wins over top-k/top-p settings
    assert torch.equal(filter_logits(logits, 0.0, 3, 0.99), out)


def test_temperature_zero_keeps_ties():
    out = filter_logits(torch.tensor([[2.0, 1.0, 2.0]]), 0.0, 0, 1.0)
    assert kept(out) == [[0, 2]]


def test_temperature_scales_logits():
    logits = torch.tensor([[1.0, -2.0, 4.0]])
    # shifted so that the largest is 0 (the same probabilities), then divided by the temperature
    assert filter_logits(logits, 2.0, 0, 1.0).tolist() == [[-1.5, -3.0, 0.0]]
    assert filter_logits(logits, 1.0, 0, 1.0).tolist() == [[-3.0, -6.0, 0.0]]
    assert torch.allclose(
        torch.softmax(filter_logits(logits, 2.0, 0, 1.0), -1), torch.softmax(logits.double() / 2.0, -1), atol=1e-15
    )
    assert torch.equal(logits, torch.tensor([[1.0, -2.0, 4.0]]))  # input untouched


@pytest.mark.parametrize("temperature", [1e-308, 5e-324, 1e-45, 1e-12])
def test_a_temperature_that_underflows_is_greedy(temperature):
    """logits / 1e-308 overflows to inf (softmax: NaN); the shifted logits give 0 and -inf."""
    logits = torch.tensor([[1.0, 3.0, 2.0, 3.0], [0.5, -1.0, 0.2, float("-inf")]])
    out = filter_logits(logits, temperature, 0, 1.0)
    assert not out.isnan().any() and out.max(-1).values.tolist() == [0.0, 0.0]
    assert torch.softmax(out, -1).tolist() == [[0.0, 0.5, 0.0, 0.5], [1.0, 0.0, 0.0, 0.0]]
    rows = gen(TableModel(CHAIN), num=4, temperature=temperature, max_len=10)
    assert rows.tolist() == gen(TableModel(CHAIN), num=4, temperature=0.0, max_len=10).tolist() == [[0, 1, 2, 0]] * 4


@pytest.mark.parametrize(
    "k, expected",
    [(1, [[1]]), (2, [[1, 3]]), (3, [[1, 2, 3]]), (4, [[0, 1, 2, 3]]), (9, [[0, 1, 2, 3]]), (0, [[0, 1, 2, 3]])],
)
def test_top_k_keeps_k(k, expected):
    logits = torch.tensor([[1.0, 4.0, 2.0, 3.0]])
    out = filter_logits(logits, 1.0, k, 1.0)
    assert kept(out) == expected
    for i in expected[0]:
        assert out[0, i] == logits[0, i] - 4.0  # kept logits unchanged but for the shift (the max is 0)


def test_top_k_per_row():
    logits = torch.tensor([[1.0, 4.0, 2.0, 3.0], [9.0, 0.0, 5.0, 7.0]])
    assert kept(filter_logits(logits, 1.0, 2, 1.0)) == [[1, 3], [0, 3]]


def log_probs(*ps):
    return torch.tensor([ps]).log()


@pytest.mark.parametrize(
    "top_p, expected",
    [
        (0.4, [1]),  # 0.5 alone is enough
        (0.7, [1, 3]),  # 0.5 + 0.3 = 0.8 >= 0.7, 0.5 < 0.7
        (0.85, [0, 1, 3]),  # 0.95 needed
        (0.9, [0, 1, 3]),
        (0.97, [0, 1, 2, 3]),
        (1.0, [0, 1, 2, 3]),
    ],
)
def test_top_p_keeps_smallest_nucleus(top_p, expected):
    # probabilities 0.15, 0.5, 0.05, 0.3 (deliberately not sorted)
    logits = log_probs(0.15, 0.5, 0.05, 0.3)
    out = filter_logits(logits, 1.0, 0, top_p)
    assert kept(out) == [expected]
    probs = torch.softmax(out, dim=-1)[0].float()
    nucleus = torch.tensor([0.15, 0.5, 0.05, 0.3])[expected]
    assert torch.allclose(probs[expected], nucleus / nucleus.sum(), atol=1e-6)


def test_top_p_per_row():
    logits = torch.cat([log_probs(0.6, 0.3, 0.1), log_probs(0.1, 0.3, 0.6)])
    assert kept(filter_logits(logits, 1.0, 0, 0.7)) == [[0, 1], [1, 2]]
    assert kept(filter_logits(logits, 1.0, 0, 0.5)) == [[0], [2]]


def test_top_p_after_temperature():
    logits = log_probs(0.5, 0.3, 0.15, 0.05)
    assert kept(filter_logits(logits, 1.0, 0, 0.6)) == [[0, 1]]
    # T = 0.5 squares the probabilities: 0.685, 0.247, 0.062, 0.007
    assert kept(filter_logits(logits, 0.5, 0, 0.6)) == [[0]]
    assert kept(filter_logits(logits, 0.5, 0, 0.9)) == [[0, 1]]


@pytest.mark.parametrize("top_p", [1e-320, 5e-324, 1e-45, 1e-9])
def test_a_tiny_top_p_keeps_the_most_likely_token(top_p):
    """A top_p below float32's smallest number was 0: every token dropped, softmax NaN."""
    logits = log_probs(0.15, 0.5, 0.05, 0.3)
    out = filter_logits(logits, 1.0, 0, top_p)
    assert kept(out) == [[1]] and torch.softmax(out, -1).tolist() == [[0.0, 1.0, 0.0, 0.0]]
    assert kept(filter_logits(logits, 1e-308, 2, top_p)) == [[1]]


def test_top_k_then_top_p():
    logits = log_probs(0.4, 0.3, 0.2, 0.1)
    # top-2 renormalises to 4/7, 3/7; a 0.5 nucleus is then just the first
    assert kept(filter_logits(logits, 1.0, 2, 0.5)) == [[0]]
    assert kept(filter_logits(logits, 1.0, 3, 0.95)) == [[0, 1, 2]]


# -- a fake model ---------------------------------------------------------------------------

# Vocabulary: boundary 0 and 'a' 1, 'b' 2, 'c' 3.
VOCAB = Vocab(("a", "b", "c"))


class TableModel(WindowModel):
    """Next-token logits depend only on the previous token: ``logits = table[prev]``."""

    def __init__(self, table):
        super().__init__()
        self.block_size = 1
        self.vocab_size = 4
        self.register_buffer("table", torch.tensor(table, dtype=torch.float32))
        self.calls = 0
        self.modes: list[bool] = []
        self.batch_sizes: list[int] = []

    def forward(self, idx, targets=None):
        assert idx.shape[1] == 1
        self.calls += 1
        self.modes.append(self.training)
        self.batch_sizes.append(idx.shape[0])
        logits = self.table[idx[:, -1]]
        return logits, self.loss_from_logits(logits, targets)


BIG = 20.0
# start -> a, a -> b, b -> end; c -> end.  Greedy: "ab".
CHAIN = [[0, BIG, 0, 0], [0, 0, BIG, 0], [BIG, 0, 0, 0], [BIG, 0, 0, 0]]
# The boundary is always the most likely token.
ENDS = [[5.0, 1.0, 0.0, 0.0]] * 4
# The boundary is never the most likely token: greedy repeats 'a'.
NEVER_ENDS = [[-5.0, 5.0, 0.0, 0.0]] * 4
# Uniform over all four tokens.
UNIFORM = [[0.0] * 4] * 4


def gen(model, num=3, prefix=(), seed=0, **kwargs):
    return generate_tokens(
        model,
        num,
        prefix_ids=torch.tensor(prefix, dtype=torch.int64),
        generator=torch.Generator().manual_seed(seed),
        **kwargs,
    )


def test_generate_greedy_stops_when_all_rows_end():
    model = TableModel(CHAIN)
    tokens = gen(model, num=3, temperature=0.0, max_len=10)
    assert tokens.tolist() == [[0, 1, 2, 0]] * 3
    assert model.calls == 3  # lengths 0, 1, 2; then every row has ended
    assert decode_rows(tokens, VOCAB) == ["ab"] * 3


def test_generate_honours_prefix():
    model = TableModel(CHAIN)
    tokens = gen(model, num=2, prefix=[3, 1], temperature=0.0, max_len=10)
    # the prefix is kept as given; after 'a' the chain goes on with 'b' then ends
    assert tokens.tolist() == [[0, 3, 1, 2, 0]] * 2
    assert model.calls == 2
    tokens = gen(TableModel(CHAIN), num=1, prefix=[2], temperature=0.0, max_len=10)
    assert tokens.tolist() == [[0, 2, 0]]


def test_generate_min_len():
    model = TableModel(ENDS)  # the end is the most likely token, also at the first position: one character
    assert gen(model, num=2, temperature=0.0, max_len=10).tolist() == [[0, 1, 0]] * 2
    model = TableModel(ENDS)
    tokens = gen(model, num=2, temperature=0.0, min_len=3, max_len=10)
    assert tokens.tolist() == [[0, 1, 1, 1, 0]] * 2
    assert model.calls == 4
    # the prefix counts towards min_len
    tokens = gen(TableModel(ENDS), num=1, prefix=[3, 3], temperature=0.0, min_len=3, max_len=10)
    assert tokens.tolist() == [[0, 3, 3, 1, 0]]


def test_generate_min_len_when_sampling():
    tokens = gen(TableModel(ENDS), num=200, temperature=1.0, min_len=2, max_len=6, seed=3)
    lengths = [len(s) for s in decode_rows(tokens, VOCAB)]
    assert min(lengths) >= 2
    assert max(lengths) <= 6


def test_generate_max_len():
    model = TableModel(NEVER_ENDS)
    tokens = gen(model, num=2, temperature=0.0, max_len=4)
    assert tokens.tolist() == [[0, 1, 1, 1, 1, 0]] * 2
    assert model.calls == 5
    # the prefix counts towards max_len
    model = TableModel(NEVER_ENDS)
    tokens = gen(model, num=1, prefix=[2, 3], temperature=0.0, max_len=4)
    assert tokens.tolist() == [[0, 2, 3, 1, 1, 0]]
    assert model.calls == 3
    # a prefix of exactly max_len ends at once
    assert gen(TableModel(NEVER_ENDS), num=1, prefix=[2, 3], max_len=2).tolist() == [[0, 2, 3, 0]]


def test_generate_max_len_when_sampling():
    tokens = gen(TableModel(UNIFORM), num=300, max_len=3, seed=1)
    assert tokens.shape[1] <= 1 + 3 + 1
    assert max(len(s) for s in decode_rows(tokens, VOCAB)) == 3


def test_generate_prefix_longer_than_max_len():
    with pytest.raises(MakemoreError, match="prefix"):
        gen(TableModel(CHAIN), num=1, prefix=[1, 2, 3], max_len=2)


def test_generate_rows_after_end_are_zero():
    # start -> 'a' or 'c' (equally likely); a -> end; c -> b; b -> end.
    table = [[-1e9, 0.0, -1e9, 0.0], [1e9, 0, 0, 0], [1e9, 0, 0, 0], [0, 0, 1e9, 0]]
    model = TableModel(table)
    tokens = gen(model, num=64, max_len=10, seed=0)
    rows = tokens.tolist()
    assert tokens.shape == (64, 4)
    assert {tuple(r) for r in rows} == {(0, 1, 0, 0), (0, 3, 2, 0)}
    assert model.calls == 3
    assert decode_rows(tokens, VOCAB).count("a") + decode_rows(tokens, VOCAB).count("cb") == 64


def test_generate_is_deterministic_per_generator():
    a = gen(TableModel(UNIFORM), num=50, max_len=8, seed=7)
    b = gen(TableModel(UNIFORM), num=50, max_len=8, seed=7)
    c = gen(TableModel(UNIFORM), num=50, max_len=8, seed=8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_decode_rows_cuts_at_end():
    tokens = torch.tensor([[0, 1, 2, 0, 3, 3], [0, 0, 1, 1, 1, 1], [0, 3, 3, 3, 3, 3]])
    assert decode_rows(tokens, VOCAB) == ["ab", "", "ccccc"]


# -- sample_items ---------------------------------------------------------------------------


def items(table=UNIFORM, **kwargs):
    defaults = dict(default_max_len=8)
    extra = {k: kwargs.pop(k) for k in ("default_max_len", "model_limit", "known_items") if k in kwargs}
    return sample_items(TableModel(table), VOCAB, SampleConfig(**kwargs), **{**defaults, **extra})


def test_sample_same_seed_same_items():
    first = items(num=30, seed=1)
    assert len(first) == 30
    assert items(num=30, seed=1) == first
    assert items(num=30, seed=2) != first
    assert all(set(s) <= set("abc") for s in first)


def test_sample_batch_size_does_not_change_count():
    assert len(items(num=25, seed=0, batch_size=7)) == 25
    assert items(num=0) == []


def test_sample_new_only_never_returns_known_items():
    known = {"", "a", "b", "c", "aa", "ab"}
    result = items(num=40, seed=0, new_only=True, known_items=known)
    assert len(result) == 40
    assert not set(result) & known


def test_sample_unique_has_no_repeats():
    result = items(num=40, seed=0, unique=True)
    assert len(result) == len(set(result)) == 40
    both = items(num=30, seed=3, unique=True, new_only=True, known_items={"a", "b"})
    assert len(set(both)) == 30 and not {"a", "b"} & set(both)


def test_sample_unique_impossible_gives_up():
    with pytest.raises(MakemoreError, match="gave up"):
        items(CHAIN, num=2, temperature=0.0, unique=True, batch_size=1)


def test_sample_prefix_and_lengths():
    result = items(num=50, seed=0, prefix="ca", min_len=3, max_len=5)
    assert all(s.startswith("ca") and 3 <= len(s) <= 5 for s in result)


def test_sample_default_max_len_and_model_limit():
    assert max(len(s) for s in items(NEVER_ENDS, num=5, default_max_len=6)) == 6
    assert max(len(s) for s in items(NEVER_ENDS, num=5, default_max_len=6, model_limit=4)) == 4
    assert max(len(s) for s in items(NEVER_ENDS, num=5, max_len=3, default_max_len=6, model_limit=4)) == 3


def test_sample_greedy():
    assert items(CHAIN, num=3, temperature=0.0) == ["ab"] * 3


def test_sample_restores_mode():
    model = TableModel(UNIFORM)
    model.train()
    sample_items(model, VOCAB, SampleConfig(num=3), default_max_len=5)
    assert model.training
    assert model.modes and not any(model.modes)  # generated in eval mode
    model.eval()
    sample_items(model, VOCAB, SampleConfig(num=3), default_max_len=5)
    assert not model.training


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num=-1), "num"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(top_p=-0.1), "top_p"),
        (dict(temperature=-0.5), "temperature"),
        (dict(min_len=9, max_len=8), "min_len"),
        (dict(min_len=9), "min_len"),  # default_max_len is 8
        (dict(max_len=10, model_limit=6), "max_len"),
        (dict(prefix="az"), "'z'"),
        (dict(new_only=True), "new_only"),
    ],
)
def test_sample_bad_options(kwargs, match):
    with pytest.raises(MakemoreError, match=match):
        items(**kwargs)


def test_sample_negative_top_k_is_rejected():
    with pytest.raises(MakemoreError, match="top_k"):
        items(num=3, top_k=-1)


@pytest.mark.parametrize("batch_size", [0, -1])
def test_sample_bad_batch_size_is_rejected(batch_size):
    with pytest.raises(MakemoreError, match="batch_size"):
        items(num=3, batch_size=batch_size)


# -- real models: dropping ended rows from the batch ------------------------------------------


@pytest.mark.parametrize("family", ["mlp", "wavenet", "gru", "lstm", "transformer"])
def test_dropping_ended_rows_does_not_change_the_items(family):
    """Rows that end leave the model's batch (and its cache); the draws stay the same."""
    from makemore.models import build_model, make_config

    options = {"transformer": dict(block_size=12, n_layer=2, n_head=2, n_embd=16)}.get(family, {})
    torch.manual_seed(0)
    model = build_model(family, make_config(family, options), 6).eval()
    with torch.no_grad():  # make the boundary likely, so that rows end at different steps
        head = model.lm_head if hasattr(model, "lm_head") else model.out
        if head.bias is not None:
            head.bias[0] = 1.5
    batch_sizes = []
    real = model.next_token_logits

    def spy(idx, cache=None):
        batch_sizes.append(idx.size(0))
        return real(idx, cache)

    model.next_token_logits = spy
    outputs = []
    for fraction in (0.0, 0.5, 2.0):  # compact at every end, at half the batch, never
        batch_sizes.clear()
        outputs.append(
            generate_tokens(
                model,
                64,
                prefix_ids=torch.tensor([2]),
                generator=torch.Generator().manual_seed(3),
                max_len=11,
                compact_fraction=fraction,
            )
        )
        if fraction == 0.0:
            shrinking = list(batch_sizes)
        if fraction == 2.0:
            assert set(batch_sizes) == {64}
    assert torch.equal(outputs[0], outputs[1]) and torch.equal(outputs[0], outputs[2])
    lengths = (outputs[0][:, 1:] != 0).sum(1)
    assert lengths.min() < lengths.max()  # rows did end at different steps
    assert shrinking[0] == 64 and shrinking[-1] < 64 and shrinking == sorted(shrinking, reverse=True)


@pytest.mark.parametrize("bits", [None, 2])
def test_new_only_against_known_items_looked_up_in_bulk_is_exact(monkeypatch, bits):
    """KnownItems (a training file's items, hashed) drops exactly the known items, also when
    every hash collides with many other items (a few-bit hash)."""
    from makemore.data import itemsets
    from makemore.data.corpus import EncodedCorpus
    from makemore.data.itemsets import KnownItems

    if bits is not None:
        real = itemsets.item_hashes
        monkeypatch.setattr(itemsets, "item_hashes", lambda corpus, **kw: real(corpus, **kw) & ((1 << bits) - 1))
    training = ["a", "b", "c", "aa", "ab", "ba", "abc", "cab", "a", "ab"]
    known = KnownItems(EncodedCorpus.from_words(training, VOCAB), VOCAB)
    with_set = items(num=60, seed=4, new_only=True, known_items=set(training))
    with_known = items(num=60, seed=4, new_only=True, known_items=known)
    assert with_known == with_set and len(with_known) == 60 and not set(with_known) & set(training)


def test_every_way_of_consuming_a_sampler_gives_the_same_items(trained_run):
    from makemore import api

    run = api.load_run(trained_run.out_dir)
    config = SampleConfig(num=30, seed=4, suffix="a", unique=True)

    def sampler():
        return Sampler.of(run, config, known_items=api.training_items(run))

    batches = list(sampler().batches())
    items = [item for batch in batches for item in batch]
    assert len(items) == 30 and len(batches) >= 1
    assert list(sampler().items()) == sampler().all() == items == api.sample(run, config)
    scored = list(sampler().scored())
    assert [s.item for s in scored] == items
    known = set(trained_run.words)
    assert [s.known for s in scored] == [item in known for item in items]
    assert all(s.distance is None and s.nll > 0 for s in scored)
