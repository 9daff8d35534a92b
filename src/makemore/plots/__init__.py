"""Plots that show what a model learned and how training went.

Every function takes its data as arguments (tensors, lists, dicts) and writes one image.
Figures are built as standalone ``matplotlib.figure.Figure`` objects (no pyplot, no global
state, no GUI backend) and written atomically (``files.atomic_output``), so a reader never
sees a half-written image.
"""

from makemore.plots.activations import collect_activation_stats, plot_activations
from makemore.plots.common import Figure, _density, _smooth_blocks
from makemore.plots.learned import plot_bigram_counts, plot_embedding
from makemore.plots.training import plot_loss_curves, plot_lr_find, suggest_lr

__all__ = [
    "Figure",
    "_density",
    "_smooth_blocks",
    "collect_activation_stats",
    "plot_activations",
    "plot_bigram_counts",
    "plot_embedding",
    "plot_loss_curves",
    "plot_lr_find",
    "suggest_lr",
]
