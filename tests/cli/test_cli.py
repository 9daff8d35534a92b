"""The command line: in-process through ``makemore.cli.main`` and end to end in subprocesses."""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY_TRAIN_FLAGS as TINY
from conftest import assert_bad_input, assert_png, make_tiny_words, snapshot, write_words
from conftest import run_cli as cli
from makemore import api
from makemore.cli import EXAMPLES
from makemore.store.checkpoint import load_checkpoint, read_meta, save_checkpoint

SUBCOMMANDS = ["train", "sample", "score", "eval", "plot", "lr-find", "datasets", "models", "gradcheck", "serve"]
CONSOLE_SCRIPT = Path(sys.executable).with_name("makemore")


# -- train ----------------------------------------------------------------------------------


def test_train_twice_refused_then_overwrite_then_resume(cli_run, tmp_path, capsys):
    out_dir, words_path, _ = cli_run
    copy = tmp_path / "run"
    shutil.copytree(out_dir, copy)
    before = snapshot(tmp_path)
    code, out, err = cli(capsys, "train", "-i", words_path, "-o", copy, "--steps", "4", "--eval-interval", "2", *TINY)
    assert code == 2
    assert err.startswith("makemore: error:") and len(err.splitlines()) == 1
    assert "--overwrite" in err
    assert snapshot(tmp_path) == before

    code, out, err = cli(
        capsys, "train", "-i", words_path, "-o", copy, "--steps", "4", "--eval-interval", "2", "--overwrite", *TINY
    )
    assert code == 0, err
    assert err == ""
    assert re.fullmatch(r"train NLL \d+\.\d{4}  dev NLL \d+\.\d{4}  \(.*best\.safetensors\)\n", out)
    assert read_meta(copy / "last.safetensors")["state"]["step"] == 4

    code, out, err = cli(capsys, "train", "--resume", "-o", copy, "--steps", "6", "--quiet")
    assert code == 0, err
    meta = read_meta(copy / "last.safetensors")
    assert meta["state"]["step"] == 6 and meta["train"]["steps"] == 6


# -- sample ---------------------------------------------------------------------------------


def sample_lines(capsys, run_dir, *args):
    code, out, err = cli(capsys, "sample", run_dir, *args)
    assert code == 0, err
    assert out.endswith("\n") or out == ""
    return out.split("\n")[:-1]


def test_sample_same_seed_same_output(cli_run, capsys):
    run_dir = cli_run[0]
    first = sample_lines(capsys, run_dir, "-n", "5", "--seed", "1")
    assert len(first) == 5
    assert sample_lines(capsys, run_dir, "-n", "5", "--seed", "1") == first
    assert sample_lines(capsys, run_dir, "-n", "20", "--seed", "2") != sample_lines(
        capsys, run_dir, "-n", "20", "--seed", "1"
    )
    # the CLI gives what the API gives
    run = api.load_run(run_dir)
    assert first == api.sample(run, api.SampleConfig(num=5, seed=1))


def test_sample_options(cli_run, capsys):
    run_dir, _, words = cli_run
    new = sample_lines(capsys, run_dir, "-n", "20", "--new-only", "--seed", "3")
    assert len(new) == 20 and not set(new) & set(words)
    unique = sample_lines(capsys, run_dir, "-n", "20", "--unique")
    assert len(set(unique)) == 20
    prefixed = sample_lines(capsys, run_dir, "-n", "10", "--prefix", "e-")
    assert len(prefixed) == 10 and all(s.startswith("e-") for s in prefixed)
    short = sample_lines(capsys, run_dir, "-n", "30", "--max-len", "3")
    assert len(short) == 30 and all(len(s) <= 3 for s in short)
    long = sample_lines(capsys, run_dir, "-n", "10", "--min-len", "5", "--max-len", "6")
    assert all(5 <= len(s) <= 6 for s in long)
    greedy = sample_lines(capsys, run_dir, "-n", "3", "--temperature", "0")
    assert len(set(greedy)) == 1
    assert len(sample_lines(capsys, run_dir, "-n", "4", "--which", "last", "--top-k", "3", "--top-p", "0.9")) == 4
    assert sample_lines(capsys, run_dir, "-n", "0") == []


def test_sample_to_file(cli_run, in_tmp, capsys):
    run_dir = cli_run[0]
    expected = sample_lines(capsys, run_dir, "-n", "6", "--seed", "4")
    code, out, err = cli(capsys, "sample", run_dir, "-n", "6", "--seed", "4", "-o", "items.txt")
    assert code == 0 and out == "" and err == ""
    assert (in_tmp / "items.txt").read_text(encoding="utf-8") == "".join(s + "\n" for s in expected)
    assert sorted(p.name for p in in_tmp.iterdir()) == ["items.txt"]


