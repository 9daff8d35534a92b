"""Recurrent language models: vanilla (tanh) RNN, GRU and LSTM.

The recurrence runs in PyTorch's C++ kernels (``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM``; on CPU
the LSTM's is oneDNN's), so there is no Python loop over time. ``next_token_logits`` keeps
the hidden state between calls, so sampling feeds one new token per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from makemore.errors import MakemoreError
from makemore.models.base import LanguageModel, Packing

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


@dataclass
class RNNConfig:
    """Defaults (as a GRU): dev NLL about 1.93 on names.txt in about two minutes on 2 CPU cores."""

    n_embd: int = 64  # character embedding size
    n_hidden: int = 256  # hidden state size
    n_layers: int = 1  # stacked recurrent layers
    dropout: float = 0.2  # on the embeddings, between layers and before the output layer
    block_size: int = 0  # 0: set by the API to the longest training item + 1 (recorded only)
    cell: str = "rnn"  # "rnn" (tanh), "gru" or "lstm"
    default_train: ClassVar[dict] = dict(
        steps=12000, batch_size=64, optimizer="adamw", lr=0.003, schedule="cosine", warmup_steps=200, weight_decay=0.1
    )


@dataclass
class GRUConfig(RNNConfig):
    cell: str = "gru"


@dataclass
class LSTMConfig(RNNConfig):
    cell: str = "lstm"


class RNNModel(LanguageModel):
    """Embedding -> recurrent layers -> Linear: idx ``(B, T)`` -> logits ``(B, T, V)``."""

    input_kind = "sequence"
    has_position_limit = False  # any length works; block_size is only recorded

    def __init__(self, config: RNNConfig, vocab_size: int):
        super().__init__()
        if config.cell not in CELLS:
            raise MakemoreError(f"unknown rnn cell '{config.cell}' (choose from: {', '.join(CELLS)})")
        if config.n_embd < 1 or config.n_hidden < 1 or config.n_layers < 1:
            raise MakemoreError("rnn n_embd, n_hidden and n_layers must be positive")
        if not 0.0 <= config.dropout < 1.0:
            raise MakemoreError(f"rnn dropout must be in [0, 1), got {config.dropout}")
        if config.block_size < 0:
            raise MakemoreError(f"rnn block_size must be >= 0, got {config.block_size}")
        self.config = config
        self.block_size = config.block_size
        self.vocab_size = vocab_size
        self.cell = config.cell

        self.wte = nn.Embedding(vocab_size, config.n_embd)
        kwargs: dict[str, Any] = {"nonlinearity": "tanh"} if config.cell == "rnn" else {}
        self.rnn = CELLS[config.cell](
            config.n_embd,
            config.n_hidden,
            num_layers=config.n_layers,
            batch_first=True,
            dropout=config.dropout if config.n_layers > 1 else 0.0,
            **kwargs,
        )
        self.drop = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.lm_head = nn.Linear(config.n_hidden, vocab_size)
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        nn.init.normal_(self.wte.weight, std=1.0)
        # small output layer: the initial loss is ~ ln V
        nn.init.normal_(self.lm_head.weight, std=0.02)
        nn.init.zeros_(self.lm_head.bias)

    def _run(self, idx: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        x = self.drop(self.wte(idx))  # (B, T, n_embd)
        h, state = self.rnn(x, state)  # (B, T, n_hidden)
        logits = self.lm_head(self.drop(h))  # (B, T, V)
        return logits, state

    def runs_padded(self, x: torch.Tensor) -> bool:
        """Whether a training pass runs the recurrence over the whole padded batch ``x``
        (rather than a packed sequence): when ``nn.LSTM`` can use oneDNN's LSTM kernel.

        PyTorch uses that kernel on CPU for float32 input that is not a packed sequence, and
        only for the LSTM. It is faster than the packed step-by-step loop even though it
        also runs over the padding (``benchmarks/bench_rnn_paths.py``), so on CPU the LSTM
        runs the padded batch and packs only its output. GRU and RNN have no such kernel:
        packed is faster for them.
        """
        return (
            self.cell == "lstm"
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and torch.backends.mkldnn.is_available()
            and torch.backends.mkldnn.enabled
        )

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Logits ``(B, T, V)`` and the mean loss over the targets that are not padding.

        With targets, the output layer and the loss see only the positions up to each row's
        last target, and the recurrence itself runs only over them (a packed sequence) unless
        oneDNN's LSTM kernel is faster over the whole padded batch; the logits of the skipped
        positions are zeros.
        """
        if idx.dim() != 2:
            raise MakemoreError(f"rnn expects idx of shape (B, T), got {tuple(idx.shape)}")
        needed = self.needed_mask(targets)
        if needed is None:
            logits, _ = self._run(idx)
            return logits, self.loss_from_logits(logits, targets)
        B, T = idx.shape
        x = self.drop(self.wte(idx))  # (B, T, n_embd)
        if self.runs_padded(x):
            packed = Packing(needed.view(-1).nonzero().squeeze(1), B, T)
            h, _ = self.rnn(x)  # (B, T, n_hidden), causal: padding never reaches earlier positions
            logits = self.lm_head(self.drop(packed.pack(h)))  # (N, V)
            loss = self.loss_from_logits(logits, targets.reshape(-1).index_select(0, packed.rows))
            return packed.unpack(logits), loss
        lengths = needed.sum(1).clamp(min=1).cpu()  # (B,) positions to run per row
        h, _ = self.rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        logits = self.lm_head(self.drop(h.data))  # (N, V), time-major order of the packed rows
        packed_targets = pack_padded_sequence(targets, lengths, batch_first=True, enforce_sorted=False).data  # (N,)
        loss = self.loss_from_logits(logits, packed_targets)
        full, _ = pad_packed_sequence(h._replace(data=logits), batch_first=True, total_length=T)  # (B, T, V)
        return full, loss

    def select_cache_rows(self, cache: Any, rows: torch.Tensor) -> Any:
        if cache is None:
            return None
        state = cache["state"]  # (n_layers, B, H), or a pair of them for the LSTM
        if isinstance(state, tuple):
            state = tuple(t.index_select(1, rows) for t in state)
        else:
            state = state.index_select(1, rows)
        return {"state": state, "n": cache["n"]}

    @torch.no_grad()
    def next_token_logits(self, idx: torch.Tensor, cache: Any = None) -> tuple[torch.Tensor, Any]:
        """Logits ``(B, V)`` for the token after ``idx``; the cache carries the hidden state.

        The first call (``cache=None``) runs the whole prefix; later calls feed only the
        tokens appended since the last call (normally just ``idx[:, -1:]``).
        """
        if cache is None:
            new, state, seen = idx, None, 0
        else:
            state, seen = cache["state"], cache["n"]
            if idx.size(1) <= seen:
                raise MakemoreError(
                    f"next_token_logits: idx has {idx.size(1)} tokens but the cache already saw {seen}"
                )
            new = idx[:, seen:]  # (B, t_new), usually t_new == 1
        logits, state = self._run(new, state)
        return logits[:, -1, :], {"state": state, "n": idx.size(1)}
