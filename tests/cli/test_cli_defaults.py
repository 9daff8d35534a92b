"""``train --help``, ``makemore models`` and the docs say the settings a run really gets.

The help's defaults are those of ``makemore train`` without --model/--preset (the default
preset); ``makemore models`` gives each family's and preset's settings, training as the
differences from those defaults. Both are read back here and compared with the configs the
parser and the API build.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from conftest import run_cli as cli
from makemore import api
from makemore.cli import build_parser, run_config_from_args
from makemore.models import make_config, model_names

TRAINING_DOC = Path(__file__).resolve().parents[2] / "docs" / "training.md"  # defaults, families, presets


def _train_config(*args: str) -> api.RunConfig:
    return run_config_from_args(build_parser().parse_args(["train", "-o", "run", *args]))


def _help_defaults(prefix: str) -> dict[str, object]:
    """field -> the default that ``train --help`` shows for it (fields whose help shows one)."""
    train = next(a for a in build_parser().actions if a.dest == "command").choices["train"]
    shown = {}
    for action in train.actions:
        match = re.search(r"default (.+?)(?: \(default preset; --model/--preset: their own\))?$", action.help or "")
        if action.dest.startswith(prefix) and match:
            shown[action.dest[len(prefix) :]] = ast.literal_eval(match.group(1))
    return shown


def test_train_help_shows_the_training_the_default_run_gets():
    shown = _help_defaults("t_")
    used = _train_config().train
    assert shown.keys() == {f.name for f in dataclasses.fields(used)} - {"time_budget"}
    assert shown == {k: getattr(used, k) for k in shown}
    assert (shown["steps"], shown["lr"], shown["batch_size"], shown["warmup_steps"], shown["eval_interval"]) == (
        6000,
        0.004,
        64,
        200,
        500,
    )


def test_train_help_shows_the_model_options_the_default_run_gets():
    shown = _help_defaults("m_")
    used = _train_config().model_config
    assert shown == {f.name: getattr(used, f.name) for f in dataclasses.fields(used)}
    assert shown["n_layers"] == 2 and shown["dropout"] == 0.25


def test_help_says_where_a_family_or_preset_sets_its_own():
    train = next(a for a in build_parser().actions if a.dest == "command").choices["train"]
    helps = {a.dest: " ".join(a.help.split()) for a in train.actions if a.help}
    assert helps["t_steps"].endswith("default 6000 (default preset; --model/--preset: their own)")
    assert helps["t_momentum"].endswith("default 0.0")  # nothing sets another
    assert "(default: --preset auto; see makemore models)" in helps["model"]
    group = next(g for g in train._action_groups if g.title == "training options")
    assert "--model FAMILY trains with the family's own defaults" in " ".join(group.description.split())


def _models_listing(capsys) -> tuple[dict, dict]:
    """``makemore models`` read back: family -> (options, training), preset -> (family, options, training)."""
    code, out, err = cli(capsys, "models")
    assert code == 0 and err == ""
    families, presets, current = {}, {}, None
    lines = out.splitlines()
    for i, line in enumerate(lines):
        head = re.match(r"(\S+)\s+(window|sequence|count)\s+(.*)$", line)
        preset = re.match(r"  (\S+)\s+(\S+): ", line)
        if head:
            current = families.setdefault(head.group(1), {"options": _flags(head.group(3)), "training": None})
        elif preset:
            current = presets.setdefault(preset.group(1), {"family": preset.group(2), "training": None})
            current["options"] = _flags(lines[i + 1].strip())
        elif line.strip().startswith("training: "):
            current["training"] = line.strip()[len("training: ") :]
    return families, presets


def _flags(text: str) -> dict[str, object]:
    if text == "the defaults makemore train --help shows":
        return {}
    pairs = re.findall(r"--([\w-]+) ('[^']*'|[^,]+)(?:, |$)", text)
    return {name.replace("-", "_"): ast.literal_eval(value) for name, value in pairs}


def _with(train: api.TrainConfig, listed: dict) -> api.TrainConfig:
    return dataclasses.replace(train, **listed)


def test_makemore_models_gives_each_family_and_preset_the_settings_it_trains_with(capsys):
    families, presets = _models_listing(capsys)
    default = _train_config()
    assert list(families) == model_names()
    for name, listed in families.items():
        config = _train_config("--model", name)
        assert listed["options"] == dataclasses.asdict(config.model_config), name
        if listed["training"] is None:  # a count model: no training line
            assert name == "ngram"
            continue
        assert _with(default.train, _flags(listed["training"])) == config.train, name
    assert list(presets) == list(api.PRESETS)
    for name, listed in presets.items():
        config = _train_config("--preset", name)
        assert listed["family"] == config.model
        assert listed["options"] == dataclasses.asdict(config.model_config), name
        assert _with(default.train, _flags(listed["training"])) == config.train, name
    # the case of the report: --model lstm is not the default preset's LSTM
    assert families["lstm"]["options"]["n_layers"] == 1 and presets["default"]["options"]["n_layers"] == 2
    assert _flags(families["lstm"]["training"]) == {"steps": 12000, "lr": 0.003, "eval_interval": 1000}


def test_the_training_doc_agrees_with_the_help_and_the_listing():
    text = " ".join(TRAINING_DOC.read_text(encoding="utf-8").split())
    default, lstm = _train_config().train, _train_config("--model", "lstm")
    assert (
        f"those of the `default` preset ({default.steps:,} steps of {default.batch_size}, lr {default.lr:g}, "
        f"{default.warmup_steps} warm-up steps, an evaluation every {default.eval_interval})"
    ) in text
    assert (
        f"`--model lstm` is the family's {lstm.model_config.n_layers}-layer LSTM ({lstm.train.steps:,} steps, "
        f"lr {lstm.train.lr:g}, an evaluation every {lstm.train.eval_interval:,})"
    ) in text
    assert f"{default.steps:,} steps of {default.batch_size} at lr {default.lr:g} |" in text
    n_layers = make_config("lstm", api.PRESETS["default"].model_options).n_layers
    assert f"a {n_layers}-layer LSTM (64-dim embeddings, 256 hidden, dropout 0.25)" in text


@pytest.mark.parametrize("name", ["best"])
def test_the_training_doc_preset_rows_give_the_preset_steps(name):
    text = TRAINING_DOC.read_text(encoding="utf-8")
    train = api.preset_config(name).train
    row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
    assert f"{train.steps:,} steps of {train.batch_size}" in row
