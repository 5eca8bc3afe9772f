"""Autosave of label edits and restoring them after a crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from ctviewer.data.labels import Label, LabelMap, LabelTable
from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.workflows import recovery as rec_module
from ctviewer.workflows.recovery import (
    MANIFEST,
    Autosaver,
    LabelRecovery,
    find_recoveries,
    image_key,
    recovery_root,
    restore,
)

REPO = Path(__file__).resolve().parents[2]


def make_image(tmp_path, shape=(40, 12, 10), name="scan.nii.gz", photo=False) -> Volume:
    if photo:
        return Volume(np.zeros(shape + (3,), np.uint8), modality="XC", name=name, source=str(tmp_path / name))
    return Volume(np.zeros(shape, np.int16), spacing=(2.0, 0.7, 0.7), origin=(-10.0, 5.0, 30.0),
                  modality="CT", name=name, source=str(tmp_path / name))


def make_labels(image: Volume, dtype=np.uint8) -> LabelMap:
    table = LabelTable([Label(1, "liver", (200, 10, 10)), Label(300 if dtype == np.uint16 else 2, "spleen",
                                                                  (10, 200, 10), visible=False, opacity=0.4)])
    return LabelMap(image.with_array(np.zeros(image.shape, dtype)), table)


def paint(labels: LabelMap, recovery: LabelRecovery, z: int, value: int) -> None:
    box = (slice(z, z + 1), slice(2, 6), slice(3, 7))
    labels.array[box] = value
    recovery.note_edit(box)


def save(recovery: LabelRecovery, labels: LabelMap):
    snapshot = recovery.snapshot(labels)
    LabelRecovery.write(snapshot)
    return snapshot


# -- snapshots ---------------------------------------------------------------------------------
def test_snapshot_copies_only_the_chunks_that_changed(tmp_path):
    image = make_image(tmp_path)
    labels = make_labels(image)
    recovery = LabelRecovery(image, "labels", root=tmp_path / "rec")
    assert not recovery.dirty
    paint(labels, recovery, 17, 1)  # chunk 1 (slices 16..31)
    assert recovery.dirty
    snap = recovery.snapshot(labels)
    assert sorted(snap.chunks) == [1] and not recovery.dirty
    assert snap.nbytes == 16 * 12 * 10
    labels.array[17, 0, 0] = 2  # a copy: later edits do not leak into the snapshot
    assert snap.chunks[1][1, 0, 0] == 0
    recovery.note_edit((slice(15, 33), slice(None), slice(None)))
    assert sorted(recovery.snapshot(labels).chunks) == [0, 1, 2]
    recovery.note_edit(None)
    assert sorted(recovery.snapshot(labels).chunks) == [0, 1, 2]
    assert recovery.snapshot(labels).chunks == {}


# -- round trips -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("photo", [False, True])
def test_write_find_restore_gives_back_the_edited_map(tmp_path, dtype, photo):
    shape = (1, 30, 40) if photo else (40, 12, 10)
    image = make_image(tmp_path, shape, "ts.png" if photo else "scan.nii.gz", photo=photo)
    labels = make_labels(image, dtype)
    recovery = LabelRecovery(image, "my labels", root=tmp_path / "rec")
    top = 300 if dtype == np.uint16 else 2
    for z, value in ((0, 1), (shape[0] - 1, top)):
        paint(labels, recovery, z, value)
        save(recovery, labels)
    labels.array[0, 10:20, 1:3] = top  # a second save adds to the first
    recovery.note_edit((slice(0, 1), slice(10, 20), slice(1, 3)))
    save(recovery, labels)

    entries = find_recoveries(image, root=tmp_path / "rec")
    assert [e.layer_name for e in entries] == ["my labels"]
    assert entries[0].base_path is None and entries[0].messages == [] and entries[0].edit_count == 3
    restored = restore(entries[0], image)
    assert restored.array.dtype == dtype
    np.testing.assert_array_equal(restored.array, labels.array)
    assert restored.volume.same_grid(image)
    assert [(lab.id, lab.name, lab.colour, lab.visible, lab.opacity) for lab in restored.table] == \
        [(lab.id, lab.name, lab.colour, lab.visible, lab.opacity) for lab in labels.table]


def test_the_manifest_says_what_was_saved(tmp_path):
    image = make_image(tmp_path)
    labels = make_labels(image)
    recovery = LabelRecovery(image, "labels", root=tmp_path / "rec")
    paint(labels, recovery, 3, 1)
    path = LabelRecovery.write(recovery.snapshot(labels))
    m = json.loads(path.read_text())
    assert m["image_source"] == image.source and m["shape"] == [40, 12, 10] and m["dtype"] == "uint8"
    assert m["spacing"] == [2.0, 0.7, 0.7] and m["layer_name"] == "labels" and m["edit_count"] == 1
    assert m["table"][0] == {"id": 1, "name": "liver", "colour": [200, 10, 10], "visible": True,
                             "locked": False, "opacity": 1.0}
    assert m["saved_at"] and [i for i, _ in m["chunks"]] == [0]


def test_chunks_overlay_the_label_file_the_layer_came_from(tmp_path):
    from ctviewer.io.writers import write_label_map

    image = make_image(tmp_path)
    base = make_labels(image)
    base.array[:] = 1
    base_path = write_label_map(base, tmp_path / "liver.nii.gz")
    labels = make_labels(image)
    labels.array[:] = 1
    recovery = LabelRecovery(image, "liver", base_path=str(base_path), root=tmp_path / "rec")
    paint(labels, recovery, 35, 2)
    save(recovery, labels)
    assert sorted(p.name for p in recovery.folder.glob("*.npy")) == ["c00002-g000001.npy"]

    entry = find_recoveries(image, root=tmp_path / "rec")[0]
    assert not entry.base_changed
    np.testing.assert_array_equal(restore(entry, image).array, labels.array)

    before = base_path.stat().st_mtime_ns
    base.array[:] = 2  # someone saved over the label file after the autosave
    write_label_map(base, base_path)
    os.utime(base_path, ns=(before + 10**9, before + 10**9))  # whatever the clock's resolution
    entry = find_recoveries(image, root=tmp_path / "rec")[0]
    assert entry.base_changed and "changed after the autosave" in entry.messages[0]
    restored = restore(entry, image)
    assert "changed after the autosave" in restored.warnings[0]
    np.testing.assert_array_equal(restored.array[32:], labels.array[32:])
    assert np.all(restored.array[:32] == 2)

    base_path.unlink()
    entry = find_recoveries(image, root=tmp_path / "rec")[0]
    assert "is gone" in entry.messages[0]
    restored = restore(entry, image)
    np.testing.assert_array_equal(restored.array[32:], labels.array[32:])
    assert np.all(restored.array[:32] == 0)


def test_a_crash_between_chunks_and_manifest_restores_the_last_complete_autosave(tmp_path, monkeypatch):
    image = make_image(tmp_path)
    labels = make_labels(image)
    recovery = LabelRecovery(image, "labels", root=tmp_path / "rec")
    paint(labels, recovery, 5, 1)
    save(recovery, labels)
    first = labels.array.copy()

    paint(labels, recovery, 5, 2)  # the same chunk again, and another one
    paint(labels, recovery, 20, 2)

    def die(*args, **kwargs):
        raise OSError("killed before the manifest")

    monkeypatch.setattr(rec_module, "atomic_write_text", die)
    with pytest.raises(OSError):
        save(recovery, labels)
    assert len(list(recovery.folder.glob("c*.npy"))) == 3  # new chunks on disk, manifest old
    np.testing.assert_array_equal(restore(find_recoveries(image, root=tmp_path / "rec")[0], image).array, first)

    monkeypatch.undo()  # the failed chunks are saved again by the next autosave
    assert recovery.dirty
    save(recovery, labels)
    np.testing.assert_array_equal(restore(find_recoveries(image, root=tmp_path / "rec")[0], image).array,
                                  labels.array)
    assert len(list(recovery.folder.glob("c*.npy"))) == 2  # unused chunk files are cleared


def test_an_older_snapshot_written_late_does_not_replace_a_newer_one(tmp_path):
    image = make_image(tmp_path)
    labels = make_labels(image)
    recovery = LabelRecovery(image, "labels", root=tmp_path / "rec")
    paint(labels, recovery, 1, 1)
    older = recovery.snapshot(labels)
    paint(labels, recovery, 1, 2)
    newer = recovery.snapshot(labels)
    LabelRecovery.write(newer)
    LabelRecovery.write(older)
    np.testing.assert_array_equal(restore(find_recoveries(image, root=tmp_path / "rec")[0], image).array,
                                  labels.array)


def test_discard_removes_the_autosave_and_later_edits_start_over(tmp_path):
    image = make_image(tmp_path)
    labels = make_labels(image)
    root = tmp_path / "rec"
    recovery = LabelRecovery(image, "labels", root=root)
    paint(labels, recovery, 1, 1)
    save(recovery, labels)
    paint(labels, recovery, 30, 1)
    in_flight = recovery.snapshot(labels)
    recovery.discard(saved_to=tmp_path / "labels.nii.gz")
    assert not recovery.folder.exists() and not (root / recovery.key).exists()
    assert find_recoveries(image, root=root) == []
    LabelRecovery.write(in_flight)  # a write still in flight at the save must not bring it back
    assert find_recoveries(image, root=root) == []
    paint(labels, recovery, 20, 2)
    save(recovery, labels)
    entry = find_recoveries(image, root=root)[0]
    assert entry.base_path == str((tmp_path / "labels.nii.gz").resolve()) and sorted(entry.chunks) == [1]


def test_a_snapshot_never_written_is_repaired_by_the_next_autosaves(tmp_path):
    image = make_image(tmp_path)
    labels = make_labels(image)
    recovery = LabelRecovery(image, "labels", root=tmp_path / "rec")
    paint(labels, recovery, 1, 1)
    recovery.snapshot(labels)  # taken, then lost (say the worker was stopped)
    paint(labels, recovery, 30, 2)
    with pytest.raises(OSError, match="missing"):
        save(recovery, labels)
    assert recovery.dirty  # chunk 0 is copied again from the live map
    save(recovery, labels)
    np.testing.assert_array_equal(restore(find_recoveries(image, root=tmp_path / "rec")[0], image).array,
                                  labels.array)


def test_find_ignores_other_images(tmp_path):
    root = tmp_path / "rec"
    image = make_image(tmp_path)
    labels = make_labels(image)
    recovery = LabelRecovery(image, "labels", root=root)
    paint(labels, recovery, 1, 1)
    save(recovery, labels)
    assert len(find_recoveries(make_image(tmp_path), root=root)) == 1  # reopened: the same image
    assert find_recoveries(make_image(tmp_path, name="other.nii.gz"), root=root) == []
    assert find_recoveries(make_image(tmp_path, shape=(41, 12, 10)), root=root) == []
    series = make_image(tmp_path)
    series.meta["series_uid"] = "1.2.3"
    assert find_recoveries(series, root=root) == []
    assert image_key(Volume(np.zeros((2, 2, 2)), name="a")) != image_key(Volume(np.zeros((2, 2, 2)), name="b"))


def test_restore_refuses_another_grid(tmp_path):
    image = make_image(tmp_path)
    labels = make_labels(image)
    recovery = LabelRecovery(image, "labels", root=tmp_path / "rec")
    paint(labels, recovery, 1, 1)
    save(recovery, labels)
    entry = find_recoveries(image, root=tmp_path / "rec")[0]
    moved = image.with_array(image.array, spacing=(3.0, 0.7, 0.7))
    with pytest.raises(InputError, match="another position or spacing"):
        restore(entry, moved)
    with pytest.raises(InputError, match="refusing to restore"):
        restore(entry, make_image(tmp_path, shape=(40, 12, 11)))


def test_resume_keeps_restored_chunks_in_later_autosaves(tmp_path):
    root = tmp_path / "rec"
    image = make_image(tmp_path)
    labels = make_labels(image)
    recovery = LabelRecovery(image, "labels", root=root)
    paint(labels, recovery, 1, 1)
    save(recovery, labels)
    # next session: restore, go on editing elsewhere, crash again
    entry = find_recoveries(image, root=root)[0]
    restored = restore(entry, image)
    again = LabelRecovery(image, "labels", root=root)
    again.resume(entry)
    paint(restored, again, 35, 2)
    save(again, restored)
    final = restore(find_recoveries(image, root=root)[0], image)
    assert final.array[1, 3, 4] == 1 and final.array[35, 3, 4] == 2


def test_recovery_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CTVIEWER_RECOVERY_DIR", str(tmp_path))
    assert recovery_root() == tmp_path
    monkeypatch.delenv("CTVIEWER_RECOVERY_DIR")
    assert recovery_root().name == "recovery" and "ctviewer" in str(recovery_root())


# -- rate limit --------------------------------------------------------------------------------
def test_autosaver_is_due_an_interval_after_the_first_unsaved_edit():
    now = [100.0]
    saver = Autosaver(30.0, clock=lambda: now[0])
    assert not saver.pending and not saver.due()
    saver.note_edit()
    now[0] += 20
    saver.note_edit()  # later edits do not push the save back
    assert saver.pending and not saver.due()
    now[0] += 10
    assert saver.due()
    saver.saved()
    assert not saver.pending and not saver.due()
    now[0] += 100
    assert not saver.due()
    saver.note_edit()
    now[0] += 29.9
    assert not saver.due()


# -- a real crash ------------------------------------------------------------------------------
CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np
    from ctviewer.data.labels import LabelMap
    from ctviewer.data.volume import Volume
    from ctviewer.io.atomic import atomic_path
    from ctviewer.workflows.recovery import LabelRecovery

    out = Path(sys.argv[1])
    image = Volume(np.zeros((64, 96, 96), np.int16), spacing=(2, .5, .5), source=str(out / "scan.nii.gz"))
    labels = LabelMap(image.with_array(np.zeros(image.shape, np.uint16)))
    recovery = LabelRecovery(image, "labels", root=out / "rec")
    rng = np.random.default_rng(0)
    last, told = time.monotonic(), False
    while True:
        z, y, x = (int(v) for v in rng.integers(0, 60, 3))
        box = (slice(z, z + 3), slice(y, y + 30), slice(x, x + 30))
        labels.array[box] = int(rng.integers(1, 400))
        recovery.note_edit(box)
        time.sleep(0.002)
        if time.monotonic() - last >= 0.2:
            snapshot = recovery.snapshot(labels)
            # what a restore must give if this write completes; saved before the write starts
            with atomic_path(out / f"expected-{snapshot.generation}.npy") as tmp, open(tmp, "wb") as fh:
                np.save(fh, labels.array)
            LabelRecovery.write(snapshot)
            (out / f"expected-{snapshot.generation - 3}.npy").unlink(missing_ok=True)
            last = time.monotonic()
            if not told:
                print("saved", flush=True)
                told = True
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
@pytest.mark.parametrize("delay", [0.35, 0.8])
def test_sigkill_while_editing_leaves_a_complete_autosave(tmp_path, delay):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.strip() == "saved", child.stderr.read()
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    image = Volume(np.zeros((64, 96, 96), np.int16), spacing=(2, .5, .5), source=str(tmp_path / "scan.nii.gz"))
    entries = find_recoveries(image, root=tmp_path / "rec")
    assert len(entries) == 1
    expected = np.load(tmp_path / f"expected-{entries[0].generation}.npy")
    assert entries[0].generation >= 2 and expected.any()
    np.testing.assert_array_equal(restore(entries[0], image).array, expected)
    assert (tmp_path / "rec" / image_key(image) / entries[0].folder.name / MANIFEST).is_file()


# -- the image is never the labels' file -------------------------------------------------------
@pytest.mark.parametrize("relative", ["thin_sections/images/2.png", "microct/snow.tif", "ct/abdomen_slab_ct.nii.gz"],
                         ids=["photo", "uint16 cube", "ct"])
def test_restoring_never_reads_image_values_as_labels(tmp_path, shared_data, relative):
    """An autosave whose manifest names the image as the labels' file (earlier versions wrote that
    for every layer made from the image) restores the strokes on zeros, never on the image's values."""
    import shutil

    from ctviewer.io.registry import read_volume

    path = Path(shutil.copy2(shared_data / relative, tmp_path / Path(relative).name))
    image = read_volume(path)
    labels = LabelMap(image.with_array(np.zeros(image.shape, np.uint8)), LabelTable([Label(1, "pore", (0, 0, 255))]))
    assert labels.volume.source == ""   # a layer made from the image has no file of its own
    recovery = LabelRecovery(image, "labels", base_path=str(path), root=tmp_path / "rec")
    assert recovery.base_path is None
    paint(labels, recovery, 0, 1)
    snapshot = save(recovery, labels)
    manifest = snapshot.folder / MANIFEST
    written = json.loads(manifest.read_text())
    assert written["base_path"] is None
    manifest.write_text(json.dumps(dict(written, base_path=str(path))))   # the manifest of an earlier version

    (entry,) = find_recoveries(image, root=tmp_path / "rec")
    assert entry.base_path is None and rec_module.IMAGE_AS_BASE in entry.messages
    restored = restore(entry, image)
    np.testing.assert_array_equal(restored.array, labels.array)
    assert set(np.unique(restored.array)) == {0, 1} and restored.volume.source == ""


def test_leftovers_of_a_killed_autosave_go_at_start(tmp_path):
    from ctviewer.workflows.recovery import remove_leftover_files

    image = make_image(tmp_path)
    labels = make_labels(image)
    recovery = LabelRecovery(image, "labels", root=tmp_path / "rec")
    paint(labels, recovery, 3, 1)
    save(recovery, labels)
    leftover = recovery.folder / ".c00000-g000002.npy.k9x2ab_q.part.npy"   # as atomic_path names them
    leftover.write_bytes(b"half")
    old = time.time() - 60
    os.utime(leftover, (old, old))
    remove_leftover_files(tmp_path / "rec")
    assert not leftover.exists()
    assert sorted(p.name for p in recovery.folder.iterdir()) == ["c00000-g000001.npy", MANIFEST]
    remove_leftover_files(tmp_path / "nowhere")   # no recovery folder yet: nothing to do, no error
