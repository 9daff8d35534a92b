"""The run directory: its file names, checkpoints best/last, metrics rows and run.json."""

from __future__ import annotations

import json

import pytest
import torch

from makemore.errors import ConfigError, MakemoreError
from makemore.store.rundir import RunDir


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


def _two_runs(tmp_path, words_file, other_words=None):
    from conftest import tiny_mlp_config, write_words
    from makemore import api

    first, second = tmp_path / "first", tmp_path / "second"
    api.train(tiny_mlp_config(words_file, steps=20, eval_interval=10), first, progress=False)
    other = write_words(tmp_path / "other.txt", other_words) if other_words else words_file
    api.train(tiny_mlp_config(other, steps=20, eval_interval=10, seed=7), second, progress=False)
    return first, second


def test_every_checkpoint_and_run_json_record_one_run_id_kept_across_resume(tmp_path, words_file):
    from conftest import tiny_mlp_config
    from makemore import api
    from makemore.store.checkpoint import read_meta

    first, second = _two_runs(tmp_path, words_file)
    ids = {read_meta(first / f"{which}.safetensors")["run_id"] for which in ("best", "last")}
    ids.add(json.loads((first / "run.json").read_text())["run_id"])
    assert len(ids) == 1 and len(next(iter(ids))) == 32
    assert read_meta(second / "last.safetensors")["run_id"] not in ids  # another seed: another run
    api.train(tiny_mlp_config(words_file, steps=20, eval_interval=10), tmp_path / "again", progress=False)
    assert read_meta(tmp_path / "again" / "last.safetensors")["run_id"] in ids  # the same recipe: the same run
    api.resume(first, steps=30, progress=False)
    assert read_meta(first / "last.safetensors")["run_id"] in ids
    assert api.load_run(first).meta["run_id"] in ids


@pytest.mark.parametrize("which", ["best", "last"])
def test_a_checkpoint_copied_in_from_another_run_is_refused(tmp_path, words_file, which):
    from makemore import api

    first, second = _two_runs(tmp_path, words_file)
    (second / f"{which}.safetensors").write_bytes((first / f"{which}.safetensors").read_bytes())
    with pytest.raises(MakemoreError, match=rf"{which}.safetensors: belongs to another run \(run id"):
        api.load_run(second, which)
    if which == "last":
        with pytest.raises(MakemoreError, match="belongs to another run"):
            api.resume(second, steps=30, progress=False)
    api.load_run(first, which)  # the original still loads


def test_a_checkpoint_whose_vocabulary_is_not_the_directorys_is_refused(tmp_path, words_file):
    run_dir = RunDir(tmp_path / "run")
    run_dir.create(overwrite=False)
    meta = {"run_id": "a" * 32, "vocab": {"chars": "ab"}, "state": {"step": 1}}
    run_dir.save("last", model_state={"w": torch.zeros(2)}, meta=meta)
    run_dir.save("best", model_state={"w": torch.zeros(2)}, meta={**meta, "vocab": {"chars": "abc"}})
    path, ckpt = run_dir.load("best")
    with pytest.raises(MakemoreError, match="best.safetensors: its vocabulary is not this run's"):
        run_dir.check_identity(path, ckpt.meta)
    last_path, last = run_dir.load("last")
    run_dir.check_identity(last_path, last.meta)  # run.json and last agree
    run_dir.run_json.unlink()  # then last is the directory's own description
    with pytest.raises(MakemoreError, match="its vocabulary is not this run's"):
        run_dir.check_identity(path, ckpt.meta)


def test_overwrite_replaces_a_run_but_refuses_a_directory_of_other_files(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes\n")
    with pytest.raises(ConfigError, match="holds files but no run") as info:
        RunDir(mine).check_new(overwrite=True)
    assert "(--overwrite replaces" in info.value.render(lambda f: f"--{f}")
    RunDir(mine).check_new(overwrite=False)  # a new run beside them is what was asked
    left = tmp_path / "left"  # a run killed before its first checkpoint leaves only its own files
    left.mkdir()
    (left / "metrics.jsonl").write_text("")
    (left / "tensorboard").mkdir()
    RunDir(left).check_new(overwrite=True)
    run_dir = RunDir(tmp_path / "run")
    run_dir.create(overwrite=False)
    save(run_dir, "last", 3)
    (run_dir.path / "plot.png").write_bytes(b"png")  # a run with the user's plot in it is still a run
    run_dir.check_new(overwrite=True)
