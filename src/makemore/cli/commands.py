"""One function per subcommand: read the parsed arguments, call the API, print the result."""

from __future__ import annotations

import argparse
import secrets
import sys

from makemore import api, files, plots
from makemore.cli import launch
from makemore.cli.listing import cmd_datasets, cmd_models  # noqa: F401 (dispatched by name, as the others)
from makemore.cli.options import (
    MODEL,
    TRAIN,
    data_given,
    given,
    given_of,
    render,
    run_config_from_args,
)
from makemore.cli.serving import cmd_serve, cmd_studio  # noqa: F401 (dispatched by name, as the others)
from makemore.config import format_duration
from makemore.errors import MakemoreError
from makemore.models import get_family

RESUME_CHANGES = ("steps", "lr", "grad_clip", "threads")  # what --resume may change


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume:
        changes = {k: v for k, v in given(args, TRAIN).items() if k in RESUME_CHANGES}
        settings = {k: v for k, v in {**given(args, MODEL), **given(args, TRAIN)}.items() if k not in changes}
        if settings or data_given(args) or args.preset or args.model or args.overwrite or args.epochs is not None:
            raise MakemoreError(
                "--resume takes the run's own settings (data, model, training); "
                "only -o, --steps, --lr, --grad-clip and --threads may be given"
            )
        metrics = api.resume(args.out_dir, progress=not args.quiet, **changes)
    else:

        def announce(config: api.RunConfig) -> None:
            if config.auto is not None:  # the choice and why, in one line (also in run.json)
                choice = config.auto.choice
                print(f"auto: {choice['summary']} ({choice['reason']})", file=sys.stderr)
            if not args.quiet:
                threads = config.train.threads
                print(
                    f"training {config.model} on {config.data.input or 'builtin:names'} -> {args.out_dir}"
                    + (f" ({threads} thread{'s' if threads != 1 else ''})" if threads else "")
                    + _budget_note(config)
                    + (f" ({config.train.steps} steps: {args.epochs:g} epochs)" if args.epochs is not None else ""),
                    file=sys.stderr,
                )

        metrics = api.train(
            run_config_from_args(args),
            args.out_dir,
            progress=not args.quiet,
            overwrite=args.overwrite,
            on_start=announce,
            budget_start=getattr(args, "budget_start", None),
        )
    if not api.is_main_process():
        return 0  # rank 0 of a torchrun run reports
    if "auto_kept" in metrics:  # --preset auto's count model beat the recurrent one on dev
        print(f"auto: {metrics['auto_kept']['summary']}", file=sys.stderr)
    budget = None if args.resume else given(args, TRAIN).get("time_budget")
    took = ""
    if budget and "planned_steps" in metrics:  # a model trained by gradient
        steps = metrics["steps"]
        steps = f"{steps} of {metrics['planned_steps']}" if steps < metrics["planned_steps"] else steps
        took = f"; {steps} steps in {metrics['wall_seconds']:.1f} s"
    sample = metrics.get("train_loss_items", 0), metrics.get("train_items", 0)
    sampled = f" (a sample of {sample[0]:,} of {sample[1]:,} items)" if sample[0] < sample[1] else ""
    print(
        f"train NLL {metrics['train_loss']:.4f}{sampled}  dev NLL {metrics['dev_loss']:.4f}  "
        f"({args.out_dir}/best.safetensors{took})"
    )
    return 0


def _budget_note(config: api.RunConfig) -> str:
    """What ``--time`` chose, for the line announcing a run."""
    seconds = config.train.time_budget
    if not seconds:
        return ""
    if not get_family(config.model).model.trains_by_gradient:
        return "" if config.auto else f" (--time does not apply: {config.model} is fitted by counting, in one pass)"
    if config.auto is not None and config.train.steps >= config.auto.choice.get("max_steps", 0):
        return f" ({config.train.steps} steps: auto's most for this list, within --time {format_duration(seconds)})"
    return f" ({config.train.steps} steps fit in --time {format_duration(seconds)})"


def _known_items(run: api.Run, scores: bool):
    """The training file's items (``api.training_items``), or None with a warning when it cannot be read."""
    try:
        return api.training_items(run)
    except MakemoreError as exc:
        note = f"cannot tell which items are in the training file ({exc})"
        print(
            f"makemore: warning: --scores: {note}; shown as ?" if scores else f"makemore: warning: {note}",
            file=sys.stderr,
        )
        return None


def _sampled(run: api.Run, config: api.SampleConfig, known, scores: bool):
    """(item, line) pairs: the item alone, or with ``--scores`` ITEM<TAB>NLL<TAB>new|known (a 4th
    column, the distance, with --similar-to)."""
    sampler = api.Sampler.of(run, config, known_items=known)
    if not scores:
        yield from ((item, item) for item in sampler.items())
        return
    for s in sampler.scored():
        where = "?" if s.known is None else "known" if s.known else "new"
        yield s.item, f"{s.item}\t{s.nll:.4f}\t{where}" + ("" if s.distance is None else f"\t{s.distance}")


