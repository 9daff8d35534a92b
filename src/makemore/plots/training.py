"""How training went: loss curves and the learning-rate sweep with its suggestion."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter, NullFormatter, ScalarFormatter

from makemore.errors import ConfigError, MakemoreError
from makemore.plots.common import Plot, _as_float_list, _ema, _smooth_blocks


def _series(rows: list[dict], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of ``key`` in the metrics rows that have a finite one."""
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


def plot_loss_curves(rows: list[dict], *, smooth: int = 0) -> Plot:
    """Train/dev loss over steps, with the learning rate on a second axis.

    Args:
        rows: metrics records, each with ``"step"`` and optionally ``"train_loss"``,
            ``"dev_loss"``, ``"lr"`` (missing, None or non-finite values are skipped).
        smooth: when > 1, the train loss is also drawn averaged over consecutive blocks of
            this many points (like the lecture's ``.view(-1, k).mean(1)``; a shorter last
            block is averaged as well, so no point is dropped).
    Returns:
        The plot (its ``info`` is empty).
    """
    if smooth < 0:
        raise ConfigError("smooth", f"must be >= 0, got {smooth}")

    tx, ty = _series(rows, "train_loss")
    dx, dy = _series(rows, "dev_loss")
    lx, ly = _series(rows, "lr")
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
    return Plot(fig)


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


def plot_lr_find(lrs: list[float], losses: list[float], *, suggestion: float | None = None) -> Plot:
    """Loss against learning rate on a log x axis, with the suggested lr marked.

    Args:
        lrs: learning rates of the sweep (finite, positive).
        losses: loss at each learning rate (non-finite points are left out).
        suggestion: lr to mark with a vertical line (e.g. from :func:`suggest_lr`).
    Returns:
        The plot (its ``info`` is empty).
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
    return Plot(fig)


def plot_ladder(curves: dict[str, list[list[float]]], points: dict[str, tuple[float, float]]) -> Plot:
    """Dev NLL against training time for every rung of a ladder (``makemore ladder``).

    Args:
        curves: rung -> ``[[seconds, dev NLL], ...]`` of a model trained by gradient.
        points: rung -> ``(seconds, dev NLL)`` of a count model (fitted once: one point).
    Returns:
        The plot; ``info``: ``{"best": rung with the lowest final dev NLL}`` (None if none).
    """
    fig = Figure(figsize=(9, 5.5), layout="constrained")
    ax = fig.subplots()
    colours = itertools.cycle(colormaps["tab20"].colors)  # 20 colours: the default cycle repeats after 10
    finals: dict[str, float] = {}
    for name, curve in curves.items():
        xs = [max(x, 1e-3) for x, _ in curve]
        ys = [y for _, y in curve]
        if xs:
            ax.plot(xs, ys, marker=".", label=name, color=next(colours))
            finals[name] = ys[-1]
    for name, (x, y) in points.items():
        ax.plot([max(x, 1e-3)], [y], marker="s", linestyle="none", label=name, color=next(colours))
        finals[name] = y
    if finals:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend(fontsize="small", ncols=2)
    ax.set_xlabel("training time (s, log scale; count models: the time to count)")
    ax.set_ylabel("dev NLL (nats per character)")
    ax.set_title("The ladder: dev NLL against training time")
    ax.grid(True, alpha=0.3)
    return Plot(fig, {"best": min(finals, key=finals.get) if finals else None})