# -- score / eval ---------------------------------------------------------------------------


def test_score(cli_run, capsys):
    run_dir = cli_run[0]
    code, out, err = cli(capsys, "score", run_dir, "abc", "e é-d")
    assert code == 0, err
    results = api.score(api.load_run(run_dir), ["abc", "e é-d"])
    assert out == "".join(f"{r.word}\t{r.nll:.4f}\n" for r in results)


def test_score_detail_table(cli_run, capsys):
    run_dir = cli_run[0]
    word = "a.b c"
    code, out, err = cli(capsys, "score", run_dir, "--detail", word)
    assert code == 0, err
    lines = out.splitlines()
    result = api.score(api.load_run(run_dir), [word])[0]
    assert lines[0] == f"{word}\t{result.nll:.4f}"
    assert lines[1].split() == ["context", "next", "prob", "logprob"]
    rows = lines[2:]
    assert len(rows) == len(word) + 1
    for row, c in zip(rows, result.chars):
        assert row.endswith(f"{c.prob:>8.4f} {c.logprob:>9.4f}")
    # the MLP's 5-character windows, with the boundary shown as '¶' ('.' is a data
    # character) and a space as '␣', right-aligned so that the next character follows them
    expected = [("¶¶¶¶¶", "a"), ("¶¶¶¶a", "."), ("¶¶¶a.", "b"), ("¶¶a.b", "␣"), ("¶a.b␣", "c"), ("a.b␣c", "¶")]
    for row, (context, char), c in zip(rows, expected, result.chars):
        assert row == f"  {context:>7} {char:<4} {c.prob:>8.4f} {c.logprob:>9.4f}"


def test_score_add_k_unseen_pair_is_finite(tmp_path, tiny_words, capsys):
    """No item starts with '.', so the pair (boundary, '.') is unseen: add-k gives it k / (n + kV)."""
    words = write_words(tmp_path / "words.txt", tiny_words)
    code, _, err = cli(
        capsys, "train", "-i", words, "-o", tmp_path / "run", "--model", "ngram", "--k", "0.5", "--quiet"
    )
    assert code == 0, err
    code, out, err = cli(capsys, "score", tmp_path / "run", "--detail", ".a")
    assert code == 0, err
    train = api.load_data(api.DataConfig(input=str(words))).split.train
    V = len(set("".join(tiny_words))) + 1
    expected = [
        (0.5 + 0) / (len(train) + 0.5 * V),  # no training item starts with '.'
        (0.5 + sum(w.count(".a") for w in train)) / (sum(w.count(".") for w in train) + 0.5 * V),
        (0.5 + sum(w.endswith("a") for w in train)) / (sum(w.count("a") for w in train) + 0.5 * V),
    ]
    rows = out.splitlines()[2:]
    assert [row.split()[:2] for row in rows] == [["¶", "."], [".", "a"], ["a", "¶"]]
    assert [float(row.split()[2]) for row in rows] == pytest.approx(expected, abs=5e-5)
    assert float(out.splitlines()[0].split("\t")[1]) == pytest.approx(-sum(map(math.log, expected)) / 3, abs=5e-5)


def test_score_from_stdin(cli_run, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("abc\n\n  \nab  \n"))
    code, out, err = cli(capsys, "score", cli_run[0], "-")
    assert code == 0, err
    assert [line.split("\t")[0] for line in out.splitlines()] == ["abc", "ab"]


def test_eval(cli_run, capsys):
    run_dir = cli_run[0]
    code, out, err = cli(capsys, "eval", run_dir)
    assert code == 0, err
    result = api.evaluate(api.load_run(run_dir))
    assert out == "".join(f"{name:<6} NLL {value:.4f}\n" for name, value in result.items())
    assert [line.split()[0] for line in out.splitlines()] == ["train", "dev", "test"]


# -- listing and help -----------------------------------------------------------------------


