"""The soil dock: cut a cube out of the open stack with the box on the views, save it; split a cube into
density objects and show, hide, fade, clip and photograph their surfaces in the 3D panel.

Run under Xvfb (``xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/pytest -p no:xvfb tests/gui/test_soil_dock.py``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QAction

from app.views import scene3d
from ctviewer.data import Study, Volume
from tests.gui.conftest import make_main_window

pytestmark = pytest.mark.gui
WAIT_MS = 30000


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    win = make_main_window(qtbot, tmp_path, monkeypatch)
    yield win
    win.model_dock.shutdown()


@pytest.fixture
def window3d(qtbot, tmp_path, monkeypatch):
    win = make_main_window(qtbot, tmp_path, monkeypatch, with_3d=True)
    yield win
    win.model_dock.shutdown()


def stack_study() -> Study:
    """A CT stack in HU bigger than the seed's box in-plane, shorter than it in slices."""
    arr = np.full((120, 360, 360), -1000, np.int16)
    arr[:, 100:300, 100:300] = 500
    arr[110:, 200:210, 200:210] = 5000          # above the seed's cap once shifted
    return Study(Volume(arr, spacing=(0.5, 0.2, 0.2), modality="CT", name="core"))


def soil_study() -> Study:
    """A small cube on the seed's 0..4096 scale: blobs of six densities."""
    rng = np.random.default_rng(3)
    from scipy import ndimage

    smooth = ndimage.gaussian_filter(rng.standard_normal((36, 40, 44)).astype(np.float32), 3.0)
    values = np.interp(smooth, (smooth.min(), smooth.max()), (0, 4095)).astype(np.int16)
    return Study(Volume(values, spacing=(0.1, 0.1, 0.1), name="soil"))


def ranges(panel):
    return panel.slices.range(), panel.rows.range(), panel.cols.range()


