"""Take a trained model out of Python (``makemore export``).

Each format has its own module, imported when asked for: ``onnx`` (a graph for any ONNX
runtime), ``html`` (one page that generates offline), ``js`` (one ES module), ``arpa``
(n-gram models, for KenLM and SRILM). Every one turns a loaded run into the bytes of one file;
this module picks the writer, writes the file atomically and measures what smaller weights cost.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from makemore.config import ExportConfig

if TYPE_CHECKING:
    from makemore.data.datasets import Data
    from makemore.store.runs import Run

# format -> (module, function): each takes (run, weights) and returns the file's bytes; html and js
# also take the run's training data already read (their bundle holds the training items' hashes)
WRITERS = {
    "onnx": ("makemore.export.onnx", "onnx_bytes"),
    "html": ("makemore.export.html", "html_bytes"),
    "js": ("makemore.export.js", "module_bytes"),
    "arpa": ("makemore.export.arpa", "arpa_bytes"),
}
NEEDS_DATA = ("html", "js")


@dataclass(frozen=True)
class Exported:
    """What ``export`` wrote.

    Attributes:
        path: the file.
        format, weights: as written (the format read from the suffix when not given).
        size: the file's bytes.
        dev_nll: the run's dev NLL with float32 weights (None: no dev split).
        weights_cost: how much the stored weights raise the dev NLL (0 for float32).
    """

    path: Path
    format: str
    weights: str
    size: int
    dev_nll: float | None
    weights_cost: float | None


def export_bytes(run: Run, config: ExportConfig, data: Data | None = None) -> bytes:
    """The file ``config`` asks for, as bytes (``config.format`` must be set).

    Args:
        run: a loaded run.
        config: the format and weights.
        data: the run's training data already read (``training_data(run)``): html and js need it.

    Raises:
        MakemoreError: the run cannot be written in that format (one line saying why).
    """
    module, function = WRITERS[config.format]
    writer = getattr(importlib.import_module(module), function)
    if config.format == "arpa":
        return writer(run)
    if config.format in NEEDS_DATA:
        return writer(run, weights=config.weights, data=data)
    return writer(run, weights=config.weights)


def weights_cost(run: Run, weights: str, data: Data | None = None) -> tuple[float | None, float | None]:
    """The dev NLL of ``run`` and how much storing its weights as ``weights`` raises it.

    The model is evaluated with the very tensors an exported file computes with
    (``bundle.dequantized_state_dict``), so the figure is what the page and module will score.

    Returns:
        (dev NLL with float32 weights, the increase with ``weights``); Nones without a dev split.
    """
    from makemore.evaluate.scoring import evaluate
    from makemore.export.bundle import dequantized_state_dict
    from makemore.store.runs import training_data

    data = data or training_data(run)
    exact = evaluate(run, ("dev",), data)["dev"]
    if exact is None or weights == "float32":
        return exact, (None if exact is None else 0.0)
    original = {k: v.clone() for k, v in run.model.state_dict().items()}
    try:
        run.model.load_state_dict(dequantized_state_dict(run, weights))
        stored = evaluate(run, ("dev",), data)["dev"]
    finally:
        run.model.load_state_dict(original)
    return exact, stored - exact


def export(
    run: Run, output: str | Path, config: ExportConfig, *, force: bool = False, measure: bool = True
) -> Exported:
    """Write ``run`` to ``output`` in the format ``config`` names (or its suffix), atomically.

    Args:
        run: a loaded run.
        output: the file to write.
        config: format and weights; a missing format is read from ``output``'s suffix.
        force: replace a read-only file or write through a symlink (as every output).
        measure: also evaluate the dev NLL the stored weights cost.
    Raises:
        ConfigError, MakemoreError: a bad output, format or combination, before anything is written.
    """
    from makemore import files

    config = config.for_output(str(output))
    path = files.check_output(output, force=force)
    measured = measure and run.model.trains_by_gradient
    items = None
    if measured or config.format in NEEDS_DATA:  # read the training file once for both
        from makemore.store.runs import training_data

        items = training_data(run)
    data = export_bytes(run, config, items)
    dev, cost = weights_cost(run, config.weights, items) if measured else (None, None)
    files.atomic_write_bytes(path, data)
    return Exported(path, config.format, config.weights, len(data), dev, cost)
