"""Count-based character n-gram model (lecture 1, generalised to any order).

An order-``n`` model predicts the next token from the ``n - 1`` previous ones by counting.
There is nothing to train: ``fit(X, Y)`` counts the examples and ``forward`` turns the
counts into log-probabilities, which it returns as ``logits`` (so ``softmax(logits)`` is the
model's distribution and ``cross_entropy`` is its exact NLL).

Storage. A context of ``n - 1`` tokens is encoded as one int64 id in base ``V`` (the newest
token is the least significant digit, so the id of the context's last ``m`` tokens is
``id % V**m``). Only contexts seen in training are stored, per order ``m``:

* ``order{m}_context_ids`` (C,) sorted int64 ids of the seen contexts of length ``m - 1``;
* ``order{m}_counts`` (C, V) int64 counts ``c(h, w)`` (raw counts at order ``n``,
  Kneser-Ney continuation counts below);
* ``order{m}_totals`` (C,) ``sum_w c(h, w)``;
* ``order{m}_types`` (C,) number of ``w`` with ``c(h, w) > 0``.

Add-k keeps only order ``n``; Kneser-Ney keeps every order ``1..n``. Look-ups use
``torch.searchsorted``. A float32 table of the log-probabilities of every stored context
is derived from these (not saved) so that ``forward`` is a look-up; memory is bounded by
the tables, not by the corpus.

Smoothing:

* ``add-k``: ``P(w | h) = (c(h, w) + k) / (c(h) + k V)``. An unseen context gets the
  uniform distribution ``1 / V`` (also when ``k == 0``, where the formula is ``0 / 0``);
  with ``k == 0`` a seen context gives ``-inf`` to the tokens it never saw.
* ``kneser-ney``: interpolated Kneser-Ney (Chen & Goodman), recursively down to the
  unigram, which is interpolated with the uniform ``1 / V``::

      P_m(w | h) = max(a(h, w) - D, 0) / a(h) + D N1+(h .) / a(h) * P_{m-1}(w | h')
      P_0(w)     = 1 / V

  where ``h'`` drops the oldest token of ``h`` and ``P_m(w | h) = P_{m-1}(w | h')`` when
  ``h`` was never seen. ``a`` is the raw count at the highest order and the continuation
  count ``N1+(. h w)`` (number of distinct tokens seen just before ``h w``) at every lower
  order, the unigram included. This applies to start-of-item contexts too (the left
  extension of ``0 0 a`` is always ``0``, so its continuation counts are 1 per seen type):
  on names.txt that beats using their raw counts (as KenLM does for ``<s>``) on the dev
  split, e.g. 1.994 vs 2.003 nats at order 5. Each distribution uses one kind of count for
  all its tokens, so it sums to 1 for every context, seen or not.

Token 0 is the boundary: contexts at the start of an item are padded with it and, as a
target, it is the end of the item.
"""

from __future__ import annotations

import torch

from makemore.data.batching import Batcher
from makemore.errors import MakemoreError
from makemore.models.base import IGNORE_INDEX, CountModel
from makemore.models.configs import NGramConfig

_INT64_MAX = 2**63 - 1
_TABLES = ("context_ids", "counts", "totals", "types")
# fit counts every possible n-gram with one bincount (no sort) when there are at most this
# many plus 4 per example; otherwise it sorts the examples' context ids (torch.unique)
_DENSE_BUCKETS = 1 << 16
FIT_CHUNK = 1 << 22  # examples counted per tensor op by fit_batcher


def _check_vocab(config: NGramConfig, vocab_size: int) -> None:
    order = config.order
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
        raise MakemoreError(f"ngram: vocab_size must be a positive integer, got {vocab_size!r}")
    if vocab_size ** (order - 1) > _INT64_MAX:
        raise MakemoreError(
            f"ngram: order {order} with a vocabulary of {vocab_size} tokens has {vocab_size}^{order - 1} "
            "possible contexts, more than an int64 context id can hold (use a lower order)"
        )


