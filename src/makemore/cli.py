"""Command-line interface: a thin layer over ``makemore.api``, one function per subcommand.

Model and training options are generated from the config dataclasses, so the CLI and the
Python API always accept the same settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Sequence

from makemore.errors import MakemoreError

EXAMPLES = {
    "train": """examples:
  makemore train -o runs/names                       # default model on the built-in corpus
  makemore train -i words.txt -o runs/ngram --model ngram --order 3 --smoothing kneser-ney
  makemore train -i names.txt -o runs/l3 --preset lecture3
  makemore train -o runs/mlp --model mlp --n-embd 16 --n-hidden 256 --steps 20000 --lr 0.01
  makemore train --resume -o runs/mlp                # continue an interrupted run exactly
  makemore train -o runs/bn --model bn-mlp --optimizer sgd --lr 0.1 --schedule step --backward manual""",
    "sample": """examples:
  makemore sample -o runs/names -n 20 --new-only
  makemore sample -o runs/names --prefix ma --temperature 0.8 --top-k 10 --seed 7""",
    "score": """examples:
  makemore score -o runs/names emma zzzx
  makemore score -o runs/bigram --detail andrej""",
    "eval": """examples:
  makemore eval -o runs/names""",
    "plot": """examples:
  makemore plot bigram -o runs/names --out bigram.png
  makemore plot loss -o runs/names --out loss.png
  makemore plot embedding -o runs/names --out emb.png
  makemore plot activations -o runs/names --out act.png""",
    "lr-find": """examples:
  makemore lr-find --model mlp --out lr.png
  makemore lr-find -i words.txt --model bn-mlp --optimizer sgd --num-steps 500 --out lr.png""",
    "datasets": "examples:\n  makemore datasets",
    "models": "examples:\n  makemore models",
    "gradcheck": """examples:
  makemore gradcheck
  makemore gradcheck --dtype float32 --batch 64 --seed 1""",
}
TOP_LEVEL_EXAMPLES = """examples:
  makemore train -o runs/names && makemore sample -o runs/names -n 20 --new-only
  makemore score -o runs/names --detail emma
  makemore COMMAND --help                            # options and examples of one command"""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str):  # noqa: D401
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _fields(cls) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]


def _field_comments(cls) -> dict[str, str]:
    """The trailing ``# comment`` of each field in a config dataclass's source, for --help."""
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            source = inspect.getsource(klass) if dataclasses.is_dataclass(klass) else ""
        except (OSError, TypeError):
            continue
        for line in source.splitlines():
            match = re.match(r"\s+(\w+)\s*:[^=#]*=[^#]*#\s*(.+)$", line)
            if match:
                comments[match.group(1)] = match.group(2).strip().replace("%", "%%")
    return comments


def _add_dataclass_options(parser: argparse.ArgumentParser, fields: dict[str, tuple[Any, str]], prefix: str) -> None:
    """Add ``--field-name`` options (default None = not given) for ``{name: (default, help)}``."""
    for name, (default, help_text) in fields.items():
        flag = "--" + name.replace("_", "-")
        dest = prefix + name
        if isinstance(default, bool):
            parser.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            kind = type(default) if default is not None else str
            parser.add_argument(flag, dest=dest, type=kind, default=None, metavar=name.upper(), help=help_text)


def _model_fields() -> dict[str, tuple[Any, str]]:
    from makemore.models import get_family, model_names

    fields: dict[str, tuple[Any, list[str]]] = {}
    comments: dict[str, str] = {}
    for family in model_names():
        config_cls, _ = get_family(family)
        for name, comment in _field_comments(config_cls).items():
            comments.setdefault(name, comment)
        for f in _fields(config_cls):
            default = f.default if f.default is not dataclasses.MISSING else None
            fields.setdefault(f.name, (default, []))[1].append(family)
    return {
        name: (default, "; ".join(filter(None, [comments.get(name), f"model option ({', '.join(fams)})"])))
        for name, (default, fams) in fields.items()
    }


