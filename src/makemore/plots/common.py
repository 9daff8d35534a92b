"""What every plot shares: the result type, the two outputs (PNG bytes in memory, or an
atomically written file; no GUI backend) and small helpers."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # never pick an interactive backend; we only render images

import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from makemore import files  # noqa: E402
from makemore.errors import MakemoreError  # noqa: E402

SATURATION = 0.97  # |tanh| above this counts as saturated (lecture 3)
UPDATE_RATIO_GUIDE = -3.0  # log10 update:data ratio guide line (lecture 3)


@dataclass(frozen=True)
class Plot:
    """A drawn plot: the figure and what it shows beyond its pixels.

    Attributes:
        figure: a standalone figure (not registered with pyplot); render it once with
            :func:`png_bytes` or :func:`write_png`, which release it.
        info: facts about the picture, e.g. ``{"shown": 12, "total": 60}`` for a bigram
            heatmap that left tokens out; ``{}`` when there is nothing to add.
    """

    figure: Figure
    info: dict = field(default_factory=dict)


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    """Render ``fig`` as PNG in memory and release it.

    Args:
        fig: the figure to render.
        dpi: resolution; the image is ``figsize * dpi`` pixels.
    Returns:
        The PNG file's bytes.
    """
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        fig.clear()  # drop the artists now; the figure may outlive this call in a caller's cache
    return buf.getvalue()


def write_png(fig: Figure, path, *, dpi: int = 100) -> Path:
    """Write ``fig`` atomically to ``path`` and release it; a reader never sees half an image.

    Args:
        fig: the figure to write.
        path: target file; its suffix picks the format (``.png`` when there is none, and
            any other format matplotlib writes, e.g. ``.svg``, is accepted).
        dpi: resolution.
    Returns:
        The target path.
    Raises:
        MakemoreError: the suffix names a format matplotlib cannot write (nothing is written).
    """
    out = Path(path)
    suffix = out.suffix or ".png"
    fmt = suffix[1:].lower()
    try:
        if fmt not in fig.canvas.get_supported_filetypes():
            raise MakemoreError(f"{out}: unsupported image format {suffix!r}")
        out.parent.mkdir(parents=True, exist_ok=True)
        with files.atomic_output(out) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi)
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
