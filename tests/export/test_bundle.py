"""The bundle the JavaScript runtime loads (makemore.export.bundle): weight types and their exact error
bounds, the hashes of the training items for "new only", the JSON itself, and what is refused."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch

from conftest import write_words
from makemore import api
from makemore.errors import MakemoreError
from makemore.export import bundle as B

pytestmark = pytest.mark.usefixtures("one_thread")


def train_ngram(tmp_path, words, **options):
    """A count model trained (counted) on ``words``: quick."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = write_words(tmp_path / "words.txt", words)
    config = api.RunConfig(
        model="ngram", model_config=api.make_config("ngram", options), data=api.DataConfig(input=str(path))
    )
    api.train(config, tmp_path / "run", progress=False)
    return api.load_run(tmp_path / "run")


def decode(spec) -> np.ndarray:
    return B.decode_tensor(spec).numpy()


def test_fnv1a64_gives_the_published_test_vectors():
    assert B.fnv1a64(b"") == 0xCBF29CE484222325
    assert B.fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert B.fnv1a64(b"foobar") == 0x85944171F73967E8


def test_known_hashes_are_the_sorted_distinct_hashes_of_every_item_of_the_file(tmp_path):
    # 1-, 2-, 3- and 4-byte UTF-8 characters, repeats, and items of the dev and test splits too
    words = ["anna", "é", "zoë", "x€y", "😀", "ab😀c", "anna", "bob", "é", *[f"n{i}" for i in range(40)]]
    data = api.load_data(api.DataConfig(input=str(write_words(tmp_path / "w.txt", words))))
    hashes = B.known_hashes(data)
    assert hashes.dtype == np.uint64
    assert hashes.tolist() == sorted({B.fnv1a64(w.encode("utf-8")) for w in words})
    assert (np.diff(hashes) > 0).all()


def test_int8_keeps_each_row_within_half_its_scale():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 33, generator=g) * torch.tensor([1.0, 10.0, 1e-3, 0.0, 5.0, 1.0])[:, None]
    w[4] = -w[4].abs()  # a row whose largest magnitude is negative
    spec = B.encode_tensor("w", w, "int8")
    assert spec["dtype"] == "int8" and spec["shape"] == [6, 33]
    scale = np.frombuffer(base64.b64decode(spec["scale"]), dtype="<f4")
    np.testing.assert_array_equal(scale, (w.abs().amax(1) / 127).numpy())  # float32 division, exact
    q = np.frombuffer(base64.b64decode(spec["data"]), dtype=np.int8).reshape(6, 33)
    assert np.abs(q).max(1).tolist() == [127, 127, 127, 0, 127, 127]  # each row's extreme is +-127
    got, want = decode(spec), w.numpy()
    np.testing.assert_array_equal(got, q.astype(np.float32) * scale[:, None])
    assert (np.abs(got - want) <= scale[:, None] / 2 * (1 + 1e-6) + 1e-12).all()
    assert (got[3] == 0).all() and scale[3] == 0


def test_float16_rounds_each_weight_to_nearest_and_one_dimensional_tensors_stay_exact():
    w = torch.randn(5, 7, generator=torch.Generator().manual_seed(1)) * 3
    spec = B.encode_tensor("w", w, "float16")
    assert spec["dtype"] == "float16"
    np.testing.assert_array_equal(decode(spec), w.half().float().numpy())
    assert (np.abs(decode(spec) - w.numpy()) <= np.abs(w.numpy()) * 2.0**-11).all()
    bias = torch.randn(7) / 3
    for weights in B.WEIGHT_TYPES:
        spec = B.encode_tensor("b", bias, weights)
        assert spec["dtype"] == "float32"
        np.testing.assert_array_equal(decode(spec), bias.numpy())