def _train_fields() -> dict[str, tuple[Any, str]]:
    from makemore.trainer import TrainConfig

    comments = _field_comments(TrainConfig)
    return {
        f.name: (f.default, "; ".join(filter(None, [comments.get(f.name), f"default {f.default!r} (some models set their own)"])))
        for f in _fields(TrainConfig)
    }


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", "--input", default="", help="words file, one item per line (default: built-in names corpus; builtin:NAME for others)")
    parser.add_argument("--max-item-len", type=int, default=None, help="longest item accepted, in characters (default 256)")
    parser.add_argument("--split-seed", type=int, default=None, help="seed of the 80/10/10 split (default 42: the lectures' split)")
    parser.add_argument("--dedupe", action="store_true", default=None, help="drop repeated items before splitting")


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    from makemore.api import PRESETS
    from makemore.models import model_names

    _add_data_options(parser)
    parser.add_argument("--model", default=None, choices=model_names(), help="model family, with its own defaults (default: the 'default' preset)")
    parser.add_argument("--preset", default=None, choices=list(PRESETS), help="a named configuration (model, options and training), e.g. the lectures'")
    group = parser.add_argument_group("model options (see: makemore models)")
    _add_dataclass_options(group, _model_fields(), "m_")
    group = parser.add_argument_group("training options")
    _add_dataclass_options(group, _train_fields(), "t_")


def _given(args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in vars(args).items() if k.startswith(prefix) and v is not None}


def run_config_from_args(args: argparse.Namespace):
    """Build the RunConfig: preset or family defaults, then the options given."""
    from makemore import api

    if args.preset:
        config = api.preset_config(args.preset)
        if args.model and args.model != config.model:
            raise MakemoreError(f"--model {args.model} conflicts with --preset {args.preset} (a {config.model} preset)")
    elif args.model:  # the family's own defaults
        config = api.RunConfig(model=args.model, model_config=api.make_config(args.model),
                               train=api.default_train_config(args.model))
    else:
        config = api.preset_config(api.DEFAULT_PRESET)
    model_opts = _given(args, "m_")
    if model_opts:
        config.model_config = dataclasses.replace(config.model_config, **_check_fields(config.model, config.model_config, model_opts))
    config.train = dataclasses.replace(config.train, **_given(args, "t_"))
    data_opts = {"input": args.input, "max_item_len": args.max_item_len, "split_seed": args.split_seed, "dedupe": args.dedupe}
    config.data = dataclasses.replace(config.data, **{k: v for k, v in data_opts.items() if v is not None})
    return config


def _check_fields(model: str, config, options: dict) -> dict:
    known = {f.name for f in _fields(type(config))}
    unknown = [k for k in options if k not in known]
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise MakemoreError(f"model '{model}' has no option {flags} (see: makemore models)")
    return options


# -- subcommands ----------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from makemore import api

    if args.resume:
        given = {k: v for k, v in vars(args).items() if k.startswith(("m_", "t_")) and v is not None and k != "t_steps"}
        data_given = args.input or any(v is not None for v in (args.max_item_len, args.split_seed, args.dedupe))
        if given or data_given or args.preset or args.model or args.overwrite:
            raise MakemoreError("--resume takes the run's own settings (data, model, training); only -o and --steps may be given")
        metrics = api.train(None, args.out_dir, resume=True, progress=not args.quiet, steps=args.t_steps)
    else:
        def announce(config: api.RunConfig) -> None:
            if not args.quiet:
                print(f"training {config.model} on {config.data.input or 'builtin:names'} -> {args.out_dir}", file=sys.stderr)

        metrics = api.train(run_config_from_args(args), args.out_dir, progress=not args.quiet, overwrite=args.overwrite,
                            on_start=announce)
    print(f"train NLL {metrics['train_loss']:.4f}  dev NLL {metrics['dev_loss']:.4f}  ({args.out_dir}/best.safetensors)")
    return 0


def _sample_config(args: argparse.Namespace):
    from makemore.sampling import SampleConfig

    return SampleConfig(
        num=args.num, seed=args.seed, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, prefix=args.prefix,
        min_len=args.min_len, max_len=args.max_len, new_only=args.new_only, unique=args.unique, batch_size=args.batch_size,
    )


