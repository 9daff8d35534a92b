"""Plots that show what a model learned and how training went.

Every function takes its data as arguments (tensors, lists, dicts) and writes one image.
Figures are built as standalone ``matplotlib.figure.Figure`` objects (no pyplot, no global
state, no GUI backend) and written atomically: rendered to a temporary file next to the
target (same suffix, so the format is the same) and then moved into place with
``os.replace``, so a reader never sees a half-written image.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # never pick an interactive backend; we only write files

import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import LogFormatter  # noqa: E402
from torch import nn  # noqa: E402

from makemore.errors import MakemoreError  # noqa: E402

__all__ = [
    "plot_bigram_counts",
    "plot_loss_curves",
    "plot_embedding",
    "collect_activation_stats",
    "plot_activations",
    "plot_lr_find",
    "suggest_lr",
]

SATURATION = 0.97  # |tanh| above this counts as saturated (lecture 3)
UPDATE_RATIO_GUIDE = -3.0  # log10 update:data ratio guide line (lecture 3)


# --------------------------------------------------------------------------- helpers


def _save(fig: Figure, out_path, *, dpi: int = 100) -> Path:
    """Write ``fig`` atomically to ``out_path`` and release it.

    Args:
        fig: the figure to write.
        out_path: target file; its suffix picks the format (``.png`` when there is none).
        dpi: resolution.
    Returns:
        The target path.
    """
    out = Path(out_path)
    suffix = out.suffix or ".png"
    fmt = suffix[1:].lower()
    try:
        if fmt not in fig.canvas.get_supported_filetypes():
            raise MakemoreError(f"{out}: unsupported image format {suffix!r}")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f"{out.stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{suffix}")
        try:
            fig.savefig(tmp, format=fmt, dpi=dpi)
            os.replace(tmp, out)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    finally:
        fig.clear()
    return out


def _as_float_list(values: Sequence[float], what: str) -> list[float]:
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise MakemoreError(f"{what}: expected numbers ({exc})") from None


def _density(t: torch.Tensor, bins: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Histogram of ``t`` as a density (integrates to 1), via ``torch.histc``.

    Args:
        t: values (non-finite ones are ignored).
        bins: number of bins; default ``sqrt(n)`` clamped to [10, 100].
    Returns:
        ``(bin centres, density)``; a constant tensor gets a unit-width bin around it.
    """
    t = t.detach().flatten().double()
    t = t[torch.isfinite(t)]
    if t.numel() == 0:
        return torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    if bins is None:
        bins = int(min(100, max(10, math.isqrt(t.numel()))))
    lo, hi = float(t.min()), float(t.max())
    if hi - lo < 1e-12 * max(1.0, abs(lo)):
        lo, hi = lo - 0.5, hi + 0.5
    counts = torch.histc(t, bins=bins, min=lo, max=hi)
    width = (hi - lo) / bins
    centres = lo + width * (torch.arange(bins, dtype=torch.float64) + 0.5)
    return centres, counts / (counts.sum() * width)


def _std(t: torch.Tensor) -> float:
    t = t.detach().double()
    return float(t.std()) if t.numel() > 1 else 0.0


def _smooth_blocks(xs: list[float], ys: list[float], k: int) -> tuple[list[float], list[float]]:
    """Average consecutive blocks of ``k`` points (a shorter last block is averaged too)."""
    sx, sy = [], []
    for i in range(0, len(ys), k):
        bx, by = xs[i : i + k], ys[i : i + k]
        sx.append(sum(bx) / len(bx))
        sy.append(sum(by) / len(by))
    return sx, sy


def _ema(values: list[float], alpha: float) -> list[float]:
    """Bias-corrected exponential moving average (so the first points are not pulled to 0)."""
    out, avg, weight = [], 0.0, 0.0
    for v in values:
        avg = (1 - alpha) * avg + alpha * v
        weight = (1 - alpha) * weight + alpha
        out.append(avg / weight)
    return out


