"""Hand-written backward pass for the BatchNorm MLP (lecture 4, "becoming a backprop ninja").

The network is functional: parameters live in a dict of tensors
``C (V, E), W1 (block*E, H), b1 (H,) [optional], bngain (H,), bnbias (H,), W2 (H, V), b2 (V,)``.

``forward`` runs the network broken into small steps and returns every intermediate;
``backward`` walks back through those steps by hand (plain tensor ops, no autograd);
``backward_fused`` uses the two closed forms from the lecture (cross-entropy and
BatchNorm). ``gradcheck`` compares the manual gradients with autograd's.

This module is longer than 400 lines, and ``forward`` and ``backward`` longer than 60, on
purpose: they are the lecture's exercise written out, one line per intermediate (some 25 of
them) in each direction, so that each gradient sits next to the step it inverts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from makemore import validation

Total = Callable[[Tensor], Tensor]  # a sum over the processes of a distributed run


def _total(total: Total | None, t: Tensor) -> Tensor:
    return t if total is None else total(t)


__all__ = [
    "GRAD_NAMES",
    "FUSED_GRAD_NAMES",
    "GradcheckRow",
    "autograd_grads",
    "backward",
    "backward_fused",
    "compare",
    "format_gradcheck",
    "forward",
    "gradcheck",
    "init_params",
]

# Gradient names in the order of the lecture's ``cmp(...)`` calls.
GRAD_NAMES: tuple[str, ...] = tuple(
    "dlogprobs dprobs dcounts_sum_inv dcounts_sum dcounts dnorm_logits dlogit_maxes dlogits dh dW2 "
    "db2 dhpreact dbngain dbnbias dbnraw dbnvar_inv dbnvar dbndiff2 dbndiff dbnmeani dhprebn dembcat "
    "dW1 db1 demb dC".split()
)
# Gradients returned by ``backward_fused``, same order.
FUSED_GRAD_NAMES: tuple[str, ...] = tuple(
    "dlogits dh dW2 db2 dhpreact dbngain dbnbias dhprebn dembcat dW1 db1 demb dC".split()
)


def init_params(
    vocab_size: int,
    block_size: int,
    n_embd: int,
    n_hidden: int,
    *,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
    with_b1: bool = True,
) -> dict[str, Tensor]:
    """Initialise the parameters as in lecture 4.

    b1 is always drawn (then dropped when ``with_b1`` is False) so that the other
    parameters are identical with and without it.

    Args:
        vocab_size: V, number of tokens.
        block_size: context length.
        n_embd: E, embedding size.
        n_hidden: H, hidden units.
        generator: RNG used for every draw.
        dtype: floating dtype of the parameters.
        with_b1: include the (redundant under BatchNorm) bias ``b1``.

    Returns:
        Dict of parameter tensors (not requiring grad).
    """
    g = generator
    fan_in = n_embd * block_size
    p: dict[str, Tensor] = {}
    p["C"] = torch.randn((vocab_size, n_embd), generator=g, dtype=dtype)  # (V, E)
    p["W1"] = torch.randn((fan_in, n_hidden), generator=g, dtype=dtype) * (5 / 3) / fan_in**0.5
    b1 = torch.randn(n_hidden, generator=g, dtype=dtype) * 0.1  # (H,)
    if with_b1:
        p["b1"] = b1
    p["W2"] = torch.randn((n_hidden, vocab_size), generator=g, dtype=dtype) * 0.1  # (H, V)
    p["b2"] = torch.randn(vocab_size, generator=g, dtype=dtype) * 0.1  # (V,)
    p["bngain"] = torch.randn(n_hidden, generator=g, dtype=dtype) * 0.1 + 1.0  # (H,)
    p["bnbias"] = torch.randn(n_hidden, generator=g, dtype=dtype) * 0.1  # (H,)
    return p


def forward(
    params: dict[str, Tensor], X: Tensor, Y: Tensor, eps: float = 1e-5, total: Total | None = None
) -> tuple[Tensor, dict]:
    """Forward pass broken into the lecture's small steps (longer than 60 lines: one per step).

    Works with or without ``requires_grad`` on the parameters (autograd then records
    every step, and each cache entry can be ``retain_grad()``-ed).

    Args:
        params: parameter dict (see module docstring).
        X: (B, block) integer contexts, B >= 2.
        Y: (B,) integer targets.
        eps: BatchNorm epsilon.
        total: sums over the batches of every process of a distributed run (the BatchNorm
            statistics and the loss then cover the global batch); None: this batch alone.

    Returns:
        (loss, cache): scalar loss and a dict of every intermediate by name, plus
        ``cache["eps"]`` (a float).
    """
    n = X.shape[0] if total is None else int(total(torch.tensor(X.shape[0], device=X.device)))
    if n < 2:
        raise ValueError(f"batch size must be >= 2 for the Bessel-corrected variance, got {n}")
    C, W1, W2, b2 = params["C"], params["W1"], params["W2"], params["b2"]
    bngain, bnbias = params["bngain"], params["bnbias"]
    emb = C[X]  # (B, block, E)
    embcat = emb.view(X.shape[0], -1)  # (B, block*E)
    hprebn = embcat @ W1  # (B, H)
    if "b1" in params:
        hprebn = hprebn + params["b1"]
    bnmeani = _total(total, hprebn.sum(0, keepdim=True)) / n  # (1, H)
    bndiff = hprebn - bnmeani  # (B, H)
    bndiff2 = bndiff**2  # (B, H)
    bnvar = _total(total, bndiff2.sum(0, keepdim=True)) / (n - 1)  # (1, H)
    bnvar_inv = (bnvar + eps) ** -0.5  # (1, H)
    bnraw = bndiff * bnvar_inv  # (B, H)
    hpreact = bngain * bnraw + bnbias  # (B, H)
    h = torch.tanh(hpreact)  # (B, H)
    logits = h @ W2 + b2  # (B, V)
    logit_maxes = logits.max(1, keepdim=True).values  # (B, 1)
    norm_logits = logits - logit_maxes  # (B, V)
    counts = norm_logits.exp()  # (B, V)
    counts_sum = counts.sum(1, keepdim=True)  # (B, 1)
    counts_sum_inv = counts_sum**-1  # (B, 1)
    probs = counts * counts_sum_inv  # (B, V)
    logprobs = probs.log()  # (B, V)
    picked = logprobs[torch.arange(X.shape[0]), Y]  # (B,)
    loss = -picked.mean() if total is None else -total(picked.sum()) / n
    cache = dict(
        emb=emb,
        embcat=embcat,
        hprebn=hprebn,
        bnmeani=bnmeani,
        bndiff=bndiff,
        bndiff2=bndiff2,
        bnvar=bnvar,
        bnvar_inv=bnvar_inv,
        bnraw=bnraw,
        hpreact=hpreact,
        h=h,
        logits=logits,
        logit_maxes=logit_maxes,
        norm_logits=norm_logits,
        counts=counts,
        counts_sum=counts_sum,
        counts_sum_inv=counts_sum_inv,
        probs=probs,
        logprobs=logprobs,
        eps=float(eps),
    )
    return loss, cache


def _plain(params: dict[str, Tensor], cache: dict) -> tuple[dict[str, Tensor], dict]:
    """Detached views of params and cache so nothing below touches autograd."""
    p = {k: v.detach() for k, v in params.items()}
    c = {k: (v.detach() if isinstance(v, Tensor) else v) for k, v in cache.items()}
    return p, c


def _backward_tail(p: dict[str, Tensor], c: dict, X: Tensor, dhprebn: Tensor) -> dict[str, Tensor]:
    """From dhprebn down to the first layer and the embedding table."""
    g: dict[str, Tensor] = {}
    emb = c["emb"]
    g["dembcat"] = dhprebn @ p["W1"].T  # (B, block*E)
    g["dW1"] = c["embcat"].T @ dhprebn  # (block*E, H)
    if "b1" in p:
        g["db1"] = dhprebn.sum(0)  # (H,)
    g["demb"] = g["dembcat"].view(emb.shape)  # (B, block, E)
    dC = torch.zeros_like(p["C"])  # (V, E)
    dC.index_add_(0, X.reshape(-1), g["demb"].reshape(-1, emb.shape[-1]))
    g["dC"] = dC
    return g


@torch.no_grad()
def backward(params: dict[str, Tensor], cache: dict, X: Tensor, Y: Tensor) -> dict[str, Tensor]:
    """Step-by-step manual backward pass through every intermediate of ``forward`` (longer than
    60 lines: one per intermediate, in the lecture's order).

    Args:
        params: the parameters used in ``forward``.
        cache: the cache returned by ``forward``.
        X: (B, block) contexts of the batch.
        Y: (B,) targets of the batch.

    Returns:
        Dict ``d<name>`` -> gradient of the loss for every name in ``GRAD_NAMES``
        (``db1`` only if ``"b1"`` is in params); parameter grads have parameter shapes.
    """
    p, c = _plain(params, cache)
    n = X.shape[0]
    eps = c["eps"]
    logits, h, bnraw = c["logits"], c["h"], c["bnraw"]
    g: dict[str, Tensor] = {}

    # loss = -logprobs[range(n), Y].mean()
    dlogprobs = torch.zeros_like(c["logprobs"])  # (B, V)
    dlogprobs[torch.arange(n), Y] = -1.0 / n
    # logprobs = log(probs)
    dprobs = dlogprobs / c["probs"]  # (B, V)
    # probs = counts * counts_sum_inv  (broadcast over V)
    dcounts_sum_inv = (c["counts"] * dprobs).sum(1, keepdim=True)  # (B, 1)
    dcounts = c["counts_sum_inv"] * dprobs  # (B, V)
    # counts_sum_inv = counts_sum**-1
    dcounts_sum = -(c["counts_sum"] ** -2) * dcounts_sum_inv  # (B, 1)
    # counts_sum = counts.sum(1)
    dcounts = dcounts + dcounts_sum  # (B, V), broadcast
    # counts = exp(norm_logits)
    dnorm_logits = c["counts"] * dcounts  # (B, V)
    # norm_logits = logits - logit_maxes
    dlogit_maxes = -dnorm_logits.sum(1, keepdim=True)  # (B, 1)
    # logit_maxes = logits.max(1): gradient flows to the argmax
    onehot_max = F.one_hot(logits.max(1).indices, logits.shape[1]).to(logits.dtype)
    dlogits = dnorm_logits + onehot_max * dlogit_maxes  # (B, V)
    # logits = h @ W2 + b2
    dh = dlogits @ p["W2"].T  # (B, H)
    dW2 = h.T @ dlogits  # (H, V)
    db2 = dlogits.sum(0)  # (V,)
    # h = tanh(hpreact)
    dhpreact = (1.0 - h**2) * dh  # (B, H)
    # hpreact = bngain * bnraw + bnbias
    dbngain = (bnraw * dhpreact).sum(0)  # (H,)
    dbnbias = dhpreact.sum(0)  # (H,)
    dbnraw = p["bngain"] * dhpreact  # (B, H)
    # bnraw = bndiff * bnvar_inv
    dbndiff = c["bnvar_inv"] * dbnraw  # (B, H), first branch
    dbnvar_inv = (c["bndiff"] * dbnraw).sum(0, keepdim=True)  # (1, H)
    # bnvar_inv = (bnvar + eps)**-0.5
    dbnvar = -0.5 * (c["bnvar"] + eps) ** -1.5 * dbnvar_inv  # (1, H)
    # bnvar = bndiff2.sum(0) / (n-1)
    dbndiff2 = torch.ones_like(c["bndiff2"]) / (n - 1) * dbnvar  # (B, H)
    # bndiff2 = bndiff**2
    dbndiff = dbndiff + 2.0 * c["bndiff"] * dbndiff2  # (B, H), second branch
    # bndiff = hprebn - bnmeani
    dbnmeani = -dbndiff.sum(0, keepdim=True)  # (1, H)
    # bnmeani = hprebn.sum(0) / n
    dhprebn = dbndiff + torch.ones_like(c["hprebn"]) / n * dbnmeani  # (B, H)

    g.update(
        dlogprobs=dlogprobs,
        dprobs=dprobs,
        dcounts_sum_inv=dcounts_sum_inv,
        dcounts_sum=dcounts_sum,
        dcounts=dcounts,
        dnorm_logits=dnorm_logits,
        dlogit_maxes=dlogit_maxes,
        dlogits=dlogits,
        dh=dh,
        dW2=dW2,
        db2=db2,
        dhpreact=dhpreact,
        dbngain=dbngain,
        dbnbias=dbnbias,
        dbnraw=dbnraw,
        dbnvar_inv=dbnvar_inv,
        dbnvar=dbnvar,
        dbndiff2=dbndiff2,
        dbndiff=dbndiff,
        dbnmeani=dbnmeani,
        dhprebn=dhprebn,
    )
    g.update(_backward_tail(p, c, X, dhprebn))
    return {k: g[k] for k in GRAD_NAMES if k in g}


@torch.no_grad()
def backward_fused(
    params: dict[str, Tensor], cache: dict, X: Tensor, Y: Tensor, total: Total | None = None
) -> dict[str, Tensor]:
    """Manual backward with the fused cross-entropy and BatchNorm gradients.

    Args:
        params: the parameters used in ``forward``.
        cache: the cache returned by ``forward``.
        X: (B, block) contexts of the batch.
        Y: (B,) targets of the batch.
        total: as in ``forward``; the parameter gradients returned are then this process's
            part of the global batch's (their sum over processes is the gradient).

    Returns:
        Dict with the names in ``FUSED_GRAD_NAMES`` (``db1`` only if ``"b1"`` is in params).
    """
    p, c = _plain(params, cache)
    n = X.shape[0] if total is None else int(total(torch.tensor(X.shape[0], device=X.device)))
    logits, h, bnraw = c["logits"], c["h"], c["bnraw"]
    g: dict[str, Tensor] = {}
    # cross-entropy: (softmax - onehot) / n
    dlogits = (F.softmax(logits, 1) - F.one_hot(Y, logits.shape[1]).to(logits.dtype)) / n  # (B, V)
    g["dlogits"] = dlogits
    g["dh"] = dlogits @ p["W2"].T  # (B, H)
    g["dW2"] = h.T @ dlogits  # (H, V)
    g["db2"] = dlogits.sum(0)  # (V,)
    dhpreact = (1.0 - h**2) * g["dh"]  # (B, H)
    g["dhpreact"] = dhpreact
    g["dbngain"] = (bnraw * dhpreact).sum(0)  # (H,)
    g["dbnbias"] = dhpreact.sum(0)  # (H,)
    # BatchNorm (Bessel-corrected variance) in one expression. bnraw has zero mean in
    # exact arithmetic; re-centring it keeps float32 rounding in bndiff (a shift of the
    # whole column) out of dhprebn, so db1 stays ~0 as it must.
    centre = bnraw.mean(0, keepdim=True) if total is None else total(bnraw.sum(0, keepdim=True)) / n  # (1, H)
    bnraw = bnraw - centre  # (B, H)
    dhpreact_sum = _total(total, dhpreact.sum(0))  # (H,)
    dhpreact_bnraw = _total(total, (dhpreact * bnraw).sum(0))  # (H,)
    dhprebn = (
        p["bngain"] * c["bnvar_inv"] / n * (n * dhpreact - dhpreact_sum - n / (n - 1) * bnraw * dhpreact_bnraw)
    )  # (B, H)
    g["dhprebn"] = dhprebn
    g.update(_backward_tail(p, c, X, dhprebn))
    return {k: g[k] for k in FUSED_GRAD_NAMES if k in g}


def autograd_grads(
    params: dict[str, Tensor], X: Tensor, Y: Tensor, eps: float = 1e-5
) -> tuple[Tensor, dict[str, Tensor]]:
    """Reference gradients from autograd on the same forward.

    Args:
        params: parameter dict (not modified; copies are made).
        X: (B, block) contexts.
        Y: (B,) targets.
        eps: BatchNorm epsilon.

    Returns:
        (loss, grads): detached loss and ``d<name>`` -> gradient for every intermediate
        and parameter.
    """
    leaf = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    loss, cache = forward(leaf, X, Y, eps)
    for v in cache.values():
        if isinstance(v, Tensor):
            v.retain_grad()
    loss.backward()
    grads = {"d" + k: v.grad for k, v in cache.items() if isinstance(v, Tensor)}
    grads.update({"d" + k: v.grad for k, v in leaf.items()})
    return loss.detach(), grads


@dataclass
class GradcheckRow:
    """One line of a gradient check: manual vs autograd for one tensor."""

    name: str
    exact: bool
    approx: bool
    maxdiff: float


def compare(name: str, manual: Tensor, ref: Tensor) -> GradcheckRow:
    """Compare a manual gradient with a reference one (as the lecture's ``cmp``).

    Args:
        name: label of the row.
        manual: hand-computed gradient.
        ref: autograd gradient.

    Returns:
        A GradcheckRow; shape mismatches count as neither exact nor approx (maxdiff=inf).
    """
    if manual.shape != ref.shape:
        return GradcheckRow(name, False, False, float("inf"))
    exact = bool(torch.all(manual == ref))
    approx = bool(torch.allclose(manual, ref))
    maxdiff = float((manual - ref).abs().max()) if manual.numel() else 0.0
    return GradcheckRow(name, exact, approx, maxdiff)


def gradcheck(
    *,
    dtype: torch.dtype = torch.float64,
    batch_size: int = 32,
    block_size: int = 3,
    n_embd: int = 10,
    n_hidden: int = 64,
    vocab_size: int = 27,
    seed: int = 42,
    fused: bool = False,
) -> list[GradcheckRow]:
    """Check the manual backward against autograd on one random batch.

    Args:
        dtype: floating dtype of parameters and activations.
        batch_size, block_size, n_embd, n_hidden, vocab_size: network/batch shape.
        seed: seeds parameters and batch.
        fused: check ``backward_fused`` (only the tensors it returns) instead of ``backward``.

    Returns:
        One GradcheckRow per gradient, in the lecture's ``cmp`` order.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        validation.fail(
            None, "batch_size", f"must be at least 2 (BatchNorm needs a batch variance), got {batch_size!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        validation.fail(None, "seed", f"must be an integer from 0 to 2**64 - 1, got {seed!r}")
    g = torch.Generator().manual_seed(seed)
    params = init_params(vocab_size, block_size, n_embd, n_hidden, generator=g, dtype=dtype)
    X = torch.randint(0, vocab_size, (batch_size, block_size), generator=g)
    Y = torch.randint(0, vocab_size, (batch_size,), generator=g)
    _, ref = autograd_grads(params, X, Y)
    _, cache = forward(params, X, Y)
    manual = (backward_fused if fused else backward)(params, cache, X, Y)
    return [compare(k, manual[k], ref[k]) for k in manual]


def format_gradcheck(rows: list[GradcheckRow]) -> str:
    """Fixed-width table of gradcheck rows.

    Args:
        rows: output of ``gradcheck``.

    Returns:
        Header line plus one line per row, joined by newlines.
    """
    w = max([15] + [len(r.name) for r in rows])
    lines = [f"{'tensor':<{w}} | exact | approx | maxdiff"]
    for r in rows:
        lines.append(f"{r.name:<{w}} | {str(r.exact):<5} | {str(r.approx):<6} | {r.maxdiff:.1e}")
    return "\n".join(lines)
