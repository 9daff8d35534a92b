"""ONNX export of a trained neural model: next-character log-probabilities for a batch of contexts.

``onnx_bytes(run)`` returns one self-contained ``.onnx`` file (weights inside, no external
data) made by ``torch.onnx.export`` (the dynamo exporter) from a small export-only wrapper
module that calls the model's own layers. Each kind of model gets the graph that makes
generation linear in an item's length:

* ``window`` (window models): ``context`` int64 ``(B, block_size)`` -> ``logprobs`` ``(B, V)``.
* ``recurrent`` (RNN/GRU/LSTM): ``token`` ``(B,)`` and the state ``h`` (and ``c``) ``(L, B, H)``
  -> ``logprobs`` and the new state ``h_out`` (``c_out``); the first state is zeros.
* ``transformer``: ``token`` ``(B,)`` and a KV cache ``past_keys``/``past_values``
  ``(n_layer, B, n_head, P, head_size)`` (``P`` tokens seen, 0 at first) -> ``logprobs`` and the
  cache with the token appended (``present_keys``/``present_values``, ``P + 1``).

``logprobs`` is ``log_softmax`` over every token id (label tokens included, as ``makemore score``
computes it); a sampler never draws ids ``>= num_chars``. The file's ``metadata_props`` hold
the key ``makemore``: a JSON document (``metadata``) with the vocabulary, the labels, the
model's config and the graph's inputs, outputs and initial state, so a sampler needs nothing
else (``examples/onnx_sample.py``, ``docs/export-onnx.md``).

Written by hand, and why: the wrappers below (the exporter traces ``forward``, and the models'
``forward`` reads whole items: one step with a state or a cache is what sampling needs; the
models' own KV cache is a Python object that grows in place, which a graph cannot hold);
``float16`` weights (the exporter writes float32: the initializers are converted here and cast
back to float32 inside the graph, so every op still runs in float32 on any runtime); ``int8``
weights (the model is exported with the page's int8-rounded weights loaded, then each weight
matrix is stored as int8 with one float32 scale per row, multiplied back in front of its use:
the exporter lays some matrices out anew (transposed, gates reordered), so the axis of the
scales is found per initializer, and kept only where it rebuilds the weights exactly).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import logging
import re
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from makemore import __version__
from makemore.errors import MakemoreError
from makemore.export.onnx_weights import float16_weights, int8_weights
from makemore.models.base import LanguageModel, WindowModel
from makemore.models.rnn import RNNModel
from makemore.models.transformer import Transformer
from makemore.store.runs import Run

FORMAT = "makemore-onnx"
FORMAT_VERSION = 1
METADATA_KEY = "makemore"
WEIGHTS = ("float32", "float16", "int8")
BATCH = "batch"  # the name of the batch axis in shapes
EXAMPLE_BATCH = 3  # traced batch and cache sizes: not 0 or 1, which the exporter would fix
EXAMPLE_PAST = 2
_GENERATED = re.compile(r"val_\d+")  # the exporter's names of intermediate values


class WindowGraph(nn.Module):
    """Export-only: a window model's log-probabilities for a batch of contexts."""

    def __init__(self, model: WindowModel):
        super().__init__()
        self.model = model

    def forward(self, context: torch.Tensor) -> torch.Tensor:  # (B, block_size) -> (B, V)
        logits, _ = self.model(context)
        return F.log_softmax(logits, dim=-1)


class RecurrentStep(nn.Module):
    """Export-only: one step of a recurrent model over its layers, the state in and out.

    ``forward`` of the model runs whole (packed) items; sampling feeds one token at a time,
    so this calls the embedding, each layer (a one-step input) and the head itself.
    """

    def __init__(self, model: RNNModel):
        super().__init__()
        self.model = model
        self.paired = model.cell == "lstm"  # an (h, c) state

    def forward(self, token: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None = None):
        x = self.model.wte(token).unsqueeze(1)  # (B, 1, n_embd)
        hs, cs = [], []
        for i, layer in enumerate(self.model.rnn):
            state = (h[i : i + 1], c[i : i + 1]) if self.paired else h[i : i + 1]  # (1, B, H)
            x, state = layer(x, state)  # (B, 1, H)
            hs.append(state[0] if self.paired else state)
            if self.paired:
                cs.append(state[1])
        logprobs = F.log_softmax(self.model.lm_head(x[:, 0]), dim=-1)  # (B, V)
        if self.paired:
            return logprobs, torch.cat(hs), torch.cat(cs)  # (B, V), (L, B, H), (L, B, H)
        return logprobs, torch.cat(hs)


