"""GPT-style decoder-only Transformer with a KV cache for sampling.

Pre-LayerNorm blocks; causal self-attention through
``torch.nn.functional.scaled_dot_product_attention`` with one fused qkv projection; MLP with
4x expansion and GELU; learned token and position embeddings; final LayerNorm and a linear
head (optionally tied to the token embedding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from makemore.errors import MakemoreError
from makemore.models.base import Dropout, Packing, SequenceModel
from makemore.models.configs import TransformerConfig


class KVCache:
    """Per-layer keys and values ``(B, nh, T, hs)`` of the tokens seen so far.

    Storage grows by doubling (capped at ``block_size``) so that appending one token is a
    copy of one row, not of the whole history.
    """

    def __init__(self, n_layer: int, B: int, n_head: int, head_size: int, max_len: int, like: torch.Tensor):
        self.n = 0  # tokens stored
        self.max_len = max_len
        self._buf = like.new_empty((n_layer, 2, B, n_head, 0, head_size))

    def _reserve(self, length: int) -> None:
        cap = self._buf.size(4)
        if length <= cap:
            return
        new_cap = min(self.max_len, max(length, 2 * cap, 16))
        buf = self._buf.new_empty(self._buf.shape[:4] + (new_cap, self._buf.size(5)))
        buf[:, :, :, :, : self.n] = self._buf[:, :, :, :, : self.n]
        self._buf = buf

    def select_rows(self, rows: torch.Tensor) -> None:
        """Keep only the batch rows ``rows`` (e.g. those still being generated)."""
        self._buf = self._buf.index_select(2, rows)  # keeps the capacity for the next tokens

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``k, v`` (B, nh, t, hs) after position ``self.n``; return all keys/values so far."""
        end = self.n + k.size(2)
        self._reserve(end)
        self._buf[layer, 0, :, :, self.n : end] = k
        self._buf[layer, 1, :, :, self.n : end] = v
        return self._buf[layer, 0, :, :, :end], self._buf[layer, 1, :, :, :end]


def causal_attention_with_dropout(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, drop: nn.Module) -> torch.Tensor:
    """Causal attention of ``(B, nh, T, hs)`` queries, keys and values, written out so that
    ``drop`` (makemore's dropout) acts on the attention weights.

    On CPU, ``scaled_dot_product_attention`` with dropout leaves its fused kernel for its math
    path, whose dropout draws a Bernoulli sample per weight: slower than this (see the
    README's dropout section).
    """
    B, nh, T, hs = q.shape
    # (T, T): -inf above the diagonal, so that no query sees a later key
    mask = torch.full((T, T), float("-inf"), dtype=q.dtype, device=q.device).triu(1)
    q, k, v = (t.reshape(B * nh, T, hs) for t in (q, k, v))
    att = torch.baddbmm(mask, q, k.transpose(1, 2), alpha=hs**-0.5)  # (B*nh, T, T)
    att = drop(att.softmax(dim=-1))
    return torch.bmm(att, v).view(B, nh, T, hs)  # (B, nh, T, hs)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # fused q, k, v
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_drop = Dropout(config.dropout) if config.dropout > 0 else None
        self.attn_drop = Dropout(config.dropout) if config.dropout > 0 else None  # on attention weights

    def forward(
        self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0, packed: Packing | None = None
    ) -> torch.Tensor:
        """``x`` is ``(B, T, C)``, or ``(N, C)`` rows of a ``(B, T)`` batch described by ``packed``."""
        C = x.size(-1)
        hs = C // self.n_head
        qkv = self.c_attn(x)  # (B, T, 3C) or (N, 3C)
        if packed is not None:  # attention needs the (B, T) layout: padding rows stay zero
            qkv = packed.unpack(qkv)  # (B, T, 3C)
        B, T, _ = qkv.shape
        # split + view + transpose are all views; in backward the three gradients are
        # written into one (B, T, 3C) buffer by a single cat
        q, k, v = (t.view(B, T, self.n_head, hs).transpose(1, 2) for t in qkv.split(C, dim=2))
        if cache is None:
            # padding sits after every real token of its row, so causal attention keeps the
            # real queries from ever seeing it
            drop = self.attn_drop if self.training else None
            if drop is not None and x.device.type == "cpu":
                y = causal_attention_with_dropout(q, k, v, drop)
            else:
                p = 0.0 if drop is None else drop.p
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:
            start = cache.n
            k, v = cache.append(layer, k, v)  # (B, nh, start + T, hs)
            if start == 0:  # whole prefix: ordinary causal attention
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            elif T == 1:  # one new query sees every cached key: no mask needed
                y = F.scaled_dot_product_attention(q, k, v)
            else:  # several new queries: causal mask aligned to the end
                mask = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(start)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        if packed is not None:
            y = packed.pack(y)  # (N, C)
        y = self.c_proj(y)
        if self.resid_drop is not None:
            y = self.resid_drop(y)
        return y


