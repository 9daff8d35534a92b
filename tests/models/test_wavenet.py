"""WaveNet (lecture 5): the lecture's model, power-of-two windows, 3-D BatchNorm.

Shapes, the initial loss, window dependence, dropout, training, the state dict: test_contract.py."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load, save
from torch import nn

from makemore.errors import MakemoreError
from makemore.models.configs import WaveNetConfig
from makemore.models.layers import BatchNorm
from makemore.models.wavenet import FlattenConsecutive, WaveNet

V = 27


pytestmark = pytest.mark.usefixtures("one_thread")


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
def test_one_tanh_level_per_doubling_of_the_window(block_size):
    model = make(block_size=block_size, n_embd=8, n_hidden=32)
    assert sum(isinstance(m, nn.Tanh) for m in model.modules()) == int(math.log2(block_size))


def test_wrong_window_length_is_an_error():
    model = make()
    with pytest.raises(MakemoreError, match=r"\(B, 8\)"):
        model(torch.zeros(4, 7, dtype=torch.long))


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
    model = WaveNet(WaveNetConfig(block_size=4, n_embd=3, n_hidden=3), 5)
    bn = next(m for m in model.modules() if isinstance(m, BatchNorm))  # the shared layer, as WaveNet builds it
    assert bn.momentum == 0.1  # lecture 5's
    bn = BatchNorm(3, momentum=0.1)
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


def test_the_state_dict_carries_the_batchnorm_running_statistics():
    model = make(n_embd=8, n_hidden=32)
    model(torch.randint(0, V, (32, 8)))  # non-trivial running statistics
    state = load(save(model.state_dict()))
    running = [k for k in state if k.endswith("running_mean") or k.endswith("running_var")]
    assert len(running) == 6  # three BatchNorm levels
    bn = model.layers[2]
    assert torch.equal(state["layers.2.running_mean"], bn.running_mean) and bool((bn.running_mean != 0).any())
