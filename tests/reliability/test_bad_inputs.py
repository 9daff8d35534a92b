"""Every bad input of the table: exit 2, one line naming the problem, no traceback, nothing changed."""

from __future__ import annotations

import pytest

from reliability.bad_inputs import bad_input_cases, make_template, run_case

CASES = bad_input_cases()


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return make_template(tmp_path_factory.mktemp("bad_inputs") / "template")


def test_the_table_covers_every_subcommand():
    commands = {case.args[0] for case in CASES}
    assert commands == {"train", "sample", "score", "eval", "plot", "lr-find", "gradcheck", "serve"}
    assert len(CASES) >= 60 and len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_one_clean_line(case, template, tmp_path):
    passed, problem = run_case(case, template, tmp_path / "ws")
    assert passed, problem
