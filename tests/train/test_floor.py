"""--preset auto's floor: the Kneser-Ney n-gram fitted beside a recurrent choice is the dev-best
order, and it becomes the run exactly when it scores better on the dev items the run reports."""

from __future__ import annotations

import dataclasses
import json

import pytest

from makemore import api, auto
from makemore.evaluate.scoring import evaluate_nll
from makemore.models import build_model, make_config
from makemore.train import floor

pytestmark = pytest.mark.usefixtures("one_thread")


def _kn_dev(data, order: int) -> float:
    model = build_model("ngram", make_config("ngram", {"order": order, "smoothing": "kneser-ney"}), data.vocab.size)
    model.fit_batcher(model.batcher(data.corpus("train")))
    return evaluate_nll(model, model.batcher(data.corpus("dev")))


def test_the_floor_is_the_dev_best_order(words_file):
    data = api.load_data(api.DataConfig(input=str(words_file)))
    config = api.RunConfig(auto=api.Auto(), data=api.DataConfig(input=str(words_file)))
    fitted = floor.fit(config, data, [2, 3, 4])
    devs = {order: _kn_dev(data, order) for order in (2, 3, 4)}
    best = min(devs, key=devs.get)
    assert fitted.config.model == "ngram" and fitted.config.model_config.order == best
    assert fitted.dev_loss == devs[best] and fitted.config.data == config.data
    assert floor.beats(fitted, None, fitted.dev_loss + 0.01) == fitted.dev_loss
    assert floor.beats(fitted, None, fitted.dev_loss - floor.MARGIN / 2) == fitted.dev_loss  # a tie: the n-gram
    assert floor.beats(fitted, None, fitted.dev_loss - 2 * floor.MARGIN) is None
    dev = data.corpus("dev")
    assert floor.beats(fitted, dev, 100.0) == pytest.approx(fitted.dev_loss, abs=1e-12)


@pytest.fixture
def weak_lstm(monkeypatch):
    """The rule picks a recurrent candidate that trains 3 steps: the count model must win."""
    weak = dataclasses.replace(auto.CANDIDATES["lstm-xs"], steps=3)
    monkeypatch.setitem(auto.CANDIDATES, "weak", weak)
    monkeypatch.setattr(auto, "RULE", (auto.Row(float("inf"), float("inf"), "weak", 3, "weak"),))


def test_a_better_count_model_becomes_the_run_and_says_so(tmp_path, words_file, weak_lstm, capsys):
    from makemore.cli import main

    run = tmp_path / "run"
    assert main(["train", "-i", str(words_file), "-o", str(run), "-q"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("auto: 1-layer LSTM of 64") and err[-1].startswith("auto: Kneser-Ney n-gram, order ")
    recorded = json.loads((run / "run.json").read_text())
    choice = recorded["auto"]
    assert recorded["model"]["kind"] == "ngram" and choice["kept"] == "count"
    assert choice["floor_orders"] == auto.count_orders(240, 3) == list(auto.FLOOR_ORDERS)
    assert choice["count_dev_loss"] <= choice["recurrent_dev_loss"] + floor.MARGIN
    data = api.load_data(api.DataConfig(input=str(words_file)))
    order = recorded["model"]["config"]["order"]
    assert choice["count_dev_loss"] == pytest.approx(_kn_dev(data, order), abs=1e-9)
    assert order == min(auto.FLOOR_ORDERS, key=lambda o: _kn_dev(data, o))
    assert api.evaluate(api.load_run(run), ("dev",))["dev"] == pytest.approx(choice["count_dev_loss"], abs=1e-6)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("train_loss" in r for r in rows) and rows[-1]["auto"] == choice["summary"]  # the LSTM's, then why


def test_given_recurrent_options_train_without_a_floor(tmp_path, words_file, weak_lstm):
    run = tmp_path / "run"
    config = api.RunConfig(auto=api.Auto(model_options={"n_hidden": 16}), data=api.DataConfig(input=str(words_file)))
    api.train(config, run, progress=False)
    recorded = json.loads((run / "run.json").read_text())
    assert recorded["model"]["kind"] == "lstm" and "floor_orders" not in recorded["auto"]


def test_a_count_pick_takes_the_order_best_on_dev_fitted_once(tmp_path, words_file, monkeypatch):
    monkeypatch.setattr(auto, "RULE", (auto.Row(float("inf"), float("inf"), "count", 3, "lstm-xs"),))
    from makemore.models.ngram import NGramModel

    fits, fit = [], NGramModel.fit_batcher
    monkeypatch.setattr(NGramModel, "fit_batcher", lambda self, b: fits.append(self.order) or fit(self, b))
    run = tmp_path / "run"
    metrics = api.train(api.RunConfig(auto=api.Auto(), data=api.DataConfig(input=str(words_file))), run, progress=False)
    assert fits == list(auto.FLOOR_ORDERS)  # each order fitted once: the best one is the run's, not fitted again
    choice = json.loads((run / "run.json").read_text())["auto"]
    data = api.load_data(api.DataConfig(input=str(words_file)))
    devs = {order: _kn_dev(data, order) for order in auto.FLOOR_ORDERS}
    best = min(devs, key=devs.get)
    assert choice["orders"] == list(auto.FLOOR_ORDERS) and choice["summary"].endswith(f"order {best} (best on dev)")
    assert metrics["dev_loss"] == pytest.approx(devs[best], abs=1e-9) == pytest.approx(choice["order_dev_loss"])
    assert api.load_run(run).description.model.config["order"] == best
