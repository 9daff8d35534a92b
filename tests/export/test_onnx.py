"""ONNX export (``makemore.export.onnx``) checked with onnxruntime: every neural family of the
registry, step by step as a sampler feeds it, gives PyTorch's log-probabilities; float16 weights;
the metadata; the onnxruntime+numpy sampler of ``examples/`` with torch and makemore unimportable.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

import numpy as np  # noqa: E402 (after the skip: numpy comes with the export extra here)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from conftest import labelled_pairs, make_tiny_words, write_words  # noqa: E402
from makemore import api  # noqa: E402
from makemore.errors import MakemoreError  # noqa: E402
from makemore.export.onnx import METADATA_KEY, onnx_bytes, read_metadata  # noqa: E402
from makemore.models import IGNORE_INDEX, REGISTRY  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

NEURAL = [name for name, family in REGISTRY.items() if family.model.trains_by_gradient]
COUNTING = [name for name, family in REGISTRY.items() if not family.model.trains_by_gradient]
# the first neural family of each input kind, for the labelled runs
BY_INPUT = {REGISTRY[name].model.input_kind: name for name in reversed(NEURAL)}
# small sizes for whichever of these fields a family's config has
SHRINK = {"n_embd": 8, "n_hidden": 16, "n_layers": 2, "n_layer": 2, "n_head": 2}
DEV_ITEMS = 1000  # the dev split of 10,000 items
SAMPLER = Path(__file__).resolve().parents[2] / "examples" / "onnx_sample.py"


def _small_config(family: str, options: dict | None = None):
    fields = {f.name for f in dataclasses.fields(REGISTRY[family].config)}
    return api.make_config(family, {k: v for k, v in SHRINK.items() if k in fields} | (options or {}))


def _flipped(family: str) -> dict:
    """Every true/false option of the family's config, the other way round (tied weights, no biases...)."""
    config = REGISTRY[family].config()
    switches = [f.name for f in dataclasses.fields(config) if f.type in ("bool", bool)]
    return {name: not getattr(config, name) for name in switches}


FLIPPED = [name for name in NEURAL if _flipped(name)]


class Exports:
    """Tiny runs trained (20 steps; labelled ones 400) and exported once per module: runs and file bytes."""

    def __init__(self, base: Path):
        self.base, self.cache = base, {}
        self.words = write_words(base / "words.txt", make_tiny_words(10 * DEV_ITEMS))
        pairs = labelled_pairs(10 * DEV_ITEMS, 0, "abc", "xyz")
        self.labelled = base / "labelled.txt"
        self.labelled.write_text("".join(f"{label}\t{item}\n" for label, item in pairs))

    def run(self, family: str, labelled: bool = False, flipped: bool = False):
        key = (family, labelled, flipped)
        if key not in self.cache:
            out = self.base / f"{family}-{'labelled' if labelled else 'plain'}{'-flipped' if flipped else ''}"
            data = api.DataConfig(input=str(self.labelled if labelled else self.words), labelled=labelled)
            steps = 400 if labelled else 20  # labelled: long enough to keep the labels' letters apart
            train = api.default_train_config(family, dict(steps=steps, batch_size=32, eval_interval=steps))
            model_config = _small_config(family, _flipped(family) if flipped else {})
            config = api.RunConfig(model=family, model_config=model_config, data=data, train=train)
            api.train(config, out, progress=False)
            self.cache[key] = api.load_run(out)
        return self.cache[key]

    def file(self, family: str, labelled=False, weights: str = "float32", flipped=False) -> bytes:
        key = (family, labelled, weights, flipped)
        if key not in self.cache:
            self.cache[key] = onnx_bytes(self.run(family, labelled, flipped), weights)
        return self.cache[key]


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> Exports:
    return Exports(tmp_path_factory.mktemp("onnx"))


def session(data: bytes, optimise: bool = True):
    """onnxruntime's session; ``optimise=False``: none of its graph optimisations (folds, fusions)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    if not optimise:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def dev_items(run, n: int):
    """The first ``n`` dev items of the run's data as ``(x (N, T), y (N, T))``, y -1 on padding."""
    corpus = api.training_data(run).corpus("dev").subset(torch.arange(n))
    return corpus, *corpus.sequence_batch(torch.arange(n))


