"""The lecture notebooks of examples/: stored clean and as scripts/make_notebooks.py writes them,
using only names the API has (default suite), and executing without an error in a kernel of this
Python, writing nothing outside their temporary directory (slow suite: each takes 20-40 s)."""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
from pathlib import Path

import nbformat
import pytest

from makemore import api, plots

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
LECTURES = ["bigram", "mlp", "activations_batchnorm", "manual_backprop", "wavenet", "sequence_models"]


def _generator():
    """``scripts/make_notebooks.py`` as a module (it holds every notebook's cells)."""
    path = ROOT / "scripts" / "make_notebooks.py"
    spec = importlib.util.spec_from_file_location("make_notebooks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=nbformat.NO_CONVERT)


def test_one_notebook_per_lecture():
    assert [p.name for p in NOTEBOOKS] == [f"{i:02d}_{name}.ipynb" for i, name in enumerate(LECTURES, 1)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_clean_and_as_the_generator_writes_it(path):
    nb = _read(path)
    nbformat.validate(nb)
    assert nb.nbformat == 4 and nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: a cell has outputs"
    expected = nbformat.writes(_generator().build(_generator().NOTEBOOKS[path.name]))
    assert path.read_text(encoding="utf-8") == expected + "\n", f"rerun scripts/make_notebooks.py ({path.name})"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_api_and_plots_name_exists(path):
    used: dict[str, set[str]] = {"api": set(), "plots": set()}
    for cell in _read(path).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in used:
                used[node.value.id].add(node.attr)
    assert used["api"], f"{path.name} does not use the API"
    assert not {n for n in used["api"] if not hasattr(api, n)}, "names missing from makemore.api"
    assert not {n for n in used["plots"] if not hasattr(plots, n)}, "names missing from makemore.plots"
    assert {n for n in used["api"] if n not in api.__all__} == set(), "names used but not public"


@pytest.fixture
def kernel_env(tmp_path, monkeypatch):
    """The kernel's environment: Agg plots, and a temporary directory of its own (to see what is left)."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TMPDIR", str(temp))
    work = tmp_path / "work"
    work.mkdir()
    return work, temp


def _execute(nb: nbformat.NotebookNode, cwd: Path) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    return client.execute()


@pytest.mark.slow
def test_the_kernel_is_this_python(kernel_env):
    work, _ = kernel_env
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.prefix)")])
    out = _execute(nb, work).cells[0].outputs
    assert out[0]["text"].strip() == sys.prefix


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_notebook_runs(path, kernel_env):
    work, temp = kernel_env
    before = {p.name: p.read_bytes() for p in path.parent.iterdir()}
    nb = _execute(_read(path), work)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    stderr = [o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("name") == "stderr"]
    assert not stderr, f"{path.name} printed to stderr: {stderr}"
    code = [c for c in nb.cells if c.cell_type == "code"]
    images = [sum("image/png" in o.get("data", {}) for o in c.outputs) for c in code]
    assert all(n >= 1 for c, n in zip(code, images) if "show(plots" in c.source), "a plot was not drawn"
    left = [name for name in os.listdir(temp) if not name.startswith("torchinductor_")]  # torch's own cache
    assert os.listdir(work) == [] and left == [], "the notebook left files behind"
    assert {p.name: p.read_bytes() for p in path.parent.iterdir()} == before, "examples/ changed"
