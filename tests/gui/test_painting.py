"""Painting in the slice views the way a user does it: tools, keys, undo, linked views, saving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from ctviewer.data import LabelLayer, LabelMap, Study, Volume
from ctviewer.imaging import slicing
from tests.gui.conftest import make_main_window, paint_autosave_and_kill, send_click, send_drag


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    """The main window as the user gets it, the real 3D panel included."""
    return make_main_window(qtbot, tmp_path, monkeypatch, size=(1200, 900))


@pytest.fixture
def ct_study() -> Study:
    arr = np.full((30, 64, 80), -1000, np.int16)
    arr[:, 8:56, 8:72] = 40
    arr[:, 20:40, 30:50] = 300                      # a bright block: threshold paint targets it
    vol = Volume(arr, spacing=(2.0, 1.0, 1.0), modality="CT", name="phantom")
    study = Study(vol)
    study.layers.append(LabelLayer(LabelMap(vol.with_array(np.zeros(arr.shape, np.uint8))), name="mask"))
    study.layers[-1].labels.table.add(1, "liver")
    study.layers[-1].labels.table.add(2, "spine")
    return study


def widget_pos(view, voxel) -> QPoint:
    """Where on the view's widget the centre of ``voxel`` is drawn."""
    row, col, _ = slicing.to_screen(view.orientation, view.study.image.shape, voxel)
    row_mm, col_mm = slicing.pixel_size(view.study.image.spacing, view.orientation)
    scene = view.box.mapViewToScene(QPointF(col * col_mm, row * row_mm))
    return view.mapFromScene(scene)


def key(win, sequence: str) -> None:
    for action in win.findChildren(type(win.label_actions.undo_action)):
        if sequence in [s.toString() for s in action.shortcuts()] and action.isEnabled():
            action.trigger()
            return
    raise AssertionError(f"no enabled action has the shortcut {sequence}")


def draw_outline(view, corners) -> None:
    """Press at the first corner, move along the outline, release: a lasso drag."""
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    target = view.viewport()
    left = Qt.MouseButton.LeftButton

    def send(kind, pos, btn, btns):
        QApplication.sendEvent(target, QMouseEvent(kind, QPointF(pos), QPointF(target.mapToGlobal(pos)), btn, btns,
                                                   Qt.KeyboardModifier.NoModifier))

    send(QEvent.Type.MouseButtonPress, widget_pos(view, corners[0]), left, left)
    for a, b in zip(corners[:-1], corners[1:]):
        pa, pb = np.array(widget_pos(view, a).toTuple()), np.array(widget_pos(view, b).toTuple())
        for step in range(1, 5):
            p = pa + (pb - pa) * step / 4
            send(QEvent.Type.MouseMove, QPoint(int(p[0]), int(p[1])), Qt.MouseButton.NoButton, left)
            QTest.qWait(12)   # pyqtgraph drops moves faster than its mouse rate limit (100 Hz)
    send(QEvent.Type.MouseButtonRelease, widget_pos(view, corners[-1]), left, Qt.MouseButton.NoButton)
    QApplication.processEvents()


def open_study(win, study, qtbot):
    win.set_study(study)
    qtbot.wait(50)
    return win.viewer.views["axial"]


def test_brush_stroke_paints_shows_in_linked_views_and_undoes_after_slice_change(window, ct_study, qtbot):
    axial = open_study(window, ct_study, qtbot)
    window.annotator.set_label(1)
    key(window, "B")
    assert window.annotator.tool == "brush"
    window.annotator.update_settings(radius=3, unit="px")
    k = axial.slice_index
    send_drag(axial, widget_pos(axial, (k, 30, 20)), widget_pos(axial, (k, 30, 60)))
    labels = ct_study.layers[-1].array
    assert labels[k, 30, 20] == 1 and labels[k, 30, 40] == 1 and labels[k, 30, 60] == 1
    assert labels[k, 36, 40] == 0 and labels[k + 1, 30, 40] == 0      # a 2D disc, radius 3
    painted = int((labels == 1).sum())
    # the coronal view through row 30 shows the stroke in the label colour without any refresh call
    ct_study.cursor = (k, 30, 40)
    coronal = window.viewer.views["coronal"]
    item = coronal.overlays._items[id(ct_study.layers[-1])]
    row, col, _ = slicing.to_screen("coronal", labels.shape, (k, 30, 40))
    assert tuple(item.rgba[int(row), int(col), :3]) == ct_study.layers[-1].labels.table[1].colour
    # move away, change the layout, come back: the stroke is one undo step
    axial.step_slice(5)
    window.viewer.set_layout("single")
    key(window, "Ctrl+Z")
    assert (labels == 1).sum() == 0
    key(window, "Ctrl+Shift+Z")
    assert (labels == 1).sum() == painted


