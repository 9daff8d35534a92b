"""The argument parser: subcommands, their options and examples (the old spellings: ``spellings.py``).

Commands that read a run take it as a positional argument (``makemore sample RUN``);
``-o/--output`` always names what a command writes. The spellings of makemore 0.1
(``sample -o RUN``, ``plot ... --out FILE``, ``lr-find --num-steps``, ``gradcheck --batch``)
still work in this release, with a one-line notice on stderr (``spellings.old_spellings``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from makemore import options
from makemore.cli import launch, suggest
from makemore.cli.examples import EXAMPLES, TOP_LEVEL_EXAMPLES
from makemore.cli.options import SCHEDULE_FIELDS, add_options, add_run_options
from makemore.config import DataConfig, EvalConfig, ExportConfig, ScoreConfig, ServeConfig
from makemore.generate.config import SampleConfig
from makemore.ladder import LadderConfig
from makemore.options import CLI
from makemore.studio.config import StudioConfig

HIDDEN = argparse.SUPPRESS
INPUT_HELP = (
    "score the items of this file (one per line) instead; items with characters the model never saw "
    "(or longer than it reads) are skipped and reported"
)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the closest flag or choice suggested), exit code 2, and
    one message for all the processes of a torchrun launch (``launch``).

    It keeps the actions it is given (``actions``, and ``flags``: option string -> action), its
    argument groups' included (``group``), so that suggestions and error messages
    read them without argparse's private attributes.
    """

    def __init__(self, *args, **kwargs):
        self.actions: list[argparse.Action] = []
        self.flags: dict[str, argparse.Action] = {}
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs) -> argparse.Action:
        return self.keep(super().add_argument(*args, **kwargs))

    def add_subparsers(self, **kwargs):
        return self.keep(super().add_subparsers(**kwargs))

    def group(self, title: str, description: str | None = None) -> Group:
        """An argument group (``add_argument_group``) whose arguments this parser keeps."""
        return Group(self, self.add_argument_group(title, description))

    def keep(self, action: argparse.Action) -> argparse.Action:
        self.actions.append(action)
        self.flags.update(dict.fromkeys(action.option_strings, action))
        return action

    def error(self, message: str, see: str | None = None):
        message = suggest.invalid_choice(message)
        launch.report(f"{self.prog}: error: {message} (see {see or self.prog} --help)")
        sys.exit(2)

    def parse_args(self, args=None, namespace=None):
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:  # a subcommand's unknown arguments end up here: suggest from its own flags
            command = getattr(namespace, "parser", None) or self
            self.error(suggest.unrecognized(extras, command, namespace), see=command.prog)
        return namespace

    def print_help(self, file=None):
        if launch.is_main():
            super().print_help(file)


class Group:
    """An argument group whose arguments its parser keeps (see ``Parser``)."""

    def __init__(self, parser: Parser, group):
        self.parser, self.group = parser, group

    def add_argument(self, *args, **kwargs) -> argparse.Action:
        return self.parser.keep(self.group.add_argument(*args, **kwargs))


class CommandParser(Parser):
    """A subcommand's parser: options may come between positionals (``score RUN --detail WORD``)."""

    _intermixed = False

    def parse_known_args(self, args=None, namespace=None):
        if self._intermixed:  # parse_known_intermixed_args calls back in here
            return super().parse_known_args(args, namespace)
        self._intermixed = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixed = False