def torch_logprobs(model, corpus) -> np.ndarray:
    """(targets, V) PyTorch's log-probabilities of every target of ``corpus`` (item order, then position)."""
    out = []
    with torch.no_grad():
        for x, y in model.batcher(corpus).chunks():
            logp = F.log_softmax(model(x)[0].float(), dim=-1)  # (B, V) or (B, T, V)
            out.append(logp[y != IGNORE_INDEX])
    return torch.cat(out).numpy()


def _shape(state: dict, batch: int) -> list[int]:
    return [batch if axis == "batch" else axis for axis in state["shape"]]


def onnx_logprobs(sess, meta: dict, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """(targets, V) the graph's log-probabilities, fed as a sampler does: each step's newest token
    and the state it returned (window models: the last block_size tokens, boundary-padded)."""
    x = x.numpy()
    N, T = x.shape
    outputs = [o["name"] for o in meta["outputs"]]
    padded = np.concatenate([np.zeros((N, meta["block_size"]), np.int64), x], axis=1)
    state = {s["input"]: np.zeros(_shape(s, N), "f4") for s in meta["state"]}
    steps = []
    for t in range(T):
        if meta["kind"] == "window":
            feeds = {"context": padded[:, t + 1 : t + 1 + meta["block_size"]]}
        else:
            feeds = {"token": x[:, t], **state}
        out = dict(zip(outputs, sess.run(outputs, feeds)))
        state = {s["input"]: out[s["output"]] for s in meta["state"]}
        steps.append(out["logprobs"])  # (N, V)
    return np.stack(steps, axis=1)[(y != IGNORE_INDEX).numpy()]  # (N, T, V) -> (targets, V)


def assert_parity(run, data: bytes, n: int, tol: float = 1e-5) -> None:
    corpus, x, y = dev_items(run, n)
    expected = torch_logprobs(run.model, corpus)
    got = onnx_logprobs(session(data), read_metadata(data), x, y)
    assert got.shape == expected.shape == (corpus.num_targets, run.vocab.size)
    assert np.abs(got - expected).max() <= tol


def test_mlp_parity_and_metadata(exports):
    """The default suite's check: an MLP's graph on 100 dev items, and the metadata it carries."""
    family = "mlp" if "mlp" in NEURAL else NEURAL[0]
    run, data = exports.run(family), exports.file(family)
    assert_parity(run, data, 100)
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto)
    meta = read_metadata(data)
    assert json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY]) == meta
    vocab = run.vocab
    assert meta["family"] == family and meta["kind"] == "window" and meta["weights"] == "float32"
    assert meta["config"] == dataclasses.asdict(run.config.model_config)
    assert meta["vocab"] == {"chars": list(vocab.chars), "boundary_id": 0, "labels": {}}
    assert (meta["num_chars"], meta["vocab_size"]) == (vocab.num_chars, vocab.size) == (10, 10)
    assert meta["block_size"] == run.model.block_size and meta["model_limit"] is None
    assert meta["max_length"] == max(16, 2 * run.description.data.longest_item)
    assert meta["casefold"] is run.casefolded and meta["label_counts"] == {} and meta["state"] == []
    sess = session(data)
    assert [(i.name, i.type, i.shape) for i in sess.get_inputs()] == [
        ("context", "tensor(int64)", ["batch", run.model.block_size])
    ]
    assert [(o.name, o.shape) for o in sess.get_outputs()] == [("logprobs", ["batch", vocab.size])]
    assert meta["inputs"] == [{"name": "context", "dtype": "int64", "shape": ["batch", run.model.block_size]}]


def test_bad_requests(exports, tmp_path):
    run = exports.run("mlp" if "mlp" in NEURAL else NEURAL[0])
    for weights in ("int4", "float64"):
        with pytest.raises(MakemoreError, match=f"ONNX weights '{weights}': choose from float32, float16, int8"):
            onnx_bytes(run, weights)
    with pytest.raises(MakemoreError, match="not an ONNX file"):
        read_metadata(b"\x08\x07garbage")
    plain = onnx.helper.make_model(onnx.helper.make_graph([], "empty", [], []))
    with pytest.raises(MakemoreError, match="without makemore's metadata"):
        read_metadata(plain.SerializeToString())


