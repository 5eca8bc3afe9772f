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


# -- a label map and its table: all or nothing -------------------------------------------------
def _labels(value: int, slices: int = 3):
    import numpy as np

    from ctviewer.data.labels import LabelMap, LabelTable
    from ctviewer.data.volume import Volume

    arr = np.zeros((slices, 4, 5), np.uint8)
    arr[slices // 2, 2, 3] = value
    table = LabelTable()
    table.add(value, f"class {value}")
    return LabelMap(Volume(arr, spacing=(2.0, 1.0, 1.0)), table)


def _sha(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["mask.nii.gz", "mask.npy", "mask.png"])
def test_a_table_that_cannot_be_written_leaves_the_old_pair_untouched(tmp_path, name):
    import nibabel as nib
    import numpy as np

    from ctviewer.io.label_files import read_label_map, table_sidecar
    from ctviewer.io.writers import write_label_map

    target = tmp_path / name
    slices = 1 if name.endswith(".png") else 3
    write_label_map(_labels(1, slices), target)
    table = table_sidecar(target)
    before = {p.name: _sha(p) for p in tmp_path.iterdir()}
    # the table's place becomes a folder: its temporary file is written, its rename fails
    table.unlink()
    table.mkdir()
    (table / "keep.txt").write_text("x")
    before.pop(table.name)
    with pytest.raises(InputError, match="labels.json"):
        write_label_map(_labels(7, slices), target)
    after = {p.name: _sha(p) for p in tmp_path.iterdir() if p.is_file()}
    assert after == before, "the label map was replaced although its table was not"
    assert table.is_dir() and (table / "keep.txt").read_text() == "x"
    assert not [p.name for p in tmp_path.iterdir() if ".part" in p.name]
    if name.endswith(".nii.gz"):
        assert np.asarray(nib.load(target).dataobj).max() == 1
    assert read_label_map(target, canonical=False).array.max() == 1


def test_a_failed_first_file_writes_no_table_either(tmp_path):
    from ctviewer.io.label_files import table_sidecar
    from ctviewer.io.writers import write_label_map

    target = tmp_path / "mask.nii.gz"
    target.mkdir()   # the map's own place is taken by a folder
    with pytest.raises(InputError):
        write_label_map(_labels(3), target)
    assert not table_sidecar(target).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.nii.gz"]


def test_a_disk_full_while_writing_keeps_the_old_pair(tmp_path, monkeypatch):
    import errno

    from ctviewer.io import nifti
    from ctviewer.io.label_files import read_label_map, table_sidecar
    from ctviewer.io.writers import write_label_map

    target = tmp_path / "mask.nii.gz"
    write_label_map(_labels(1), target)
    before = {p.name: _sha(p) for p in tmp_path.iterdir()}

    def full(volume, path):
        path.write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(nifti, "write_nifti", full)
    with pytest.raises(InputError, match="No space left"):
        write_label_map(_labels(9), target)
    assert {p.name: _sha(p) for p in tmp_path.iterdir()} == before
    assert read_label_map(target, canonical=False).table.name(1) == "class 1"
    assert table_sidecar(target).is_file()


def test_leftovers_of_a_killed_save_go_at_the_next_save_into_the_folder(tmp_path):
    """A write killed with SIGKILL leaves its hidden temporary file; the next save removes it,
    while the temporary file of a write still running (locked) stays."""
    import subprocess
    import sys
    import time

    from ctviewer.io.atomic import atomic_path, remove_leftovers

    script = ("import sys, time\n"
              "from ctviewer.io.atomic import atomic_path\n"
              "with atomic_path(sys.argv[1]) as tmp:\n"
              "    tmp.write_bytes(b'half')\n"
              "    print('writing', flush=True)\n"
              "    time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "scan_labels.nii.gz")],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
        child.kill()
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    left = [p for p in tmp_path.iterdir() if ".part" in p.name]
    assert len(left) == 1 and left[0].name.startswith(".scan_labels.nii.gz.")
    old = time.time() - 30
    os.utime(left[0], (old, old))   # the kill was a while ago

    atomic_write_text(tmp_path / "picks.csv", "exam_id\n")   # the next save into the folder
    assert not left[0].exists()
    with atomic_path(tmp_path / "other.csv") as running:
        running.write_text("live")
        os.utime(running, (old, old))
        assert remove_leftovers(tmp_path) == []
        assert running.exists(), "the temporary file of a write still running was taken for a leftover"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.csv", "picks.csv"]


def test_a_writer_refusing_names_the_users_file_not_the_temporary_one(tmp_path):
    from ctviewer.io.writers import write_label_map

    with pytest.raises(InputError) as refused:
        write_label_map(_labels(2, slices=3), tmp_path / "mask.png")   # PNG holds one slice
    assert refused.value.path == str(tmp_path / "mask.png") and ".part" not in str(refused.value)
