"""Lecture 3's diagnostics: tanh activations and their gradients, weight gradients, and the
update:data ratio over training."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from matplotlib.figure import Figure
from torch import nn

from makemore.errors import MakemoreError
from makemore.plots.common import SATURATION, UPDATE_RATIO_GUIDE, Plot, _as_float_list, _density, _std


def collect_activation_stats(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """One training-mode forward + backward of ``model(x, y)``, recording lecture-3 diagnostics.

    Forward hooks on every ``nn.Tanh`` submodule record its output and, through a tensor
    hook, the gradient of the loss with respect to that output. The model is left as it was:
    hooks removed, every submodule's train/eval flag restored, buffers (e.g. BatchNorm
    running statistics) restored, parameter ``.grad`` restored to what it was before (None
    for a model that had no gradients), and the global RNG state is not consumed.

    Args:
        model: returns ``(logits, loss)`` from ``model(x, y)``.
        x: input batch.
        y: targets.
    Returns:
        ``{"activations": [(name, tensor)], "activation_grads": [(name, tensor)],
        "weight_grads": [(name, grad, param)]}``: flattened tanh outputs and their
        gradients in forward order (a tanh module called several times appears once per
        call, as ``name[k]`` for calls after the first), and for every parameter with
        ``ndim == 2`` that received a gradient, its gradient and a copy of its values.
    """
    recorder = _TanhRecorder(model)
    weight_grads: list[tuple[str, torch.Tensor, torch.Tensor]] = []
    with _left_as_it_was(model), recorder:
        for p in model.parameters():
            p.grad = None
        model.train()
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            out = model(x, y)
            loss = out[1] if isinstance(out, (tuple, list)) and len(out) > 1 else None
            if not isinstance(loss, torch.Tensor):
                raise MakemoreError("model(x, y) must return (logits, loss) with a loss tensor")
            if not loss.requires_grad:
                raise MakemoreError("the loss does not depend on any trainable parameter (a count model?)")
            loss.backward()
        for name, p in model.named_parameters():
            if p.ndim == 2 and p.grad is not None:
                weight_grads.append((name, p.grad.detach().clone(), p.detach().clone()))
    acts, grads = recorder.acts, recorder.grads
    act_grads = [(acts[i][0], grads[i]) for i in range(len(acts)) if i in grads]
    return {"activations": acts, "activation_grads": act_grads, "weight_grads": weight_grads}


class _TanhRecorder:
    """While active, records every ``nn.Tanh`` output of ``model`` and its gradient."""

    def __init__(self, model: nn.Module):
        self.tanhs = [(name or "tanh", m) for name, m in model.named_modules() if isinstance(m, nn.Tanh)]
        self.acts: list[tuple[str, torch.Tensor]] = []  # in forward order
        self.grads: dict[int, torch.Tensor] = {}  # index into acts -> gradient
        self.calls: dict[str, int] = {}
        self.handles: list = []

    def _hook(self, name: str):
        def hook(module, inputs, output):
            k = self.calls.get(name, 0)
            self.calls[name] = k + 1
            idx = len(self.acts)
            self.acts.append((name if k == 0 else f"{name}[{k}]", output.detach().flatten().clone()))
            if output.requires_grad:
                output.register_hook(lambda g: self.grads.__setitem__(idx, g.detach().flatten().clone()))

        return hook

    def __enter__(self) -> _TanhRecorder:
        self.handles = [m.register_forward_hook(self._hook(name)) for name, m in self.tanhs]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()


@contextmanager
def _left_as_it_was(model: nn.Module) -> Iterator[None]:
    """Restore the model's train/eval flags, parameter gradients and buffers afterwards."""
    modes = {m: m.training for m in model.modules()}
    params = list(model.parameters())
    old_grads = [p.grad for p in params]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        yield
    finally:
        for p, g in zip(params, old_grads):
            p.grad = g
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
        for m, training in modes.items():
            m.train(training)


