"""Count-based n-gram model checked against naive pure-Python counting."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from makemore.errors import MakemoreError
from makemore.models import ngram
from makemore.models.configs import NGramConfig
from makemore.models.ngram import NGramModel

ALPHABET = "abcdefgh"


def make_words(seed: int, n: int = 200, alphabet: str = ALPHABET, max_len: int = 8) -> list[str]:
    """Random words with skewed letter frequencies, so that many n-grams stay unseen."""
    rng = random.Random(seed)
    weights = [0.6**i for i in range(len(alphabet))]
    return ["".join(rng.choices(alphabet, weights, k=rng.randint(1, max_len))) for _ in range(n)]


def naive_examples(words: list[str], order: int) -> tuple[list[tuple[int, ...]], list[int]]:
    """(context, target) pairs the slow way: boundary-padded contexts, 0 ends each word."""
    chars = sorted(set("".join(words)))
    stoi = {c: i + 1 for i, c in enumerate(chars)}
    contexts, targets = [], []
    for word in words:
        context = [0] * (order - 1)
        for token in [stoi[c] for c in word] + [0]:
            contexts.append(tuple(context))
            targets.append(token)
            context = (context + [token])[1:]
    return contexts, targets


def to_tensors(contexts, targets, order):
    X = torch.tensor(contexts, dtype=torch.int64).reshape(len(contexts), order - 1)
    return X, torch.tensor(targets, dtype=torch.int64)


def fitted(words, order, V=None, **config):
    contexts, targets = naive_examples(words, order)
    V = V or len(set("".join(words))) + 1
    model = NGramModel(NGramConfig(order=order, **config), V)
    model.fit(*to_tensors(contexts, targets, order))
    return model, contexts, targets, V


def all_contexts(V: int, order: int) -> torch.Tensor:
    rows = list(itertools.product(range(V), repeat=order - 1))
    return torch.tensor(rows, dtype=torch.int64).reshape(len(rows), order - 1)


def add_k_prob(counts: Counter, totals: Counter, context, w, k, V) -> float:
    if totals[context] == 0:
        return 1.0 / V
    return (counts[(context, w)] + k) / (totals[context] + k * V)


class NaiveKN:
    """Interpolated Kneser-Ney written from the formula with dicts and recursion."""

    def __init__(self, contexts, targets, V, order, D):
        self.V, self.n, self.D = V, order, D
        raw = {m: Counter() for m in range(1, order + 1)}  # m -> {(h, w): count}, len(h) = m - 1
        for context, w in zip(contexts, targets):
            for m in range(1, order + 1):
                raw[m][(tuple(context[len(context) - (m - 1) :]), w)] += 1
        self.adjusted = {order: raw[order]}  # raw counts at the top, continuation counts below
        for m in range(1, order):
            continuation = Counter()  # N1+(. h w): one per distinct (v, h, w) seen
            for g, w in raw[m + 1]:
                continuation[(g[1:], w)] += 1
            self.adjusted[m] = continuation
        self.totals = {m: Counter() for m in self.adjusted}
        self.types = {m: Counter() for m in self.adjusted}
        for m, table in self.adjusted.items():
            for (h, _), c in table.items():
                self.totals[m][h] += c
                self.types[m][h] += 1

    def prob(self, context, w, m=None) -> float:
        m = self.n if m is None else m
        if m == 0:
            return 1.0 / self.V
        h = tuple(context[len(context) - (m - 1) :])
        total = self.totals[m][h]
        lower = self.prob(context, w, m - 1)
        if total == 0:
            return lower
        c = self.adjusted[m].get((h, w), 0)
        return max(c - self.D, 0) / total + self.D * self.types[m][h] / total * lower


def naive_kn_bigram(contexts, targets, V, D):
    """The textbook interpolated KN bigram: P(w|v) from c(v, w) and N1+(. w), over uniform."""
    bigrams = Counter((ctx[0], w) for ctx, w in zip(contexts, targets))
    c_v = Counter()
    follow = Counter()  # N1+(v .)
    precede = Counter()  # N1+(. w)
    for (v, w), c in bigrams.items():
        c_v[v] += c
        follow[v] += 1
        precede[w] += 1
    n_types = len(bigrams)  # N1+(. .)
    p_cont = [max(precede[w] - D, 0) / n_types + D * len(precede) / n_types / V for w in range(V)]
    table = []
    for v in range(V):
        if c_v[v] == 0:
            table.append(list(p_cont))
        else:
            table.append([max(bigrams[(v, w)] - D, 0) / c_v[v] + D * follow[v] / c_v[v] * p_cont[w] for w in range(V)])
    return table


WORDS = make_words(0)


def context_counts(model: NGramModel, idx: torch.Tensor) -> torch.Tensor:
    """(B, V) raw training counts of every next token after the (B, order - 1) contexts, read
    from the model's top-order tables (zeros for contexts never seen)."""
    out = torch.zeros(idx.size(0), model.vocab_size, dtype=torch.int64)
    hit = model._lookup(model.order, model._encode(idx))
    if hit is None:
        return out
    rows, found = hit
    return torch.where(found[:, None], model._table(model.order, "counts")[rows], out)


