"""``makemore studio``: bad options leave nothing behind; the command serves its workspace until Ctrl-C."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from conftest import assert_bad_input


def test_a_port_in_use_creates_no_workspace(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        workspace = tmp_path / "ws"
        assert_bad_input(
            capsys, ["studio", "--workspace", workspace, "--port", port], tmp_path, match=f"--port: {port} is in use"
        )
    assert not workspace.exists()


def test_bad_options_are_one_line(tmp_path, capsys):
    assert_bad_input(capsys, ["studio", "--workspace", tmp_path / "ws", "--port", "70000"], tmp_path, match="--port")
    (tmp_path / "file").write_text("x")
    assert_bad_input(
        capsys, ["studio", "--workspace", tmp_path / "file", "--port", "0"], tmp_path, match="not a folder"
    )


@pytest.mark.slow
def test_the_studio_serves_its_workspace_until_ctrl_c(tmp_path):
    workspace = tmp_path / "ws"
    cmd = [sys.executable, "-m", "makemore", "studio", "--workspace", str(workspace), "--port", "0", "-q"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        url = re.fullmatch(rf"studio of {re.escape(str(workspace))} at (http://127\.0\.0\.1:\d+/)\n", line)
        assert url, line
        with urllib.request.urlopen(url[1] + "api/studio/state", timeout=30) as answer:
            state = json.load(answer)
        assert state["workspace"] == str(workspace.resolve()) and state["runs"] == [] and not state["token_required"]
        with urllib.request.urlopen(url[1], timeout=30) as page:
            assert b"studio.js" in page.read()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "makemore: studio: stopped" in err
    assert (workspace / "studio.json").is_file()
