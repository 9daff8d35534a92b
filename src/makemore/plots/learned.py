"""What a model learned: the bigram count heatmap (lecture 1) and character embeddings (lecture 2)."""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

from makemore.errors import ConfigError, MakemoreError
from makemore.plots.common import Plot


def plot_bigram_counts(counts: torch.Tensor, labels: list[str], *, max_chars: int = 32) -> Plot:
    """Heatmap of bigram counts with each cell's pair and count written in it (lecture 1).

    Args:
        counts: ``(V, V)`` counts; row = previous token, column = next token.
        labels: display string of each token; ``labels[0]`` is the boundary token.
        max_chars: most tokens to show; beyond it the boundary token and the
            ``max_chars - 1`` most frequent others (by row + column totals) are kept.
    Returns:
        The plot, with ``info == {"shown": tokens shown, "total": V}``.
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
        raise ConfigError("max_chars", f"must be at least 1, got {max_chars}")
    keep = _most_frequent(counts.detach().cpu(), max_chars)
    n = keep.numel()
    sub = counts.detach().cpu()[keep][:, keep]
    names = [str(labels[i]) for i in keep.tolist()]
    size = min(max(6.0, 0.6 * n), 20.0)  # inches; grows with n, capped
    fig = Figure(figsize=(size, size))
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.92))
    ax.imshow(sub.double().numpy(), cmap="Blues", interpolation="nearest")
    ax.set_axis_off()
    _write_cells(ax, sub, names, size)
    title = "bigram counts (row: previous token, column: next token)"
    if n < V:
        title += f"; the boundary and the {n - 1} most frequent of {V - 1} characters"
    ax.set_title(title, fontsize=max(12.0, 0.8 * size))  # stays readable on big figures
    return Plot(fig, {"shown": int(n), "total": int(V)})


def _most_frequent(counts: torch.Tensor, max_chars: int) -> torch.Tensor:
    """Token ids to show: all of them, or the boundary and the ``max_chars - 1`` most frequent
    others (by row + column totals; ties keep the vocabulary order), in vocabulary order."""
    V = counts.shape[0]
    if V <= max_chars:
        return torch.arange(V)
    totals = (counts.sum(0) + counts.sum(1)).double()[1:]
    order = torch.sort(-totals, stable=True).indices[: max_chars - 1] + 1
    return torch.cat([torch.zeros(1, dtype=torch.long), torch.sort(order).values])


def _write_cells(ax, sub: torch.Tensor, names: list[str], size: float) -> None:
    """Each cell's pair of tokens and its count, in a font that fits the cell."""
    n = len(names)
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
            style = dict(ha="center", va="center", color=color, fontsize=fontsize, linespacing=1.1)
            ax.text(j, i, text, parse_math=False, **style)


def plot_embedding(weights: torch.Tensor, labels: list[str]) -> Plot:
    """Scatter plot of character embeddings, each dot labelled with its character (lecture 2).

    Args:
        weights: ``(V, E)`` embedding table. E == 2 is drawn as is; E == 1 against zeros;
            E > 2 is projected on its first two principal components (SVD of the centred
            table, signs fixed so the largest loading of each component is positive, so the
            picture is deterministic).
        labels: display string of each row.
    Returns:
        The plot (its ``info`` is empty).
    """
    if not isinstance(weights, torch.Tensor) or weights.ndim != 2 or weights.shape[0] == 0 or weights.shape[1] == 0:
        shape = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
        raise MakemoreError(f"weights: expected a non-empty (V, E) tensor, got {shape}")
    V, E = weights.shape
    if len(labels) != V:
        raise MakemoreError(f"labels: expected {V} labels for {V} embedding rows, got {len(labels)}")
    w = weights.detach().cpu().double()

    xy, title, xlabel, ylabel = _project_2d(w)
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
    return Plot(fig)


def _project_2d(w: torch.Tensor) -> tuple[torch.Tensor, str, str, str]:
    """(V, 2) coordinates of the rows of ``w`` (V, E), with the plot's title and axis labels."""
    V, E = w.shape
    if E == 1:
        return (torch.cat([w, torch.zeros(V, 1, dtype=w.dtype)], dim=1), "character embedding (1-D)", "dim 0", "(none)")
    if E == 2:
        return w, "character embedding", "dim 0", "dim 1"
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
    return xy, title, f"PC 1 ({100 * frac[0]:.1f}% of variance)", f"PC 2 ({100 * frac[1]:.1f}% of variance)"
