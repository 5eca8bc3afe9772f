"""No action writes to a file the user opened as an image (issue 14, items 1-3).

Each test opens a copy of a real file from ../shared/data through File ▸ Open's path, makes a label
layer the way the user does (Labels ▸ New label layer and the brush, gray-level bins, the live
classifier, a segmentation model, density objects, a restored autosave), presses Ctrl+S on the slice
view, answers the Save As question through the window's hook (``ask_save_path``) and then checks the
disk: the bytes of every opened file are unchanged, and the labels are in the proposed sidecar file.

Before the fix a layer made from the image kept the image's ``source`` and Ctrl+S wrote the label
map over the image without asking: the first test fails on that code (no question asked, the CT's
bytes change).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction

from tests.gui.conftest import make_main_window, paint_autosave_and_kill, send_drag
from tests.gui.test_painting import widget_pos

pytestmark = pytest.mark.gui
CT = Path("ct") / "abdomen_slab_ct.nii.gz"
CUBE = Path("microct") / "snow.tif"
PHOTOS = Path("thin_sections")


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fingerprints(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (the opened images and everything beside them)."""
    return {str(p.relative_to(folder)): sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def untouched(folder: Path, before: dict[str, str]) -> bool:
    """Every file that was there before still holds the same bytes (new sidecars may have come)."""
    now = fingerprints(folder)
    return {name: now.get(name) for name in before} == before


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, user_models):
    """The window the user gets: with its 3D panel."""
    win = make_main_window(qtbot, tmp_path, monkeypatch, with_3d=True)
    yield win
    win.model_dock.shutdown()


def copy_of(shared_data: Path, relative: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(shared_data / relative, folder / relative.name))


def open_file(window, qtbot, path: Path):
    with qtbot.waitSignal(window.opener.opened, timeout=60000):
        window.open_paths([path])
    focus_view(window, qtbot)
    return window.study


def focus_view(window, qtbot):
    """The slice view under the mouse, with keyboard focus, in the active window: where keys go."""
    view = window.viewer.views["axial"]
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    view.setFocus()
    qtbot.wait(20)
    return view


def menu_action(window, text: str) -> QAction:
    return next(a for a in window.findChildren(QAction) if a.text() == text)


def stroke(window, qtbot, rows=(10, 20), cols=(10, 50), label: int = 1) -> None:
    """B, a label key, and a drag with the left button across the shown slice."""
    view = focus_view(window, qtbot)
    qtbot.keyClick(view, Qt.Key.Key_B)
    qtbot.keyClick(view, getattr(Qt.Key, f"Key_{label}"))
    assert window.annotator.tool == "brush" and window.annotator.label == label
    k = view.slice_index
    for row in range(*rows, 5):
        send_drag(view, widget_pos(view, (k, row, cols[0])), widget_pos(view, (k, row, cols[1])))


def answer_save_as(window, answer=None) -> list[Path]:
    """Replace the Save As dialog: record what it proposed, answer it (the proposal by default)."""
    asked: list[Path] = []
    window.ask_save_path = lambda default: asked.append(Path(default)) or (answer or Path(default))
    return asked


def ctrl_s(window, qtbot) -> None:
    view = focus_view(window, qtbot)
    with qtbot.waitSignal(window.keeper.saved, timeout=30000):
        qtbot.keyClick(view, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)


