"""A trained run as one JSON object (the *bundle*) that ``web/runtime.js`` loads in a browser or Node.

The bundle holds what the JavaScript runtime needs and nothing it would have to guess::

    format: "makemore-bundle", version: 1, family, config (the model config as JSON),
    weights: "float32" | "float16" | "int8" (what was asked),
    vocab: {chars: [one string per character, token ids 1..], labels: [sorted label names]},
    graph: the layers to run, naming tensors (see below),
    tensors: name -> {shape, dtype, data: base64 little-endian[, scale: base64 float32, int8 only]},
    meta: {name, casefold, longest_item, dev_nll, label_counts, known}

``graph`` says how the tensors are used, one of three kinds the runtime knows: ``window`` (a
list of layers over the last ``block_size`` tokens: embed, flatten, linear, batchnorm, tanh,
table), ``recurrent`` (embedding, RNN/GRU/LSTM layers as PyTorch's ``nn.RNN``/``nn.GRU``/
``nn.LSTM`` compute them, output layer) and ``transformer``. Which graph a model gives is
decided per model class (``_GRAPHS``); a count model (ngram) ships its whole log-probability
table, one row per possible context, read like a window model.

Weights: ``float32`` as trained; ``float16`` casts every 2-D tensor; ``int8`` stores each row
of a 2-D tensor (weight matrices, embeddings, an ngram table) as ``round(w / s)`` with one
symmetric scale ``s = max|row| / 127`` per row, so the value used is ``q * s`` (an error of at
most ``s / 2`` per weight). 1-D tensors (biases, norm gains, BatchNorm statistics) stay
float32 in every case: they are few, and a norm's statistics are sensitive.
``dequantized_state_dict`` gives the float32 tensors the runtime computes with, and
``dequantized_model`` a model that computes with them, to measure what a weight type costs.

"New only" without shipping the training items: ``meta.known`` is the base64 of the sorted,
distinct unsigned 64-bit FNV-1a hashes (little-endian) of the UTF-8 bytes of every item of the
run's training file (the items ``makemore sample --new-only`` checks against: the whole file,
as ``Data.known_items``). A new item whose hash equals one of ``n`` training hashes is taken as
known by mistake with probability about ``n / 2**64`` (about 1.7e-15 for 32,000 names): no
item the model generates will, in practice, be dropped or marked wrongly.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from makemore.data.corpus import BOUNDARY
from makemore.data.datasets import Data
from makemore.errors import MakemoreError
from makemore.models.base import Dropout, WindowModel
from makemore.models.bigram import BigramModel
from makemore.models.layers import BatchNorm
from makemore.models.mlp import MLP
from makemore.models.ngram import NGramModel
from makemore.models.rnn import RNNModel
from makemore.models.transformer import Transformer
from makemore.models.wavenet import FlattenConsecutive, WaveNet
from makemore.store.runs import Run, training_data

FORMAT, VERSION = "makemore-bundle", 1
WEIGHT_TYPES = ("float32", "float16", "int8")
MAX_TABLE_ENTRIES = 1 << 22  # an ngram's dense table: 16 MiB of float32 log-probabilities at most
FNV_OFFSET, FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3
_FLOAT16_MAX = 65504.0
TABLE = "table"  # the tensor name of a count model's dense log-probability table
_BATCHNORM = dict(gain="gain", bias="bias", mean="running_mean", var="running_var")  # graph key -> tensor
# a transformer block's parts: graph key -> module path in the block
_BLOCK = dict(ln_1="ln_1", attn="attn.c_attn", proj="attn.c_proj", ln_2="ln_2", fc="mlp.c_fc", fc_proj="mlp.c_proj")


# ---------------------------------------------------------------------------------------------- graphs


def _sequential(layers: nn.Sequential, prefix: str) -> list[dict[str, Any]]:
    """The window-graph layers of an ``nn.Sequential`` whose tensors are named ``prefix.i.*``."""
    out = []
    for i, module in enumerate(layers):
        name = f"{prefix}.{i}"
        if isinstance(module, nn.Linear):
            out.append(_linear(module, name))
        elif isinstance(module, BatchNorm):  # evaluation: the running statistics
            names = {key: f"{name}.{attr}" for key, attr in _BATCHNORM.items()}
            out.append(dict(op="batchnorm", eps=module.eps, **names))
        elif isinstance(module, nn.Tanh):
            out.append(dict(op="tanh"))
        elif isinstance(module, FlattenConsecutive):
            out.append(dict(op="flatten", n=module.n))
        elif not isinstance(module, (Dropout, nn.Dropout)):  # dropout is off in evaluation
            raise MakemoreError(f"cannot export layer {type(module).__name__} of {prefix}")
    return out


def _linear(module: nn.Linear, name: str) -> dict[str, Any]:
    return dict(op="linear", weight=f"{name}.weight", bias=f"{name}.bias" if module.bias is not None else None)


def _bigram_graph(model: BigramModel) -> dict[str, Any]:
    return dict(kind="window", block_size=1, layers=[dict(op="embed", weight="W")])  # logits = W[prev]


def _mlp_graph(model: MLP) -> dict[str, Any]:
    layers = [dict(op="embed", weight="C.weight"), dict(op="flatten", n=model.block_size)]  # (B, 1, block * E)
    layers += _sequential(model.hidden, "hidden") + [_linear(model.out, "out")]
    return dict(kind="window", block_size=model.block_size, layers=layers)


def _wavenet_graph(model: WaveNet) -> dict[str, Any]:
    layers = [dict(op="embed", weight="wte.weight"), *_sequential(model.layers, "layers")]
    return dict(kind="window", block_size=model.block_size, layers=[*layers, _linear(model.lm_head, "lm_head")])


def _ngram_graph(model: NGramModel) -> dict[str, Any]:
    # the context's tokens read as one number in base V (newest last): its row of the table
    return dict(kind="window", block_size=model.block_size, layers=[dict(op="table", weight=TABLE)])


def _recurrent_graph(model: RNNModel) -> dict[str, Any]:
    layers = [
        {key: f"rnn.{i}.{key}_l0" for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        for i in range(len(model.rnn))
    ]
    return dict(
        kind="recurrent", cell=model.cell, embedding="wte.weight", layers=layers, head=_linear(model.lm_head, "lm_head")
    )


def _layer_norm(module: nn.LayerNorm, name: str) -> dict[str, Any]:
    bias = f"{name}.bias" if module.bias is not None else None
    return dict(weight=f"{name}.weight", bias=bias, eps=module.eps)


def _part(module: nn.Module, name: str) -> dict[str, Any]:
    return _layer_norm(module, name) if isinstance(module, nn.LayerNorm) else _linear(module, name)


def _transformer_graph(model: Transformer) -> dict[str, Any]:
    blocks = [
        {key: _part(block.get_submodule(path), f"blocks.{i}.{path}") for key, path in _BLOCK.items()}
        for i, block in enumerate(model.blocks)
    ]
    head = dict(op="linear", weight="wte.weight" if model.lm_head is None else "lm_head.weight", bias=None)
    gelu = model.blocks[0].mlp.act.approximate if len(model.blocks) else "none"  # "none" (erf) or "tanh"
    return dict(
        kind="transformer",
        n_head=model.config.n_head,
        block_size=model.block_size,
        wte="wte.weight",
        wpe="wpe.weight",
        blocks=blocks,
        ln_f=_layer_norm(model.ln_f, "ln_f"),
        head=head,
        gelu=gelu,
    )


# model class -> its graph; looked up along the class's bases, so BatchNormMLP is an MLP
_GRAPHS = {
    NGramModel: _ngram_graph,
    BigramModel: _bigram_graph,
    MLP: _mlp_graph,
    WaveNet: _wavenet_graph,
    RNNModel: _recurrent_graph,
    Transformer: _transformer_graph,
}


def _graph_of(model: nn.Module) -> dict[str, Any]:
    for cls in type(model).__mro__:
        if cls in _GRAPHS:
            return _GRAPHS[cls](model)
    raise MakemoreError(f"cannot export a {type(model).__name__}: no JavaScript graph for it")


# ---------------------------------------------------------------------------------------------- tensors


@torch.no_grad()
def dense_table(model: NGramModel) -> torch.Tensor:
    """A count model's ``(V ** (order - 1), V)`` log-probabilities of every possible context.

    Row ``r`` is the context whose tokens, read as a number in base ``V`` (newest token last),
    make ``r``: exactly the logits ``forward`` gives for it.

    Raises:
        MakemoreError: the table would have more than ``MAX_TABLE_ENTRIES`` entries.
    """
    V, block = model.vocab_size, model.block_size
    rows = V**block
    if rows * V > MAX_TABLE_ENTRIES:
        raise MakemoreError(
            f"ngram order {model.order} with {V} tokens: its table of {V}^{block} x {V} = {rows * V:,} "
            f"log-probabilities is too large to export (at most {MAX_TABLE_ENTRIES:,}): use a lower order"
        )
    ids = torch.arange(rows, dtype=torch.int64)
    powers = torch.tensor([V ** (block - 1 - j) for j in range(block)], dtype=torch.int64)
    contexts = (ids[:, None] // powers) % V  # (rows, block): digits, oldest first
    logits, _ = model(contexts)
    return logits.to(torch.float32)


def _float_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The float32 tensors the runtime reads: the state dict, or a count model's dense table."""
    if isinstance(model, NGramModel):
        return {TABLE: dense_table(model)}
    return {name: t.detach().to(torch.float32).cpu() for name, t in model.state_dict().items()}


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(array.tobytes()).decode("ascii")


