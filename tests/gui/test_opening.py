"""Opening files the ways a user does: command line paths, File menu flow, drag and drop,
recent files; bad files give one line in the status bar and the window keeps working."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent

from app.main_window import MainWindow
from app.views import scene3d
from app.workers import run_worker

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings)   # as the user gets it: the 3D panel included
    win.opener.auto_choose = True
    qtbot.addWidget(win)
    win.show()
    return win


@pytest.fixture
def ct_pair(tmp_path):
    arr = np.zeros((30, 40, 20), np.int16) - 1000   # nibabel (i, j, k) order
    arr[3:25, 5:30, 5:12] = 40                       # off-centre on every axis: a flip would show
    arr[3, 5, 5] = 99                                # one marked corner voxel
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    img_path, lab_path = tmp_path / "ct.nii.gz", tmp_path / "ct_labels.nii.gz"
    nib.save(nib.Nifti1Image(arr, affine), img_path)
    lab = np.zeros(arr.shape, np.uint8)
    lab[10:20, 10:30, 8:12] = 5
    nib.save(nib.Nifti1Image(lab, affine), lab_path)
    return img_path, lab_path


def assert_shows_the_file(volume, path) -> None:
    """The viewer's voxels are the file's (read with nibabel), each at the file's own world position:
    the file's RAS axes are stored as LPS, so i and j run the other way and the slices come first."""
    image = nib.load(path)
    data = np.asarray(image.dataobj)
    nx, ny, _ = data.shape
    np.testing.assert_array_equal(volume.array, data[::-1, ::-1, :].transpose(2, 1, 0))
    for k, j, i in [(0, 0, 0), (volume.shape[0] - 1, 3, 7), (5, volume.shape[1] - 1, volume.shape[2] - 1)]:
        ras = image.affine @ np.array([nx - 1 - i, ny - 1 - j, k, 1.0])
        np.testing.assert_allclose(volume.index_to_lps((k, j, i)), (-ras[0], -ras[1], ras[2]), atol=1e-6)
    assert volume.spacing == tuple(float(z) for z in image.header.get_zooms()[::-1])


def test_open_image_with_label_map(window, qtbot, ct_pair):
    with qtbot.waitSignal(window.opener.opened, timeout=20000):
        window.open_paths(list(ct_pair))
    study = window.study
    assert study.image.shape == (20, 40, 30) and study.image.spacing == (2.0, 1.0, 1.0)
    assert_shows_the_file(study.image, ct_pair[0])
    assert_shows_the_file(study.layers.by_kind("labels")[0].labels.volume, ct_pair[1])
    # the 3D panel draws the label's surface, in the label's colour from the table
    view3d = window.viewer.view3d
    with qtbot.waitSignal(view3d.scene_ready, timeout=20000, check_params_cb=lambda mode: mode == "labels"):
        view3d.set_mode("labels")
    shot = view3d.screenshot().reshape(-1, 3).astype(float)
    drawn = shot[np.abs(shot - 255 * np.asarray(scene3d.BACKGROUND)).max(axis=1) > 30]
    colour = np.asarray(study.layers.by_kind("labels")[0].labels.table[5].colour, float)
    assert len(drawn) > 200
    cosine = drawn.mean(axis=0) @ colour / np.linalg.norm(drawn.mean(axis=0)) / np.linalg.norm(colour)
    assert cosine > 0.98, (drawn.mean(axis=0), colour)
    (layer,) = study.layers.by_kind("labels")
    assert layer.array.shape == study.image.shape
    assert int(layer.array.max()) == 5
    assert "ct" in window.windowTitle()
    assert window.settings.value("recent")[0].endswith("ct.nii.gz")
    assert window.recent_menu.actions()[0].text().endswith("ct.nii.gz")


def test_mismatched_label_map_is_refused_and_app_goes_on(window, qtbot, ct_pair, tmp_path):
    wrong = tmp_path / "wrong.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((5, 5, 5), np.uint8), np.eye(4)), wrong)
    with qtbot.waitSignal(window.opener.opened, timeout=20000):
        window.open_paths([ct_pair[0]])
    # the image opened with its own ct_labels.nii.gz, found beside it
    assert [layer.name for layer in window.study.layers.by_kind("labels")] == ["ct_labels"]
    with qtbot.waitSignal(window.opener.failed, timeout=20000) as blocker:
        window.opener.add_labels(window.study, wrong)
    message = blocker.args[0]
    assert "wrong.nii.gz" in message and "refusing to resample" in message
    assert "\n" not in message
    assert "wrong.nii.gz" in window.statusBar().currentMessage()
    assert len(window.study.layers.by_kind("labels")) == 1   # nothing half-added


def test_bad_file_gives_one_line_and_window_survives(window, qtbot, tmp_path, ct_pair):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"\x1f\x8bnot really gzip")
    with qtbot.waitSignal(window.opener.failed, timeout=20000) as blocker:
        window.open_paths([bad])
    assert "broken.nii.gz" in blocker.args[0]
    assert window.study is None and "broken.nii.gz" in window.statusBar().currentMessage()
    with qtbot.waitSignal(window.opener.opened, timeout=20000):
        window.open_paths([ct_pair[0]])
    assert_shows_the_file(window.study.image, ct_pair[0])   # the window still opens a good file, whole
    assert "ct" in window.windowTitle()