def plot_activations(
    stats: dict,
    *,
    update_ratios: dict[str, list[float]] | None = None,
    ratio_steps: list[int] | None = None,
    ratios_are_log10: bool = False,
) -> Plot:
    """Lecture-3 diagnostics in one image: tanh outputs, their gradients, weight gradients,
    and the update:data ratio over training.

    Args:
        stats: as returned by :func:`collect_activation_stats`; empty or missing parts are
            skipped.
        update_ratios: per parameter name, the update:data ratio ``std(lr * grad) / std(data)``
            at each recorded step (plotted as log10, with a guide at -3).
        ratio_steps: the step of each recorded ratio (default 0, 1, 2, ...).
        ratios_are_log10: set when ``update_ratios`` already holds log10 values (as the
            lecture's ``ud`` list does).
    Returns:
        The plot, with ``info == {"panels": [...]}``: the panels drawn, top to bottom, among
        ``"activations"``, ``"activation_grads"``, ``"weight_grads"`` and ``"update_ratios"``.
    """
    acts = [(n, t) for n, t in (stats or {}).get("activations", []) if t.numel()]
    agrads = [(n, t) for n, t in (stats or {}).get("activation_grads", []) if t.numel()]
    wgrads = [(n, g, p) for n, g, p in (stats or {}).get("weight_grads", []) if g.numel()]
    ratios = {k: list(v) for k, v in (update_ratios or {}).items() if len(v)}
    parts = (("activations", acts), ("activation_grads", agrads), ("weight_grads", wgrads), ("update_ratios", ratios))
    panels = [name for name, present in parts if present]
    if not panels:
        raise MakemoreError("no activation statistics or update ratios to plot")

    fig = Figure(figsize=(16, 4.5 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, panel in zip(axes, panels):
        if panel == "activations":
            _activations_panel(ax, acts)
        elif panel == "activation_grads":
            _activation_grads_panel(ax, agrads)
        elif panel == "weight_grads":
            _weight_grads_panel(ax, wgrads)
        else:
            _ratios_panel(ax, ratios, ratio_steps, ratios_are_log10)
        if panel != "update_ratios":  # densities: start at 0 so that the shapes compare honestly
            ax.set_ylim(bottom=0)
            ax.set_ylabel("density")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=9, loc="upper right")
    return Plot(fig, {"panels": panels})


def _activations_panel(ax, acts: list[tuple[str, torch.Tensor]]) -> None:
    for i, (name, t) in enumerate(acts):
        t = t.double()
        sat = 100.0 * float((t.abs() > SATURATION).double().mean())
        hx, hy = _density(t)
        label = f"layer {i} ({name}): mean {float(t.mean()):+.2f}, std {_std(t):.2f}, saturated {sat:.2f}%"
        ax.plot(hx.tolist(), hy.tolist(), label=label)
    ax.set_title("activation distribution (tanh outputs)")
    ax.set_xlabel("tanh output")


def _activation_grads_panel(ax, agrads: list[tuple[str, torch.Tensor]]) -> None:
    for i, (name, t) in enumerate(agrads):
        t = t.double()
        hx, hy = _density(t)
        ax.plot(hx.tolist(), hy.tolist(), label=f"layer {i} ({name}): mean {float(t.mean()):+.2e}, std {_std(t):.2e}")
    ax.set_title("gradient distribution (at tanh outputs)")
    ax.set_xlabel("gradient of the loss")


def _weight_grads_panel(ax, wgrads: list[tuple[str, torch.Tensor, torch.Tensor]]) -> None:
    for name, g, p in wgrads:
        g = g.double()
        pstd = _std(p)
        ratio = _std(g) / pstd if pstd > 0 else float("inf")
        hx, hy = _density(g)
        label = f"{name} {tuple(p.shape)}: mean {float(g.mean()):+.2e}, std {_std(g):.2e}, grad:data ratio {ratio:.2e}"
        ax.plot(hx.tolist(), hy.tolist(), label=label)
    ax.set_title("weight gradient distribution")
    ax.set_xlabel("gradient of the loss")


def _ratios_panel(ax, ratios: dict[str, list[float]], ratio_steps: list[int] | None, are_log10: bool) -> None:
    for name, values in ratios.items():
        vals = _as_float_list(values, f"update_ratios[{name!r}]")
        if not are_log10:
            vals = [math.log10(v) if v > 0 and math.isfinite(v) else float("nan") for v in vals]
        if ratio_steps is None:
            steps = list(range(len(vals)))
        else:
            if len(ratio_steps) != len(vals):
                raise MakemoreError(
                    f"ratio_steps: {len(ratio_steps)} steps but update_ratios[{name!r}] has {len(vals)} values"
                )
            steps = _as_float_list(ratio_steps, "ratio_steps")
        ax.plot(steps, vals, label=name)
    ax.axhline(UPDATE_RATIO_GUIDE, color="k", ls="--", lw=1, label="guide (1e-3)")
    ax.set_xlabel("step")
    ax.set_ylabel("log10(update std / data std)")
    ax.set_title("update:data ratio over training")