def cmd_sample(args: argparse.Namespace) -> int:
    """Print (or write) the items; a budget that ran out is a warning if some were found. On
    stderr: the seed drawn (without --seed) and how many items are in the training file."""
    output = files.check_output(args.output, force=args.force) if args.output else None
    seed = secrets.randbelow(900_000) + 100_000 if args.seed is None else args.seed  # six digits: easy to type
    config = api.SampleConfig(**{**given_of(args, api.SampleConfig), "seed": seed})
    run = api.load_run(args.run, args.which)
    typed = (config.prefix, config.suffix, *config.contains, *config.not_contains, config.exclude_chars)
    _fold_note(run, (*typed, config.similar_to, config.regex))
    known = _known_items(run, args.scores) if args.scores or not config.new_only else None  # --new-only: none
    items, lines = [], []
    try:
        for item, line in _sampled(run, config, known, args.scores):
            if output is None:  # streamed: a long run shows what it has
                sys.stdout.write(line + "\n")
            items.append(item)
            lines.append(line)
    except api.BudgetExhausted as exc:
        if not exc.stats.found:
            raise
        print(f"makemore: warning: {render(exc, args.parser)}", file=sys.stderr)
    finally:  # also when sampling gives up or is interrupted: keep what was made
        if output is not None and lines:
            files.atomic_write_text(output, "".join(line + "\n" for line in lines))
    if output is not None and not lines:
        files.atomic_write_text(output, "")
    if args.seed is None:
        launch.note(f"makemore: seed {seed} (repeat with --seed {seed})")
    count = int(known.contains(items).sum()) if known is not None and items and not args.scores else 0
    if count:
        launch.note(f"makemore: {count} of {len(items)} are items of the training file (--new-only leaves them out)")
    return 0


def _fold_note(run: api.Run, texts) -> None:
    """Say once on stderr that a case-folded run reads what was typed in lower case."""
    if run.casefolded and any(text != run.fold(text) for text in texts if text):
        launch.note("makemore: this run was trained on lower-case items: it reads what you typed in lower case")


def _read_stdin_items() -> list[str]:
    raw = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode("utf-8")
    return api.parse_words(raw, source="standard input", max_len=len(raw) + 1) if raw.strip() else []


def _score_file(args: argparse.Namespace) -> int:
    """``score RUN --input FILE``: one ITEM<TAB>NLL line per item; what was skipped on stderr."""
    if args.words:
        raise MakemoreError("score: give the items as arguments or --input FILE, not both")
    if args.detail:
        raise MakemoreError("--detail shows items given as arguments; it does not go with --input")
    if args.label is not None:
        raise MakemoreError("--label does not go with --input: a labelled file gives each item's label")
    run = api.load_run(args.run, args.which)
    if args.classify:  # a plain list: one item per line
        _check_labelled(run)
        _print_classes(api.classify(run, api.read_words(args.input)))
        return 0
    result = api.evaluate_file(run, args.input, per_item=True)
    sys.stdout.writelines(f"{item}\t{nll:.4f}\n" for item, nll in result.scores)
    if result.note:
        print(f"makemore: {args.input}: {result.note}", file=sys.stderr)
    return 0


def _check_labelled(run: api.Run) -> None:
    """``--classify`` needs labels (the error names the flag typed, not --label)."""
    if not run.vocab.label_names:
        raise MakemoreError("--classify: this model was trained without labels (train with --labelled)")


def _print_classes(classes: list[api.Classification]) -> None:
    for c in classes:
        print("\t".join([c.word, *(f"{label} {p:.4f}" for label, p in c.posteriors)]))


def cmd_score(args: argparse.Namespace) -> int:
    if args.input is not None:
        return _score_file(args)
    words = list(args.words)
    if words == ["-"]:
        words = _read_stdin_items()
    if not words:
        raise MakemoreError("score: give at least one word (or - to read them from standard input)")
    run = api.load_run(args.run, args.which)
    _fold_note(run, words)
    if args.classify:
        _check_labelled(run)
        if args.detail or args.label is not None:
            raise MakemoreError(
                "--classify gives P(label | item) for every label; it goes without --detail and --label"
            )
        _print_classes(api.classify(run, words))
        return 0
    shown = dict(zip(run.vocab.labels(), run.vocab.display_labels()))  # a space is shown as '␣'
    for result in api.score(run, words, label=args.label):
        print(f"{result.word}\t{result.nll:.4f}")
        if args.detail:  # the context right-aligned, so that each predicted char follows it
            contexts = ["".join(shown[label] for label in c.context) for c in result.chars]
            width = max(7, *map(len, contexts))
            print(f"  {'context':>{width}} {'next':<4} {'prob':>8} {'logprob':>9}")
            for context, c in zip(contexts, result.chars):
                print(f"  {context:>{width}} {shown[c.char]:<4} {c.prob:>8.4f} {c.logprob:>9.4f}")
    return 0


