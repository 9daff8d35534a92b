"""Checkpoints: one safetensors file with weights, optimizer and RNG state and JSON metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save_file

from makemore import files
from makemore.errors import MakemoreError
from makemore.files import atomic_write_text
from makemore.models.configs import MLPConfig
from makemore.models.mlp import MLP
from makemore.store import checkpoint
from makemore.store.checkpoint import (
    CHECKSUM_KEY,
    FORMAT_VERSION,
    load_checkpoint,
    read_meta,
    save_checkpoint,
    tensors_sha256,
)

V = 7


def make_model(seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP(MLPConfig(block_size=3, n_embd=4, n_hidden=8), V)


def make_optimizer(model):
    """AdamW with two parameter groups, like the trainer's."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=0.01, betas=(0.9, 0.99)
    )


def batches(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randint(0, V, (16, 3), generator=g), torch.randint(0, V, (16,), generator=g)) for _ in range(n)]


def train_steps(model, optimizer, data):
    for x, y in data:
        optimizer.zero_grad(set_to_none=True)
        _, loss = model(x, y)
        loss.backward()
        optimizer.step()


META = {
    "model": {"kind": "mlp", "config": {"block_size": 3, "n_embd": 4}},
    "vocab": {"chars": "ab.- é", "boundary_id": 0},
    "metrics": {"dev_loss": 2.25, "best": None, "list": [1, 2.5, "x"]},
    "text": 'zoé ␃ \n "quoted"',
    "state": {"step": 3},
}


def test_round_trip_model_optimizer_rng_and_meta(tmp_path):
    model = make_model()
    optimizer = make_optimizer(model)
    train_steps(model, optimizer, batches(3, seed=1))
    gen = torch.Generator().manual_seed(5)
    torch.rand(3, generator=gen)
    rng = {"torch": torch.get_rng_state(), "batches": gen.get_state()}
    path = tmp_path / "last.safetensors"
    save_checkpoint(
        path, model_state=model.state_dict(), meta=META, optimizer_state=optimizer.state_dict(), rng_state=rng
    )

    ckpt = load_checkpoint(path)
    assert ckpt.meta == {**META, "format_version": FORMAT_VERSION}
    # model state: same names, values and dtypes
    state = model.state_dict()
    assert set(ckpt.model_state) == set(state)
    for name, value in state.items():
        assert torch.equal(ckpt.model_state[name], value), name
        assert ckpt.model_state[name].dtype == value.dtype
    # RNG states restore exactly
    assert set(ckpt.rng_state) == {"torch", "batches"}
    assert torch.equal(ckpt.rng_state["torch"], rng["torch"])
    gen2 = torch.Generator()
    gen2.set_state(ckpt.rng_state["batches"])
    assert torch.equal(torch.rand(5, generator=gen2), torch.rand(5, generator=gen))

    # optimizer state: load into a fresh model + optimizer, then keep training both
    model2 = make_model(seed=99)
    model2.load_state_dict(ckpt.model_state)
    optimizer2 = make_optimizer(model2)
    optimizer2.load_state_dict(ckpt.optimizer_state)
    more = batches(3, seed=2)
    train_steps(model, optimizer, more)
    train_steps(model2, optimizer2, more)
    for (name, p1), (_, p2) in zip(model.named_parameters(), model2.named_parameters()):
        assert torch.equal(p1, p2), name
    # JSON turns the betas tuple into a list; otherwise the groups are the same
    groups = [json.loads(json.dumps(o.state_dict()["param_groups"])) for o in (optimizer, optimizer2)]
    assert groups[0] == groups[1]