def counts_matrix(model: NGramModel) -> torch.Tensor:
    """(V, V) dense bigram counts of an order-2 model."""
    assert model.order == 2
    out = torch.zeros(model.vocab_size, model.vocab_size, dtype=torch.int64)
    out[model._table(2, "context_ids")] = model._table(2, "counts")
    return out


# ---------------------------------------------------------------- counting


def test_counts_matrix_order2_equals_naive_counts():
    model, contexts, targets, V = fitted(WORDS, 2)
    expected = torch.zeros(V, V, dtype=torch.int64)
    for (prev, nxt), c in Counter((ctx[0], w) for ctx, w in zip(contexts, targets)).items():
        expected[prev, nxt] = c
    got = counts_matrix(model)
    assert got.dtype == torch.int64 and got.shape == (V, V)
    assert torch.equal(got, expected)
    assert int(got.sum()) == len(targets)


@pytest.mark.parametrize("order", [1, 3, 4, 5])
def test_context_counts_and_mle_probabilities_equal_naive(order):
    model, contexts, targets, V = fitted(WORDS, order, k=0.0)
    counts = Counter(zip(contexts, targets))
    totals = Counter(contexts)
    seen = sorted(totals)
    rng = random.Random(order)
    unseen = [c for c in (tuple(rng.randrange(V) for _ in range(order - 1)) for _ in range(50)) if c not in totals]
    query = seen + unseen
    idx = torch.tensor(query, dtype=torch.int64).reshape(len(query), order - 1)
    expected = torch.tensor([[counts[(c, w)] for w in range(V)] for c in query], dtype=torch.int64)
    assert torch.equal(context_counts(model, idx), expected)
    # probabilities of seen contexts with k = 0 are count / total
    probs = model(idx[: len(seen)])[0].double().exp()
    mle = expected[: len(seen)].double() / expected[: len(seen)].sum(1, keepdim=True)
    assert torch.allclose(probs, mle, rtol=0, atol=1e-6)
    if order > 1:
        assert unseen, "the corpus should leave some contexts unseen"