@pytest.mark.parametrize("family", COUNTING)
def test_count_models_are_refused(family, exports, tmp_path):
    config = api.RunConfig(model=family, data=api.DataConfig(input=str(exports.words)))
    api.train(config, tmp_path / "run", progress=False)
    with pytest.raises(MakemoreError, match=r"count model: .*--format arpa or html"):
        onnx_bytes(api.load_run(tmp_path / "run"))


@pytest.mark.slow
@pytest.mark.parametrize("family", NEURAL)
def test_every_family_matches_pytorch(family, exports):
    """1,000 dev items, every position: the graph's log-probabilities equal PyTorch's to 1e-5; the
    same run exports to the same bytes."""
    run, data = exports.run(family), exports.file(family)
    assert onnx_bytes(run) == data
    onnx.checker.check_model(onnx.load_from_string(data))
    assert_parity(run, data, DEV_ITEMS)
    meta = read_metadata(data)
    names = [i.name for i in session(data).get_inputs()]
    assert names == [i["name"] for i in meta["inputs"]]
    assert {s["input"] for s in meta["state"]} <= set(names)


@pytest.mark.slow
@pytest.mark.parametrize("family", FLIPPED)
def test_flipped_options_match_pytorch(family, exports):
    """The families' true/false options the other way round (e.g. tied weights, no biases)."""
    run, data = exports.run(family, flipped=True), exports.file(family, flipped=True)
    config = read_metadata(data)["config"]
    assert config == dataclasses.asdict(run.config.model_config)
    assert {name: config[name] for name in _flipped(family)} == _flipped(family)
    assert_parity(run, data, DEV_ITEMS)


def _rounded_to_float16(data: bytes) -> bytes:
    """The float32 file with each weight matrix or embedding (two or more dimensions) rounded to float16."""
    proto = onnx.load_from_string(data)
    for init in proto.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and len(init.dims) >= 2:
            array = onnx.numpy_helper.to_array(init).astype(np.float16).astype(np.float32)
            init.CopyFrom(onnx.numpy_helper.from_array(array, init.name))
    return proto.SerializeToString()


def _weight_bytes(data: bytes) -> dict[int, int]:
    """Bytes of the file's weight matrices and embeddings (two or more dimensions) per ONNX data type."""
    out: dict[int, int] = {}
    for init in onnx.load_from_string(data).graph.initializer:
        if len(init.dims) >= 2 and init.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16):
            out[init.data_type] = out.get(init.data_type, 0) + len(init.raw_data)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("family", NEURAL)