def test_optimizer_state_tensors_round_trip(tmp_path):
    model = make_model()
    optimizer = make_optimizer(model)
    train_steps(model, optimizer, batches(2, seed=3))
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model_state=model.state_dict(), meta={}, optimizer_state=optimizer.state_dict())
    loaded = load_checkpoint(path).optimizer_state
    original = optimizer.state_dict()
    assert sorted(loaded["state"]) == sorted(original["state"])
    for pid, pstate in original["state"].items():
        assert set(loaded["state"][pid]) == set(pstate)
        for key, value in pstate.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(loaded["state"][pid][key], value), (pid, key)
            else:
                assert loaded["state"][pid][key] == value
    assert [g["params"] for g in loaded["param_groups"]] == [g["params"] for g in original["param_groups"]]


def test_sgd_momentum_state_round_trip(tmp_path):
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train_steps(model, optimizer, batches(2, seed=4))
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model_state=model.state_dict(), meta={}, optimizer_state=optimizer.state_dict())
    model2 = make_model(seed=1)
    model2.load_state_dict(load_checkpoint(path).model_state)
    optimizer2 = torch.optim.SGD(model2.parameters(), lr=0.1, momentum=0.9)
    optimizer2.load_state_dict(load_checkpoint(path).optimizer_state)
    more = batches(2, seed=5)
    train_steps(model, optimizer, more)
    train_steps(model2, optimizer2, more)
    for p1, p2 in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p1, p2)


def test_without_optimizer_and_rng(tmp_path):
    model = make_model()
    path = tmp_path / "best.safetensors"
    save_checkpoint(path, model_state=model.state_dict(), meta={"a": 1})
    ckpt = load_checkpoint(path)
    assert ckpt.optimizer_state is None
    assert ckpt.rng_state == {}
    assert ckpt.meta == {"a": 1, "format_version": FORMAT_VERSION}


def test_non_contiguous_and_shared_tensors(tmp_path):
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    state = {"t": base.t(), "same": base, "view": base[1]}  # transposed view and shared storage
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model_state=state, meta={})
    loaded = load_checkpoint(path).model_state
    for name, value in state.items():
        assert torch.equal(loaded[name], value), name


def test_meta_round_trip_via_read_meta(tmp_path):
    path = tmp_path / "c.safetensors"
    model = make_model()
    optimizer = make_optimizer(model)
    train_steps(model, optimizer, batches(1, seed=0))
    save_checkpoint(path, model_state=model.state_dict(), meta=META, optimizer_state=optimizer.state_dict())
    meta = read_meta(path)
    assert meta["format_version"] == FORMAT_VERSION
    assert {k: meta[k] for k in META} == META
    assert meta["optimizer"]["param_groups"][0]["weight_decay"] == 0.1
    # the JSON document lives in the safetensors header under the "makemore" key
    raw = path.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    stored = json.loads(header["__metadata__"]["makemore"])
    # plus the checksum of the tensors, which read_meta leaves out (it is about the tensors)
    assert stored == {**meta, CHECKSUM_KEY: tensors_sha256(load_safetensors_bytes(raw))}


def test_save_does_not_mutate_meta(tmp_path):
    meta = {"a": 1}
    save_checkpoint(tmp_path / "c.safetensors", model_state={"w": torch.zeros(2)}, meta=meta)
    assert meta == {"a": 1}


def test_read_meta_reads_only_the_header(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model_state={"w": torch.zeros(1000)}, meta={"a": "b"})

    def refuse(*args, **kwargs):
        raise AssertionError("read_meta must not load the tensors")

    monkeypatch.setattr(checkpoint, "load_safetensors_bytes", refuse)
    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert read_meta(path) == {"a": "b", "format_version": FORMAT_VERSION}


# -- atomic writes (the writer itself is tested in test_files.py) -----------------------------


def test_no_temp_files_left(tmp_path):
    path = tmp_path / "last.safetensors"
    for i in range(2):
        save_checkpoint(path, model_state={"w": torch.full((3,), float(i))}, meta={"i": i})
    atomic_write_text(tmp_path / "run.json", "{}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.safetensors", "run.json"]
    assert load_checkpoint(path).meta["i"] == 1
    assert (tmp_path / "run.json").read_text() == "{}\n"


