"""The shared pieces of models/base.py: the CPU dropout."""

import math

import pytest
import torch
import torch.nn.functional as F

from makemore.models.base import Dropout, dropout


@pytest.mark.parametrize("p", [0.1, 0.25, 0.4, 0.5, 0.9])
def test_dropout_rate_and_scale(p):
    torch.manual_seed(0)
    n = 1_000_000
    y = dropout(torch.ones(n), p)
    dropped = round(p * 65536)
    keep = 1 - dropped / 65536
    kept = y != 0
    # the kept fraction is a binomial proportion: within 5 standard deviations of 1 - p
    assert abs(kept.float().mean().item() - keep) < 5 * math.sqrt(keep * (1 - keep) / n)
    assert torch.all(y[kept] == 1 / keep)  # every kept value scaled by the same exact factor
    assert abs(p - dropped / 65536) <= 0.5 / 65536


def test_dropout_masks_are_independent_across_elements_and_calls():
    torch.manual_seed(0)
    a = dropout(torch.ones(4, 100_000), 0.5) != 0
    b = dropout(torch.ones(4, 100_000), 0.5) != 0
    for x, y in ((a[0], a[1]), (a[1], a[3]), (a[0], b[0])):  # rows share no draws, nor do calls
        agree = (x == y).float().mean().item()
        assert abs(agree - 0.5) < 0.01
    # neighbouring elements (the four 16-bit parts of one 64-bit draw) are independent too
    flat = a.flatten()
    assert abs((flat[0::4] == flat[1::4]).float().mean().item() - 0.5) < 0.01


def test_dropout_is_deterministic_given_the_seed_and_off_when_not_training():
    x = torch.randn(3, 5, 7)
    torch.manual_seed(1)
    first = dropout(x, 0.3)
    torch.manual_seed(1)
    assert torch.equal(dropout(x, 0.3), first)
    assert dropout(x, 0.3, training=False) is x
    assert dropout(x, 0.0) is x
    assert first.shape == x.shape


def test_dropout_gradient_is_the_mask_times_the_scale():
    x = torch.randn(64, 33, requires_grad=True)
    torch.manual_seed(2)
    y = dropout(x, 0.25)
    y.backward(torch.ones_like(y))
    expected = (y != 0).float() / (1 - round(0.25 * 65536) / 65536)
    torch.testing.assert_close(x.grad, expected, atol=0, rtol=0)


def test_rates_too_close_to_one_fall_back_to_torch():
    torch.manual_seed(3)
    y = dropout(torch.ones(10_000), 1 - 1e-7)
    torch.manual_seed(3)
    torch.testing.assert_close(y, F.dropout(torch.ones(10_000), 1 - 1e-7))


def test_dropout_module_follows_train_and_eval():
    module = Dropout(0.5)
    x = torch.ones(1000)
    assert (module(x) == 0).any()
    module.eval()
    assert module(x) is x
    assert "p=0.5" in repr(module) and not list(module.parameters()) and not module.state_dict()


# -- the kinds: what generic code asks a model (read_contexts, batchers, block sizes and position
# limits of every family: test_contract.py) ---------------------------------------------------


def _corpus(words):
    from makemore.data.corpus import EncodedCorpus, Vocab

    vocab = Vocab.from_words(words)
    return vocab, EncodedCorpus.from_words(words, vocab)


def _model(family, vocab, **options):
    from makemore.models import build_model, get_family, make_config

    config = get_family(family).model.fit_config(make_config(family, options), longest_item=6)
    return build_model(family, config, vocab.size)


def test_kind_flags_embeddings_and_the_hand_written_backward():
    vocab, _ = _corpus(["abc"])
    ngram, bigram = _model("ngram", vocab, order=3), _model("bigram", vocab)
    mlp, bn = _model("mlp", vocab), _model("bn-mlp", vocab)
    assert not ngram.trains_by_gradient and mlp.trains_by_gradient
    assert ngram.char_embedding() is None
    assert torch.equal(bigram.char_embedding(), bigram.W.detach())
    assert torch.equal(mlp.char_embedding(), mlp.C.weight.detach())
    assert mlp.manual_backward_error() == "this model has no hand-written backward pass"
    assert bn.manual_backward_error() is None
    assert "n_layers 1" in _model("bn-mlp", vocab, n_layers=2).manual_backward_error()