class TransformerStep(nn.Module):
    """Export-only: one token of a Transformer with its KV cache as tensors in and out.

    The model's ``KVCache`` grows a Python-held buffer in place; here the cache is an input of
    dynamic length ``P`` and the output is the cache with this token's keys and values
    appended. The one new query sees every cached key, so attention needs no mask.
    """

    def __init__(self, model: Transformer):
        super().__init__()
        self.model = model

    def forward(self, token: torch.Tensor, past_keys: torch.Tensor, past_values: torch.Tensor):
        m = self.model
        x = m.wte(token) + m.wpe.weight[past_keys.size(3)]  # (B, C): the token at position P
        keys, values = [], []
        for i, block in enumerate(m.blocks):
            attn = block.attn
            C, nh = x.size(-1), attn.n_head
            q, k, v = (t.reshape(-1, nh, 1, C // nh) for t in attn.c_attn(block.ln_1(x)).split(C, dim=-1))
            k = torch.cat([past_keys[i], k], dim=2)  # (B, nh, P + 1, hs)
            v = torch.cat([past_values[i], v], dim=2)
            keys.append(k)
            values.append(v)
            y = F.scaled_dot_product_attention(q, k, v)  # (B, nh, 1, hs)
            x = x + attn.c_proj(y.reshape(-1, C))  # eval mode: no dropout
            x = x + block.mlp(block.ln_2(x))
        logprobs = F.log_softmax(m._head(x), dim=-1)  # (B, V)
        return logprobs, torch.stack(keys), torch.stack(values)  # (L, B, nh, P + 1, hs) each


@dataclasses.dataclass(frozen=True)
class GraphSpec:
    """What to trace and how the graph's inputs and outputs are named and shaped."""

    kind: str
    module: nn.Module
    inputs: dict[str, tuple[torch.Tensor, list]]  # name -> (example, shape with BATCH/str axes)
    outputs: dict[str, list]  # name -> shape
    state: list[dict[str, Any]]  # {"input", "output", "shape"} of each state tensor (0-size axis: empty)


def _window_spec(model: WindowModel) -> GraphSpec:
    context = torch.zeros(EXAMPLE_BATCH, model.block_size, dtype=torch.int64)
    return GraphSpec(
        "window",
        WindowGraph(model),
        {"context": (context, [BATCH, model.block_size])},
        {"logprobs": [BATCH, model.vocab_size]},
        [],
    )


def _recurrent_spec(model: RNNModel) -> GraphSpec:
    L, H = len(model.rnn), model.config.n_hidden
    names = ["h", "c"] if model.cell == "lstm" else ["h"]
    inputs = {"token": (torch.zeros(EXAMPLE_BATCH, dtype=torch.int64), [BATCH])}
    inputs |= {n: (torch.zeros(L, EXAMPLE_BATCH, H), [L, BATCH, H]) for n in names}
    outputs = {"logprobs": [BATCH, model.vocab_size]} | {f"{n}_out": [L, BATCH, H] for n in names}
    state = [{"input": n, "output": f"{n}_out", "shape": [L, BATCH, H]} for n in names]
    return GraphSpec("recurrent", RecurrentStep(model), inputs, outputs, state)


def _transformer_spec(model: Transformer) -> GraphSpec:
    c = model.config
    L, nh, hs = c.n_layer, c.n_head, c.n_embd // c.n_head
    inputs = {"token": (torch.zeros(EXAMPLE_BATCH, dtype=torch.int64), [BATCH])}
    # one example tensor each: the exporter would take one tensor passed twice for one input
    shape, example = [L, BATCH, nh, "past", hs], (L, EXAMPLE_BATCH, nh, EXAMPLE_PAST, hs)
    inputs |= {f"past_{n}": (torch.zeros(example), shape) for n in ("keys", "values")}
    outputs = {"logprobs": [BATCH, model.vocab_size]}
    outputs |= {f"present_{n}": [L, BATCH, nh, "past + 1", hs] for n in ("keys", "values")}
    empty = [L, BATCH, nh, 0, hs]  # nothing seen yet
    state = [{"input": f"past_{n}", "output": f"present_{n}", "shape": empty} for n in ("keys", "values")]
    return GraphSpec("transformer", TransformerStep(model), inputs, outputs, state)


# Which graph a model class exports to (the first class of its MRO found here): the per-family
# part of the export, kept to this table.
GRAPHS: dict[type, Callable[[Any], GraphSpec]] = {
    WindowModel: _window_spec,
    RNNModel: _recurrent_spec,
    Transformer: _transformer_spec,
}


def graph_spec(model: LanguageModel) -> GraphSpec:
    """The export graph of ``model`` (in eval mode).

    Raises:
        MakemoreError: a count model (no graph: its tables export as ARPA or HTML) or a model
            class with no entry in ``GRAPHS``.
    """
    if not model.trains_by_gradient:
        raise MakemoreError(
            f"{type(model).__name__} is a count model: ONNX export is for neural models (use --format arpa or html)"
        )
    for cls in type(model).__mro__:
        if cls in GRAPHS:
            return GRAPHS[cls](model)
    raise MakemoreError(f"no ONNX export for {type(model).__name__} yet")


def _check_extra() -> None:
    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise MakemoreError(f"ONNX export needs {', '.join(missing)}: pip install 'makemore[export]'")


@contextlib.contextmanager
def _quiet():
    """Silence the exporter's warnings and log lines (progress, torchvision, deprecations)."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _export(spec: GraphSpec):
    """The traced graph of ``spec`` as an ``onnx.ModelProto`` (batch and cache length dynamic)."""
    dims: dict[str, torch.export.Dim] = {}
    dynamic = {}
    for name, (_, shape) in spec.inputs.items():
        named = [(i, a) for i, a in enumerate(shape) if isinstance(a, str)]
        dynamic[name] = {i: dims.setdefault(a, torch.export.Dim(a, min=0)) for i, a in named}
    args = tuple(example for example, _ in spec.inputs.values())
    with _quiet(), torch.no_grad():
        program = torch.onnx.export(
            spec.module.eval(),
            args,
            dynamo=True,
            input_names=list(spec.inputs),
            output_names=list(spec.outputs),
            dynamic_shapes=dynamic,
            external_data=False,
            verbose=False,
        )
    proto = program.model_proto
    _strip_trace_notes(proto)
    _number_values(proto)
    return proto


def _strip_trace_notes(proto) -> None:
    """Drop the exporter's per-node notes (stack traces with this machine's file paths, FX
    nodes, name scopes): debugging aids that were most of a small model's file."""
    graph = proto.graph
    for item in [*graph.node, *graph.value_info, *graph.initializer, *graph.input, *graph.output]:
        del item.metadata_props[:]
        item.doc_string = ""


def _number_values(proto) -> None:
    """Renumber the exporter's ``val_<n>`` names in order of appearance and name each node after
    its output: its counters carry on from one export to the next in a process, and the same run
    should give the same bytes."""
    graph, names = proto.graph, {}

    def name(old: str) -> str:
        if not _GENERATED.fullmatch(old):
            return old
        return names.setdefault(old, f"val_{len(names)}")

    for init in graph.initializer:
        init.name = name(init.name)
    for node in graph.node:
        node.input[:] = [name(n) for n in node.input]
        node.output[:] = [name(n) for n in node.output]
        node.name = f"node_{node.output[0]}"  # outputs are unique: so are the nodes' names
    for info in graph.value_info:
        info.name = name(info.name)


def metadata(run: Run, spec: GraphSpec, weights: str) -> dict[str, Any]:
    """The JSON document stored under ``makemore`` in the file's ``metadata_props``."""
    vocab, model, data = run.vocab, run.model, run.description.data
    limit = model.position_limit
    default_len = max(16, 2 * data.longest_item)  # what ``makemore sample`` uses
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "makemore_version": __version__,
        "family": run.config.model,
        "kind": spec.kind,
        "config": dataclasses.asdict(run.config.model_config),
        "weights": weights,
        "vocab": {
            "chars": list(vocab.chars),  # character of id i + 1
            "boundary_id": 0,
            "labels": {name: vocab.label_id(name) for name in vocab.label_names},  # label -> its start token
        },
        "vocab_size": vocab.size,
        "num_chars": vocab.num_chars,  # ids 0 .. num_chars - 1 may be drawn; label tokens never
        "label_counts": dict(data.label_counts),  # training items per label: the prior of a label
        "block_size": model.block_size,
        "model_limit": limit,  # most characters the model can read or generate (null: none)
        "max_length": default_len if limit is None else min(default_len, limit),
        "casefold": data.casefolded,  # fold what users type to lower case
        "inputs": [{"name": n, "dtype": _dtype(x), "shape": s} for n, (x, s) in spec.inputs.items()],
        "outputs": [{"name": n, "dtype": "float32", "shape": s} for n, s in spec.outputs.items()],
        "state": [dict(s, dtype="float32", initial="zeros") for s in spec.state],
    }