def test_models(capsys):
    from makemore.models import model_names

    code, out, err = cli(capsys, "models")
    assert code == 0 and err == ""
    first_words = [line.split()[0] for line in out.splitlines() if line.strip()]
    for name in model_names():
        assert name in first_words
    assert "\npresets (makemore train --preset NAME; makemore train alone uses 'auto'):\n" in out
    for preset in ["auto", *api.PRESETS]:
        assert f"\n  {preset} " in out
    from makemore.auto import CANDIDATES, RULE

    in_table = {name for row in RULE for name in (row.pick, row.neural)}
    for name, candidate in CANDIDATES.items():  # auto's candidates, those the table never picks marked
        assert f"{name}: {candidate.summary}" + ("" if name in in_table else " (studied, never picked)") in out
    assert "--n-embd 24" in out


def test_datasets(capsys):
    code, out, err = cli(capsys, "datasets")
    assert code == 0 and err == ""
    info = api.builtin_datasets()
    for name, entry in info.items():
        assert f"builtin:{name}\t{entry['items']} items\talphabet: " in out
        assert entry["description"] in out
    # a labelled corpus shows its labels, and its alphabet holds neither the tab nor the labels
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    assert f"builtin:names-by-sex\t{info['names-by-sex']['items']} items\talphabet: {alphabet!r}\tlabels: f, m\n" in out


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_of_every_subcommand(command, capsys):
    code, out, err = cli(capsys, command, "--help")
    assert code == 0
    assert "examples:" in out
    assert EXAMPLES[command].splitlines()[1].strip() in out


def test_top_level_help_and_version(capsys):
    code, out, _ = cli(capsys, "--help")
    assert code == 0
    for command in SUBCOMMANDS:
        assert command in out
    assert "examples:" in out
    code, out, _ = cli(capsys, "--version")
    assert code == 0 and out.startswith("makemore ")


# -- bad input ------------------------------------------------------------------------------


def test_bad_input_files(in_tmp, capsys, tiny_words):
    (in_tmp / "adir").mkdir()
    (in_tmp / "latin1.txt").write_bytes("emma\nzoé\n".encode("latin-1"))
    (in_tmp / "nul.txt").write_bytes(b"emma\nava\nz\x00e\n")
    (in_tmp / "empty.txt").write_bytes(b"\n \n")
    write_words(in_tmp / "ok.txt", tiny_words)
    train = ["train", "-o", "run", "--steps", "5", *TINY]
    assert_bad_input(capsys, [*train, "-i", "missing.txt"], in_tmp, match="missing.txt")
    assert_bad_input(capsys, [*train, "-i", "adir"], in_tmp, match="adir.*directory")
    assert_bad_input(capsys, [*train, "-i", "latin1.txt"], in_tmp, match=r"latin1\.txt:2:.*UTF-8")
    assert_bad_input(capsys, [*train, "-i", "nul.txt"], in_tmp, match=r"nul\.txt:3:")
    assert_bad_input(capsys, [*train, "-i", "empty.txt"], in_tmp, match="empty.txt")
    assert_bad_input(capsys, [*train, "-i", "ok.txt", "--max-item-len", "3"], in_tmp, match=r"ok\.txt:\d+:")
    assert_bad_input(capsys, [*train, "-i", "builtin:nope"], in_tmp, match="nope")


def test_train_announces_the_run_only_once_its_input_is_checked(in_tmp, capsys, tiny_words):
    """Without --quiet a refused run still prints nothing but its one-line error."""
    write_words(in_tmp / "ok.txt", tiny_words)
    train = ["train", "-o", "run", "--model", "ngram"]
    assert_bad_input(capsys, [*train, "-i", "missing.txt"], in_tmp, match="missing.txt")
    assert_bad_input(capsys, [*train, "-i", "ok.txt", "--order", "0"], in_tmp, match="order")
    code, out, err = cli(capsys, *train, "-i", "ok.txt")
    assert code == 0
    assert err.splitlines()[0] == "training ngram on ok.txt -> run"
    assert out.startswith("train NLL ")


def test_bad_model_options(in_tmp, capsys, tiny_words):
    write_words(in_tmp / "ok.txt", tiny_words)
    train = ["train", "-i", "ok.txt", "-o", "run", "--steps", "5", "--quiet"]
    assert_bad_input(capsys, [*train, "--model", "nope"], in_tmp, match="--model")
    assert_bad_input(capsys, [*train, "--order", "3"], in_tmp, match="--order")
    assert_bad_input(capsys, [*train, "--model", "bigram", "--n-embd", "4"], in_tmp, match="--n-embd")
    assert_bad_input(capsys, [*train, "--preset", "lecture2", "--model", "bigram"], in_tmp, match="--preset")
    assert_bad_input(capsys, [*train, "--steps", "many"], in_tmp, match="--steps")
    assert_bad_input(capsys, [*train, "--device", "tpu"], in_tmp, match="--device")
    assert_bad_input(capsys, ["train", "--resume", "-o", "run", "--quiet"], in_tmp, match="--resume")
    assert_bad_input(capsys, ["train"], in_tmp, match="-o")
    assert_bad_input(capsys, [], in_tmp)