def test_drop_opens_files(window, qtbot, ct_pair):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(ct_pair[0]))])
    ev = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.opener.opened, timeout=20000):
        window.dropEvent(ev)
    assert window.study.image.shape == (20, 40, 30)


def test_user_chooses_among_series(window, qtbot, tmp_path):
    """A 4-D NIfTI offers its volumes; the user's choice is loaded."""
    arr = np.stack([np.full((4, 5, 6), t, np.int16) for t in range(3)], axis=-1)
    path = tmp_path / "four_d.nii.gz"
    nib.save(nib.Nifti1Image(arr, np.eye(4)), path)
    window.opener.auto_choose = False
    asked = []

    def answer(descriptions, reply):
        asked.append(descriptions)
        reply(2)

    window.opener.choose_series.disconnect()
    window.opener.choose_series.connect(answer)
    with qtbot.waitSignal(window.opener.opened, timeout=20000):
        window.open_paths([path])
    assert len(asked[0]) == 3
    assert int(window.study.image.array.max()) == 2


def test_worker_reports_progress_result_and_cancel(qtbot):
    seen = []

    def work(n, progress=None, cancel=None):
        for i in range(n):
            progress(i / n, "step")
        return n * 2

    got = []
    run_worker(work, 5, on_progress=lambda f, m: seen.append(f), on_result=got.append)
    qtbot.waitUntil(lambda: got == [10], timeout=10000)   # (the result may come before any wait starts)
    qtbot.waitUntil(lambda: len(seen) == 5)

    def slow(progress=None, cancel=None):
        import time
        for _ in range(200):
            time.sleep(0.01)
            cancel.raise_if_cancelled()
        return "finished anyway"

    worker = run_worker(slow)
    results = []
    worker.result.connect(results.append)
    with qtbot.waitSignal(worker.cancelled, timeout=5000):
        worker.cancel()
    assert results == []


def test_worker_errors_reach_the_user(window, qtbot):
    def broken(progress=None, cancel=None):
        raise RuntimeError("disk on fire")

    # wait on what the user sees: the worker may finish before a waitSignal could connect
    run_worker(broken)
    qtbot.waitUntil(lambda: "disk on fire" in window.statusBar().currentMessage(), timeout=5000)


def test_photo_opens_in_true_colour_single_view(window, qtbot, shared_data):
    from PIL import Image

    path = shared_data / "thin_sections" / "images" / "1.png"
    with qtbot.waitSignal(window.opener.opened, timeout=20000):
        window.open_paths([path])
    photo = np.asarray(Image.open(path).convert("RGB"))
    assert window.study.image.is_photo and window.study.image.shape == (1,) + photo.shape[:2]
    assert window.viewer.layout_name == "single"
    axial = window.viewer.views["axial"]
    assert axial.isVisible() and not window.viewer.views["coronal"].isVisible()
    # its class labels (thin_sections/labels/1.png beside images/) came with it; hide them to see the photo
    found = window.study.layers.by_kind("labels")
    assert len(found) == 1 and found[0].labels.volume.source.endswith("labels/1.png")
    found[0].visible = False
    axial.reset_view()
    qtbot.wait(20)
    # probe the screen: the photo's mean colour and the shown pixels' mean colour agree
    from app.snapshot import qimage_to_array

    shot = qimage_to_array(axial.grab().toImage()).astype(float)
    inside = shot[shot.sum(axis=2) > 30]
    assert np.allclose(inside.mean(axis=0), photo.reshape(-1, 3).mean(axis=0), atol=12)
    text = window.describe_voxel((0, 10, 20))
    assert f"RGB {tuple(int(c) for c in photo[10, 20])}" in text and "HU" not in text


def test_npy_without_spacing_asks_and_remembers(window, qtbot, tmp_path):
    """The soil seed writes bare .npy cubes: the user is asked once, the answer saved beside it."""
    cube = np.zeros((10, 12, 14), np.int16)
    path = tmp_path / "cube.npy"
    np.save(path, cube)
    window.ask_spacing = lambda image: (0.5, 0.25, 0.25)
    with qtbot.waitSignal(window.opener.opened, timeout=20000):
        window.open_paths([path])
    assert window.study.image.spacing == (0.5, 0.25, 0.25)
    assert window.viewer.views["axial"]._pixel == (0.25, 0.25)
    import json

    assert json.loads((tmp_path / "cube.json").read_text())["spacing"] == [0.5, 0.25, 0.25]
    asked = []
    window.ask_spacing = lambda image: asked.append(image) or None
    with qtbot.waitSignal(window.opener.opened, timeout=20000):
        window.open_paths([path])
    assert asked == [] and window.study.image.spacing == (0.5, 0.25, 0.25)


def test_middle_drag_pans(window, qtbot, ct_pair):
    from PySide6.QtCore import QPoint

    from tests.gui.conftest import send_drag

    with qtbot.waitSignal(window.opener.opened, timeout=20000):
        window.open_paths([ct_pair[0]])
    axial = window.viewer.views["axial"]
    (x0, _), _ = axial.box.viewRange()
    c = axial.viewport().rect().center()
    send_drag(axial, c, c + QPoint(80, 0), button=Qt.MouseButton.MiddleButton)
    (x1, _), _ = axial.box.viewRange()
    assert x1 < x0   # dragging right moves the image right: the visible range moves left
