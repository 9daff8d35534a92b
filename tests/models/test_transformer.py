"""Transformer: its config, tied weights, attention maths, attention dropout, the KV cache.

Shapes, the initial loss, causality, padding, packing, the block_size limit and the rest of
every family's contract: test_contract.py."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save

from makemore.errors import MakemoreError
from makemore.models.base import Dropout
from makemore.models.configs import TransformerConfig
from makemore.models.transformer import Transformer, causal_attention_with_dropout

V = 27
SMALL = dict(block_size=12, n_layer=2, n_head=2, n_embd=16, dropout=0.0)


pytestmark = pytest.mark.usefixtures("one_thread")


def make(seed: int = 0, **overrides) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(TransformerConfig(**(SMALL | overrides)), V)


def test_config_defaults():
    cfg = TransformerConfig()
    assert (cfg.block_size, cfg.n_layer, cfg.n_head, cfg.n_embd) == (0, 4, 4, 64)
    assert (cfg.dropout, cfg.bias, cfg.tie_weights) == (0.1, True, False)


def test_bad_config_is_an_error():
    with pytest.raises(MakemoreError, match="block_size"):
        Transformer(TransformerConfig(), V)  # block_size 0 must be filled in first
    with pytest.raises(MakemoreError, match="divisible"):
        Transformer(TransformerConfig(block_size=8, n_embd=30, n_head=4), V)
    with pytest.raises(MakemoreError):
        Transformer(TransformerConfig(block_size=8, dropout=-0.1), V)


def test_tied_head_shares_the_embedding_and_saves_once():
    model = make(tie_weights=True)
    state = model.state_dict()
    assert not any(k.startswith("lm_head") for k in state)
    _, loss = model(torch.randint(0, V, (4, 6)), torch.randint(0, V, (4, 6)))
    loss.backward()
    # the head's gradient reaches every row of wte, not only the rows of input tokens
    assert (model.wte.weight.grad.abs().sum(dim=1) > 0).all()
    save(state)  # safetensors refuses shared tensors; there are none
    assert "lm_head.weight" in make().state_dict()


def _reference_forward(model: Transformer, idx: torch.Tensor) -> torch.Tensor:
    """The same network written out with an explicit masked softmax (no SDPA)."""
    B, T = idx.shape
    nh = model.config.n_head
    x = model.wte(idx) + model.wpe(torch.arange(T))
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for block in model.blocks:
        h = block.ln_1(x)
        q, k, v = block.attn.c_attn(h).split(model.config.n_embd, dim=2)
        q, k, v = (t.view(B, T, nh, -1).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, -1)
        x = x + block.attn.c_proj(y)
        x = x + block.mlp.c_proj(F.gelu(block.mlp.c_fc(block.ln_2(x))))
    return model.lm_head(model.ln_f(x))


def test_matches_explicit_attention_reference():
    model = make()
    with torch.no_grad():  # move off the tiny init so that attention weights are not uniform
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    idx = torch.randint(0, V, (4, 12))
    with torch.no_grad():
        torch.testing.assert_close(model(idx)[0], _reference_forward(model, idx), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("tie", [False, True])
def test_kv_cache_processes_only_the_newest_token(tie):
    """The prefix is processed once, later steps only the newest token, up to block_size (that
    the logits equal a full recomputation, and the block_size limit, are in test_contract.py)."""
    model = make(tie_weights=tie).eval()
    fed = []
    model.blocks[0].attn.c_attn.register_forward_hook(lambda m, i, o: fed.append(i[0].size(1)))
    g = torch.Generator().manual_seed(3)
    idx = torch.cat([torch.zeros(5, 1, dtype=torch.long), torch.randint(1, V, (5, 2), generator=g)], dim=1)
    cache = None
    while True:
        logits, cache = model.next_token_logits(idx, cache)
        with torch.no_grad():
            full = model(idx)[0][:, -1, :]
        torch.testing.assert_close(logits, full, atol=1e-5, rtol=0)
        if idx.size(1) == model.block_size:
            break
        nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=g)
        idx = torch.cat([idx, nxt], dim=1)
    # the prefix is processed once; later steps process only the newest token (full recomputations alternate)
    assert fed[0::2] == [3] + [1] * 9


def test_kv_cache_accepts_several_new_tokens_at_once():
    model = make().eval()
    idx = torch.randint(0, V, (3, 10))
    _, cache = model.next_token_logits(idx[:, :4])
    logits, cache = model.next_token_logits(idx[:, :7], cache)  # three new tokens
    logits, cache = model.next_token_logits(idx, cache)
    with torch.no_grad():
        torch.testing.assert_close(logits, model(idx)[0][:, -1], atol=1e-5, rtol=0)


def test_kv_cache_from_a_single_start_token_over_a_full_block():
    # 40 positions: the cache storage grows (16 -> 32 -> 40) on the way
    model = make(block_size=40, n_layer=3).eval()
    idx = torch.zeros(7, 1, dtype=torch.long)
    cache = None
    for _ in range(40):
        logits, cache = model.next_token_logits(idx, cache)
        with torch.no_grad():
            torch.testing.assert_close(logits, model(idx)[0][:, -1], atol=1e-5, rtol=0)
        idx = torch.cat([idx, torch.multinomial(F.softmax(logits, dim=-1), 1)], dim=1)
    assert idx.size(1) == 41  # 40 generated tokens after the start token
    with pytest.raises(MakemoreError, match="block_size 40"):
        model.next_token_logits(idx, cache)


def test_attention_with_dropout_written_out_matches_sdpa_without_dropout():
    q, k, v = (torch.randn(3, 2, 7, 8) for _ in range(3))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(
        causal_attention_with_dropout(q, k, v, torch.nn.Identity()), expected, atol=1e-6, rtol=1e-5
    )


def test_attention_dropout_is_unbiased_and_causal():
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 6, 4) for _ in range(3))
    drop = Dropout(0.5)
    draws = torch.stack([causal_attention_with_dropout(q, k, v, drop) for _ in range(4000)])
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert not torch.allclose(draws[0], expected)  # weights were dropped
    torch.testing.assert_close(draws.mean(0), expected, atol=0.06, rtol=0)  # but not biased
    # the first query sees only the first key: its output is v[0] * (0 or 2)
    first = draws[:, 0, :, 0] / v[0, :, 0]
    assert set(first.round(decimals=4).unique().tolist()) <= {0.0, 2.0}


def test_causality_in_training_mode_with_dropout():
    model = make(dropout=0.2).train()  # attention written out, with makemore's dropout
    idx = torch.randint(0, V, (4, 12))
    torch.manual_seed(1)
    ref = model(idx)[0]
    for t in (0, 5, 11):
        changed = idx.clone()
        changed[:, t] = (changed[:, t] + 1) % V
        torch.manual_seed(1)  # the same dropout masks
        out = model(changed)[0]
        torch.testing.assert_close(out[:, :t], ref[:, :t], atol=1e-6, rtol=0)
        assert ((out[:, t] - ref[:, t]).abs().amax(dim=1) > 1e-6).all()
