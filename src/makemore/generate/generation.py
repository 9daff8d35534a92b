"""Batched token generation shared by every model (split from ``sampling.py``).

Rows are generated together, one token per step for the whole batch, through
``model.next_token_logits`` (which carries a KV cache or recurrent state where a model has
one). Generation stops as soon as every row has emitted the boundary token. An item never
ends before its first character: no training item is empty, so the boundary is masked at
the first position of an item (``min_len`` is at least 1).

The logit filters work on the logits shifted so that each row's largest is 0, in float64:
a temperature so small that ``logits / temperature`` would overflow (``1e-308``) gives 0
for the best tokens and -inf for the others, that is greedy decoding, instead of inf - inf =
NaN; top-p always keeps the most likely token, however small ``top_p`` is.
"""

from __future__ import annotations

import torch

from makemore import validation
from makemore.data.corpus import BOUNDARY, Vocab
from makemore.generate.constraints import mask_logits
from makemore.models import LanguageModel


def filter_logits(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """Apply temperature, top-k and top-p to ``logits`` (B, V); returns new logits.

    With ``temperature`` 0 the most likely tokens (ties too) keep their logits and the others
    are -inf. Else the result is float64 ``(logits - row max) / temperature`` with the tokens
    top-k and top-p drop at -inf: the same probabilities as ``logits / temperature`` (a shift
    changes none), finite for every temperature > 0.
    """
    if temperature <= 0:
        keep = logits == logits.max(dim=-1, keepdim=True).values
        return logits.masked_fill(~keep, float("-inf"))
    logits = logits.double()
    top = logits.max(dim=-1, keepdim=True).values  # (B, 1)
    logits = (logits - top.masked_fill(~torch.isfinite(top), 0.0)) / temperature  # the best token: 0, never NaN
    if 0 < top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if 0 < top_p < 1:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        drop_sorted = (probs.cumsum(dim=-1) - probs) >= top_p  # mass before this token already enough
        drop_sorted[:, 0] = False  # the most likely token always stays (a top_p below any probability)
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def _draw(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One token per row of ``logits`` (R, V), drawn on the CPU from ``generator``."""
    return torch.multinomial(torch.softmax(logits, dim=-1).cpu(), 1, generator=generator).squeeze(1)


def _check_room(prefix_len: int, max_len: int) -> int:
    """The prefix's length, when ``max_len`` leaves room for an item (one character) and the prefix."""
    if not (isinstance(max_len, int) and max_len >= 1):
        validation.fail(None, "max_len", f"must be an integer at least 1 (an item has a character), got {max_len!r}")
    if prefix_len > max_len:
        validation.fail(None, "prefix", f"is {prefix_len} characters long, more than max_len {max_len}", ("max_len",))
    return prefix_len


@torch.no_grad()
def generate_tokens(
    model: LanguageModel,
    num: int,
    *,
    prefix_ids: torch.Tensor,
    generator: torch.Generator,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    min_len: int = 0,
    max_len: int = 32,
    banned: torch.Tensor | None = None,
    start_ids: torch.Tensor | None = None,
    compact_fraction: float = 0.25,
) -> torch.Tensor:
    """Generate ``num`` rows of tokens, each at least one character long.

    Rows that have ended are dropped from the model's batch (and from its cache, through ``model.select_cache_rows``)
    once at least ``compact_fraction`` of the batch has ended, so late steps only compute the rows still growing.
    Only rows still growing draw from ``generator``, in row order: the result does not depend on ``compact_fraction``.

    Args:
        model: any makemore model (set to eval mode by the caller).
        prefix_ids: (P,) character ids every row starts with.
        generator: CPU RNG used for every draw.
        min_len, max_len: item length bounds in characters (prefix included); an item has at
            least one character whatever ``min_len`` says, so ``max_len`` is at least 1.
        banned: (V,) bool, tokens never drawn (excluded characters, label tokens), or None.
        start_ids: (num,) the token each row starts from (its label's token), or None: the boundary.
        compact_fraction: drop ended rows from the batch once this fraction has ended.
    Returns:
        (num, 1 + L) tokens: the start token, the prefix, then the generated tokens (0 after a row's end).
    """
    device = next(iter(model.buffers()), next(iter(model.parameters()), torch.zeros(0))).device
    P = _check_room(prefix_ids.numel(), max_len)
    min_len = max(min_len, 1)  # the boundary is never the first token of an item: no empty items
    out = torch.zeros(num, max_len + 2, dtype=torch.int64)  # start, up to max_len characters, end
    out[:, 0], out[:, 1 : 1 + P] = BOUNDARY if start_ids is None else start_ids, prefix_ids
    idx = out[:, : 1 + P].to(device)  # (B, t) what the model's batch has seen
    rows = torch.arange(num)  # row of ``out`` for each row of the model's batch
    running = torch.ones(num, dtype=torch.bool)  # (B,) rows of the batch still growing
    cache, width = None, 1 + P
    for length in range(P, max_len + 1):  # length = characters so far
        if not bool(running.any()):
            break
        logits, cache = model.next_token_logits(idx, cache)  # (B, V)
        if length == max_len:  # every row still growing ends here
            next_token = torch.zeros(idx.size(0), dtype=torch.int64)
        else:
            logits = logits.float()[running.to(device)]  # (R, V) the rows that draw
            if banned is not None or length < min_len:
                logits = mask_logits(logits, banned, end_allowed=length >= min_len)
            drawn = _draw(filter_logits(logits, temperature, top_k, top_p), generator)  # (R,)
            next_token = torch.zeros(idx.size(0), dtype=torch.int64).masked_scatter_(running, drawn)
        out[rows, 1 + length] = next_token
        width = 2 + length
        running &= next_token != BOUNDARY
        idx = torch.cat([idx, next_token.unsqueeze(1).to(device)], dim=1)
        ended = idx.size(0) - int(running.sum())
        if ended and ended >= compact_fraction * idx.size(0):
            keep = running.nonzero().squeeze(1)  # (R,)
            cache = model.select_cache_rows(cache, keep.to(device))
            idx, rows, running = idx[keep.to(device)], rows[keep], running[keep]
    return out[:, :width]


def decode_rows(tokens: torch.Tensor, vocab: Vocab) -> list[str]:
    """Strings of generated rows (start boundary dropped, cut at the end boundary)."""
    body = tokens[:, 1:].cpu()
    ended = (body == BOUNDARY).cumsum(dim=1) > 0
    codepoints = torch.tensor([0, *map(ord, vocab.chars)], dtype=torch.int32)[body.masked_fill(ended, BOUNDARY)]
    # items never contain a line break: one '\n' after each row separates them
    newline = torch.full((body.size(0), 1), ord("\n"), dtype=torch.int32)
    flat = torch.cat([codepoints, newline], dim=1).flatten()  # (N * (L + 1),)
    text = flat[flat != 0].numpy().tobytes().decode("utf-32-le", "surrogatepass")
    return text.split("\n")[:-1]
