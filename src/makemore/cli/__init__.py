"""Command-line interface: a thin layer over ``makemore.api``, one function per subcommand
(``commands.py``); the parser and the old spellings in ``parser.py``; config dataclasses as
options, and config fields back as flags, in ``options.py``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from makemore import IMPORTED_AT
from makemore.cli.options import render, run_config_from_args
from makemore.cli.parser import EXAMPLES, REMOVED_IN, build_parser, old_spellings
from makemore.distributed import is_main_process, launched
from makemore.errors import ConfigError, MakemoreError
from makemore.trainer import TrainingInterrupted

__all__ = ["EXAMPLES", "build_parser", "main", "run_config_from_args"]


def _not_utf8(arg: str) -> bool:
    try:
        arg.encode("utf-8")  # undecodable bytes of argv arrive as lone surrogates
    except UnicodeEncodeError:
        return True
    return False


def _apply_threads(args) -> int | None:
    """``--threads`` of the commands that read a run (``train`` has its own, a training setting);
    returns the count there was before, or None."""
    count = getattr(args, "reader_threads", None)
    if count is None:
        return None
    if count < 0:
        raise MakemoreError(f"--threads: must be 0 (auto) or more, got {count}")
    from makemore import threads

    return threads.apply(threads.choose(count))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``makemore`` command; returns its exit code (2 for bad input, 1 for a bug)."""
    process = argv is None  # the program itself (not a call from Python): its start-up counts for --time
    argv = list(sys.argv[1:] if argv is None else argv)
    bad = next((i for i, arg in enumerate(argv) if _not_utf8(arg)), None)
    if bad is not None:
        print(f"makemore: error: argument {bad + 1} ({argv[bad]!r}) is not valid UTF-8", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    args.budget_start = IMPORTED_AT if process else None
    notes = old_spellings(args)
    if notes:
        print(
            f"makemore: warning: old spelling: {'; '.join(notes)} (the old spellings go in makemore {REMOVED_IN})",
            file=sys.stderr,
        )
    previous = None
    try:
        previous = _apply_threads(args)
        return args.func(args)
    except ConfigError as exc:
        print(f"makemore: error: {render(exc, args.parser)}", file=sys.stderr)
        return 2
    except MakemoreError as exc:
        print(f"makemore: error: {exc}", file=sys.stderr)
        return 2
    except TrainingInterrupted as exc:
        again = f"makemore train --resume -o {args.out_dir}"
        if launched():  # one line for the run, from rank 0
            again = f"torchrun ... -m {again} (any number of processes)" if is_main_process() else ""
        if again:
            print(f"makemore: {exc}; last checkpoint saved. Continue with: {again}", file=sys.stderr)
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
    except Exception as exc:  # a bug: one line, unless asked for the traceback
        if args.debug:
            raise
        detail = " ".join(str(exc).split())[:300]
        print(
            f"makemore: error: internal error ({type(exc).__name__}: {detail}); rerun with --debug to see "
            "the traceback, and please report it",
            file=sys.stderr,
        )
        return 1
    finally:
        if previous is not None and not process:  # a call from Python gets its thread count back
            from makemore import threads

            threads.apply(previous)
