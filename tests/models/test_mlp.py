"""MLP and BatchNorm MLP: initialisation, BatchNorm train/eval behaviour, manual backward.

Shapes, the initial loss and the rest of every family's contract: test_contract.py."""

from __future__ import annotations

import pytest
import torch

from makemore.models import build_model, make_config
from makemore.models.layers import BatchNorm

V = 27


def _saturated_fraction(init: str) -> float:
    torch.manual_seed(0)
    model = build_model("mlp", make_config("mlp", dict(block_size=3, n_embd=10, n_hidden=200, init=init)), V)
    h = model.hidden(model.C(torch.randint(0, V, (1000, 3))).flatten(1))
    return (h.abs() > 0.97).float().mean().item()


def test_kaiming_init_keeps_tanh_out_of_saturation():
    # gain 5/3 puts pre-activations at std ~5/3: about a fifth beyond |t| > 0.97, versus
    # nearly all of them with the lecture-2 plain randn init
    assert _saturated_fraction("kaiming") < 0.3
    assert _saturated_fraction("naive") > 0.6


def test_naive_init_has_large_initial_loss():
    torch.manual_seed(0)
    model = build_model("mlp", make_config("mlp", dict(block_size=3, n_embd=10, n_hidden=200, init="naive")), V)
    _, loss = model(torch.randint(0, V, (256, 3)), torch.randint(0, V, (256,)))
    assert loss.item() > 10  # the lecture's "hockey stick" starting point


def test_batchnorm_train_uses_batch_stats_with_bessel_and_eval_uses_running():
    torch.manual_seed(0)
    bn = BatchNorm(5, momentum=0.5)
    x = torch.randn(8, 5) * 3 + 2
    y = bn(x)
    expected = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=True) + bn.eps)
    torch.testing.assert_close(y, expected)
    torch.testing.assert_close(bn.running_mean, 0.5 * x.mean(0))
    torch.testing.assert_close(bn.running_var, 0.5 * torch.ones(5) + 0.5 * x.var(0, unbiased=True))
    # training mode: a row's output depends on the rest of the batch; eval mode: it does not
    y_other = bn(torch.cat([x[:1], torch.randn(7, 5)]))
    assert not torch.allclose(y[:1], y_other[:1])
    bn.eval()
    running = bn.running_mean.clone()
    a, b = bn(x)[:1], bn(torch.cat([x[:1], torch.randn(7, 5)]))[:1]
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(bn.running_mean, running)  # eval does not update statistics
    torch.testing.assert_close(a, (x[:1] - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps))


def test_bn_mlp_has_bias_free_linear_before_batchnorm():
    model = build_model("bn-mlp", make_config("bn-mlp", dict(n_layers=2)), V)
    linears = [m for m in model.hidden if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 2 and all(m.bias is None for m in linears)


def test_manual_backward_matches_autograd_in_the_model():
    torch.manual_seed(0)
    cfg = make_config("bn-mlp", dict(block_size=3, n_embd=5, n_hidden=16))
    auto = build_model("bn-mlp", cfg, V).double()
    manual = build_model("bn-mlp", cfg, V).double()
    manual.load_state_dict(auto.state_dict())
    idx, targets = torch.randint(0, V, (32, 3)), torch.randint(0, V, (32,))
    _, loss = auto(idx, targets)
    loss.backward()
    manual_loss = manual.manual_forward_backward(idx, targets)
    assert float(manual_loss) == pytest.approx(loss.item(), abs=1e-12)
    for (name, p_auto), p_manual in zip(auto.named_parameters(), manual.parameters()):
        torch.testing.assert_close(p_manual.grad, p_auto.grad, atol=1e-10, rtol=0, msg=name)
    for (name, b_auto), b_manual in zip(auto.named_buffers(), manual.buffers()):
        torch.testing.assert_close(b_manual, b_auto, atol=1e-12, rtol=0, msg=name)
