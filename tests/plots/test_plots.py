"""Tests for makemore.plots: every plot returns a figure that renders to a real PNG, in memory or
written atomically, without leaking figures; the helpers compute what they claim (bigram
selection, activation statistics, lr suggestion)."""

from __future__ import annotations

import io
import math

import matplotlib.axes
import matplotlib.image
import matplotlib.pyplot
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from conftest import PNG_MAGIC, assert_png
from makemore import plots
from makemore.errors import MakemoreError


def chars(n: int) -> list[str]:
    pool = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-'+*#%&!?~^"
    return ["."] + list(pool[: n - 1])


# ----------------------------------------------------------------------------- bigram


def test_bigram_27_shows_all(tmp_path):
    g = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 5000, (27, 27), generator=g)
    out = tmp_path / "bigram.png"
    plot = plots.plot_bigram_counts(counts, chars(27))
    assert plot.info == {"shown": 27, "total": 27}
    assert plots.write_png(plot.figure, out) == out
    assert_png(out, tmp_path)


def test_bigram_60_keeps_boundary_and_most_frequent(tmp_path, monkeypatch):
    V, max_chars = 60, 12
    counts = torch.ones(V, V, dtype=torch.long)
    # make tokens 50..59 and 5 the most frequent (by row + col totals); boundary is rare
    frequent = [5] + list(range(50, 60))
    for t in frequent:
        counts[t, :] += 100
    counts[0, :] = 0
    counts[:, 0] = 0
    seen = {}
    real_imshow = matplotlib.axes.Axes.imshow

    def spy_imshow(self, data, *args, **kwargs):
        seen["data"] = data
        return real_imshow(self, data, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "imshow", spy_imshow)
    labels = chars(V)
    out = tmp_path / "sub" / "bigram.png"
    plot = plots.plot_bigram_counts(counts, labels, max_chars=max_chars)
    assert plot.info == {"shown": max_chars, "total": V}
    assert plots.write_png(plot.figure, out) == out
    # the shown sub-matrix is exactly the boundary + 11 most frequent, in vocabulary order
    keep = [0] + sorted(frequent)
    assert torch.equal(torch.as_tensor(seen["data"]), counts[keep][:, keep].double())
    assert_png(out, tmp_path)


def test_bigram_default_max_chars_with_60(tmp_path):
    counts = torch.randint(0, 100, (60, 60), generator=torch.Generator().manual_seed(1))
    plot = plots.plot_bigram_counts(counts, chars(60))
    assert plot.info["shown"] == 32 and plot.info["total"] == 60
    plots.write_png(plot.figure, tmp_path / "b.png")
    assert_png(tmp_path / "b.png", tmp_path)


def test_bigram_bad_input(tmp_path):
    with pytest.raises(MakemoreError, match="labels"):
        plots.plot_bigram_counts(torch.zeros(3, 3), [".", "a"])
    with pytest.raises(MakemoreError, match="square"):
        plots.plot_bigram_counts(torch.zeros(3, 4), [".", "a", "b"])
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- loss curves


def metrics_rows(n: int = 300):
    rows = []
    for step in range(n):
        row = {
            "step": step,
            "train_loss": 3.3 * math.exp(-step / 100) + 2.0 + 0.1 * math.sin(step),
            "lr": 0.1 if step < n // 2 else 0.01,
        }
        if step % 50 == 0:
            row["dev_loss"] = 3.3 * math.exp(-step / 100) + 2.1
        rows.append(row)
    return rows


@pytest.mark.parametrize("smooth", [0, 20])
def test_loss_curves(tmp_path, smooth):
    out = tmp_path / "loss.png"
    plot = plots.plot_loss_curves(metrics_rows(), smooth=smooth)
    assert plot.info == {}
    assert plots.write_png(plot.figure, out) == out
    assert_png(out, tmp_path)


def test_loss_curves_only_dev(tmp_path):
    rows = [{"step": s, "dev_loss": 2.5 - 0.01 * s} for s in range(0, 100, 10)]
    out = tmp_path / "loss.png"
    plots.write_png(plots.plot_loss_curves(rows).figure, out)
    assert_png(out, tmp_path)


def test_density_integrates_to_one():
    t = torch.randn(10_000, generator=torch.Generator().manual_seed(0))
    x, d = plots._density(t)
    assert len(x) == 100
    assert float(d.sum() * (x[1] - x[0])) == pytest.approx(1.0, rel=1e-9)
    x, d = plots._density(torch.full((7,), 0.5))  # constant input: one unit-wide spike at 0.5
    assert float(d.sum() * (x[1] - x[0])) == pytest.approx(1.0, rel=1e-9)