def _int8_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row symmetric int8: ``(q (R, C) int8, scale (R,) float32)`` with ``w ~ q * scale[:, None]``."""
    scale = (np.abs(w).max(axis=1) / np.float32(127)).astype(np.float32)  # (R,)
    safe = np.where(scale > 0, scale, np.float32(1))  # an all-zero row: q = 0, scale 0
    q = np.clip(np.rint(w / safe[:, None]), -127, 127).astype(np.int8)
    return q, scale


def encode_tensor(name: str, t: torch.Tensor, weights: str) -> dict[str, Any]:
    """One tensor as the bundle stores it (``weights`` applies to 2-D tensors only).

    Raises:
        MakemoreError: a value the weight type cannot hold (NaN; infinity in int8; beyond
            float16's range).
    """
    w = np.ascontiguousarray(t.detach().cpu().numpy().astype("<f4"))
    spec: dict[str, Any] = {"shape": list(w.shape)}
    if np.isnan(w).any():
        raise MakemoreError(f"cannot export tensor {name}: it holds NaN")
    if w.ndim != 2 or weights == "float32":
        return spec | {"dtype": "float32", "data": _b64(w)}
    finite = np.isfinite(w)
    if weights == "float16":
        if np.abs(w[finite]).max(initial=0.0) > _FLOAT16_MAX:
            raise MakemoreError(f"cannot export tensor {name} as float16: it holds values beyond ±65504")
        return spec | {"dtype": "float16", "data": _b64(w.astype("<f2"))}
    if not finite.all():
        raise MakemoreError(f"cannot export tensor {name} as int8: it holds infinite values (use float32 or float16)")
    q, scale = _int8_rows(w)
    return spec | {"dtype": "int8", "data": _b64(q), "scale": _b64(scale.astype("<f4"))}


def decode_tensor(spec: dict[str, Any]) -> torch.Tensor:
    """The float32 tensor the runtime computes with for one stored tensor (as ``runtime.js`` decodes it)."""
    raw = base64.b64decode(spec["data"])
    shape = tuple(spec["shape"])
    dtype = spec["dtype"]
    if dtype == "int8":
        q = np.frombuffer(raw, dtype=np.int8).reshape(shape).astype(np.float32)
        scale = np.frombuffer(base64.b64decode(spec["scale"]), dtype="<f4")
        w = q * scale[:, None]  # float32 products: exact in the runtime's doubles, then rounded alike
    else:
        w = np.frombuffer(raw, dtype="<f4" if dtype == "float32" else "<f2").reshape(shape).astype(np.float32)
    return torch.from_numpy(np.array(w, dtype=np.float32))


def _check_weights(weights: str) -> None:
    if weights not in WEIGHT_TYPES:
        raise MakemoreError(f"unknown weight type {weights!r} (choose from: {', '.join(WEIGHT_TYPES)})")


def dequantized_state_dict(run: Run, weights: str = "float32") -> dict[str, torch.Tensor]:
    """The float32 tensors the JavaScript runtime computes with for ``weights``.

    Args:
        run: a loaded run.
        weights: "float32", "float16" or "int8".
    Returns:
        name -> float32 tensor: the model's state dict (a count model: ``{"table": its dense table}``).
    """
    _check_weights(weights)
    return {name: decode_tensor(encode_tensor(name, t, weights)) for name, t in _float_tensors(run.model).items()}


class DenseTableModel(WindowModel):
    """A window model that reads its logits from a dense ``(V ** block_size, V)`` table (an exported ngram)."""

    def __init__(self, table: torch.Tensor, block_size: int, config: Any):
        super().__init__()
        self.config, self.block_size, self.vocab_size = config, block_size, table.size(1)
        self.register_buffer("table", table)
        powers = [self.vocab_size ** (block_size - 1 - j) for j in range(block_size)]
        self.register_buffer("powers", torch.tensor(powers, dtype=torch.int64), persistent=False)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.table[(idx * self.powers).sum(1)]  # (B, V)
        return logits, self.loss_from_logits(logits, targets)


def dequantized_model(run: Run, weights: str = "float32") -> WindowModel | nn.Module:
    """A copy of the run's model that computes with ``dequantized_state_dict(run, weights)``, in eval mode.

    A count model becomes a ``DenseTableModel`` of its table. For the dev NLL a weight type costs.
    """
    state = dequantized_state_dict(run, weights)
    if isinstance(run.model, NGramModel):
        return DenseTableModel(state[TABLE], run.model.block_size, run.model.config).eval()
    model = copy.deepcopy(run.model)
    model.load_state_dict(state)
    return model.eval()


# ---------------------------------------------------------------------------------------------- known items


def fnv1a64(data: bytes) -> int:
    """FNV-1a 64 of ``data`` (one item; the bulk version is ``known_hashes``)."""
    h = FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def _utf8(codepoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 of ``(M,)`` code points: ``(bytes (K,) uint8, source (K,) index of each byte's code point)``."""
    cp = codepoints.astype(np.int64)
    n = 1 + (cp >= 0x80) + (cp >= 0x800) + (cp >= 0x10000)  # (M,) bytes per code point
    i = np.arange(4)[None, :]  # (1, 4) byte index within the code point
    shift = 6 * (n[:, None] - 1 - i)  # (M, 4): the bits that byte i carries
    lead = np.array([0, 0, 0xC0, 0xE0, 0xF0])[n][:, None]  # (M, 1)
    bits = cp[:, None] >> np.maximum(shift, 0)  # (M, 4)
    body = np.where(i == 0, lead | bits, 0x80 | (bits & 0x3F))
    used = i < n[:, None]  # (M, 4)
    return body[used].astype(np.uint8), np.nonzero(used)[0]


def known_hashes(data: Data) -> np.ndarray:
    """Sorted distinct FNV-1a 64 hashes (uint64) of the UTF-8 bytes of every item of ``data``'s file.

    Vectorised over items: one step per byte position (the longest item's bytes), none per item.
    """
    items, vocab = data.items, data.items_vocab
    tokens = items.tokens.numpy().astype(np.int64)  # (M,) "0 w1 0 w2 0 ..."
    boundary = tokens == BOUNDARY
    lut = np.array([0, *(ord(c) for c in vocab.chars)], dtype=np.int64)
    item_of_token = np.cumsum(boundary) - 1  # (M,) the item each character belongs to
    chars = np.nonzero(~boundary)[0]
    raw, source = _utf8(lut[tokens[chars]])
    item = item_of_token[chars][source]  # (K,) each byte's item
    first = np.searchsorted(item, np.arange(len(items)))  # (n,) each item's first byte (items are in order)
    position = np.arange(raw.size) - first[item]  # (K,) byte index within its item
    order = np.argsort(position, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(position, minlength=1))])
    h = np.full(len(items), FNV_OFFSET, dtype=np.uint64)
    prime = np.uint64(FNV_PRIME)
    for j in range(bounds.size - 1):  # all the items' j-th bytes at once (an item has at most one)
        at = order[bounds[j] : bounds[j + 1]]
        rows = item[at]
        h[rows] = (h[rows] ^ raw[at].astype(np.uint64)) * prime  # wraps modulo 2**64
    return np.unique(h)


