"""Command-line interface: a thin layer over ``makemore.api``, one function per subcommand
(``commands.py``); the parser and the old spellings in ``parser.py``; config dataclasses as
options, and config fields back as flags, in ``options.py``.

The arguments are parsed before anything imports torch (seconds): ``--help``, ``--version``
and usage errors answer at once, and ``commands`` (the API, torch) is imported only to run
the command. ``tests/test_cli_startup.py`` checks it; ``benchmarks/bench_startup.py`` times it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from makemore import IMPORTED_AT
from makemore.cli import launch
from makemore.cli.options import check_run_options, render, run_config_from_args
from makemore.cli.parser import EXAMPLES, build_parser
from makemore.cli.spellings import REMOVED_IN, old_spellings
from makemore.errors import ConfigError, MakemoreError

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
    from makemore.train import threads

    return threads.apply(threads.choose(count))


def _parsed(argv: list[str], process: bool) -> argparse.Namespace | int:
    """The parsed arguments, with the old spellings noted and what needs no torch checked; or the
    exit code of a refusal (a usage error exits from argparse)."""
    bad = next((i for i, arg in enumerate(argv) if _not_utf8(arg)), None)
    if bad is not None:
        launch.report(f"makemore: error: argument {bad + 1} ({argv[bad]!r}) is not valid UTF-8")
        return 2
    args = build_parser().parse_args(argv)
    args.budget_start = IMPORTED_AT if process else None
    notes = old_spellings(args)
    if notes:
        launch.note(
            f"makemore: warning: old spelling: {'; '.join(notes)} (the old spellings go in makemore {REMOVED_IN})"
        )
    if args.command in ("train", "lr-find") and not getattr(args, "resume", False):
        try:  # what can be refused without torch is refused before it is imported
            check_run_options(args)
        except MakemoreError as exc:
            launch.report(f"makemore: error: {render(exc, args.parser) if isinstance(exc, ConfigError) else exc}")
            return 2
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``makemore`` command; returns its exit code (2 for bad input, 1 for a bug)."""
    process = argv is None  # the program itself (not a call from Python): its start-up counts for --time
    args = _parsed(list(sys.argv[1:] if argv is None else argv), process)
    if isinstance(args, int):
        return args
    from makemore.api import TrainingInterrupted
    from makemore.cli import commands  # the API, and torch: only now

    previous = None
    try:
        previous = _apply_threads(args)
        return getattr(commands, "cmd_" + args.command.replace("-", "_"))(args)
    except ConfigError as exc:
        launch.report(f"makemore: error: {render(exc, args.parser)}")
        return 2
    except MakemoreError as exc:
        launch.report(f"makemore: error: {exc}")
        return 2
    except TrainingInterrupted as exc:
        again = f"makemore train --resume -o {args.out_dir}"
        if launch.launched():  # one line for the run, from rank 0
            again = f"torchrun ... -m {again} (any number of processes)" if launch.is_main() else ""
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
        launch.report(f"makemore: error: {where}{exc.strerror or exc}")
        return 2
    except Exception as exc:  # a bug: one line, unless asked for the traceback
        if args.debug:
            raise
        detail = " ".join(str(exc).split())[:300]
        launch.report(
            f"makemore: error: internal error ({type(exc).__name__}: {detail}); rerun with --debug to see "
            "the traceback, and please report it"
        )
        return 1
    finally:
        if previous is not None and not process:  # a call from Python gets its thread count back
            from makemore.train import threads

            threads.apply(previous)