def test_smooth_blocks_matches_lecture_view_mean():
    ys = torch.arange(12, dtype=torch.float64).tolist()
    xs = list(range(12))
    _, sy = plots._smooth_blocks(xs, ys, 4)
    assert sy == torch.tensor(ys).view(-1, 4).mean(1).tolist()
    _, sy = plots._smooth_blocks(xs, ys, 5)  # shorter last block is kept
    assert sy == [2.0, 7.0, 10.5]


def test_loss_curves_empty(tmp_path):
    with pytest.raises(MakemoreError, match="no metrics to plot"):
        plots.plot_loss_curves([])
    with pytest.raises(MakemoreError, match="no metrics to plot"):
        plots.plot_loss_curves([{"step": 1}, {"step": 2, "train_loss": None}])
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- embedding


@pytest.mark.parametrize("E", [1, 2, 10])
def test_embedding(tmp_path, E):
    w = torch.randn(27, E, generator=torch.Generator().manual_seed(E))
    out = tmp_path / "emb.png"
    plot = plots.plot_embedding(w, chars(27))
    assert plot.info == {}
    assert plots.write_png(plot.figure, out) == out
    assert_png(out, tmp_path)


def test_embedding_pca_is_deterministic_and_sign_independent(tmp_path, monkeypatch):
    w = torch.randn(20, 6, generator=torch.Generator().manual_seed(3))
    captured = []
    real_scatter = matplotlib.axes.Axes.scatter

    def spy_scatter(self, x, y, *args, **kwargs):
        captured.append((list(x), list(y)))
        return real_scatter(self, x, y, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "scatter", spy_scatter)
    plots.png_bytes(plots.plot_embedding(w, chars(20)).figure)
    plots.png_bytes(plots.plot_embedding(-w, chars(20)).figure)  # flipped table: same picture up to sign
    (x1, y1), (x2, y2) = captured
    # the first component carries the most variance of any direction
    centred = w.double() - w.double().mean(0)
    s = torch.linalg.svdvals(centred)
    assert math.isclose(sum(v * v for v in x1), float(s[0] ** 2), rel_tol=1e-9)
    assert math.isclose(sum(v * v for v in y1), float(s[1] ** 2), rel_tol=1e-9)
    # negating the table negates the centred data, but the sign rule pins the components
    assert x1 == pytest.approx([-v for v in x2]) and y1 == pytest.approx([-v for v in y2])


# ----------------------------------------------------------------------------- activations


class ToyMLP(nn.Module):
    """MLP on a 3-character context with two tanh layers and a BatchNorm; returns (logits, loss)."""

    def __init__(self, vocab: int = 11, emb: int = 4, hidden: int = 16, block: int = 3):
        super().__init__()
        self.emb = nn.Embedding(vocab, emb)
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(emb * block, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Dropout(0.1),
            nn.Linear(hidden, vocab),
        )

    def forward(self, idx, targets=None):
        logits = self.net(self.emb(idx))
        loss = None if targets is None else F.cross_entropy(logits, targets)
        return logits, loss


def toy_batch(B: int = 32, vocab: int = 11):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, vocab, (B, 3), generator=g), torch.randint(0, vocab, (B,), generator=g)