# --------------------------------------------------------------------------- bigram


def plot_bigram_counts(counts: torch.Tensor, labels: list[str], out_path, *, max_chars: int = 32) -> dict:
    """Heatmap of bigram counts with each cell's pair and count written in it (lecture 1).

    Args:
        counts: ``(V, V)`` counts; row = previous token, column = next token.
        labels: display string of each token; ``labels[0]`` is the boundary token.
        out_path: image file to write.
        max_chars: most tokens to show; beyond it the boundary token and the
            ``max_chars - 1`` most frequent others (by row + column totals) are kept.
    Returns:
        ``{"path": str, "shown": tokens shown, "total": V}``.
    """
    if not isinstance(counts, torch.Tensor) or counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        shape = tuple(counts.shape) if isinstance(counts, torch.Tensor) else type(counts).__name__
        raise MakemoreError(f"counts: expected a square (V, V) tensor, got {shape}")
    V = counts.shape[0]
    if V == 0:
        raise MakemoreError("counts: empty vocabulary, nothing to plot")
    if len(labels) != V:
        raise MakemoreError(f"labels: expected {V} labels for a {V}x{V} count matrix, got {len(labels)}")
    if max_chars < 1:
        raise MakemoreError(f"max_chars: must be at least 1, got {max_chars}")
    counts = counts.detach().cpu()

    if V > max_chars:
        totals = (counts.sum(0) + counts.sum(1)).double()[1:]
        # stable sort: ties keep the vocabulary order
        order = torch.sort(-totals, stable=True).indices[: max_chars - 1] + 1
        keep = torch.cat([torch.zeros(1, dtype=torch.long), torch.sort(order).values])
    else:
        keep = torch.arange(V)
    n = keep.numel()
    sub = counts[keep][:, keep]
    names = [str(labels[i]) for i in keep.tolist()]

    size = min(max(6.0, 0.6 * n), 20.0)  # inches; grows with n, capped
    fig = Figure(figsize=(size, size))
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.92))
    ax.imshow(sub.double().numpy(), cmap="Blues", interpolation="nearest")
    ax.set_axis_off()

    vmax = float(sub.max()) if sub.numel() else 0.0
    values = sub.tolist()
    widest = max(
        max((len(a) + len(b) for a in names for b in names), default=2),
        max((len(str(v)) for row in values for v in row), default=1),
    )
    cell_pt = size * 0.94 / n * 72.0
    fontsize = max(3.0, min(10.0, 0.85 * cell_pt / (0.62 * widest), 0.85 * cell_pt / 2.5))
    for i in range(n):
        for j in range(n):
            v = values[i][j]
            text = f"{names[i]}{names[j]}\n{v:g}" if isinstance(v, float) else f"{names[i]}{names[j]}\n{v}"
            color = "white" if vmax > 0 and v > 0.45 * vmax else "dimgray"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=fontsize,
                    linespacing=1.1, parse_math=False)
    title = "bigram counts (row: previous token, column: next token)"
    if n < V:
        title += f"; the boundary and the {n - 1} most frequent of {V - 1} characters"
    ax.set_title(title, fontsize=max(12.0, 0.8 * size))  # stays readable on big figures
    path = _save(fig, out_path)
    return {"path": str(path), "shown": int(n), "total": int(V)}


# --------------------------------------------------------------------------- loss curves


