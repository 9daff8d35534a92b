"""A wrong flag, command or choice gets the closest ones suggested; --epochs; options that do not apply.

Every refusal here is bad input: exit code 2, one line on stderr naming what was typed,
nothing written (``assert_bad_input``).
"""

from __future__ import annotations

import math

import pytest

from conftest import TINY_TRAIN_FLAGS as TINY
from conftest import assert_bad_input, write_words
from conftest import run_cli as cli
from makemore import api, auto
from makemore.cli import build_parser, run_config_from_args, suggest
from makemore.store.checkpoint import read_meta


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["train", "-o", "r", "--epochs", "3", "--learning-rate", "0.01"],
            r"--learning-rate 0\.01 \(did you mean --lr\?\)",
        ),
        (["train", "-o", "r", "--n_embd", "32"], r"--n_embd 32 \(did you mean --n-embd\?\)"),
        (["train", "-o", "r", "--Learning_Rate", "0.1"], r"\(did you mean --lr\?\)"),
        (["sample", "r", "--num-samples", "5"], r"--num-samples 5 \(did you mean -n/--num\?\)"),
        (["sample", "r", "--top_k", "5"], r"--top_k 5 \(did you mean --top-k\?\)"),
        (["sample", "r", "--samples", "5"], r"--samples 5 \(did you mean -n/--num\?\)"),
        (["score", "r", "emma", "--classifiy"], r"--classifiy \(did you mean --classify\?\)"),
        (["lr-find", "--iters", "50"], r"\(did you mean --steps\?\)"),
        (
            ["train", "-o", "r", "--n_embd", "8", "--learning-rate", "0.1"],
            r"--n_embd 8 --learning-rate 0\.1 \(did you mean --n-embd for --n_embd; --lr for --learning-rate\?\)",
        ),
        (["train", "words.txt", "-o", "runs/x"], r"unrecognized arguments: words\.txt \(did you mean -i words\.txt"),
        (
            ["train", "words.txt"],
            r"did you mean -i words\.txt \(the words file\) or -o words\.txt \(the run directory\)",
        ),
        (["sample", "r", "--zzzz"], r"unrecognized arguments: --zzzz \(see makemore sample --help\)$"),
        (["trian"], r"invalid choice: 'trian' \(did you mean 'train'\? choose from 'train', "),
        (["train", "-o", "r", "--model", "lsmt"], r"--model: invalid choice: 'lsmt' \(did you mean 'lstm'\?"),
        (["plot", "bigarm", "r", "-o", "b.png"], r"invalid choice: 'bigarm' \(did you mean 'bigram'\?"),
    ],
)
def test_a_wrong_flag_or_choice_suggests_the_closest(args, line, in_tmp, capsys):
    error = assert_bad_input(capsys, args, in_tmp, match=line)
    assert error.startswith("makemore")


def test_a_model_option_of_another_family_points_to_the_family_s_own(in_tmp, capsys, tiny_words):
    write_words(in_tmp / "ok.txt", tiny_words)
    train = ["train", "-i", "ok.txt", "-o", "run", "--quiet"]
    line = assert_bad_input(capsys, [*train, "--model", "lstm", "--n-layer", "3"], in_tmp)
    assert line == (
        "makemore: error: --n-layer: model 'lstm' has no such option; did you mean --n-layers? (see: makemore models)"
    )
    assert_bad_input(
        capsys, [*train, "--model", "transformer", "--n-layers", "3"], in_tmp, match="did you mean --n-layer?"
    )
    line = assert_bad_input(capsys, [*train, "--model", "bigram", "--n-embd", "4"], in_tmp)
    assert line == "makemore: error: --n-embd: model 'bigram' has no such option (see: makemore models)"
    line = assert_bad_input(capsys, [*train, "--no-bias"], in_tmp)  # named as typed
    assert line == (
        "makemore: error: --no-bias: --preset auto's families (lstm, ngram) have no such option (see: makemore models)"
    )


def test_closest_normalises_and_knows_synonyms():
    flags = ["--lr", "--steps", "--top-k", "--n-layers", "--batch-size", "-n", "--num"]
    assert suggest.closest("--top_k", flags) == ["--top-k"]
    assert suggest.closest("--LR", flags) == ["--lr"]
    assert suggest.closest("--learning-rate", flags) == ["--lr"]
    assert suggest.closest("--num-samples", flags) == ["--num"]
    assert suggest.closest("--n-layer", flags) == ["--n-layers"]
    assert suggest.closest("--batch_sizes", flags) == ["--batch-size"]
    assert suggest.closest("--colour", flags) == []


# -- --epochs -------------------------------------------------------------------------------


def _config(*args):
    return run_config_from_args(build_parser().parse_args(["train", "-o", "run", *map(str, args)]))


