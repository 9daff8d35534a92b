"""One function per subcommand: read the parsed arguments, call the API, print the result."""

from __future__ import annotations

import argparse
import sys

from makemore import api, files, plots
from makemore.cli.options import MODEL, TRAIN, data_given, given, init_fields, run_config_from_args
from makemore.data import Vocab, parse_words, read_words
from makemore.errors import MakemoreError
from makemore.manual_backprop import format_gradcheck, gradcheck
from makemore.models import get_family, model_names


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume:
        changes = {k: v for k, v in given(args, TRAIN).items() if k in ("steps", "lr", "grad_clip")}
        settings = {k: v for k, v in {**given(args, MODEL), **given(args, TRAIN)}.items() if k not in changes}
        if settings or data_given(args) or args.preset or args.model or args.overwrite:
            raise MakemoreError(
                "--resume takes the run's own settings (data, model, training); "
                "only -o, --steps, --lr and --grad-clip may be given"
            )
        metrics = api.train(None, args.out_dir, resume=True, progress=not args.quiet, **changes)
    else:

        def announce(config: api.RunConfig) -> None:
            if not args.quiet:
                print(
                    f"training {config.model} on {config.data.input or 'builtin:names'} -> {args.out_dir}",
                    file=sys.stderr,
                )

        metrics = api.train(
            run_config_from_args(args),
            args.out_dir,
            progress=not args.quiet,
            overwrite=args.overwrite,
            on_start=announce,
        )
    print(
        f"train NLL {metrics['train_loss']:.4f}  dev NLL {metrics['dev_loss']:.4f}  ({args.out_dir}/best.safetensors)"
    )
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    output = files.check_output(args.output, force=args.force) if args.output else None
    # the sample flags are SampleConfig's fields, spelled the same
    config = api.SampleConfig(**{f.name: getattr(args, f.name) for f in init_fields(api.SampleConfig)})
    items = []
    try:
        for item in api.iter_sample(api.load_run(args.run, args.which), config):
            if output is None:  # streamed: a long run shows what it has
                sys.stdout.write(item + "\n")
            items.append(item)
    finally:  # also when sampling gives up or is interrupted: keep what was made
        if output is not None and items:
            files.atomic_write_text(output, "".join(item + "\n" for item in items))
    if output is not None and not items:
        files.atomic_write_text(output, "")
    return 0


def _read_stdin_items() -> list[str]:
    raw = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode("utf-8")
    return parse_words(raw, source="standard input", max_len=len(raw) + 1) if raw.strip() else []


def cmd_score(args: argparse.Namespace) -> int:
    words = list(args.words)
    if words == ["-"]:
        words = _read_stdin_items()
    if not words:
        raise MakemoreError("score: give at least one word (or - to read them from standard input)")
    run = api.load_run(args.run, args.which)
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
    for split, nll in api.evaluate(api.load_run(args.run, args.which)).items():
        print(f"{split:<6} NLL {nll:.4f}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    out = files.check_output(args.output, suffixes=(".png",), force=args.force)
    if args.what == "loss":
        plots.plot_loss_curves(api.training_curve(args.run), out, smooth=args.smooth)
        print(out)
        return 0
    run = api.load_run(args.run, args.which)
    labels = run.vocab.display_labels()
    if args.what == "bigram":
        info = plots.plot_bigram_counts(api.bigram_counts(run), labels, out, max_chars=args.max_chars)
        if info["shown"] < info["total"]:
            print(
                f"showing the boundary and the {info['shown'] - 1} most frequent of {info['total'] - 1} characters "
                "(--max-chars shows more)",
                file=sys.stderr,
            )
    elif args.what == "embedding":
        plots.plot_embedding(api.char_embedding(run), labels, out)
    else:  # activations
        stats = api.activation_stats(run, args.batch_size)
        ratios, steps = api.update_ratios(args.run)
        if not ratios:
            print("no update ratios recorded (train with --track-update-ratio 100 to plot them)", file=sys.stderr)
        plots.plot_activations(
            stats, out, update_ratios=ratios or None, ratio_steps=steps or None, ratios_are_log10=True
        )
    print(out)
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    out = files.check_output(args.output, suffixes=(".png",), force=args.force)
    lrs, losses = api.lr_find(
        run_config_from_args(args), start=args.start, end=args.end, steps=args.steps, progress=not args.quiet
    )
    suggestion = plots.suggest_lr(lrs, losses)
    plots.plot_lr_find(lrs, losses, out, suggestion=suggestion)
    print(f"suggested lr {suggestion:.3g}  (plot: {out})")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    for name, info in api.builtin_datasets().items():
        words = read_words(api.builtin_path(name))
        alphabet = "".join(Vocab.from_words(words).chars)
        print(
            f"builtin:{name}\t{len(words)} items\talphabet: {alphabet!r}\n  {info['description']}\n  source: {info['source']}"
        )
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    for name in model_names():
        config_cls, model_cls = get_family(name)
        options = ", ".join(f"--{f.name.replace('_', '-')} {f.default!r}" for f in init_fields(config_cls))
        kind = model_cls.input_kind if model_cls.trains_by_gradient else "count"
        print(f"{name:<12} {kind:<8} {options}")
        if config_cls.train_defaults:
            print(
                f"{'':<21} training: "
                + ", ".join(f"--{k.replace('_', '-')} {v!r}" for k, v in config_cls.train_defaults.items())
            )
        if model_cls.has_manual_backward:
            print(f"{'':<21} has a hand-written backward pass (--backward manual)")
    print("\npresets:")
    for name, preset in api.PRESETS.items():
        print(f"  {name:<10} {preset.description}")
    return 0


def cmd_gradcheck(args: argparse.Namespace) -> int:
    import torch

    dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
    print(format_gradcheck(gradcheck(dtype=dtype, batch_size=args.batch_size, seed=args.seed, fused=args.fused)))
    return 0