def _print_file_eval(result: api.FileEval) -> None:
    print(f"input      {result.source}")
    print(f"items      {result.items} scored ({result.targets} predictions: their characters and ends)")
    print(f"NLL        {result.nll:.4f}")
    print(f"perplexity {result.perplexity:.4f}")
    print(f"bits/char  {result.bits_per_char:.4f}")
    if result.note:
        print(result.note)


def cmd_eval(args: argparse.Namespace) -> int:
    if args.samples is not None or args.seed is not None:  # generated items measured instead of the splits
        return _eval_samples(args)
    if args.input is not None:
        _print_file_eval(api.evaluate_file(api.load_run(args.run, args.which), args.input))
        return 0
    run = api.load_run(args.run, args.which)
    data = run.description.data
    for split, nll in api.evaluate(run).items():
        source = data.split_source(split)  # your own splits: the split's file, or None without one
        if source is None:
            print(f"{split:<6} none: no {split} file (the run was trained without --{split}-input)")
            continue
        where = f"  {source}" if data.files else ""  # a lecture-split run's lines stay as they were
        print(f"{split:<6} NLL {nll:.4f}{where}" if nll is not None else f"{split:<6} none: the split is empty{where}")
    return 0


def _eval_samples(args: argparse.Namespace) -> int:
    """``eval RUN --samples N [--seed S]``: the quality of N generated items (``api.sample_metrics``)."""
    config = api.EvalConfig(**given_of(args, api.EvalConfig))
    if config.samples is None or args.input is not None:
        raise MakemoreError("eval: --seed goes with --samples N" if config.samples is None else
                            "eval: --samples measures generated items; it does not go with --input")  # fmt: skip
    print(api.sample_metrics(api.load_run(args.run, args.which), config.samples, config.seed).report())
    return 0


def cmd_ladder(args: argparse.Namespace) -> int:
    data = api.DataConfig(**data_given(args))
    config = api.LadderConfig(**given_of(args, api.LadderConfig))
    api.ladder(data, config, args.output, progress=not args.quiet)
    print(f"{args.output}/report.md")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    out = files.check_output(args.output, suffixes=(".png",), force=args.force)
    if args.what == "loss":
        plots.write_png(plots.plot_loss_curves(api.training_curve(args.run), smooth=args.smooth).figure, out)
        print(out)
        return 0
    run = api.load_run(args.run, args.which)
    labels = run.vocab.display_labels()
    if args.what == "bigram":
        plot = plots.plot_bigram_counts(api.bigram_counts(run), labels, max_chars=args.max_chars)
        plots.write_png(plot.figure, out)
        info = plot.info
        if info["shown"] < info["total"]:
            print(
                f"showing the boundary and the {info['shown'] - 1} most frequent of {info['total'] - 1} characters "
                "(--max-chars shows more)",
                file=sys.stderr,
            )
    elif args.what == "embedding":
        plots.write_png(plots.plot_embedding(api.char_embedding(run), labels).figure, out)
    else:  # activations
        stats = api.activation_stats(run, args.batch_size)
        ratios, steps = api.update_ratios(args.run)
        if not ratios:
            print("no update ratios recorded (train with --track-update-ratio 100 to plot them)", file=sys.stderr)
        plot = plots.plot_activations(
            stats, update_ratios=ratios or None, ratio_steps=steps or None, ratios_are_log10=True
        )
        plots.write_png(plot.figure, out)
    print(out)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    config = api.ExportConfig(**given_of(args, api.ExportConfig)).for_output(args.output)
    files.check_output(args.output, force=args.force)
    run = api.load_run(args.run, args.which)
    done = api.export(run, args.output, config, force=args.force)
    cost = "" if done.dev_nll is None else f"; dev NLL {done.dev_nll:.4f}"
    if done.weights_cost is not None and done.weights != "float32":
        cost += f", {done.weights} weights cost {round(done.weights_cost, 4) + 0.0:+.4f}"  # + 0.0: no "-0.0000"
    print(f"wrote {done.path} ({done.format}, {done.size:,} bytes{cost})")
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    out = files.check_output(args.output, suffixes=(".png",), force=args.force)
    lrs, losses = api.lr_find(
        run_config_from_args(args), start=args.start, end=args.end, steps=args.steps, progress=not args.quiet
    )
    suggestion = plots.suggest_lr(lrs, losses)
    plots.write_png(plots.plot_lr_find(lrs, losses, suggestion=suggestion).figure, out)
    print(f"suggested lr {suggestion:.3g}  (plot: {out})")
    return 0


def cmd_gradcheck(args: argparse.Namespace) -> int:
    import torch

    dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
    print(
        api.format_gradcheck(api.gradcheck(dtype=dtype, batch_size=args.batch_size, seed=args.seed, fused=args.fused))
    )
    return 0
