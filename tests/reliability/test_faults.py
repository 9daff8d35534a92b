"""Nothing lost, nothing overwritten: a training run killed (SIGKILL, at a random moment or inside
a file write) or stopped by a signal, then resumed, ends bit-identical to one never interrupted;
a checkpoint read while another process rewrites it is never torn.

Training runs in subprocesses (``python -m makemore.cli train``) through ``harness``; the kill
timing is the only thing left to chance (drawn from ``random.Random(seed)``).
"""

from __future__ import annotations

import json
import random
import shutil
import signal

import pytest

from . import harness

STEPS = 40
MODELS = ("mlp", "lstm")


class References:
    """Uninterrupted runs, trained once per module and model; treat them as read-only."""

    def __init__(self, base):
        self.base = base
        self.words = harness.write_corpus(base / "words.txt")
        self.runs: dict[str, tuple] = {}

    def get(self, model: str):
        """(run directory, seconds it took) of the uninterrupted ``model`` run."""
        if model not in self.runs:
            run_dir = self.base / f"straight_{model}"
            self.runs[model] = (run_dir, harness.timed_train(run_dir, self.words, model, STEPS))
        return self.runs[model]


@pytest.fixture(scope="module")
def references(tmp_path_factory) -> References:
    return References(tmp_path_factory.mktemp("reliability"))


def kill_sequence(
    references, run_dir, model: str, kinds: list[bool], seed: int, upper: float = 0.7, **options
) -> list[dict]:
    """Kill the run in ``run_dir`` once per entry of ``kinds`` (True: inside a write; else after a
    random delay of up to ``upper`` times the uninterrupted run's time), resuming after each; the
    last resume finishes the run. A kill that missed (the process finished first) ends the chain.
    ``options`` go to ``harness.kill_and_resume``."""
    straight, seconds = references.get(model)
    rng = random.Random(seed)
    results = []
    for i, during_write in enumerate(kinds):
        result = harness.kill_and_resume(
            run_dir,
            references.words,
            model,
            STEPS,
            kill_after_s=upper * seconds,
            during_write=during_write,
            rng=rng,
            finish=i == len(kinds) - 1,
            **options,
        )
        results.append(result)
        if not result["killed"]:  # it finished before the kill, or had nothing left to do
            assert result["returncodes"][:1] == [0] or result["stopped_at_step"] == STEPS, result
            break
    return results


def assert_same_as_straight(references, run_dir, model: str, results: list[dict]) -> None:
    same, why = harness.same_run(references.get(model)[0], run_dir)
    assert same, f"{model}: {why} after {results}"
    codes = [code for result in results for code in result["returncodes"]]
    if codes[-1] == 0:  # the last process ran to its end: it cleared the killed writes' temp files
        assert not harness.temp_files(run_dir), results


# the mlp in the default suite; every family in the slow one
@pytest.mark.parametrize("model", [m if m == "mlp" else pytest.param(m, marks=pytest.mark.slow) for m in MODELS])
def test_killed_twice_and_resumed_is_the_uninterrupted_run(references, tmp_path, model):
    run_dir = tmp_path / "killed"
    # the second kill takes the first write of the resumed run: a first kill late in the run leaves it few
    results = kill_sequence(
        references, run_dir, model, [False, True], seed=MODELS.index(model), upper=0.5, write_skip_max=0
    )
    assert [r["killed"] for r in results] == [True, True], results
    assert_same_as_straight(references, run_dir, model, results)


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_killed_many_times_and_resumed_is_the_uninterrupted_run(references, tmp_path, model):
    """Chains of 3 kills (2 in 3 inside a write), each run compared with the uninterrupted one,
    until at least 10 kills landed, 3 of them inside a write (at most 8 chains)."""
    patterns = [[False, True, True], [True, False, True], [True, True, False]]
    results = []
    for i in range(8):
        run_dir = tmp_path / f"killed_{i}"
        chain = kill_sequence(references, run_dir, model, patterns[i % 3], seed=100 + 10 * i + MODELS.index(model))
        assert_same_as_straight(references, run_dir, model, chain)
        results += chain
        if sum(r["killed"] for r in results) >= 10 and sum(r["during_write"] for r in results) >= 3:
            break
    landed = sum(r["killed"] for r in results)
    in_write = sum(r["during_write"] for r in results)
    after_checkpoint = sum(r["killed"] and r["stopped_at_step"] is not None for r in results)
    print(f"{model}: {len(results)} kills tried, {landed} landed, {in_write} inside a write,", end=" ")
    print(f"{after_checkpoint} after a checkpoint")
    assert landed >= 10 and in_write >= 3, results