@pytest.mark.parametrize("start_training", [True, False])
def test_collect_activation_stats(start_training):
    torch.manual_seed(0)
    model = ToyMLP()
    model.train(start_training)
    x, y = toy_batch()
    bn = model.net[2]
    running_before = bn.running_mean.clone()

    stats = plots.collect_activation_stats(model, x, y)

    acts, agrads, wgrads = stats["activations"], stats["activation_grads"], stats["weight_grads"]
    assert [n for n, _ in acts] == ["net.3", "net.5"]
    assert [n for n, _ in agrads] == ["net.3", "net.5"]
    for (_, a), (_, g) in zip(acts, agrads):
        assert a.shape == (32 * 16,) and g.shape == (32 * 16,)
        assert a.abs().max() <= 1.0
    # all 2-D parameters: embedding table and the three linear weights
    assert [(n, tuple(g.shape)) for n, g, _ in wgrads] == [
        ("emb.weight", (11, 4)),
        ("net.1.weight", (16, 12)),
        ("net.4.weight", (16, 16)),
        ("net.7.weight", (11, 16)),
    ]
    for name, g, p in wgrads:
        assert g.shape == p.shape
        assert torch.equal(p, dict(model.named_parameters())[name].detach())

    # the model is left as it was
    assert all(p.grad is None for p in model.parameters())
    assert model.training is start_training
    assert all(m.training is start_training for m in model.modules())
    assert not model.net[3]._forward_hooks and not model.net[5]._forward_hooks
    assert torch.equal(bn.running_mean, running_before)

    # the recorded values match an independent training-mode pass (same dropout mask via seed)
    model.train()
    torch.manual_seed(123)
    stats_a = plots.collect_activation_stats(model, x, y)
    torch.manual_seed(123)
    out = []
    h = model.net[5].register_forward_hook(lambda m, i, o: out.append(o))
    logits, loss = model(x, y)
    out[0].retain_grad()
    loss.backward()
    h.remove()
    assert torch.allclose(stats_a["activations"][1][1], out[0].detach().flatten())
    assert torch.allclose(stats_a["activation_grads"][1][1], out[0].grad.flatten())
    assert torch.allclose(stats_a["weight_grads"][3][1], model.net[7].weight.grad)


def test_collect_activation_stats_keeps_rng_and_existing_grads():
    model = ToyMLP()
    x, y = toy_batch()
    model(x, y)[1].backward()
    before = {n: p.grad.clone() for n, p in model.named_parameters()}
    torch.manual_seed(5)
    expected_next = torch.rand(3)
    torch.manual_seed(5)
    plots.collect_activation_stats(model, x, y)
    assert torch.equal(torch.rand(3), expected_next)
    for n, p in model.named_parameters():
        assert torch.equal(p.grad, before[n])


def test_collect_activation_stats_needs_trainable_parameters():
    class Counts(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("logits", torch.zeros(3))

        def forward(self, x, y=None):
            logits = self.logits.expand(len(x), 3)
            return logits, F.cross_entropy(logits, y)

    with pytest.raises(MakemoreError, match="trainable"):
        plots.collect_activation_stats(Counts(), torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))