def drag_on_view(qtbot, view, start_mm: QPointF, end_mm: QPointF, steps: int = 8) -> None:
    """A left-button drag between two points in the view's millimetres, 12 ms between moves."""
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    target = view.viewport()

    def at(mm: QPointF) -> QPoint:
        return view.mapFromScene(view.box.mapViewToScene(mm))

    def send(kind, pos: QPoint, button, buttons):
        ev = QMouseEvent(kind, QPointF(pos), QPointF(target.mapToGlobal(pos)), button, buttons,
                         Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(target, ev)

    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    send(QEvent.Type.MouseButtonPress, at(start_mm), left, left)
    for n in range(1, steps + 1):
        qtbot.wait(12)
        send(QEvent.Type.MouseMove, at(start_mm + (end_mm - start_mm) * (n / steps)), none, left)
    qtbot.wait(12)
    send(QEvent.Type.MouseButtonRelease, at(end_mm), left, none)
    qtbot.wait(20)


def test_the_dock_has_its_five_tabs_and_a_file_menu_entry(window, qtbot):
    dock = window.soil_dock
    assert [dock.tabs.tabText(n) for n in range(dock.tabs.count())] == [
        "Cube", "Objects 3D", "Phases", "Pores", "Explain"]
    assert [type(dock.tabs.widget(n)).__name__ for n in range(5)] == [
        "CubeBuilderPanel", "ObjectsPanel", "PhasesPanel", "PoresPanel", "ExplainPanel"]
    entry = next(a for a in window.findChildren(QAction) if a.text() == "Soil &cube and objects…")
    entry.trigger()
    qtbot.waitUntil(dock.isVisible, timeout=2000)
    assert dock.tabs.currentWidget() is dock.cube


def test_build_a_cube_with_the_box_drawn_on_the_views_then_save_it(window, qtbot, tmp_path):
    panel = window.soil_dock.cube
    window.set_study(stack_study())
    window.soil_dock.show_tab()
    qtbot.waitUntil(lambda: panel.box.shown, timeout=2000)
    # the seed's box, clipped to this 120-slice stack
    assert ranges(panel) == ((100, 120), (150, 350), (150, 350))
    assert "20 slices × 200 rows × 200 columns" in panel.size_label.text()
    roi = panel.box.roi
    assert roi is not None and roi.scene() is window.viewer.views["axial"].scene()
    assert (roi.pos().x(), roi.pos().y(), roi.size().x()) == pytest.approx((30.0, 30.0, 40.0))  # mm, 0.2 mm pixels
    # the coronal view outlines the slice range (slice 0 at the bottom of its 60 mm)
    outline = panel.box.outlines["coronal"].rect()
    assert (outline.top(), outline.bottom()) == pytest.approx((0.0, 10.0))

    panel.rows.first.setValue(160)                                  # spin box -> rectangle
    assert roi.pos().y() == pytest.approx(32.0)
    drag_on_view(qtbot, window.viewer.views["axial"], QPointF(50, 50), QPointF(40, 46))   # rectangle -> spin boxes
    (r0, r1), (c0, c1) = panel.rows.range(), panel.cols.range()
    assert (r1 - r0, c1 - c0) == (190, 200)                         # moved, not resized
    assert abs(r0 - 140) <= 3 and abs(c0 - 100) <= 3
    panel.rows.set_range((150, 350))
    panel.cols.set_range((150, 350))
    panel.slices.first.setValue(104)

    with qtbot.waitSignal(panel.built, timeout=WAIT_MS) as built:
        qtbot.mouseClick(panel.build_button, Qt.MouseButton.LeftButton)
    cube = built.args[0]
    assert window.study.image is cube and cube.shape == (16, 200, 200)
    # HU clipped at -1000, shifted by +1000 and capped at 4096, as the seed
    assert cube.array[0, 0, 0] == 1500 and cube.array[-1, 55, 55] == 4096 and cube.array.min() == 0

    panel.ask_save_path = lambda: tmp_path / "cube.npy"
    with qtbot.waitSignal(panel.saved, timeout=WAIT_MS):
        qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
    assert np.array_equal(np.load(tmp_path / "cube.npy"), cube.array)
    assert json.loads((tmp_path / "cube.json").read_text())["spacing"] == pytest.approx([0.5, 0.2, 0.2])


def test_the_box_leaves_the_views_when_the_cube_tab_is_not_shown(window, qtbot):
    panel = window.soil_dock.cube
    window.set_study(stack_study())
    window.soil_dock.show_tab()
    qtbot.waitUntil(lambda: panel.box.shown, timeout=2000)
    assert panel.box.shown
    window.soil_dock.show_tab(title="Objects 3D")
    assert not panel.box.shown and window.viewer.views["axial"].box.addedItems.count(panel.box.roi) == 0


def test_a_one_value_volume_says_its_bins_are_degenerate(window, qtbot):
    panel = window.soil_dock.objects
    window.set_study(Study(Volume(np.full((8, 10, 12), 700, np.int16))))
    qtbot.mouseClick(panel.split_button, Qt.MouseButton.LeftButton)
    # the worker is done before its queued error reaches the status line: wait for what the user reads
    qtbot.waitUntil(lambda: panel.task.status.text() != "", timeout=WAIT_MS)
    assert "degenerate" in panel.task.status.text() and panel.task.status.property("error")
    assert not window.study.layers.by_kind("labels")


def foreground(pixels: np.ndarray) -> float:
    background = np.array([round(255 * c) for c in scene3d.BACKGROUND])
    return float((np.abs(pixels.astype(int) - background).sum(axis=2) > 30).mean())


def test_objects_show_hide_fade_clip_without_extracting_again(window3d, qtbot, tmp_path, monkeypatch):
    calls = []
    real = scene3d.label_surfaces
    monkeypatch.setattr(scene3d, "label_surfaces", lambda *a, **k: calls.append(1) or real(*a, **k))
    view = window3d.viewer.view3d
    panel = window3d.soil_dock.objects
    window3d.set_study(soil_study())
    window3d.soil_dock.show_tab(title="Objects 3D")
    assert panel.count.value() == 6
    with qtbot.waitSignal(view.scene_ready, timeout=WAIT_MS, check_params_cb=lambda m: m == "labels"):
        qtbot.mouseClick(panel.split_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(view.scene.label_actors) == 6, timeout=WAIT_MS)
    layer = window3d.study.layers.by_kind("labels")[-1]
    assert layer.name == "density objects" and sorted(panel.checks) == [1, 2, 3, 4, 5, 6]
    assert panel.checks[1].text().endswith(layer.labels.table.name(1)) and layer.labels.table.name(1) != "Label 1"
    actors = dict(view.scene.label_actors)
    # pores and stones shown at first; the matrix between them would bury them in a solid block
    assert [i for i, box in sorted(panel.checks.items()) if box.isChecked()] == [1, 6]
    assert actors[1].GetVisibility() and not actors[4].GetVisibility()
    for box in panel.checks.values():
        box.setChecked(True)
    whole = foreground(view.screenshot())

    panel.checks[3].setChecked(False)                       # the seed's --object choice, as check boxes
    panel.checks[4].setChecked(False)
    assert not actors[3].GetVisibility() and not actors[4].GetVisibility() and actors[1].GetVisibility()
    panel.opacity.setValue(50)
    assert actors[1].GetProperty().GetOpacity() == pytest.approx(0.5)
    panel.opacity_of.setCurrentIndex(panel.opacity_of.findData(6))   # one object: the stones
    panel.opacity.setValue(20)
    assert actors[6].GetProperty().GetOpacity() == pytest.approx(0.2)
    assert actors[1].GetProperty().GetOpacity() == pytest.approx(0.5)
    panel.clip_axis.setCurrentText("Across slices")
    panel.clip_far.setChecked(True)
    panel.clip_pos.setValue(800)                             # keep only the top fifth of the slices
    assert actors[1].GetMapper().GetClippingPlanes().GetNumberOfItems() == 1
    assert foreground(view.screenshot()) < 0.6 * whole
    panel.checks[3].setChecked(True)
    qtbot.wait(50)
    assert len(calls) == 1 and view.scene.label_actors == actors   # no surface was extracted again

    camera = view.scene.renderer.GetActiveCamera()
    qtbot.mouseClick(panel.reset_button, Qt.MouseButton.LeftButton)
    start = camera.GetPosition()
    camera.Azimuth(70)
    qtbot.mouseClick(panel.reset_button, Qt.MouseButton.LeftButton)
    assert camera.GetPosition() == pytest.approx(start, abs=1e-3)

    panel.ask_screenshot_path = lambda: tmp_path / "objects.png"
    qtbot.mouseClick(panel.shot_button, Qt.MouseButton.LeftButton)
    from PIL import Image

    with Image.open(tmp_path / "objects.png") as png:
        assert png.size == (view.vtk_widget().width() * view.devicePixelRatio(),
                            view.vtk_widget().height() * view.devicePixelRatio())


def test_big_label_maps_get_coarser_surfaces_and_a_coarse_twin_while_turning():
    """A soil cube's objects have millions of triangles: the panel draws fewer, coarser still while dragging."""
    from scipy import ndimage

    from ctviewer.data import LabelMap

    rng = np.random.default_rng(0)
    blobs = ndimage.zoom(rng.standard_normal((33, 33, 33)).astype(np.float32), 4, order=1)   # 132³ > 2 M voxels
    labels = LabelMap(Volume(np.digitize(blobs, [-0.5, 0.5]).astype(np.uint8) + 1, spacing=(0.1, 0.1, 0.1)))
    full = sum(p.GetNumberOfCells() for p in scene3d.label_surfaces(labels).values())
    shown = scene3d.display_surfaces(labels, still=full // 5, moving=full // 40)
    assert 1 < shown.stride < shown.moving_stride and sorted(shown.still) == sorted(shown.moving) == [1, 2, 3]
    assert shown.triangles() < full // 3 and shown.triangles("moving") < shown.triangles() // 3
    scene = scene3d.Scene3D()
    scene.set_label_surfaces(shown, labels.table)
    scene.set_clip_plane((0.0, 0.0, 5.0), (0.0, 0.0, 1.0))
    still = scene.label_actors[1].GetMapper()
    scene.set_moving(True)
    coarse = scene.label_actors[1].GetMapper()
    assert coarse is not still and coarse.GetInput().GetNumberOfCells() < still.GetInput().GetNumberOfCells()
    assert coarse.GetClippingPlanes().GetNumberOfItems() == 1        # the cut holds while turning
    scene.set_moving(False)
    assert scene.label_actors[1].GetMapper() is still


def test_the_box_stays_off_the_views_while_the_dock_is_behind_another_tab(window, qtbot):
    """Clinicians paint on the axial view: a hidden soil dock must not leave a box there to catch drags."""
    window.set_study(stack_study())
    window.labels_dock.raise_()
    qtbot.wait(20)
    assert not window.soil_dock.cube.box.shown
