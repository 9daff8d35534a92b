"""Under torchrun an error is printed once, by rank 0, not once per process.

In-process: the rank comes from the environment (``RANK``, ``WORLD_SIZE``); a rank other than
0 waits (torchrun stops it once rank 0 has failed) and prints only if it is still running.
Then for real: ``torchrun --nproc_per_node=2`` with ``-m makemore`` and with the console script.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli as cli
from makemore.cli import launch

CONSOLE_SCRIPT = Path(sys.executable).with_name("makemore")


@pytest.fixture
def waits(monkeypatch):
    """The grace periods a rank waited, without waiting."""
    slept: list[float] = []
    monkeypatch.setattr(launch, "_wait", slept.append)
    return slept


def test_rank_zero_prints_at_once(monkeypatch, waits, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    code, out, err = cli(capsys, "train", "-o", "x", "--learning-rate", "1")
    assert code == 2 and out == "" and waits == []
    assert (
        err
        == "makemore: error: unrecognized arguments: --learning-rate 1 (did you mean --lr?) (see makemore train --help)\n"
    )


def test_another_rank_waits_for_torchrun_then_prints_its_own_error(monkeypatch, waits, capsys, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, "train", "-o", "x", "--learning-rate", "1")
    assert code == 2 and waits == [launch.GRACE_S] and err.startswith("makemore: error: unrecognized arguments")
    code, out, err = cli(capsys, "eval", "-o", "missing")  # an old spelling's notice: rank 0's alone
    assert code == 2 and waits == [launch.GRACE_S] * 2
    assert err.splitlines() == ["makemore: error: missing: no such run directory"]


def test_alone_there_is_no_wait(monkeypatch, waits, capsys):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("RANK", "3")  # without a world, a stray RANK means nothing
    assert cli(capsys, "train", "--steps", "x")[0] == 2 and waits == []
    assert (launch.launched(), launch.rank(), launch.is_main()) == (False, 0, True)


def _torchrun(cwd: Path, *command: str) -> subprocess.CompletedProcess:
    scratch = cwd / "tmp"
    scratch.mkdir(exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "TMPDIR": str(scratch)}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    return subprocess.run([*launcher, *command], cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def test_torchrun_prints_a_usage_error_once(tmp_path):
    result = _torchrun(tmp_path, "-m", "makemore", "train", "-o", "run", "--learning-rate", "0.01")
    errors = [line for line in result.stderr.splitlines() if line.startswith("makemore:")]
    assert result.returncode != 0
    assert errors == [
        "makemore: error: unrecognized arguments: --learning-rate 0.01 (did you mean --lr?) (see makemore train --help)"
    ], result.stderr
    root_cause = result.stderr.split("Root Cause", 1)[1]  # rank 0, which printed it, failed first
    assert "rank      : 0 (local_rank: 0)" in root_cause and "exitcode  : 2 " in root_cause
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]


@pytest.mark.slow
def test_torchrun_of_the_console_script_prints_a_config_error_once(tmp_path):
    if not CONSOLE_SCRIPT.exists():
        pytest.skip(f"{CONSOLE_SCRIPT} is not installed")
    command = [str(CONSOLE_SCRIPT), "train", "-o", "run", "--model", "ngram", "--lr", "0.1", "-q"]
    result = _torchrun(tmp_path, "--no-python", *command)
    errors = [line for line in result.stderr.splitlines() if line.startswith("makemore:")]
    assert result.returncode != 0
    assert len(errors) == 1 and errors[0].startswith("makemore: error: --lr: does not apply to model 'ngram'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]