def test_collect_activation_stats_needs_a_loss():
    class NoLoss(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def forward(self, x, y=None):
            return self.lin(x), None

    with pytest.raises(MakemoreError, match="loss"):
        plots.collect_activation_stats(NoLoss(), torch.randn(4, 2), torch.zeros(4))


def test_plot_activations(tmp_path):
    torch.manual_seed(0)
    stats = plots.collect_activation_stats(ToyMLP(), *toy_batch())
    out = tmp_path / "act.png"
    plot = plots.plot_activations(stats)
    assert plot.info == {"panels": ["activations", "activation_grads", "weight_grads"]}
    assert plots.write_png(plot.figure, out) == out
    assert_png(out, tmp_path)

    steps = list(range(0, 100, 10))
    ratios = {n: [10 ** (-3 + 0.1 * math.sin(s)) for s in steps] for n, _, _ in stats["weight_grads"]}
    out2 = tmp_path / "act2.png"
    plot2 = plots.plot_activations(stats, update_ratios=ratios, ratio_steps=steps)
    assert plot2.info["panels"] == plot.info["panels"] + ["update_ratios"]
    plots.write_png(plot2.figure, out2)
    assert out2.read_bytes()[:8] == PNG_MAGIC and out2.stat().st_size > 5_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["act.png", "act2.png"]
    # differs from the plot without ratios (an extra panel)
    assert out2.stat().st_size != out.stat().st_size


def test_plot_activations_update_ratios_as_log10(tmp_path, monkeypatch):
    """log10 ratios (as the trainer records them) are drawn as they are, plain ones as log10."""
    drawn = {}
    real_plot = matplotlib.axes.Axes.plot

    def spy_plot(self, *args, **kwargs):
        if "label" in kwargs and len(args) == 2:
            drawn[kwargs["label"]] = list(args[1])
        return real_plot(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", spy_plot)
    log10 = {"W1": [-1.5, -2.25, -3.0], "W2": [-0.5, -1.0, -4.0]}
    plot = plots.plot_activations({}, update_ratios=log10, ratio_steps=[1, 11, 21], ratios_are_log10=True)
    assert plot.info == {"panels": ["update_ratios"]}
    assert drawn == log10
    drawn.clear()
    plain = {k: [10**v for v in vals] for k, vals in log10.items()}
    plots.plot_activations({}, update_ratios=plain, ratio_steps=[1, 11, 21])
    assert drawn.keys() == log10.keys()
    for k in log10:
        assert drawn[k] == pytest.approx(log10[k], abs=1e-12)


def test_plot_activations_without_tanh_and_errors(tmp_path):
    class Linear(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 3)

        def forward(self, x, y):
            logits = self.lin(x)
            return logits, F.cross_entropy(logits, y)

    stats = plots.collect_activation_stats(Linear(), torch.randn(8, 4), torch.randint(0, 3, (8,)))
    assert stats["activations"] == [] and stats["activation_grads"] == []
    out = tmp_path / "w.png"
    plots.write_png(plots.plot_activations(stats).figure, out)
    assert_png(out, tmp_path)

    empty = {"activations": [], "activation_grads": [], "weight_grads": []}
    with pytest.raises(MakemoreError):
        plots.plot_activations(empty)
    with pytest.raises(MakemoreError, match="ratio_steps"):
        plots.plot_activations(empty, update_ratios={"w": [1e-3, 1e-3]}, ratio_steps=[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.png"]


# ----------------------------------------------------------------------------- lr finder


def u_curve(n: int = 200, noise: float = 0.05, seed: int = 0):
    """Loss falls from 3.3 as lr grows, bottoms out at lr = 0.1, then diverges."""
    g = torch.Generator().manual_seed(seed)
    lre = torch.linspace(-4, 0.5, n, dtype=torch.float64)
    lrs = (10**lre).tolist()
    base = 2.2 + 1.1 / (1 + torch.exp(3 * (lre + 2.0)))  # descending sigmoid in log10(lr)
    blowup = torch.where(lre > -1, torch.expm1(4 * (lre + 1)), torch.zeros_like(lre))
    losses = (base + blowup + noise * torch.randn(n, generator=g, dtype=torch.float64)).tolist()
    return lrs, losses


@pytest.mark.parametrize("seed", range(5))
def test_suggest_lr_u_curve(seed):
    lrs, losses = u_curve(seed=seed)
    lr = plots.suggest_lr(lrs, losses)
    assert math.isfinite(lr) and 1e-3 <= lr <= 0.3
    assert plots.suggest_lr(lrs, losses) == lr  # deterministic
    # order of the points does not matter
    assert plots.suggest_lr(lrs[::-1], losses[::-1]) == lr


def test_suggest_lr_ignores_diverged_tail():
    lrs, losses = u_curve(noise=0.0)
    # the loss blows up to inf/nan and then (spuriously) drops to a tiny value
    losses[-20:-10] = [float("inf")] * 10
    losses[-10:] = [0.01] * 10
    lr = plots.suggest_lr(lrs, losses)
    assert math.isfinite(lr) and 1e-3 <= lr <= 0.3


def test_suggest_lr_exact_on_clean_curve():
    # 31 points: the smoothing window is 1 point, so the curve is used as it is
    lrs = [10 ** (e / 10) for e in range(-30, 1)]
    losses = [abs(e + 6) / 10 + 1.0 for e in range(-30, 1)]  # V-shape: highest at 1e-3, lowest at 10**-0.6
    # two-thirds of the way down the descent in log10(lr): -3 + 2/3 * 2.4 = -1.4
    assert plots.suggest_lr(lrs, losses) == pytest.approx(10**-1.4, rel=1e-12)
    # a bump before the descent: the descent starts at the highest point
    bumped = [1.0 + abs(e + 6) / 10 if e > -27 else 1.0 + 2.4 - abs(e + 27) / 10 for e in range(-30, 1)]
    assert max(range(31), key=lambda i: bumped[i]) == 3
    assert plots.suggest_lr(lrs, bumped) == pytest.approx(10 ** (-2.7 + 2 / 3 * 2.1), rel=1e-12)


def test_suggest_lr_stays_inside_the_sweep():
    """A minimum close to the start (AdamW swept from 1e-3) still gives an lr that was tried."""
    lrs = [10 ** (-3 + 3 * i / 99) for i in range(100)]
    losses = [2.5 + (math.log10(lr) + 2.5) ** 2 for lr in lrs]  # lowest at lr = 10**-2.5, near the start
    lr = plots.suggest_lr(lrs, losses)
    assert lrs[0] <= lr < 10**-2.5
    rising = [3.0 + 0.01 * i for i in range(100)]  # no descent at all: the smallest lr
    assert plots.suggest_lr(lrs, rising) == lrs[0]


def test_suggest_lr_errors():
    with pytest.raises(MakemoreError, match="at least 5"):
        plots.suggest_lr([1e-3, 1e-2, 1e-1, 1.0], [3.0, 2.5, 2.2, 9.0])
    with pytest.raises(MakemoreError):
        plots.suggest_lr([1e-3, 1e-2], [3.0])
    with pytest.raises(MakemoreError):
        plots.suggest_lr([0.0, 1e-2, 1e-1, 1.0, 2.0], [3.0, 2.5, 2.2, 9.0, 10.0])


def test_plot_lr_find(tmp_path):
    lrs, losses = u_curve()
    lr = plots.suggest_lr(lrs, losses)
    out = tmp_path / "lr.png"
    plot = plots.plot_lr_find(lrs, losses, suggestion=lr)
    assert plot.info == {}
    assert plots.write_png(plot.figure, out) == out
    assert_png(out, tmp_path)
    out2 = tmp_path / "lr2.png"
    plots.write_png(plots.plot_lr_find(lrs, losses).figure, out2)
    assert out2.read_bytes()[:8] == PNG_MAGIC


def test_failed_write_leaves_no_temp_file(tmp_path, monkeypatch):
    def boom(self, fname, *a, **k):
        with open(fname, "wb") as f:  # a half-written temp file, then a failure
            f.write(PNG_MAGIC)
        raise RuntimeError("disk full")

    monkeypatch.setattr(plots.Figure, "savefig", boom)
    lrs, losses = u_curve()
    with pytest.raises(RuntimeError):
        plots.write_png(plots.plot_lr_find(lrs, losses).figure, tmp_path / "lr.png")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(MakemoreError, match="format"):
        plots.write_png(plots.plot_lr_find(lrs, losses).figure, tmp_path / "lr.xyz")


# ----------------------------------------------------------------------------- outputs


def test_png_bytes_is_a_png_of_figsize_times_dpi():
    lrs, losses = u_curve()
    data = plots.png_bytes(plots.plot_lr_find(lrs, losses).figure)  # figsize (10, 6), dpi 100
    assert isinstance(data, bytes) and data[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(io.BytesIO(data), format="png").shape[:2] == (600, 1000)
    small = plots.png_bytes(plots.plot_lr_find(lrs, losses).figure, dpi=50)
    assert matplotlib.image.imread(io.BytesIO(small), format="png").shape[:2] == (300, 500)


@pytest.mark.parametrize(
    "draw",
    [
        lambda: plots.plot_bigram_counts(torch.arange(49).view(7, 7), chars(7)),
        lambda: plots.plot_embedding(torch.randn(9, 3, generator=torch.Generator().manual_seed(0)), chars(9)),
        lambda: plots.plot_loss_curves(metrics_rows(60), smooth=5),
        lambda: plots.plot_lr_find(*u_curve(60), suggestion=1e-2),
        lambda: plots.plot_activations({}, update_ratios={"w": [1e-3, 2e-3, 5e-4]}),
    ],
    ids=["bigram", "embedding", "loss", "lr_find", "activations"],
)
def test_write_png_writes_what_png_bytes_returns(tmp_path, draw):
    out = tmp_path / "plot.png"
    assert plots.write_png(draw().figure, out) == out
    assert out.read_bytes() == plots.png_bytes(draw().figure)
    assert_png(out, tmp_path)


def test_rendering_leaks_no_figure(tmp_path):
    before = len(matplotlib.pyplot.get_fignums())
    for _ in range(3):
        plot = plots.plot_loss_curves(metrics_rows(60))
        plots.png_bytes(plot.figure)
        assert plot.figure.axes == []  # released: its artists are gone
        plots.write_png(plots.plot_loss_curves(metrics_rows(60)).figure, tmp_path / "loss.png")
    assert len(matplotlib.pyplot.get_fignums()) == before


def test_png_bytes_releases_the_figure_when_rendering_fails(monkeypatch):
    def boom(self, fname, *a, **k):
        raise RuntimeError("renderer failed")

    plot = plots.plot_lr_find(*u_curve())
    monkeypatch.setattr(plots.Figure, "savefig", boom)
    with pytest.raises(RuntimeError):
        plots.png_bytes(plot.figure)
    assert plot.figure.axes == []
