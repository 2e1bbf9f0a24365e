"""Atomic writes: a crash mid-write leaves the previous file or folder whole."""

from __future__ import annotations

import os
import stat

import pytest

from pixelforge.io.atomic import atomic_directory, atomic_open, atomic_write_text


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "result.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_open(target, "wb") as f:
        f.write(b"half of the new")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["result.json"]


def test_written_files_and_folders_get_the_usual_permissions(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "x")
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == 0o666 & ~mask
    with atomic_directory(tmp_path / "ckpt") as d:
        atomic_write_text(d / "state.json", "{}")
    assert stat.S_IMODE(os.stat(tmp_path / "ckpt").st_mode) == 0o777 & ~mask


def test_failed_directory_leaves_nothing_and_existing_target_is_refused(tmp_path):
    with pytest.raises(RuntimeError), atomic_directory(tmp_path / "ckpt") as d:
        atomic_write_text(d / "part", "x")
        raise RuntimeError("crash")
    assert os.listdir(tmp_path) == []
    (tmp_path / "ckpt").mkdir()
    with pytest.raises(FileExistsError), atomic_directory(tmp_path / "ckpt"):
        pass
