"""makemore export: the format from the suffix, what it prints, and every bad combination a one-line
error with nothing written."""

from __future__ import annotations

import re

import pytest

from conftest import assert_bad_input, run_cli


def test_each_format_from_its_suffix_and_the_weights_cost_printed(capsys, cli_run, tmp_path):
    run_dir, _, _ = cli_run
    for name, fmt, head in (("g.html", "html", b"<!doctype html>"), ("g.mjs", "js", None), ("g.onnx", "onnx", None)):
        pytest.importorskip("onnxscript") if fmt == "onnx" else None
        code, out, err = run_cli(capsys, "export", run_dir, "-o", tmp_path / name, "--weights", "float16")
        assert code == 0, err
        size = (tmp_path / name).stat().st_size
        match = re.fullmatch(
            rf"wrote \S+ \({fmt}, ([\d,]+) bytes; dev NLL \d\.\d{{4}}, float16 weights cost ([+-]\d\.\d{{4}})\)\n", out
        )
        assert match and int(match[1].replace(",", "")) == size, out
        assert abs(float(match[2])) <= 0.001  # float16's cost (issue's aim)
        if head:
            assert (tmp_path / name).read_bytes().lower().startswith(head)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.html", "g.mjs", "g.onnx"]  # no temp files left


@pytest.mark.parametrize(
    "args, match",
    [
        (["-o", "{tmp}/g.txt"], r"--format: cannot tell it from the output's suffix '\.txt'"),
        (["-o", "{tmp}/g.html", "--format", "onnx"], r"--format: onnx does not go in a \.html file"),
        (["-o", "{tmp}/g.html", "--weights", "int4"], r"--weights: unknown weight type 'int4'"),
        (["-o", "{tmp}/g.arpa"], r"arpa: a mlp model is not a count n-gram model"),
        (["-o", "{tmp}/g.arpa", "--weights", "int8"], r"--weights: an ARPA file holds"),
        (["-o", "{tmp}", "--format", "html"], r"is a directory"),
        (["-o", "{tmp}/g.html", "--format", "pdf"], r"--format: invalid choice|unknown format"),
    ],
)
def test_bad_combinations_are_one_line_and_write_nothing(capsys, cli_run, tmp_path, args, match):
    run_dir, _, _ = cli_run
    args = [a.format(tmp=tmp_path) for a in args]
    assert_bad_input(capsys, ["export", run_dir, *args], tmp_path, run_dir, match=match)


def test_the_run_and_the_output_are_required(capsys, tmp_path):
    assert_bad_input(capsys, ["export", "-o", tmp_path / "g.html"], tmp_path, match="RUN is required")
    assert_bad_input(capsys, ["export", tmp_path / "nothing", "-o", tmp_path / "g.html"], tmp_path)
