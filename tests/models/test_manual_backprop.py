"""Manual backward pass of the BatchNorm MLP checked against autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import Tensor

from makemore.models.manual_backprop import (
    FUSED_GRAD_NAMES,
    GRAD_NAMES,
    GradcheckRow,
    autograd_grads,
    backward,
    backward_fused,
    compare,
    format_gradcheck,
    forward,
    gradcheck,
    init_params,
)

CACHE_NAMES = tuple(
    "emb embcat hprebn bnmeani bndiff bndiff2 bnvar bnvar_inv bnraw hpreact h logits logit_maxes "
    "norm_logits counts counts_sum counts_sum_inv probs logprobs".split()
)
PARAM_SHAPES = {
    "C": lambda V, T, E, H: (V, E),
    "W1": lambda V, T, E, H: (T * E, H),
    "b1": lambda V, T, E, H: (H,),
    "bngain": lambda V, T, E, H: (H,),
    "bnbias": lambda V, T, E, H: (H,),
    "W2": lambda V, T, E, H: (H, V),
    "b2": lambda V, T, E, H: (V,),
}


pytestmark = pytest.mark.usefixtures("one_thread")


def make_problem(B, T, E, H, V, seed, dtype=torch.float64, with_b1=True):
    g = torch.Generator().manual_seed(seed)
    params = init_params(V, T, E, H, generator=g, dtype=dtype, with_b1=with_b1)
    X = torch.randint(0, V, (B, T), generator=g)
    Y = torch.randint(0, V, (B,), generator=g)
    return params, X, Y


def max_diffs(manual, ref):
    return {k: (manual[k] - ref[k]).abs().max().item() for k in manual}


shapes = st.fixed_dictionaries(
    {
        "B": st.one_of(st.just(2), st.integers(2, 64)),
        "T": st.integers(1, 8),
        "E": st.integers(1, 12),
        "H": st.integers(1, 48),
        "V": st.integers(2, 40),
        "seed": st.integers(0, 2**31 - 1),
    }
)


# ---------------------------------------------------------------- forward / init


def test_forward_matches_cross_entropy_and_caches_everything():
    params, X, Y = make_problem(32, 3, 10, 64, 27, 0)
    loss, cache = forward(params, X, Y)
    assert set(CACHE_NAMES) <= set(cache)
    emb = params["C"][X].view(32, -1)
    hpre = emb @ params["W1"] + params["b1"]
    mean, var = hpre.mean(0), hpre.var(0, unbiased=True)
    hp = params["bngain"] * (hpre - mean) / torch.sqrt(var + 1e-5) + params["bnbias"]
    logits = torch.tanh(hp) @ params["W2"] + params["b2"]
    ref = F.cross_entropy(logits, Y)
    assert torch.allclose(loss, ref, rtol=0, atol=1e-12)
    assert torch.allclose(cache["logits"], logits, rtol=0, atol=1e-12)
    assert cache["bnmeani"].shape == (1, 64) and cache["bnvar"].shape == (1, 64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_is_kept(dtype):
    params, X, Y = make_problem(8, 3, 4, 5, 6, 1, dtype=dtype)
    loss, cache = forward(params, X, Y)
    assert loss.dtype == dtype
    assert all(cache[k].dtype == dtype for k in CACHE_NAMES)
    assert all(v.dtype == dtype for v in backward(params, cache, X, Y).values())
    assert all(v.dtype == dtype for v in backward_fused(params, cache, X, Y).values())


def test_init_params_shapes_and_perturbations():
    g = torch.Generator().manual_seed(3)
    p = init_params(27, 3, 10, 64, generator=g)
    assert {k: tuple(v.shape) for k, v in p.items()} == {k: f(27, 3, 10, 64) for k, f in PARAM_SHAPES.items()}
    assert all(v.dtype == torch.float32 for v in p.values())
    # the small random perturbations are present (nothing hides behind zeros / ones)
    assert (p["bngain"] != 1).all() and (p["bnbias"] != 0).all()
    assert (p["b1"] != 0).all() and (p["b2"] != 0).all()
    assert 0.02 < p["b1"].std().item() < 0.2 and 0.02 < p["W2"].std().item() < 0.2
    assert abs(p["W1"].std().item() - (5 / 3) / 30**0.5) < 0.05
    # same draws with and without b1
    q = init_params(27, 3, 10, 64, generator=torch.Generator().manual_seed(3), with_b1=False)
    assert "b1" not in q
    assert all(torch.equal(q[k], p[k]) for k in q)


def test_batch_of_one_is_rejected():
    params, X, Y = make_problem(2, 3, 4, 5, 6, 1)
    with pytest.raises(ValueError, match="batch size"):
        forward(params, X[:1], Y[:1])


# ---------------------------------------------------------------- manual vs autograd


@settings(max_examples=150, deadline=None)
@given(shapes)
def test_float64_matches_autograd(s):
    params, X, Y = make_problem(s["B"], s["T"], s["E"], s["H"], s["V"], s["seed"])
    _, ref = autograd_grads(params, X, Y)
    _, cache = forward(params, X, Y)
    manual = backward(params, cache, X, Y)
    assert tuple(manual) == GRAD_NAMES
    for k in manual:
        assert manual[k].shape == ref[k].shape, k
    diffs = max_diffs(manual, ref)
    assert max(diffs.values()) <= 1e-10, diffs
    fused = backward_fused(params, cache, X, Y)
    assert tuple(fused) == FUSED_GRAD_NAMES
    fdiffs = max_diffs(fused, ref)
    assert max(fdiffs.values()) <= 1e-10, fdiffs


def min_var(params, X, Y):
    return forward(params, X, Y)[1]["bnvar"].min().item()


@settings(max_examples=100, deadline=None, derandomize=True)
@given(shapes.filter(lambda s: s["B"] >= 3))
def test_float32_matches_autograd(s):
    """float32: max |manual - autograd| <= 1e-5 for every tensor on well-conditioned batches.

    BatchNorm is ill-conditioned when a hidden unit is almost constant over the batch
    (always so for B == 2): bnvar_inv is then ~1/sqrt(eps) and float32 rounding is
    amplified in autograd and manual alike. Those cases are covered by
    ``test_float32_ill_conditioned_as_accurate_as_autograd``.
    """
    params, X, Y = make_problem(s["B"], s["T"], s["E"], s["H"], s["V"], s["seed"], dtype=torch.float32)
    assume(min_var(params, X, Y) >= 1e-3)
    _, ref = autograd_grads(params, X, Y)
    _, cache = forward(params, X, Y)
    for manual in (backward(params, cache, X, Y), backward_fused(params, cache, X, Y)):
        diffs = max_diffs(manual, ref)
        assert max(diffs.values()) <= 1e-5, diffs


@settings(max_examples=60, deadline=None, derandomize=True)
@given(shapes.map(lambda s: {**s, "B": 2}) | shapes.map(lambda s: {**s, "T": 1, "V": 2}))
def test_float32_ill_conditioned_as_accurate_as_autograd(s):
    """Where float32 BatchNorm gradients are noisy, the manual ones are no noisier than
    autograd's: both are measured against float64 autograd on the same float32 values."""
    params, X, Y = make_problem(s["B"], s["T"], s["E"], s["H"], s["V"], s["seed"], dtype=torch.float32)
    _, ref = autograd_grads(params, X, Y)
    _, truth = autograd_grads({k: v.double() for k, v in params.items()}, X, Y)
    _, cache = forward(params, X, Y)
    for manual in (backward(params, cache, X, Y), backward_fused(params, cache, X, Y)):
        for k, v in manual.items():
            scale = max(1.0, truth[k].abs().max().item())
            err_manual = (v.double() - truth[k]).abs().max().item()
            err_autograd = (ref[k].double() - truth[k]).abs().max().item()
            assert err_manual <= 10 * err_autograd + 1e-5 * scale, (k, err_manual, err_autograd)


