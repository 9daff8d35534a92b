"""Config dataclasses as command-line options, and config fields back as flags.

Every flag of a config field is generated from its declaration (``makemore.options``: help,
spelling, metavar), so the CLI, the JSON API and the page offer the same settings; a
``ConfigError`` naming a field is shown with the flag that sets it. The parser is built
without importing torch (the configs are plain dataclasses), and the help shows the defaults
``makemore train`` really uses (the default preset's, over the family's, over ``TrainConfig``'s).
"""

from __future__ import annotations

import argparse
import dataclasses
import textwrap
from typing import Any

from makemore import config as configs
from makemore import options
from makemore.auto import CANDIDATES, DEFAULT_BUDGET, conflict
from makemore.cli import suggest
from makemore.cli.epochs import check_epochs
from makemore.errors import ConfigError, MakemoreError
from makemore.generate.config import SampleConfig
from makemore.ladder import LadderConfig
from makemore.models import REGISTRY
from makemore.options import CLI, Declared

MODEL, TRAIN = "m_", "t_"  # dest prefixes of the generated model and training options
# training options that mean nothing to an lr sweep (it sets the lr of every step itself)
SCHEDULE_FIELDS = tuple(
    "steps lr schedule warmup_steps min_lr_ratio step_at step_factor "
    "eval_interval log_interval patience track_update_ratio time_budget".split()
)
# what fitting a count model reads of TrainConfig (training.train: the device it counts on, the
# process group it joins, the --time it fits in); any other training option does not apply
COUNTING_FIELDS = ("device", "backend", "time_budget")
EPOCHS_HELP = (
    "train for N passes over the training split instead of --steps (N may be fractional): steps = "
    "N x the split's examples / --batch-size, rounded up, computed once the data is read; the examples "
    "are the items for sequence models, the characters and item ends for window models (makemore models "
    "shows each family's kind)"
)
THEIRS = "--model/--preset: their own"
AUTO = "auto"  # --preset auto (makemore.auto): train's default
_PARSERS = {"duration": "duration"}  # Option.parse -> the argparse type below that reads it


def init_fields(cls) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]


def add_options(container, declared: list[Declared], prefix: str = "", helps: dict[str, str] | None = None) -> None:
    """Add one flag per declared option (default None = not given; ``prefix + name`` the dest).

    Args:
        container: a parser or an argument group.
        declared: the options (``options.declared(cls, CLI)``).
        prefix: the dests' prefix (``MODEL``, ``TRAIN`` or none).
        helps: field -> help text, where it is not the declaration's own.
    """
    for d in declared:
        how = d.option
        flags = [f for f in (how.short, d.flag) if f]
        text = (helps or {}).get(d.name, how.help).replace("%", "%%")
        if helps is None and "default" not in text and d.default not in (None, "", (), False, 0):
            text += f" (default {d.default:g})" if d.kind == "float" else f" (default {d.default})"
        common = dict(dest=prefix + d.name, default=None, help=text)
        if d.kind == "bool":  # --no-X where a preset or family may have turned it on
            negatable = bool(prefix) or d.default is True
            container.add_argument(
                *flags, action=argparse.BooleanOptionalAction if negatable else "store_true", **common
            )
        elif d.kind == "list":
            container.add_argument(*flags, action="append", metavar=how.metavar or d.name.upper(), **common)
        else:
            kind = duration if how.parse == "duration" else {"int": int, "float": float, "str": str}[d.kind]
            container.add_argument(*flags, type=kind, metavar=how.metavar or d.name.upper(), **common)


