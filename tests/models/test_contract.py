"""The contract every registered model family keeps, written once and run for each family of
``makemore.models.REGISTRY`` (small configs built with ``make_config``).

What generic code relies on: forward shapes and a loss that is the cross-entropy of the logits,
ignored targets, rows that do not see each other, causality, ``next_token_logits`` agreeing with
``forward`` with and without a cache, position limits, batchers and ``read_contexts``, the
state dict through safetensors, determinism under a seed, dropout in training only, training.
Checks of one family's own maths stay in ``test_<family>.py``.
"""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load, save

from makemore.data.corpus import EncodedCorpus, Vocab
from makemore.errors import MakemoreError
from makemore.models import REGISTRY, build_model, get_family, make_config
from sequence_helpers import assert_packed_pass_matches_padded, padded_batch

pytestmark = pytest.mark.usefixtures("one_thread")

V = 27
LONGEST = 11  # the longest item a sequence model's block_size is fitted to: block_size 12

# A small config of every family; a new family adds one here (test_every_family_has_a_small_config).
SMALL: dict[str, dict] = {
    "ngram": dict(order=3, k=0.5),
    "bigram": dict(reg=0.0),  # the L2 penalty is test_bigram's: here loss == cross-entropy
    "mlp": dict(block_size=3, n_embd=10, n_hidden=64),
    "bn-mlp": dict(block_size=3, n_embd=10, n_hidden=64),
    "wavenet": dict(n_embd=8, n_hidden=32, dropout=0.0),
    "rnn": dict(n_embd=8, n_hidden=16, n_layers=2, dropout=0.0),
    "gru": dict(n_embd=8, n_hidden=16, n_layers=2, dropout=0.0),
    "lstm": dict(n_embd=8, n_hidden=16, n_layers=2, dropout=0.0),
    "transformer": dict(block_size=12, n_layer=2, n_head=2, n_embd=16, dropout=0.0),
}
# Options that change the computation: each is checked against the whole contract too.
VARIANTS: list[tuple[str, dict]] = [
    ("ngram", dict(order=1)),
    ("ngram", dict(order=4, smoothing="kneser-ney")),
    ("mlp", dict(n_layers=3)),
    ("bn-mlp", dict(n_layers=3)),
    *[("wavenet", dict(block_size=b)) for b in (1, 2, 4, 16)],
    *[(cell, dict(n_layers=1)) for cell in ("rnn", "gru", "lstm")],
    ("transformer", dict(tie_weights=True)),
    ("transformer", dict(bias=False)),
    ("transformer", dict(tie_weights=True, bias=False)),
]


def _case_id(name: str, overrides: dict) -> str:
    return "-".join([name, *(f"{k}={v}" for k, v in overrides.items())])


CASES = [pytest.param(name, {}, id=name) for name in REGISTRY] + [
    pytest.param(name, overrides, id=_case_id(name, overrides)) for name, overrides in VARIANTS
]
FAMILIES = list(REGISTRY)
SEQUENCE_CASES = [c for c in CASES if REGISTRY[c.values[0]].model.input_kind == "sequence"]
WINDOW_CASES = [c for c in CASES if REGISTRY[c.values[0]].model.input_kind == "window"]
GRADIENT_CASES = [c for c in CASES if REGISTRY[c.values[0]].model.trains_by_gradient]
DROPOUT_CASES = [  # a one-character WaveNet has no hidden level for dropout to follow
    c
    for c in CASES
    if "dropout" in {f.name for f in dataclasses.fields(REGISTRY[c.values[0]].config)}
    and c.values != ("wavenet", dict(block_size=1))
]
# AdamW's steps move each weight by about lr: the bigram's logits are its weights
ADAMW_LR = {"bigram": 0.05}


