"""The run directory: its file names, checkpoints best/last, metrics rows and run.json."""

from __future__ import annotations

import json

import pytest
import torch

from makemore.errors import ConfigError, MakemoreError
from makemore.rundir import RunDir


def save(run_dir: RunDir, which: str, step: int) -> None:
    run_dir.save(which, model_state={"w": torch.full((2,), float(step))}, meta={"state": {"step": step}})


def test_names():
    run_dir = RunDir("runs/x")
    assert run_dir.checkpoint("best").name == "best.safetensors"
    assert run_dir.checkpoint("last").name == "last.safetensors"
    names = (run_dir.metrics_path.name, run_dir.run_json.name, run_dir.tensorboard_dir.name)
    assert names == ("metrics.jsonl", "run.json", "tensorboard")
    with pytest.raises(MakemoreError, match="unknown checkpoint 'first'"):
        run_dir.checkpoint("first")


def test_a_new_run_refuses_a_directory_that_holds_one_unless_overwriting(tmp_path):
    run_dir = RunDir(tmp_path / "run")
    run_dir.check_new(overwrite=False)
    assert not run_dir.path.exists()  # checking writes nothing
    run_dir.create(overwrite=False)
    save(run_dir, "last", 3)
    run_dir.append_metrics({"step": 1, "train_loss": 2.0})
    with pytest.raises(ConfigError, match="already holds a run") as info:
        run_dir.check_new(overwrite=False)
    assert info.value.render(lambda f: f"--{f}").endswith("(--resume continues it, --overwrite replaces it)")
    run_dir.check_new(overwrite=True)
    run_dir.create(overwrite=True)
    assert list(run_dir.path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(MakemoreError, match="not a directory"):
        RunDir(tmp_path / "file").check_new(overwrite=True)


def test_a_new_run_drops_rows_left_by_a_run_that_never_saved(tmp_path):
    run_dir = RunDir(tmp_path)
    run_dir.append_metrics({"step": 5, "train_loss": 1.0})
    run_dir.create(overwrite=False)
    assert run_dir.read_metrics() is None


def test_last_also_writes_run_json_and_best_falls_back_to_last(tmp_path):
    run_dir = RunDir(tmp_path)
    save(run_dir, "last", 4)
    assert json.loads(run_dir.run_json.read_text()) == {"state": {"step": 4}}
    path, ckpt = run_dir.load("best")  # no best yet: the last one
    assert path.name == "last.safetensors" and ckpt.meta["state"]["step"] == 4
    save(run_dir, "best", 2)
    assert json.loads(run_dir.run_json.read_text()) == {"state": {"step": 4}}  # best does not touch it
    path, ckpt = run_dir.load("best")
    assert path.name == "best.safetensors" and torch.equal(ckpt.model_state["w"], torch.full((2,), 2.0))
    with pytest.raises(MakemoreError, match="no such run directory"):
        RunDir(tmp_path / "missing").load()
    (tmp_path / "empty").mkdir()
    with pytest.raises(MakemoreError, match="no checkpoint"):
        RunDir(tmp_path / "empty").load()


def test_metrics_rows_append_read_and_truncate(tmp_path):
    run_dir = RunDir(tmp_path)
    rows = [{"step": s, "train_loss": 1.0 / s} for s in (1, 2, 3, 4)]
    for row in rows:
        run_dir.append_metrics(row)
    assert run_dir.read_metrics() == rows
    with open(run_dir.metrics_path, "a") as fh:
        fh.write('{"step": 5, "tra')  # a row cut short by a kill
    with pytest.raises(MakemoreError, match=r"metrics\.jsonl:5: not a metrics row"):
        run_dir.read_metrics()
    run_dir.truncate_metrics(2)  # a run resumed at step 2 rewrites what came after
    assert run_dir.read_metrics() == rows[:2]
    run_dir.metrics_path.write_text("[1, 2]\n")
    with pytest.raises(MakemoreError, match=r"metrics\.jsonl:1:"):
        run_dir.read_metrics()