def test_axial_overlay_updates_only_the_changed_region(window, ct_study, qtbot):
    axial = open_study(window, ct_study, qtbot)
    layer = ct_study.layers[-1]
    item = axial.overlays._items[id(layer)]
    before = item.rgba.copy()
    editor = window.annotator.editor
    k = axial.slice_index
    editor.dab((k, 10, 10), 2, "px", "axial", value=2)
    changed = np.argwhere(np.any(item.rgba != before, axis=2))
    assert len(changed) > 0
    assert changed[:, 0].min() >= 8 and changed[:, 0].max() <= 12
    np.testing.assert_array_equal(item.rgba, layer.labels.table.lut(256)[layer.array[k]])


def test_outline_overlay_after_dabs_matches_a_full_redraw(window, ct_study, qtbot):
    from app.views.overlays import label_outline

    axial = open_study(window, ct_study, qtbot)
    layer = ct_study.layers[-1]
    layer.outline = True
    editor = window.annotator.editor
    k = axial.slice_index
    for voxel, value in (((k, 10, 10), 1), ((k, 14, 13), 2), ((k, 0, 0), 1), ((k, 12, 12), 0)):
        editor.dab(voxel, 4, "px", "axial", value=value)
    for name, view in window.viewer.views.items():
        item = view.overlays._items[id(layer)]
        shown = slicing.extract(layer.array, name, view.slice_index)
        np.testing.assert_array_equal(item.rgba, layer.labels.table.lut(256)[label_outline(shown)], err_msg=name)


def test_eraser_keeps_locked_labels_and_paint_over_background_only(window, ct_study, qtbot):
    axial = open_study(window, ct_study, qtbot)
    layer = ct_study.layers[-1]
    k = axial.slice_index
    layer.array[k, 20:30, 20:30] = 2
    layer.labels.table.update(2, locked=True)
    key(window, "E")
    window.annotator.update_settings(radius=8)
    send_click(axial, widget_pos(axial, (k, 25, 25)))
    assert (layer.array[k, 20:30, 20:30] == 2).all()
    layer.labels.table.update(2, locked=False)
    key(window, "B")
    window.annotator.set_label(1)
    window.annotator.update_settings(over="background")
    send_click(axial, widget_pos(axial, (k, 25, 25)))
    assert (layer.array[k, 20:30, 20:30] == 2).all()          # not background: kept
    assert layer.array[k, 25, 18] == 1                          # background next to it: painted


def test_threshold_brush_paints_only_inside_the_value_range(window, ct_study, qtbot):
    axial = open_study(window, ct_study, qtbot)
    window.annotator.update_settings(value_range=(200, 400), radius=15)
    key(window, "T")
    k = axial.slice_index
    send_click(axial, widget_pos(axial, (k, 30, 40)))
    labels = ct_study.layers[-1].array[k]
    image = ct_study.image.array[k]
    assert labels[image == 300].any()
    assert not labels[image != 300].any()


def test_fill_lasso_and_picker(window, ct_study, qtbot):
    axial = open_study(window, ct_study, qtbot)
    layer = ct_study.layers[-1]
    k = axial.slice_index
    layer.array[k, 10:20, 10] = 2                      # a wall: the fill stays left of it
    layer.array[k, 10, 0:10] = 2
    layer.array[k, 20, 0:10] = 2
    window.annotator.set_label(1)
    key(window, "F")
    send_click(axial, widget_pos(axial, (k, 15, 5)))
    assert (layer.array[k, 11:20, 0:10] == 1).all() and layer.array[k, 15, 11] == 0
    assert (layer.array[k + 1] == 0).all()                # 2D fill by default
    # lasso: drag a closed loop
    key(window, "L")
    window.annotator.set_label(2)
    draw_outline(axial, [(k, 40, 40), (k, 40, 70), (k, 55, 70), (k, 55, 40), (k, 40, 40)])
    assert (layer.array[k, 43:53, 43:68] == 2).all()
    assert layer.array[k, 30, 55] == 0
    # picker: click the lasso region, the active label becomes 2
    window.annotator.set_label(1)
    key(window, "I")
    send_click(axial, widget_pos(axial, (k, 45, 50)))
    assert window.annotator.label == 2


def test_keys_change_brush_size_and_label(window, ct_study, qtbot):
    open_study(window, ct_study, qtbot)
    window.annotator.update_settings(radius=8)
    key(window, "]")
    assert window.annotator.settings.radius > 8
    key(window, "[")
    key(window, "[")
    assert window.annotator.settings.radius < 8
    key(window, "3")
    assert window.annotator.label == 3 and 3 in ct_study.layers[-1].labels.table
    key(window, "Esc")
    assert window.annotator.tool == "navigate"


