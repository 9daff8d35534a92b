"""--preset auto: the rule read as a table, what the user gives steering or overriding the choice,
the step cap (also under --time and its re-plans), and the choice recorded in run.json."""

from __future__ import annotations

import json
import math

import pytest

from makemore import api, auto
from makemore.auto import CANDIDATES, RULE, Stats
from makemore.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


def _stats(targets: int) -> Stats:
    return Stats(items=targets // 7, targets=targets, characters=26, labels=0)


def _row(targets: int, seconds: float) -> auto.Row:
    return next(r for r in RULE if targets < r.targets and seconds < r.seconds)


def test_the_rule_is_a_table_of_measured_candidates():
    assert all(r.pick in CANDIDATES and r.neural in CANDIDATES and not CANDIDATES[r.neural].counts for r in RULE)
    assert math.isinf(RULE[-1].targets) and math.isinf(RULE[-1].seconds)  # every list and budget has a row
    matched = set()
    for row in RULE:
        for targets in {0, int(min(row.targets - 1, 10**9))}:
            for seconds in {0.5, min(row.seconds, 10**6) - 0.5}:
                if _row(targets, seconds) is not row:
                    continue  # an earlier row covers these
                matched.add(row)
                name, order, reason = auto.choose(_stats(targets), seconds, api.Auto())
                assert (name, order) == (row.pick, row.order) and reason.startswith("best measured for ")
    assert matched == set(RULE)  # no row is hidden behind earlier ones


@pytest.mark.parametrize("targets", [700, 30_000, 300_000, 5_000_000])
def test_given_options_steer_the_choice(targets):
    row = _row(targets, 120)
    by_order = auto.choose(_stats(targets), 120, api.Auto(model_options={"order": 3}))
    assert CANDIDATES[by_order[0]].family == "ngram"  # only the count model has an order
    for given in (api.Auto(model_options={"n_hidden": 32}), api.Auto(train_options={"lr": 0.01}),
                  api.Auto(epochs=2.0)):  # fmt: skip
        name, _, reason = auto.choose(_stats(targets), 120, given)
        assert not CANDIDATES[name].counts  # a recurrent option, or training only gradient models read
        assert name == (row.neural if row.pick == "count" else row.pick)
        assert (row.pick != "count") or " given" in reason
    kept = auto.choose(_stats(targets), 120, api.Auto(train_options={"seed": 3, "threads": 1}))
    assert kept[0] == row.pick  # what counting reads too leaves the choice alone


def _data(words_file):
    return api.load_data(api.DataConfig(input=str(words_file)))


def test_resolve_caps_the_steps_and_keeps_what_was_given(words_file):
    data = _data(words_file)
    items = len(data.corpus("train"))
    xs = CANDIDATES["lstm-xs"]
    cap = math.ceil(xs.max_epochs * items / xs.train_options["batch_size"])
    config = auto.resolve(api.RunConfig(auto=api.Auto(candidate="lstm-xs")), data)
    assert config.model == xs.family and config.train.steps == min(xs.steps, cap)
    assert config.model_config.n_hidden == xs.model_options["n_hidden"]
    assert config.train.eval_interval == max(25, min(500, config.train.steps // 20))
    assert config.auto.choice["max_steps"] == config.train.steps and config.auto.choice["corpus"]["items"] == items
    assert config.auto.choice["corpus"]["targets"] == data.corpus("train").num_targets
    given = api.Auto(model_options={"n_hidden": 24}, train_options={"lr": 0.02, "time_budget": 45.0},
                     candidate="lstm-xs")  # fmt: skip
    config = auto.resolve(api.RunConfig(auto=given), data)
    assert (config.model_config.n_hidden, config.train.lr, config.train.time_budget) == (24, 0.02, 45.0)
    assert config.train.steps == cap  # under --time: the cap, and the budget fits what it can
    assert auto.resolve(api.RunConfig(auto=api.Auto(epochs=2.0, candidate="lstm-xs")), data).train.steps == (
        math.ceil(2.0 * items / xs.train_options["batch_size"])
    )


def test_an_unknown_candidate_is_refused_by_field(words_file):
    with pytest.raises(ConfigError, match="candidate") as exc:
        auto.resolve(api.RunConfig(auto=api.Auto(candidate="lstm-xxl")), _data(words_file))
    assert exc.value.field == "candidate"


def test_a_paced_run_never_passes_the_cap():
    from makemore.train.callbacks import Pacer
    from tests.train.test_budget import _Pacing

    trainer, replans = _Pacing(steps=256, eval_interval=64), []
    pacer = Pacer(20.5, 0.5, 0.25, 32, 0.03, lambda s, n: replans.append((s, n)), lambda: trainer.now, most=300)
    trainer.run(pacer, pace=2**-5, eval_seconds=0.25)  # fast enough for about 600 steps
    assert replans and max(n for _, n in replans) == 300 and trainer.state.step == 300


def test_an_auto_run_records_its_choice_and_keeps_it_on_resume(tmp_path, words_file):
    run = tmp_path / "run"
    config = api.RunConfig(auto=api.Auto(train_options={"steps": 40}, candidate="lstm-xs"),
                           data=api.DataConfig(input=str(words_file)))  # fmt: skip
    metrics = api.train(config, run, progress=False)
    recorded = json.loads((run / "run.json").read_text())
    assert recorded["auto"]["candidate"] == "lstm-xs" and recorded["train"]["steps"] == metrics["steps"] == 40
    assert recorded["model"]["kind"] == "lstm" and "lstm-xs asked for" in recorded["auto"]["reason"]
    api.resume(run, steps=50, progress=False)
    assert json.loads((run / "run.json").read_text())["auto"] == recorded["auto"]
    assert api.load_run(run).description.auto == recorded["auto"]


def test_a_plain_run_has_no_auto_record(trained_run):
    assert "auto" not in json.loads((trained_run.out_dir / "run.json").read_text())
