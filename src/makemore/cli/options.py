"""Config dataclasses as command-line options, and config fields back as flags.

Model and training options are generated from the config dataclasses (their trailing
``# comments`` are the help), so the CLI and the Python API accept the same settings; a
``ConfigError`` naming a field is shown with the flag that sets it. The parser is built
without importing torch: the model families' options are read from their declarations
(``declarations``), and the help shows the defaults ``makemore train`` really uses (the
default preset's, over the family's, over ``TrainConfig``'s).
"""

from __future__ import annotations

import argparse
import dataclasses
import textwrap
from pathlib import Path
from typing import Any

from makemore import config as configs
from makemore.cli import declarations, suggest
from makemore.cli.epochs import check_epochs
from makemore.errors import ConfigError, MakemoreError

MODEL, TRAIN = "m_", "t_"  # dest prefixes of the generated options
# training options that mean nothing to an lr sweep (it sets the lr of every step itself)
SCHEDULE_FIELDS = tuple(
    "steps lr schedule warmup_steps min_lr_ratio step_at step_factor "
    "eval_interval log_interval patience track_update_ratio time_budget".split()
)
# what fitting a count model reads of TrainConfig (training.train: the device it counts on, the
# process group it joins, the --time it fits in); any other training option does not apply
COUNTING_FIELDS = ("device", "backend", "time_budget")
TIME_HELP = (
    "train for this long instead of --steps: 90s, 5m, 1h, 1m30s or seconds; the steps that fit "
    "(evaluations included) are measured on a copy of the model and recorded in the run"
)
EPOCHS_HELP = (
    "train for N passes over the training split instead of --steps (N may be fractional): steps = "
    "N x the split's examples / --batch-size, rounded up, computed once the data is read; the examples "
    "are the items for sequence models, the characters and item ends for window models (makemore models "
    "shows each family's kind)"
)
THEIRS = "--model/--preset: their own"


def init_fields(cls) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]


