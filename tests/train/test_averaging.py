"""Weight averaging: the moving average's maths, evaluation of both, best/last and exact resume."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import tiny_mlp_config, write_words
from makemore import api
from makemore.store.checkpoint import load_checkpoint
from makemore.train.averaging import WeightAverage, evaluate_with_average


def test_the_average_is_the_exponential_moving_average_of_the_weights():
    model = torch.nn.Linear(3, 2).double()
    decay = 0.9
    history = [model.weight.detach().clone()]
    average = WeightAverage(model, decay)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        with torch.no_grad():
            model.weight.add_(torch.randn(model.weight.shape, generator=g, dtype=torch.float64))
        history.append(model.weight.detach().clone())
        average.update()
    k = len(history) - 1
    want = decay**k * history[0] + sum((1 - decay) * decay ** (k - i) * history[i] for i in range(1, k + 1))
    torch.testing.assert_close(average.state_dict()["weight"], want, rtol=0, atol=1e-12)


def test_swapped_evaluates_the_average_and_puts_the_weights_back():
    model = torch.nn.Linear(2, 1)
    average = WeightAverage(model, 0.5)
    with torch.no_grad():
        model.weight.fill_(2.0)
    average.update()  # average = (w0 + 2) / 2
    weights = model.weight.detach().clone()
    seen = []

    def evaluate(m):
        seen.append(m.weight.detach().clone())
        return float(m.weight.detach().sum())

    both = evaluate_with_average(evaluate, average)
    assert both(model) == min(float(seen[0].sum()), float(seen[1].sum()))
    assert torch.equal(seen[0], weights) and torch.equal(seen[1], average.state_dict()["weight"])
    assert torch.equal(model.weight, weights)
    assert average.best_is_average == (float(seen[1].sum()) < float(seen[0].sum()))


def test_a_resumed_run_with_averaging_is_bit_identical(tmp_path, tiny_words):
    words = write_words(tmp_path / "words.txt", tiny_words)
    config = tiny_mlp_config(words, steps=12, eval_interval=4, log_interval=2, ema=0.9, schedule="constant")
    api.train(config, tmp_path / "straight", progress=False)
    api.train(
        tiny_mlp_config(words, steps=6, eval_interval=4, log_interval=2, ema=0.9, schedule="constant"),
        tmp_path / "part",
        progress=False,
    )
    api.resume(tmp_path / "part", steps=12, progress=False)
    for which in ("last", "best"):
        a = load_checkpoint(tmp_path / "straight" / f"{which}.safetensors")
        b = load_checkpoint(tmp_path / "part" / f"{which}.safetensors")
        for name in a.model_state:
            assert torch.equal(a.model_state[name], b.model_state[name]), (which, name)
    a, b = (load_checkpoint(tmp_path / d / "last.safetensors") for d in ("straight", "part"))
    assert a.average_state.keys() == {n for n, _ in api.load_run(tmp_path / "part").model.named_parameters()}
    for name in a.average_state:
        assert torch.equal(a.average_state[name], b.average_state[name]), name


def test_best_holds_the_average_when_it_evaluates_better(tmp_path, tiny_words):
    words = write_words(tmp_path / "words.txt", tiny_words)
    run = tmp_path / "run"
    metrics = api.train(tiny_mlp_config(words, steps=40, eval_interval=40, lr=0.05, ema=0.8), run, progress=False)
    best, last = load_checkpoint(run / "best.safetensors"), load_checkpoint(run / "last.safetensors")
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    dev = [r for r in rows if "dev_loss" in r][-1]
    live, averaged = dev["dev_loss_weights"], dev["dev_loss_average"]
    assert dev["dev_loss"] == min(live, averaged)
    want = last.average_state if averaged < live else {k: v for k, v in last.model_state.items()}
    for name, value in want.items():
        assert torch.equal(best.model_state[name], value), name
    assert metrics["dev_loss"] == pytest.approx(min(live, averaged), abs=1e-9)


def test_ema_is_validated():
    with pytest.raises(api.ConfigError, match="ema"):
        api.TrainConfig(ema=1.0)
