"""The code stays readable: short modules and functions, unless their docstring says why."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "makemore"
MODULE_LINES, FUNCTION_LINES = 400, 65  # "about 400" and "about 60"
MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_functions_are_short_or_say_why(path):
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    lines = len(source.splitlines())
    assert lines <= MODULE_LINES or "longer than 400 lines" in (ast.get_docstring(tree) or ""), f"{lines} lines"
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            why = "longer than 60 lines" in " ".join((ast.get_docstring(node) or "").split())
            assert length <= FUNCTION_LINES or why, f"{node.name} (line {node.lineno}) is {length} lines long"


def test_the_check_sees_every_module():
    assert len(MODULES) > 20 and PACKAGE / "cli" / "parser.py" in MODULES


# what the command line and the web server may import of the library: the API (a thin layer
# over it), and the torch-free declarations and helpers the parser needs before torch is loaded
THIN_LAYER_IMPORTS = {
    "makemore.__version__",
    "makemore.IMPORTED_AT",
    "makemore.serve",  # the command that serves
    "makemore.studio",  # the command of the studio
    "makemore.studio.config",  # StudioConfig: torch-free, as config.py
    "makemore.api",
    "makemore.auto",  # --preset auto's table: torch-free, as config.py
    "makemore.config",
    "makemore.errors",
    "makemore.files",
    "makemore.generate.config",
    "makemore.ladder",  # LadderConfig: torch-free, as config.py
    "makemore.models",
    "makemore.options",
    "makemore.plots",
    "makemore.train.threads",  # --threads of the commands that read a run, applied before the API loads
}


@pytest.mark.parametrize("layer", ["cli", "serve", "studio"])
def test_the_cli_and_the_server_use_the_api(layer):
    internal = set()
    for path in (PACKAGE / layer).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("makemore")):
                continue
            for alias in node.names:
                names = {node.module, f"{node.module}.{alias.name}"}
                if not names & THIN_LAYER_IMPORTS and not node.module.startswith(f"makemore.{layer}"):
                    internal.add(f"{node.module}.{alias.name} ({path.name})")
    assert internal == set(), "import these through makemore.api"


# what each subpackage may not import: the layers above it
NOT_BELOW = {
    "data": ("makemore.models", "makemore.store", "makemore.generate", "makemore.evaluate", "makemore.train"),
    "models": ("makemore.store", "makemore.generate", "makemore.evaluate", "makemore.train"),
    "store": ("makemore.generate", "makemore.evaluate", "makemore.train"),
    "generate": ("makemore.train",),
    "evaluate": ("makemore.train",),
}


@pytest.mark.parametrize("package", sorted(NOT_BELOW))
def test_lower_layers_do_not_import_higher_ones(package):
    banned = (*NOT_BELOW[package], "makemore.api", "makemore.cli", "makemore.serve")
    found = set()
    for path in (PACKAGE / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(banned):
                found.add(f"{node.module} ({path.name})")
    assert found == set()
