"""The benchmark scripts run end to end on a tiny corpus and write what they print.

Sizes are the smallest that exercise every code path; the numbers they measure are not
checked here (timings belong to the benchmarks), only what is exact or structural.
"""

from __future__ import annotations

import importlib.util
import json
import math
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from conftest import TINY_ALPHABET, make_tiny_words, write_words

# Each runs a benchmark or corpus script end to end (most in a subprocess): about two minutes in all on
# 2 cores, so they run with the slow checks (make test-slow, also in CI), not in the default suite.
pytestmark = pytest.mark.slow

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(name: str, monkeypatch):
    """Import ``benchmarks/<name>.py`` as a module (with ``benchmarks/`` on the path, as when run)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(BENCHMARKS / name), *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


@pytest.fixture
def corpus(tmp_path) -> tuple[Path, list[str]]:
    words = make_tiny_words(200, seed=3)
    return write_words(tmp_path / "words.txt", words), words


def add_one_bigram_nll(words: list[str]) -> float:
    """Mean NLL per character of the add-1 count bigram fitted on ``words`` themselves."""
    boundary = None
    pairs = Counter((a, b) for w in words for a, b in zip([boundary, *w], [*w, boundary]))
    row_totals = Counter()
    for (a, _), count in pairs.items():
        row_totals[a] += count
    vocab_size = len(TINY_ALPHABET) + 1
    total = sum(pairs.values())
    log_likelihood = sum(c * math.log((c + 1) / (row_totals[a] + vocab_size)) for (a, _), c in pairs.items())
    return -log_likelihood / total


def test_bench_ngram_reports_the_whole_corpus_bigram_nll(corpus, tmp_path):
    path, words = corpus
    out = tmp_path / "ngram.json"
    proc = run_script("bench_ngram.py", str(path), "--repeats", "1", "--orders", "2", "3", "--out", str(out))
    result = json.loads(out.read_text())
    assert result["all_words_order2_k1"] == pytest.approx(add_one_bigram_nll(words), abs=1e-5)
    rows = {(r["order"], r["smoothing"]) for r in result["rows"]}
    assert rows == {(o, s) for o in (2, 3) for s in ("add-k k=1", "add-k k=0.01", "kneser-ney")}
    assert all(0 < r["dev_nll"] < math.log(len(TINY_ALPHABET) + 1) + 1 for r in result["rows"])
    assert f"wrote {out}" in proc.stdout


def test_bench_train_reports_medians_and_keeps_earlier_results(corpus, tmp_path):
    path, _ = corpus
    out = tmp_path / "train.json"
    out.write_text(json.dumps({"mlp": {"median": {"dev_loss": 2.0}}}))
    options = "--configs bigram --repeats 3".split()
    run_script("bench_train.py", str(path), *options, "--out", str(out), *"--extra --steps 4 --eval-interval 4".split())
    result = json.loads(out.read_text())
    assert result["mlp"] == {"median": {"dev_loss": 2.0}}  # other configs' results are kept
    runs = result["bigram"]["runs"]
    assert len(runs) == 3 and all(r["steps"] == 4 for r in runs)
    assert len({r["dev_loss"] for r in runs}) == 3  # three seeds, three initialisations
    for key in ("dev_loss", "wall_s", "peak_rss_mb"):
        assert result["bigram"]["median"][key] == statistics.median(r[key] for r in runs)


def test_bench_transformer_speed_times_both_steps_and_samplers(corpus, tmp_path, monkeypatch):
    path, _ = corpus
    bench = load_script("bench_transformer_speed", monkeypatch)
    out = tmp_path / "speed.json"
    model = "--n-layer 1 --n-embd 8 --n-head 2".split()
    timing = "--steps 2 --rounds 2 --warmup 1 --train-steps 4 --sample-batches 3 7 --sample-names 3 --sample-rounds 1"
    bench.main([str(path), *model, *timing.split(), "--out", str(out)])
    result = json.loads(out.read_text())
    train = result["train"]
    assert result["speedup"] == pytest.approx(train["reference"]["ms_per_step"] / train["makemore"]["ms_per_step"])
    assert set(result["step_parts"]) == {"batch", "forward", "forward+backward", "optimizer", "whole step"}
    assert all(
        len(r["rounds_ms"]) == 2 and r["ms_per_step"] > 0 for r in [*train.values(), *result["step_parts"].values()]
    )
    assert sorted((r["sampler"], r["batch"]) for r in result["sample"]) == [
        ("makemore", 3),
        ("makemore", 7),
        ("reference", 3),
        ("reference", 7),
    ]


def test_bench_rnn_paths_times_both_paths_and_reports_the_models_pick(corpus, tmp_path, monkeypatch):
    path, _ = corpus
    bench = load_script("bench_rnn_paths", monkeypatch)
    out = tmp_path / "rnn_paths.json"
    bench.main(
        [str(path), "--configs", "gru", "lstm", "--steps", "1", "--rounds", "2", "--warmup", "1", "--out", str(out)]
    )
    configs = json.loads(out.read_text())["configs"]
    assert configs["gru"]["picks"] == "packed"
    assert configs["lstm"]["picks"] == ("padded" if torch.backends.mkldnn.is_available() else "packed")
    for result in configs.values():
        other = "packed" if result["picks"] == "padded" else "padded"
        assert result["gain"] == pytest.approx(result[other]["ms_per_step"] / result[result["picks"]]["ms_per_step"])
        assert len(result["packed"]["rounds_ms"]) == len(result["padded"]["rounds_ms"]) == 2


def test_bench_dropout_times_both_dropouts_and_restores_ours(corpus, tmp_path, monkeypatch):
    from makemore.models import base, rnn, transformer

    path, _ = corpus
    ours, our_attention = base.dropout, transformer.causal_attention_with_dropout
    bench = load_script("bench_dropout", monkeypatch)
    out = tmp_path / "dropout.json"
    timing = "--steps 1 --calls 2 --rounds 2 --warmup 1".split()
    bench.main([str(path), "--configs", "preset default", "transformer", *timing, "--out", str(out)])
    result = json.loads(out.read_text())
    assert base.dropout is ours and rnn.dropout is ours
    assert transformer.causal_attention_with_dropout is our_attention
    assert set(result["alone"]) == set(bench.SIZES)
    for timing in result["alone"].values():
        assert set(timing) == {
            f"{kind} {impl}" for kind in ("forward", "forward+backward") for impl in ("torch", "makemore")
        }
    assert set(result["steps"]) == {"preset default", "transformer"}
    for timing in result["steps"].values():
        assert timing["speedup"] == pytest.approx(timing["torch"]["ms_per_step"] / timing["makemore"]["ms_per_step"])
        assert len(timing["torch"]["rounds_ms"]) == len(timing["makemore"]["rounds_ms"]) == 2


def test_bench_compare_times_both_trees_in_turns(corpus, tmp_path):
    path, _ = corpus
    out = tmp_path / "compare.json"
    repo = BENCHMARKS.parent
    trees = ["--old", str(repo), "--new", str(repo)]
    extra = "--extra --steps 4 --eval-interval 2 --log-interval 2".split()
    run_script("bench_compare.py", str(path), *trees, "--configs", "mlp", "--rounds", "2", "--out", str(out), *extra)
    result = json.loads(out.read_text())["configs"]["mlp"]
    assert len(result["runs"]["old"]) == len(result["runs"]["new"]) == 2
    median = result["median"]
    assert result["steps_per_s_ratio"] == pytest.approx(median["new"]["steps_per_s"] / median["old"]["steps_per_s"])
    assert median["old"]["dev_nll"] == median["new"]["dev_nll"]  # the same tree trains the same model


def test_bench_reliability_counts_kills_loads_and_bad_inputs(tmp_path):
    out = tmp_path / "reliability.json"
    proc = run_script("bench_reliability.py", "--kills", "2", "--loads", "50", "--flips", "20", "--out", str(out))
    result = json.loads(out.read_text())
    assert (
        result["kills"]["all"]["tried"] == 2 and result["kills"]["all"]["identical"] == result["kills"]["all"]["landed"]
    )
    probes = {**result["hostile_requests"], **result["checkpoint_probes"]}
    assert set(probes) >= {"host forms", "numeric underflow", "regex bounds", "integrity (bit flips)"}
    assert all(row["clean"] == row["tried"] > 0 for row in probes.values()), probes
    assert result["checkpoint_probes"]["integrity (bit flips)"]["tried"] == 20
    assert sum(row["tried"] for row in result["bad_input_classes"].values()) == result["bad_inputs"]["tried"]
    assert f"wrote {out}" in proc.stdout


def test_bench_sampling_reports_acceptance_per_constraint(trained_run, tmp_path):
    out = tmp_path / "sampling.json"
    run_script(
        "bench_sampling.py", "--run", str(trained_run.out_dir), "--num", "30", "--rounds", "2", "--out", str(out)
    )
    rows = json.loads(out.read_text())["rows"]
    # the tiny corpus has no 'r': that constraint is reported impossible and skipped
    assert set(rows) == {"none", "--suffix a", "--exclude-chars aeiou", "--regex '^[^aeiou]+$'"}
    assert rows["none"]["acceptance"] == rows["--exclude-chars aeiou"]["acceptance"] == 1.0  # masking draws no extra
    assert 0 < rows["--suffix a"]["acceptance"] < 1
    for row in rows.values():
        assert len(row["rounds"]) == 2 and row["found"] == 30 and row["items_per_s"] > 0
        assert all(r["acceptance"] == pytest.approx(r["found"] / r["tried"]) for r in row["rounds"])


def test_bench_time_budget_reports_asked_and_taken(corpus, tmp_path, monkeypatch):
    path, _ = corpus
    bench = load_script("bench_time_budget", monkeypatch)
    out = tmp_path / "time_budget.json"
    tiny = "--model mlp --n-embd 4 --n-hidden 16 --batch-size 16 --eval-interval 200".split()
    bench.main(["--budgets", "8s", "--input", str(path), "--out", str(out), "--extra", *tiny])
    (run,) = json.loads(out.read_text())["budgets"]["8s"]["runs"]
    assert run["asked_s"] == 8.0 and run["planned_steps"] == run["calibration"]["steps"] > 0
    assert run["error_pct"] == pytest.approx(100 * (run["taken_s"] - 8.0) / 8.0)
    assert run["stopped_at_deadline"] == (run["steps"] < run["planned_steps"])
    assert f"{run['steps']} " in run["stdout"] and "steps in" in run["stdout"]


def test_bench_serve_reports_latencies_sequential_and_concurrent(trained_run, tmp_path, monkeypatch):
    bench = load_script("bench_serve", monkeypatch)
    out = tmp_path / "serve.json"
    bench.main(["--run", str(trained_run.out_dir), "--requests", "8", "--n", "10", "--clients", "2", "--out", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert set(rows) == {"generate n=10, 1 client", "score, 1 client", "generate n=10, 2 clients", "score, 2 clients"}
    for row in rows.values():
        assert row["requests"] == 8 and 0 < row["median_ms"] <= row["p95_ms"] <= row["max_ms"]
    assert bench.percentile([1, 2, 3, 4, 5], 50) == 3 and bench.percentile([0, 10], 95) == 9.5


def test_bench_threads_times_each_setting_alone_and_beside_a_busy_core(corpus, tmp_path):
    path, _ = corpus
    out = tmp_path / "threads.json"
    args = ["--configs", "mlp", "--threads", "1", "--rounds", "1", "--warmup", "1", "--steps", "3"]
    run_script("bench_threads.py", *args, "--input", str(path), "--out", str(out))
    result = json.loads(out.read_text())
    (row,) = result["rows"]
    assert (row["config"], row["threads"], row["policy"]) == ("mlp", 1, "default")
    assert row["alone"] > 0 and row["busy"] > 0 and row["ratio"] == pytest.approx(row["busy"] / row["alone"])
    assert sorted(result["rounds"]) == ["mlp 1 default False", "mlp 1 default True"]


def test_bench_threads_times_sampling_with_the_auto_policy(trained_run, tmp_path):
    out = tmp_path / "threads.json"
    args = ["--configs", "serve-100", "--threads", "0", "--rounds", "1", "--warmup", "1", "--steps", "3"]
    run_script("bench_threads.py", *args, "--run", str(trained_run.out_dir), "--out", str(out))
    (row,) = json.loads(out.read_text())["rows"]
    assert (row["config"], row["threads"]) == ("serve-100", 0)
    assert row["alone"] > 0 and row["busy"] > 0


def test_bench_batching_reports_padding_and_both_batchings(tmp_path, monkeypatch):
    bench = load_script("bench_batching", monkeypatch)
    words = [w * (1 + i % 7) for i, w in enumerate(make_tiny_words(3000, seed=5))]  # a long tail of lengths
    path = write_words(tmp_path / "tail.txt", words)
    out = tmp_path / "batching.json"
    bench.main([str(path), "--steps", "1", "--rounds", "1", "--warmup", "0", "--out", str(out)])
    entry = json.loads(out.read_text())["corpora"]["tail.txt"]
    assert entry["items"] == 3000 and entry["longest"] <= max(len(w) for w in words)
    assert entry["padding"]["length"] < 0.5 * entry["padding"]["random"]
    assert set(entry["timing"]) == {"random/padded", "random/packed", "length/padded", "length/packed"}


def test_make_synthetic_corpus_is_deterministic(tmp_path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "make_synthetic_corpus.py"
    words = write_words(tmp_path / "dict.txt", ["alpha", "beta", "Gamma", "don't", "delta"])
    outs = []
    for name in ("a.txt", "b.txt"):
        proc = subprocess.run(
            [
                sys.executable,
                str(script),
                "--kind",
                "packages",
                "--words",
                str(words),
                "-n",
                "500",
                "-o",
                str(tmp_path / name),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        outs.append((tmp_path / name).read_text().splitlines())
    assert outs[0] == outs[1] and len(outs[0]) == 500
    parts = [item.split("-") for item in outs[0]]
    assert {p for item in parts for p in item} <= {"alpha", "beta", "gamma", "delta"}  # letters-only words, lowercased
    counts = Counter(len(item) for item in parts)
    assert max(counts) <= 6 and 0.4 < counts[1] / 500 < 0.6  # half the names are one word


def test_make_synthetic_corpus_samples_names_from_a_count_model(tmp_path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "make_synthetic_corpus.py"
    words = write_words(tmp_path / "words.txt", make_tiny_words(300, seed=1))
    outs = []
    for name in ("a.txt", "b.txt"):
        command = [
            sys.executable,
            str(script),
            "--words",
            str(words),
            "-n",
            "300",
            "--order",
            "3",
            "-o",
            str(tmp_path / name),
        ]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        outs.append((tmp_path / name).read_text().splitlines())
    assert outs[0] == outs[1] and len(outs[0]) == 300 and all(outs[0])
    assert set("".join(outs[0])) <= set(TINY_ALPHABET)


def test_bench_scale_times_every_stage_and_measures_each_process(tmp_path, monkeypatch):
    bench = load_script("bench_scale", monkeypatch)
    words = make_tiny_words(300, seed=4)
    path = write_words(tmp_path / "synthetic-300.txt", words)  # the corpus the script would have made
    out = tmp_path / "scale.json"
    options = "--sizes 300 --train-items 0 --steps 2 --samples 20 --threads 1 --inline".split()
    bench.main([*options, "--corpus-dir", str(tmp_path), "--out", str(out)])
    rows = {row["stage"]: row for row in json.loads(out.read_text())["rows"]}
    assert set(rows) == set(bench.STAGES)
    assert rows["read"]["items"] == 300 and rows["read"]["train"] == 240 and rows["read"]["dtype"] == "uint8"
    assert rows["dedupe"]["kept"] == len(set(words))
    assert rows["eval"]["dev_items"] == 30 and 0 < rows["eval"]["nll"] < float("inf")
    assert rows["sample"]["sampled"] == 20 and rows["step"]["steps"] == 2
    assert all(row["seconds"] >= 0 and row["rss_mb"] > 0 for row in rows.values())
    alone = bench.run_stage("dedupe", path, {}, inline=False)  # in a process of its own: its own peak RSS
    assert alone["kept"] == len(set(words)) and 0 < alone["rss_mb"] < rows["dedupe"]["rss_mb"] * 10


def test_bench_drift_compares_two_processes_and_two_threads_with_one(tmp_path):
    out = tmp_path / "drift.json"
    run_script("bench_drift.py", "--stages", "1", "3", "--out", str(out))
    rows = json.loads(out.read_text())["rows"]
    assert [row["steps"] for row in rows] == [1, 3]
    for row in rows:
        assert 0 <= row["torchrun x2 weights"] < 1e-4 and 0 <= row["2 threads weights"] < 1e-4
        assert row["torchrun x2 losses"] < 1e-5


def test_bench_export_measures_every_file_and_runtime_per_weight_type(corpus, tmp_path, monkeypatch, capsys):
    path, _ = corpus
    bench = load_script("bench_export", monkeypatch)
    out = tmp_path / "export.json"
    sizes = "--steps 2 --names 10 --repeats 2".split()
    bench.main([str(path), "--families", "mlp", "ngram", "--weights", "float32", "int8", *sizes, "--out", str(out)])
    result = json.loads(out.read_text())
    rows = {(r["family"], r["weights"]): r for r in result["rows"]}
    assert list(rows) == [("mlp", "float32"), ("mlp", "int8"), ("ngram", "float32"), ("ngram", "int8")]
    assert all(r["size_html"] > 0 and r["size_js"] > 0 and r["pytorch_names_per_s"] > 0 for r in rows.values())
    assert rows["mlp", "int8"]["size_html"] < rows["mlp", "float32"]["size_html"]  # a quarter of the weights' bytes
    assert rows["mlp", "float32"]["nll_change"] == 0.0 and rows["mlp", "int8"]["nll_change"] is not None
    assert [r["size_arpa"] is not None for r in rows.values()] == [False, False, True, False]  # count models, float32
    # ONNX: neural models, every weight type (when the export extra is installed); count models "-" with a note
    exporter = all(importlib.util.find_spec(name) for name in ("onnx", "onnxscript"))
    assert [r["size_onnx"] is not None for r in rows.values()] == [exporter, exporter, False, False]
    if exporter:
        assert rows["mlp", "int8"]["size_onnx"] < rows["mlp", "float32"]["size_onnx"]
    assert any("ngram float32" in where for where in result["notes"].values())
    tools = result["tools"]  # tool -> why it is missing (null: it ran)
    for where, row in rows.items():
        for tool in ("onnxruntime", "node", "chromium"):
            error = row[f"error_{tool}"]
            if tools[tool] or (tool == "onnxruntime" and row["size_onnx"] is None):
                assert error is None, (where, tool)
            else:  # the runtime computes what PyTorch does with the stored weights
                assert error < 1e-4, (where, tool)
        if not tools["node"]:
            assert len(row["details"]["node"]["runs"]) == 2 and row["node_names_per_s"] > 0
        if not tools["chromium"]:
            assert len(row["details"]["chromium"]["runs"]) == 2 and row["chromium_first20_ms"] > 0
    if exporter and not tools["onnxruntime"]:
        row = rows["mlp", "float32"]
        assert row["ort_vs_pytorch"] == pytest.approx(row["onnxruntime_names_per_s"] / row["pytorch_names_per_s"])
        assert len(result["families"]["mlp"]["sampling_rounds"]["float32"]) == 2
    printed = capsys.readouterr().out
    assert "err chr" in printed and f"wrote {out}" in printed


def test_bench_auto_trains_the_cells_and_reports_what_auto_ends_with(tmp_path, monkeypatch):
    from makemore import api, auto

    bench = load_script("bench_auto", monkeypatch)
    work, out = tmp_path / "work", tmp_path / "auto.json"
    bench.main(["--work", str(work), "--lists", "names:200", "--budgets", "6s"])
    rows = {bench.key(r): r for r in map(json.loads, (work / "rows.jsonl").read_text().splitlines())}
    count = rows["names/200//count/"]
    assert [r["order"] for r in count["orders"]] == list(bench.ORDERS) and count["train_items"] == 160
    assert count["order"] == min(count["orders"], key=lambda r: r["dev"])["order"]  # chosen on dev
    trained = [r for r in rows.values() if r.get("budget") == "6s"]
    assert sorted(r["model"] for r in trained) == sorted(bench.candidates_for(200, "6s"))
    assert all(r["steps"] <= r["max_steps"] and r["test"] > 0 for r in trained if "refused" not in r)
    bench.main(["--work", str(work), "--lists", "names:200", "--budgets", "6s"])  # done cells are not trained again
    assert len((work / "rows.jsonl").read_text().splitlines()) == len(rows)
    (cell,) = bench.main(["--work", str(work), "--report", "--out", str(out)])["cells"]
    data = api.load_data(api.DataConfig(input=str(work / "names-200.txt")))
    assert count["train_targets"] == data.corpus("train").num_targets
    name, order, _ = auto.choose(auto.Stats(160, count["train_targets"], 26, 0), 6.0, auto.Auto())
    if auto.CANDIDATES[name].counts:
        assert cell["auto_test"] == next(r["test"] for r in count["orders"] if r["order"] == order)
    else:
        floor = min(count["orders"], key=lambda r: r["dev"])
        lstm = rows[f"names/200/6s/{name}/"]
        assert cell["auto_test"] == (floor["test"] if floor["dev"] < lstm["dev"] else lstm["test"])
    assert json.loads(out.read_text())["cells"] == [cell]