def test_failed_replace_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, model_state={"w": torch.zeros(3)}, meta={"version": "old"})
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", broken_replace)
    with pytest.raises(OSError):
        save_checkpoint(path, model_state={"w": torch.ones(3)}, meta={"version": "new"})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]
    assert read_meta(path)["version"] == "old"


# -- bad files ------------------------------------------------------------------------------


def bad_files(tmp_path):
    good = tmp_path / "good.safetensors"
    save_checkpoint(good, model_state={"w": torch.zeros(100)}, meta={"a": 1})
    raw = good.read_bytes()
    files = {
        "empty": b"",
        "text": b"emma\nolivia\nava\n" * 10,
        "garbage": bytes(range(256)) * 4,
        "huge_header": (10**12).to_bytes(8, "little") + b"{}",
        "truncated": raw[: len(raw) - 50],
    }
    paths = []
    for name, data in files.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(data)
        paths.append(path)
    no_meta = tmp_path / "no_meta.safetensors"
    save_file({"w": torch.zeros(2)}, str(no_meta))
    bad_json = tmp_path / "bad_json.safetensors"
    save_file({"w": torch.zeros(2)}, str(bad_json), metadata={"makemore": "{not json"})
    return paths + [no_meta, bad_json, tmp_path / "missing.safetensors", tmp_path]


@pytest.mark.parametrize("reader", [read_meta, load_checkpoint])
def test_bad_files_raise_makemore_error(tmp_path, reader):
    for path in bad_files(tmp_path):
        with pytest.raises(MakemoreError) as exc:
            reader(path)
        assert str(path) in str(exc.value), path
        assert "\n" not in str(exc.value)


def _tensor_offset(raw: bytes) -> int:
    return 8 + int.from_bytes(raw[:8], "little")


def test_a_flipped_bit_in_the_tensor_data_is_refused(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model_state={"w": torch.linspace(-1, 1, 64)}, meta={"a": 1})
    raw = bytearray(path.read_bytes())
    for position in (0, 100, len(raw) - _tensor_offset(raw) - 1):  # first, middle, last byte of the data
        flipped = bytearray(raw)
        flipped[_tensor_offset(raw) + position] ^= 0x04
        path.write_bytes(bytes(flipped))
        with pytest.raises(MakemoreError, match="do not match the checksum"):
            load_checkpoint(path)
    path.write_bytes(bytes(raw))
    assert torch.equal(load_checkpoint(path).model_state["w"], torch.linspace(-1, 1, 64))


def test_the_checksum_covers_names_dtypes_and_shapes():
    base = {"a": torch.arange(6, dtype=torch.float32)}
    digests = {
        tensors_sha256(base),
        tensors_sha256({"b": base["a"]}),
        tensors_sha256({"a": base["a"].view(2, 3)}),
        tensors_sha256({"a": base["a"].view(torch.int32)}),
    }
    assert len(digests) == 4
    assert tensors_sha256({"a": base["a"].clone()}) == tensors_sha256(base)


def test_a_checkpoint_without_its_checksum_is_refused_but_format_1_loads(tmp_path):
    path = tmp_path / "c.safetensors"
    tensors = {"model.w": torch.ones(3)}
    save_file(tensors, str(path), metadata={"makemore": json.dumps({"format_version": FORMAT_VERSION})})
    with pytest.raises(MakemoreError, match=f"{CHECKSUM_KEY}: missing"):
        load_checkpoint(path)
    save_file(tensors, str(path), metadata={"makemore": json.dumps({"format_version": 1})})
    assert torch.equal(load_checkpoint(path).model_state["w"], torch.ones(3))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_weights_that_are_not_finite_are_refused(tmp_path, bad):
    path = tmp_path / "c.safetensors"
    weights = torch.zeros(4)
    weights[2] = bad
    save_checkpoint(path, model_state={"layer.w": weights, "counts": torch.zeros(2, dtype=torch.int64)}, meta={})
    with pytest.raises(MakemoreError, match="weight layer.w is not finite"):
        load_checkpoint(path)
