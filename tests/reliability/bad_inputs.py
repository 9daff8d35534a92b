"""A table of bad inputs for every subcommand, and the check each must pass.

Every case runs ``makemore`` in-process in a fresh copy of a small workspace (a words file, a
trained MLP run, a count-model run, bad files) and must: exit with code 2, print exactly one
line on stderr that starts with ``makemore: error:`` (and matches the case's pattern), no
traceback, nothing on stdout, and leave every file of the workspace as it was (the listing,
each file's type and bytes). Used by ``test_bad_inputs.py`` and ``benchmarks/bench_reliability.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

WORDS = [w + c for w in ("ab", "ba", "abc", "cab", "bca", "acab", "bac", "cc", "aab", "bcb") for c in "abc"]
TINY = "--model mlp --n-embd 4 --n-hidden 8 --batch-size 16 --quiet".split()


@dataclass
class Case:
    """One bad input: ``args`` may use {run}, {ngram} and {ws} (the workspace); ``setup``
    prepares files in the workspace before it is snapshotted; ``stdin`` feeds standard input."""

    name: str
    args: list[str]
    match: str
    setup: Callable[[Path], None] | None = None
    stdin: bytes | None = None


def make_template(root: Path) -> Path:
    """The workspace every case starts from (trained once; copy it per case)."""
    from makemore.cli import main

    root.mkdir(parents=True, exist_ok=True)
    (root / "words.txt").write_text("".join(w + "\n" for w in WORDS), encoding="utf-8")
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        assert (
            main(
                [
                    "train",
                    "-i",
                    str(root / "words.txt"),
                    "-o",
                    str(root / "run"),
                    "--steps",
                    "6",
                    "--eval-interval",
                    "3",
                    "--log-interval",
                    "3",
                    *TINY,
                ]
            )
            == 0
        )
        assert main(["train", "-i", str(root / "words.txt"), "-o", str(root / "ngram"), "--model", "ngram", "-q"]) == 0
    return root


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root``: its kind and, for regular files, mode and a hash of the bytes."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            if stat.S_ISREG(st.st_mode):
                out[str(path.relative_to(root))] = ("file", st.st_mode, hashlib.sha256(path.read_bytes()).hexdigest())
            elif stat.S_ISLNK(st.st_mode):
                out[str(path.relative_to(root))] = ("link", os.readlink(path))
            else:
                out[str(path.relative_to(root))] = (stat.S_IFMT(st.st_mode),)
    return out


def run_case(case: Case, template: Path, workspace: Path) -> tuple[bool, str]:
    """Run one case in a copy of ``template`` at ``workspace``: (passed, what went wrong)."""
    import re

    from makemore.cli import main

    shutil.copytree(template, workspace, symlinks=True)
    if case.setup is not None:
        case.setup(workspace)
    before = snapshot(workspace)
    args = [a.format(run=workspace / "run", ngram=workspace / "ngram", ws=workspace) for a in case.args]
    out, err = io.StringIO(), io.StringIO()
    stdin = io.TextIOWrapper(io.BytesIO(case.stdin or b""), encoding="utf-8")
    old_stdin, old_cwd = sys.stdin, os.getcwd()
    try:
        sys.stdin = stdin
        os.chdir(workspace)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(args)
            except SystemExit as exc:
                code = exc.code
    finally:
        sys.stdin = old_stdin
        os.chdir(old_cwd)
    lines = err.getvalue().splitlines()
    problems = []
    if code != 2:
        problems.append(f"exit {code}")
    if len(lines) != 1 or not lines[0].startswith("makemore"):
        problems.append(f"stderr {err.getvalue()!r}")
    elif not re.search(case.match, lines[0]):
        problems.append(f"message {lines[0]!r} does not match {case.match!r}")
    if "Traceback" in err.getvalue() or out.getvalue():
        problems.append(f"stdout {out.getvalue()[:200]!r}")
    if snapshot(workspace) != before:
        problems.append("the workspace changed")
    return not problems, "; ".join(problems)


# -- setups -----------------------------------------------------------------------------------


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda ws: (ws / name).write_bytes(data)


def _fifo(name: str) -> Callable[[Path], None]:
    return lambda ws: os.mkfifo(ws / name)


def _symlink(name: str) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        (ws / "target.txt").write_text("keep me\n")
        os.symlink(ws / "target.txt", ws / name)

    return setup


def _read_only(name: str) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        (ws / name).write_text("keep me\n")
        os.chmod(ws / name, 0o444)

    return setup


def _edit_meta(edit: Callable[[dict], object], which: str = "best") -> Callable[[Path], None]:
    """Rewrite the JSON header of ``run/<which>.safetensors`` (tensors kept) with ``edit(meta)``;
    when ``edit`` returns something other than None, that object is the new header."""

    def setup(ws: Path) -> None:
        from safetensors.torch import load, save

        path = ws / "run" / f"{which}.safetensors"
        raw = path.read_bytes()
        size = int.from_bytes(raw[:8], "little")
        meta = json.loads(json.loads(raw[8 : 8 + size])["__metadata__"]["makemore"])
        result = edit(meta)
        path.write_bytes(save(load(raw), metadata={"makemore": json.dumps(meta if result is None else result)}))

    return setup


def _edit_tensor(name: str, shape: tuple[int, ...] = (), value: float | None = None) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        import torch
        from safetensors.torch import load, save

        path = ws / "run" / "best.safetensors"
        raw = path.read_bytes()
        size = int.from_bytes(raw[:8], "little")
        metadata = json.loads(raw[8 : 8 + size])["__metadata__"]
        tensors = load(raw)
        tensors[name] = torch.zeros(shape) if value is None else torch.full_like(tensors[name], value)
        _sign(tensors, metadata)  # a consistent file: what is refused is the tensor, not its checksum
        path.write_bytes(save(tensors, metadata=metadata))

    return setup


def _sign(tensors: dict, metadata: dict) -> None:
    from makemore.store.checkpoint import CHECKSUM_KEY, tensors_sha256

    meta = json.loads(metadata["makemore"])
    metadata["makemore"] = json.dumps({**meta, CHECKSUM_KEY: tensors_sha256(tensors)})


def _flip_bit(ws: Path) -> None:
    path = ws / "run" / "best.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0x10  # inside the last tensor's data
    path.write_bytes(bytes(raw))


def _copy(source: str, target: str) -> Callable[[Path], None]:
    return lambda ws: (ws / target).write_bytes((ws / source).read_bytes())


def _finished_run_with_own_file(ws: Path) -> None:
    """Point the run at a words file of the workspace, then change that file."""
    _edit_meta(lambda meta: meta["data"].update(input=str(ws / "own.txt")))(ws)
    (ws / "own.txt").write_text("".join(w + "\n" for w in WORDS[:-1]))


def _resume_changes(meta: dict) -> None:
    meta["optimizer"]["param_groups"] = "not a list"


# -- the table (one case a line: not reformatted) --------------------------------------------
# fmt: off


def _train(*extra: str) -> list[str]:
    return ["train", "-i", "words.txt", "-o", "new", "--steps", "3", *TINY, *extra]


_TRAIN_FLAGS = [  # (flag, bad value, ...): the message names the first flag
    ("--steps", "0"),
    ("--steps", "many"),
    ("--lr", "nan"),
    ("--lr", "-1"),
    ("--batch-size", "-1"),
    ("--optimizer", "adam"),
    ("--schedule", "linear"),
    ("--device", "tpu"),
    ("--seed", "-1"),
    ("--momentum", "1"),
    ("--eval-interval", "0"),
    ("--max-item-len", "0"),
    ("--dropout", "1"),
    ("--n-embd", "0"),
    ("--order", "3"),
    ("--model", "nope"),
    ("--preset", "nope"),
    ("--preset", "lecture2", "--model", "bigram"),
    ("--backward", "manual"),
    ("--time", "90x"),
    ("--time", "0"),
    ("--time", "-5s"),
    ("--time", "1m30"),
    ("--time", "inf"),
    ("--batching", "sorted"),
    ("--threads", "-1"),
    ("--threads", "two"),
    ("--ema", "1"),
    ("--backend", "nccl"),
    ("--backend", "mpi"),
    ("--dtype", "fp16"),
    ("--compile",),
    ("--epochs", "2"),  # with --steps: two ways to say how long
    ("--epochs", "x"),
    ("--learning-rate", "0.1"),  # unknown: the message suggests --lr
    ("--n_embd", "8"),
    ("--n-layer", "2"),  # the transformer's: the mlp has --n-layers
]


def _train_cases() -> list[Case]:
    return [
        *(Case(f"train: {' '.join(case)}", _train(*case), case[0]) for case in _TRAIN_FLAGS),
        Case("train: missing input", ["train", "-i", "missing.txt", "-o", "new", *TINY], "missing.txt: no such file"),
        Case("train: auto with a family", ["train", "-i", "words.txt", "-o", "new", "--preset", "auto", "--model",
             "lstm"], "--model lstm conflicts with --preset auto"),
        Case("train: auto, options of no one model", ["train", "-i", "words.txt", "-o", "new", "--order", "3",
             "--lr", "0.1"], "--order and --lr: --preset auto has no model that takes both"),
        Case("train: auto, an option of no family", ["train", "-i", "words.txt", "-o", "new", "--n-layer", "2"],
             "--n-layer: --preset auto's families"),
        Case("train: input is a directory", ["train", "-i", "run", "-o", "new", *TINY], "run: is a directory"),
        Case("train: input is a FIFO", ["train", "-i", "fifo", "-o", "new", *TINY], "fifo: not a regular file",
             _fifo("fifo")),
        Case("train: Latin-1 input", ["train", "-i", "l1.txt", "-o", "new", *TINY], r"l1\.txt:2: invalid UTF-8",
             _write("l1.txt", "emma\nzoé\n".encode("latin-1"))),
        Case("train: NUL byte", ["train", "-i", "nul.txt", "-o", "new", *TINY], r"nul\.txt:2: contains a NUL",
             _write("nul.txt", b"emma\nz\x00e\n")),
        Case("train: blank file", ["train", "-i", "blank.txt", "-o", "new", *TINY], "contains no items",
             _write("blank.txt", b"\n  \n")),
        Case("train: item too long", _train("--max-item-len", "2"), r"words\.txt:\d+: .* more than --max-item-len"),
        Case("train: too few items", ["train", "-i", "few.txt", "-o", "new", *TINY], "too few items",
             _write("few.txt", b"ab\ncd\nef\n")),
        Case("train: unknown built-in corpus", ["train", "-i", "builtin:nope", "-o", "new", *TINY], "'nope'"),
        Case("train: labelled line without a tab", ["train", "-i", "l.tsv", "--labelled", "-o", "new", *TINY],
             r"l\.tsv:2: expected label<TAB>item", _write("l.tsv", b"f\tab\nba\n")),
        Case("train: labelled line without a label", ["train", "-i", "l.tsv", "--labelled", "-o", "new", *TINY],
             r"l\.tsv:1: empty label", _write("l.tsv", b"\tab\n")),
        Case("train: CSV without the item column",
             ["train", "-i", "w.csv", "--item-column", "name", "-o", "new", *TINY], r"--item-column: w\.csv: no column",
             _write("w.csv", b"word,sex\nab,f\n")),
        Case("train: CSV row too short",
             ["train", "-i", "w.csv", "--item-column", "2", "--label-column", "1", "-o", "new", *TINY],
             r"w\.csv:3: 1 fields", _write("w.csv", b"sex,word\nf,ab\nm\n")),
        Case("train: --label-column without --item-column", _train("--label-column", "sex"), "--label-column"),
        Case("train: --dev-input missing", _train("--dev-input", "missing.txt"), "missing.txt: no such file"),
        Case("train: --test-input alone", _train("--test-input", "words.txt"), "--test-input: needs --dev-input"),
        Case("train: --dev-input with --split-seed", _train("--dev-input", "words.txt", "--split-seed", "1"),
             "--split-seed: has no effect"),
        Case("train: --dev-input Latin-1", _train("--dev-input", "l1.txt"), r"l1\.txt:2: invalid UTF-8",
             _write("l1.txt", "emma\nzoé\n".encode("latin-1"))),
        Case("train: --seed 2**64", _train("--seed", str(2**64)), "--seed"),
        Case("train: --steps and --time", _train("--time", "5s"), "--steps and --time"),
        Case("train: --time too short for one step", ["train", "-i", "words.txt", "-o", "new", *TINY, "--time", "0.001"],
             r"--time: 0\.001s is too short"),
        Case("train: resume with --time", ["train", "--resume", "-o", "run", "--time", "5s", "-q"], "--resume"),
        Case("train: wavenet block not a power of two",
             ["train", "-i", "words.txt", "-o", "new", "--model", "wavenet", "--block-size", "6", "-q"], "--block-size"),
        Case("train: heads do not divide the width",
             ["train", "-i", "words.txt", "-o", "new", "--model", "transformer", "--n-embd", "30", "-q"], "--n-head"),
        Case("train: into a run", ["train", "-i", "words.txt", "-o", "run", *TINY], "already holds a run"),
        Case("train: into a file", ["train", "-i", "words.txt", "-o", "words.txt", *TINY], "not a directory"),
        Case("train: resume without a run", ["train", "--resume", "-o", "new", "-q"], "--resume"),
        Case("train: resume with new settings", ["train", "--resume", "-o", "run", "--n-embd", "8", "-q"], "--resume"),
        Case("train: resume a finished run", ["train", "--resume", "-o", "run", "-q"], "already finished"),
        Case("train: resume to fewer steps", ["train", "--resume", "-o", "run", "--steps", "4", "-q"], "--steps"),
        Case("train: resume a diverged run unchanged", ["train", "--resume", "-o", "run", "--steps", "9", "-q"],
             "stopped at step 7", lambda ws: (ws / "run" / "metrics.jsonl").open("a").write(
                 '{"step": 7, "stopped": "loss became nan at step 7"}\n')),
        Case("train: resume with a bad optimizer state", ["train", "--resume", "-o", "run", "--steps", "9", "-q"],
             "optimizer state", _edit_meta(_resume_changes, "last")),
        Case("train: --epochs 0", ["train", "-i", "words.txt", "-o", "new", *TINY, "--epochs", "0"],
             "--epochs: must be a finite number above 0"),
        Case("train: a training option of a count model",
             ["train", "-i", "words.txt", "-o", "new", "--model", "ngram", "--lr", "0.1", "-q"],
             "--lr: does not apply to model 'ngram'"),
        Case("train: the words file as a positional", ["train", "words.txt", "-o", "new", *TINY],
             r"did you mean -i words\.txt"),
        Case("train: resume with --epochs", ["train", "--resume", "-o", "run", "--epochs", "2", "-q"], "--resume"),
        Case("train: argument not UTF-8", ["train", "-i", "w\udcff.txt", "-o", "new"], "not valid UTF-8"),
    ]


_SAMPLE_CONSTRAINTS = [  # (what the message matches, flags...): constraints, budget and ranking
    ("--suffix: character 'z'", "--suffix", "z"),
    ("--contains: character 'z'", "--contains", "a", "--contains", "zb"),
    ("--contains: 'ab' has 'b', one of --exclude-chars", "--contains", "ab", "--exclude-chars", "b"),
    ("--prefix: 'a' has 'a'", "--prefix", "a", "--exclude-chars", "a"),
    ("--contains: 'abc' contains 'bc', which --not-contains", "--contains", "abc", "--not-contains", "bc"),
    ("--not-contains: must be non-empty", "--not-contains", ""),
    ("--suffix: .* more than --max-len 3", "--prefix", "ab", "--suffix", "ca", "--max-len", "3"),
    ("--exclude-chars: excludes every character", "--exclude-chars", "abc", "--min-len", "1"),
    ("--regex: not a valid regular expression", "--regex", "a("),
    ("--max-tries", "--max-tries", "-1"),
    ("--max-tries", "--max-tries", "many"),
    ("--time-limit", "--time-limit", "nan"),
    ("--time-limit", "--time-limit", "-1"),
    ("--max-tries: 0 .*needs a --time-limit", "--suffix", "a", "--max-tries", "0", "--time-limit", "0"),
    ("--pool: must be from --num", "--similar-to", "ab", "--pool", "2"),
    ("--pool: .*give --similar-to", "--pool", "50"),
    ("--similar-to: items never contain a line break", "--similar-to", "a\nb"),
    ("found none of 3 items in 50 draws", "--contains", "cccccccc", "--max-tries", "50", "--seed", "1"),  # a fixed draw
    ("--exclude-chars: excludes every character, so no item can be made", "--exclude-chars", "abc"),
    ("--not-contains: excludes every character", "--not-contains", "a", "--not-contains", "b", "--not-contains", "c"),
    # (braces doubled: the args are formatted)
    (r"--regex: not a valid regular expression \(repeat count too big", "--regex", "a{{4294967296}}"),
    ("--regex: not a valid regular expression", "--regex", "a{{1,99999999999999999999}}"),
    (r"found none of 3 items in 3,064 draws .*stopped early.* --max-tries and --time-limit leave", "--regex", "^q{{5}}",
     "--max-tries", "5000"),
]


def _sample_cases() -> list[Case]:
    s = ["sample", "{run}", "-n", "3"]
    return [
        Case("sample: -n -1", ["sample", "{run}", "-n", "-1"], "--num"),
        Case("sample: -n over the limit", ["sample", "{run}", "-n", "2000000"], "--num: at most 1,000,000"),
        Case("sample: -n not a number", ["sample", "{run}", "-n", "x"], "-n"),
        Case("sample: --threads -1", ["sample", "{run}", "--threads", "-1"], "--threads"),
        Case("score: --threads x", ["score", "{run}", "emma", "--threads", "x"], "--threads"),
        Case("sample: --top-p 0", [*s, "--top-p", "0"], "--top-p"),
        Case("sample: --top-p nan", [*s, "--top-p", "nan"], "--top-p"),
        Case("sample: --temperature -1", [*s, "--temperature", "-1"], "--temperature"),
        Case("sample: --temperature inf", [*s, "--temperature", "inf"], "--temperature"),
        Case("sample: --min-len > --max-len", [*s, "--min-len", "5", "--max-len", "3"], "--min-len"),
        Case("sample: --max-len 0", [*s, "--max-len", "0"], "--max-len: must be an integer at least 1"),
        Case("sample: prefix with an unknown character", [*s, "--prefix", "z"], "--prefix: character 'z'"),
        Case("sample: prefix longer than --max-len", [*s, "--prefix", "abcab", "--max-len", "2"], "--prefix"),
        Case("sample: --batch-size 0", [*s, "--batch-size", "0"], "--batch-size"),
        Case("sample: --top-k -1", [*s, "--top-k", "-1"], "--top-k"),
        Case("sample: --seed 2**64", [*s, "--seed", str(2**64)], "--seed"),
        Case("sample: unknown checkpoint", [*s, "--which", "first"], "--which"),
        Case("sample: no such run", ["sample", "missing", "-n", "3"], "no such run directory"),
        Case("sample: directory without a run", ["sample", "{ws}", "-n", "3"], "no checkpoint"),
        Case("sample: output is a FIFO", [*s, "-o", "fifo"], "not a regular file", _fifo("fifo")),
        Case("sample: output is a symlink", [*s, "-o", "link.txt"], "is a symlink", _symlink("link.txt")),
        Case("sample: output is a directory", [*s, "-o", "run"], "is a directory"),
        Case("sample: output is read-only", [*s, "-o", "ro.txt"], "read-only", _read_only("ro.txt")),
        Case("sample: output in a missing directory", [*s, "-o", "nodir/items.txt"], "nodir"),
        Case("sample: prefix not UTF-8", [*s, "--prefix", "a\udcff"], "not valid UTF-8"),
        *(Case(f"sample: {' '.join(case[1:])}", [*s, *case[1:]], case[0]) for case in _SAMPLE_CONSTRAINTS),
    ]


def _reader_cases() -> list[Case]:
    return [
        Case("score: unknown character", ["score", "{run}", "abc", "xyz"], "'x'"),
        Case("score: empty item", ["score", "{run}", ""], "empty"),
        Case("score: no items", ["score", "{run}"], "at least one word"),
        Case("score: item with a line break", ["score", "{run}", "a\nb"], "line break"),
        Case("score: no such run", ["score", "missing", "abc"], "no such run directory"),
        Case("score: standard input not UTF-8", ["score", "{run}", "-"], "standard input:2: invalid UTF-8",
             stdin=b"abc\n\xff\xfe\n"),
        Case("eval: no such run", ["eval", "missing"], "no such run directory"),
        Case("eval: changed training file", ["eval", "{run}"], "checksum differs", _finished_run_with_own_file),
        Case("eval: --samples 0", ["eval", "{run}", "--samples", "0"], "--samples: must be an integer from 1 to 1000000"),
        Case("eval: --seed without --samples", ["eval", "{run}", "--seed", "3"], "--seed goes with --samples N"),
        Case("eval: --samples, changed training file", ["eval", "{run}", "--samples", "5"], "checksum differs",
             _finished_run_with_own_file),
        Case("eval: --input missing", ["eval", "{run}", "--input", "missing.txt"], "missing.txt: no such file"),
        Case("eval: --input a directory", ["eval", "{run}", "--input", "run"], "run: is a directory"),
        Case("eval: --input a FIFO", ["eval", "{run}", "--input", "fifo"], "fifo: not a regular file", _fifo("fifo")),
        Case("eval: --input Latin-1", ["eval", "{run}", "--input", "l1.txt"], r"l1\.txt:2: invalid UTF-8",
             _write("l1.txt", "abc\nabé\n".encode("latin-1"))),
        Case("eval: --input blank", ["eval", "{run}", "--input", "blank.txt"], "contains no items",
             _write("blank.txt", b"\n \n")),
        Case("eval: --input nothing scorable", ["eval", "{run}", "--input", "xyz.txt"],
             r"xyz\.txt: no item can be scored .*'x', 'y', 'z'", _write("xyz.txt", b"xyz\nzz\n")),
        Case("score: --input nothing scorable", ["score", "{run}", "--input", "xyz.txt"], "no item can be scored",
             _write("xyz.txt", b"xyz\n")),
        Case("score: --input and items", ["score", "{run}", "abc", "--input", "words.txt"], "not both"),
        Case("score: --input with --detail", ["score", "{run}", "--detail", "--input", "words.txt"], "--detail"),
        Case("score: --input NUL byte", ["score", "{run}", "--input", "nul.txt"], r"nul\.txt:1: contains a NUL",
             _write("nul.txt", b"a\x00b\n")),
        Case("plot: .jpg output", ["plot", "bigram", "{run}", "-o", "b.jpg"], "png"),
        Case("plot: output without suffix", ["plot", "bigram", "{run}", "-o", "b"], "png"),
        Case("plot: output in a missing directory", ["plot", "bigram", "{run}", "-o", "nodir/b.png"], "nodir"),
        Case("plot: output is a FIFO", ["plot", "bigram", "{run}", "-o", "f.png"], "not a regular file", _fifo("f.png")),
        Case("plot: --max-chars 0", ["plot", "bigram", "{run}", "-o", "b.png", "--max-chars", "0"], "--max-chars"),
        Case("plot: --batch-size 1", ["plot", "activations", "{run}", "-o", "a.png", "--batch-size", "1"],
             "--batch-size"),
        Case("plot: unknown plot", ["plot", "nothing", "{run}", "-o", "b.png"], "invalid choice"),
        Case("plot: metrics row cut short", ["plot", "loss", "{run}", "-o", "l.png"], r"metrics\.jsonl:\d+:",
             lambda ws: (ws / "run" / "metrics.jsonl").open("a").write('{"step": 99, "train_lo')),
        Case("plot: metrics not UTF-8", ["plot", "loss", "{run}", "-o", "l.png"], r"metrics\.jsonl:\d+:",
             lambda ws: (ws / "run" / "metrics.jsonl").open("ab").write(b'{"step": 9, "lr": "\xff"}\n')),
        Case("plot: odd update-ratio row", ["plot", "activations", "{run}", "-o", "a.png"], r"metrics\.jsonl:\d+:",
             lambda ws: (ws / "run" / "metrics.jsonl").open("a").write('{"step": 9, "update_ratio": [1, 2]}\n')),
        Case("plot: activations of a count model", ["plot", "activations", "{ngram}", "-o", "a.png"], "counting"),
        Case("plot: embedding of a count model", ["plot", "embedding", "{ngram}", "-o", "e.png"], "embedding"),
        Case("plot: loss of a count model", ["plot", "loss", "{ngram}", "-o", "l.png"], "metrics.jsonl"),
        Case("lr-find: --steps 3", ["lr-find", "-i", "words.txt", "--steps", "3", "-o", "x.png"], "--steps"),
        Case("lr-find: --start 0", ["lr-find", "-i", "words.txt", "--start", "0", "-o", "x.png"], "--start"),
        Case("lr-find: --end below --start", ["lr-find", "-i", "words.txt", "--end", "1e-4", "-o", "x.png"], "--end"),
        Case("lr-find: .svg output", ["lr-find", "-i", "words.txt", "-o", "lr.svg"], "png"),
        Case("lr-find: a count model", ["lr-find", "-i", "words.txt", "--model", "ngram", "-o", "x.png"], "counting"),
        Case("gradcheck: --batch-size 1", ["gradcheck", "--batch-size", "1"], "--batch-size"),
        Case("gradcheck: --seed -1", ["gradcheck", "--seed", "-1"], "--seed"),
        Case("serve: no run", ["serve"], "RUN"),
        Case("serve: no such run", ["serve", "missing"], "no such run directory"),
        Case("serve: directory without a run", ["serve", "{ws}"], "no checkpoint"),
        Case("serve: --port 70000", ["serve", "{run}", "--port", "70000"], "--port: must be an integer from 0 to 65535"),
        Case("serve: --port -1", ["serve", "{run}", "--port", "-1"], "--port"),
        Case("serve: --threads -1", ["serve", "{run}", "--threads", "-1"], "--threads"),
        Case("serve: --port not a number", ["serve", "{run}", "--port", "http"], "--port"),
        Case("serve: one good run, one missing", ["serve", "{run}", "missing"], "no such run directory"),
    ]


def _checkpoint_cases() -> list[Case]:
    def sample(setup, match):
        return ["sample", "{run}", "-n", "3"], match, setup

    edits = [
        ("format from the future", _edit_meta(lambda m: m.update(format_version=99)), "newer makemore"),
        ("format not a number", _edit_meta(lambda m: m.update(format_version="1")), "format_version"),
        ("version not a string", _edit_meta(lambda m: m.update(makemore_version=5)), "makemore_version"),
        ("metadata a list", _edit_meta(lambda m: [1, 2]), "not a JSON object"),
        ("no data section", _edit_meta(lambda m: m.pop("data") and None), "data: missing"),
        ("vocabulary unsorted", _edit_meta(lambda m: m["vocab"].update(chars="cba")), "vocab.chars"),
        ("unknown model kind", _edit_meta(lambda m: m["model"].update(kind="nope")), "unknown model 'nope'"),
        ("config field unknown", _edit_meta(lambda m: m["model"]["config"].update(colour=1)), "not written by"),
        ("config out of range", _edit_meta(lambda m: m["model"]["config"].update(n_hidden=0)), "n_hidden"),
        ("huge config", _edit_meta(lambda m: m["model"]["config"].update(n_hidden=10**9)), "do not match"),
        ("train config out of range", _edit_meta(lambda m: m["train"].update(steps=0)), "TrainConfig.steps"),
        ("checksum not hex", _edit_meta(lambda m: m["data"].update(sha256="zz")), "data.sha256"),
        ("step negative", _edit_meta(lambda m: m["state"].update(step=-1)), "state.step"),
        ("a metric not a number", _edit_meta(lambda m: m["metrics"].update(dev_loss="low")), "metrics.dev_loss"),
        ("a weight of the wrong shape", _edit_tensor("model.out.weight", (3, 3)), "do not match"),
        ("an unexpected weight", _edit_tensor("model.extra", (1,)), "unexpected"),
        ("truncated file", lambda ws: (ws / "run" / "best.safetensors").write_bytes(
            (ws / "run" / "best.safetensors").read_bytes()[:-40]), "unreadable checkpoint"),
        ("random bytes", _write("run/best.safetensors", bytes(range(256)) * 8), "not a makemore checkpoint"),
        ("a NaN weight", _edit_tensor("model.out.weight", value=float("nan")), "weight out.weight is not finite"),
        ("an inf weight", _edit_tensor("model.out.bias", value=float("inf")), "weight out.bias is not finite"),
        ("a flipped bit", _flip_bit, "do not match the checksum"),
        ("checksum removed", _edit_meta(lambda m: m.pop("tensors_sha256") and None), "tensors_sha256: missing"),
        ("best of another run", _copy("ngram/best.safetensors", "run/best.safetensors"), "belongs to another run"),
    ]
    cases = [Case(f"checkpoint: {name}", *sample(setup, match)) for name, setup, match in edits]
    return cases + [
        Case("checkpoint: score with a NaN weight", ["score", "{run}", "abca"], "is not finite",
             _edit_tensor("model.out.weight", value=float("nan"))),
        Case("checkpoint: resume the last of another run", ["train", "--resume", "-o", "{run}", "--steps", "99"],
             "belongs to another run", _copy("ngram/last.safetensors", "run/last.safetensors")),
    ]


# fmt: on


def bad_input_cases() -> list[Case]:
    """Every case of the table."""
    return _train_cases() + _sample_cases() + _reader_cases() + _checkpoint_cases()