def plot_loss_curves(rows: list[dict], out_path, *, smooth: int = 0) -> str:
    """Train/dev loss over steps, with the learning rate on a second axis.

    Args:
        rows: metrics records, each with ``"step"`` and optionally ``"train_loss"``,
            ``"dev_loss"``, ``"lr"`` (missing, None or non-finite values are skipped).
        out_path: image file to write.
        smooth: when > 1, the train loss is also drawn averaged over consecutive blocks of
            this many points (like the lecture's ``.view(-1, k).mean(1)``; a shorter last
            block is averaged as well, so no point is dropped).
    Returns:
        The path written, as a string.
    """
    if smooth < 0:
        raise MakemoreError(f"smooth: must be >= 0, got {smooth}")

    def series(key: str) -> tuple[list[float], list[float]]:
        xs, ys = [], []
        for i, row in enumerate(rows or []):
            v = row.get(key)
            if v is None:
                continue
            try:
                v = float(v)
                step = float(row.get("step", i))
            except (TypeError, ValueError):
                raise MakemoreError(f"metrics row {i}: {key!r} and 'step' must be numbers") from None
            if math.isfinite(v) and math.isfinite(step):
                xs.append(step)
                ys.append(v)
        return xs, ys

    tx, ty = series("train_loss")
    dx, dy = series("dev_loss")
    lx, ly = series("lr")
    if not (ty or dy or ly):
        raise MakemoreError("no metrics to plot")

    fig = Figure(figsize=(10, 6), layout="constrained")
    ax = fig.add_subplot()
    handles = []
    if ty:
        if smooth > 1 and len(ty) > smooth:
            handles += ax.plot(tx, ty, color="tab:blue", alpha=0.25, lw=0.8, label="train loss")
            sx, sy = _smooth_blocks(tx, ty, smooth)
            handles += ax.plot(sx, sy, color="tab:blue", lw=2, label=f"train loss (mean of {smooth})")
        else:
            handles += ax.plot(tx, ty, color="tab:blue", lw=1.2, label="train loss")
    if dy:
        handles += ax.plot(dx, dy, "o-", color="tab:orange", ms=5, lw=1.5, label="dev loss")
    losses = ty + dy
    if losses and min(losses) > 0:
        ax.set_yscale("log")
        # plain numbers (2.2, 2.5, 3) rather than 2.2x10^0 on a log axis that spans less than a decade
        ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.set_xlabel("step")
    ax.set_ylabel("loss (log scale)" if ax.get_yscale() == "log" else "loss")
    ax.grid(True, which="both", alpha=0.3)
    if ly:
        ax2 = ax.twinx() if losses else ax
        handles += ax2.plot(lx, ly, color="tab:green", lw=1, ls="--", label="learning rate")
        if min(ly) > 0:
            ax2.set_yscale("log")
        ax2.set_ylabel("learning rate")
    ax.legend(handles=handles, loc="upper right")
    ax.set_title("training curves")
    return str(_save(fig, out_path))


# --------------------------------------------------------------------------- embedding


def plot_embedding(weights: torch.Tensor, labels: list[str], out_path) -> str:
    """Scatter plot of character embeddings, each dot labelled with its character (lecture 2).

    Args:
        weights: ``(V, E)`` embedding table. E == 2 is drawn as is; E == 1 against zeros;
            E > 2 is projected on its first two principal components (SVD of the centred
            table, signs fixed so the largest loading of each component is positive, so the
            picture is deterministic).
        labels: display string of each row.
        out_path: image file to write.
    Returns:
        The path written, as a string.
    """
    if not isinstance(weights, torch.Tensor) or weights.ndim != 2 or weights.shape[0] == 0 or weights.shape[1] == 0:
        shape = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
        raise MakemoreError(f"weights: expected a non-empty (V, E) tensor, got {shape}")
    V, E = weights.shape
    if len(labels) != V:
        raise MakemoreError(f"labels: expected {V} labels for {V} embedding rows, got {len(labels)}")
    w = weights.detach().cpu().double()

    if E == 1:
        xy = torch.cat([w, torch.zeros(V, 1, dtype=w.dtype)], dim=1)
        title, xlabel, ylabel = "character embedding (1-D)", "dim 0", "(none)"
    elif E == 2:
        xy = w
        title, xlabel, ylabel = "character embedding", "dim 0", "dim 1"
    else:
        centred = w - w.mean(0, keepdim=True)
        _, s, vh = torch.linalg.svd(centred, full_matrices=False)
        k = min(2, vh.shape[0])
        comps = vh[:k]
        big = comps.abs().argmax(dim=1)
        signs = torch.sign(comps[torch.arange(k), big])
        comps = comps * torch.where(signs == 0, torch.ones_like(signs), signs)[:, None]
        xy = centred @ comps.T
        if k < 2:
            xy = torch.cat([xy, torch.zeros(V, 2 - k, dtype=xy.dtype)], dim=1)
        var = s.pow(2)
        frac = (var / var.sum()).tolist() if float(var.sum()) > 0 else [0.0] * var.numel()
        frac += [0.0] * (2 - len(frac))
        title = f"character embedding ({E}-D), PCA projection on 2 components"
        xlabel = f"PC 1 ({100 * frac[0]:.1f}% of variance)"
        ylabel = f"PC 2 ({100 * frac[1]:.1f}% of variance)"

    fig = Figure(figsize=(8, 8), layout="constrained")
    ax = fig.add_subplot()
    x, y = xy[:, 0].tolist(), xy[:, 1].tolist()
    ax.scatter(x, y, s=200)
    for xi, yi, lab in zip(x, y, labels):
        ax.text(xi, yi, str(lab), ha="center", va="center", color="white", parse_math=False)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="minor")
    ax.grid(True, alpha=0.4)
    return str(_save(fig, out_path))