@settings(max_examples=80, deadline=None)
@given(shapes)
def test_fused_agrees_with_step_by_step(s):
    params, X, Y = make_problem(s["B"], s["T"], s["E"], s["H"], s["V"], s["seed"])
    _, cache = forward(params, X, Y)
    step = backward(params, cache, X, Y)
    fused = backward_fused(params, cache, X, Y)
    assert set(fused) <= set(step)
    diffs = {k: (fused[k] - step[k]).abs().max().item() for k in fused}
    assert max(diffs.values()) <= 1e-10, diffs


def test_param_grads_have_param_shapes():
    params, X, Y = make_problem(5, 4, 3, 7, 11, 2)
    _, cache = forward(params, X, Y)
    for fn in (backward, backward_fused):
        grads = fn(params, cache, X, Y)
        for k, v in params.items():
            assert grads["d" + k].shape == v.shape, (fn.__name__, k)


def test_without_b1():
    params, X, Y = make_problem(32, 3, 10, 64, 27, 5, with_b1=False)
    _, ref = autograd_grads(params, X, Y)
    assert "db1" not in ref
    _, cache = forward(params, X, Y)
    for fn, names in ((backward, GRAD_NAMES), (backward_fused, FUSED_GRAD_NAMES)):
        grads = fn(params, cache, X, Y)
        assert "db1" not in grads
        assert tuple(grads) == tuple(n for n in names if n != "db1")
        diffs = max_diffs(grads, ref)
        assert max(diffs.values()) <= 1e-10, diffs