def default_run() -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(family, model options, training options) of ``makemore train`` without --model/--preset."""
    preset = configs.PRESETS[configs.DEFAULT_PRESET]
    return preset.model, *family_settings(preset.model, preset.model_options, preset.train_options)


def family_settings(family: str, model: dict | None = None, train: dict | None = None) -> tuple[dict, dict]:
    """Every model and training option of ``family`` (its defaults, then ``model``/``train``)."""
    config = REGISTRY[family].config
    base = {f.name: f.default for f in init_fields(configs.TrainConfig)}
    return (
        {**{d.name: d.default for d in options.declared(config, CLI)}, **(model or {})},
        {**base, **config.train_defaults, **(train or {})},
    )


def _other_runs() -> list[tuple[dict, dict]]:
    """The settings of every --model FAMILY and every --preset NAME."""
    runs = [family_settings(name) for name in REGISTRY]
    runs += [family_settings(p.model, p.model_options, p.train_options) for p in configs.PRESETS.values()]
    return runs


def _default_note(value: Any, varies: bool) -> str:
    return f"default {value!r}" + (f" (default preset; {THEIRS})" if varies else "")


def model_options() -> tuple[list[Declared], dict[str, str]]:
    """Every family's model options (the union, the first family's declaration of each) and
    their help: the families that have it and, for the default preset's family, the default
    ``makemore train`` uses."""
    declared: dict[str, Declared] = {}
    families: dict[str, list[str]] = {}
    for family, entry in REGISTRY.items():
        for d in options.declared(entry.config, CLI):
            declared.setdefault(d.name, d)
            families.setdefault(d.name, []).append(family)
    _, used, _ = default_run()
    others = [model for model, _ in _other_runs()]
    helps = {}
    for name, d in declared.items():
        parts = [d.option.help, f"model option ({', '.join(families[name])})"]
        if name in used:
            parts.append(_default_note(used[name], any(o.get(name, used[name]) != used[name] for o in others)))
        helps[name] = "; ".join(filter(None, parts))
    return list(declared.values()), helps


def train_options(exclude: tuple[str, ...] = ()) -> tuple[list[Declared], dict[str, str]]:
    """TrainConfig's options (but ``exclude``) and their help with the defaults ``makemore train`` uses."""
    _, _, used = default_run()
    others = [train for _, train in _other_runs()]
    declared = [d for d in options.declared(configs.TrainConfig, CLI) if d.name not in exclude]
    helps = {}
    for d in declared:
        if d.name == "time_budget":
            continue  # a duration, off by default
        varies = any(o[d.name] != used[d.name] for o in others)
        helps[d.name] = "; ".join(filter(None, [d.option.help, _default_note(used[d.name], varies)]))
    return declared, helps


TRAINING_DEFAULTS = (
    "The defaults shown are the 'default' preset's ({family}). --model FAMILY trains with the family's own "
    "defaults and --preset NAME with the preset's (makemore models lists both); the options given here go on top."
)
AUTO_HELP = (
    "Without --model or --preset, train uses --preset auto: the family, its size, regularisation and steps "
    "are chosen from the training split's size (characters and item ends) and --time (default: the steps of "
    "about {budget} on 2 CPU cores, a fixed count), by the table of a measured study (docs/auto.md), with a "
    "Kneser-Ney n-gram kept instead when it is better on dev; the choice and why are "
    'printed and kept in run.json ("auto"), and every option given here overrides it.'
)


def add_run_options(parser, *, exclude_train: tuple[str, ...] = (), auto: bool = False) -> None:
    """Data, model family or preset, model options and training options (``--epochs`` with ``--steps``).

    Args:
        auto: offer ``--preset auto`` (train's default; ``train`` only).
    """
    add_options(parser, options.declared(configs.DataConfig, CLI))
    family = default_run()[0]
    model = options.find(configs.RunConfig, "model")
    shown = model.option.help.replace("the 'default' preset", "--preset auto" if auto else "the 'default' preset")
    parser.add_argument("--model", default=None, choices=model.option.choices, help=shown)
    parser.add_argument(
        "--preset",
        default=None,
        choices=[AUTO, *configs.PRESETS] if auto else list(configs.PRESETS),
        help="a named configuration (model, options and training), e.g. the lectures'"
        + ("; auto (the default): chosen from the data and --time" if auto else ""),
    )
    if auto:
        parser.group(
            "--preset auto", textwrap.fill(AUTO_HELP.format(budget=configs.format_duration(DEFAULT_BUDGET)), 76)
        )
    add_options(parser.group("model options (see: makemore models)"), *model_options()[:1], MODEL,
                model_options()[1])  # fmt: skip
    group = parser.group("training options", textwrap.fill(TRAINING_DEFAULTS.format(family=family), 76))
    add_options(group, *train_options(exclude_train)[:1], TRAIN, train_options(exclude_train)[1])
    if "steps" not in exclude_train:
        group.add_argument("--epochs", type=float, default=None, metavar="N", help=EPOCHS_HELP)


