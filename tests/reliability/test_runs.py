"""Run directories under stress: one writer at a time, readers meanwhile, divergence, leftovers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import make_tiny_words, mlp_loss_nan_from, write_words
from makemore import api
from makemore.cli import main
from makemore.errors import MakemoreError
from makemore.store.checkpoint import read_meta

TRAIN = "--model mlp --n-embd 4 --n-hidden 16 --batch-size 16 --eval-interval 50 --log-interval 50 -q".split()
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def start_training(words: Path, run: Path, steps: int = 100000) -> subprocess.Popen:
    """A long training in another process; returns once it has written its first checkpoint."""
    cmd = [sys.executable, "-m", "makemore.cli", "train", "-i", str(words), "-o", str(run), "--steps", str(steps)]
    proc = subprocess.Popen([*cmd, *TRAIN], env=ENV, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "last.safetensors").exists():
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else "slow"
        time.sleep(0.05)
    return proc


def listing(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.is_file() and p.name != "metrics.jsonl"}


@pytest.fixture
def words(tmp_path):
    return write_words(tmp_path / "words.txt", make_tiny_words())


def test_one_writer_at_a_time_readers_any_time(words, tmp_path, capsys):
    run = tmp_path / "run"
    proc = start_training(words, run)
    try:
        pid = int((run / ".lock").read_text().split()[0])  # then the step of its first checkpoint
        assert pid == proc.pid
        assert main([str(a) for a in ["train", "-i", words, "-o", run, *TRAIN]]) == 2
        assert "already holds a run" in capsys.readouterr().err
        for args in (
            ["train", "-i", words, "-o", run, "--overwrite", *TRAIN],
            ["train", "--resume", "-o", run, "--steps", "200000", "-q"],
        ):
            code = main([str(a) for a in args])
            err = capsys.readouterr().err
            assert code == 2 and err.splitlines() == [
                f"makemore: error: {run}: another makemore process (pid {proc.pid}) is writing this run"
            ], err
            assert (run / "last.safetensors").exists()  # --overwrite deleted nothing
        for _ in range(20):  # readers need no lock, and never see a half-written checkpoint
            assert main(["sample", str(run), "-n", "3", "--which", "last"]) == 0
            assert len(capsys.readouterr().out.splitlines()) == 3
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    # the kernel released the killed writer's lock: a new writer gets it
    steps = read_meta(run / "last.safetensors")["state"]["step"] + 10
    assert main(["train", "--resume", "-o", str(run), "--steps", str(steps), "-q"]) == 0
    assert not (run / ".lock").exists()


def test_a_run_before_its_first_checkpoint_is_named_as_being_trained(words, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "-i", words, "-o", run, "--steps", "100000", *TRAIN, "--eval-interval", "90000"]
    proc = subprocess.Popen([sys.executable, "-m", "makemore.cli", *map(str, args)], env=ENV, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not (run / ".lock").exists() or not (run / ".lock").read_text().endswith("\n90000\n"):
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.05)
        before = sorted(p.name for p in run.iterdir())
        expected = f"makemore: error: {run}: being trained by pid {proc.pid}; its first checkpoint is due at step 90000"
        for argv in (
            ["sample", run, "-n", "3"],
            ["score", run, "abc"],
            ["train", "--resume", "-o", run, "--steps", "200000", "-q"],
            ["train", "-i", words, "-o", run, "--overwrite", *TRAIN],
            ["train", "-i", words, "-o", run, *TRAIN],
        ):
            code = main([str(a) for a in argv])
            out, err = capsys.readouterr()
            assert code == 2 and out == "" and len(err.splitlines()) == 1, (argv, out, err)
            assert err.startswith(expected), (argv, err)  # ", now at step N" follows once a row is logged
        assert sorted(p.name for p in run.iterdir()) == before
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    # the killed writer's lock file is stale: the directory is free again (and holds no run)
    code = main(["sample", str(run), "-n", "3"])
    assert code == 2 and "no checkpoint in this directory" in capsys.readouterr().err


@pytest.mark.slow  # two trainings at once: the lock's default-suite check is test_one_writer_at_a_time_readers_any_time
def test_two_new_runs_into_one_directory_one_is_refused(words, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "makemore.cli", "train", "-i", str(words), "-o", str(run), "--steps", "200", *TRAIN]
    procs = [subprocess.Popen(cmd, env=ENV, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = sorted((p.wait(timeout=300), p.stderr.read()) for p in procs)
    assert [code for code, _ in results] == [0, 2], results
    refusals = ("already holds a run", "another makemore process", "being trained by pid")
    assert any(refusal in results[1][1] for refusal in refusals), results[1][1]
    assert read_meta(run / "last.safetensors")["state"]["step"] == 200


def test_a_killed_write_leaves_a_temp_file_that_the_next_writer_removes(words, tmp_path):
    run = tmp_path / "run"
    api.train(_config(words, steps=4), run, progress=False)
    stale = run / ".last.safetensors.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    api.resume(run, steps=6, progress=False)
    assert not stale.exists()
    assert sorted(p.name for p in run.iterdir()) == [
        "best.safetensors",
        "last.safetensors",
        "metrics.jsonl",
        "run.json",
    ]


def _config(words: Path, **train) -> api.RunConfig:
    train = dict(dict(batch_size=16, eval_interval=2, log_interval=1), **train)
    return api.RunConfig(
        model="mlp",
        model_config=api.make_config("mlp", {"n_embd": 4, "n_hidden": 8}),
        data=api.DataConfig(input=str(words)),
        train=api.default_train_config("mlp", train),
    )


def test_divergence_before_any_checkpoint_leaves_nothing(words, tmp_path, monkeypatch):
    mlp_loss_nan_from(monkeypatch, 1)
    with pytest.raises(MakemoreError, match="before the first checkpoint, nothing is kept"):
        api.train(_config(words, steps=10), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_divergence_keeps_the_last_finite_checkpoint_and_resume_asks_for_a_change(words, tmp_path, monkeypatch):
    run = tmp_path / "run"
    mlp_loss_nan_from(monkeypatch, 5)
    with pytest.raises(MakemoreError, match="loss became nan at step 5; stopped, the last good checkpoint .step 4."):
        api.train(_config(words, steps=10), run, progress=False)
    meta = read_meta(run / "last.safetensors")
    assert meta["state"]["step"] == 4 and all(v == v for v in meta["metrics"].values())  # finite, not NaN
    monkeypatch.undo()
    with pytest.raises(MakemoreError, match="stopped at step 5 .*resume with a lower lr"):
        api.resume(run, progress=False)
    metrics = api.resume(run, lr=0.001, progress=False)  # a change: allowed
    assert metrics["steps"] == 10 and read_meta(run / "last.safetensors")["train"]["lr"] == 0.001


def test_a_dev_loss_that_is_not_finite_saves_nothing(words, tmp_path, monkeypatch):
    from makemore.train import execution

    run = tmp_path / "run"
    real = execution.evaluate_nll
    evals = iter([2.5, float("inf")])
    monkeypatch.setattr(execution, "evaluate_nll", lambda model, batcher: next(evals, None) or real(model, batcher))
    with pytest.raises(
        MakemoreError, match="dev loss became inf at step 4; stopped, the last good checkpoint .step 2."
    ):
        api.train(_config(words, steps=10), run, progress=False)
    assert read_meta(run / "last.safetensors")["metrics"]["dev_loss"] == 2.5
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1] == {"step": 4, "stopped": "dev loss became inf at step 4"}


def test_resume_of_a_finished_run_says_so(words, tmp_path):
    api.train(_config(words, steps=4), tmp_path / "run", progress=False)
    before = listing(tmp_path / "run")
    with pytest.raises(MakemoreError, match="already finished .4 of 4 steps."):
        api.resume(tmp_path / "run", progress=False)
    with pytest.raises(MakemoreError, match="already at step 4"):
        api.resume(tmp_path / "run", steps=3, progress=False)
    assert listing(tmp_path / "run") == before


def test_sample_streams_what_it_found_before_giving_up(tmp_path, capsys):
    words = write_words(tmp_path / "words.txt", make_tiny_words())
    api.train(_config(words, steps=4), tmp_path / "run", progress=False)
    args = ["sample", str(tmp_path / "run"), "-n", "50", "--unique", "--temperature", "0"]
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1  # greedy: one distinct item
    assert err.splitlines() == [err.strip()] and "gave up" in err and "--unique: the model keeps making" in err
    assert main([*args, "-o", str(tmp_path / "items.txt")]) == 2  # the file gets what was found
    assert (tmp_path / "items.txt").read_text() == out


def test_force_writes_through_a_symlink_and_over_a_read_only_file(tmp_path, capsys):
    words = write_words(tmp_path / "words.txt", make_tiny_words())
    api.train(_config(words, steps=4), tmp_path / "run", progress=False)
    target, link, ro = tmp_path / "target.txt", tmp_path / "link.txt", tmp_path / "ro.txt"
    target.write_text("old\n")
    link.symlink_to(target)
    ro.write_text("old\n")
    ro.chmod(0o444)
    for out in (link, ro):
        assert main(["sample", str(tmp_path / "run"), "-n", "2", "-o", str(out)]) == 2
        assert main(["sample", str(tmp_path / "run"), "-n", "2", "-o", str(out), "--force"]) == 0
    capsys.readouterr()
    assert link.is_symlink() and len(target.read_text().splitlines()) == 2  # the link kept, its file written
    assert len(ro.read_text().splitlines()) == 2


def test_an_unexpected_error_is_one_line_unless_debugging(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(api.Sampler, "items", lambda self: (_ for _ in ()).throw(ValueError("a\nbug")))
    words = write_words(tmp_path / "words.txt", make_tiny_words())
    api.train(_config(words, steps=2), tmp_path / "run", progress=False)
    assert main(["sample", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "makemore: error: internal error (ValueError: a bug); rerun with --debug to see "
        "the traceback, and please report it"
    ]
    with pytest.raises(ValueError):
        main(["--debug", "sample", str(tmp_path / "run")])


def test_undecodable_argv_is_named(capsys):
    assert main(["score", "run", "caf\udce9"]) == 2
    assert capsys.readouterr().err.strip() == "makemore: error: argument 3 ('caf\\udce9') is not valid UTF-8"


def test_no_tensor_allocated_for_a_header_that_asks_for_a_huge_model(tmp_path):
    from makemore.store.checkpoint import load_checkpoint, save_checkpoint

    words = write_words(tmp_path / "words.txt", make_tiny_words())
    api.train(_config(words, steps=2), tmp_path / "run", progress=False)
    ckpt = load_checkpoint(tmp_path / "run" / "best.safetensors")
    ckpt.meta["model"]["config"]["n_hidden"] = 10**9  # 4 GB of weights if it were built
    save_checkpoint(tmp_path / "run" / "best.safetensors", model_state=ckpt.model_state, meta=ckpt.meta)
    started = time.perf_counter()
    with pytest.raises(
        MakemoreError, match=r"do not match .*hidden.0.weight is \(8, 20\), the config needs \(1000000000, 20\)"
    ):
        api.load_run(tmp_path / "run")
    assert time.perf_counter() - started < 5
    assert torch.empty(0).device.type == "cpu"  # the meta device was only a context


def test_many_more_items_than_batches_is_fine(tmp_path, capsys):
    words = write_words(tmp_path / "words.txt", make_tiny_words())
    assert main(["train", "-i", str(words), "-o", str(tmp_path / "ngram"), "--model", "ngram", "-q"]) == 0
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "ngram"), "-n", "2500", "--batch-size", "10"]) == 0  # 250 batches
    assert len(capsys.readouterr().out.splitlines()) == 2500


def test_a_header_cannot_point_new_only_at_another_file(tmp_path, capsys):
    from makemore.store.checkpoint import load_checkpoint, save_checkpoint

    words = write_words(tmp_path / "words.txt", make_tiny_words())
    api.train(_config(words, steps=2), tmp_path / "run", progress=False)
    secret = tmp_path / "secret.txt"
    secret.write_text("abc\nabd\n")
    ckpt = load_checkpoint(tmp_path / "run" / "best.safetensors")
    ckpt.meta["data"]["input"] = str(secret)
    save_checkpoint(tmp_path / "run" / "best.safetensors", model_state=ckpt.model_state, meta=ckpt.meta)
    assert main(["sample", str(tmp_path / "run"), "-n", "3", "--new-only"]) == 2
    err = capsys.readouterr().err
    assert "--new-only: cannot use the training file" in err and "checksum differs" in err


def test_resume_reads_metrics_that_are_not_utf8(tmp_path):
    words = write_words(tmp_path / "words.txt", make_tiny_words())
    run = tmp_path / "run"
    api.train(_config(words, steps=4), run, progress=False)
    with open(run / "metrics.jsonl", "ab") as fh:
        fh.write(b'{"step": 5, "train_loss": "\xff\xfe"}\n')  # garbage after the checkpoint
    api.resume(run, steps=6, progress=False)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["step"] for r in rows if "train_loss" in r] == [1, 2, 3, 4, 5, 6]


def test_a_bad_character_is_reported_with_its_item():
    from makemore.data.corpus import EncodedCorpus, Vocab

    with pytest.raises(MakemoreError) as info:
        EncodedCorpus.from_words(["abc", "cab", "abz"], Vocab(("a", "b", "c")))
    assert str(info.value) == "character 'z' (U+007A) in 'abz' is not in the model's vocabulary"


def test_six_items_are_enough_and_five_are_not(tmp_path):
    for n, ok in ((6, True), (5, False)):
        words = write_words(tmp_path / f"w{n}.txt", make_tiny_words()[:n])
        if ok:
            assert api.train(_config(words, steps=2), tmp_path / f"r{n}", progress=False)["steps"] == 2
        else:
            with pytest.raises(MakemoreError, match=r"too few items .* \(5; need at least 6\)"):
                api.train(_config(words, steps=2), tmp_path / f"r{n}", progress=False)