def test_manual_backward_does_not_use_autograd():
    params, X, Y = make_problem(16, 3, 4, 8, 10, 9)
    leaf = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    _, cache = forward(leaf, X, Y)
    for fn in (backward, backward_fused):
        grads = fn(leaf, cache, X, Y)
        assert all(not v.requires_grad and v.grad_fn is None for v in grads.values())
    assert all(v.grad is None for v in leaf.values())


# ---------------------------------------------------------------- the check can fail


def test_perturbed_gradient_is_caught():
    params, X, Y = make_problem(32, 3, 10, 64, 27, 7)
    _, ref = autograd_grads(params, X, Y)
    _, cache = forward(params, X, Y)
    manual = backward(params, cache, X, Y)
    assert all(compare(k, manual[k], ref[k]).approx for k in manual)
    bad = manual["dW1"].clone()
    bad[1, 2] += 1e-6
    row = compare("dW1", bad, ref["dW1"])
    assert not row.exact and not row.approx
    assert row.maxdiff == pytest.approx(1e-6, rel=1e-3)
    wrong_shape = compare("dbngain", manual["dbngain"].unsqueeze(0), ref["dbngain"])
    assert not wrong_shape.approx


def test_biased_variance_bug_is_caught():
    """Forgetting Bessel's correction in the fused BatchNorm gradient is detected."""
    params, X, Y = make_problem(32, 3, 10, 64, 27, 8)
    _, ref = autograd_grads(params, X, Y)
    _, cache = forward(params, X, Y)
    good = backward_fused(params, cache, X, Y)
    n, dhp, raw = 32, good["dhpreact"], cache["bnraw"].detach()
    wrong = params["bngain"] * cache["bnvar_inv"].detach() / n * (n * dhp - dhp.sum(0) - raw * (dhp * raw).sum(0))
    assert compare("dhprebn", good["dhprebn"], ref["dhprebn"]).approx
    assert not compare("dhprebn", wrong, ref["dhprebn"]).approx


# ---------------------------------------------------------------- gradcheck table


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gradcheck_rows_and_table(dtype):
    rows = gradcheck(dtype=dtype)
    assert all(isinstance(r, GradcheckRow) for r in rows)
    assert [r.name for r in rows] == list(GRAD_NAMES)
    assert all(r.approx for r in rows)
    bound = 1e-10 if dtype == torch.float64 else 1e-5
    assert all(r.maxdiff <= bound for r in rows)
    # up to the logits every step is the same float op as autograd's
    assert all(r.exact for r in rows if r.name in ("dlogprobs", "dprobs", "dlogits", "dW2"))
    table = format_gradcheck(rows)
    lines = table.splitlines()
    assert lines[0].split("|")[0].strip() == "tensor"
    assert [c.strip() for c in lines[0].split("|")[1:]] == ["exact", "approx", "maxdiff"]
    assert len(lines) == len(rows) + 1
    assert len({line.index("|") for line in lines}) == 1  # fixed width
    for r, line in zip(rows, lines[1:]):
        cells = [c.strip() for c in line.split("|")]
        assert cells == [r.name, str(r.exact), str(r.approx), f"{r.maxdiff:.1e}"]