def _words(n: int = 200, seed: int = 0) -> list[str]:
    """Words over a-z (every letter occurs: V = 27) of 1..LONGEST letters."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = [letters[i : i + 5] for i in range(0, 26, 5)]
    words += ["".join(rng.choice(letters) for _ in range(rng.randint(1, LONGEST))) for _ in range(n)]
    return words


WORDS = _words()
VOCAB = Vocab.from_words(WORDS)
CORPUS = EncodedCorpus.from_words(WORDS, VOCAB)
assert VOCAB.size == V and max(len(w) for w in WORDS) == LONGEST


def build(name: str, overrides: dict | None = None, seed: int = 0, fit: bool = True, **more):
    """A fresh model of family ``name``: its small config with ``overrides``; count models fitted to WORDS."""
    torch.manual_seed(seed)
    config = make_config(name, SMALL[name] | (overrides or {}) | more)
    model = build_model(name, get_family(name).model.fit_config(config, LONGEST), V)
    if fit and not model.trains_by_gradient:
        model.fit_batcher(model.batcher(CORPUS))
    return model


def random_batch(model, B: int, T: int | None = None, generator: torch.Generator | None = None):
    """Random ``(idx, targets)`` in the layout the model reads (T: sequence length)."""
    if model.input_kind == "sequence":
        shape = (B, T)
        return torch.randint(0, V, shape, generator=generator), torch.randint(0, V, shape, generator=generator)
    return torch.randint(0, V, (B, model.block_size), generator=generator), torch.randint(
        0, V, (B,), generator=generator
    )


def forward_next_logits(model, idx: torch.Tensor) -> torch.Tensor:
    """The logits for the token after ``idx`` computed with ``forward``, without ``next_token_logits``."""
    with torch.no_grad():
        if model.input_kind == "sequence":
            return model(idx)[0][:, -1, :]
        window = torch.cat([idx.new_zeros(idx.size(0), model.block_size), idx], dim=1)  # boundary-padded
        return model(window[:, window.size(1) - model.block_size :])[0]


def expected_context(kind: str, block_size: int, item: list[int], t: int) -> list[int]:
    """What a model of ``kind`` reads before target ``t`` of ``item`` (start token + characters)."""
    if kind == "sequence":
        return item[: t + 1]
    padded = [0] * block_size + item[: t + 1]
    return padded[len(padded) - block_size :]


def test_the_expected_contexts_are_those_of_the_lectures():
    a, b, c = 1, 2, 3
    assert [expected_context("window", 2, [0, a, b, c], t) for t in range(4)] == [[0, 0], [0, a], [a, b], [b, c]]
    assert [expected_context("window", 0, [0, a], t) for t in range(2)] == [[], []]
    assert [expected_context("sequence", 0, [0, b, a], t) for t in range(3)] == [[0], [0, b], [0, b, a]]


# -- the registry ---------------------------------------------------------------------------


def test_every_family_has_a_small_config():
    assert set(SMALL) == set(REGISTRY)
    for name, family in REGISTRY.items():
        config = make_config(name, SMALL[name])
        assert type(config) is family.config
        model = build(name)
        assert isinstance(model, family.model) and model.vocab_size == V
        assert model.input_kind in ("window", "sequence")


# -- forward and the loss ---------------------------------------------------------------------


@pytest.mark.parametrize("name, overrides", CASES)
def test_forward_shapes_and_the_loss_is_the_cross_entropy_of_the_logits(name, overrides):
    model = build(name, overrides)
    if "block_size" in {f.name for f in dataclasses.fields(model.config)}:
        assert model.block_size == model.config.block_size  # recorded even where it limits nothing
    lengths = (1, 7, model.block_size) if model.input_kind == "sequence" else (None,)
    for T in lengths:
        idx, targets = random_batch(model, 64, T)
        logits, loss = model(idx, targets)
        assert logits.shape == (*targets.shape, V) and logits.dtype == torch.get_default_dtype()
        assert loss.shape == () and loss.dtype == logits.dtype
        flat = F.cross_entropy(logits.double().reshape(-1, V), targets.reshape(-1), ignore_index=-1)
        assert loss.item() == pytest.approx(flat.item(), abs=1e-5)
        assert loss.item() == pytest.approx(model.loss_from_logits(logits, targets).item(), abs=1e-5)
        logits_only, no_loss = model(idx)
        assert no_loss is None and torch.equal(logits_only, logits)


@pytest.mark.parametrize("name, overrides", CASES)
def test_initial_loss_is_about_ln_vocab(name, overrides):
    """Before training (a count model: before fitting) every next token is about equally likely."""
    model = build(name, overrides, fit=False)
    idx, targets = random_batch(model, 512 if model.input_kind == "window" else 64, min(16, model.block_size))
    _, loss = model(idx, targets)
    assert abs(loss.item() - math.log(V)) < 0.1


@pytest.mark.parametrize("name, overrides", CASES)
def test_initial_loss_with_the_default_sizes_is_about_ln_vocab(name, overrides):
    torch.manual_seed(0)
    config = get_family(name).model.fit_config(make_config(name, overrides), 15)
    model = build_model(name, config, V)
    idx, targets = random_batch(model, 1024 if model.input_kind == "window" else 64, 16)
    _, loss = model(idx, targets)
    assert abs(loss.item() - math.log(V)) < 0.1


@pytest.mark.parametrize("name, overrides", CASES)
def test_ignored_targets_do_not_count(name, overrides):
    model = build(name, overrides).eval()
    idx, targets = random_batch(model, 10, 8)
    masked = targets.clone()
    masked[6:] = -1
    with torch.no_grad():
        logits, loss = model(idx, masked)
        _, loss_kept = model(idx[:6], targets[:6])
    torch.testing.assert_close(loss, loss_kept)
    assert loss.item() == pytest.approx(model.loss_from_logits(logits[:6], targets[:6]).item(), abs=1e-5)


@pytest.mark.parametrize("name, overrides", SEQUENCE_CASES)
def test_the_loss_of_a_padded_batch_is_that_of_each_item_alone(name, overrides):
    model = build(name, overrides).eval()
    items = [[3, 1, 4, 1, 5, 9], [2, 6], [5, 3, 5, 8]]
    idx, targets = padded_batch(items)
    with torch.no_grad():
        _, loss = model(idx, targets)
        # the mean over every real target of every item, each item run on its own
        total, count = 0.0, 0
        for w in items:
            logits, _ = model(torch.tensor([[0] + w]))
            total += F.cross_entropy(logits[0], torch.tensor(w + [0]), reduction="sum").item()
            count += len(w) + 1
        assert loss.item() == pytest.approx(total / count, rel=1e-5)
        # tokens in padded positions change nothing at valid positions
        noisy = idx.clone()
        pad = targets == -1
        noisy[pad] = torch.randint(1, V, (int(pad.sum()),))
        logits_a, loss_a = model(idx, targets)
        logits_b, loss_b = model(noisy, targets)
        torch.testing.assert_close(logits_a[~pad], logits_b[~pad], atol=0, rtol=0)
        assert loss_a.item() == loss_b.item()


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")  # printed by mkldnn.flags
@pytest.mark.parametrize("name, overrides", SEQUENCE_CASES)
def test_packed_training_pass_matches_the_padded_one(name, overrides):
    """With targets, only positions up to each row's last target are computed; loss and
    gradients are those of the full padded computation, logits of the skipped positions are zero."""
    items = [[3, 1, 4, 1, 5, 9], [2, 6], [5, 3, 5, 8]]
    idx, targets = padded_batch(items)
    targets[2, 1] = -1  # an ignored target before a real one: that position is still computed
    model_cls = REGISTRY[name].model
    needed = model_cls.needed_mask(targets)
    assert needed.sum(1).tolist() == [7, 3, 5]
    rows = model_cls.needed_positions(targets)
    assert rows.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14, 15, 16, 17, 18]  # T = 7: 0..6, 7..9, 14..18
    assert model_cls.needed_positions(None) is None
    assert model_cls.needed_positions(torch.tensor([[1, 2, 0], [3, 0, -1]])).tolist() == [0, 1, 2, 3, 4]
    assert model_cls.needed_positions(torch.tensor([[1, 2, 0], [3, -1, 0]])) is None  # no padding
    assert_packed_pass_matches_padded(lambda: build(name, overrides), idx, targets, needed)


# -- what a row sees ----------------------------------------------------------------------------


@pytest.mark.parametrize("name, overrides", CASES)
def test_a_row_does_not_depend_on_the_other_rows_in_eval(name, overrides):
    model = build(name, overrides)
    model(random_batch(model, 64, 8)[0])  # training mode: move any running statistics off their start
    model.eval()
    idx, _ = random_batch(model, 16, 8)
    with torch.no_grad():
        ref = model(idx)[0]
        torch.testing.assert_close(model(idx[3:4])[0], ref[3:4], atol=1e-6, rtol=0)
        shuffled = torch.cat([random_batch(model, 5, 8)[0], idx[3:4], random_batch(model, 2, 8)[0]])
        torch.testing.assert_close(model(shuffled)[0][5], ref[3], atol=1e-6, rtol=0)


@pytest.mark.parametrize("name, overrides", SEQUENCE_CASES)
def test_causality(name, overrides):
    model = build(name, overrides).eval()
    idx = torch.randint(0, V, (4, 12))
    with torch.no_grad():
        ref = model(idx)[0]
        for t in (0, 5, 11):
            changed = idx.clone()
            changed[:, t] = (changed[:, t] + 1) % V
            out = model(changed)[0]
            torch.testing.assert_close(out[:, :t], ref[:, :t], atol=0, rtol=0)
            assert ((out[:, t] - ref[:, t]).abs().amax(dim=1) > 1e-6).all()


@pytest.mark.parametrize("name, overrides", [c for c in WINDOW_CASES if c in GRADIENT_CASES])
def test_every_window_position_is_in_the_receptive_field(name, overrides):
    model = build(name, overrides)
    model(random_batch(model, 64)[0])  # move any running statistics away from their initial values
    model.eval()
    idx, _ = random_batch(model, 16)
    with torch.no_grad():
        ref = model(idx)[0]
        for p in range(model.block_size):
            changed = idx.clone()
            changed[:, p] = (changed[:, p] + 1) % V
            diff = (model(changed)[0] - ref).abs().amax(dim=1)
            assert (diff > 1e-6).all(), p


# -- generation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, overrides", CASES)
def test_next_token_logits_agree_with_forward_with_and_without_the_cache(name, overrides):
    """Generation as sampling runs it: a prefix, then one token per call with the returned cache,
    ended rows dropped with ``select_cache_rows``; the logits are always those of ``forward``."""
    model = build(name, overrides).eval()
    g = torch.Generator().manual_seed(3)
    idx = torch.cat([torch.zeros(5, 1, dtype=torch.long), torch.randint(1, V, (5, 2), generator=g)], dim=1)
    cache, steps = None, 0
    while True:
        logits, cache = model.next_token_logits(idx, cache)
        assert logits.shape == (idx.size(0), V)
        torch.testing.assert_close(logits, forward_next_logits(model, idx), atol=1e-5, rtol=0)
        torch.testing.assert_close(logits, model.next_token_logits(idx)[0], atol=1e-5, rtol=0)  # no cache
        steps += 1
        if idx.size(1) == 12:
            break
        if steps == 4:  # two rows end: sampling keeps the others
            rows = torch.tensor([0, 2, 4])
            idx, logits, cache = idx[rows], logits[rows], model.select_cache_rows(cache, rows)
        nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=g)
        idx = torch.cat([idx, nxt], dim=1)
    assert steps == 10 and idx.shape == (3, 12)
    if cache is not None:
        with pytest.raises(MakemoreError, match="next_token_logits"):
            model.next_token_logits(idx[:, :2], cache)  # shorter than what the cache has seen


@pytest.mark.parametrize("name, overrides", CASES)
def test_position_limit(name, overrides):
    model = build(name, overrides).eval()
    limit = model.position_limit
    idx = torch.randint(1, V, (2, 30))
    idx[:, 0] = 0
    if limit is None:
        # any length: a window model reads the last block_size tokens; a recurrent one all of them
        logits, _ = model.next_token_logits(idx)
        torch.testing.assert_close(logits, forward_next_logits(model, idx), atol=1e-5, rtol=0)
        if model.input_kind == "sequence":
            assert not model.has_position_limit and model.block_size == 12  # recorded only
            assert model(idx, idx)[0].shape == (2, 30, V)
        return
    assert limit == model.block_size - 1 == 11
    assert model(idx[:, : model.block_size])[0].shape == (2, model.block_size, V)
    with pytest.raises(MakemoreError, match=f"block_size {model.block_size}"):
        model(idx[:, : model.block_size + 1])
    with pytest.raises(MakemoreError, match=f"block_size {model.block_size}"):
        model.next_token_logits(idx[:, : model.block_size + 1])
    _, cache = model.next_token_logits(idx[:, : model.block_size])
    with pytest.raises(MakemoreError, match=f"block_size {model.block_size}"):
        model.next_token_logits(idx[:, : model.block_size + 1], cache)  # generating past block_size


@pytest.mark.parametrize("name", FAMILIES)
def test_fit_config_fills_in_the_block_size_of_a_sequence_model_only(name):
    family = get_family(name)
    config = make_config(name, SMALL[name])
    if family.model.input_kind == "window":
        assert family.model.fit_config(config, longest_item=6) is config
        assert build(name).position_limit is None
        return
    unset = dataclasses.replace(config, block_size=0)
    fitted = family.model.fit_config(unset, longest_item=6)
    assert fitted.block_size == 7  # longest item 6, + 1
    model = build_model(name, fitted, V)
    assert model.position_limit == (6 if model.has_position_limit else None)
    given = dataclasses.replace(config, block_size=12)
    assert family.model.fit_config(given, longest_item=6) is given


# -- batchers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_batchers_and_read_contexts_hold_what_the_model_reads_before_each_target(name):
    words = ["abc", "ba", "cabbage", ""]
    vocab = Vocab.from_words(words)
    corpus = EncodedCorpus.from_words(words, vocab)
    torch.manual_seed(0)
    config = get_family(name).model.fit_config(make_config(name, SMALL[name]), 7)
    model = build_model(name, config, vocab.size).eval()
    items = [corpus.item_tokens(i) for i in range(len(words))]
    targets = [item[1:] + [0] for item in items]
    contexts = model.read_contexts(corpus)
    assert contexts == [
        [expected_context(model.input_kind, model.block_size, item, t) for t in range(len(item))] for item in items
    ]
    batcher = model.batcher(corpus)
    if model.input_kind == "window":
        X, Y = batcher.X, batcher.Y
        assert X.tolist() == [row for item in contexts for row in item]
        assert Y.tolist() == [t for item in targets for t in item]
        assert all(torch.equal(a, b) for a, b in zip(batcher.sample(0, torch.Generator()), (X, Y)))
        chunks = list(batcher.chunks(5))
        assert torch.equal(torch.cat([x for x, _ in chunks]), X) and torch.equal(torch.cat([y for _, y in chunks]), Y)
        if not model.trains_by_gradient:
            model.fit_batcher(batcher)
        with torch.no_grad():
            batch_logits = [list(model(X)[0])]
    else:
        ((x, y),) = list(batcher.chunks())  # every item, padded to the longest + 1
        assert x.shape == y.shape == (len(words), max(len(w) for w in words) + 1)
        for i, (item, target) in enumerate(zip(items, targets)):
            assert x[i, : len(item)].tolist() == item and y[i].tolist() == target + [-1] * (x.size(1) - len(item))
        with torch.no_grad():
            logits = model(x)[0]
        batch_logits = [list(logits[i, : len(item)]) for i, item in enumerate(items)]
    # the logits of a training example are those next_token_logits gives after its context
    flat_logits = [row for item in batch_logits for row in item]
    flat_contexts = [ctx for item in contexts for ctx in item]
    assert len(flat_logits) == len(flat_contexts) == sum(len(w) + 1 for w in words)
    for row, ctx in zip(flat_logits, flat_contexts):
        logits, _ = model.next_token_logits(torch.tensor([ctx]))
        torch.testing.assert_close(logits[0], row, atol=1e-5, rtol=0)


# -- weights, seeds, dropout, training ------------------------------------------------------------


@pytest.mark.parametrize("name, overrides", CASES)
def test_state_dict_round_trip_through_safetensors(name, overrides):
    model = build(name, overrides)
    model(random_batch(model, 32, 8)[0])  # non-trivial running statistics where there are any
    state = load(save(model.state_dict()))
    assert state.keys() == model.state_dict().keys()
    clone = build(name, overrides, seed=1, fit=False)
    clone.load_state_dict(state)
    for key, value in model.state_dict().items():
        assert torch.equal(clone.state_dict()[key], value), key
    model.eval()
    clone.eval()
    idx, _ = random_batch(model, 16, 9)
    with torch.no_grad():
        torch.testing.assert_close(clone(idx)[0], model(idx)[0], atol=0, rtol=0)


@pytest.mark.parametrize("name, overrides", CASES)
def test_deterministic_given_the_seed(name, overrides):
    options = {"dropout": 0.3} if "dropout" in {f.name for f in dataclasses.fields(REGISTRY[name].config)} else {}
    models = [build(name, overrides, seed=7, **options) for _ in range(2)]
    for (key, a), b in zip(models[0].state_dict().items(), models[1].state_dict().values()):
        assert torch.equal(a, b), key
    idx, targets = random_batch(models[0], 32, 8, generator=torch.Generator().manual_seed(0))
    outputs = []
    for model in models:  # training mode: the same dropout masks under the same seed
        torch.manual_seed(1)
        outputs.append(model(idx, targets))
    assert torch.equal(outputs[0][0], outputs[1][0]) and torch.equal(outputs[0][1], outputs[1][1])
    if models[0].trains_by_gradient:
        other = build(name, overrides, seed=8, **options)
        assert any(not torch.equal(a, b) for a, b in zip(models[0].parameters(), other.parameters()))


@pytest.mark.parametrize("name, overrides", DROPOUT_CASES)
def test_dropout_is_active_only_in_training(name, overrides):
    model = build(name, overrides, dropout=0.5)
    idx, _ = random_batch(model, 8, 8)
    torch.manual_seed(1)
    assert not torch.allclose(model(idx)[0], model(idx)[0])
    model.eval()
    torch.testing.assert_close(model(idx)[0], model(idx)[0])


@pytest.mark.parametrize("name, overrides", GRADIENT_CASES)
def test_a_few_adamw_steps_lower_the_loss(name, overrides):
    model = build(name, overrides)
    if model.input_kind == "sequence":
        idx, targets = padded_batch([[3, 1, 4, 1, 5], [9, 2, 6], [5, 3, 5, 8, 9, 7]])
    else:
        idx, targets = random_batch(model, 32)
    opt = torch.optim.AdamW(model.parameters(), lr=ADAMW_LR.get(name, 1e-2))
    losses = []
    for _ in range(20):
        _, loss = model(idx, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5
