"""What a parsed command line means once the old spellings are read: makemore 0.1's ``sample -o RUN``,
``plot ... --out FILE``, ``lr-find --num-steps``, ``gradcheck --batch`` (still taken in this release,
with a one-line notice), the outputs each command requires, and the thread counts of the commands
that read runs."""

from __future__ import annotations

import argparse

from makemore.config import SERVE_THREADS
from makemore.studio.config import STUDIO_THREADS

REMOVED_IN = "0.3"


def _one_output(args: argparse.Namespace, outputs: list[tuple[str, str]], notes: list[str]) -> str | None:
    if any(option == "--out" for option, _ in outputs):
        notes.append("'--out FILE' is now '-o FILE'")
    if len(outputs) > 1:
        args.parser.error("-o/--output: give one output file")
    return outputs[0][1] if outputs else None


def _run_and_output(args: argparse.Namespace, notes: list[str]) -> None:
    """``sample``/``plot``: the run is positional and ``-o`` the output, or (0.1) ``-o RUN``."""
    outputs = args.outputs
    if args.run is None:
        runs = [value for option, value in outputs if option in ("-o", "--out-dir")]
        if runs:
            args.run = runs[-1]
            outputs = [(option, value) for option, value in outputs if option not in ("-o", "--out-dir")]
            notes.append(f"'{args.command} -o RUN' is now '{args.command} RUN'")
            if args.command == "sample" and outputs:
                notes.append("'--output FILE' is now '-o FILE'")
    args.output = _one_output(args, outputs, notes)
    if args.run is None:
        args.parser.error("the run directory RUN is required")
    if args.command == "plot" and args.output is None:
        args.parser.error("-o/--output FILE is required")


def old_spellings(args: argparse.Namespace) -> list[str]:
    """Turn makemore 0.1's spellings into this release's, in ``args``.

    Returns:
        one note per old spelling used ("'X' is now 'Y'"), for a deprecation notice.
    """
    notes: list[str] = []
    command = args.command
    if command == "train":
        if args.old_out_dir is not None:
            args.out_dir = args.out_dir or args.old_out_dir
            notes.append("'train --out-dir RUN' is now 'train -o RUN'")
        if args.out_dir is None:
            args.parser.error("-o/--output RUN is required")
    elif command in ("sample", "plot"):
        _run_and_output(args, notes)
    elif command in ("score", "eval"):
        if args.old_run is not None:
            if command == "eval" and args.run is not None:
                args.parser.error("give the run once: makemore eval RUN")
            args.run = args.old_run
            notes.append(f"'{command} -o RUN' is now '{command} RUN'")
        elif command == "score":
            args.run, args.words = (args.words[0], args.words[1:]) if args.words else (None, [])
        if args.run is None:
            args.parser.error("the run directory RUN is required")
    elif command == "lr-find":
        if args.old_output is not None:
            args.output = args.output or args.old_output
            notes.append("'--out FILE' is now '-o FILE'")
        if args.old_steps is not None:
            args.steps = args.steps if args.steps is not None else args.old_steps
            notes.append("'--num-steps N' is now '--steps N'")
        args.output = args.output or "lr-find.png"
        args.steps = 1000 if args.steps is None else args.steps
    elif command == "ladder":
        if args.output is None:
            args.parser.error("-o/--output DIR is required")
    elif command == "export":
        if args.run is None:
            args.parser.error("the run directory RUN is required")
        if args.output is None:
            args.parser.error("-o/--output FILE is required")
    elif command == "studio":  # requests keep a core while a training child takes the other
        args.reader_threads = STUDIO_THREADS
    elif command == "serve":  # its --threads is ServeConfig's, applied as the readers' are
        args.reader_threads = SERVE_THREADS if args.threads is None else args.threads
    elif command == "gradcheck":
        if args.old_batch is not None:
            args.batch_size = args.batch_size if args.batch_size is not None else args.old_batch
            notes.append("'--batch N' is now '--batch-size N'")
        args.batch_size = 32 if args.batch_size is None else args.batch_size
    return notes