class MLP(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.act = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.drop = Dropout(config.dropout) if config.dropout > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.c_proj(self.act(self.c_fc(x)))  # (B, T, C)
        if self.drop is not None:
            x = self.drop(x)
        return x


class Block(nn.Module):
    """Pre-LayerNorm block: ``x + attn(ln(x))`` then ``x + mlp(ln(x))``."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(
        self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0, packed: Packing | None = None
    ) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer, packed)
        x = x + self.mlp(self.ln_2(x))
        return x


class Transformer(SequenceModel):
    """Decoder-only Transformer: idx ``(B, T)`` with ``T <= block_size`` -> logits ``(B, T, V)``.

    It reads at most ``block_size`` positions (the position table), so it generates at most
    ``block_size - 1`` characters.
    """

    def __init__(self, config: TransformerConfig, vocab_size: int):
        super().__init__()
        if config.block_size < 1:  # fit_config sets it from the data
            raise MakemoreError("transformer block_size must be set (> 0): use the longest training item + 1")
        self.config = config
        self.block_size = config.block_size
        self.vocab_size = vocab_size

        self.wte = nn.Embedding(vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = Dropout(config.dropout) if config.dropout > 0 else None
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        # With tied weights the head reuses wte.weight in forward (no second copy in state_dict).
        self.lm_head = None if config.tie_weights else nn.Linear(config.n_embd, vocab_size, bias=False)
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        # GPT-2 style: N(0, 0.02), residual projections scaled by 1/sqrt(2 n_layer), zero biases.
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        for block in self.blocks:
            for proj in (block.attn.c_proj, block.mlp.c_proj):
                nn.init.normal_(proj.weight, std=0.02 / (2 * self.config.n_layer) ** 0.5)

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln_f(x)
        if self.lm_head is None:
            return F.linear(x, self.wte.weight)  # (..., V), tied
        return self.lm_head(x)  # (..., V)

    def _check_length(self, T: int) -> None:
        if T > self.block_size:
            raise MakemoreError(f"sequence of {T} tokens is longer than the transformer's block_size {self.block_size}")

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Logits ``(B, T, V)`` and the mean loss over the targets that are not padding.

        With targets, the positions after each row's last target (the batch's padding) are
        not computed at all: their logits are returned as zeros.
        """
        B, T = idx.shape
        self._check_length(T)
        x = self.wte(idx) + self.wpe.weight[:T]  # (B, T, C)
        rows = self.needed_positions(targets)
        packed = None if rows is None else Packing(rows, B, T)
        if packed is not None:
            x = packed.pack(x)  # (N, C)
        if self.drop is not None:
            x = self.drop(x)
        for block in self.blocks:
            x = block(x, packed=packed)
        logits = self._head(x)  # (B, T, V) or (N, V)
        if packed is None:
            return logits, self.loss_from_logits(logits, targets)
        loss = self.loss_from_logits(logits, targets.reshape(-1).index_select(0, rows))
        return packed.unpack(logits), loss

    def select_cache_rows(self, cache: KVCache | None, rows: torch.Tensor) -> KVCache | None:
        if cache is not None:
            cache.select_rows(rows)
        return cache

    @torch.no_grad()
    def next_token_logits(self, idx: torch.Tensor, cache: KVCache | None = None):
        """Logits ``(B, V)`` for the token after ``idx``, with a KV cache.

        The first call (``cache=None``) processes the whole prefix; later calls process only
        the tokens appended since (normally ``idx[:, -1:]``), attending over the cached keys.
        """
        B, T = idx.shape
        if T > self.block_size:
            raise MakemoreError(
                f"cannot generate past the transformer's block_size {self.block_size} (context is already {T} tokens)"
            )
        if cache is None:
            c = self.config
            cache = KVCache(c.n_layer, B, c.n_head, c.n_embd // c.n_head, self.block_size, self.wpe.weight)
        start = cache.n
        if T <= start:
            raise MakemoreError(f"next_token_logits: idx has {T} tokens but the cache already holds {start}")
        x = self.wte(idx[:, start:]) + self.wpe.weight[start:T]  # (B, T - start, C)
        for i, block in enumerate(self.blocks):
            x = block(x, cache, i)
        cache.n = T
        return self._head(x[:, -1, :]), cache  # (B, V)