# --------------------------------------------------------------------------- activations


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
    tanhs = [(name or "tanh", m) for name, m in model.named_modules() if isinstance(m, nn.Tanh)]
    modes = {m: m.training for m in model.modules()}
    params = list(model.named_parameters())
    old_grads = [p.grad for _, p in params]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]

    acts: list[tuple[str, torch.Tensor]] = []
    grads: dict[int, torch.Tensor] = {}
    calls: dict[str, int] = {}

    def make_hook(name: str):
        def hook(module, inputs, output):
            k = calls.get(name, 0)
            calls[name] = k + 1
            label = name if k == 0 else f"{name}[{k}]"
            idx = len(acts)
            acts.append((label, output.detach().flatten().clone()))
            if output.requires_grad:
                def save_grad(g, idx=idx):
                    grads[idx] = g.detach().flatten().clone()
                output.register_hook(save_grad)
        return hook

    handles = [m.register_forward_hook(make_hook(name)) for name, m in tanhs]
    weight_grads: list[tuple[str, torch.Tensor, torch.Tensor]] = []
    try:
        for _, p in params:
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
        for name, p in params:
            if p.ndim == 2 and p.grad is not None:
                weight_grads.append((name, p.grad.detach().clone(), p.detach().clone()))
    finally:
        for h in handles:
            h.remove()
        for (_, p), g in zip(params, old_grads):
            p.grad = g
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
        for m, training in modes.items():
            m.train(training)

    act_grads = [(acts[i][0], grads[i]) for i in range(len(acts)) if i in grads]
    return {"activations": acts, "activation_grads": act_grads, "weight_grads": weight_grads}