def test_epochs_give_the_steps_of_passes_over_the_training_split(words_file, tiny_words):
    data = api.load_data(api.DataConfig(input=str(words_file)))
    train_items = data.corpus("train")
    items, targets = len(train_items), int(train_items.lengths.sum()) + len(train_items)  # characters + ends
    sequence = _config("-i", words_file, "--model", "lstm", "--batch-size", 10, "--epochs", 2)
    assert sequence.train.steps == math.ceil(2 * items / 10)
    window = _config("-i", words_file, "--model", "mlp", "--batch-size", 32, "--epochs", 0.5)
    assert window.train.steps == math.ceil(0.5 * targets / 32)
    full = _config("-i", words_file, "--model", "bigram", "--epochs", 3)  # bigram: full batch (0)
    assert full.train.batch_size == 0 and full.train.steps == 3
    default = _config("-i", words_file, "--epochs", 1)  # auto: the steps from the chosen candidate's batch
    assert default.auto.epochs == 1
    chosen = auto.resolve(default, data)
    assert chosen.train.steps == math.ceil(items / chosen.train.batch_size) and chosen.model == "lstm"


def test_epochs_train_that_many_steps_and_say_so(in_tmp, capsys, tiny_words):
    write_words(in_tmp / "ok.txt", tiny_words)
    items = len(api.load_data(api.DataConfig(input=str(in_tmp / "ok.txt"))).corpus("train"))
    options = ["--model", "gru", "--n-embd", "4", "--n-hidden", "8", "--batch-size", "60", "--eval-interval", "2"]
    code, out, err = cli(capsys, "train", "-i", "ok.txt", "-o", "run", *options, "--epochs", "1.5")
    steps = math.ceil(1.5 * items / 60)
    assert code == 0, err
    assert err.splitlines()[0].endswith(f"({steps} steps: 1.5 epochs)")
    assert read_meta(in_tmp / "run" / "last.safetensors")["state"]["step"] == steps


def test_epochs_conflicts_and_bad_values_are_refused(cli_run, in_tmp, capsys, tiny_words):
    write_words(in_tmp / "ok.txt", tiny_words)
    train = ["train", "-i", "ok.txt", "-o", "run", *TINY]
    for extra, line in [
        (["--epochs", "2", "--steps", "5"], "--epochs and --steps both say how long to train: give one of them"),
        (["--epochs", "2", "--time", "5s"], "--epochs and --time both say how long to train: give one of them"),
        (["--epochs", "0"], "--epochs: must be a finite number above 0, got 0"),
        (["--epochs", "-1"], "--epochs: must be a finite number above 0, got -1"),
        (["--epochs", "inf"], "--epochs: must be a finite number above 0, got inf"),
    ]:
        assert assert_bad_input(capsys, [*train, *extra], in_tmp) == f"makemore: error: {line}"
    assert_bad_input(capsys, [*train, "--epochs", "x"], in_tmp, match="--epochs: invalid float value: 'x'")
    assert_bad_input(
        capsys, ["train", "--resume", "-o", cli_run[0], "--epochs", "2"], in_tmp, cli_run[0], match="--resume"
    )
    assert_bad_input(
        capsys, ["lr-find", "-i", "ok.txt", "--epochs", "2"], in_tmp, match="unrecognized arguments: --epochs"
    )


def test_train_help_explains_epochs(capsys):
    code, out, _ = cli(capsys, "train", "--help")
    flat = " ".join(out.split())
    assert code == 0
    assert "--epochs N train for N passes over the training split instead of --steps" in flat
    assert "computed once the data is read" in flat


# -- options that do not apply --------------------------------------------------------------


def test_a_count_model_refuses_training_options_as_it_refuses_other_families_options(in_tmp, capsys, tiny_words):
    write_words(in_tmp / "ok.txt", tiny_words)
    train = ["train", "-i", "ok.txt", "-o", "run", "--model", "ngram", "-q"]
    line = assert_bad_input(capsys, [*train, "--lr", "0.1"], in_tmp)
    assert line == (
        "makemore: error: --lr: does not apply to model 'ngram', which is fitted by counting in one pass "
        "(of the training options only --device, --backend, --time apply)"
    )
    for extra in (["--steps", "5"], ["--seed", "3"], ["--no-compile"], ["--epochs", "2"], ["--threads", "1"]):
        assert_bad_input(capsys, [*train, *extra], in_tmp, match=f"{extra[0]}: does not apply to model 'ngram'")
    assert_bad_input(capsys, [*train, "--n-layers", "2"], in_tmp, match="--n-layers: model 'ngram' has no such option")
    code, out, err = cli(capsys, *train, "--device", "cpu", "--order", "3")  # what applies is taken
    assert code == 0 and out.startswith("train NLL"), err


# -- naming what was typed --------------------------------------------------------------------


def test_classify_on_an_unlabelled_run_names_classify(cli_run, in_tmp, capsys):
    run = cli_run[0]
    expected = "makemore: error: --classify: this model was trained without labels (train with --labelled)"
    assert assert_bad_input(capsys, ["score", run, "--classify", "abc"], in_tmp, run) == expected
    (in_tmp / "items.txt").write_text("abc\n")
    assert assert_bad_input(capsys, ["score", run, "--classify", "--input", "items.txt"], in_tmp, run) == expected
    assert "--label: " in assert_bad_input(capsys, ["sample", run, "--label", "f"], in_tmp, run)  # typed: --label


@pytest.mark.parametrize("command", ["sample", "score", "eval", "plot"])
def test_threads_help_is_one_sentence(command, capsys):
    code, out, _ = cli(capsys, command, "--help")
    flat = " ".join(out.split())
    assert code == 0
    expected = (
        "--threads N CPU threads for PyTorch; 0 means as many as the cores other processes leave free when the "
        "command starts (default 0)"
    )
    assert expected in flat
