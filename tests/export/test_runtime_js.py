"""The JavaScript runtime (export/web/runtime.js) in Node, against PyTorch: for every family of the
registry, a small trained run's ``.mjs`` module (export/js.py) gives the same next-token
log-probabilities for 200 dev prefixes to 1e-4; float16 and int8 bundles give those of PyTorch running
on the dequantized weights (so the JavaScript maths is checked apart from what quantization costs).
The node test files in tests/export/js/ run from here too."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import labelled_pairs, make_tiny_words, write_words
from makemore import api
from makemore.export import bundle as B
from makemore.export import js
from makemore.models import REGISTRY

NODE = shutil.which("node")
JS_DIR = Path(__file__).parent / "js"
RUNTIME = Path(js.__file__).parent / "web" / "runtime.js"
TOLERANCE = 1e-4
pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node (Node 20) is not on PATH: the JavaScript runtime cannot run"),
    pytest.mark.usefixtures("one_thread"),
]

# A small config of every family (test_every_family_has_a_small_config keeps it complete).
SMALL: dict[str, dict] = {
    "ngram": dict(order=3, smoothing="kneser-ney"),
    "bigram": dict(),
    "mlp": dict(block_size=3, n_embd=6, n_hidden=24, n_layers=2),
    "bn-mlp": dict(block_size=3, n_embd=6, n_hidden=24, n_layers=2),
    "wavenet": dict(block_size=4, n_embd=6, n_hidden=16),
    "rnn": dict(n_embd=6, n_hidden=16, n_layers=2),
    "gru": dict(n_embd=6, n_hidden=16, n_layers=2),
    "lstm": dict(n_embd=6, n_hidden=16, n_layers=2),
    "transformer": dict(n_layer=2, n_head=2, n_embd=16),
}
TRAIN = dict(steps=20, batch_size=32, eval_interval=20, log_interval=10)


def train(tmp_path: Path, family: str, lines: list[str], labelled: bool = False) -> api.Run:
    path = write_words(tmp_path / "words.txt", lines)
    config = api.RunConfig(
        model=family,
        model_config=api.make_config(family, SMALL[family]),
        data=api.DataConfig(input=str(path), labelled=labelled),
        train=api.default_train_config(family, TRAIN),
    )
    api.train(config, tmp_path / "run", progress=False)
    return api.load_run(tmp_path / "run")


def dev_prefixes(run: api.Run, n: int = 200) -> list[str]:
    """Every prefix (from "" to the whole item) of the dev items, then the test items: the first ``n``."""
    split = api.training_data(run).split
    prefixes = [item[:t] for item in split.dev + split.test for t in range(len(item) + 1)]
    assert len(prefixes) >= n
    return prefixes[:n]


def node_log_probs(tmp_path: Path, prefixes: list[str], label: str | None = None, **source) -> tuple[np.ndarray, str]:
    """``(rows (n, V), engine)``: nextLogProbs in Node of ``module=`` a .mjs file, or of ``runtime=``
    runtime.js with ``bundle=`` a JSON file (and ``simd=``)."""
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps(
            {
                "prefixes": prefixes,
                "label": label,
                **{k: str(v) if isinstance(v, Path) else v for k, v in source.items()},
            }
        )
    )
    done = subprocess.run(
        [NODE, str(JS_DIR / "next_log_probs.mjs"), str(request)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    rows = np.frombuffer(base64.b64decode(out["data"]), dtype="<f4").reshape(out["rows"], out["vocab"])
    return rows, out["engine"]


@torch.no_grad()
def torch_log_probs(model, run: api.Run, prefixes: list[str], label: str | None = None) -> np.ndarray:
    """PyTorch's log_softmax of the model's next-token logits after each prefix (read after its start token)."""
    start = run.vocab.label_id(label) if label is not None else 0
    ids = {c: i + 1 for i, c in enumerate(run.vocab.chars)}
    out = np.zeros((len(prefixes), run.vocab.size), dtype=np.float32)
    for length in sorted({len(p) for p in prefixes}):
        rows = [i for i, p in enumerate(prefixes) if len(p) == length]
        idx = torch.tensor([[start, *(ids[c] for c in prefixes[i])] for i in rows])  # (B, 1 + length)
        logits, _ = model.next_token_logits(idx)
        out[rows] = torch.log_softmax(logits.float(), dim=-1).numpy()
    return out


def assert_parity(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    finite = np.isfinite(want)
    assert (np.isfinite(got) == finite).all() and (got[~finite] == want[~finite]).all()
    error = np.abs(got[finite] - want[finite]).max()
    assert error <= TOLERANCE, f"max |JS - PyTorch| = {error:.3g}"


def check_module(tmp_path: Path, run: api.Run, weights: str, labels: list[str | None]) -> None:
    """The module of ``run`` with ``weights`` against PyTorch on its dequantized weights, per label."""
    module = tmp_path / f"{weights}.mjs"
    module.write_bytes(js.module_bytes(run, weights))
    model = run.model if weights == "float32" else B.dequantized_model(run, weights)
    prefixes = dev_prefixes(run)
    for label in labels:
        got, _ = node_log_probs(tmp_path, prefixes, label, module=module)
        assert_parity(got, torch_log_probs(model, run, prefixes, label))


def test_every_family_has_a_small_config():
    assert set(SMALL) == set(REGISTRY)


def test_the_mlp_module_and_both_engines_match_pytorch(tmp_path, trained_run):
    run = api.load_run(trained_run.out_dir)
    check_module(tmp_path, run, "float32", [None])
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(B.bundle_dict(run, "int8")))
    prefixes = dev_prefixes(run)
    want = torch_log_probs(B.dequantized_model(run, "int8"), run, prefixes)
    for simd, engine in [(True, "wasm-simd"), (False, "js")]:
        got, used = node_log_probs(tmp_path, prefixes, runtime=RUNTIME, bundle=bundle, simd=simd)
        assert used == engine
        assert_parity(got, want)


def test_the_module_scores_items_as_makemore_score_does(tmp_path, trained_run):
    run = api.load_run(trained_run.out_dir)
    module = tmp_path / "m.mjs"
    module.write_bytes(js.module_bytes(run))
    items = api.training_data(run).split.dev[:8]
    call = f"{json.dumps(items)}.map((w) => score(w))"
    script = f"import {{score}} from {json.dumps(module.as_uri())}; console.log(JSON.stringify({call}))"
    done = subprocess.run([NODE, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    want = [s.nll for s in api.score(run, items)]
    np.testing.assert_allclose(json.loads(done.stdout), want, atol=TOLERANCE)


def test_the_node_test_files_pass(tmp_path, trained_run):
    module = tmp_path / "m.mjs"
    module.write_bytes(js.module_bytes(api.load_run(trained_run.out_dir), "float16"))
    env = {**os.environ, "MAKEMORE_TEST_MODULE": str(module)}
    files = [str(JS_DIR / "runtime.test.mjs"), str(JS_DIR / "module.test.mjs")]
    done = subprocess.run([NODE, "--test", *files], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout and "# skipped 0" in done.stdout and "# pass 11" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("family", list(REGISTRY))
def test_every_family_matches_pytorch_for_every_weight_type(tmp_path, family):
    run = train(tmp_path, family, make_tiny_words())
    for weights in B.WEIGHT_TYPES:
        check_module(tmp_path, run, weights, [None])
    if run.model.trains_by_gradient:  # larger weights: saturated tanh, GELU's tails, peaked attention
        with torch.no_grad():
            for weight in run.model.parameters():
                weight.mul_(8.0 if weight.dim() == 2 else 1.0)
        check_module(tmp_path, run, "float32", [None])


@pytest.mark.slow
@pytest.mark.parametrize("family", ["lstm", "mlp"])
def test_a_labelled_run_matches_pytorch_for_each_label(tmp_path, family):
    pairs = labelled_pairs(400, seed=3, low="abcde", high="vwxyz")
    run = train(tmp_path, family, [f"{label}\t{item}" for label, item in pairs], labelled=True)
    assert run.vocab.label_names == ("hi", "lo")
    check_module(tmp_path, run, "float32", ["hi", "lo"])