def test_resume_refuses_new_settings(cli_run, in_tmp, capsys):
    assert_bad_input(
        capsys,
        ["train", "--resume", "-o", cli_run[0], "--n-embd", "8", "--quiet"],
        in_tmp,
        cli_run[0],
        match="--resume",
    )


def test_train_into_existing_run_refused(cli_run, in_tmp, capsys):
    out_dir, words_path, _ = cli_run
    assert_bad_input(
        capsys,
        ["train", "-i", words_path, "-o", out_dir, "--steps", "5", *TINY],
        in_tmp,
        out_dir,
        match="already holds a run",
    )


def test_bad_sample_options(cli_run, in_tmp, capsys):
    run = cli_run[0]
    assert_bad_input(capsys, ["sample", in_tmp / "missing"], in_tmp, match="no such run directory")
    assert_bad_input(capsys, ["sample", in_tmp], in_tmp, match="no checkpoint")
    for args, match in [
        (["-n", "-1"], "--num"),
        (["-n", "x"], "-n"),
        (["--top-p", "0"], "--top-p"),
        (["--top-p", "1.5"], "--top-p"),
        (["--temperature", "-1"], "--temperature"),
        (["--min-len", "5", "--max-len", "3"], "--min-len"),
        (["--prefix", "zz"], "'z'"),
        (["--prefix", "abcd", "--max-len", "2"], "--prefix"),
        (["--which", "first"], "--which"),
    ]:
        assert_bad_input(capsys, ["sample", run, *args], in_tmp, run, match=match)


def test_option_help_comes_from_the_configs(capsys):
    code, out, _ = cli(capsys, "train", "--help")
    assert code == 0
    flat = " ".join(out.split())
    assert '"add-k" or "kneser-ney"' in flat  # --smoothing (NGramConfig)
    assert '"autograd" or "manual"' in flat  # --backward (TrainConfig)
    assert "--backward manual" in flat  # an example


# -- plots, lr-find, gradcheck ----------------------------------------------------------------


@pytest.mark.parametrize("what", ["loss", "embedding", "bigram", "activations"])
def test_plot(cli_run, in_tmp, capsys, what):
    code, out, err = cli(capsys, "plot", what, cli_run[0], "-o", f"{what}.png", "--batch-size", "64")
    assert code == 0, err
    assert out == f"{what}.png\n"
    assert_png(in_tmp / f"{what}.png")
    assert sorted(p.name for p in in_tmp.iterdir()) == [f"{what}.png"]


def test_plot_activations_draws_the_recorded_update_ratios(tmp_path, words_file, capsys, monkeypatch):
    from conftest import tiny_mlp_config
    from makemore import plots

    run = tmp_path / "run"
    api.train(tiny_mlp_config(words_file, steps=6, eval_interval=3, track_update_ratio=2), run, progress=False)
    recorded = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    recorded = [r for r in recorded if "update_ratio" in r]
    assert [r["step"] for r in recorded] == [1, 3, 5]
    seen = {}
    real = plots.plot_activations
    monkeypatch.setattr(plots, "plot_activations", lambda stats, **kw: seen.update(kw) or real(stats, **kw))
    code, _, err = cli(capsys, "plot", "activations", run, "-o", tmp_path / "act.png")
    assert code == 0, err
    assert seen["ratio_steps"] == [1, 3, 5]
    assert seen["ratios_are_log10"] is True  # the trainer records log10(update std / data std)
    assert seen["update_ratios"] == {k: [r["update_ratio"][k] for r in recorded] for k in recorded[0]["update_ratio"]}
    assert all(v < 0 for values in seen["update_ratios"].values() for v in values)
    assert_png(tmp_path / "act.png")


def test_bad_plot_inputs(cli_run, tmp_path, in_tmp, capsys):
    run = tmp_path / "run"
    shutil.copytree(cli_run[0], run)
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 99, "train_lo\n')  # a write cut short
    lines = len((run / "metrics.jsonl").read_text().splitlines())
    assert_bad_input(capsys, ["plot", "loss", run, "-o", "l.png"], in_tmp, run, match=rf"metrics\.jsonl:{lines}:")
    assert_bad_input(capsys, ["plot", "loss", "missing", "-o", "l.png"], in_tmp, match="no such run directory")
    assert_bad_input(capsys, ["plot", "bigram", run, "-o", "b.png", "--max-chars", "0"], in_tmp, match="--max-chars")


