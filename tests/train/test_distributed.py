"""Training with several processes (torchrun, DDP): the same run as one process.

Each rank draws the same global batch and trains on its slice, losses are weighted by the global
count of targets, BatchNorm takes its statistics over the global batch and the dev split is
evaluated in shards: so a 2-process run's per-step losses, dev losses and final weights are a
1-process run's up to float rounding. The 2-process runs use gloo on CPU (as CI has); the nccl
check needs two GPUs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import make_tiny_words, run_cli, write_words
from makemore.data.corpus import EncodedCorpus, Vocab
from makemore.data.datasets import DEFAULT_DATASET, builtin_path
from makemore.errors import ConfigError
from makemore.evaluate import scoring
from makemore.models import build_model, make_config
from makemore.train import distributed

STEPS = 30
COMMON = ["--steps", STEPS, "--batch-size", 32, "--log-interval", 1, "--eval-interval", 10, "-q", "--seed", 3]
CONFIGS = {
    "mlp": ["--model", "mlp"],
    "lstm": ["--preset", "default", "--dropout", 0, "--embed-dropout", 0, "--weight-dropout", 0],
    "transformer": ["--model", "transformer", "--n-layer", 2, "--n-embd", 32, "--dropout", 0],
    "bn-mlp": ["--model", "bn-mlp"],
    "bn-mlp-manual": ["--model", "bn-mlp", "--backward", "manual"],
}
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def words_file(tmp_path_factory) -> Path:
    """1,500 items of the built-in corpus. (Real letters matter: on the tiny test alphabet a weight
    whose gradient is rounding noise moves by Adam's full step, one way or the other.)"""
    words = builtin_path(DEFAULT_DATASET).read_text(encoding="utf-8").splitlines()[:1500]
    return write_words(tmp_path_factory.mktemp("data") / "words.txt", words)


def cpu_env(cwd: Path) -> dict[str, str]:
    """One thread per process, no GPU, and torchrun's own log directories under the test's ``cwd``."""
    scratch = cwd.parent / "torchrun-tmp"
    scratch.mkdir(exist_ok=True)
    return {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "TMPDIR": str(scratch)}


def torchrun(cwd: Path, nproc: int, *args, timeout: float = 240) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=NPROC -m makemore ARGS`` on CPU (one thread each)."""
    env = cpu_env(cwd)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    command += ["-m", "makemore", *map(str, args)]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def rows(run_dir: Path, key: str) -> list[tuple[int, float]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [(r["step"], r[key]) for r in map(json.loads, lines) if key in r]


def assert_same_run(one: Path, two: Path, tolerance: float = TOLERANCE) -> None:
    """Per-step train losses, dev losses and the final weights agree within ``tolerance``."""
    for key in ("train_loss", "dev_loss"):
        a, b = rows(one, key), rows(two, key)
        assert [s for s, _ in a] == [s for s, _ in b] and a, key
        worst = max(abs(x - y) for (_, x), (_, y) in zip(a, b))
        assert worst <= tolerance, (key, worst)
    wa, wb = load_file(one / "last.safetensors"), load_file(two / "last.safetensors")
    assert wa.keys() == wb.keys()
    for name in wa:
        if wa[name].is_floating_point():
            torch.testing.assert_close(
                wb[name], wa[name], rtol=tolerance, atol=tolerance, msg=lambda m, n=name: f"{n}: {m}"
            )
        else:
            assert torch.equal(wa[name], wb[name]), name


def train_both(
    tmp_path: Path, capsys, words_file: Path, config: list, common: list = COMMON
) -> tuple[Path, Path, subprocess.CompletedProcess]:
    one, two = tmp_path / "one", tmp_path / "two"
    args = ["train", "-i", words_file, *common, *config]
    threads = ["--threads", 1] if common else []  # a count model takes no training options
    code, _, err = run_cli(capsys, *args, "-o", one, *threads)
    assert code == 0, err
    work = tmp_path / "work"
    work.mkdir()
    result = torchrun(work, 2, *args, "-o", two)
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(work.iterdir()) == []  # nothing written beside the run directory
    return one, two, result


@pytest.mark.slow
def test_two_processes_train_the_mlp_as_one(tmp_path, capsys, words_file):
    one, two, result = train_both(tmp_path, capsys, words_file, CONFIGS["mlp"])
    assert_same_run(one, two)
    # only rank 0 reports and writes: one summary line, the files of one run
    assert result.stdout.count("train NLL") == 1, result.stdout
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    meta = json.loads((two / "run.json").read_text())
    assert meta["processes"] == 2 and "processes" not in json.loads((one / "run.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in CONFIGS if n != "mlp"])
def test_two_processes_train_as_one(tmp_path, capsys, words_file, name):
    one, two, _ = train_both(tmp_path, capsys, words_file, CONFIGS[name])
    assert_same_run(one, two)


@pytest.mark.slow
def test_a_count_model_is_fitted_once_by_rank_zero(tmp_path, capsys, words_file):
    one, two, result = train_both(tmp_path, capsys, words_file, ["--model", "ngram", "--order", 3, "-q"], common=[])
    assert result.stdout.count("train NLL") == 1, result.stdout
    assert load_file(one / "best.safetensors").keys() == load_file(two / "best.safetensors").keys()
    for name, tensor in load_file(one / "best.safetensors").items():
        assert torch.equal(load_file(two / "best.safetensors")[name], tensor), name


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _wait_for_checkpoint(run_dir: Path, process: subprocess.Popen, step: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if (run_dir / "metrics.jsonl").exists() and any(s >= step for s, _ in rows(run_dir, "dev_loss")):
            return
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint at step {step} within {timeout} s")


@pytest.mark.slow
@pytest.mark.parametrize("killed", [0, 1])
def test_a_killed_rank_ends_the_run_and_resume_finishes_it_with_two_or_one_processes(
    tmp_path, capsys, words_file, killed
):
    run_dir, work = tmp_path / "run", tmp_path / "work"
    work.mkdir()
    args = ["train", "-i", words_file, "--model", "mlp", "--steps", 4000, "--eval-interval", 40, "-q", "--seed", 5]
    env = cpu_env(work)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "makemore"]
    process = subprocess.Popen(
        [*command, *map(str, args), "-o", str(run_dir)],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_checkpoint(run_dir, process, 80)
        ranks = _children(process.pid)  # the agent starts rank 0 first
        assert len(ranks) == 2
        os.kill(ranks[killed], signal.SIGKILL)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    # the run ends with a clear cause: the surviving rank's line when it reaches a collective
    # first, else torchrun's report (its agent stops the other ranks once it sees one exit)
    text = err.decode()
    said = "another process of this run stopped" in text
    reported = re.search(rf"Root Cause.*?rank\s*: {killed} \(local_rank: {killed}\).*?SIGKILL", text, re.S)
    assert said or reported, text[-2000:]
    assert list(work.iterdir()) == []
    kept = rows(run_dir, "dev_loss")[-1][0]
    assert 80 <= kept < 4000
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    result = torchrun(work, 2, "train", "-o", run_dir, "--resume", "--steps", kept + 120, "-q")
    assert result.returncode == 0, result.stderr[-3000:]
    code, _, err = run_cli(capsys, "train", "-o", copy, "--resume", "--steps", kept + 120, "-q", "--threads", 1)
    assert code == 0, err
    assert rows(run_dir, "dev_loss")[-1][0] == rows(copy, "dev_loss")[-1][0] == kept + 120
    assert_same_run(run_dir, copy, tolerance=1e-4)


@pytest.mark.slow
def test_sigterm_to_torchrun_stops_every_rank_at_one_step_and_saves(tmp_path, capsys, words_file):
    run_dir, work = tmp_path / "run", tmp_path / "work"
    work.mkdir()
    args = ["train", "-i", words_file, "--model", "mlp", "--steps", 6000, "--eval-interval", 40, "-q", "--seed", 5]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "makemore"]
    process = subprocess.Popen(
        [*command, *map(str, args), "-o", str(run_dir)], cwd=work, env=cpu_env(work), stderr=subprocess.PIPE
    )
    try:
        _wait_for_checkpoint(run_dir, process, 40)
        process.send_signal(signal.SIGTERM)  # torchrun passes it on to every rank
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    err = err.decode()
    assert err.count("last checkpoint saved") == 1, err[-3000:]  # rank 0 says it, once
    step = json.loads((run_dir / "run.json").read_text())["state"]["step"]
    assert f"interrupted at step {step};" in err and 40 <= step < 6000
    result = torchrun(work, 2, "train", "-o", run_dir, "--resume", "--steps", step + 50, "-q")
    assert result.returncode == 0, result.stderr[-3000:]
    assert rows(run_dir, "train_loss")[-1][0] == step + 50


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_two_gpus_with_nccl_train_as_one(tmp_path, words_file):
    runs = {}
    for nproc in (1, 2):
        env = {**os.environ, "TMPDIR": str(tmp_path)}
        env.pop("CUDA_VISIBLE_DEVICES", None)
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
        args = ["train", "-i", words_file, *COMMON, *CONFIGS["lstm"], "--device", "cuda", "--backend", "nccl"]
        runs[nproc] = tmp_path / f"gpu{nproc}"
        result = subprocess.run(
            [*command, "-m", "makemore", *map(str, args), "-o", str(runs[nproc])],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    assert_same_run(runs[1], runs[2], tolerance=1e-4)  # GPU kernels reduce in other orders


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["ngram", "bigram", "mlp", "bn-mlp", "wavenet", "rnn", "gru", "lstm", "transformer"])
def test_every_model_trains_on_cuda(tmp_path, capsys, words_file, name):
    code, _, err = run_cli(capsys, "train", "-i", words_file, "--model", name, "--steps", 20, "-q",
                           "--device", "cuda", "-o", tmp_path / "run")  # fmt: skip
    assert code == 0, err
    code, out, err = run_cli(capsys, "sample", tmp_path / "run", "-n", 5, "--seed", 1)
    assert code == 0 and len(out.splitlines()) == 5, err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_and_compile_train_on_cuda(tmp_path, capsys, words_file):
    for flags in (["--dtype", "bf16"], ["--compile"], ["--dtype", "bf16", "--compile"]):
        out_dir = tmp_path / "-".join(f.strip("-") for f in flags)
        code, _, err = run_cli(capsys, "train", "-i", words_file, *COMMON, *CONFIGS["lstm"], "--device", "cuda",
                               *flags, "-o", out_dir)  # fmt: skip
        assert code == 0, err


def test_bf16_autocast_trains_on_cpu_close_to_float32(tmp_path, capsys, words_file):
    losses = {}
    for dtype in ("float32", "bf16"):
        out_dir = tmp_path / dtype
        code, _, err = run_cli(capsys, "train", "-i", words_file, *COMMON, *CONFIGS["mlp"], "--dtype", dtype,
                               "--threads", 1, "-o", out_dir)  # fmt: skip
        assert code == 0, err
        losses[dtype] = [loss for _, loss in rows(out_dir, "train_loss")]
    assert losses["float32"] != losses["bf16"]  # the forward really ran in bfloat16...
    assert max(abs(a - b) for a, b in zip(losses["float32"], losses["bf16"])) < 0.05  # ...and trains the same


def test_compile_is_refused_on_cpu(tmp_path, capsys, words_file):
    code, out, err = run_cli(capsys, "train", "-i", words_file, "--model", "mlp", "--compile", "-o", tmp_path / "r")
    assert code == 2 and out == "" and "--compile" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_a_time_budget_or_a_batch_smaller_than_the_processes_is_refused(tmp_path, capsys, words_file, monkeypatch):
    for name, value in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)
    for flags, named in ((["--time", "10s"], "--time"), (["--batch-size", "1"], "--batch-size")):
        code, out, err = run_cli(capsys, "train", "-i", words_file, "--model", "mlp", *flags, "-o", tmp_path / "r")
        assert code == 2 and out == "" and named in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "r").exists()


# The pieces, one process.


@pytest.mark.parametrize("n, size", [(10, 2), (10, 3), (1, 2), (32, 8), (5, 8)])
def test_local_rows_cover_the_global_batch_once(n, size):
    parts = [distributed.local_rows(n, distributed.World(rank, size, rank, size)) for rank in range(size)]
    assert sorted(torch.cat(parts).tolist()) == list(range(n))
    assert max(p.numel() for p in parts) - min(p.numel() for p in parts) <= 1


def test_world_comes_from_torchrun_variables():
    assert distributed.from_environment({}) is None
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    world = distributed.from_environment(env)
    assert (world.rank, world.size, world.local_rank, world.local_size, world.main) == (3, 4, 1, 2, False)
    assert distributed.device_for(torch.device("cuda"), world) == torch.device("cuda", 1)
    assert distributed.device_for(torch.device("cpu"), world) == torch.device("cpu")


def test_backend_follows_the_device():
    assert distributed.backend_for("auto", torch.device("cpu")) == "gloo"
    assert distributed.backend_for("auto", torch.device("cuda", 0)) == "nccl"
    assert distributed.backend_for("gloo", torch.device("cuda", 0)) == "gloo"
    with pytest.raises(ConfigError, match="nccl"):
        distributed.backend_for("nccl", torch.device("cpu"))


def test_ranks_draw_different_dropout_seeds_that_depend_on_the_step():
    seeds = {distributed.rank_seed(7, rank, step) for rank in range(1, 4) for step in range(5)}
    assert len(seeds) == 15 and 7 not in seeds


def test_shards_cover_the_dev_items_once_and_their_nll_sums_to_the_whole():
    words = make_tiny_words(101, seed=2)
    vocab = Vocab.from_words(words)
    corpus = EncodedCorpus.from_words(words, vocab)
    for count in (1, 2, 3, 7):
        shards = [corpus.shard(i, count) for i in range(count)]
        assert [s.item_tokens(j) for s in shards for j in range(len(s))] == [
            corpus.item_tokens(i) for i in range(len(corpus))
        ]
        assert sum(s.num_targets for s in shards) == corpus.num_targets
    # a subset is the corpus of those items
    items = torch.tensor([5, 0, 100, 5])
    subset = corpus.subset(items)
    again = EncodedCorpus.from_words([words[i] for i in items], vocab)
    assert torch.equal(subset.tokens, again.tokens) and torch.equal(subset.starts, again.starts)


@pytest.mark.parametrize("family", ["mlp", "lstm"])
def test_sharded_nll_sums_are_the_whole_corpus_nll(family):
    words = make_tiny_words(101, seed=2)
    vocab = Vocab.from_words(words)
    corpus = EncodedCorpus.from_words(words, vocab)
    torch.manual_seed(0)
    model = build_model(family, make_config(family), vocab.size)
    whole = -scoring.target_log_probs(model, model.batcher(corpus)).double()
    parts = [scoring.nll_sum_count(model, model.batcher(corpus.shard(i, 3))) for i in range(3)]
    assert sum(count for _, count in parts) == whole.numel() == corpus.num_targets
    assert sum(total for total, _ in parts) == pytest.approx(float(whole.sum()), rel=1e-12)
    assert scoring.evaluate_nll(model, model.batcher(corpus)) == pytest.approx(float(whole.mean()), rel=1e-12)


def test_a_distributed_run_swaps_in_global_batchnorm_keeping_every_weight():
    from makemore.models.layers import BatchNorm

    model = build_model("bn-mlp", make_config("bn-mlp", {"n_embd": 4, "n_hidden": 8}), 10)
    wavenet = build_model("wavenet", make_config("wavenet", {"n_embd": 4, "n_hidden": 8, "block_size": 4}), 10)
    for m in (model, wavenet):
        before = {k: v.clone() for k, v in m.state_dict().items()}
        norms = [x for x in m.modules() if isinstance(x, BatchNorm)]
        assert norms and all(type(x) is BatchNorm for x in norms)
        assert distributed.global_batchnorm(m) is m
        assert all(type(x) is distributed.GlobalBatchNorm for x in norms)
        assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())
    x = torch.randn(6, 3, 8)  # without a process group its moments are this process's: BatchNorm's
    for got, want in zip(distributed.batch_moments(x), BatchNorm(8).moments(x)):
        torch.testing.assert_close(got, want)