def test_painting_without_a_label_layer_starts_one(window, qtbot):
    vol = Volume(np.zeros((5, 20, 20), np.int16), spacing=(1, 1, 1), modality="CT", name="blank")
    axial = open_study(window, Study(vol), qtbot)
    key(window, "B")
    send_click(axial, widget_pos(axial, (axial.slice_index, 10, 10)))
    layers = window.study.layers.by_kind("labels")
    assert len(layers) == 1 and layers[0].array[axial.slice_index, 10, 10] == 1


def test_save_labels_writes_file_and_read_only_folder_keeps_them(window, ct_study, qtbot, tmp_path):
    import os

    from ctviewer.io.label_files import read_label_map

    axial = open_study(window, ct_study, qtbot)
    editor = window.annotator.editor
    editor.dab((axial.slice_index, 30, 30), 4, "px", "axial", value=1)
    target = tmp_path / "out" / "mask.nii.gz"
    target.parent.mkdir()
    window.ask_save_path = lambda default: target
    key(window, "Ctrl+S")
    qtbot.waitUntil(lambda: target.exists() and not editor.modified, timeout=10000)
    back = read_label_map(target)
    np.testing.assert_array_equal(back.array, ct_study.layers[-1].array)
    assert back.table.name(1) == "liver"
    # root ignores folder permissions; sysfs refuses new files even to root
    locked = Path("/sys") if os.geteuid() == 0 else tmp_path / "locked"
    if locked != Path("/sys"):
        locked.mkdir()
        locked.chmod(0o500)
    try:
        editor.dab((axial.slice_index, 40, 40), 4, "px", "axial", value=2)
        errors = []
        window.keeper.error.connect(errors.append)
        window.keeper.save(ct_study.layers[-1], locked / "mask.nii.gz")
        qtbot.waitUntil(lambda: bool(errors), timeout=10000)
        assert "read-only" in errors[0] or "permission" in errors[0].lower()
        assert "recovery folder" in errors[0]
        assert editor.modified and (ct_study.layers[-1].array == 2).any()
        qtbot.waitUntil(lambda: not window.keeper.busy, timeout=10000)
        assert any((tmp_path / "recovery").rglob("manifest.json"))
    finally:
        if locked != Path("/sys"):
            locked.chmod(0o700)


def test_killed_mid_edit_the_reopened_image_offers_the_strokes_back(window, qtbot, tmp_path):
    """SIGKILL the running app after it painted; reopening the image restores the strokes."""
    import signal

    from ctviewer.io.writers import write_volume
    from ctviewer.workflows.open import open_study as open_path

    arr = np.full((12, 64, 64), 40, np.int16)
    image_path = tmp_path / "scan.nii.gz"
    write_volume(Volume(arr, spacing=(2, 1, 1), modality="CT", name="scan"), image_path)
    expected = tmp_path / "expected.npy"
    returncode = paint_autosave_and_kill(image_path, expected, tmp_path / "recovery", timeout_s=90)
    assert returncode == -signal.SIGKILL
    offered = []
    window.ask_restore = lambda entries: offered.append(entries) or True
    scan_bytes = image_path.read_bytes()
    window.set_study(open_path(image_path))
    assert offered and offered[0][0].layer_name == "labels"
    restored = window.study.layers.by_kind("labels")[-1]
    np.testing.assert_array_equal(restored.array, np.load(expected))
    assert window.annotator.layer is restored and window.annotator.editor.modified
    # the layer was started by painting: it has no file, so Ctrl+S asks, and the scan stays as it was
    asked = []
    window.ask_save_path = lambda default: asked.append(default) or default
    key(window, "Ctrl+S")
    qtbot.waitUntil(lambda: not window.annotator.editor.modified, timeout=10000)
    assert asked == [tmp_path / "scan_labels.nii.gz"] and image_path.read_bytes() == scan_bytes


def test_3d_fill_runs_in_a_worker_and_is_one_undo_step(window, ct_study, qtbot):
    axial = open_study(window, ct_study, qtbot)
    layer = ct_study.layers[-1]
    layer.array[:, 10:20, 10:20] = 2              # a column through all slices
    window.annotator.set_label(1)
    window.annotator.update_settings(fill_3d=True)
    key(window, "F")
    send_click(axial, widget_pos(axial, (axial.slice_index, 15, 15)))
    qtbot.waitUntil(lambda: (layer.array == 1).any(), timeout=10000)
    assert (layer.array[:, 10:20, 10:20] == 1).all() and (layer.array == 2).sum() == 0
    key(window, "Ctrl+Z")
    assert (layer.array[:, 10:20, 10:20] == 2).all()