def test_plot_count_model(tmp_path, words_file, in_tmp, capsys):
    run = tmp_path / "ngram"
    code, _, err = cli(capsys, "train", "-i", words_file, "-o", run, "--model", "ngram", "--quiet")
    assert code == 0, err
    assert_bad_input(capsys, ["plot", "activations", run, "-o", "a.png"], in_tmp, run, match="counting")
    assert_bad_input(capsys, ["plot", "embedding", run, "-o", "e.png"], in_tmp, run, match="embedding")
    assert_bad_input(capsys, ["plot", "loss", run, "-o", "l.png"], in_tmp, run, match="metrics.jsonl")
    code, out, err = cli(capsys, "plot", "bigram", run, "-o", "b.png")
    assert code == 0 and out == "b.png\n" and err == ""
    assert_png(in_tmp / "b.png")


def test_lr_find(words_file, in_tmp, capsys):
    options = "--n-embd 4 --n-hidden 16 --batch-size 32 --steps 40 -o lr.png --quiet".split()
    code, out, err = cli(capsys, "lr-find", "-i", words_file, *options)
    assert code == 0, err
    match = re.fullmatch(r"suggested lr (\S+)  \(plot: lr\.png\)\n", out)
    assert match, out
    assert 1e-3 <= float(match.group(1)) <= 1.0
    assert_png(in_tmp / "lr.png")
    assert_bad_input(capsys, ["lr-find", "-i", words_file, "--steps", "3", "-o", "x.png"], in_tmp, match="--steps")


@pytest.mark.parametrize("dtype, bound", [("float64", 1e-10), ("float32", 1e-5)])
def test_gradcheck(capsys, dtype, bound):
    from makemore.models.manual_backprop import GRAD_NAMES

    code, out, err = cli(capsys, "gradcheck", "--dtype", dtype, "--batch-size", "16", "--seed", "3")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert [c.strip() for c in lines[0].split("|")] == ["tensor", "exact", "approx", "maxdiff"]
    rows = [[c.strip() for c in line.split("|")] for line in lines[1:]]
    assert [r[0] for r in rows] == list(GRAD_NAMES)
    for name, exact, approx, maxdiff in rows:
        assert exact in ("True", "False") and approx in ("True", "False")
        assert float(maxdiff) <= bound, name
        assert exact == "False" or float(maxdiff) == 0.0


def test_bad_score_eval_plot(cli_run, in_tmp, capsys):
    run = cli_run[0]
    assert_bad_input(capsys, ["score", run, "abc", "xyz"], in_tmp, run, match="'x'")
    assert_bad_input(capsys, ["score", run], in_tmp, run, match="at least one word")
    assert_bad_input(capsys, ["score", run, ""], in_tmp, run, match="empty")
    assert_bad_input(capsys, ["score", in_tmp / "missing", "abc"], in_tmp, match="no such run directory")
    assert_bad_input(capsys, ["eval", in_tmp / "missing"], in_tmp, match="no such run directory")
    assert_bad_input(capsys, ["plot", "bigram", run, "-o", "bigram.jpg"], in_tmp, run, match="png")
    assert_bad_input(capsys, ["plot", "bigram", run, "-o", "bigram"], in_tmp, run, match="png")
    assert_bad_input(capsys, ["plot", "bigram", run, "-o", "nodir/b.png"], in_tmp, run, match="nodir")
    assert_bad_input(capsys, ["plot", "nothing", run, "-o", "b.png"], in_tmp, run)
    assert_bad_input(capsys, ["lr-find", "-o", "lr.svg"], in_tmp, match="png")
    assert_bad_input(capsys, ["gradcheck", "--batch-size", "1"], in_tmp, match="--batch-size")


def test_eval_of_changed_training_file(tmp_path, capsys, cli_run):
    run = tmp_path / "run"
    shutil.copytree(cli_run[0], run)
    words = tmp_path / "words.txt"
    write_words(words, make_tiny_words())
    # point a copy of the run at its own words file, then change that file
    ckpt = load_checkpoint(run / "best.safetensors")
    ckpt.meta["data"]["input"] = str(words)
    save_checkpoint(run / "best.safetensors", model_state=ckpt.model_state, meta=ckpt.meta)
    code, _, err = cli(capsys, "eval", run)
    assert code == 0, err
    write_words(words, make_tiny_words()[:-1])
    assert_bad_input(capsys, ["eval", run], tmp_path, match="changed")


