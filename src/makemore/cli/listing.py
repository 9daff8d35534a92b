"""The commands that list what makemore has: ``makemore datasets`` and ``makemore models``."""

from __future__ import annotations

import argparse

from makemore import api
from makemore.auto import CANDIDATES, RULE
from makemore.cli.options import default_run, family_settings, flag_name
from makemore.models import get_family, model_names


def cmd_datasets(args: argparse.Namespace) -> int:
    for name, info in api.builtin_datasets().items():
        data = api.load_data(api.DataConfig(input=f"builtin:{name}"))
        labels = f"\tlabels: {', '.join(data.vocab.label_names)}" if data.labels else ""
        print(
            f"builtin:{name}\t{len(data.words)} items\talphabet: {''.join(data.vocab.chars)!r}{labels}\n"
            f"  {info['description']}\n  source: {info['source']}"
        )
    return 0


def _settings(settings: dict) -> str:
    return ", ".join(f"{flag_name(k)} {v!r}" for k, v in settings.items())


def _training(train: dict, used: dict) -> str:
    """The training settings that differ from the defaults ``makemore train --help`` shows."""
    return _settings({k: v for k, v in train.items() if v != used[k]}) or "the defaults makemore train --help shows"


def cmd_models(args: argparse.Namespace) -> int:
    """Each family and preset with the model options and the training it gets (training: where it
    differs from the defaults of ``makemore train --help``, those of the default preset)."""
    _, _, used = default_run()
    pad = " " * 22
    print("families (makemore train --model NAME; training: where it differs from makemore train --help):")
    for name in model_names():
        model_cls = get_family(name).model
        model, train = family_settings(name)
        kind = model_cls.input_kind if model_cls.trains_by_gradient else "count"
        print(f"{name:<12} {kind:<8} {_settings(model)}")
        if model_cls.trains_by_gradient:
            print(f"{pad}training: {_training(train, used)}")
        else:
            print(f"{pad}fitted by counting in one pass: no training options but --device, --backend, --time")
        if model_cls.has_manual_backward:
            print(f"{pad}has a hand-written backward pass (--backward manual)")
    print("\npresets (makemore train --preset NAME; makemore train alone uses 'auto'):")
    print(f"  {'auto':<10} chosen from the data and --time by a measured table (docs/auto.md), among:")
    in_table = {name for row in RULE for name in (row.pick, row.neural)}
    for name, candidate in CANDIDATES.items():
        print(f"{pad}{name}: {candidate.summary}" + ("" if name in in_table else " (studied, never picked)"))
    for name, preset in api.PRESETS.items():
        model, train = family_settings(preset.model, preset.model_options, preset.train_options)
        print(f"  {name:<10} {preset.model}: {preset.description}")
        print(f"{pad}{_settings(model)}")
        print(f"{pad}training: {_training(train, used)}")
    return 0
