"""Neural bigram: same math as a one-hot matmul, and trained long enough it matches counting."""

from __future__ import annotations

import pytest
import torch

from makemore import api
from makemore.evaluate.scoring import evaluate_nll
from makemore.models import build_model, make_config


def test_logits_are_one_hot_times_w():
    torch.manual_seed(0)
    model = build_model("bigram", make_config("bigram", {"reg": 0.0}), 7)
    idx = torch.randint(0, 7, (20, 1))
    logits, _ = model(idx)
    xenc = torch.nn.functional.one_hot(idx[:, 0], 7).float()
    torch.testing.assert_close(logits, xenc @ model.W)


def test_l2_penalty_added_to_loss():
    torch.manual_seed(0)
    model = build_model("bigram", make_config("bigram", {"reg": 0.5}), 5)
    idx, y = torch.randint(0, 5, (10, 1)), torch.randint(0, 5, (10,))
    logits, loss = model(idx, y)
    expected = torch.nn.functional.cross_entropy(logits, y) + 0.5 * (model.W**2).mean()
    torch.testing.assert_close(loss, expected)


@pytest.mark.slow  # 1,000 full-batch steps over 200k examples: about 40 s on 2 cores (CI runs -m slow)
def test_neural_bigram_matches_count_bigram_on_builtin_corpus(tmp_path):
    """Full-batch gradient descent ends within 0.005 of the count model's train NLL (k=1)."""
    data = api.load_data(api.DataConfig())
    corpus = data.corpus("train")
    count = build_model("ngram", make_config("ngram", {"order": 2, "k": 1.0}), data.vocab.size)
    batcher = count.batcher(corpus)
    count.fit(batcher.X, batcher.Y)
    count_nll = evaluate_nll(count, batcher)

    cfg = api.RunConfig(model="bigram", model_config=make_config("bigram"), train=api.default_train_config("bigram"))
    metrics = api.train(cfg, tmp_path / "bigram", progress=False)
    assert abs(metrics["train_loss"] - count_nll) < 0.005, (metrics["train_loss"], count_nll)
