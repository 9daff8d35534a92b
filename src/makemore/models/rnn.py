"""Recurrent language models: vanilla (tanh) RNN, GRU and LSTM.

The recurrence runs in PyTorch's C++ kernels (``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM``; on CPU
the LSTM's is oneDNN's), so there is no Python loop over time; one single-layer module per
layer, so that the dropout between layers is makemore's faster CPU dropout. Regularisation:
dropout on the embeddings, between layers and before the output layer (optionally ``locked``:
one mask per item for all its positions), and, as in AWD-LSTM, optionally DropConnect on the
hidden-to-hidden weights (``weight_dropout``) and dropout of whole characters' embeddings
(``embed_dropout``).
``next_token_logits`` keeps the hidden state between calls, so sampling feeds one new token
per step.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from makemore.errors import MakemoreError
from makemore.models.base import Packing, SequenceModel, dropout
from makemore.models.configs import RNNConfig

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
MAX_PADDED_SHARE = 0.6  # the LSTM runs a batch padded (oneDNN) while at most this share of it is padding


class RNNModel(SequenceModel):
    """Embedding -> recurrent layers -> Linear: idx ``(B, T)`` -> logits ``(B, T, V)``."""

    has_position_limit = False  # any length works; block_size is only recorded

    def __init__(self, config: RNNConfig, vocab_size: int):
        super().__init__()
        self.config = config
        self.block_size = config.block_size
        self.vocab_size = vocab_size
        self.cell = config.cell

        self.wte = nn.Embedding(vocab_size, config.n_embd)
        kwargs: dict[str, Any] = {"nonlinearity": "tanh"} if config.cell == "rnn" else {}
        # one single-layer module per layer, so that the dropout between layers is ours
        self.rnn = nn.ModuleList(
            CELLS[config.cell](
                config.n_embd if i == 0 else config.n_hidden, config.n_hidden, batch_first=True, **kwargs
            )
            for i in range(config.n_layers)
        )
        self.lm_head = nn.Linear(config.n_hidden, vocab_size)
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        nn.init.normal_(self.wte.weight, std=1.0)
        # small output layer: the initial loss is ~ ln V
        nn.init.normal_(self.lm_head.weight, std=0.02)
        nn.init.zeros_(self.lm_head.bias)

    def _drop(self, x: torch.Tensor, seq: torch.Tensor | None = None) -> torch.Tensor:
        """Dropout of ``x``, ``(B, T, C)`` or ``(N, C)`` rows of items ``seq`` (``(N,)``, for a
        locked mask: each item keeps one mask at all its positions)."""
        p = self.config.dropout
        if not self.training or p == 0.0:
            return x
        if not self.config.locked_dropout:
            return dropout(x, p)
        if x.dim() == 3:
            return x * dropout(x.new_ones(x.size(0), 1, x.size(2)), p)  # (B, 1, C) over every position
        B = int(seq.max()) + 1 if seq.numel() else 0
        return x * dropout(x.new_ones(B, x.size(1)), p)[seq]  # (N, C)

    def _embed(self, idx: torch.Tensor) -> torch.Tensor:
        """Token embeddings ``(B, T, n_embd)``, with whole characters dropped in training."""
        p = self.config.embed_dropout
        if not self.training or p == 0.0:
            return self.wte(idx)
        keep = dropout(self.wte.weight.new_ones(self.vocab_size, 1), p)  # (V, 1): one draw per character
        return F.embedding(idx, self.wte.weight * keep)

    @staticmethod
    def _packed_items(x: PackedSequence) -> torch.Tensor:
        """The item (batch row) of each row of a packed sequence's data, ``(N,)``."""
        sizes = x.batch_sizes.to(x.data.device)  # (T,) items still running at each position
        starts = torch.cumsum(sizes, 0) - sizes
        within = torch.arange(x.data.size(0), device=x.data.device) - starts.repeat_interleave(sizes)
        return within if x.sorted_indices is None else x.sorted_indices[within]

    def _recur(self, x: Any, states: list | None = None) -> tuple[Any, list]:
        """The recurrent layers over ``x``, a ``(B, T, n_embd)`` tensor or a packed sequence.

        Args:
            x: the layers' input.
            states: each layer's state from a previous call (None: zeros).
        Returns:
            the last layer's output (like ``x``, ``n_hidden`` wide) and each layer's state.

        In training, dropout applies between layers and, with ``weight_dropout``, to the
        hidden-to-hidden matrices: one mask per matrix and step, used at every time step
        (DropConnect, as in AWD-LSTM).
        """
        p = self.config.weight_dropout if self.training else 0.0
        new_states = []
        for i, layer in enumerate(self.rnn):
            if i > 0 and isinstance(x, PackedSequence):
                x = x._replace(data=self._drop(x.data, self._packed_items(x)))
            elif i > 0:
                x = self._drop(x)
            state = None if states is None else states[i]
            if p > 0:
                x, state = functional_call(layer, {"weight_hh_l0": dropout(layer.weight_hh_l0, p)}, (x, state))
            else:
                x, state = layer(x, state)
            new_states.append(state)
        return x, new_states

    def _run(self, idx: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        x = self._drop(self._embed(idx))  # (B, T, n_embd)
        h, state = self._recur(x, state)  # (B, T, n_hidden), one state per layer
        logits = self.lm_head(self._drop(h))  # (B, T, V)
        return logits, state

    def runs_padded(self, x: torch.Tensor, needed: torch.Tensor | None = None) -> bool:
        """Whether a training pass runs the recurrence over the whole padded batch ``x``
        (rather than a packed sequence): when ``nn.LSTM`` can use oneDNN's LSTM kernel and
        the batch is not mostly padding.

        PyTorch uses that kernel on CPU for float32 input that is not a packed sequence, and
        only for the LSTM. It is faster than the packed step-by-step loop even though it
        also runs over the padding, up to about 60% of padding; past that (random batches
        of a list with a long tail of lengths) the packed loop wins
        (``benchmarks/bench_rnn_paths.py``, ``benchmarks/bench_batching.py``). GRU and RNN
        have no such kernel: packed is faster for them.

        Args:
            x: the recurrence's input, ``(B, T, C)``.
            needed: ``(B, T)`` the positions that must run (None: all).
        """
        onednn = (
            self.cell == "lstm"
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and torch.backends.mkldnn.is_available()
            and torch.backends.mkldnn.enabled
        )
        return onednn and (needed is None or float(needed.float().mean()) >= 1.0 - MAX_PADDED_SHARE)

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
        x = self._drop(self._embed(idx))  # (B, T, n_embd)
        if self.runs_padded(x, needed):
            packed = Packing.from_mask(needed)
            h, _ = self._recur(x)  # (B, T, n_hidden), causal: padding never reaches earlier positions
            logits = self.lm_head(self._drop(packed.pack(h), packed.rows // T))  # (N, V)
            loss = self.loss_from_logits(logits, targets.reshape(-1).index_select(0, packed.rows))
            return packed.unpack(logits), loss
        lengths = needed.sum(1).clamp(min=1).cpu()  # (B,) positions to run per row
        h, _ = self._recur(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        logits = self.lm_head(self._drop(h.data, self._packed_items(h)))  # (N, V), time-major packed rows
        packed_targets = pack_padded_sequence(targets, lengths, batch_first=True, enforce_sorted=False).data  # (N,)
        loss = self.loss_from_logits(logits, packed_targets)
        full, _ = pad_packed_sequence(h._replace(data=logits), batch_first=True, total_length=T)  # (B, T, V)
        return full, loss

    def select_cache_rows(self, cache: Any, rows: torch.Tensor) -> Any:
        if cache is None:
            return None
        states = [  # each (1, B, H), or a pair of them for the LSTM
            tuple(t.index_select(1, rows) for t in state) if isinstance(state, tuple) else state.index_select(1, rows)
            for state in cache["state"]
        ]
        return {"state": states, "n": cache["n"]}

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
                raise MakemoreError(f"next_token_logits: idx has {idx.size(1)} tokens but the cache already saw {seen}")
            new = idx[:, seen:]  # (B, t_new), usually t_new == 1
        logits, state = self._run(new, state)
        return logits[:, -1, :], {"state": state, "n": idx.size(1)}