def add_dataclass_options(parser, fields: dict[str, tuple[Any, str]], prefix: str) -> None:
    """Add ``--field-name`` options (default None = not given) for ``{name: (default, help)}``."""
    for name, (default, help_text) in fields.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(
                flag, dest=prefix + name, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        else:
            kind = type(default) if default is not None else str
            parser.add_argument(flag, dest=prefix + name, type=kind, default=None, metavar=name.upper(), help=help_text)


def default_run() -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(family, model options, training options) of ``makemore train`` without --model/--preset."""
    preset = configs.PRESETS[configs.DEFAULT_PRESET]
    return preset.model, *family_settings(preset.model, preset.model_options, preset.train_options)


def family_settings(family: str, model: dict | None = None, train: dict | None = None) -> tuple[dict, dict]:
    """Every model and training option of ``family`` (its defaults, then ``model``/``train``)."""
    declared = declarations.families()[family]
    base = {f.name: f.default for f in init_fields(configs.TrainConfig)}
    return (
        {**{o.name: o.default for o in declared.options}, **(model or {})},
        {**base, **declared.train_defaults, **(train or {})},
    )


def _other_runs() -> list[tuple[dict, dict]]:
    """The settings of every --model FAMILY and every --preset NAME."""
    runs = [family_settings(name) for name in declarations.families()]
    runs += [family_settings(p.model, p.model_options, p.train_options) for p in configs.PRESETS.values()]
    return runs


def _default_note(value: Any, varies: bool) -> str:
    return f"default {value!r}" + (f" (default preset; {THEIRS})" if varies else "")


def model_fields() -> dict[str, tuple[Any, str]]:
    """Every family's config fields (union), each with the families that have it and, for the
    default preset's family, the default ``makemore train`` uses."""
    fields: dict[str, tuple[Any, list[str]]] = {}
    comments: dict[str, str] = {}
    for family, declared in declarations.families().items():
        for option in declared.options:
            if option.comment:
                comments.setdefault(option.name, option.comment.replace("%", "%%"))
            fields.setdefault(option.name, (option.default, []))[1].append(family)
    _, used, _ = default_run()
    others = [model for model, _ in _other_runs()]
    out = {}
    for name, (default, families) in fields.items():
        parts = [comments.get(name), f"model option ({', '.join(families)})"]
        if name in used:
            parts.append(_default_note(used[name], any(o.get(name, used[name]) != used[name] for o in others)))
        out[name] = (default, "; ".join(filter(None, parts)))
    return out


def train_fields(exclude: tuple[str, ...] = ()) -> dict[str, tuple[Any, str]]:
    """TrainConfig's fields with their comments and the defaults ``makemore train`` uses."""
    comments = declarations.class_comments(Path(configs.__file__), "TrainConfig")
    _, _, used = default_run()
    others = [train for _, train in _other_runs()]
    out = {}
    for f in init_fields(configs.TrainConfig):
        if f.name in exclude:
            continue
        varies = any(o[f.name] != used[f.name] for o in others)
        note = _default_note(used[f.name], varies)
        out[f.name] = (f.default, "; ".join(filter(None, [comments.get(f.name, "").replace("%", "%%"), note])))
    return out


def add_data_options(parser) -> None:
    parser.add_argument(
        "-i",
        "--input",
        default=None,
        help="words file, one item per line (default: built-in names corpus; builtin:NAME for others)",
    )
    parser.add_argument(
        "--max-item-len", type=int, default=None, help="longest item accepted, in characters (default 256)"
    )
    parser.add_argument(
        "--split-seed", type=int, default=None, help="seed of the 80/10/10 split (default 42: the lectures' split)"
    )
    parser.add_argument("--dedupe", action="store_true", default=None, help="drop repeated items before splitting")
    parser.add_argument(
        "--lowercase",
        action="store_true",
        default=None,
        help="fold the items to lower case before training; the run then folds what you type too",
    )
    parser.add_argument(
        "--labelled",
        action="store_true",
        default=None,
        help="lines are LABEL<TAB>ITEM: train a model conditional on the label (sample/score --label)",
    )
    parser.add_argument(
        "--label-column", default=None, metavar="COLUMN", help="CSV input: the column of labels (header name or number)"
    )
    parser.add_argument(
        "--item-column",
        default=None,
        metavar="COLUMN",
        help="read the input as CSV with a header line; the column of items (header name or number from 1)",
    )


TRAINING_DEFAULTS = (
    "The defaults shown are those `makemore train` uses without --model or --preset: the 'default' "
    "preset's ({family}). --model FAMILY trains with the family's own defaults and --preset NAME with the "
    "preset's (makemore models lists both); the options given here go on top."
)


def add_run_options(parser, *, exclude_train: tuple[str, ...] = ()) -> None:
    """Data, model family or preset, model options and training options (``--epochs`` with ``--steps``)."""
    add_data_options(parser)
    family = default_run()[0]
    parser.add_argument(
        "--model",
        default=None,
        choices=list(declarations.families()),
        help=f"model family, trained with the family's own defaults (default: the 'default' preset: family "
        f"{family}, with the preset's own settings; see makemore models)",
    )
    parser.add_argument(
        "--preset",
        default=None,
        choices=list(configs.PRESETS),
        help="a named configuration (model, options and training), e.g. the lectures'",
    )
    add_dataclass_options(parser.add_argument_group("model options (see: makemore models)"), model_fields(), MODEL)
    group = parser.add_argument_group("training options", textwrap.fill(TRAINING_DEFAULTS.format(family=family), 76))
    add_dataclass_options(group, train_fields((*exclude_train, "time_budget")), TRAIN)
    if "time_budget" not in exclude_train:  # TrainConfig.time_budget, spelled as a duration
        group.add_argument("--time", dest=TRAIN + "time_budget", type=duration, metavar="DURATION", help=TIME_HELP)
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


DATA_FLAGS = ("input", "max_item_len", "split_seed", "dedupe", "labelled", "label_column", "item_column", "lowercase")


def data_given(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in DATA_FLAGS if getattr(args, k, None) is not None}


def flag_name(field: str, value: Any = None) -> str:
    """The flag of a model or training field (``time_budget`` is ``--time``; False is ``--no-...``)."""
    flag = "--time" if field == "time_budget" else "--" + field.replace("_", "-")
    return "--no-" + flag[2:] if value is False else flag


def family_of(args: argparse.Namespace) -> str:
    """The model family the options of ``train``/``lr-find`` train (--preset, --model or the default preset's)."""
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
    known = [option.name for option in declarations.families()[family].options]
    for field, value in given(args, MODEL).items():
        if field not in known:
            near = suggest.closest(field, known)
            hint = f"; did you mean {' or '.join(map(flag_name, near))}?" if near else ""
            typed = flag_name(field, value)
            raise MakemoreError(f"{typed}: model {family!r} has no such option{hint} (see: makemore models)")
    train = given(args, TRAIN)
    epochs = getattr(args, "epochs", None)
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

    if get_family(family).model.trains_by_gradient:
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


def flag_for(parser: argparse.ArgumentParser, field: str, owner: str | None = None) -> str:
    """How the user of ``parser`` sets config field ``field`` (its long flag; the field if none)."""
    prefixes = {"TrainConfig": (TRAIN,), "DataConfig": ("",), "SampleConfig": ("",)}.get(owner or "", ())
    if owner and owner.endswith("Config") and owner not in ("TrainConfig", "DataConfig", "SampleConfig", "RunConfig"):
        prefixes = (MODEL,)
    actions = {action.dest: action for action in parser._actions}
    for prefix in (*prefixes, "", MODEL, TRAIN):
        action = actions.get(prefix + field)
        if action is None or action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            return max(action.option_strings, key=lambda flag: (not flag.startswith("--no-"), len(flag)))
        return action.metavar or action.dest.upper()
    return field


def render(exc: ConfigError, parser: argparse.ArgumentParser) -> str:
    """The error as the CLI user knows the settings: by their flags."""
    return exc.render(lambda field: flag_for(parser, field, exc.owner))