def test_float16_weights(family, exports):
    """float16 weights: half the weights' bytes, the float32 graph's maths on the rounded weights,
    and a dev NLL within 0.001 nats of float32's."""
    run, full, half = exports.run(family), exports.file(family), exports.file(family, weights="float16")
    assert read_metadata(half)["weights"] == "float16"
    assert _weight_bytes(half) == {onnx.TensorProto.FLOAT16: _weight_bytes(full)[onnx.TensorProto.FLOAT] // 2}
    corpus, x, y = dev_items(run, DEV_ITEMS)
    meta = read_metadata(full)
    got = onnx_logprobs(session(half), meta, x, y)
    assert np.abs(got - onnx_logprobs(session(_rounded_to_float16(full)), meta, x, y)).max() <= 1e-6
    targets = y[y != IGNORE_INDEX].numpy()
    rows = np.arange(targets.size)
    nll_full = -torch_logprobs(run.model, corpus)[rows, targets].mean()
    assert abs(-got[rows, targets].mean() - nll_full) <= 1e-3


def _matrix_bytes(data: bytes) -> dict[int, int]:
    """Bytes of the file's matrices (two or more axes longer than 1) per ONNX data type."""
    out: dict[int, int] = {}
    for init in onnx.load_from_string(data).graph.initializer:
        if sum(d > 1 for d in init.dims) >= 2:
            out[init.data_type] = out.get(init.data_type, 0) + len(init.raw_data)
    return out


def check_int8(run, full: bytes, small: bytes, n: int) -> None:
    """int8 weights: every matrix stored as int8 (a quarter of its float32 bytes); the graph computes
    PyTorch's log-probabilities with the page's int8 weights, with and without onnxruntime's
    optimisations (which must not turn the maths into an integer matmul)."""
    from makemore.export.bundle import dequantized_state_dict

    onnx.checker.check_model(onnx.load_from_string(small))
    meta = read_metadata(small)
    assert meta["weights"] == "int8"
    assert _matrix_bytes(small) == {onnx.TensorProto.INT8: _matrix_bytes(full)[onnx.TensorProto.FLOAT] // 4}
    corpus, x, y = dev_items(run, n)
    original = {k: v.clone() for k, v in run.model.state_dict().items()}
    run.model.load_state_dict(dequantized_state_dict(run, "int8"))
    try:
        expected = torch_logprobs(run.model, corpus)
    finally:
        run.model.load_state_dict(original)
    for optimise in (True, False):
        assert np.abs(onnx_logprobs(session(small, optimise), meta, x, y) - expected).max() <= 1e-5
    assert np.abs(torch_logprobs(run.model, corpus) - expected).max() > 1e-5  # the weights were rounded


def test_mlp_int8_weights(exports):
    family = "mlp" if "mlp" in NEURAL else NEURAL[0]
    check_int8(exports.run(family), exports.file(family), exports.file(family, weights="int8"), 100)


@pytest.mark.slow
@pytest.mark.parametrize("family", NEURAL)
def test_int8_weights(family, exports):
    run = exports.run(family)
    check_int8(run, exports.file(family), exports.file(family, weights="int8"), DEV_ITEMS)
    assert exports.file(family, weights="int8") == onnx_bytes(run, "int8")  # the same bytes again
    assert run.model.state_dict().keys() == exports.run(family).model.state_dict().keys()


@pytest.mark.slow
@pytest.mark.parametrize("input_kind", sorted(BY_INPUT))
def test_labelled_run(input_kind, exports):
    """Label tokens are start tokens: the graph takes them like any token, and the metadata has them."""
    family = BY_INPUT[input_kind]
    run, data = exports.run(family, labelled=True), exports.file(family, labelled=True)
    meta = read_metadata(data)
    assert meta["vocab"]["labels"] == {"hi": run.vocab.num_chars, "lo": run.vocab.num_chars + 1}
    assert meta["label_counts"] == run.label_counts and sum(meta["label_counts"].values()) == 8 * DEV_ITEMS
    assert meta["vocab_size"] == meta["num_chars"] + 2
    assert_parity(run, data, DEV_ITEMS)


def run_sampler(path: Path, *args) -> list[str]:
    """``examples/onnx_sample.py`` in a fresh interpreter where torch and makemore cannot be imported."""
    code = (
        "import runpy, sys; sys.modules['torch'] = None; sys.modules['makemore'] = None; "
        f"sys.argv = sys.argv[1:]; runpy.run_path({str(SAMPLER)!r}, run_name='__main__')"
    )
    argv = [sys.executable, "-c", code, str(SAMPLER), str(path), *map(str, args)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split("\n")[:-1]


@pytest.mark.slow
@pytest.mark.parametrize("family", NEURAL)
def test_example_sampler(family, exports, tmp_path):
    """The onnxruntime+numpy example samples items of the vocabulary's characters, one seed one result."""
    path = tmp_path / "model.onnx"
    path.write_bytes(exports.file(family))
    meta = read_metadata(path.read_bytes())
    items = run_sampler(path, "-n", 30, "--seed", 1)
    assert len(items) == 30 and all(items)
    assert all(set(item) <= set(meta["vocab"]["chars"]) and len(item) <= meta["max_length"] for item in items)
    assert run_sampler(path, "-n", 30, "--seed", 1) == items
    assert run_sampler(path, "-n", 30, "--seed", 2, "--temperature", 0.7) != items


@pytest.mark.slow
def test_example_sampler_labels(exports, tmp_path):
    """A labelled model: --label picks the start token; the labels' letters never mix."""
    family = BY_INPUT["sequence"] if "sequence" in BY_INPUT else NEURAL[0]
    path = tmp_path / "labelled.onnx"
    path.write_bytes(exports.file(family, labelled=True))
    for label, letters in (("lo", "abc"), ("hi", "xyz")):
        items = run_sampler(path, "-n", 20, "--seed", 0, "--label", label, "--temperature", 0.5)
        assert len(items) == 20 and all(set(item) <= set(letters) for item in items), (label, items)
