"""Time-budgeted training (``--time``): durations, the step arithmetic, calibration on a copy
with an injected clock, the deadline guard, and runs equal to ``--steps N`` (also resumed).

No test here times anything: the accuracy of ``--time`` is measured by
``benchmarks/bench_time_budget.py``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import re

import pytest
import torch

from conftest import tiny_mlp_config
from makemore import api
from makemore.cli import main
from makemore.config import TrainConfig
from makemore.data.corpus import EncodedCorpus, Vocab
from makemore.data.datasets import load_data
from makemore.errors import ConfigError, MakemoreError
from makemore.evaluate.scoring import evaluate_nll
from makemore.models import build_model
from makemore.store.checkpoint import load_checkpoint, read_meta
from makemore.train import budget, execution
from makemore.train.budget import Calibration, calibrate, format_duration, parse_duration, plan_steps
from makemore.train.callbacks import Deadline, Pacer, ProgressBar
from makemore.train.trainer import Trainer, TrainState, autograd_forward_backward, lr_at

# -- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90s", 90.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1h2m3s", 3723.0),
        ("1h30s", 3630.0),
        ("90", 90.0),
        ("0.5", 0.5),
        ("1.5h", 5400.0),
        ("2.5m", 150.0),
        (" 2M ", 120.0),
        ("45S", 45.0),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", " ", "abc", "90x", "1m30", "30s1m", "5ms", "-5s", "0", "0s", "0m0s", "1e3", "inf", "nan", "1 m", "m"]
)
def test_bad_durations_are_refused(text):
    with pytest.raises(MakemoreError, match=r"duration like 90s|more than 0 seconds"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["169h", "10000000000h", "604801", "10081m", "99999999999999999999999s"])
def test_durations_over_a_week_are_refused_in_every_spelling(text):
    with pytest.raises(MakemoreError, match=r"at most 168h \(a week\)"):
        parse_duration(text)
    assert parse_duration("168h") == parse_duration("604800") == 604800
    with pytest.raises(ConfigError, match="time_budget"):
        TrainConfig(time_budget=604801)


def test_durations_are_shown_as_given():
    assert [format_duration(s) for s in (45, 90, 300, 3600, 3723, 2.5, 59.0)] == [
        "45s",
        "1m30s",
        "5m",
        "1h",
        "1h2m3s",
        "2.5s",
        "59s",
    ]


def test_the_field_takes_seconds_and_is_checked():
    assert api.TrainConfig(time_budget=90).time_budget == 90
    for bad in (-1, float("nan"), float("inf"), "90s"):
        with pytest.raises(ConfigError, match="TrainConfig.time_budget"):
            api.TrainConfig(time_budget=bad)


# -- the step arithmetic --------------------------------------------------------------------


def test_plan_steps_is_the_last_step_count_that_fits():
    cal = Calibration(step_seconds=0.25, eval_seconds=2.0, final_seconds=3.0, spent_seconds=5.0, timed_steps=10)
    # cost(n) = 5 + 0.25 n + 2 ceil(n / 10) + 3: cost(112) = 60 exactly, cost(113) = 60.25
    assert cal.cost(112, 10) == 60.0 and cal.cost(113, 10) == 60.25
    assert plan_steps(60.0, cal, 10) == 112
    assert plan_steps(59.99, cal, 10) == 111  # cost(111) = 5 + 27.75 + 2 * 12 + 3 = 59.75
    assert plan_steps(59.7, cal, 10) == 110  # step 111 brings a twelfth evaluation: 57.5 -> 59.75
    assert plan_steps(10.25, cal, 10) == 1  # 5 + 0.25 + 2 + 3
    assert plan_steps(10.2, cal, 10) == 0  # not even one step
    assert plan_steps(60.0, cal, 1000) == (60 - 10) * 4  # one evaluation only: at the end


def test_plan_steps_brute_force():
    rng = random.Random(0)
    for _ in range(300):
        cal = Calibration(
            step_seconds=rng.uniform(1e-4, 0.5),
            eval_seconds=rng.uniform(0, 5),
            final_seconds=rng.uniform(0, 10),
            spent_seconds=rng.uniform(0, 5),
            timed_steps=10,
        )
        interval, seconds = rng.randint(1, 500), rng.uniform(1, 120)
        n = plan_steps(seconds, cal, interval)
        assert n == 0 or cal.cost(n, interval) <= seconds
        assert cal.cost(n + 1, interval) > seconds


# -- calibration on a copy, with an injected clock ------------------------------------------


class FakeClock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def _with_dropout(config, rate=0.2):
    """Dropout draws from the global RNG: a calibration that left it changed would show."""
    config.model_config = api.with_options("mlp", config.model_config, {"dropout": rate})
    return config


def _tiny_run(words_file, **train):
    config = _with_dropout(tiny_mlp_config(words_file, **train))
    data = load_data(config.data)
    torch.manual_seed(config.train.seed)
    model = build_model("mlp", config.model_config, data.vocab.size)
    return config, model, model.batcher(data.corpus("train")), model.batcher(data.corpus("dev"))


def _calibrate(words_file, step_seconds, eval_seconds, seconds=10.0):
    config, model, batcher, dev = _tiny_run(words_file, time_budget=seconds)
    clock, calls = FakeClock(), {"steps": 0, "evals": 0}

    def forward_backward(m, x, y):
        calls["steps"] += 1
        clock.now += step_seconds
        return autograd_forward_backward(m, x, y)

    def evaluate(m):
        calls["evals"] += 1
        clock.now += eval_seconds
        return evaluate_nll(m, dev)

    before = ({n: p.detach().clone() for n, p in model.named_parameters()}, torch.get_rng_state())
    cal = calibrate(
        model,
        batcher,
        config.train,
        evaluate=evaluate,
        forward_backward=forward_backward,
        started=clock.now - 1.5,  # setup took 1.5 s
        final_evals=9.0,
        clock=clock,
    )
    for name, p in model.named_parameters():  # the run's own model and RNG are untouched
        assert torch.equal(p, before[0][name]), name
    assert torch.equal(torch.get_rng_state(), before[1])
    return cal, calls


def test_calibration_times_steps_and_an_evaluation_on_a_copy(words_file):
    step, ev = 1 / 64, 0.5  # exact in binary
    cal, calls = _calibrate(words_file, step, ev, seconds=10.0)
    # 3% of 10 s = 0.3 s of timed steps: 20 steps of 1/64 s (19 make 0.297), after 2 untimed ones
    assert cal.timed_steps == 20 and calls == {"steps": 22, "evals": 1}
    assert cal.step_seconds == step
    assert cal.eval_seconds == ev  # the state copy took no (fake) time
    assert cal.final_seconds == 9 * ev
    assert cal.spent_seconds == 1.5 + 22 * step + ev


def test_slow_steps_are_timed_for_at_most_twice_the_share(words_file):
    cal, calls = _calibrate(words_file, 1.0, 0.25, seconds=10.0)  # share 0.3 s: one timed step is enough
    assert cal.timed_steps == 1 and calls["steps"] == 1 + budget.WARMUP_STEPS
    assert cal.step_seconds == 1.0


def test_the_deadline_stops_a_run_that_falls_behind(words_file):
    config, model, batcher, _ = _tiny_run(words_file, steps=50)
    clock = FakeClock(0.0)

    def half_a_second(m, x, y):
        clock.now += 0.5
        return autograd_forward_backward(m, x, y)

    deadline = Deadline(deadline=10.0, reserve=2.0, clock=clock)
    state = Trainer(model, batcher, config.train, callbacks=[deadline], forward_backward=half_a_second).fit()
    assert deadline.stopped_at == 17
    assert state.step == 17  # after step 17 the clock reads 8.5: 8.5 + 2 > 10


# -- whole runs -----------------------------------------------------------------------------


@pytest.fixture
def no_deadline(monkeypatch):
    """A busy machine may make a run fall behind and stop at its deadline, or its pace change
    the plan: not in these tests."""
    monkeypatch.setattr(budget, "DEADLINE_SLACK", 1e9)
    monkeypatch.setattr(budget, "REPLAN_TOLERANCE", math.inf)


def _budget_config(words_file, seconds):
    return _with_dropout(tiny_mlp_config(words_file, time_budget=seconds, eval_interval=400, log_interval=100))


def _same_weights(a, b):
    wa, wb = load_checkpoint(a).model_state, load_checkpoint(b).model_state
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name


def _rows(run):
    return [
        {k: v for k, v in json.loads(line).items() if k != "steps_per_s"}
        for line in (run / "metrics.jsonl").read_text().splitlines()
    ]


def test_a_time_budgeted_run_is_the_run_of_its_chosen_steps(tmp_path, words_file, no_deadline):
    timed = tmp_path / "timed"
    metrics = api.train(_budget_config(words_file, 1.5), timed, progress=False)
    meta = read_meta(timed / "last.safetensors")
    steps = meta["train"]["steps"]
    assert metrics["steps"] == metrics["planned_steps"] == steps == meta["time_budget"]["steps"] > 10
    assert meta["train"]["time_budget"] == 1.5 == meta["time_budget"]["seconds"]
    assert meta["state"]["step"] == steps
    assert set(meta["time_budget"]) >= {"step_seconds", "eval_seconds", "final_seconds", "spent_seconds"}
    assert json.loads((timed / "run.json").read_text())["time_budget"] == meta["time_budget"]

    plain = tmp_path / "plain"
    config = _budget_config(words_file, 0.0)
    config.train.steps = steps
    api.train(config, plain, progress=False)
    _same_weights(timed / "last.safetensors", plain / "last.safetensors")
    _same_weights(timed / "best.safetensors", plain / "best.safetensors")
    assert _rows(timed) == _rows(plain)  # the same losses, and the lr schedule laid over `steps`


def test_a_run_stopped_at_its_deadline_resumes_to_its_chosen_steps(tmp_path, words_file, monkeypatch):
    monkeypatch.setattr(budget, "DEADLINE_SLACK", -1.0)  # the deadline is the start: stop after one step
    monkeypatch.setattr(budget, "REPLAN_TOLERANCE", math.inf)
    timed = tmp_path / "timed"
    metrics = api.train(_budget_config(words_file, 1.5), timed, progress=False)
    steps = metrics["planned_steps"]
    assert metrics["steps"] == 1 < steps
    assert read_meta(timed / "last.safetensors")["state"]["step"] == 1
    monkeypatch.undo()

    resumed = api.resume(timed, progress=False)  # not timed again: on to `steps`
    assert resumed["steps"] == steps and "planned_steps" not in resumed
    meta = read_meta(timed / "last.safetensors")
    assert meta["train"]["steps"] == steps and meta["time_budget"]["steps"] == steps  # the record is kept
    plain = tmp_path / "plain"
    config = _budget_config(words_file, 0.0)
    config.train.steps = steps
    api.train(config, plain, progress=False)
    _same_weights(timed / "last.safetensors", plain / "last.safetensors")


@pytest.mark.parametrize(
    "warmup, planned, configured, expected",
    [(200, 101, 6000, 4), (200, 6000, 6000, 200), (200, 9000, 6000, 200), (0, 10, 100, 0), (5, 1, 1000, 1)],
)
def test_a_short_budget_keeps_the_warm_up_share_of_the_steps(warmup, planned, configured, expected):
    assert budget.scaled_warmup(warmup, planned, configured) == expected


def test_a_time_budgeted_run_scales_its_warm_up_to_the_steps_that_fit(tmp_path, words_file, no_deadline):
    config = _budget_config(words_file, 3.0)
    config.train.steps, config.train.warmup_steps = 100_000, 50_000  # half of the steps: far more than fit
    api.train(config, tmp_path / "run", progress=False)
    train = read_meta(tmp_path / "run" / "last.safetensors")["train"]
    assert 10 < train["steps"] < 100_000
    assert train["warmup_steps"] == math.ceil(train["steps"] / 2)  # still half of the steps
    recorded = TrainConfig(**train)  # the peak is reached at the end of the warm-up: not half-trained
    assert lr_at(recorded, recorded.warmup_steps - 1) == pytest.approx(config.train.lr, rel=1e-9)


def test_the_report_of_a_short_budget_is_made_on_samples_that_fit():
    cal = Calibration(step_seconds=0.01, eval_seconds=0.5, final_seconds=8.0, spent_seconds=1.0, timed_steps=10)
    assert budget.report_fraction(20.0, cal) == pytest.approx(0.25)  # 10% of 20 s of the 8 s the report takes
    assert budget.report_fraction(80.0, cal) == 1.0
    words = [w * k for w in ("ab", "bca", "c") for k in range(1, 1001)]  # 3,000 items
    vocab = Vocab.from_words(words)
    corpus, dev = EncodedCorpus.from_words(words, vocab), EncodedCorpus.from_words(words[:2400], vocab)
    train_items, dev_sample, scaled = budget.bounded_report(20.0, cal, corpus, dev, seed=3)
    assert train_items == budget.MIN_REPORT_ITEMS  # 25% of 3,000 is below the floor
    assert len(dev_sample) == budget.MIN_REPORT_ITEMS
    targets = corpus.num_targets + dev.num_targets
    kept = execution.bounded_sample(corpus, train_items, 3).num_targets + dev_sample.num_targets
    assert scaled.final_seconds == pytest.approx(8.0 * kept / targets)
    assert budget.bounded_report(80.0, cal, corpus, dev, seed=3) == (len(corpus), None, cal)


def test_a_short_budgets_report_names_its_samples(tmp_path, words_file, no_deadline, monkeypatch):
    monkeypatch.setattr(budget, "REPORT_SHARE", 1e-9)
    monkeypatch.setattr(budget, "MIN_REPORT_ITEMS", 10)
    metrics = api.train(_budget_config(words_file, 1.5), tmp_path / "run", progress=False)
    assert (metrics["train_loss_items"], metrics["dev_loss_items"], metrics["dev_items"]) == (10, 10, 30)
    run = api.load_run(tmp_path / "run")
    dev = execution.bounded_sample(load_data(run.config.data, run.vocab).corpus("dev"), 10, run.config.train.seed)
    assert metrics["dev_loss"] == pytest.approx(evaluate_nll(run.model, run.model.batcher(dev)), abs=1e-6)


def test_a_budget_too_short_for_one_step_is_refused_before_anything_is_written(tmp_path, words_file):
    with pytest.raises(ConfigError, match=r"TrainConfig\.time_budget: 0\.001s is too short .* give at least"):
        api.train(_budget_config(words_file, 0.001), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_count_models_accept_a_budget_and_fit_in_one_pass(tmp_path, words_file, capsys):
    code = main(["train", "-i", str(words_file), "-o", str(tmp_path / "ngram"), "--model", "ngram", "--time", "1m"])
    assert code == 0
    assert "--time does not apply: ngram is fitted by counting" in capsys.readouterr().err
    meta = read_meta(tmp_path / "ngram" / "best.safetensors")
    assert meta["train"]["time_budget"] == 60 and "time_budget" not in meta


def test_the_cli_takes_time_as_a_duration(tmp_path, words_file, capsys, no_deadline):
    options = "--model mlp --n-embd 4 --n-hidden 16 --batch-size 32 --eval-interval 400".split()
    code = main(["train", "-i", str(words_file), "-o", str(tmp_path / "run"), *options, "--time", "1.5s"])
    out, err = capsys.readouterr()
    assert code == 0, err
    meta = read_meta(tmp_path / "run" / "last.safetensors")
    steps = meta["train"]["steps"]
    assert meta["train"]["time_budget"] == 1.5
    assert f"({steps} steps fit in --time 1.5s)" in err
    assert re.search(rf"best\.safetensors; {steps} steps in \d+\.\d s\)$", out.strip())
    assert main(["train", "-i", str(words_file), "-o", str(tmp_path / "x"), "--steps", "5", "--time", "5s"]) == 2
    assert "--steps and --time" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["train", "-o", str(tmp_path / "y"), "--time", "5 minutes"])
    assert info.value.code == 2
    assert "argument --time: expected a duration like 90s" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_lr_find_has_no_time_flag(capsys):
    with pytest.raises(SystemExit):
        main(["lr-find", "--time", "5s"])
    assert "unrecognized arguments: --time" in capsys.readouterr().err


def test_a_budget_error_names_the_flag(tmp_path, words_file, capsys):
    code = main(["train", "-i", str(words_file), "-o", str(tmp_path / "run"), "--model", "mlp", "--time", "0.001"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("makemore: error: --time: 0.001s is too short") and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


class _Pacing:
    """A trainer as the Pacer sees it, stepping on a clock that advances ``pace`` seconds a step."""

    def __init__(self, steps: int, eval_interval: int):
        self.config, self.state, self.now = TrainConfig(steps=steps, eval_interval=eval_interval), TrainState(), 0.0

    def set_steps(self, steps: int) -> None:
        self.config = dataclasses.replace(self.config, steps=steps)

    def run(self, pacer: Pacer, pace: float, eval_seconds: float) -> None:
        pacer.on_train_start(self)
        while self.state.step < self.config.steps:
            self.now += pace
            self.state.step += 1
            pacer.on_step_end(self, 0.0)
            if self.state.step % self.config.eval_interval == 0:
                self.now += eval_seconds
                pacer.on_eval(self, 1.0, True)


def _pacer(trainer: _Pacing, end: float, replans: list, every: int = 64) -> Pacer:
    return Pacer(end, 0.5, 0.25, every, 0.03, lambda step, steps: replans.append((step, steps)), lambda: trainer.now)


def _cost_of(k: int, pace: float, ev: float, step: int, interval: int) -> float:
    end = step + k
    return k * pace + (end // interval - step // interval + (1 if end % interval else 0)) * ev


@pytest.mark.parametrize(
    "room, pace, ev, step, interval", [(10.0, 0.125, 0.5, 0, 16), (7.3, 0.1, 1.0, 37, 10), (1.0, 2.0, 0.0, 5, 3)]
)
def test_further_steps_is_the_most_that_fit(room, pace, ev, step, interval):
    expected = max(k for k in range(1000) if _cost_of(k, pace, ev, step, interval) <= room)
    assert budget.further_steps(room, pace, ev, step, interval) == expected


def test_a_slower_machine_gets_fewer_steps_and_ends_on_time():
    trainer, replans = _Pacing(steps=1024, eval_interval=10_000), []
    trainer.run(_pacer(trainer, end=16.5, replans=replans), pace=2**-5, eval_seconds=0.0)  # planned for 2**-6
    # at step 64 (2 s in), 14 s are left for steps of 2**-5 s: 448 more, one of them the evaluation's
    assert replans == [(64, 64 + budget.further_steps(14.0, 2**-5, 0.25, 64, 10_000))]
    assert trainer.state.step == trainer.config.steps == replans[0][1]
    assert 15.0 < trainer.now <= 16.0  # the end, less what the last evaluation and the final NLLs need


def test_a_faster_machine_gets_more_steps():
    trainer, replans = _Pacing(steps=256, eval_interval=64), []
    trainer.run(_pacer(trainer, end=20.5, replans=replans, every=32), pace=2**-5, eval_seconds=0.25)
    assert replans and replans[0][0] == 32 and replans[0][1] > 256
    assert trainer.state.step == trainer.config.steps == replans[-1][1]
    assert 19.0 < trainer.now <= 20.0  # evaluations measured as they came (0.25 s each)


def test_a_plan_within_the_tolerance_is_kept():
    trainer, replans = _Pacing(steps=1000, eval_interval=10_000), []
    trainer.run(_pacer(trainer, end=10.0 + 0.5 + 0.25 + 0.1, replans=replans), pace=0.01, eval_seconds=0.0)
    assert replans == [] and trainer.state.step == 1000


def test_a_replanned_run_records_its_plans_and_follows_the_new_schedule(tmp_path, words_file, monkeypatch):
    monkeypatch.setattr(budget, "DEADLINE_SLACK", 1e9)
    monkeypatch.setattr(budget, "REPLAN_TOLERANCE", -1.0)  # re-plan at every check, whatever the pace
    run = tmp_path / "run"
    metrics = api.train(_budget_config(words_file, 1.5), run, progress=False)
    meta = read_meta(run / "last.safetensors")
    replans = meta["time_budget"]["replans"]
    steps = meta["train"]["steps"]
    assert replans and replans[-1][1] == steps == meta["state"]["step"] == metrics["steps"] == metrics["planned_steps"]
    assert meta["time_budget"]["steps"] == steps
    last_change = replans[-1][0]
    config = TrainConfig(**meta["train"])
    for row in _rows(run):
        if "lr" in row and row["step"] > last_change:  # logged with the lr of its last step
            assert row["lr"] == pytest.approx(lr_at(config, row["step"] - 1), rel=1e-12)


def test_set_steps_lays_the_schedule_over_the_new_count(words_file):
    from makemore.train.plan import build  # noqa: PLC0415 - the model of a config, as train builds it

    config = tiny_mlp_config(words_file, steps=40)
    data = api.load_data(config.data)
    _, model = build(config, data)
    trainer = Trainer(model, model.batcher(data.corpus("train")), config.train)
    for _ in range(10):
        trainer.step()
    trainer.set_steps(20)
    assert trainer.lr_schedule(15) == lr_at(dataclasses.replace(config.train, steps=20), 15)
    with pytest.raises(ValueError):
        trainer.set_steps(10)


def test_the_progress_bar_follows_a_new_plan():
    bar, trainer = ProgressBar(), _Pacing(steps=100, eval_interval=1000)
    bar.on_train_start(trainer)
    trainer.set_steps(150)
    trainer.state.step += 1
    bar.on_step_end(trainer, 0.0)
    assert (bar.bar.total, bar.bar.n) == (150, 1)
    bar.bar.close()
