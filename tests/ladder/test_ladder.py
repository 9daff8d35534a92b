"""``makemore ladder``: the rungs, the time rule, the state a rerun continues from, the report."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import assert_bad_input, assert_png, make_tiny_words, snapshot, write_words
from makemore import api, plots
from makemore.errors import ConfigError, MakemoreError
from makemore.ladder import MIN_RUNG_SECONDS, RUNG_NAMES, RUNGS, LadderConfig
from makemore.ladder.run import dev_curve
from makemore.models import REGISTRY

pytestmark = pytest.mark.usefixtures("one_thread")
COUNTING = [r.name for r in RUNGS if not REGISTRY[r.model].model.trains_by_gradient]


def test_the_rungs_are_the_lectures_ladder():
    assert RUNG_NAMES[:5] == ("ngram-1", "ngram-2", "ngram-3", "ngram-4", "ngram-5") == tuple(COUNTING)
    assert {r.model for r in RUNGS} == set(REGISTRY)  # every family is a rung
    manual = [r for r in RUNGS if r.train_options.get("backward") == "manual"]
    assert [r.name for r in manual] == ["bn-mlp-manual"]
    api.make_config(manual[0].model, manual[0].model_options)  # options the family takes


def test_bad_configs_name_the_field():
    with pytest.raises(ConfigError, match=r"LadderConfig.rungs: unknown rung 'lstm2'"):
        LadderConfig(rungs=("lstm2",))
    with pytest.raises(ConfigError, match="named twice"):
        LadderConfig(rungs=("mlp", "mlp"))
    with pytest.raises(ConfigError, match="samples"):
        LadderConfig(samples=0)
    assert [r.name for r in LadderConfig(rungs=("lstm", "ngram-2")).chosen] == ["ngram-2", "lstm"]


def test_count_rungs_report_and_rerun(tmp_path):
    """The count rungs only (seconds): each rung's run directory, the report's numbers are the runs'
    own, and a rerun skips every rung and changes nothing but the report's files."""
    words = write_words(tmp_path / "words.txt", make_tiny_words(400))
    data = api.DataConfig(input=str(words))
    config = LadderConfig(rungs=("ngram-1", "ngram-3"), samples=50, time_budget=5)
    lines: list[str] = []
    state = api.ladder(data, config, tmp_path / "lad", progress=False, log=lines.append)
    assert list(state["rungs"]) == ["ngram-1", "ngram-3"]
    for name in ("ngram-1", "ngram-3"):
        run = api.load_run(tmp_path / "lad" / name)
        result = state["rungs"][name]
        nll = api.evaluate(run)
        assert (result["train_nll"], result["dev_nll"], result["test_nll"]) == (nll["train"], nll["dev"], nll["test"])
        assert result["samples"] == api.sample(run, api.SampleConfig(num=50, seed=0))[:10]
        assert result["sample_metrics"] == api.sample_metrics(run, num=50, seed=0).as_dict()
        assert result["parameters"] == sum(t.numel() for t in run.model.state_dict().values())
    assert state["rungs"]["ngram-3"]["dev_nll"] < state["rungs"]["ngram-1"]["dev_nll"]
    assert json.loads((tmp_path / "lad" / "ladder.json").read_text()) == state
    report = (tmp_path / "lad" / "report.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| ngram")]
    assert [row.split(" | ")[0] for row in rows] == ["| ngram-1", "| ngram-3"]
    assert f"{state['rungs']['ngram-3']['dev_nll']:.4f}" in rows[1]
    assert "![dev NLL against training time](dev-nll.png)" in report
    assert_png(tmp_path / "lad" / "dev-nll.png")
    assert lines[0] == "ladder [1/2] ngram-1: counting"

    before = snapshot(tmp_path / "lad" / "ngram-1", tmp_path / "lad" / "ngram-3")
    lines.clear()
    again = api.ladder(data, config, tmp_path / "lad", progress=False, log=lines.append)
    assert again == state
    assert re.fullmatch(r"ladder \[1/2\] ngram-1: done \(dev NLL \d\.\d{4}\), skipped", lines[0])
    assert snapshot(tmp_path / "lad" / "ngram-1", tmp_path / "lad" / "ngram-3") == before

    other = write_words(tmp_path / "other.txt", make_tiny_words(300, seed=1))
    with pytest.raises(MakemoreError, match="holds a ladder with other data"):
        api.ladder(api.DataConfig(input=str(other)), config, tmp_path / "lad", progress=False, log=lines.append)