def duration(text: str) -> float:
    """argparse type of ``--time``: seconds of a duration (``config.parse_duration``)."""
    from makemore.config import parse_duration

    try:
        return parse_duration(text)
    except MakemoreError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def given(args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in vars(args).items() if k.startswith(prefix) and v is not None}


def given_of(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options of config ``cls`` given on the command line (dests: the field names)."""
    return {
        d.name: getattr(args, d.name) for d in options.declared(cls, CLI) if getattr(args, d.name, None) is not None
    }


def data_given(args: argparse.Namespace) -> dict[str, Any]:
    return given_of(args, configs.DataConfig)


def flag_name(field: str, value: Any = None) -> str:
    """The flag of a model or training field (``time_budget`` is ``--time``; False is ``--no-...``)."""
    flag = options.flag(configs.TrainConfig, field) if field == "time_budget" else "--" + field.replace("_", "-")
    return "--no-" + flag[2:] if value is False else flag


def is_auto(args: argparse.Namespace) -> bool:
    """Whether ``train``'s options ask for ``--preset auto`` (given, or no --model/--preset)."""
    return getattr(args, "command", None) == "train" and (args.preset == AUTO or (not args.preset and not args.model))


def family_of(args: argparse.Namespace) -> str:
    """The model family the options of ``train``/``lr-find`` train (--preset, --model or the default
    preset's), or ``AUTO`` when ``--preset auto`` chooses it."""
    if args.preset == AUTO and args.model:
        raise MakemoreError(f"--model {args.model} conflicts with --preset auto (which chooses the family)")
    if is_auto(args):
        return AUTO
    if args.preset:
        family = configs.PRESETS[args.preset].model
        if args.model and args.model != family:
            raise MakemoreError(f"--model {args.model} conflicts with --preset {args.preset} (a {family} preset)")
        return family
    return args.model or configs.PRESETS[configs.DEFAULT_PRESET].model


def check_run_options(args: argparse.Namespace) -> str:
    """Refuse, without torch, what the options of a new run say wrong: a model option the family
    lacks (with the closest it has), two ways to say how long to train, a training or data value
    out of range (``TrainConfig`` and ``DataConfig`` check each field alone). ``main`` calls it
    before importing anything heavy, so these errors answer at once (and once per torchrun launch).

    Returns:
        the model family.
    """
    family = family_of(args)
    families = sorted({c.family for c in CANDIDATES.values()}) if family == AUTO else [family]
    known = [d.name for f in families for d in options.declared(REGISTRY[f].config, CLI)]
    for field, value in given(args, MODEL).items():
        if field not in known:
            near = suggest.closest(field, known)
            hint = f"; did you mean {' or '.join(map(flag_name, near))}?" if near else ""
            typed = flag_name(field, value)
            which = (
                f"--preset auto's families ({', '.join(families)}) have" if family == AUTO else f"model {family!r} has"
            )
            raise MakemoreError(f"{typed}: {which} no such option{hint} (see: makemore models)")
    train = given(args, TRAIN)
    epochs = getattr(args, "epochs", None)
    if family == AUTO:
        clash = conflict(configs.Auto(given(args, MODEL), train, epochs))
        if clash is not None:
            model, trained = flag_name(clash[0]), "--epochs" if clash[1] == "epochs" else flag_name(clash[1])
            raise MakemoreError(f"{model} and {trained}: --preset auto has no model that takes both ({model} is "
                                f"a count model's, {trained} a model trained by gradient's); give --model")  # fmt: skip
    lengths = [flag for flag, on in (("--steps", "steps" in train), ("--time", "time_budget" in train)) if on]
    if epochs is not None:
        lengths.insert(0, "--epochs")
        check_epochs(epochs)
    if len(lengths) > 1:
        raise MakemoreError(f"{' and '.join(lengths[:2])} both say how long to train: give one of them")
    configs.TrainConfig(**train)
    configs.DataConfig(**data_given(args))
    return family


def check_applies(args: argparse.Namespace, family: str) -> None:
    """Refuse the training options of a model fitted by counting, as other families' options are."""
    from makemore.models import get_family  # imports torch: the command runs now

    if family == AUTO or get_family(family).model.trains_by_gradient:  # auto: the options steer the choice
        return
    extra = [flag_name(f, v) for f, v in given(args, TRAIN).items() if f not in COUNTING_FIELDS]
    extra += ["--epochs"] if getattr(args, "epochs", None) is not None else []
    if extra:
        applies = ", ".join(map(flag_name, COUNTING_FIELDS))
        raise MakemoreError(
            f"{extra[0]}: does not apply to model {family!r}, which is fitted by counting in one pass "
            f"(of the training options only {applies} apply)"
        )


def run_config_from_args(args: argparse.Namespace) -> configs.RunConfig:
    """The RunConfig of ``train``/``lr-find`` options: preset or family defaults, then the options given."""
    family = check_run_options(args)
    check_applies(args, family)
    if family == AUTO:
        auto = configs.Auto(given(args, MODEL), given(args, TRAIN), getattr(args, "epochs", None))
        return configs.RunConfig(auto=auto, data=configs.DataConfig(**data_given(args)))
    if args.preset:
        config = configs.preset_config(args.preset)
    elif args.model:  # the family's own defaults
        config = configs.RunConfig(model=args.model)
    else:
        config = configs.preset_config(configs.DEFAULT_PRESET)
    model_opts = given(args, MODEL)
    if model_opts:
        from makemore.models import with_options

        config.model_config = with_options(config.model, config.model_config, model_opts)
    config.train = dataclasses.replace(config.train, **given(args, TRAIN))
    config.data = dataclasses.replace(config.data, **data_given(args))
    if getattr(args, "epochs", None) is not None:
        from makemore.cli.epochs import steps_for_epochs

        config.train = dataclasses.replace(config.train, steps=steps_for_epochs(config, args.epochs))
    return config


def _configs() -> list[type]:
    """The config classes whose fields the CLI offers."""
    known = [configs.DataConfig, configs.TrainConfig, configs.RunConfig, configs.ScoreConfig, configs.ServeConfig]
    known += [configs.EvalConfig, LadderConfig]
    return [*known, SampleConfig, *(family.config for family in REGISTRY.values())]


def _config_class(owner: str | None) -> type | None:
    """The config class a ``ConfigError`` names (its ``owner``)."""
    return next((cls for cls in _configs() if cls.__name__ == owner), None)


def flag_for(parser: argparse.ArgumentParser, field: str, owner: str | None = None) -> str:
    """How the user of ``parser`` sets config field ``field`` (its long flag; the field if none).

    A field of a config is spelled by its declaration; a function's argument (no owner) by the
    parser's flag of that name, if it has one.
    """
    cls = _config_class(owner)
    if cls is not None and options.find(cls, field) is not None:
        return options.flag(cls, field)
    flags = getattr(parser, "flags", {})
    declared = (options.find(cls, field) for cls in _configs())
    spelled = [d.flag for d in declared if d is not None] + ["--" + field.replace("_", "-")]
    return next((flag for flag in spelled if flag in flags), field)


def render(exc: ConfigError, parser: argparse.ArgumentParser) -> str:
    """The error as the CLI user knows the settings: by their flags."""
    return exc.render(lambda field: flag_for(parser, field, exc.owner))
