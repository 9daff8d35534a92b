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
