"""Atomic saves keep the permissions a user expects of a saved file."""

from __future__ import annotations

import os
import stat

import pytest

from ctviewer.errors import InputError
from ctviewer.io.atomic import atomic_write_text


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_gets_the_umask_mode_not_private_0600(tmp_path):
    old = os.umask(0o022)
    try:
        import importlib

        import ctviewer.io.atomic as atomic

        importlib.reload(atomic)  # the module reads the umask once, at import
        target = tmp_path / "picks.csv"
        atomic.atomic_write_text(target, "exam_id\n")
    finally:
        os.umask(old)
        importlib.reload(atomic)
    assert _mode(target) == 0o644
    assert target.read_text() == "exam_id\n"


def test_replacing_a_file_keeps_its_mode(tmp_path):
    target = tmp_path / "labels.csv"
    target.write_text("old")
    os.chmod(target, 0o640)
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert _mode(target) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["labels.csv"]  # no temporary left behind


def test_a_missing_folder_names_the_folder(tmp_path):
    with pytest.raises(InputError, match="folder does not exist"):
        atomic_write_text(tmp_path / "nowhere" / "picks.csv", "x")
