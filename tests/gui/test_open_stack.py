"""Opening a scanner's folder of numbered TIFF slices in the app: a volume in three slice views, the
voxel size asked once and kept beside the folder, the slice files untouched."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import tifffile
from PySide6.QtCore import QSettings

from app.main_window import MainWindow

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings)
    win.opener.auto_choose = True
    qtbot.addWidget(win)
    win.show()
    return win


def _digests(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_slice_folder_opens_as_a_volume_in_three_views(window, qtbot, tmp_path):
    rng = np.random.default_rng(5)
    cube = rng.integers(0, 50000, (12, 30, 40)).astype(np.uint16)
    cube[:, :3, :3] = np.arange(12)[:, None, None] * 1000  # each slice's number in its corner
    folder = tmp_path / "core_scan"
    folder.mkdir()
    for n, plane in enumerate(cube, start=1):
        tifffile.imwrite(folder / f"slice_{n}.tif", plane, photometric="minisblack")
    before = _digests(folder)
    asked, steps = [], []
    window.ask_spacing = lambda image: asked.append(image.source) or (0.05, 0.02, 0.02)
    window.opener.progress.connect(lambda fraction, message: steps.append(message))

    with qtbot.waitSignal(window.opener.opened, timeout=20000):
        window.open_paths([folder])
    image = window.study.image
    assert not image.is_photo and image.shape == (12, 30, 40) and image.array.dtype == np.uint16
    np.testing.assert_array_equal(image.array, cube)   # slice_10 after slice_9, not after slice_1
    assert window.viewer.layout_name != "single"
    views = window.viewer.views
    assert all(views[name].isVisible() for name in ("axial", "coronal", "sagittal"))
    assert [views[name].slice_count for name in ("axial", "coronal", "sagittal")] == [12, 30, 40]
    assert any("slice 12 of 12" in m for m in steps)

    # asked once; the answer is the volume's spacing and is kept beside the folder, never inside it
    assert asked == [str(folder)] and image.spacing == (0.05, 0.02, 0.02)
    assert views["axial"]._pixel == (0.02, 0.02)
    assert json.loads((tmp_path / "core_scan.json").read_text())["spacing"] == [0.05, 0.02, 0.02]
    assert _digests(folder) == before

    window.ask_spacing = lambda image: asked.append("again") or None
    with qtbot.waitSignal(window.opener.opened, timeout=20000):
        window.open_paths([folder])
    assert asked == [str(folder)] and window.study.image.spacing == (0.05, 0.02, 0.02)


def test_folder_with_a_gap_says_which_slices_are_missing(window, qtbot, tmp_path):
    folder = tmp_path / "gappy"
    folder.mkdir()
    for n in (1, 2, 3, 5, 6):
        tifffile.imwrite(folder / f"rec_{n:03d}.tif", np.zeros((8, 9), np.uint16), photometric="minisblack")
    window.open_paths([folder])
    qtbot.waitUntil(lambda: "missing" in window.statusBar().currentMessage(), timeout=10000)
    message = window.statusBar().currentMessage()
    assert "gappy" in message and ": 4 (1 slice)" in message
    assert window.study is None
