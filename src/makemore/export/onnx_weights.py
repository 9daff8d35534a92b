"""Smaller weights in an ONNX file made by ``torch.onnx.export`` (which writes float32).

``float16_weights`` and ``int8_weights`` rewrite a graph's initializers in place: each weight
matrix or embedding is stored smaller and turned back into float32 at the graph's start, so
every op still computes in float32 on any runtime (onnxruntime's CPU provider lacks float16
kernels for several ops). Written by hand: the exporter has no option for stored weight types.
"""

from __future__ import annotations

from typing import Any

from makemore.errors import MakemoreError


def float16_weights(proto) -> None:
    """Store ``proto``'s float32 weights (initializers of more than one value) as float16, each
    cast back to float32 by a ``Cast`` node at the graph's start: half the file, float32 maths.

    Only matrices and embeddings (two or more dimensions) are stored in float16, as the page's
    bundle stores them: vectors and scalars (biases, norm weights, the constant the exporter folds
    from BatchNorm's ``rsqrt(var + eps)``) cost little and rounding them added 3-4e-4 to the
    BatchNorm families' log-probabilities (bench_export.py).

    Raises:
        MakemoreError: a weight too large for float16.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    casts = []
    for init in proto.graph.initializer:
        if init.data_type != TensorProto.FLOAT or len(init.dims) < 2:
            continue
        array = numpy_helper.to_array(init)
        if np.abs(array).max() > np.finfo(np.float16).max:
            raise MakemoreError(f"weight {init.name!r} is too large for float16: use --weights float32")
        name, stored = init.name, f"{init.name}.float16"
        init.CopyFrom(numpy_helper.from_array(array.astype(np.float16), stored))
        casts.append(helper.make_node("Cast", [stored], [name], to=TensorProto.FLOAT, name=f"{name}.cast"))
    nodes = list(proto.graph.node)
    del proto.graph.node[:]
    proto.graph.node.extend(casts + nodes)  # the casts first: the graph stays in topological order


def _int8_axis(array) -> tuple[int, Any, Any] | None:
    """``(axis, q, scale)`` with ``q * scale`` (scale along ``axis``) equal to ``array`` exactly, or None.

    ``array`` holds a matrix the page's int8 rounding made (``bundle.encode_tensor``): each row of
    the model's tensor is ``q * s`` with ``max |q| = 127``. The exporter may have transposed it or
    reordered its rows, so each axis is tried; none fits a constant that is not such a matrix.
    """
    import numpy as np

    if not np.isfinite(array).all():
        return None
    for axis in range(array.ndim):
        others = tuple(a for a in range(array.ndim) if a != axis)
        scale = (np.abs(array).max(axis=others) / np.float32(127)).astype(np.float32)  # (array.shape[axis],)
        shape = [1] * array.ndim
        shape[axis] = -1
        safe = np.where(scale > 0, scale, np.float32(1)).reshape(shape)
        q = np.clip(np.rint(array / safe), -127, 127).astype(np.int8)
        if np.array_equal(q.astype(np.float32) * scale.reshape(shape), array):
            return axis, q, scale
    return None


def int8_weights(proto) -> None:
    """Store ``proto``'s int8-rounded weight matrices as int8 with a float32 scale per row, each
    turned back into float32 at the graph's start by ``Cast`` and ``Mul``: a quarter of the file,
    float32 maths on exactly the weights the page computes with.

    Not ``DequantizeLinear``: onnxruntime's default optimisations fuse it with a following
    ``MatMul`` into an integer matmul that rounds the activations to 8 bits too (2.6e-3 off in
    log-probability on a small WaveNet); ``Cast`` and ``Mul`` of constants are folded into the
    float32 weights when a session loads, so the file also runs as fast as the float32 one.
    """
    from onnx import TensorProto, helper, numpy_helper

    nodes = []
    for init in proto.graph.initializer:
        if init.data_type != TensorProto.FLOAT or sum(d > 1 for d in init.dims) < 2:
            continue  # vectors (biases, norms, the recurrent ops' (1, 2n) biases) stay float32
        found = _int8_axis(numpy_helper.to_array(init))
        if found is None:
            continue
        axis, q, scale = found
        name, shape = init.name, [1] * q.ndim
        shape[axis] = -1
        init.CopyFrom(numpy_helper.from_array(q, f"{name}.int8"))
        proto.graph.initializer.append(numpy_helper.from_array(scale.reshape(shape), f"{name}.scale"))
        nodes.append(
            helper.make_node("Cast", [f"{name}.int8"], [f"{name}.q"], to=TensorProto.FLOAT, name=f"{name}.cast")
        )
        nodes.append(helper.make_node("Mul", [f"{name}.q", f"{name}.scale"], [name], name=f"{name}.scale"))
    rest = list(proto.graph.node)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes + rest)  # the weights first: the graph stays in topological order