class NGramModel(CountModel):
    """Character n-gram model with add-k or interpolated Kneser-Ney smoothing.

    It has no trainable parameters: every table is a registered buffer, so ``state_dict()``
    holds the whole fitted model, and ``load_state_dict`` into a freshly built model with the
    same config and vocabulary restores it (buffers are resized to the stored tables).
    An unfitted model predicts the uniform distribution.
    """

    def __init__(self, config: NGramConfig, vocab_size: int):
        """Build an empty (unfitted) model.

        Args:
            config: order and smoothing.
            vocab_size: V, including the boundary token 0.
        Raises:
            MakemoreError: for an invalid vocabulary size, or when ``V ** (order - 1)`` does not fit
                in an int64 context id.
        """
        super().__init__()
        _check_vocab(config, vocab_size)
        self.config = config
        self.vocab_size = vocab_size
        self.order = config.order
        self.block_size = config.order - 1
        kn = config.smoothing == "kneser-ney"
        self._levels = tuple(range(1, self.order + 1)) if kn else (self.order,)
        V = vocab_size
        for m in self._levels:
            self.register_buffer(self._name(m, "context_ids"), torch.zeros(0, dtype=torch.int64))
            self.register_buffer(self._name(m, "counts"), torch.zeros(0, V, dtype=torch.int64))
            self.register_buffer(self._name(m, "totals"), torch.zeros(0, dtype=torch.int64))
            self.register_buffer(self._name(m, "types"), torch.zeros(0, dtype=torch.int64))
        # place value of each context column: V^(n-2), ..., V, 1 (the newest token is last)
        powers = [V ** (self.block_size - 1 - j) for j in range(self.block_size)]
        self.register_buffer("_powers", torch.tensor(powers, dtype=torch.int64), persistent=False)
        self.register_buffer("_logprobs", torch.zeros(0, V, dtype=torch.float32), persistent=False)
        self._offsets: dict[int, int] = {}
        self._cache_key: tuple | None = None  # (k, discount) the cache was built for

    @staticmethod
    def _name(m: int, table: str) -> str:
        return f"order{m}_{table}"

    def _table(self, m: int, table: str) -> torch.Tensor:
        return getattr(self, self._name(m, table))

    def extra_repr(self) -> str:
        c = self.config
        smoothing = f"k={c.k}" if c.smoothing == "add-k" else f"discount={c.discount}"
        seen = self._table(self.order, "context_ids").numel()
        return f"order={self.order}, smoothing={c.smoothing}, {smoothing}, vocab_size={self.vocab_size}, seen_contexts={seen}"

    # ------------------------------------------------------------------ helpers

    def _check_tokens(self, t: torch.Tensor, what: str) -> None:
        if t.dtype != torch.int64:
            raise MakemoreError(f"ngram: {what} must be int64 token ids, got {t.dtype}")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.vocab_size):
            raise MakemoreError(f"ngram: {what} has token ids outside 0..{self.vocab_size - 1}")

    def _check_contexts(self, idx: torch.Tensor) -> None:
        if idx.dim() != 2 or idx.size(1) != self.block_size:
            raise MakemoreError(
                f"ngram: expected contexts of shape (B, {self.block_size}) for order {self.order}, "
                f"got {tuple(idx.shape)}"
            )
        self._check_tokens(idx, "context")

    def _encode(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, n-1) contexts -> (B,) int64 ids in base V (newest token least significant)."""
        if self.block_size == 0:
            return torch.zeros(idx.size(0), dtype=torch.int64, device=idx.device)
        return (idx * self._powers).sum(1)  # each id < V^(n-1), no overflow

    def _lookup(self, m: int, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Rows of the order-``m`` tables for context ids ``ids`` (B,).

        Returns:
            ``(rows (B,), found (B,) bool)``, rows being valid indices even where not found;
            None when nothing of order ``m`` was seen.
        """
        table = self._table(m, "context_ids")
        if table.numel() == 0:
            return None
        rows = torch.searchsorted(table, ids).clamp_(max=table.numel() - 1)  # (B,)
        return rows, table[rows] == ids

    def _set_level(self, m: int, ids: torch.Tensor, counts: torch.Tensor) -> None:
        setattr(self, self._name(m, "context_ids"), ids.contiguous())
        setattr(self, self._name(m, "counts"), counts.contiguous())
        setattr(self, self._name(m, "totals"), counts.sum(1))
        setattr(self, self._name(m, "types"), (counts > 0).sum(1))

    # ------------------------------------------------------------------ fitting

    @torch.no_grad()
    def fit(self, X: torch.Tensor, Y: torch.Tensor) -> None:
        """Count the examples, replacing any previous fit.

        Args:
            X: (N, order - 1) int64 contexts (boundary-padded at item starts).
            Y: (N,) int64 next tokens.
        Raises:
            MakemoreError: for shapes that do not match the order or ids outside the vocabulary.
        """
        if X.dim() != 2 or X.size(1) != self.block_size or Y.dim() != 1 or Y.size(0) != X.size(0):
            raise MakemoreError(
                f"ngram: fit expects X of shape (N, {self.block_size}) and Y of shape (N,), "
                f"got {tuple(X.shape)} and {tuple(Y.shape)}"
            )
        self._fit_chunks([(X, Y)], Y.numel())

    @torch.no_grad()
    def fit_batcher(self, batcher: Batcher) -> None:
        """Count every example of a batcher made by ``self.batcher``, ``FIT_CHUNK`` at a time:
        the memory is bounded by the count tables (the distinct contexts), not by the corpus."""
        self._fit_chunks(batcher.chunks(FIT_CHUNK), batcher.num_targets)

    def _raw_counts(self, chunks, total: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(C,) sorted seen context ids and (C, V) raw counts of the examples of ``chunks``.

        A small space of n-grams is counted with one bincount per chunk (no sort); a large one
        sorts each chunk's context ids (``torch.unique``) and merges the chunks' tables.
        """
        V = self.vocab_size
        n_contexts = V**self.block_size
        dense = n_contexts * V <= _DENSE_BUCKETS + 4 * total
        device = self._powers.device
        counts = torch.zeros(n_contexts * V if dense else 0, dtype=torch.int64, device=device)
        uniq = torch.zeros(0, dtype=torch.int64, device=device)
        for X, Y in chunks:
            self._check_tokens(X, "X")
            self._check_tokens(Y, "Y")
            ids = self._encode(X.to(device))  # (N,)
            Y = Y.to(device)
            if dense:
                counts += torch.bincount(ids * V + Y, minlength=n_contexts * V)
                continue
            seen, inv = torch.unique(ids, sorted=True, return_inverse=True)  # (C,), (N,)
            table = torch.bincount(inv * V + Y, minlength=seen.numel() * V).view(seen.numel(), V)
            if uniq.numel():  # merge with the chunks so far
                seen, group = torch.unique(torch.cat([uniq, seen]), sorted=True, return_inverse=True)
                merged = torch.zeros(seen.numel(), V, dtype=torch.int64, device=device)
                table = merged.index_add_(0, group, torch.cat([counts, table]))
            uniq, counts = seen, table
        if dense:
            counts = counts.view(n_contexts, V)
            uniq = torch.nonzero(counts.sum(1)).squeeze(1)  # (C,) sorted seen context ids
            counts = counts[uniq]
        return uniq, counts.view(-1, V)

    def _fit_chunks(self, chunks, total: int) -> None:
        """Fit to the ``total`` examples of ``chunks`` ((X, Y) pairs), replacing any previous fit."""
        V = self.vocab_size
        uniq, raw = self._raw_counts(chunks, total)
        self._set_level(self.order, uniq, raw)
        if self.config.smoothing != "kneser-ney":
            self._build_cache()
            return
        # Lower orders, from order m to m - 1: group the order-m contexts by their suffix
        # (drop the oldest token); the continuation count N1+(. h w) is the number of
        # order-m types (v h, w) seen, i.e. of nonzero order-m counts per (suffix, w).
        counts = raw
        for m in range(self.order, 1, -1):
            suffix = uniq % (V ** (m - 2))  # (C_m,) ids of the contexts at order m - 1
            uniq, group = torch.unique(suffix, sorted=True, return_inverse=True)  # (C_{m-1},), (C_m,)
            seen = (counts > 0).to(torch.int64)  # (C_m, V)
            counts = torch.zeros(uniq.numel(), V, dtype=torch.int64, device=seen.device).index_add_(0, group, seen)
            self._set_level(m - 1, uniq, counts)
        self._build_cache()

    # ------------------------------------------------------------------ inference

    def _build_cache(self) -> None:
        """Derive the (R, V) log-probability table of every stored context.

        Probabilities are computed in float64 and the logs stored as float32 (the output
        dtype), so the cache takes half the memory of the int64 count tables.

        Row 0 is the uniform distribution (unseen contexts, unfitted model); order ``m``'s
        contexts follow at ``self._offsets[m]``. It is rebuilt from the count buffers after
        ``fit``, after loading and when ``k``/``discount`` change, so it is not saved.
        """
        V = self.vocab_size
        device = self._powers.device
        uniform = torch.full((1, V), 1.0 / V, dtype=torch.float64, device=device)
        blocks = [torch.log(uniform).to(torch.float32)]
        offsets, start = {}, 1
        below = None  # (C_{m-1}, V) probabilities of the order below (KN)
        for m in self._levels:
            counts = self._table(m, "counts").to(torch.float64)  # (C, V)
            totals = self._table(m, "totals").to(torch.float64)[:, None]  # (C, 1)
            if self.config.smoothing == "add-k":
                k = float(self.config.k)
                probs = (counts + k) / (totals + k * V)  # totals >= 1 for stored contexts
            else:
                D = float(self.config.discount)
                types = self._table(m, "types").to(torch.float64)[:, None]  # (C, 1)
                if m == 1:
                    lower = uniform.expand(counts.size(0), V)  # uniform below the unigram
                else:  # every stored context's suffix is stored one order below
                    suffix = self._table(m, "context_ids") % (V ** (m - 2))  # (C,)
                    lower = below[torch.searchsorted(self._table(m - 1, "context_ids"), suffix)]
                probs = (counts - D).clamp_(min=0) / totals + (D * types / totals) * lower
                below = probs
            offsets[m] = start
            start += probs.size(0)
            blocks.append(torch.log(probs).to(torch.float32))
        self._logprobs = torch.cat(blocks)  # (R, V)
        self._offsets = offsets
        self._cache_key = (self.config.k, self.config.discount)

    def _cached_logprobs(self) -> torch.Tensor:
        if self._cache_key != (self.config.k, self.config.discount):
            self._build_cache()
        return self._logprobs

    def _rows(self, ids: torch.Tensor) -> torch.Tensor:
        """(B,) context ids -> (B,) cache rows: the longest stored suffix of each context.

        Only a seen context's suffixes are stored, and Kneser-Ney passes an unseen context's
        distribution straight through to its suffix, so the longest seen suffix decides.
        """
        V = self.vocab_size
        best = torch.zeros_like(ids)  # uniform row
        for m in self._levels:  # ascending: longer seen suffixes overwrite shorter ones
            hit = self._lookup(m, ids % (V ** (m - 1)))
            if hit is not None:
                rows, found = hit
                best = torch.where(found, rows + self._offsets[m], best)
        return best

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Log-probabilities of the next token.

        Args:
            idx: (B, order - 1) int64 contexts (``(B, 0)`` for order 1).
            targets: optional (B,) next tokens (``-1`` is ignored).
        Returns:
            ``(logits, loss)``: logits (B, V) are log-probabilities in the default float
            dtype (``-inf`` for impossible tokens, only with ``k = 0`` or ``discount = 0``);
            loss is the mean NLL of ``targets`` (None without targets). It equals
            ``loss_from_logits(logits, targets)`` up to rounding, but is read straight from
            the table and averaged in float64: O(B) instead of a log-softmax over (B, V).
        """
        self._check_contexts(idx)
        logprobs = self._cached_logprobs()  # (R, V) float32
        rows = self._rows(self._encode(idx))  # (B,)
        dtype = torch.get_default_dtype()
        logits = logprobs.index_select(0, rows).to(dtype)  # (B, V)
        if targets is None:
            return logits, None
        if targets.shape != rows.shape:
            raise MakemoreError(f"ngram: targets must have shape ({rows.numel()},), got {tuple(targets.shape)}")
        keep = targets != IGNORE_INDEX
        kept = targets[keep]
        self._check_tokens(kept, "targets")
        loss = -logprobs[rows[keep], kept].to(torch.float64).mean()
        return logits, loss.to(dtype)

    @torch.no_grad()
    def next_token_logits(self, idx: torch.Tensor, cache=None):
        """As ``LanguageModel.next_token_logits``; an order-1 model ignores ``idx``."""
        if self.block_size == 0:  # idx[:, -0:] would be the whole row, not an empty context
            logits, _ = self(idx[:, :0])
            return logits, None
        return super().next_token_logits(idx, cache)

    # ------------------------------------------------------------------ loading

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        # The tables' first dimension depends on the data: resize them to the stored ones
        # (only along that dimension, so a different vocabulary still fails to load).
        for m in self._levels:
            for table in _TABLES:
                name = self._name(m, table)
                incoming = state_dict.get(prefix + name)
                current = self._buffers[name]
                if (
                    isinstance(incoming, torch.Tensor)
                    and incoming.dim() == current.dim()
                    and incoming.shape[1:] == current.shape[1:]
                ):
                    self._buffers[name] = torch.empty(incoming.shape, dtype=current.dtype, device=current.device)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        for m in self._levels:
            sizes = {self._table(m, t).size(0) for t in _TABLES}
            ids = self._table(m, "context_ids")
            if len(sizes) != 1:
                error_msgs.append(f"ngram: order-{m} tables have different numbers of contexts {sorted(sizes)}")
            elif ids.numel() and not (
                bool((ids[1:] > ids[:-1]).all()) and int(ids[0]) >= 0 and int(ids[-1]) < self.vocab_size ** (m - 1)
            ):
                error_msgs.append(f"ngram: order-{m} context ids are not sorted, unique and in range")
        self._cache_key = None