def test_cli_bad_input_writes_nothing(tmp_path, capsys):
    words = write_words(tmp_path / "words.txt", make_tiny_words(100))
    out = tmp_path / "lad"
    assert_bad_input(capsys, ["ladder", "-i", words, "-o", out, "--rung", "lstm2"], tmp_path, match="--rung: unknown")
    assert_bad_input(
        capsys,
        ["ladder", "-i", words, "-o", out, "--rung", "mlp", "--rung", "gru", "--time", "15s"],
        tmp_path,
        match=rf"--time: at least 20s for 2 rungs trained by gradient \({MIN_RUNG_SECONDS:g} s each\)",
    )
    assert_bad_input(capsys, ["ladder", "-i", tmp_path / "missing.txt", "-o", out], tmp_path, match="missing.txt")
    assert_bad_input(capsys, ["ladder", "-i", words], tmp_path, match="-o/--output DIR is required")
    assert not out.exists()


def test_dev_curve_sums_the_rows_step_times(tmp_path):
    rows = [
        {"step": 10, "train_loss": 3.0, "lr": 0.1, "steps_per_s": 5.0},  # 2 s
        {"step": 10, "dev_loss": 2.9},
        {"step": 30, "train_loss": 2.5, "lr": 0.1, "steps_per_s": 10.0},  # + 2 s
        {"step": 40, "dev_loss": 2.4},  # 10 steps past the last row, at its rate: + 1 s
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert dev_curve(tmp_path) == [[2.0, 2.9], [5.0, 2.4]]


def test_the_plot(tmp_path):
    plot = plots.plot_ladder({"mlp": [[1.0, 2.5], [3.0, 2.2]]}, {"ngram-3": (0.2, 2.3)})
    assert plot.info == {"best": "mlp"}
    ax = plot.figure.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["mlp", "ngram-3"]
    assert ax.get_xscale() == "log"


@pytest.mark.slow
def test_shares_interrupt_and_resume(tmp_path):
    """Two rungs trained by gradient in 30 s: each gets its share of the time left; a ladder
    interrupted (SIGINT) in its second rung continues it on a rerun, and the first is skipped."""
    words = write_words(tmp_path / "words.txt", make_tiny_words(600))
    out = tmp_path / "lad"
    args = [sys.executable, "-m", "makemore", "ladder", "-i", words, "-o", out, "--time", "30s", "-q"]
    args += ["--rung", "ngram-2", "--rung", "bigram", "--rung", "mlp", "--samples", "100"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([str(a) for a in args], stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not (out / "mlp" / "last.safetensors").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, err
    first = [line for line in err.splitlines() if line.startswith("ladder [")]
    assert first[0] == "ladder [1/3] ngram-2: counting"
    share = re.fullmatch(r"ladder \[2/3\] bigram: training for (\d+)s \((\d+)s of the ladder left\)", first[2])
    assert share and abs(int(share[1]) - int(share[2]) / 2) <= 1  # half of what was left: 2 rungs to go
    state = json.loads((out / "ladder.json").read_text())
    assert list(state["rungs"]) == ["ngram-2", "bigram"]

    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("ladder [")]
    assert lines[0].startswith("ladder [1/3] ngram-2: done") and lines[1].startswith("ladder [2/3] bigram: done")
    assert lines[2].startswith("ladder [3/3] mlp: resuming its interrupted run")
    run = api.load_run(out / "mlp", "last")
    assert run.description.step == run.config.train.steps  # finished its planned steps
    state = json.loads((out / "ladder.json").read_text())
    assert list(state["rungs"]) == ["ngram-2", "bigram", "mlp"]
    assert state["rungs"]["mlp"]["curve"] and state["rungs"]["mlp"]["steps_per_s"] > 0
    assert "| mlp | mlp |" in (out / "report.md").read_text()
