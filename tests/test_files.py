"""Atomic writes and output-path checks: a failed or interrupted write keeps the old file."""

from __future__ import annotations

import os
import stat

import pytest

from makemore import files
from makemore.errors import ConfigError
from makemore.files import atomic_output, atomic_write_bytes, atomic_write_text, check_output


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    atomic_write_text(path, "old\n")

    def broken_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(files.os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        atomic_write_text(path, "new\n")
    monkeypatch.undo()
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_interrupted_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "out.txt"
    atomic_write_bytes(path, b"old")

    def interrupt(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(path, b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_write_honours_umask(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_bytes(b"x")
    atomic = tmp_path / "atomic.txt"
    atomic_write_bytes(atomic, b"x")
    assert stat.S_IMODE(os.stat(atomic).st_mode) == stat.S_IMODE(os.stat(plain).st_mode)


def test_atomic_output_replaces_only_on_success(tmp_path):
    path = tmp_path / "plot.png"
    path.write_bytes(b"old")
    with atomic_output(path) as tmp:
        assert tmp.parent == tmp_path and tmp != path
        tmp.write_bytes(b"new")
        assert path.read_bytes() == b"old"  # not replaced before the block ends
    assert path.read_bytes() == b"new"
    with pytest.raises(RuntimeError), atomic_output(path) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("renderer failed")
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png"]


def test_check_output(tmp_path):
    assert check_output(tmp_path / "a.png", suffixes=(".png",)) == tmp_path / "a.png"
    (tmp_path / "adir").mkdir()
    for path, suffixes, problem in [
        (tmp_path / "a.jpg", (".png",), "expected a .png file name"),
        (tmp_path / "adir", (), "is a directory"),
        (tmp_path / "missing" / "a.txt", (), "does not exist"),
    ]:
        with pytest.raises(ConfigError, match=problem) as info:
            check_output(path, "output", suffixes=suffixes)
        assert info.value.field == "output" and str(path) in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir"]


def test_outputs_other_than_regular_files_are_refused(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "target").write_text("keep\n")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    (tmp_path / "ro").write_text("keep\n")
    (tmp_path / "ro").chmod(0o444)
    for name, problem in [("fifo", "not a regular file"), ("link", "is a symlink"), ("ro", "is read-only")]:
        with pytest.raises(ConfigError, match=problem):
            check_output(tmp_path / name)
    with pytest.raises(ConfigError, match="not a regular file"):
        check_output(tmp_path / "fifo", force=True)  # never, even forced
    assert check_output(tmp_path / "link", force=True) == (tmp_path / "target").resolve()
    assert check_output(tmp_path / "ro", force=True) == tmp_path / "ro"
    assert (tmp_path / "target").read_text() == (tmp_path / "ro").read_text() == "keep\n"


def test_an_error_names_the_target_not_the_temp_file(tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise OSError(28, "No space left on device", src)

    monkeypatch.setattr(files.os, "replace", broken_replace)
    with pytest.raises(OSError) as info:
        atomic_write_text(tmp_path / "items.txt", "x\n")
    assert info.value.filename == str(tmp_path / "items.txt") and info.value.strerror == "No space left on device"


def test_stale_temp_files_are_removed_and_nothing_else(tmp_path):
    for name in (".last.safetensors.abc.tmp", ".run.json.x.tmp", "keep.tmp", "last.safetensors"):
        (tmp_path / name).write_bytes(b"x")
    removed = files.remove_stale_temp_files(tmp_path)
    assert sorted(p.name for p in removed) == [".last.safetensors.abc.tmp", ".run.json.x.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.tmp", "last.safetensors"]