def cmd_sample(args: argparse.Namespace) -> int:
    from makemore import api
    from makemore.checkpoint import atomic_write_text

    if args.output and not Path(args.output).resolve().parent.is_dir():
        raise MakemoreError(f"--output {args.output}: directory {Path(args.output).parent} does not exist")
    if args.output and Path(args.output).is_dir():
        raise MakemoreError(f"--output {args.output}: is a directory, expected a file name")
    for flag, value in (("--temperature", args.temperature), ("--top-p", args.top_p)):
        if not math.isfinite(value):
            raise MakemoreError(f"{flag} must be a finite number, got {value}")
    run = api.load_run(args.out_dir, args.which)
    items = api.sample(run, _sample_config(args))
    text = "".join(item + "\n" for item in items)
    if args.output:
        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from makemore import api

    words = list(args.words)
    if words == ["-"]:
        words = [line.rstrip() for line in sys.stdin if line.strip()]
    if not words:
        raise MakemoreError("score: give at least one word (or - to read them from standard input)")
    run = api.load_run(args.out_dir, args.which)
    shown = dict(zip(run.vocab.labels(), run.vocab.display_labels()))  # a space is shown as '␣'
    for result in api.score(run, words):
        print(f"{result.word}\t{result.nll:.4f}")
        if args.detail:  # the context right-aligned, so that each predicted char follows it
            contexts = ["".join(shown[label] for label in c.context) for c in result.chars]
            width = max(7, *map(len, contexts))
            print(f"  {'context':>{width}} {'next':<4} {'prob':>8} {'logprob':>9}")
            for context, c in zip(contexts, result.chars):
                print(f"  {context:>{width}} {shown[c.char]:<4} {c.prob:>8.4f} {c.logprob:>9.4f}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from makemore import api

    run = api.load_run(args.out_dir, args.which)
    for split, nll in api.evaluate(run).items():
        print(f"{split:<6} NLL {nll:.4f}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from makemore import api, plots

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise MakemoreError(f"--out {out}: plots are written as PNG; use a .png file name")
    if not out.parent.is_dir():
        raise MakemoreError(f"--out {out}: directory {out.parent} does not exist")
    if args.max_chars < 1:
        raise MakemoreError(f"--max-chars must be at least 1, got {args.max_chars}")
    if args.smooth < 0:
        raise MakemoreError(f"--smooth must be at least 0, got {args.smooth}")
    if args.batch_size < 2:
        raise MakemoreError(f"--batch-size must be at least 2, got {args.batch_size}")
    if args.what == "loss":
        if not Path(args.out_dir).is_dir():
            raise MakemoreError(f"-o {args.out_dir}: no such run directory (train one with: makemore train -o {args.out_dir})")
        rows = _read_metrics(Path(args.out_dir))
        if rows is None:
            raise MakemoreError(f"-o {args.out_dir}: no metrics.jsonl (count models have no training curve)")
        plots.plot_loss_curves(rows, out, smooth=args.smooth)
    else:
        run = api.load_run(args.out_dir, args.which)
        labels = run.vocab.display_labels()
        if args.what == "bigram":
            info = plots.plot_bigram_counts(api.bigram_counts(run), labels, out, max_chars=args.max_chars)
            if info["shown"] < info["total"]:
                print(f"showing the boundary and the {info['shown'] - 1} most frequent of {info['total'] - 1} characters "
                      "(--max-chars shows more)", file=sys.stderr)
        elif args.what == "embedding":
            plots.plot_embedding(_embedding_weights(run), labels, out)
        elif args.what == "activations":
            _plot_activations(run, args, out)
    print(out)
    return 0


def _read_metrics(run_dir: Path) -> list[dict] | None:
    """Rows of ``run_dir/metrics.jsonl`` (None when there is none)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise MakemoreError(f"{path}:{lineno}: not a JSON metrics row (a write was cut short? delete the line)") from None
        if not isinstance(row, dict):
            raise MakemoreError(f"{path}:{lineno}: not a JSON metrics row")
        rows.append(row)
    return rows


def _embedding_weights(run):
    import torch

    for module in run.model.modules():
        if isinstance(module, torch.nn.Embedding) and module.num_embeddings == run.vocab.size:
            return module.weight.detach()
    if run.config.model == "bigram":
        return run.model.W.detach()
    raise MakemoreError(f"model '{run.config.model}' has no character embedding to plot")


def _plot_activations(run, args, out: Path) -> None:
    import torch

    from makemore import api, plots
    from makemore.trainer import make_batcher

    if hasattr(run.model, "fit") or not any(p.requires_grad for p in run.model.parameters()):
        raise MakemoreError(f"model '{run.config.model}' is fitted by counting; it has no activations or gradients to plot")
    data = api.load_data(run.config.data, run.vocab)
    batcher = make_batcher(run.model, data.corpus("train"))
    x, y = batcher.sample(args.batch_size, torch.Generator().manual_seed(0))
    stats = plots.collect_activation_stats(run.model, x, y)
    ratios, steps = {}, []
    for row in _read_metrics(Path(args.out_dir)) or []:
        if "update_ratio" in row:
            steps.append(row["step"])
            for name, value in row["update_ratio"].items():
                ratios.setdefault(name, []).append(value)
    if not ratios:
        print("no update ratios recorded (train with --track-update-ratio 100 to plot them)", file=sys.stderr)
    # the trainer records log10(update std / data std)
    plots.plot_activations(stats, out, update_ratios=ratios or None, ratio_steps=steps or None, ratios_are_log10=True)


def cmd_lr_find(args: argparse.Namespace) -> int:
    from makemore import api, plots

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise MakemoreError(f"--out {out}: use a .png file name")
    if not out.parent.is_dir():
        raise MakemoreError(f"--out {out}: directory {out.parent} does not exist")
    if args.num_steps < 5:
        raise MakemoreError(f"--num-steps must be at least 5, got {args.num_steps}")
    config = run_config_from_args(args)
    lrs, losses = api.lr_find(config, start=args.start, end=args.end, steps=args.num_steps, progress=not args.quiet)
    suggestion = plots.suggest_lr(lrs, losses)
    plots.plot_lr_find(lrs, losses, out, suggestion=suggestion)
    print(f"suggested lr {suggestion:.3g}  (plot: {out})")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from makemore import api
    from makemore.data import Vocab, read_words

    for name, info in api.builtin_datasets().items():
        words = read_words(api.builtin_path(name))
        alphabet = "".join(Vocab.from_words(words).chars)
        print(f"builtin:{name}\t{len(words)} items\talphabet: {alphabet!r}\n  {info['description']}\n  source: {info['source']}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from makemore import api
    from makemore.models import get_family, model_names

    for name in model_names():
        config_cls, model_cls = get_family(name)
        options = ", ".join(f"--{f.name.replace('_', '-')} {f.default!r}" for f in _fields(config_cls))
        print(f"{name:<12} {model_cls.input_kind:<8} {options}")
        train = getattr(config_cls, "default_train", {})
        if train:
            print(f"{'':<21} training: " + ", ".join(f"--{k.replace('_', '-')} {v!r}" for k, v in train.items()))
    print("\npresets:")
    for name, (model, _, _, description) in api.PRESETS.items():
        print(f"  {name:<10} {description}")
    return 0


def cmd_gradcheck(args: argparse.Namespace) -> int:
    import torch

    from makemore import manual_backprop

    if args.batch < 2:
        raise MakemoreError("--batch must be at least 2 (BatchNorm needs a batch variance)")
    dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
    rows = manual_backprop.gradcheck(dtype=dtype, batch_size=args.batch, seed=args.seed, fused=args.fused)
    print(manual_backprop.format_gradcheck(rows))
    return 0


# -- parser ----------------------------------------------------------------------------------


def _add_run_dir(parser: argparse.ArgumentParser, *, which: bool = True) -> None:
    parser.add_argument("-o", "--out-dir", required=True, help="run directory (written by makemore train)")
    if which:
        parser.add_argument("--which", choices=["best", "last"], default="best", help="checkpoint to use (default: best)")


def build_parser() -> argparse.ArgumentParser:
    from makemore import __version__

    parser = Parser(prog="makemore", description="Learn from a list of items (one per line) and make more like them.",
                    epilog=TOP_LEVEL_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"makemore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")

    def add(name: str, func, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES.get(name),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=func)
        return p

    p = add("train", cmd_train, "train a model and write its checkpoints into a run directory")
    p.add_argument("-o", "--out-dir", required=True, help="run directory to create (or to continue with --resume)")
    p.add_argument("--resume", action="store_true", help="continue the run in -o from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in -o")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_run_options(p)

    p = add("sample", cmd_sample, "generate new items with a trained model")
    _add_run_dir(p)
    p.add_argument("-n", "--num", type=int, default=20, help="how many items (default 20)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature; 0 = greedy (default 1)")
    p.add_argument("--top-k", type=int, default=0, help="sample from the k most likely characters (default: all)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default 1: all)")
    p.add_argument("--prefix", default="", help="every item starts with this")
    p.add_argument("--min-len", type=int, default=0, help="shortest item, in characters")
    p.add_argument("--max-len", type=int, default=0, help="longest item, in characters (default: model limit or 2x longest training item)")
    p.add_argument("--new-only", action="store_true", help="drop items present in the training file")
    p.add_argument("--unique", action="store_true", help="drop repeated items")
    p.add_argument("--batch-size", type=int, default=1000, help="items generated together (default 1000)")
    p.add_argument("--output", default=None, help="write the items to this file (atomically) instead of standard output")

    p = add("score", cmd_score, "score how plausible items are (mean negative log-likelihood per character)")
    _add_run_dir(p)
    p.add_argument("words", nargs="*", help="items to score (- reads them from standard input)")
    p.add_argument("--detail", action="store_true", help="print the per-character table (context the model read, next character, probability, log-probability)")

    p = add("eval", cmd_eval, "print the model's NLL on the train/dev/test splits")
    _add_run_dir(p)

    p = add("plot", cmd_plot, "draw what a run learned as a PNG")
    p.add_argument("what", choices=["bigram", "loss", "embedding", "activations"], help="which plot")
    _add_run_dir(p)
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--max-chars", type=int, default=32, help="bigram: show at most this many tokens (default 32)")
    p.add_argument("--smooth", type=int, default=0, help="loss: average train loss over blocks of this many points")
    p.add_argument("--batch-size", type=int, default=512, help="activations: examples in the diagnostic batch")

    p = add("lr-find", cmd_lr_find, "sweep the learning rate exponentially and suggest one")
    p.add_argument("--out", default="lr-find.png", help="PNG file to write (default lr-find.png)")
    p.add_argument("--start", type=float, default=1e-3, help="first learning rate (default 1e-3)")
    p.add_argument("--end", type=float, default=1.0, help="last learning rate (default 1)")
    p.add_argument("--num-steps", type=int, default=1000, help="steps of the sweep (default 1000)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_run_options(p)

    add("datasets", cmd_datasets, "list the built-in corpora")
    add("models", cmd_models, "list model families, their options and the presets")

    p = add("gradcheck", cmd_gradcheck, "compare the hand-written BatchNorm MLP gradients with autograd")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64", help="floating type (default float64)")
    p.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    p.add_argument("--seed", type=int, default=42, help="seed of the random parameters and batch (default 42)")
    p.add_argument("--fused", action="store_true", help="check the fused cross-entropy and BatchNorm backward instead")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from makemore.trainer import TrainingInterrupted

    try:
        return args.func(args)
    except MakemoreError as exc:
        print(f"makemore: error: {exc}", file=sys.stderr)
        return 2
    except TrainingInterrupted as exc:
        print(f"makemore: {exc}; last checkpoint saved. Continue with: makemore train --resume -o {args.out_dir}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("makemore: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:  # e.g. a full disk or a read-only directory while writing
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"makemore: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