# ---------------------------------------------------------------------------------------------- the bundle


def _dev_nll(run: Run) -> float | None:
    metrics = run.description.metrics
    value = metrics.get("dev_loss", metrics.get("best_dev_loss"))
    return float(value) if value is not None and math.isfinite(value) else None  # JSON has no infinity


def bundle_dict(run: Run, weights: str = "float32", *, data: Data | None = None) -> dict[str, Any]:
    """The bundle (JSON-ready) of a loaded run, for ``web/runtime.js``'s ``makemoreLoad``.

    Args:
        run: a loaded run (any family).
        weights: "float32", "float16" or "int8" (see the module docstring).
        data: the run's training data already read (``training_data(run)``); else read again.
    Returns:
        the bundle as a dict of JSON values (``json.dumps`` writes it as it is).
    Raises:
        MakemoreError: an unknown weight type, a table too large to export, values the weight
            type cannot hold, or the training file is missing or changed (for ``meta.known``).
    """
    _check_weights(weights)
    model = run.model
    graph = _graph_of(model)
    tensors = {name: encode_tensor(name, t, weights) for name, t in _float_tensors(model).items()}
    data = data or training_data(run)
    vocab = run.vocab
    return {
        "format": FORMAT,
        "version": VERSION,
        "family": run.config.model,
        "config": dataclasses.asdict(run.config.model_config),
        "weights": weights,
        "vocab": {"chars": list(vocab.chars), "labels": list(vocab.label_names)},
        "max_length": model.position_limit,
        "graph": graph,
        "tensors": tensors,
        "meta": {
            "name": run.path.parent.name,
            "casefold": run.casefolded,
            "longest_item": run.description.data.longest_item,
            "dev_nll": _dev_nll(run),
            "label_counts": run.label_counts,
            "known": _b64(known_hashes(data).astype("<u8")),
        },
    }