def test_edits_rebuild_the_3d_label_surfaces_once_painting_pauses(window, ct_study, qtbot):
    """The real 3D panel, in label-surface mode, shows a stroke once the painting pauses: one rebuild
    for a burst of dabs, one surface where the voxels were painted, in the label's table colour."""
    open_study(window, ct_study, qtbot)
    view3d = window.viewer.view3d
    with qtbot.waitSignal(view3d.scene_ready, timeout=20000, check_params_cb=lambda mode: mode == "labels"):
        view3d.set_mode("labels")
    assert view3d.scene.label_actors == {} and "empty" in view3d.toolbar.status.text()
    shown = []
    view3d.scene_ready.connect(shown.append)
    window.viewer._surfaces_timer.setInterval(50)   # the app waits 1.5 s; a test need not
    editor = window.annotator.editor
    for n in range(5):
        editor.dab((5, 30, 30 + n), 3, "px", "axial", value=1)
        assert view3d.scene.label_actors == {}      # no rebuild while the user paints
    qtbot.waitUntil(lambda: bool(view3d.scene.label_actors), timeout=20000)
    qtbot.wait(200)
    assert shown == ["labels"]                       # one rebuild for the whole burst
    layer = ct_study.layers[-1]
    actors = view3d.scene.label_actors
    assert sorted(actors) == [1]
    colour = layer.labels.table[1].colour
    assert actors[1].GetProperty().GetColor() == pytest.approx(tuple(c / 255 for c in colour))
    # the surface is where the voxels were painted (LPS mm; the volume's grid, half a voxel either side)
    painted = np.argwhere(layer.array == 1)
    corners = np.array([ct_study.image.index_to_lps(painted.min(0).astype(float)),
                        ct_study.image.index_to_lps(painted.max(0).astype(float))])
    lo, hi = corners.min(0), corners.max(0)
    bounds = np.array(actors[1].GetMapper().GetInput().GetBounds()).reshape(3, 2)
    half = np.abs(ct_study.image.direction * np.asarray(ct_study.image.spacing)).sum(axis=1) / 2
    assert (bounds[:, 0] >= lo - half - 1e-6).all() and (bounds[:, 1] <= hi + half + 1e-6).all()
    assert (bounds[:, 1] - bounds[:, 0] > 0).all()
    # and it is drawn: hiding the label (as its eye in the labels dock does) takes away pixels of its hue
    layer.labels.table.update(1, visible=False)
    empty = view3d.screenshot().astype(int)
    layer.labels.table.update(1, visible=True)
    pixels = view3d.screenshot().astype(int)
    drawn = np.abs(pixels - empty).sum(axis=2) > 30
    assert drawn.sum() > 50
    mean = pixels[drawn].mean(axis=0)
    assert np.dot(mean / np.linalg.norm(mean), np.array(colour) / np.linalg.norm(colour)) > 0.97
    # undoing the dabs (one step each: no stroke was open) takes the surface out of the 3D panel too
    for _ in range(5):
        key(window, "Ctrl+Z")
    assert not layer.array.any()
    qtbot.waitUntil(lambda: len(shown) == 2, timeout=20000)
    assert view3d.scene.label_actors == {} and "empty" in view3d.toolbar.status.text()


def test_colour_label_png_is_offered_a_mapping_to_ids(window, qtbot, tmp_path):
    from PIL import Image

    photo = np.zeros((20, 30, 3), np.uint8) + 90
    Image.fromarray(photo).save(tmp_path / "rock.png")
    colours = np.zeros((20, 30, 3), np.uint8)
    colours[:10] = (30, 110, 255)                      # top half blue (porosity), bottom black
    Image.fromarray(colours).save(tmp_path / "rock_classes.png")
    asked = []
    window.ask_map_colours = lambda path: asked.append(path) or True
    with qtbot.waitSignal(window.opener.opened, timeout=20000):
        window.open_paths([tmp_path / "rock.png"])
    with qtbot.waitSignal(window.opener.labels_added, timeout=20000) as blocker:
        window.opener.add_labels(window.study, tmp_path / "rock_classes.png")
    layer = blocker.args[0]
    assert asked and asked[0].name == "rock_classes.png"
    ids = layer.array[0]
    assert len(np.unique(ids[:10])) == 1 and ids[0, 0] != 0 and (ids[10:] == 0).all()
    assert layer.labels.table[int(ids[0, 0])].colour == (30, 110, 255)