def test_a_bundle_is_json_and_holds_the_model_as_it_is(trained_run):
    run = api.load_run(trained_run.out_dir)
    bundle = B.bundle_dict(run)
    again = json.loads(json.dumps(bundle, allow_nan=False))
    assert again == bundle
    assert (bundle["format"], bundle["version"], bundle["family"], bundle["weights"]) == (
        "makemore-bundle",
        1,
        "mlp",
        "float32",
    )
    assert bundle["config"]["n_hidden"] == 16 and bundle["graph"]["kind"] == "window"
    assert bundle["vocab"] == {"chars": list(run.vocab.chars), "labels": []}
    meta = bundle["meta"]
    assert meta["casefold"] is True and meta["longest_item"] == max(map(len, trained_run.words))
    assert meta["dev_nll"] == pytest.approx(run.description.metrics["dev_loss"])
    known = np.frombuffer(base64.b64decode(meta["known"]), dtype="<u8")
    assert known.tolist() == sorted({B.fnv1a64(w.encode()) for w in trained_run.words})
    state = run.model.state_dict()
    assert set(bundle["tensors"]) == set(state)
    exact = B.dequantized_state_dict(run, "float32")
    assert all(torch.equal(exact[name], state[name]) for name in state)


def test_dequantized_models_cost_a_little_dev_nll(trained_run):
    run = api.load_run(trained_run.out_dir)
    dev = api.training_data(run).corpus("dev")
    X, Y = run.model.batcher(dev).chunks(1 << 20).__next__()
    nll = {}
    with torch.no_grad():
        for weights in B.WEIGHT_TYPES:
            _, loss = B.dequantized_model(run, weights)(X, Y)
            nll[weights] = float(loss)
        assert nll["float32"] == pytest.approx(float(run.model(X, Y)[1]), abs=1e-6)
    assert abs(nll["float16"] - nll["float32"]) < 1e-3
    assert abs(nll["int8"] - nll["float32"]) < 2e-2


def test_a_count_model_ships_its_dense_table(tmp_path, tiny_words):
    run = train_ngram(tmp_path, tiny_words, order=3, smoothing="kneser-ney")
    V = run.vocab.size
    bundle = B.bundle_dict(run, "float16")
    assert bundle["graph"] == {"kind": "window", "block_size": 2, "layers": [{"op": "table", "weight": "table"}]}
    assert bundle["tensors"]["table"]["shape"] == [V * V, V]
    contexts = torch.randint(0, V, (50, 2), generator=torch.Generator().manual_seed(2))
    table = B.dense_table(run.model)
    np.testing.assert_array_equal(table[contexts[:, 0] * V + contexts[:, 1]], run.model(contexts)[0])
    model = B.dequantized_model(run, "float32")
    assert torch.equal(model(contexts)[0], run.model(contexts)[0])


def test_what_cannot_be_exported_is_refused_in_one_line(tmp_path, tiny_words, trained_run):
    run = api.load_run(trained_run.out_dir)
    with pytest.raises(MakemoreError, match=r"^unknown weight type 'int4' \(choose from: float32, float16, int8\)$"):
        B.bundle_dict(run, "int4")
    with pytest.raises(MakemoreError, match="int4"):
        B.dequantized_state_dict(run, "int4")
    with pytest.raises(
        MakemoreError,
        match=r"ngram order 8 with 10 tokens: its table of 10\^7 x 10 = 100,000,000 log-probabilities is too large "
        r"to export \(at most 4,194,304\): use a lower order$",
    ):
        B.bundle_dict(train_ngram(tmp_path / "big", tiny_words, order=8), "float32")
    unsmoothed = train_ngram(tmp_path / "k0", tiny_words, order=3, k=0.0)  # -inf for what it never saw
    with pytest.raises(MakemoreError, match="tensor table as int8: it holds infinite values"):
        B.bundle_dict(unsmoothed, "int8")
    assert json.dumps(B.bundle_dict(unsmoothed, "float16"), allow_nan=False)  # -inf is bytes in float16
    with pytest.raises(MakemoreError, match=r"tensor w as float16: it holds values beyond ±65504"):
        B.encode_tensor("w", torch.tensor([[1.0, 7e4]]), "float16")
    with pytest.raises(MakemoreError, match="tensor w: it holds NaN"):
        B.encode_tensor("w", torch.tensor([float("nan")]), "float32")