# -- option validation ----------------------------------------------------------------------


def test_eval_interval_zero(in_tmp, capsys, tiny_words):
    write_words(in_tmp / "ok.txt", tiny_words)
    assert_bad_input(
        capsys,
        ["train", "-i", "ok.txt", "-o", "run", "--steps", "3", "--eval-interval", "0", *TINY],
        in_tmp,
        match="--eval-interval",
    )


def test_log_interval_zero(in_tmp, capsys, tiny_words):
    write_words(in_tmp / "ok.txt", tiny_words)
    assert_bad_input(
        capsys,
        ["train", "-i", "ok.txt", "-o", "run", "--steps", "3", "--log-interval", "0", *TINY],
        in_tmp,
        match="--log-interval",
    )


@pytest.mark.parametrize("steps", ["0", "-1"])
def test_steps_not_positive(in_tmp, capsys, tiny_words, steps):
    write_words(in_tmp / "ok.txt", tiny_words)
    assert_bad_input(capsys, ["train", "-i", "ok.txt", "-o", "run", "--steps", steps, *TINY], in_tmp, match="--steps")


@pytest.mark.parametrize("option", [["--n-hidden", "-1"], ["--n-embd", "-1"], ["--dropout", "2"]])
def test_bad_mlp_sizes(in_tmp, capsys, tiny_words, option):
    write_words(in_tmp / "ok.txt", tiny_words)
    args = ["train", "-i", "ok.txt", "-o", "run", "--steps", "3", "--eval-interval", "3", *TINY, *option]
    assert_bad_input(capsys, args, in_tmp, match=option[0])


@pytest.mark.parametrize(
    "option", [["-i", "few.txt"], ["--block-size", "0"], ["--optimizer", "adam"], ["--schedule", "linear"]]
)
def test_refused_train_writes_nothing(in_tmp, capsys, tiny_words, option):
    write_words(in_tmp / "few.txt", ["ab", "cd", "ef"])
    write_words(in_tmp / "ok.txt", tiny_words)
    args = ["train", "-i", "ok.txt", "-o", "run", "--steps", "3", *TINY, *option]
    assert_bad_input(capsys, args, in_tmp)