class Spelled(argparse.Action):
    """Records ``(option string, value)`` pairs, so that ``-o`` and ``--output`` can be told apart."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, [*getattr(namespace, self.dest), (option_string, values)])


def _add_run_reader(p: argparse.ArgumentParser, *, positional: bool = True) -> None:
    if positional:
        p.add_argument("run", nargs="?", metavar="RUN", help="run directory (written by makemore train)")
    p.add_argument("--which", choices=["best", "last"], default="best", help="checkpoint to use (default: best)")
    _add_threads(p, READER_THREADS)


READER_THREADS = 0  # sample, score, eval, plot: auto (why: benchmarks/RESULTS.md#threads-beside-a-busy-core)


def _add_threads(p: argparse.ArgumentParser, default: int) -> None:
    shown = "0" if default == 0 else str(default)
    p.add_argument(
        "--threads",
        dest="reader_threads",
        type=int,
        default=default,
        metavar="N",
        help=f"CPU threads for PyTorch; 0 means as many as the cores other processes leave free when the "
        f"command starts (default {shown})",
    )


def _add_train(sub) -> None:
    p = sub("train", "train a model and write its checkpoints into a run directory")
    p.add_argument(
        "-o",
        "--output",
        dest="out_dir",
        metavar="RUN",
        default=None,
        help="run directory to create (or to continue with --resume)",
    )
    p.add_argument("--out-dir", dest="old_out_dir", default=None, help=HIDDEN)
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in -o from its last checkpoint (--steps, --lr and --grad-clip may change)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a run already in -o")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_run_options(p, auto=True)


def _add_sample(sub) -> None:
    p = sub("sample", "generate new items with a trained model", usage="makemore sample RUN [options]")
    _add_run_reader(p)
    p.add_argument(
        "-o",
        "--output",
        dest="outputs",
        action=Spelled,
        default=[],
        metavar="FILE",
        help="write the items to this file (atomically) instead of standard output",
    )
    p.add_argument("--out-dir", dest="outputs", action=Spelled, help=HIDDEN)
    p.add_argument("--force", action="store_true", help="replace a read-only output file, or write through a symlink")
    add_options(p, options.declared(SampleConfig, CLI), helps=SAMPLE_HELP)
    p.add_argument(
        "--scores",
        action="store_true",
        help="print ITEM<TAB>NLL<TAB>new|known (mean NLL per character, as 'score'; whether it is in the "
        "training file; with --similar-to a 4th column, the edit distance)",
    )


SAMPLE_HELP = {
    "seed": "random seed: the same seed gives the same items (default: a new one each time, printed on stderr)"
}


def _add_readers(sub) -> None:
    p = sub(
        "score",
        "score how plausible items are (mean negative log-likelihood per character)",
        usage="makemore score RUN [--detail] [--label L | --classify] WORD [WORD ...]  |  makemore score RUN --input FILE",
    )
    p.add_argument(
        "words",
        nargs="*",
        metavar="RUN WORD",
        help="the run directory, then the items to score (- reads them from standard input)",
    )
    p.add_argument("-o", "--out-dir", dest="old_run", default=None, help=HIDDEN)
    _add_run_reader(p, positional=False)
    p.add_argument("-i", "--input", default=None, metavar="FILE", help=INPUT_HELP + "; one ITEM<TAB>NLL line each")
    add_options(p, options.declared(ScoreConfig, CLI))

    p = sub(
        "eval",
        "print the model's NLL on the train/dev/test splits (with --samples N: the quality of N generated items)",
        usage="makemore eval RUN [options]",
    )
    _add_run_reader(p)
    p.add_argument("-o", "--out-dir", dest="old_run", default=None, help=HIDDEN)
    p.add_argument(
        "-i", "--input", default=None, metavar="FILE", help=INPUT_HELP + "; NLL per character, perplexity, bits/char"
    )
    add_options(p, options.declared(EvalConfig, CLI))

    p = sub("plot", "draw what a run learned as a PNG", usage="makemore plot WHAT RUN -o FILE [options]")
    p.add_argument("what", choices=["bigram", "loss", "embedding", "activations"], help="which plot")
    _add_run_reader(p)
    p.add_argument(
        "-o", "--output", dest="outputs", action=Spelled, default=[], metavar="FILE", help="PNG file to write"
    )
    p.add_argument("--out", "--out-dir", dest="outputs", action=Spelled, help=HIDDEN)
    p.add_argument("--force", action="store_true", help="replace a read-only output file, or write through a symlink")
    p.add_argument("--max-chars", type=int, default=32, help="bigram: show at most this many tokens (default 32)")
    p.add_argument("--smooth", type=int, default=0, help="loss: average train loss over blocks of this many points")
    p.add_argument("--batch-size", type=int, default=512, help="activations: examples in the diagnostic batch")


def _add_export(sub) -> None:
    p = sub(
        "export",
        "write a trained model to one file that generates without makemore: ONNX, an offline HTML page, a JS "
        "module, or ARPA (n-grams)",
        usage="makemore export RUN -o FILE [--format onnx|html|js|arpa] [--weights float32|float16|int8]",
    )
    _add_run_reader(p)
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="the file to write (.onnx, .html, .mjs, .arpa)")
    p.add_argument("--force", action="store_true", help="replace a read-only output file, or write through a symlink")
    add_options(p, options.declared(ExportConfig, CLI))


def _add_tools(sub) -> None:
    p = sub("lr-find", "sweep the learning rate exponentially and suggest one")
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="PNG file to write (default lr-find.png)")
    p.add_argument("--out", dest="old_output", default=None, help=HIDDEN)
    p.add_argument("--force", action="store_true", help="replace a read-only output file, or write through a symlink")
    p.add_argument("--start", type=float, default=1e-3, help="first learning rate (default 1e-3)")
    p.add_argument("--end", type=float, default=1.0, help="last learning rate (default 1)")
    p.add_argument("--steps", type=int, default=None, help="steps of the sweep (default 1000)")
    p.add_argument("--num-steps", dest="old_steps", type=int, default=None, help=HIDDEN)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_run_options(p, exclude_train=SCHEDULE_FIELDS)

    sub("datasets", "list the built-in corpora")
    sub("models", "list model families, their options and the presets")

    p = sub("gradcheck", "compare the hand-written BatchNorm MLP gradients with autograd")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64", help="floating type (default float64)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default 32)")
    p.add_argument("--batch", dest="old_batch", type=int, default=None, help=HIDDEN)
    p.add_argument("--seed", type=int, default=42, help="seed of the random parameters and batch (default 42)")
    p.add_argument("--fused", action="store_true", help="check the fused cross-entropy and BatchNorm backward instead")


def _add_ladder(sub) -> None:
    p = sub(
        "ladder",
        "train every rung of the ladder (n-grams 1-5, bigram, mlp, bn-mlp with the hand-written backward, "
        "wavenet, rnn, gru, lstm, transformer) on one corpus in one time budget, and write a report comparing them",
        usage="makemore ladder [-i FILE] -o DIR [--time 10m] [--rung NAME ...]",
    )
    p.add_argument(
        "-o", "--output", default=None, metavar="DIR",
        help="the ladder's directory: a run directory per rung, ladder.json, report.md and dev-nll.png (a rerun "
        "skips the rungs done and resumes an interrupted one)",
    )  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars (the ladder's lines stay)")
    add_options(p, options.declared(DataConfig, CLI))
    add_options(p.group("ladder options"), options.declared(LadderConfig, CLI))


def _add_studio(sub) -> None:
    p = sub(
        "studio",
        "a local page to bring a list, train on it, generate, keep favourites and export, with no terminal after this",
        usage="makemore studio [--workspace DIR] [--host 127.0.0.1] [--port 8000]",
    )
    add_options(p, options.declared(StudioConfig, CLI))


def _add_serve(sub) -> None:
    p = sub(
        "serve",
        "serve a page (generate, score, explore) and its JSON API for trained runs",
        usage="makemore serve RUN [RUN ...] [--host 127.0.0.1] [--port 8000]",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories to serve (the only ones it reads)")
    add_options(p, options.declared(ServeConfig, CLI))


def build_parser() -> argparse.ArgumentParser:
    from makemore import __version__

    parser = Parser(
        prog="makemore",
        description="Learn from a list of items (one per line) and make more like them.",
        epilog=TOP_LEVEL_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"makemore {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an unexpected error")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=CommandParser, metavar="COMMAND")

    def sub(name: str, help_text: str, **kwargs: Any) -> argparse.ArgumentParser:
        p = subparsers.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EXAMPLES.get(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            **kwargs,
        )
        p.set_defaults(parser=p)
        return p

    _add_train(sub)
    _add_sample(sub)
    _add_readers(sub)
    _add_export(sub)
    _add_ladder(sub)
    _add_tools(sub)
    _add_serve(sub)
    _add_studio(sub)
    return parser