def plot_activations(
    stats: dict,
    out_path,
    *,
    update_ratios: dict[str, list[float]] | None = None,
    ratio_steps: list[int] | None = None,
    ratios_are_log10: bool = False,
) -> str:
    """Lecture-3 diagnostics in one image: tanh outputs, their gradients, weight gradients,
    and the update:data ratio over training.

    Args:
        stats: as returned by :func:`collect_activation_stats`; empty or missing parts are
            skipped.
        out_path: image file to write.
        update_ratios: per parameter name, the update:data ratio ``std(lr * grad) / std(data)``
            at each recorded step (plotted as log10, with a guide at -3).
        ratio_steps: the step of each recorded ratio (default 0, 1, 2, ...).
        ratios_are_log10: set when ``update_ratios`` already holds log10 values (as the
            lecture's ``ud`` list does).
    Returns:
        The path written, as a string.
    """
    acts = [(n, t) for n, t in (stats or {}).get("activations", []) if t.numel()]
    agrads = [(n, t) for n, t in (stats or {}).get("activation_grads", []) if t.numel()]
    wgrads = [(n, g, p) for n, g, p in (stats or {}).get("weight_grads", []) if g.numel()]
    ratios = {k: list(v) for k, v in (update_ratios or {}).items() if len(v)}
    parts = (("acts", acts), ("agrads", agrads), ("wgrads", wgrads), ("ratios", ratios))
    panels = [name for name, present in parts if present]
    if not panels:
        raise MakemoreError("no activation statistics or update ratios to plot")

    fig = Figure(figsize=(16, 4.5 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, panel in zip(axes, panels):
        if panel == "acts":
            for i, (name, t) in enumerate(acts):
                t = t.double()
                sat = 100.0 * float((t.abs() > SATURATION).double().mean())
                hx, hy = _density(t)
                ax.plot(hx.tolist(), hy.tolist(),
                        label=f"layer {i} ({name}): mean {float(t.mean()):+.2f}, std {_std(t):.2f}, "
                              f"saturated {sat:.2f}%")
            ax.set_title("activation distribution (tanh outputs)")
            ax.set_xlabel("tanh output")
        elif panel == "agrads":
            for i, (name, t) in enumerate(agrads):
                t = t.double()
                hx, hy = _density(t)
                ax.plot(hx.tolist(), hy.tolist(),
                        label=f"layer {i} ({name}): mean {float(t.mean()):+.2e}, std {_std(t):.2e}")
            ax.set_title("gradient distribution (at tanh outputs)")
            ax.set_xlabel("gradient of the loss")
        elif panel == "wgrads":
            for name, g, p in wgrads:
                g = g.double()
                pstd = _std(p)
                ratio = _std(g) / pstd if pstd > 0 else float("inf")
                hx, hy = _density(g)
                ax.plot(hx.tolist(), hy.tolist(),
                        label=f"{name} {tuple(p.shape)}: mean {float(g.mean()):+.2e}, std {_std(g):.2e}, "
                              f"grad:data ratio {ratio:.2e}")
            ax.set_title("weight gradient distribution")
            ax.set_xlabel("gradient of the loss")
        else:
            for name, values in ratios.items():
                vals = _as_float_list(values, f"update_ratios[{name!r}]")
                if not ratios_are_log10:
                    vals = [math.log10(v) if v > 0 and math.isfinite(v) else float("nan") for v in vals]
                if ratio_steps is None:
                    steps = list(range(len(vals)))
                else:
                    if len(ratio_steps) != len(vals):
                        raise MakemoreError(
                            f"ratio_steps: {len(ratio_steps)} steps but update_ratios[{name!r}] "
                            f"has {len(vals)} values"
                        )
                    steps = _as_float_list(ratio_steps, "ratio_steps")
                ax.plot(steps, vals, label=name)
            ax.axhline(UPDATE_RATIO_GUIDE, color="k", ls="--", lw=1, label="guide (1e-3)")
            ax.set_xlabel("step")
            ax.set_ylabel("log10(update std / data std)")
            ax.set_title("update:data ratio over training")
        if panel != "ratios":  # densities: start at 0 so that the shapes compare honestly
            ax.set_ylim(bottom=0)
            ax.set_ylabel("density")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=9, loc="upper right")
    return str(_save(fig, out_path))


# --------------------------------------------------------------------------- lr finder


def _check_sweep(lrs, losses) -> tuple[list[float], list[float]]:
    lrs = _as_float_list(lrs, "lrs")
    losses = _as_float_list(losses, "losses")
    if len(lrs) != len(losses):
        raise MakemoreError(f"lr sweep: {len(lrs)} learning rates but {len(losses)} losses")
    if any(not (math.isfinite(v) and v > 0) for v in lrs):
        raise MakemoreError("lrs: learning rates must be finite and positive")
    return lrs, losses


def suggest_lr(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """Suggest a learning rate from an lr sweep (loss recorded while the lr grows).

    The points are sorted by lr; the losses are smoothed with a bias-corrected exponential
    moving average (window about 1/20 of the sweep); the sweep is cut where it diverges
    (first smoothed loss that is non-finite or more than 4x the lowest smoothed loss so
    far). What is left has a descent: from the highest smoothed loss before the lowest one
    down to the lowest one. The suggestion lies two-thirds of the way down that descent in
    log(lr) (after the "valley" rule of fastai's lr finder): where the loss still falls fast,
    clearly below the lr of the lowest loss (where a sweep is close to unstable), and
    always inside the swept range. It only depends on an argmin and an argmax of a
    smoothed curve, not on a numerical derivative of a noisy one.

    Args:
        lrs: learning rates of the sweep (finite, positive).
        losses: loss at each learning rate.
    Returns:
        The suggested learning rate (finite, deterministic, between the smallest and the
        largest lr of the sweep).
    """
    lrs, losses = _check_sweep(lrs, losses)
    if len(lrs) < 5:
        raise MakemoreError(f"lr sweep: need at least 5 points, got {len(lrs)}")
    order = sorted(range(len(lrs)), key=lambda i: lrs[i])
    lrs = [lrs[i] for i in order]
    losses = [losses[i] for i in order]
    if not math.isfinite(losses[0]):
        raise MakemoreError("lr sweep: the loss is not finite even at the smallest learning rate")

    window = max(1, len(losses) // 20)
    smooth = _ema(losses, alpha=2.0 / (window + 1))
    cut, best = len(smooth), smooth[0]
    for i, s in enumerate(smooth):
        if not math.isfinite(s) or (best > 0 and s > 4 * best):
            cut = i
            break
        best = min(best, s)
    low = min(range(cut), key=lambda i: (smooth[i], i))  # first lowest point
    top = max(range(low + 1), key=lambda i: (smooth[i], -i))  # first highest point before it
    log_lr = math.log(lrs[top]) + (2.0 / 3.0) * (math.log(lrs[low]) - math.log(lrs[top]))
    return min(max(math.exp(log_lr), lrs[top]), lrs[low])


def plot_lr_find(lrs: list[float], losses: list[float], out_path, *, suggestion: float | None = None) -> str:
    """Loss against learning rate on a log x axis, with the suggested lr marked.

    Args:
        lrs: learning rates of the sweep (finite, positive).
        losses: loss at each learning rate (non-finite points are left out).
        out_path: image file to write.
        suggestion: lr to mark with a vertical line (e.g. from :func:`suggest_lr`).
    Returns:
        The path written, as a string.
    """
    lrs, losses = _check_sweep(lrs, losses)
    pts = sorted((a, b) for a, b in zip(lrs, losses) if math.isfinite(b))
    if not pts:
        raise MakemoreError("lr sweep: no finite losses to plot")
    if suggestion is not None and not (math.isfinite(suggestion) and suggestion > 0):
        raise MakemoreError(f"suggestion: must be a finite positive lr, got {suggestion}")
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]

    fig = Figure(figsize=(10, 6), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(xs, ys, color="tab:blue", alpha=0.4, lw=1, label="loss")
    if len(ys) >= 5:
        window = max(1, len(ys) // 20)
        ax.plot(xs, _ema(ys, 2.0 / (window + 1)), color="tab:blue", lw=2, label="loss (smoothed)")
    if suggestion is not None:
        ax.axvline(suggestion, color="tab:red", ls="--", label=f"suggested lr {suggestion:.3g}")
    ax.set_xscale("log")
    # keep the diverging tail from squashing the interesting part of the curve
    lo = min(ys)
    top = max(ys[0], 4 * lo) if lo > 0 else max(ys)
    if max(ys) > top:
        pad = 0.05 * (top - lo)
        ax.set_ylim(lo - pad, top + pad)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("loss")
    ax.set_title("learning-rate sweep")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return str(_save(fig, out_path))