def test_resume_refuses_data_options(cli_run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(cli_run[0], copy)
    assert_bad_input(capsys, ["train", "--resume", "-o", copy, "-i", "other.txt", "--quiet"], copy, match="--resume")


def test_sample_output_in_missing_directory(cli_run, in_tmp, capsys):
    assert_bad_input(capsys, ["sample", cli_run[0], "-n", "2", "-o", "nodir/items.txt"], in_tmp, match="nodir")


@pytest.mark.parametrize("value", ["-1", "0"])
def test_sample_bad_batch_size(cli_run, in_tmp, capsys, value):
    assert_bad_input(capsys, ["sample", cli_run[0], "-n", "2", "--batch-size", value], in_tmp, match="--batch-size")


def test_sample_negative_top_k(cli_run, in_tmp, capsys):
    assert_bad_input(capsys, ["sample", cli_run[0], "-n", "2", "--top-k", "-1"], in_tmp, match="--top-k")


@pytest.mark.parametrize("option", ["--temperature", "--top-p"])
def test_sample_not_finite(cli_run, in_tmp, capsys, option):
    assert_bad_input(capsys, ["sample", cli_run[0], "-n", "2", option, "nan"], in_tmp, match=option)


def test_sample_output_is_a_directory(cli_run, in_tmp, capsys):
    (in_tmp / "adir").mkdir()
    assert_bad_input(capsys, ["sample", cli_run[0], "-n", "2", "-o", "adir"], in_tmp, match="adir.*directory")


def test_write_error_is_one_line(cli_run, in_tmp, capsys, monkeypatch):
    from makemore import files

    def full_disk(path, data):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(files, "atomic_write_bytes", full_disk)
    assert_bad_input(
        capsys, ["sample", cli_run[0], "-n", "2", "-o", "items.txt"], in_tmp, match="items.txt: No space left on device"
    )


# -- real processes -------------------------------------------------------------------------


def test_end_to_end_in_subprocesses(tmp_path, tiny_words, capsys):
    """``python -m makemore.cli train`` then the ``makemore`` console script's ``sample``."""
    words_path = write_words(tmp_path / "words.txt", tiny_words)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "makemore.cli",
            *"train -i words.txt -o run --steps 10 --eval-interval 5".split(),
            *TINY,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert re.fullmatch(r"train NLL \d+\.\d{4}  dev NLL \d+\.\d{4}  \(run/best\.safetensors\)\n", proc.stdout), (
        proc.stdout
    )
    out_dir = tmp_path / "run"
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "best.safetensors",
        "last.safetensors",
        "metrics.jsonl",
        "run.json",
    ]
    meta = read_meta(out_dir / "last.safetensors")
    assert meta["state"]["step"] == 10
    assert meta["model"]["kind"] == "mlp"
    assert meta["model"]["config"]["n_embd"] == 4 and meta["model"]["config"]["n_hidden"] == 16
    assert meta["train"]["steps"] == 10 and meta["train"]["eval_interval"] == 5 and meta["train"]["batch_size"] == 32
    assert meta["data"]["input"] == str(words_path.resolve())
    assert meta["data"]["items"] == len(tiny_words)

    if not CONSOLE_SCRIPT.exists():
        pytest.skip(f"{CONSOLE_SCRIPT} is not installed")
    proc = subprocess.run(
        [str(CONSOLE_SCRIPT), "sample", "run", "-n", "5", "--seed", "1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    items = proc.stdout.split("\n")[:-1]
    assert len(items) == 5
    assert items == sample_lines(capsys, out_dir, "-n", "5", "--seed", "1")


def test_console_script_bad_input_exit_code_2(tmp_path):
    if not CONSOLE_SCRIPT.exists():
        pytest.skip(f"{CONSOLE_SCRIPT} is not installed")
    (tmp_path / "bad.txt").write_bytes(b"emma\n\xff\n")
    proc = subprocess.run(
        [str(CONSOLE_SCRIPT), "train", "-i", "bad.txt", "-o", "run", "--quiet"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == ["makemore: error: bad.txt:2: invalid UTF-8 (byte 0xff)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.txt"]


def test_train_without_model_or_preset_uses_auto():
    from makemore.cli import build_parser, run_config_from_args

    config = run_config_from_args(build_parser().parse_args(["train", "-o", "run"]))
    assert config.auto == api.Auto() and config.data == api.DataConfig()  # chosen when the data is read
    given = run_config_from_args(build_parser().parse_args(["train", "-o", "run", "--preset", "auto", "--lr", "0.1"]))
    assert given.auto == api.Auto(train_options={"lr": 0.1})
    preset = run_config_from_args(build_parser().parse_args(["train", "-o", "run", "--preset", "default"]))
    assert preset == api.preset_config(api.DEFAULT_PRESET) and preset.auto is None
    family = run_config_from_args(build_parser().parse_args(["train", "-o", "run", "--model", "lstm"]))
    assert family.model_config == api.make_config("lstm") and family.train == api.default_train_config("lstm")
    tuned = run_config_from_args(build_parser().parse_args(["train", "-o", "run", "--preset", "best", "--steps", "7"]))
    assert tuned.model == "lstm" and tuned.train.steps == 7 and tuned.model_config.dropout == 0.3
    assert tuned.model_config.weight_dropout == 0.2


# -- the old spellings (makemore 0.1) still work for one release, with a notice ---------------


def assert_notice(err: str, *fragments: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("makemore: warning: old spelling: "), err
    assert lines[0].endswith("(the old spellings go in makemore 0.3)")
    for fragment in fragments:
        assert fragment in lines[0]


def test_old_run_spellings_give_the_same_output_and_one_notice(cli_run, in_tmp, capsys):
    run = cli_run[0]
    same = ["-n", "4", "--seed", "1", "--new-only"]  # a seed given: none drawn (and printed); no known items
    for new, old, fragment in [
        (["sample", run, *same], ["sample", "-o", run, *same], "'sample -o RUN' is now 'sample RUN'"),
        (["sample", run, *same], ["sample", "--out-dir", run, *same], "'sample RUN'"),
        (["score", run, "abc", "e-d"], ["score", "-o", run, "abc", "e-d"], "'score -o RUN' is now 'score RUN'"),
        (["eval", run], ["eval", "-o", run], "'eval -o RUN' is now 'eval RUN'"),
        (["eval", run], ["eval", "--out-dir", run], "'eval RUN'"),
    ]:
        code, expected, err = cli(capsys, *new)
        assert code == 0 and err == "", err
        code, out, err = cli(capsys, *old)
        assert code == 0 and out == expected
        assert_notice(err, fragment)


def test_old_output_spellings_write_the_same_files(cli_run, in_tmp, capsys):
    run = cli_run[0]
    same = ["-n", "3", "--seed", "2", "--new-only"]
    code, _, err = cli(capsys, "sample", "-o", run, *same, "--output", "old.txt")
    assert code == 0
    assert_notice(err, "'sample -o RUN' is now 'sample RUN'", "'--output FILE' is now '-o FILE'")
    assert cli(capsys, "sample", run, *same, "-o", "new.txt")[0] == 0
    assert (in_tmp / "old.txt").read_text() == (in_tmp / "new.txt").read_text() != ""
    code, out, err = cli(capsys, "plot", "bigram", "-o", run, "--out", "old.png")
    assert code == 0 and out == "old.png\n"
    assert_notice(err, "'plot -o RUN' is now 'plot RUN'", "'--out FILE' is now '-o FILE'")
    assert_png(in_tmp / "old.png")
    code, _, err = cli(capsys, "plot", "loss", run, "--out", "loss.png")
    assert code == 0
    assert_notice(err, "'--out FILE' is now '-o FILE'")


def test_old_train_out_dir(words_file, in_tmp, capsys):
    code, out, err = cli(capsys, "train", "-i", words_file, "--out-dir", "run", "--model", "ngram", "-q")
    assert code == 0 and out.startswith("train NLL ")
    assert_notice(err, "'train --out-dir RUN' is now 'train -o RUN'")
    assert (in_tmp / "run" / "last.safetensors").is_file()


def test_old_lr_find_and_gradcheck_options(words_file, in_tmp, capsys):
    options = "--n-embd 4 --n-hidden 8 --num-steps 12 --out lr.png -q".split()
    code, out, err = cli(capsys, "lr-find", "-i", words_file, *options)
    assert code == 0 and out.endswith("(plot: lr.png)\n")
    assert_notice(err, "'--num-steps N' is now '--steps N'", "'--out FILE' is now '-o FILE'")
    code, out, err = cli(capsys, "gradcheck", "--batch", "8")
    assert code == 0 and out == cli(capsys, "gradcheck", "--batch-size", "8")[1]
    assert_notice(err, "'--batch N' is now '--batch-size N'")


def test_a_reading_command_needs_its_run(in_tmp, capsys):
    for args in (["sample", "-n", "3"], ["eval"], ["score"], ["plot", "loss", "--out", "x.png"]):
        assert_bad_input(capsys, args, in_tmp, match="RUN")
    assert_bad_input(capsys, ["plot", "loss", "runs/x"], in_tmp, match="-o/--output")


# -- a library error names a field; the CLI shows the flag that sets it ------------------------


def test_config_errors_name_the_flag(cli_run, in_tmp, capsys, tiny_words):
    write_words(in_tmp / "ok.txt", tiny_words)
    train = ["train", "-i", "ok.txt", "-o", "run", "--steps", "3", "--quiet"]
    for args, line in [
        ([*train, "--model", "mlp", "--dropout", "1.5"], "--dropout: must be a finite number >= 0 and < 1, got 1.5"),
        ([*train, "--model", "wavenet", "--block-size", "6"], "--block-size: must be a power of two"),
        ([*train, "--model", "transformer", "--n-embd", "30"], r"--n-embd: 30 must be divisible by --n-head \(4\)"),
        ([*train, "--model", "mlp", "--backward", "manual"], "--backward: 'manual' is not possible: "),
        (
            [*train, "--model", "mlp", "--max-item-len", "2"],
            r"ok\.txt:\d+: item is \d+ characters long, more than --max-item-len \(2\)",
        ),
        (["sample", cli_run[0], "--min-len", "9", "--max-len", "3"], "--min-len: 9 is more than --max-len 3"),
        (["sample", cli_run[0], "--prefix", "zz"], "--prefix: character 'z'"),
        (
            ["lr-find", "-i", "ok.txt", "--start", "0.1", "--end", "0.01"],
            "--end: must be a finite number above --start",
        ),
    ]:
        error = assert_bad_input(capsys, args, in_tmp, cli_run[0])
        assert re.match(rf"makemore: error: {line}", error), error


def test_lr_find_has_no_schedule_options(words_file, in_tmp, capsys):
    for flag in ("--lr", "--schedule", "--warmup-steps", "--eval-interval"):
        assert_bad_input(capsys, ["lr-find", "-i", words_file, flag, "1"], in_tmp, match="unrecognized")


def test_python_m_makemore_runs_the_cli(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "makemore", "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("makemore 0.2")