def _dtype(x: torch.Tensor) -> str:
    return str(x.dtype).removeprefix("torch.")


def onnx_bytes(run: Run, weights: str = "float32") -> bytes:
    """A complete ONNX file of a trained neural model (see the module's docstring).

    Args:
        run: a loaded run (``load_run``).
        weights: "float32", "float16" (stored as float16, computed in float32) or "int8"
            (the page's per-row int8 rounding, computed in float32).
    Returns:
        the file's bytes (weights inside, metadata under ``makemore``).
    Raises:
        MakemoreError: a count model, an unsupported ``weights``, the export extra missing.
    """
    if weights not in WEIGHTS:
        raise MakemoreError(f"ONNX weights {weights!r}: choose from {', '.join(WEIGHTS)}")
    model = run.model
    spec = graph_spec(model)
    _check_extra()
    if any(t.device.type != "cpu" for t in model.state_dict().values()):
        raise MakemoreError("ONNX export needs the run loaded on the CPU (load_run(..., device='cpu'))")
    was_training = model.training
    original = {k: v.clone() for k, v in model.state_dict().items()} if weights == "int8" else None
    try:
        if original is not None:  # the exporter folds and re-lays the weights: give it the rounded ones
            from makemore.export.bundle import dequantized_state_dict

            model.load_state_dict(dequantized_state_dict(run, weights))
        proto = _export(spec)
    finally:
        model.train(was_training)
        if original is not None:
            model.load_state_dict(original)
    if weights == "float16":
        float16_weights(proto)
    elif weights == "int8":
        int8_weights(proto)
    proto.doc_string = f"makemore {run.config.model}: next-character log-probabilities"
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata(run, spec, weights), ensure_ascii=False)
    return proto.SerializeToString()


def read_metadata(data: bytes) -> dict[str, Any]:
    """The ``makemore`` metadata of an ONNX file's bytes.

    Raises:
        MakemoreError: not an ONNX file, or one without makemore's metadata.
    """
    _check_extra()
    import onnx
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError):
        raise MakemoreError("not an ONNX file (it does not parse)") from None
    for entry in proto.metadata_props:
        if entry.key == METADATA_KEY:
            meta = json.loads(entry.value)
            if isinstance(meta, dict) and meta.get("format") == FORMAT:
                return meta
    raise MakemoreError(f"an ONNX file without makemore's metadata (no {METADATA_KEY!r} entry)")
