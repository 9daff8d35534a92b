"""Plots that show what a model learned and how training went.

Every ``plot_*`` function takes its data as arguments (tensors, lists, dicts), writes
nothing, and returns a :class:`Plot`: ``plot.figure``, a standalone
``matplotlib.figure.Figure`` (no pyplot, no global state, no GUI backend), and
``plot.info``, a dict of facts about the picture (``{}`` when there are none). Render the
figure once with one of the two outputs, which release it:

- ``png_bytes(plot.figure)``: the PNG in memory (what the web server sends);
- ``write_png(plot.figure, path)``: the file, written atomically (``files.atomic_output``),
  so a reader never sees a half-written image.
"""

from makemore.plots.activations import collect_activation_stats, plot_activations
from makemore.plots.common import Figure, Plot, _density, _smooth_blocks, png_bytes, write_png
from makemore.plots.learned import plot_bigram_counts, plot_embedding
from makemore.plots.training import plot_ladder, plot_loss_curves, plot_lr_find, suggest_lr

__all__ = [
    "Figure",
    "Plot",
    "_density",
    "_smooth_blocks",
    "collect_activation_stats",
    "plot_activations",
    "plot_bigram_counts",
    "plot_embedding",
    "plot_ladder",
    "plot_loss_curves",
    "plot_lr_find",
    "png_bytes",
    "suggest_lr",
    "write_png",
]