def test_fit_replaces_previous_fit():
    other = make_words(1, n=50, alphabet="ab")
    model, contexts, targets, V = fitted(WORDS, 3, smoothing="kneser-ney")
    model.fit(*to_tensors(*naive_examples(other, 3), 3))
    fresh = NGramModel(NGramConfig(order=3, smoothing="kneser-ney"), V)
    fresh.fit(*to_tensors(*naive_examples(other, 3), 3))
    for (name, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        assert torch.equal(a, b), name
    idx = all_contexts(V, 3)
    assert torch.equal(model(idx)[0], fresh(idx)[0])


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_dense_and_sorted_counting_paths_agree(monkeypatch, order):
    """fit counts small context spaces with one bincount and large ones via torch.unique."""
    tables = []
    for buckets in (10**30, -(10**30)):  # always dense, never dense
        monkeypatch.setattr(ngram, "_DENSE_BUCKETS", buckets)
        model, *_ = fitted(WORDS, order, smoothing="kneser-ney")
        tables.append(model.state_dict())
    assert tables[0].keys() == tables[1].keys()
    for name in tables[0]:
        assert torch.equal(tables[0][name], tables[1][name]), name


@pytest.mark.parametrize("order", [1, 3, 5])
@pytest.mark.parametrize("buckets", [10**30, -(10**30)])
def test_fitting_a_batcher_a_few_examples_at_a_time_counts_as_fitting_every_example(monkeypatch, order, buckets):
    """fit_batcher counts FIT_CHUNK examples at a time (and merges the chunks' tables): the same tables."""
    from makemore.data.corpus import EncodedCorpus, Vocab

    monkeypatch.setattr(ngram, "_DENSE_BUCKETS", buckets)
    whole, *_ = fitted(WORDS, order, smoothing="kneser-ney")
    vocab = Vocab.from_words(WORDS)
    chunked = NGramModel(NGramConfig(order=order, smoothing="kneser-ney"), vocab.size)
    monkeypatch.setattr(ngram, "FIT_CHUNK", 37)
    chunked.fit_batcher(chunked.batcher(EncodedCorpus.from_words(WORDS, vocab)))
    assert whole.state_dict().keys() == chunked.state_dict().keys()
    for name, table in whole.state_dict().items():
        assert torch.equal(table, chunked.state_dict()[name]), name


def test_fit_on_no_examples_gives_uniform():
    model = NGramModel(NGramConfig(order=3, smoothing="kneser-ney"), 5)
    model.fit(torch.zeros(0, 2, dtype=torch.int64), torch.zeros(0, dtype=torch.int64))
    logits, _ = model(all_contexts(5, 3))
    assert torch.allclose(logits, torch.full_like(logits, -math.log(5)))


# ---------------------------------------------------------------- add-k


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("k", [0.0, 0.5, 1.0])
def test_add_k_nll_equals_naive(order, k):
    model, contexts, targets, V = fitted(WORDS, order, k=k)
    counts = Counter(zip(contexts, targets))
    totals = Counter(contexts)
    # training data (k = 0 is finite there) and held-out words with unseen contexts (k > 0)
    held_out = make_words(7, n=60) if k > 0 else WORDS
    test_contexts, test_targets = naive_examples(held_out, order)
    nll = -sum(math.log(add_k_prob(counts, totals, c, w, k, V)) for c, w in zip(test_contexts, test_targets)) / len(
        test_targets
    )
    logits, loss = model(*to_tensors(test_contexts, test_targets, order))
    assert abs(loss.item() - nll) < 1e-6
    assert abs(F.cross_entropy(logits.double(), torch.tensor(test_targets)).item() - nll) < 1e-5


def test_add_k_unseen_pair_finite_with_k1_and_minus_inf_with_k0():
    words = ["ab", "ab", "b"]  # a is never followed by a; V = 3
    for k, finite in [(1.0, True), (0.0, False)]:
        model, *_ = fitted(words, 2, k=k)
        logits, loss = model(torch.tensor([[1]]), torch.tensor([1]))
        assert math.isfinite(logits[0, 1].item()) is finite
        assert math.isfinite(loss.item()) is finite
        if k == 1.0:  # (0 + 1) / (2 + 3)
            assert logits[0, 1].item() == pytest.approx(math.log(1 / 5), abs=1e-6)
        else:
            assert logits[0, 1].item() == -math.inf and loss.item() == math.inf
            assert logits[0, 2].item() == pytest.approx(0.0, abs=1e-7)  # a -> b always


@pytest.mark.parametrize("k", [0.0, 1.0])
def test_add_k_unseen_context_is_uniform(k):
    model, _, _, V = fitted(["ab"], 3, V=5, k=k)
    logits, _ = model(torch.tensor([[3, 4]]))
    assert torch.allclose(logits, torch.full((1, 5), -math.log(5)))


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_add_k_sums_to_one_for_every_context(order):
    model, *_ = fitted(make_words(3, alphabet="abc"), order, k=0.3)
    probs = model(all_contexts(4, order))[0].double().exp()
    assert torch.allclose(probs.sum(1), torch.ones(probs.size(0), dtype=torch.float64), atol=1e-6)


def test_changing_k_after_fit_changes_predictions():
    model, contexts, targets, V = fitted(WORDS, 2, k=1.0)
    counts, totals = Counter(zip(contexts, targets)), Counter(contexts)
    model.config.k = 0.25
    probs = model(torch.tensor([[1]]))[0].double().exp()[0]
    expected = [add_k_prob(counts, totals, (1,), w, 0.25, V) for w in range(V)]
    assert torch.allclose(probs, torch.tensor(expected, dtype=torch.float64), atol=1e-6)


# ---------------------------------------------------------------- Kneser-Ney


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("discount", [0.0, 0.3, 0.75, 1.0])
def test_kn_sums_to_one_for_every_context_seen_or_not(order, discount):
    words = make_words(5, n=80, alphabet="abc", max_len=6)  # V = 4: every context enumerable
    model, contexts, *_ = fitted(words, order, smoothing="kneser-ney", discount=discount)
    idx = all_contexts(4, order)
    if order > 2:
        assert len(set(contexts)) < idx.size(0), "some contexts must be unseen"
    logits, _ = model(idx)
    sums = logits.double().exp().sum(1)
    assert torch.allclose(sums, torch.ones_like(sums), rtol=0, atol=1e-6)
    assert logits.shape == (idx.size(0), 4)


def test_kn_sums_to_one_for_random_contexts_of_a_larger_vocabulary():
    model, *_ = fitted(WORDS, 6, smoothing="kneser-ney")
    gen = torch.Generator().manual_seed(0)
    idx = torch.randint(0, 9, (2000, 5), generator=gen)
    sums = model(idx)[0].double().exp().sum(1)
    assert torch.allclose(sums, torch.ones_like(sums), rtol=0, atol=1e-6)


@pytest.mark.parametrize("discount", [0.5, 0.75, 1.0])
def test_kn_bigram_equals_naive_interpolated_kn(discount):
    model, contexts, targets, V = fitted(WORDS, 2, V=11, smoothing="kneser-ney", discount=discount)
    expected = torch.tensor(naive_kn_bigram(contexts, targets, 11, discount), dtype=torch.float64)
    probs = model(all_contexts(11, 2))[0].double().exp()  # contexts 9, 10 were never seen
    assert torch.allclose(probs, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("order", [1, 3, 4])
def test_kn_higher_orders_equal_naive_recursion(order):
    model, contexts, targets, V = fitted(WORDS, order, smoothing="kneser-ney", discount=0.6)
    naive = NaiveKN(contexts, targets, V, order, 0.6)
    rng = random.Random(order)
    query = sorted(set(contexts))[:150] + [tuple(rng.randrange(V) for _ in range(order - 1)) for _ in range(50)]
    idx = torch.tensor(query, dtype=torch.int64).reshape(len(query), order - 1)
    expected = torch.tensor([[naive.prob(c, w) for w in range(V)] for c in query], dtype=torch.float64)
    probs = model(idx)[0].double().exp()
    assert torch.allclose(probs, expected, rtol=0, atol=1e-6)
    test_contexts, test_targets = naive_examples(make_words(9, n=40), order)
    nll = -sum(math.log(naive.prob(c, w)) for c, w in zip(test_contexts, test_targets)) / len(test_targets)
    _, loss = model(*to_tensors(test_contexts, test_targets, order))
    assert abs(loss.item() - nll) < 1e-6


def test_kn_bigram_by_hand():
    # "a", "a", "b" with D = 0.5: bigrams 0a x2, a0 x2, 0b, b0; V = 3 (0, a=1, b=2).
    # N1+(. w): 0 <- {a, b} = 2, a <- {0} = 1, b <- {0} = 1; 4 types, 3 distinct w.
    # P1(w) = max(N1+(. w) - .5, 0) / 4 + (.5 * 3 / 4) / 3 = [1/2, 1/4, 1/4]
    # P(w | 0) = max(c - .5, 0) / 3 + (.5 * 2 / 3) P1(w) = [1/6, 7/12, 1/4]
    # P(w | a) = max(c - .5, 0) / 2 + (.5 * 1 / 2) P1(w) = [7/8, 1/16, 1/16]
    # P(w | b) = max(c - .5, 0) / 1 + (.5 * 1 / 1) P1(w) = [3/4, 1/8, 1/8]
    model, *_ = fitted(["a", "a", "b"], 2, smoothing="kneser-ney", discount=0.5)
    expected = torch.tensor([[1 / 6, 7 / 12, 1 / 4], [7 / 8, 1 / 16, 1 / 16], [3 / 4, 1 / 8, 1 / 8]])
    assert torch.allclose(model(torch.tensor([[0], [1], [2]]))[0].exp(), expected, atol=1e-6)
    unigram = NGramModel(NGramConfig(order=1, smoothing="kneser-ney", discount=0.5), 3)
    unigram.fit(torch.zeros(6, 0, dtype=torch.int64), torch.tensor([1, 0, 1, 0, 2, 0]))
    # order 1 is the highest order: raw counts [3, 2, 1] / 6 discounted, over uniform
    expected = torch.tensor([2.5 / 6 + 0.25 / 3, 1.5 / 6 + 0.25 / 3, 0.5 / 6 + 0.25 / 3])
    assert torch.allclose(unigram(torch.zeros(1, 0, dtype=torch.int64))[0].exp()[0], expected, atol=1e-6)


# ---------------------------------------------------------------- interface


@pytest.mark.parametrize("smoothing", ["add-k", "kneser-ney"])
def test_logits_are_log_probabilities_and_loss_is_their_mean_nll(smoothing):
    """Shapes, dtypes and loss == cross-entropy of the logits: test_contract.py."""
    model, contexts, targets, V = fitted(WORDS, 3, smoothing=smoothing, k=0.5)
    X, Y = to_tensors(contexts, targets, 3)
    logits, loss = model(X, Y)
    assert loss.item() == pytest.approx(-logits.double()[torch.arange(len(Y)), Y].mean().item(), abs=1e-6)
    assert torch.allclose(F.softmax(logits.double(), dim=1), logits.double().exp(), atol=1e-6)
    Y_ignored = Y.clone()
    Y_ignored[::2] = -1  # IGNORE_INDEX
    _, partial = model(X, Y_ignored)
    assert partial.item() == pytest.approx(-logits.double()[1::2].gather(1, Y[1::2, None]).mean().item(), abs=1e-6)


@pytest.mark.parametrize("order,smoothing", [(1, "add-k"), (1, "kneser-ney"), (3, "add-k"), (4, "kneser-ney")])
def test_state_dict_round_trip_through_safetensors(tmp_path, order, smoothing):
    model, contexts, targets, V = fitted(WORDS, order, smoothing=smoothing, k=0.1)
    path = tmp_path / "ngram.safetensors"
    save_file(model.state_dict(), str(path))
    fresh = NGramModel(NGramConfig(order=order, smoothing=smoothing, k=0.1), V)
    fresh.load_state_dict(load_file(str(path)))
    idx = torch.cat([to_tensors(contexts, targets, order)[0], torch.randint(0, V, (100, order - 1))])
    assert torch.equal(model(idx)[0], fresh(idx)[0])
    # loading over an earlier fit replaces it (tables and derived log-probabilities)
    refit, *_ = fitted(make_words(2, n=30, alphabet="ab"), order, V=V, smoothing=smoothing, k=0.1)
    refit(idx)
    refit.load_state_dict(load_file(str(path)))
    assert torch.equal(model(idx)[0], refit(idx)[0])
    if order == 1:
        assert torch.equal(fresh.next_token_logits(torch.zeros(2, 5, dtype=torch.int64))[0], model(idx[:2])[0])


def test_inconsistent_state_dicts_do_not_load():
    model, *_ = fitted(WORDS, 3)
    wrong = NGramModel(NGramConfig(order=3), model.vocab_size + 1)
    with pytest.raises(RuntimeError):
        wrong.load_state_dict(model.state_dict())
    state = model.state_dict()
    state["order3_context_ids"] = state["order3_context_ids"].flip(0)
    with pytest.raises(RuntimeError, match="sorted"):
        NGramModel(NGramConfig(order=3), model.vocab_size).load_state_dict(state)
    state = model.state_dict()
    state["order3_totals"] = state["order3_totals"][1:]
    with pytest.raises(RuntimeError, match="numbers of contexts"):
        NGramModel(NGramConfig(order=3), model.vocab_size).load_state_dict(state)


def test_no_trainable_parameters_and_only_tables_in_state_dict():
    model, *_ = fitted(WORDS, 3, smoothing="kneser-ney")
    assert list(model.parameters()) == []
    keys = set(model.state_dict())
    assert keys == {f"order{m}_{t}" for m in (1, 2, 3) for t in ("context_ids", "counts", "totals", "types")}
    add_k, *_ = fitted(WORDS, 3)
    assert set(add_k.state_dict()) == {f"order3_{t}" for t in ("context_ids", "counts", "totals", "types")}


def test_next_token_logits_pads_short_prefixes_with_boundary():
    model, *_ = fitted(WORDS, 4, smoothing="kneser-ney")
    prefix = torch.tensor([[0, 2], [0, 1]])
    logits, cache = model.next_token_logits(prefix)
    assert cache is None
    assert torch.equal(logits, model(torch.tensor([[0, 0, 2], [0, 0, 1]]))[0])


def test_order1_takes_empty_contexts():
    model, contexts, targets, V = fitted(WORDS, 1, k=0.0)
    logits, loss = model(torch.zeros(3, 0, dtype=torch.int64), torch.tensor([0, 1, 2]))
    unigram = torch.bincount(torch.tensor(targets), minlength=V).double() / len(targets)
    assert torch.allclose(logits.double().exp(), unigram.expand(3, V), atol=1e-6)
    assert model.block_size == 0


def test_invalid_configs_and_inputs_raise():
    for bad in [dict(order=0), dict(order=9), dict(smoothing="witten-bell"), dict(k=-1.0), dict(discount=1.5)]:
        with pytest.raises(MakemoreError):
            NGramModel(NGramConfig(**bad), 27)
    with pytest.raises(MakemoreError, match="int64"):
        NGramModel(NGramConfig(order=8), 512)  # 512^7 = 2^63 context ids
    NGramModel(NGramConfig(order=8), 511)
    model = NGramModel(NGramConfig(order=3), 5)
    with pytest.raises(MakemoreError):
        model.fit(torch.zeros(4, 3, dtype=torch.int64), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(MakemoreError):
        model.fit(torch.zeros(4, 2, dtype=torch.int64), torch.full((4,), 5, dtype=torch.int64))
    with pytest.raises(MakemoreError):
        model(torch.zeros(4, 1, dtype=torch.int64))
