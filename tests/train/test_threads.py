"""The thread policy: auto counts the free cores; a run records its count and keeps it on resume."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch

from conftest import run_cli, tiny_mlp_config, write_words
from makemore import api
from makemore.store.checkpoint import load_checkpoint
from makemore.train import threads

TWO_CORES = pytest.mark.skipif(threads.usable_cores() < 2, reason="needs 2 usable CPUs")


def test_a_given_count_is_kept():
    assert threads.choose(3, busy=lambda: 5.0) == 3


@TWO_CORES
@pytest.mark.parametrize(
    ("busy", "share", "want"),
    [(0.0, 1, 2), (0.25, 1, 2), (0.5, 1, 1), (1.0, 1, 1), (1.9, 1, 1), (0.0, 2, 1), (7.0, 1, 1)],
)
def test_auto_counts_the_cores_others_leave_free(monkeypatch, busy, share, want):
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    assert threads.choose(threads.AUTO, share=share, busy=lambda: busy, environ={}) == want


@pytest.mark.parametrize(("value", "want"), [("3", 3), (" 1 ", 1), ("0", 16), ("", 16), ("two", 16), ("-2", 16)])
def test_auto_takes_omp_num_threads_when_it_is_a_count(monkeypatch, value, want):
    monkeypatch.setattr(threads, "usable_cores", lambda: 16)
    assert threads.choose(threads.AUTO, busy=lambda: 0.0, environ={"OMP_NUM_THREADS": value}) == want
    assert threads.choose(5, busy=lambda: 0.0, environ={"OMP_NUM_THREADS": value}) == 5  # --threads N wins


def test_auto_uses_every_free_core_of_a_big_machine(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 16)
    assert threads.choose(0, busy=lambda: 0.1, environ={}) == 16
    assert threads.choose(0, busy=lambda: 3.0, environ={}) == 13
    assert threads.choose(0, share=4, busy=lambda: 0.0, environ={}) == 4


def _spin(seconds: float) -> None:
    """A sleep that keeps this process busy: its own CPU time must not count as others'."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@TWO_CORES
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_busy_elsewhere_sees_another_process_and_not_this_one():
    mine = threads.busy_elsewhere(0.4, sleep=_spin)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # started
        other = threads.busy_elsewhere(0.4)
    finally:
        spinner.kill()
        spinner.wait()
    assert other - mine > 0.6  # one process on a core, whatever else the machine runs


@TWO_CORES
def test_a_run_records_its_count_and_resume_keeps_it(tmp_path, tiny_words, monkeypatch):
    words = write_words(tmp_path / "words.txt", tiny_words)
    applied = []
    original = threads.apply
    monkeypatch.setattr(threads, "apply", lambda n: (applied.append(n), original(n))[1])
    before = torch.get_num_threads()

    monkeypatch.setattr(threads.CpuLook, "busy_elsewhere", lambda self, *_: 0.0)  # a free machine: 2 threads
    api.train(tiny_mlp_config(words, steps=6, eval_interval=3), tmp_path / "run", progress=False)
    assert load_checkpoint(tmp_path / "run" / "last.safetensors").meta["train"]["threads"] == 2
    assert applied == [2, before] and torch.get_num_threads() == before

    monkeypatch.setattr(threads.CpuLook, "busy_elsewhere", lambda self, *_: 1.0)  # a core is taken: auto says 1
    applied.clear()
    api.resume(tmp_path / "run", steps=9, progress=False)
    assert applied[0] == 2  # the recorded count: the resumed run computes what the run would have
    api.resume(tmp_path / "run", steps=12, threads=1, progress=False)
    meta = load_checkpoint(tmp_path / "run" / "last.safetensors").meta
    assert meta["train"]["threads"] == 1 and meta["state"]["step"] == 12


def test_threads_is_validated():
    with pytest.raises(api.ConfigError, match="threads"):
        api.TrainConfig(threads=-1)


@pytest.mark.parametrize(("given", "want"), [("1", 1), ("2", 2), (None, "auto")])
def test_commands_that_read_a_run_take_threads_and_give_the_count_back(trained_run, capsys, monkeypatch, given, want):
    applied = []
    original = threads.apply
    monkeypatch.setattr(threads, "apply", lambda n: (applied.append(n), original(n))[1])
    monkeypatch.setattr(threads.CpuLook, "busy_elsewhere", lambda self, *_: 0.0)
    before = torch.get_num_threads()
    extra = [] if given is None else ["--threads", given]
    code, out, _ = run_cli(capsys, "sample", trained_run.out_dir, "-n", "5", *extra)
    assert code == 0 and len(out.splitlines()) == 5
    assert applied[0] == (min(2, threads.usable_cores()) if want == "auto" else want)
    assert applied[-1] == before and torch.get_num_threads() == before
