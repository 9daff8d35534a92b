"""Config dataclasses as command-line options, and config fields back as flags.

Model and training options are generated from the config dataclasses (their trailing
``# comments`` are the help), so the CLI and the Python API accept the same settings; a
``ConfigError`` naming a field is shown with the flag that sets it.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
from typing import Any

from makemore import api
from makemore.errors import ConfigError, MakemoreError
from makemore.models import get_family, model_names

MODEL, TRAIN = "m_", "t_"  # dest prefixes of the generated options
# training options that mean nothing to an lr sweep (it sets the lr of every step itself)
SCHEDULE_FIELDS = tuple(
    "steps lr schedule warmup_steps min_lr_ratio step_at step_factor "
    "eval_interval log_interval patience track_update_ratio time_budget".split()
)
TIME_HELP = (
    "train for this long instead of --steps: 90s, 5m, 1h, 1m30s or seconds; the steps that fit "
    "(evaluations included) are measured on a copy of the model and recorded in the run"
)


def init_fields(cls) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]


def field_comments(cls) -> dict[str, str]:
    """The trailing ``# comment`` of each field in a config dataclass's source, for --help."""
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for line in source.splitlines():
            match = re.match(r"\s+(\w+)\s*:[^=#]*=[^#]*#\s*(.+)$", line)
            if match:
                comments[match.group(1)] = match.group(2).strip().replace("%", "%%")
    return comments


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


def model_fields() -> dict[str, tuple[Any, str]]:
    """Every family's config fields (union), each with the families that have it."""
    fields: dict[str, tuple[Any, list[str]]] = {}
    comments: dict[str, str] = {}
    for family in model_names():
        config_cls = get_family(family).config
        for name, comment in field_comments(config_cls).items():
            comments.setdefault(name, comment)
        for f in init_fields(config_cls):
            default = f.default if f.default is not dataclasses.MISSING else None
            fields.setdefault(f.name, (default, []))[1].append(family)
    return {
        name: (default, "; ".join(filter(None, [comments.get(name), f"model option ({', '.join(fams)})"])))
        for name, (default, fams) in fields.items()
    }


def train_fields(exclude: tuple[str, ...] = ()) -> dict[str, tuple[Any, str]]:
    comments = field_comments(api.TrainConfig)
    return {
        f.name: (
            f.default,
            "; ".join(filter(None, [comments.get(f.name), f"default {f.default!r} (some models set their own)"])),
        )
        for f in init_fields(api.TrainConfig)
        if f.name not in exclude
    }


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


def add_run_options(parser, *, exclude_train: tuple[str, ...] = ()) -> None:
    """Data, model family or preset, model options and training options."""
    add_data_options(parser)
    parser.add_argument(
        "--model",
        default=None,
        choices=model_names(),
        help="model family, with its own defaults (default: the 'default' preset)",
    )
    parser.add_argument(
        "--preset",
        default=None,
        choices=list(api.PRESETS),
        help="a named configuration (model, options and training), e.g. the lectures'",
    )
    add_dataclass_options(parser.add_argument_group("model options (see: makemore models)"), model_fields(), MODEL)
    group = parser.add_argument_group("training options")
    add_dataclass_options(group, train_fields((*exclude_train, "time_budget")), TRAIN)
    if "time_budget" not in exclude_train:  # TrainConfig.time_budget, spelled as a duration
        group.add_argument("--time", dest=TRAIN + "time_budget", type=duration, metavar="DURATION", help=TIME_HELP)


def duration(text: str) -> float:
    """argparse type of ``--time``: seconds of a duration (``api.parse_duration``)."""
    try:
        return api.parse_duration(text)
    except MakemoreError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def given(args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in vars(args).items() if k.startswith(prefix) and v is not None}


DATA_FLAGS = ("input", "max_item_len", "split_seed", "dedupe", "labelled", "label_column", "item_column")


def data_given(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in DATA_FLAGS if getattr(args, k, None) is not None}


def run_config_from_args(args: argparse.Namespace) -> api.RunConfig:
    """The RunConfig of ``train``/``lr-find`` options: preset or family defaults, then the options given."""
    if args.preset:
        config = api.preset_config(args.preset)
        if args.model and args.model != config.model:
            raise MakemoreError(f"--model {args.model} conflicts with --preset {args.preset} (a {config.model} preset)")
    elif args.model:  # the family's own defaults
        config = api.RunConfig(model=args.model)
    else:
        config = api.preset_config(api.DEFAULT_PRESET)
    model_opts = given(args, MODEL)
    if model_opts:
        config.model_config = api.with_options(config.model, config.model_config, model_opts)
    train = given(args, TRAIN)
    if "steps" in train and "time_budget" in train:
        raise MakemoreError("--steps and --time both say how long to train: give one of them")
    config.train = dataclasses.replace(config.train, **train)
    config.data = dataclasses.replace(config.data, **data_given(args))
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
