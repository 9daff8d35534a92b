"""Start-up: the parser is built, and help, the version and usage errors answered, without torch.

``makemore --help`` took 2.2-2.6 s when torch was imported before the arguments were parsed;
``benchmarks/bench_startup.py`` times it now. Here: what is imported, checked in a fresh
interpreter (``sys.modules``): the parser reads the configs (plain dataclasses), never the models.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

SUBCOMMANDS = ["train", "sample", "score", "eval", "plot", "lr-find", "datasets", "models", "gradcheck", "serve"]
HEAVY = ("torch", "numpy", "makemore.api", "makemore.models.base", "makemore.cli.commands", "makemore.train.training")


def fresh(code: str) -> dict:
    """Run ``code`` in a new interpreter; it sets ``result``; returns it with the heavy modules loaded."""
    script = textwrap.dedent(code) + textwrap.dedent(
        f"""
        import json, sys
        heavy = [m for m in {HEAVY!r} if m in sys.modules]
        print(json.dumps({{"result": result, "heavy": heavy}}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_building_the_parser_imports_no_torch():
    done = fresh(
        """
        import makemore.cli
        parser = makemore.cli.build_parser()
        result = len(parser.actions)
        """
    )
    assert done["heavy"] == [] and done["result"] > 2


def test_the_configs_import_no_torch():
    done = fresh(
        """
        from makemore.config import PRESETS, DataConfig, TrainConfig
        result = [TrainConfig(steps=5).steps, DataConfig().max_item_len, sorted(PRESETS)]
        """
    )
    assert done["heavy"] == []
    assert done["result"] == [5, 256, ["best", "default", "lecture2", "lecture3", "lecture5"]]


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        *([command, "--help"] for command in SUBCOMMANDS),
        ["train", "--epochs", "3", "--learning-rate", "0.01", "-o", "x"],  # unrecognized
        ["train", "--steps", "many"],  # a bad value
        ["sample", "r", "--top_k", "5"],
        ["trian"],  # an unknown command
        ["train", "--model", "lsmt"],  # an unknown choice
        ["train", "-i", "w.txt"],  # -o missing
        ["sample", "-n", "3"],  # RUN missing
        ["score", "r", "\udcff"],  # not UTF-8
        ["train", "-o", "x", "--steps", "0"],  # a training value out of range (TrainConfig)
        ["train", "-o", "x", "--label-column", "name"],  # data options that do not go together (DataConfig)
        ["train", "-o", "x", "--model", "lstm", "--n-layer", "2"],  # another family's option
        ["train", "-o", "x", "--epochs", "2", "--steps", "3"],  # two lengths
        ["lr-find", "--model", "mlp", "--preset", "lecture3"],  # a preset of another family
    ],
    ids=lambda argv: " ".join(argv),
)
def test_help_version_and_usage_errors_import_no_torch(argv):
    done = fresh(
        f"""
        import contextlib, io
        from makemore.cli import main
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main({argv!r})
            except SystemExit as exc:
                code = exc.code
        result = [code, out.getvalue(), err.getvalue()]
        """
    )
    code, out, err = done["result"]
    assert done["heavy"] == [], (argv, done["heavy"])
    if "--help" in argv or "--version" in argv:
        assert (code, err) == (0, "") and out.startswith(("usage: makemore", "makemore 0."))
    else:
        assert code == 2 and out == "" and len(err.splitlines()) == 1 and err.startswith("makemore")


def test_the_registry_and_every_config_import_no_torch():
    """The families' configs and the registry are read without torch; a model class is
    imported when it is asked for."""
    done = fresh(
        """
        import sys
        from makemore.models import REGISTRY, make_config
        from makemore.generate.config import SampleConfig
        from makemore.config import ScoreConfig, ServeConfig
        before = "torch" in sys.modules
        lstm = make_config("lstm", {"n_layers": 3})
        result = [before, lstm.cell, lstm.n_layers, SampleConfig(num=3).num, REGISTRY["lstm"].where]
        """
    )
    assert done["heavy"] == []
    assert done["result"] == [False, "lstm", 3, 3, "rnn.RNNModel"]
    from makemore.models import REGISTRY
    from makemore.models.rnn import RNNModel

    assert REGISTRY["lstm"].model is RNNModel and REGISTRY["gru"].model is RNNModel
