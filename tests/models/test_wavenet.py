"""WaveNet (lecture 5): shapes, initial loss, 3-D BatchNorm, window dependence, training."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load, save
from torch import nn

from makemore.errors import MakemoreError
from makemore.models.wavenet import BatchNorm, FlattenConsecutive, WaveNet, WaveNetConfig

V = 27


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from threads, and stall on a busy 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make(seed: int = 0, **overrides) -> WaveNet:
    torch.manual_seed(seed)
    return WaveNet(WaveNetConfig(**overrides), V)


def test_lecture5_preset_is_the_lecture_model():
    from makemore import api

    cfg = api.preset_config("lecture5").model_config
    assert (cfg.block_size, cfg.n_embd, cfg.n_hidden, cfg.dropout) == (8, 24, 128, 0.0)
    model = WaveNet(cfg, V)
    assert model.block_size == 8 and model.vocab_size == V and model.input_kind == "window"
    # the lecture's parameter count for this configuration
    assert sum(p.numel() for p in model.parameters()) == 76579
    kinds = [type(m) for m in model.layers]
    assert kinds == [FlattenConsecutive, nn.Linear, BatchNorm, nn.Tanh] * 3
    assert all(m.bias is None for m in model.layers if isinstance(m, nn.Linear))


@pytest.mark.parametrize("block_size", [0, 3, 6, 12, -4])
def test_block_size_must_be_a_power_of_two(block_size):
    with pytest.raises(MakemoreError, match="power of two"):
        WaveNet(WaveNetConfig(block_size=block_size), V)


@pytest.mark.parametrize("block_size", [1, 2, 4, 16])
def test_shapes(block_size):
    model = make(block_size=block_size, n_embd=8, n_hidden=32)
    assert sum(isinstance(m, nn.Tanh) for m in model.modules()) == int(math.log2(block_size))
    idx = torch.randint(0, V, (64, block_size))
    logits, loss = model(idx, torch.randint(0, V, (64,)))
    assert logits.shape == (64, V) and loss.shape == ()
    logits2, no_loss = model(idx)
    assert no_loss is None and logits2.shape == (64, V)


def test_wrong_window_length_is_an_error():
    model = make()
    with pytest.raises(MakemoreError, match=r"\(B, 8\)"):
        model(torch.zeros(4, 7, dtype=torch.long))


def test_initial_loss_is_about_ln_vocab():
    model = make()
    _, loss = model(torch.randint(0, V, (1024, 8)), torch.randint(0, V, (1024,)))
    assert abs(loss.item() - math.log(V)) < 0.1


def test_batchnorm_on_3d_input_uses_dims_0_and_1():
    torch.manual_seed(0)
    x = torch.randn(16, 4, 5) * 3 + torch.arange(4.0).view(1, 4, 1)  # the mean varies along T
    bn = BatchNorm(5, momentum=1.0)
    y = bn(x)
    mean, var = x.mean((0, 1)), x.var((0, 1), unbiased=True)
    torch.testing.assert_close(bn.running_mean, mean)
    torch.testing.assert_close(bn.running_var, var)
    torch.testing.assert_close(y, (x - mean) / torch.sqrt(var + bn.eps))
    torch.testing.assert_close(y.mean((0, 1)), torch.zeros(5), atol=1e-5, rtol=0)


def test_batchnorm_momentum_update_and_eval_uses_running_stats():
    torch.manual_seed(0)
    x = torch.randn(8, 2, 3) + 5
    bn = BatchNorm(3)
    assert bn.momentum == 0.1
    bn(x)
    torch.testing.assert_close(bn.running_mean, 0.1 * x.mean((0, 1)))
    torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * x.var((0, 1), unbiased=True))
    bn.eval()
    before = (bn.running_mean.clone(), bn.running_var.clone())
    with torch.no_grad():
        bn.gain.fill_(2.0)
        bn.bias.fill_(-1.0)
    expected = 2.0 * (x - before[0]) / torch.sqrt(before[1] + bn.eps) - 1.0
    torch.testing.assert_close(bn(x), expected)
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    # 2-D inputs normalise over the batch dimension only
    bn2 = BatchNorm(3, momentum=1.0)
    x2 = torch.randn(10, 3)
    bn2(x2)
    torch.testing.assert_close(bn2.running_mean, x2.mean(0))


def test_model_batchnorm_statistics_are_over_batch_and_time():
    model = make(n_embd=6, n_hidden=10)
    seen = {}
    first_linear = model.layers[1]
    first_linear.register_forward_hook(lambda m, i, o: seen.setdefault("pre_bn", o.detach()))
    model(torch.randint(0, V, (32, 8)))
    pre = seen["pre_bn"]
    assert pre.shape == (32, 4, 10)
    bn = model.layers[2]
    torch.testing.assert_close(bn.running_mean, 0.1 * pre.mean((0, 1)))
    torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * pre.var((0, 1), unbiased=True))


def test_output_depends_on_every_window_position_and_nothing_else():
    model = make(n_embd=8, n_hidden=32)
    model.train()
    model(torch.randint(0, V, (64, 8)))  # move the running stats away from their initial values
    model.eval()
    idx = torch.randint(0, V, (16, 8))
    with torch.no_grad():
        ref = model(idx)[0]
        # a row's output does not depend on the other rows in eval mode
        alone = model(idx[3:4])[0]
        torch.testing.assert_close(alone, ref[3:4], atol=1e-6, rtol=0)
        shuffled = torch.cat([torch.randint(0, V, (5, 8)), idx[3:4], torch.randint(0, V, (2, 8))])
        torch.testing.assert_close(model(shuffled)[0][5], ref[3], atol=1e-6, rtol=0)
        # every position of the window is in the receptive field
        for p in range(8):
            changed = idx.clone()
            changed[:, p] = (changed[:, p] + 1) % V
            diff = (model(changed)[0] - ref).abs().amax(dim=1)
            assert (diff > 1e-6).all(), p


def test_ignored_targets_do_not_count():
    model = make(n_embd=8, n_hidden=32).eval()
    idx = torch.randint(0, V, (10, 8))
    targets = torch.randint(0, V, (10,))
    masked = targets.clone()
    masked[6:] = -1
    with torch.no_grad():
        _, loss = model(idx, masked)
        _, loss_kept = model(idx[:6], targets[:6])
    torch.testing.assert_close(loss, loss_kept)


def test_dropout_is_active_only_in_training():
    model = make(n_embd=8, n_hidden=32, dropout=0.5)
    idx = torch.randint(0, V, (8, 8))
    torch.manual_seed(1)
    a = model(idx)[0]
    b = model(idx)[0]
    assert not torch.allclose(a, b)
    model.eval()
    torch.testing.assert_close(model(idx)[0], model(idx)[0])


def test_a_few_adamw_steps_lower_the_loss():
    model = make(n_embd=8, n_hidden=32)
    idx = torch.randint(0, V, (32, 8))
    targets = torch.randint(0, V, (32,))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        _, loss = model(idx, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5


def test_state_dict_round_trip_through_safetensors():
    model = make(n_embd=8, n_hidden=32)
    model(torch.randint(0, V, (32, 8)))  # non-trivial running statistics
    state = load(save(model.state_dict()))
    assert any(k.endswith("running_mean") for k in state)
    clone = make(seed=1, n_embd=8, n_hidden=32)
    clone.load_state_dict(state)
    model.eval()
    clone.eval()
    idx = torch.randint(0, V, (16, 8))
    torch.testing.assert_close(clone(idx)[0], model(idx)[0], atol=0, rtol=0)