def test_gradcheck_fused_rows():
    rows = gradcheck(fused=True, batch_size=8, n_hidden=16)
    assert [r.name for r in rows] == list(FUSED_GRAD_NAMES)
    assert all(r.approx and r.maxdiff <= 1e-10 for r in rows)
    table = format_gradcheck(rows)
    assert all(name in table for name in FUSED_GRAD_NAMES)


# ---------------------------------------------------------------- training


def sgd_step_manual(
    params: dict[str, Tensor], X: Tensor, Y: Tensor, lr: float, *, fused: bool = True, eps: float = 1e-5
) -> tuple[float, Tensor, Tensor]:
    """One SGD step with the manual backward, updating ``params`` in place.

    Args:
        params: parameter dict, modified in place (``p -= lr * grad``).
        X: (B, block) contexts.
        Y: (B,) targets.
        lr: learning rate.
        fused: use ``backward_fused`` (else the step-by-step ``backward``).
        eps: BatchNorm epsilon.

    Returns:
        (loss before the step, batch mean (H,), batch Bessel-corrected variance (H,)),
        the latter two for updating BatchNorm running statistics.
    """
    with torch.no_grad():
        loss, cache = forward(params, X, Y, eps)
        grads = (backward_fused if fused else backward)(params, cache, X, Y)
        for k, p in params.items():
            p -= lr * grads["d" + k]
    return float(loss), cache["bnmeani"].squeeze(0).detach(), cache["bnvar"].squeeze(0).detach()


@pytest.mark.parametrize("fused", [True, False])
def test_training_matches_autograd(fused):
    V, T, E, H, B, lr = 27, 3, 10, 64, 32, 0.1
    g = torch.Generator().manual_seed(123)
    start = init_params(V, T, E, H, generator=g, dtype=torch.float64)
    # learnable target (the last context character) so that the loss goes down
    xs = [torch.randint(0, V, (B, T), generator=g) for _ in range(20)]
    batches = [(X, X[:, -1].clone()) for X in xs]
    ref = {k: v.clone().requires_grad_(True) for k, v in start.items()}
    man = {k: v.clone() for k, v in start.items()}
    ref_losses, man_losses = [], []
    for X, Y in batches:
        loss, _ = forward(ref, X, Y)
        for p in ref.values():
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in ref.values():
                p -= lr * p.grad
        ref_losses.append(loss.item())
        mloss, mean, var = sgd_step_manual(man, X, Y, lr, fused=fused)
        man_losses.append(mloss)
        assert mean.shape == (H,) and var.shape == (H,)
    assert all(abs(a - b) <= 1e-5 for a, b in zip(ref_losses, man_losses))
    assert man_losses[-1] < man_losses[0]  # it actually trains
    for k in start:
        assert torch.allclose(man[k], ref[k].detach(), rtol=0, atol=1e-10), k
        assert not torch.equal(man[k], start[k]), k  # every param moved


def test_sgd_step_returns_batch_statistics():
    params, X, Y = make_problem(16, 3, 4, 8, 10, 4)
    loss0, _ = forward(params, X, Y)
    emb = params["C"][X].view(16, -1)
    hpre = emb @ params["W1"] + params["b1"]
    loss, mean, var = sgd_step_manual(params, X, Y, 0.1)
    assert loss == pytest.approx(loss0.item(), abs=1e-12)
    assert torch.allclose(mean, hpre.mean(0), atol=1e-12)
    assert torch.allclose(var, hpre.var(0, unbiased=True), atol=1e-12)
    assert forward(params, X, Y)[0].item() < loss  # a step downhill on the same batch
