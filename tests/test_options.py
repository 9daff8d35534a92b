"""Each option declared once: every config field has a declaration, and its flag and JSON field
(where it is offered there) round-trip to the same value."""

from __future__ import annotations

import dataclasses

import pytest

from makemore import options
from makemore.cli.options import given_of, run_config_from_args
from makemore.cli.parser import build_parser
from makemore.config import DataConfig, EvalConfig, ExportConfig, RunConfig, ScoreConfig, ServeConfig, TrainConfig
from makemore.errors import ConfigError
from makemore.generate.config import SampleConfig
from makemore.ladder import LadderConfig
from makemore.models import REGISTRY
from makemore.options import CLI, JSON, PAGE

NESTED = {"model_config", "data", "train"}  # RunConfig's configs, walked on their own
NOT_OPTIONS = {"auto"}  # RunConfig.auto: the request the options given make (makemore.auto), not one
CONFIGS = [DataConfig, TrainConfig, RunConfig, SampleConfig, ScoreConfig, ServeConfig, ExportConfig, EvalConfig]
CONFIGS.append(LadderConfig)
CONFIGS += list(dict.fromkeys(family.config for family in REGISTRY.values()))
# fields that only make sense together with another
PARTNERS = {
    "label_column": {"item_column": "name"},
    "test_input": {"dev_input": "dev.txt"},
    "pool": {"similar_to": "ab", "num": 5},
}


def _fields():
    for cls in CONFIGS:
        for f in dataclasses.fields(cls):
            if f.init and f.name not in NESTED | NOT_OPTIONS:
                yield cls, f


FIELDS = list(_fields())


def _id(case) -> str:
    return f"{case[0].__name__}.{case[1].name}"


@pytest.mark.parametrize("case", FIELDS, ids=map(_id, FIELDS))
def test_every_field_is_declared_with_help_and_surfaces(case):
    cls, f = case
    declared = options.find(cls, f.name)
    assert declared is not None, "declare it with options.option(...)"
    assert declared.option.help and declared.option.surfaces <= {CLI, JSON, PAGE}
    assert CLI in declared.option.surfaces or not declared.option.surfaces  # a page option is also a flag


def _candidates(d: options.Declared) -> list:
    how, default = d.option, d.default
    if d.kind == "bool":
        return [not default]
    if d.kind == "list":
        return [("ab", "cd"), tuple(how.choices[:2])]
    if d.kind == "str":
        return [c for c in how.choices if c != default] or ["auto", "ab", "0.0.0.0"]
    start = 0 if default is None else default
    if d.kind == "int":
        return [start + 1, start * 2, start + 2, 100, max(start - 1, 0)]
    return [start / 2 if start else 0.5, start + 0.5, 0.25, 90.0]


def _changed(cls: type, d: options.Declared) -> dict:
    """One valid setting of ``d`` other than its default (with a partner field if it needs one)."""
    base = {"model": "mlp"} if cls is RunConfig else {}
    for value in _candidates(d):
        settings = {**base, **PARTNERS.get(d.name, {}), d.name: value}
        try:
            cls(**settings)
        except ConfigError:
            continue
        return settings
    raise AssertionError(f"no valid value other than the default for {cls.__name__}.{d.name}")


def _argv(cls: type, settings: dict) -> list[str]:
    out = []
    for name, value in settings.items():
        d = options.find(cls, name)
        flag = d.flag if d is not None else "--" + name.replace("_", "-")
        if value is True:
            out.append(flag)
        elif value is False:
            out.append("--no-" + flag[2:])
        elif isinstance(value, tuple):
            out += [part for v in value for part in (flag, v)]
        else:
            out += [flag, repr(value) if isinstance(value, float) else str(value)]
    return out


def _family_of(cls: type) -> str | None:
    return next((name for name, family in REGISTRY.items() if family.config is cls), None)


def _from_command_line(cls: type, settings: dict):
    """The config the command line builds from the flags of ``settings``."""
    argv = _argv(cls, settings)
    if cls in (DataConfig, TrainConfig, RunConfig) or _family_of(cls):
        family = _family_of(cls) or settings.get("model", "mlp")
        model = [] if "model" in settings else ["--model", family]
        config = run_config_from_args(build_parser().parse_args(["train", "-o", "x", *model, *argv]))
        if cls is RunConfig:
            return config
        return {DataConfig: config.data, TrainConfig: config.train}.get(cls, config.model_config)
    command = {SampleConfig: ["sample", "r"], ScoreConfig: ["score", "r"], ServeConfig: ["serve", "r"],
               ExportConfig: ["export", "r", "-o", "x.onnx"], EvalConfig: ["eval", "r"],
               LadderConfig: ["ladder", "-o", "x"]}[cls]  # fmt: skip
    args = build_parser().parse_args([*command, *argv])
    return cls(**given_of(args, cls))


@pytest.mark.parametrize("case", FIELDS, ids=map(_id, FIELDS))
def test_the_flag_and_the_json_field_round_trip(case):
    cls, f = case
    d = options.find(cls, f.name)
    settings = _changed(cls, d)
    expected = cls(**settings)
    if d.offered(CLI):
        assert getattr(_from_command_line(cls, settings), f.name) == getattr(expected, f.name)
    if d.offered(JSON) and cls is not RunConfig:
        body = options.to_json(expected)
        assert body[d.json] == (list(settings[f.name]) if d.kind == "list" else settings[f.name])
        back = cls(**options.from_json(cls, body))
        assert getattr(back, f.name) == getattr(expected, f.name)


def test_json_names_and_flags_are_the_declared_spellings():
    assert options.find(SampleConfig, "num").json == "n" and options.find(SampleConfig, "num").flag == "--num"
    assert options.flag(TrainConfig, "time_budget") == "--time" and options.json_name(SampleConfig, "num") == "n"
    with pytest.raises(ConfigError, match="^num: unknown field"):
        options.from_json(SampleConfig, {"num": 3})  # the JSON name is n


def test_declared_limits_are_checked_with_the_field_named():
    with pytest.raises(ConfigError, match=r"^TrainConfig\.momentum: must be a finite number >= 0 and < 1, got 1"):
        TrainConfig(momentum=1)
    with pytest.raises(ConfigError, match=r"^NGramConfig\.order: must be an integer from 1 to 8, got 9"):
        REGISTRY["ngram"].config(order=9)
    with pytest.raises(ConfigError, match=r"^ServeConfig\.port: must be an integer from 0 to 65535, got 70000"):
        ServeConfig(port=70000)
    with pytest.raises(ConfigError, match=r"^SampleConfig\.contains: must be a list of strings"):
        SampleConfig(contains="ab")


def test_page_controls_are_the_page_options_of_sample_config():
    controls = list(options.page_controls(SampleConfig, 64))
    names = [c["name"] for c in controls]
    assert names == [d.json for d in options.declared(SampleConfig, PAGE)]
    assert {"n", "seed", "prefix", "new_only", "label"} <= set(names) and "max_tries" not in names
    by_name = {c["name"]: c for c in controls}
    assert by_name["n"]["most"] == 1000 and by_name["new_only"]["default"] is True
    assert by_name["max_len"]["run_length"] and by_name["label"]["choices_from"] == "labels"
    assert by_name["prefix"]["max_length"] == 64 and by_name["n"]["max_length"] is None