def read_nifti(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


def check_nifti_labels_on_the_image_grid(written: Path, image: Path, layer) -> np.ndarray:
    """The file holds the layer's labels with the image's shape and affine, as other tools read it."""
    on_disk, original = nib.load(written), nib.load(image)
    assert on_disk.shape == original.shape[:3]
    assert np.allclose(on_disk.affine, original.affine, atol=1e-4)
    ids = read_nifti(written)
    assert ids.dtype.kind == "u" and np.count_nonzero(ids) == np.count_nonzero(layer.array) > 0
    assert set(np.unique(ids)) == set(np.unique(layer.array))
    assert json.loads(written.with_name(written.name.replace(".nii.gz", ".labels.json")).read_text())["labels"]
    return ids


# -- Labels ▸ New label layer ----------------------------------------------------------------------
def test_ctrl_s_on_a_new_layer_of_a_ct_asks_where_and_never_writes_the_ct(window, qtbot, tmp_path, shared_data):
    ct = copy_of(shared_data, CT, tmp_path / "study")
    before = fingerprints(ct.parent)
    open_file(window, qtbot, ct)
    menu_action(window, "&New label layer").trigger()
    layer = window.annotator.layer
    stroke(window, qtbot)
    assert np.count_nonzero(layer.array) > 20

    asked = answer_save_as(window)
    ctrl_s(window, qtbot)
    sidecar = ct.with_name("abdomen_slab_ct_labels.nii.gz")
    assert asked == [sidecar], "Ctrl+S on a layer without a file of its own must ask where (Save As)"
    assert untouched(ct.parent, before)
    check_nifti_labels_on_the_image_grid(sidecar, ct, layer)
    assert not window.keeper.unsaved_layers()

    # the layer's own file is the sidecar now: the next Ctrl+S writes it without asking
    stroke(window, qtbot, rows=(40, 50), label=2)
    ctrl_s(window, qtbot)
    assert len(asked) == 1 and sha256(ct) == before[ct.name]
    assert 2 in read_nifti(sidecar)


def test_saving_labels_over_the_opened_image_is_refused_in_one_line(window, qtbot, tmp_path, shared_data):
    ct = copy_of(shared_data, CT, tmp_path / "study")
    before = sha256(ct)
    open_file(window, qtbot, ct)
    menu_action(window, "&New label layer").trigger()
    stroke(window, qtbot)
    # the user types the image's own name in Save As (here through a second name of the same file)
    os.link(ct, tmp_path / "study" / "same_scan.nii.gz")
    answer_save_as(window, answer=tmp_path / "study" / "same_scan.nii.gz")
    errors = []
    window.keeper.error.connect(errors.append)
    qtbot.keyClick(focus_view(window, qtbot), Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: bool(errors), timeout=10000)
    assert len(errors) == 1 and "\n" not in errors[0] and "is the image you opened" in errors[0]
    assert "same_scan.nii.gz" in window.statusBar().currentMessage()
    assert sha256(ct) == before and window.keeper.unsaved_layers() == [window.annotator.layer]


# -- gray-level bins in a thin-section project -----------------------------------------------------
@pytest.fixture
def project(tmp_path, shared_data):
    """Three real photos in a project's images/ and labels/ layout; photo 2 has no labels yet."""
    folder = tmp_path / "sandstone"
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    for name in ("1", "2", "3"):
        shutil.copy2(shared_data / PHOTOS / "images" / f"{name}.png", folder / "images")
    for name in ("1", "3"):
        shutil.copy2(shared_data / PHOTOS / "labels" / f"{name}.png", folder / "labels")
    return folder


def open_photo(window, qtbot, folder: Path, name: str):
    dock = window.thin_section_dock
    if dock.project is None:
        with qtbot.waitSignal(dock.project_opened, timeout=20000):
            window.open_paths([folder])
    row = dock.photos._row(name)
    with qtbot.waitSignal(dock.photo_opened, timeout=20000):
        qtbot.mouseClick(dock.photos.viewport(), Qt.MouseButton.LeftButton,
                         pos=dock.photos.visualItemRect(row).center())
    return dock


def bins_new_layer(window, qtbot):
    """Labels ▸ Start from gray-level bins, OK, and "New layer" where the labels hold strokes."""
    menu_action(window, "Start from &gray-level bins (photo)…").trigger()
    dialog = window._bins_dialog
    dialog.ask_replace = lambda layer: "new"   # the question box's "New layer" button
    qtbot.waitUntil(lambda: dialog.preview is not None, timeout=20000)
    with qtbot.waitSignal(dialog.finished, timeout=20000):
        dialog.apply()
    layer = dialog.result_layer
    assert layer is window.annotator.layer and layer.name != "labels" and len(np.unique(layer.array)) > 2
    return layer


def test_a_bins_layer_of_a_project_photo_goes_to_the_projects_label_file(window, qtbot, project):
    before = fingerprints(project / "images")
    dock = open_photo(window, qtbot, project, "1")
    labels_before = sha256(project / "labels" / "1.png")
    stroke(window, qtbot, rows=(20, 40), cols=(20, 80))       # on the photo's own labels
    layer = bins_new_layer(window, qtbot)
    asked = answer_save_as(window, answer=project / "labels" / "1_bins.png")
    ctrl_s(window, qtbot)
    assert asked == [project / "labels" / "1.png"], "Save As proposes the project's label file"
    assert fingerprints(project / "images") == before, "a photo of the project was written"
    assert sha256(project / "labels" / "1.png") == labels_before
    written = np.asarray(Image.open(project / "labels" / "1_bins.png"))
    np.testing.assert_array_equal(written, layer.array[0])
    assert dock.open_item.name == "1"


def test_switching_photos_with_an_unsaved_bins_layer_asks_save_discard_cancel(window, qtbot, project):
    before = fingerprints(project / "images")
    dock = open_photo(window, qtbot, project, "2")
    first = window.study
    stroke(window, qtbot, rows=(20, 40), cols=(20, 80))
    asked_where = answer_save_as(window)
    ctrl_s(window, qtbot)   # the photo's labels layer has the project's label file: no question
    assert asked_where == [] and np.count_nonzero(np.asarray(Image.open(project / "labels" / "2.png"))) > 0
    layer = bins_new_layer(window, qtbot)
    asked = []
    window.ask_unsaved = lambda names: asked.append(names) or "cancel"
    focus_view(window, qtbot)
    qtbot.keyClick(window.viewer.views["axial"], Qt.Key.Key_Right, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: bool(asked), timeout=10000)
    assert asked == [[layer.name]] and window.study is first and dock.open_item.name == "2"

    window.ask_unsaved = lambda names: "save"
    proposals = answer_save_as(window, answer=project / "labels" / "2_bins.png")
    with qtbot.waitSignal(dock.photo_opened, timeout=20000) as opened:
        dock.next_action.trigger()
    assert opened.args == ["3"] and proposals == [project / "labels" / "2.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(project / "labels" / "2_bins.png")), layer.array[0])
    assert fingerprints(project / "images") == before


# -- the live classifier on a photo opened alone ---------------------------------------------------
def test_live_classifier_accept_then_ctrl_s_writes_a_sidecar_not_the_photo(window, qtbot, tmp_path, shared_data):
    photo = copy_of(shared_data, PHOTOS / "images" / "3.png", tmp_path / "photos")
    before = fingerprints(photo.parent)
    open_file(window, qtbot, photo)
    panel = window.thin_section_dock.live_classifier
    window.thin_section_dock.show()
    window.thin_section_dock.tabs.setCurrentWidget(panel)
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.features_ready, timeout=60000)
    stroke(window, qtbot, rows=(30, 60), cols=(20, 120), label=3)
    stroke(window, qtbot, rows=(300, 330), cols=(300, 450), label=5)
    qtbot.waitUntil(lambda: panel.result is not None and not panel.busy, timeout=60000)
    qtbot.mouseClick(panel.accept_button, Qt.MouseButton.LeftButton)
    layer = window.annotator.layer
    assert layer.name == "labels" and set(np.unique(layer.array)) == {3, 5}

    asked = answer_save_as(window)
    ctrl_s(window, qtbot)
    assert asked == [photo.with_name("3_labels.png")]
    assert untouched(photo.parent, before)
    np.testing.assert_array_equal(np.asarray(Image.open(asked[0])), layer.array[0])


# -- a segmentation model's prediction -------------------------------------------------------------
def test_a_model_prediction_saves_beside_the_ct_on_its_grid(window, qtbot, tmp_path, shared_data, user_models):
    from ctviewer.ml.child import ModelProcess

    maker = ModelProcess()
    maker.call("tests.gui.dock_tasks:save_small_unet", str(user_models))
    maker.close()
    ct = copy_of(shared_data, CT, tmp_path / "study")
    before = sha256(ct)
    open_file(window, qtbot, ct)
    dock = window.model_dock
    dock.refresh_models()
    assert dock.select_model("small-liver")
    with qtbot.waitSignal(dock.segmentation_added, timeout=240000) as added:
        qtbot.mouseClick(dock.run_button, Qt.MouseButton.LeftButton)
    layer = added.args[0]
    assert window.annotator.layer is layer and np.count_nonzero(layer.array) > 0
    asked = answer_save_as(window)
    ctrl_s(window, qtbot)
    assert asked == [ct.with_name("abdomen_slab_ct_labels.nii.gz")] and sha256(ct) == before
    assert set(np.unique(check_nifti_labels_on_the_image_grid(asked[0], ct, layer))) <= {0, 5}


# -- density objects of a uint16 micro-CT cube -----------------------------------------------------
def test_density_objects_of_a_micro_ct_cube_save_as_a_sidecar(window, qtbot, tmp_path, shared_data):
    cube = copy_of(shared_data, CUBE, tmp_path / "soil")
    before = sha256(cube)
    study = open_file(window, qtbot, cube)
    assert study.image.array.dtype == np.uint16
    window.soil_dock.show_tab(title="Objects 3D")
    panel = window.soil_dock.objects
    with qtbot.waitSignal(study.layers.events.inserted, timeout=120000):
        qtbot.mouseClick(panel.split_button, Qt.MouseButton.LeftButton)
    layer = study.layers.by_kind("labels")[-1]
    assert layer.name == "density objects" and len(layer.labels.table) > 1
    window.annotator.set_layer(layer)   # picked in the layers dock
    asked = answer_save_as(window)
    ctrl_s(window, qtbot)
    assert asked == [cube.with_name("snow_labels.nii.gz")] and sha256(cube) == before
    on_disk = nib.load(asked[0])
    assert on_disk.shape == (100, 100, 100) and np.count_nonzero(read_nifti(asked[0])) == np.count_nonzero(layer.array)


# -- a layer restored after a crash ----------------------------------------------------------------
@pytest.mark.parametrize("relative", [PHOTOS / "images" / "2.png", CUBE, CT], ids=["photo", "uint16 cube", "ct"])
def test_a_restored_layer_holds_only_the_strokes_and_saves_beside_the_image(window, qtbot, tmp_path, shared_data,
                                                                            relative):
    """A child paints on a real file with no label layer (painting starts one), autosaves, is killed;
    the reopened image offers the strokes back: labels, never image values, and Ctrl+S asks where.
    The autosave is also given the manifest earlier versions wrote (the image as the labels' file)."""
    image = copy_of(shared_data, relative, tmp_path / "study")
    before = fingerprints(image.parent)
    expected = tmp_path / "expected.npy"
    paint_autosave_and_kill(image, expected, tmp_path / "recovery")
    strokes = np.load(expected)
    manifest = next((tmp_path / "recovery").rglob("manifest.json"))
    assert json.loads(manifest.read_text())["base_path"] is None, "the autosave names the image as its file"
    old = dict(json.loads(manifest.read_text()), base_path=str(image.resolve()))   # as earlier versions wrote
    manifest.write_text(json.dumps(old))

    offered = []
    window.ask_restore = lambda entries: offered.append(entries) or True
    open_file(window, qtbot, image)
    assert offered and offered[0][0].base_path is None
    restored = window.study.layers.by_kind("labels")[-1]
    np.testing.assert_array_equal(restored.array, strokes)
    assert set(np.unique(restored.array)) == {0, 1, 2, 3}

    asked = answer_save_as(window)
    ctrl_s(window, qtbot)
    assert asked and asked[0] != image and untouched(image.parent, before)
    if asked[0].name.endswith(".nii.gz"):
        assert np.count_nonzero(read_nifti(asked[0])) == np.count_nonzero(strokes)
    else:
        np.testing.assert_array_equal(np.asarray(Image.open(asked[0])), strokes[0])


def test_a_new_layer_of_an_nrrd_scan_proposes_a_slicer_segmentation(window, qtbot, tmp_path, shared_data):
    import nrrd

    from ctviewer.io.registry import read_volume
    from ctviewer.io.writers import write_volume

    (tmp_path / "study").mkdir()
    scan = write_volume(read_volume(shared_data / CT), tmp_path / "study" / "slab.nrrd")
    before = sha256(scan)
    open_file(window, qtbot, scan)
    menu_action(window, "&New label layer").trigger()
    layer = window.annotator.layer
    stroke(window, qtbot)
    asked = answer_save_as(window)
    ctrl_s(window, qtbot)
    assert asked == [scan.with_name("slab_labels.seg.nrrd")] and sha256(scan) == before
    data, header = nrrd.read(str(asked[0]))
    assert tuple(data.shape[-3:]) == tuple(nrrd.read_header(str(scan))["sizes"])
    assert np.count_nonzero(data) == np.count_nonzero(layer.array) and "Segment0_LabelValue" in header
