"""Helpers shared by the sequence-model tests (imported by test files in this folder)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F


def padded_batch(items: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (idx, targets) as the data layer builds them: -1 targets on padding."""
    T = max(len(w) for w in items) + 1
    idx = torch.zeros(len(items), T, dtype=torch.long)
    targets = torch.full((len(items), T), -1, dtype=torch.long)
    for i, w in enumerate(items):
        seq = [0] + w + [0]
        idx[i, : len(seq) - 1] = torch.tensor(seq[:-1])
        targets[i, : len(seq) - 1] = torch.tensor(seq[1:])
    return idx, targets


def assert_packed_pass_matches_padded(
    make_model: Callable[[], torch.nn.Module], idx: torch.Tensor, targets: torch.Tensor, needed: torch.Tensor
) -> None:
    """The packed training pass (``model(idx, targets)``) against the padded reference.

    The reference computes every position and takes the loss from all logits. Logits must
    agree where ``needed`` (a ``(B, T)`` bool mask) and be zero elsewhere; loss and every
    parameter gradient must agree. ``make_model`` builds identical fresh models.
    """
    results = []
    for pack in (True, False):
        model = make_model().train()
        logits, loss = model(idx, targets)
        if not pack:
            logits, _ = model(idx)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        loss.backward()
        results.append((logits.detach(), loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (lp, loss_p, grads_p), (lf, loss_f, grads_f) = results
    torch.testing.assert_close(lp[needed], lf[needed], atol=1e-6, rtol=0)
    assert bool((lp[~needed] == 0).all())
    assert loss_p.item() == pytest.approx(loss_f.item(), abs=1e-6)
    for name in grads_f:
        torch.testing.assert_close(grads_p[name], grads_f[name], atol=1e-6, rtol=1e-5, msg=name)
