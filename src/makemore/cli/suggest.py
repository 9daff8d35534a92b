"""Suggestions for a mistyped flag, command or choice: the closest ones this command has.

A flag is compared with ``_`` read as ``-`` and case ignored (``--top_k`` is ``--top-k``),
through the spellings other tools use (``SYNONYMS``: ``--learning-rate`` is ``--lr``), and
by similarity (``difflib``: ``--n-layer`` is close to ``--n-layers``).
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Iterable

# a spelling other tools use -> the names it may mean here (those the command has are suggested)
SYNONYMS: dict[str, tuple[str, ...]] = {
    "learning-rate": ("lr",),
    "learningrate": ("lr",),
    "lrate": ("lr",),
    "num-samples": ("num",),
    "n-samples": ("num",),
    "samples": ("num",),
    "number": ("num",),
    "count": ("num",),
    "iters": ("steps",),
    "iterations": ("steps",),
    "max-steps": ("steps",),
    "max-iters": ("steps",),
    "num-steps": ("steps",),
    "train-steps": ("steps",),
    "epoch": ("epochs",),
    "num-epochs": ("epochs",),
    "n-epochs": ("epochs",),
    "out": ("output",),
    "out-dir": ("output",),
    "output-dir": ("output",),
    "outdir": ("output",),
    "data": ("input",),
    "file": ("input",),
    "input-file": ("input",),
    "words": ("input",),
    "bs": ("batch-size",),
    "batch": ("batch-size",),
    "temp": ("temperature",),
    "wd": ("weight-decay",),
    "layers": ("n-layers", "n-layer"),
    "num-layers": ("n-layers", "n-layer"),
    "heads": ("n-head",),
    "num-heads": ("n-head",),
    "n-heads": ("n-head",),
    "hidden": ("n-hidden",),
    "hidden-size": ("n-hidden",),
    "n-embed": ("n-embd",),
    "embedding-size": ("n-embd",),
    "emb-size": ("n-embd",),
    "context": ("block-size",),
    "context-length": ("block-size",),
    "topk": ("top-k",),
    "topp": ("top-p",),
    "model-type": ("model",),
}
CUTOFF = 0.75  # difflib similarity a suggestion needs


def _normal(name: str) -> str:
    return name.lstrip("-").split("=", 1)[0].lower().replace("_", "-")


def closest(name: str, known: Iterable[str]) -> list[str]:
    """The names of ``known`` that ``name`` most likely means, best first (may be empty).

    Both are compared normalised (``_normal``); ``known`` items are returned as given.
    """
    by_normal: dict[str, str] = {}
    for item in known:
        by_normal.setdefault(_normal(item), item)
    wanted = _normal(name)
    if wanted in by_normal:
        return [by_normal[wanted]]
    found = [by_normal[s] for s in SYNONYMS.get(wanted, ()) if s in by_normal]
    for match in difflib.get_close_matches(wanted, list(by_normal), n=3, cutoff=CUTOFF):
        if by_normal[match] not in found:
            found.append(by_normal[match])
    return found[:3]


def _flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each visible long flag's name -> how it is shown (``-n/--num``)."""
    out = {}
    for action in parser.actions:
        if action.help == argparse.SUPPRESS or not action.option_strings:
            continue
        shown = "/".join(action.option_strings[:2]) if len(action.option_strings[0]) == 2 else None
        for flag in action.option_strings:
            if flag.startswith("--"):
                out[flag] = shown or flag
    return out


def _or(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def unrecognized(extras: list[str], parser: argparse.ArgumentParser, namespace: argparse.Namespace) -> str:
    """argparse's ``unrecognized arguments: ...`` with what each unknown flag may have meant.

    A word that is no flag's value in a command without positional arguments (``train
    words.txt``) is shown as the ``-i`` it likely is.
    """
    flags = _flags(parser)
    hints: list[tuple[str | None, str]] = []  # (what was typed, what it may mean)
    after_flag = False
    for arg in extras:
        if arg.startswith("-") and len(arg) > 1 and not _is_number(arg):
            shown = [flags[name] for name in closest(arg, flags)]
            if shown:
                hints.append((arg, _or(shown)))
            after_flag = "=" not in arg
        elif not after_flag and _stray_positional(parser):
            hints.append((None, _positional_hint(arg, parser, namespace)))
        else:
            after_flag = False
    message = f"unrecognized arguments: {' '.join(extras)}"
    if not hints:
        return message
    if len(hints) == 1:
        return f"{message} (did you mean {hints[0][1]}?)"
    meant = [m if typed is None else f"{m} for {typed}" for typed, m in hints]
    return f"{message} (did you mean {'; '.join(meant)}?)"


def _is_number(arg: str) -> bool:
    return re.fullmatch(r"-\d[\d.e+-]*|-inf|-nan", arg.lower()) is not None


def _stray_positional(parser: argparse.ArgumentParser) -> bool:
    """A command that takes no positional arguments, but ``-i FILE``."""
    options = {s for action in parser.actions for s in action.option_strings}
    return "-i" in options and not any(not a.option_strings for a in parser.actions if a.help != argparse.SUPPRESS)


def _positional_hint(arg: str, parser: argparse.ArgumentParser, namespace: argparse.Namespace) -> str:
    options = {s for action in parser.actions for s in action.option_strings}
    if "-o" in options and getattr(namespace, "out_dir", "") is None:
        return f"-i {arg} (the words file) or -o {arg} (the run directory)"
    return f"-i {arg} (the words file)"


def invalid_choice(message: str) -> str:
    """argparse's ``invalid choice: 'X' (choose from ...)`` with the closest choices first."""
    match = re.search(r"invalid choice: '(.*?)' (\(choose from (.*)\))$", message)
    if not match:
        return message
    names = closest(match.group(1), re.findall(r"'([^']*)'", match.group(3)))
    if not names:
        return message
    hint = _or([f"'{name}'" for name in names])
    return f"{message[: match.start(2)]}(did you mean {hint}? choose from {match.group(3)})"