@pytest.mark.parametrize(
    "signum, model",
    [
        (signal.SIGINT, "mlp"),
        pytest.param(signal.SIGTERM, "lstm", marks=pytest.mark.slow),
        pytest.param(signal.SIGINT, "lstm", marks=pytest.mark.slow),
        pytest.param(signal.SIGTERM, "mlp", marks=pytest.mark.slow),
    ],
    ids=["SIGINT-mlp", "SIGTERM-lstm", "SIGINT-lstm", "SIGTERM-mlp"],
)
def test_a_signal_saves_the_last_checkpoint_and_resume_finishes_the_run(references, tmp_path, signum, model):
    run_dir = tmp_path / "signalled"
    result = harness.signal_and_resume(run_dir, references.words, model, STEPS, signum)
    assert result["returncode"] == 130, result["stderr"]
    assert result["interrupted_step"] is not None, result["stderr"]
    assert result["saved_step"] == result["interrupted_step"]  # saved where it stopped, not at the last eval
    assert 0 < result["saved_step"] < STEPS
    assert result["temp_files"] == []  # a clean stop leaves no half-written file
    assert result["resume_returncode"] == 0
    same, why = harness.same_run(references.get(model)[0], run_dir)
    assert same, why


def test_a_checkpoint_rewritten_while_it_is_read_is_never_torn(tmp_path):
    counts = harness.torn_read_race(tmp_path / "race.safetensors", loads=1000)
    assert counts["loads"] == 1000
    assert counts["errors"] == 0, counts["first_error"]
    assert counts["torn"] == 0, counts
    assert counts["distinct_steps"] > 1, counts  # the writer really wrote while we read


def test_same_run_sees_any_difference(references, tmp_path):
    from makemore.store.checkpoint import load_checkpoint, save_checkpoint

    straight, _ = references.get("mlp")
    assert harness.same_run(straight, straight) == (True, "")
    assert not harness.same_run(straight, references.get("lstm")[0])[0]

    copy = tmp_path / "copy"
    shutil.copytree(straight, copy)
    lines = (copy / "metrics.jsonl").read_text().splitlines()
    row = json.loads(lines[-1])
    row[next(k for k in row if k not in ("step", "steps_per_s"))] = 0.5
    (copy / "metrics.jsonl").write_text("\n".join([*lines[:-1], json.dumps(row)]) + "\n")
    assert harness.same_run(straight, copy)[1].startswith("metrics.jsonl")

    shutil.copytree(straight, copy, dirs_exist_ok=True)
    ckpt = load_checkpoint(copy / "last.safetensors")
    for tensor in ckpt.optimizer_state["state"][0].values():
        if hasattr(tensor, "view") and tensor.numel() > 1:
            tensor.view(-1)[0] = tensor.view(-1)[0].nextafter(tensor.new_tensor(float("inf")))  # one ulp
            break
    save_checkpoint(
        copy / "last.safetensors",
        model_state=ckpt.model_state,
        meta=ckpt.meta,
        optimizer_state=ckpt.optimizer_state,
        rng_state=ckpt.rng_state,
    )
    same, why = harness.same_run(straight, copy)
    assert not same and why.startswith("optimizer 0"), why
