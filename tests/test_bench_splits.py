"""benchmarks/bench_splits.py runs end to end on tiny split files: its n-gram numbers are exact."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest

from conftest import make_tiny_words, write_words

pytestmark = pytest.mark.slow  # trains a preset a few steps (with the benchmarks' smoke tests)


def add_k_nll(order: int, k: float, train: list[str], items: list[str], vocab_size: int) -> float:
    """Mean NLL per character (end included) of ``items`` under the add-k n-gram of ``train``,
    each item read after ``order - 1`` boundaries (None)."""

    def grams(words):
        for w in words:
            padded = [None] * (order - 1) + list(w) + [None]
            yield from (tuple(padded[i : i + order]) for i in range(len(padded) - order + 1))

    counts = Counter(grams(train))
    contexts = Counter()
    for gram, c in counts.items():
        contexts[gram[:-1]] += c
    logps = [math.log((counts[g] + k) / (contexts[g[:-1]] + k * vocab_size)) for g in grams(items)]
    return -sum(logps) / len(logps)


def test_bench_splits_end_to_end(tmp_path, monkeypatch, capsys):
    from test_benchmarks import load_script

    words = make_tiny_words(260, seed=11)
    train, val, test = words[:200], [*words[200:230], "zz"], words[230:]  # 'z' only in val
    paths = [write_words(tmp_path / f"{name}.txt", part) for name, part in zip(("t", "v", "s"), (train, val, test))]
    bench = load_script("bench_splits", monkeypatch)
    out = tmp_path / "splits.json"
    args = ["--train", paths[0], "--val", paths[1], "--test", paths[2], "--orders", "3", "--ks", "0.1", "1"]
    args += ["--discounts", "0.75", "--presets", "lecture2", "--steps", "5", "--out", out]
    result = bench.main([str(a) for a in args])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    printed = capsys.readouterr().out
    assert "| EurekaLabsAI/ngram 4-gram (published) | 2.1118 | 2.1064 |" in printed

    add_k, kneser_ney, preset = result["rows"]
    vocab_size = len(set("".join(words + ["zz"]))) + 1  # every file's characters and the boundary
    for tried in add_k["tried"]:
        assert tried["val_nll"] == pytest.approx(add_k_nll(3, tried["k"], train, val, vocab_size), abs=1e-5)
        assert tried["test_nll"] == pytest.approx(add_k_nll(3, tried["k"], train, test, vocab_size), abs=1e-5)
    assert add_k["val_nll"] == min(t["val_nll"] for t in add_k["tried"])
    assert add_k["model"] == f"ngram order 3 add-k (k={add_k['k']:g})" and add_k["model"] in printed
    assert kneser_ney["smoothing"] == "kneser-ney" and math.isfinite(kneser_ney["test_nll"])
    assert preset["preset"] == "lecture2" and preset["steps"] == 5
    assert math.isfinite(preset["val_nll"]) and math.isfinite(preset["test_nll"])
    assert [f["items"] for f in result["files"].values()] == [200, 31, 30]
