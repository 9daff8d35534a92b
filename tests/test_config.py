"""Configs and presets: defaults, one validation where a value enters, errors that name the field."""

from __future__ import annotations

import dataclasses

import pytest

from makemore import api
from makemore.config import PRESETS, DataConfig, Preset, RunConfig, TrainConfig, default_train_config
from makemore.errors import ConfigError
from makemore.generate.sampling import SampleConfig
from makemore.models import REGISTRY, get_family, make_config, with_options


def test_the_default_run_is_the_default_preset():
    assert RunConfig() == api.preset_config(api.DEFAULT_PRESET)
    assert RunConfig().model == PRESETS[api.DEFAULT_PRESET].model
    # data or training given alone keep the default preset's model
    only_data = RunConfig(data=DataConfig(input="words.txt"))
    assert only_data.model_config == RunConfig().model_config and only_data.train == RunConfig().train
    assert RunConfig(train=TrainConfig(steps=7)).train.steps == 7


@pytest.mark.parametrize("family", list(REGISTRY))
def test_a_family_alone_gets_its_own_defaults(family):
    config = RunConfig(model=family)
    assert config.model_config == get_family(family).config()
    assert config.train == default_train_config(family)
    assert config.train == TrainConfig(**get_family(family).config.train_defaults)


def test_presets_are_data_and_build():
    for name, preset in PRESETS.items():
        assert isinstance(preset, Preset) and preset.description
        config = api.preset_config(name)
        assert config.model == preset.model
        for key, value in preset.model_options.items():
            assert getattr(config.model_config, key) == value
        for key, value in preset.train_options.items():
            assert getattr(config.train, key) == value
    with pytest.raises(ConfigError, match="unknown preset 'nope'") as info:
        api.preset_config("nope")
    assert info.value.field == "preset"


@pytest.mark.parametrize(
    "build, owner, field",
    [
        (lambda: TrainConfig(steps=0), "TrainConfig", "steps"),
        (lambda: TrainConfig(batch_size=-1), "TrainConfig", "batch_size"),
        (lambda: TrainConfig(optimizer="adam"), "TrainConfig", "optimizer"),
        (lambda: TrainConfig(schedule="linear"), "TrainConfig", "schedule"),
        (lambda: TrainConfig(lr=float("nan")), "TrainConfig", "lr"),
        (lambda: TrainConfig(momentum=1.0), "TrainConfig", "momentum"),
        (lambda: TrainConfig(seed=2**64), "TrainConfig", "seed"),
        (lambda: TrainConfig(device="tpu"), "TrainConfig", "device"),
        (lambda: TrainConfig(eval_interval=0), "TrainConfig", "eval_interval"),
        (lambda: DataConfig(max_item_len=0), "DataConfig", "max_item_len"),
        (lambda: DataConfig(dedupe="yes"), "DataConfig", "dedupe"),
        (lambda: SampleConfig(num=-1), "SampleConfig", "num"),
        (lambda: SampleConfig(top_p=0.0), "SampleConfig", "top_p"),
        (lambda: SampleConfig(temperature=float("inf")), "SampleConfig", "temperature"),
        (lambda: SampleConfig(min_len=5, max_len=3), "SampleConfig", "min_len"),
        (lambda: make_config("mlp", {"n_hidden": 0}), "MLPConfig", "n_hidden"),
        (lambda: make_config("mlp", {"dropout": 1.0}), "MLPConfig", "dropout"),
        (lambda: make_config("wavenet", {"block_size": 6}), "WaveNetConfig", "block_size"),
        (lambda: make_config("transformer", {"n_embd": 30, "n_head": 4}), "TransformerConfig", "n_embd"),
        (lambda: make_config("ngram", {"order": 9}), "NGramConfig", "order"),
        (lambda: make_config("lstm", {"weight_dropout": -0.1}), "LSTMConfig", "weight_dropout"),
        (lambda: RunConfig(model="nope"), None, "model"),
        (lambda: RunConfig(model="mlp", model_config=make_config("gru")), "RunConfig", "model_config"),
    ],
)
def test_a_bad_value_is_refused_where_it_enters_naming_its_field(build, owner, field):
    with pytest.raises(ConfigError) as info:
        build()
    error = info.value
    assert (error.owner, error.field) == (owner, field)
    assert str(error).startswith(f"{owner}.{field}: " if owner else f"{field}: ")
    assert "\n" not in str(error) and "--" not in str(error)  # field names, never CLI flags


def test_replacing_a_field_validates_again():
    with pytest.raises(ConfigError, match="TrainConfig.steps"):
        dataclasses.replace(TrainConfig(), steps=0)
    config = make_config("mlp")
    assert with_options("mlp", config, {"n_embd": 4}).n_embd == 4
    with pytest.raises(ConfigError, match="model 'mlp' has no such option") as info:
        with_options("mlp", config, {"order": 3})
    assert info.value.field == "order"


def test_render_spells_fields_as_the_reader_knows_them():
    error = ConfigError("min_len", "9 is more than max_len 8", owner="SampleConfig", related=("max_len",))
    assert str(error) == "SampleConfig.min_len: 9 is more than max_len 8"
    flags = {"min_len": "--min-len", "max_len": "--max-len"}
    assert error.render(flags.__getitem__) == "--min-len: 9 is more than --max-len 8"
    headless = ConfigError(None, "f.txt:3: too long for max_item_len (5)", related=("max_item_len",))
    assert headless.render(lambda f: "--max-item-len") == "f.txt:3: too long for --max-item-len (5)"


def test_the_config_module_mirrors_the_values_it_cannot_import():
    """config.py imports no torch (the CLI parses before importing it), so it holds copies of
    two values that live with torch code: they must stay equal."""
    from makemore import config
    from makemore.data import batching, wordsfile

    assert config.BATCHINGS == batching.BATCHINGS
    assert config.DEFAULT_MAX_ITEM_LEN == wordsfile.DEFAULT_MAX_ITEM_LEN == DataConfig().max_item_len
