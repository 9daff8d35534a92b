"""`makemore train` on a user's list with --preset auto, as a user runs it (a new process)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

import pytest

from makemore import api


@pytest.mark.slow
def test_a_300_line_list_prints_the_choice_and_ends_within_its_minute(tmp_path):
    names = api.read_words(api.builtin_path("names"))
    (tmp_path / "list.txt").write_text("".join(w + "\n" for w in random.Random(3).sample(names, 300)))
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "makemore", "train", "-i", "list.txt", "-o", "run", "--time", "60s", "-q"],
        cwd=tmp_path, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    wall = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr
    assert wall <= 66.0  # the budget + 10%, start-up included
    first = proc.stderr.splitlines()[0]
    choice = json.loads((tmp_path / "run" / "run.json").read_text())["auto"]
    assert first.startswith("auto: ") and first.endswith(f"({choice['reason']})")  # what and why, one line
    assert "240 training items" in choice["reason"] and choice["budget_seconds"] == 60.0
    assert proc.stdout.startswith("train NLL ")
