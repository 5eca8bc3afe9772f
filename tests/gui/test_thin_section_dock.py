"""The thin-section project dock: open a folder of photos, open a photo with its labels, save them into the
project (the dock's button and Ctrl+S), predict, accept, review, add to training, Train…, Predict folder….

Projects are built in tmp_path (three small RGB photos, one label image). Predicting a photo runs a real tiny
untrained VGG-UNet in the model process. Two worker functions are replaced, each where its test needs an
answer no untrained model gives and nothing may be trained here: Train… (the test checks the config that
reaches the trainer) and Predict folder… (the summary of known fractions; the real folder prediction is
tested with a tiny model in tests/cli/test_thin_section_cli.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

from app.docks import model_dock
from app.thin_section import work
from ctviewer.imaging.bins import thin_section_table
from tests.gui.thin_section_models import thin_section_classes, write_card_only
from tests.gui.conftest import make_main_window

pytestmark = pytest.mark.gui
H, W = 40, 48


def photo(seed: int) -> np.ndarray:
    """Grains of several grey levels and blue epoxy, so gray-level bins give several classes."""
    rng = np.random.default_rng(seed)
    rgb = np.repeat(rng.integers(0, 5, (H // 8, W // 8), dtype=np.uint8).repeat(8, 0).repeat(8, 1)[..., None] * 60,
                    3, axis=2)
    rgb[:8, :8] = (30, 80, 220)
    return rgb


def labels_of(seed: int) -> np.ndarray:
    return (np.arange(H * W, dtype=np.uint8).reshape(H, W) + seed) % 5 + 1


def write_pairs(folder, broken: bool = False):
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    for n, name in enumerate("abc"):
        Image.fromarray(photo(n)).save(folder / "images" / f"{name}.png")
    Image.fromarray(labels_of(0), "L").save(folder / "labels" / "a.png")
    if broken:
        (folder / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    return folder


@pytest.fixture
def pairs(tmp_path):
    return write_pairs(tmp_path / "sandstone", broken=True)


@pytest.fixture
def seed(tmp_path):
    folder = tmp_path / "seed"
    for split, names in (("train", "ab"), ("test", "c")):
        (folder / f"images_prepped_{split}").mkdir(parents=True)
        (folder / f"annotations_prepped_{split}").mkdir()
        for name in names:
            Image.fromarray(photo(ord(name))).save(folder / f"images_prepped_{split}" / f"{name}.png")
    Image.fromarray(labels_of(1), "L").save(folder / "annotations_prepped_train" / "a.png")
    return folder


@pytest.fixture
def models(user_models):
    return user_models


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, models):
    win = make_main_window(qtbot, tmp_path, monkeypatch)
    yield win
    win.model_dock.shutdown()


def open_project(window, qtbot, folder):
    dock = window.thin_section_dock
    with qtbot.waitSignal(dock.project_opened, timeout=10000):
        window.open_paths([folder])   # what `ctviewer DIR` and a drop do
    return dock


def click_photo(dock, qtbot, name: str) -> None:
    row = dock.photos._row(name)
    dock.photos.scrollToItem(row)   # as a user scrolls to it: the list shares the dock with the fractions
    rect = dock.photos.visualItemRect(row)
    with qtbot.waitSignal(dock.photo_opened, timeout=10000):
        qtbot.mouseClick(dock.photos.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def statuses(dock) -> dict[str, str]:
    rows = [dock.photos.topLevelItem(n) for n in range(dock.photos.topLevelItemCount())]
    return {row.text(0): row.text(1) for row in rows}


def stored_status(folder, name: str) -> str:
    return json.loads((folder / "ctviewer-project.json").read_text())["images"][name]["status"]


def save_action(window) -> QAction:
    save = QKeySequence(QKeySequence.StandardKey.Save)
    return next(a for a in window.findChildren(QAction) if a.shortcut() == save and "Save labels" in a.text())


def test_a_folder_lists_its_photos_with_status_thumbnails_and_problems(window, qtbot, pairs):
    Image.fromarray(np.tile(photo(7), (4, 5, 1))).save(pairs / "images" / "d.png")   # 240 x 160
    dock = open_project(window, qtbot, pairs)

    assert not dock.isHidden()
    assert [dock.tabs.tabText(n) for n in range(dock.tabs.count())] == ["Project", "Live classifier"]
    assert statuses(dock) == {"a": "labelled", "b": "unlabelled", "c": "unlabelled", "d": "unlabelled"}
    assert "broken.png" in dock.problems.text() and not dock.problems.isHidden()
    qtbot.waitUntil(lambda: all(dock.photos.has_thumbnail(n) for n in "abcd"), timeout=10000)
    icon = dock.photos._row("d").icon(0).pixmap(64, 64).toImage()
    assert (icon.width(), icon.height()) == (64, 43)   # small, the photo's shape
    # the status is a colour too: labelled and unlabelled rows have different dots
    dots = [dock.photos._row(n).icon(1).pixmap(12, 12).toImage().pixelColor(6, 6).name() for n in "ab"]
    assert dots[0] != dots[1]
    # nothing is open yet: the photo buttons wait for a click
    assert not dock.save_button.isEnabled() and not dock.predict_button.isEnabled()


def test_a_clicked_photo_opens_with_its_labels_and_saving_writes_the_projects_label_file(window, qtbot, pairs):
    dock = open_project(window, qtbot, pairs)
    click_photo(dock, qtbot, "a")
    study = window.study
    assert study.image.source == str(pairs / "images" / "a.png")
    layer = window.annotator.layer
    assert layer is dock.label_layer() and np.array_equal(layer.array[0], labels_of(0))
    assert [lab.id for lab in layer.labels.table] == [1, 2, 3, 4, 5]

    click_photo(dock, qtbot, "b")
    layer = window.annotator.layer
    assert layer.name == "labels" and not layer.array.any()
    assert [lab.name for lab in layer.labels.table] == [lab.name for lab in thin_section_table()]
    # the gray-level bins start works on the project photo and fills this layer
    window.show_gray_bins()
    filled = window._bins_dialog.apply()
    assert filled is layer and len(np.unique(layer.array)) > 2
    # Ctrl+S (Labels ▸ Save labels) writes the project's label file and the status follows
    with qtbot.waitSignal(dock.status_changed, timeout=10000):
        save_action(window).trigger()
    written = np.asarray(Image.open(pairs / "labels" / "b.png"))
    assert np.array_equal(written, layer.array[0])
    assert statuses(dock)["b"] == "labelled" and stored_status(pairs, "b") == "labelled"
    assert not window.keeper.unsaved_layers()


def test_moving_to_the_next_photo_asks_about_unsaved_labels(window, qtbot, pairs):
    dock = open_project(window, qtbot, pairs)
    click_photo(dock, qtbot, "b")
    first = window.study
    window.annotator.editor.apply_mask(np.ones((1, H, W), bool), value=3)
    asked = []
    window.ask_unsaved = lambda names: asked.append(names) or "cancel"
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    dock.photos.setFocus()   # where the click left it
    qtbot.keyClick(dock.photos, Qt.Key.Key_Right, Qt.KeyboardModifier.ControlModifier)   # next photo
    qtbot.waitUntil(lambda: bool(asked), timeout=10000)
    assert asked == [["labels"]] and window.study is first and dock.open_item.name == "b"
    qtbot.waitUntil(lambda: dock.photos.current_name() == "b", timeout=5000)

    window.ask_unsaved = lambda names: "save"
    with qtbot.waitSignal(dock.photo_opened, timeout=10000) as opened:
        dock.next_action.trigger()
    assert opened.args == ["c"]
    assert np.all(np.asarray(Image.open(pairs / "labels" / "b.png")) == 3)
    assert statuses(dock)["b"] == "labelled"
    with qtbot.waitSignal(dock.photo_opened, timeout=10000) as opened:
        dock.previous_action.trigger()
    assert opened.args == ["b"] and np.all(window.annotator.layer.array == 3)


def test_predict_accept_review_with_a_real_tiny_model(window, qtbot, pairs, models):
    """A tiny untrained VGG-UNet, built and run in the model process (Keras never in the GUI process: with
    VTK's software OpenGL it crashes it). What the dock shows and writes is what that model says for the
    photo, asked directly; its classes vary across the photo, so a flip or another photo would show."""
    from ctviewer.ml.child import shared_process
    from ctviewer.workflows.thin_section.photos import read_photo_rgb

    dock = open_project(window, qtbot, pairs)
    click_photo(dock, qtbot, "c")
    assert not dock.predict_button.isEnabled() and "train one" in dock.predict_button.toolTip()
    # built in the process the dock predicts in: TensorFlow starts once
    model_path = shared_process().call("tests.gui.thin_section_models:save_small_vgg_unet", str(models))
    window.model_dock.refresh_models()   # a training finished: the dock's combo follows the model list
    assert dock.model_combo.currentText() == "small-vggunet" and dock.predict_button.isEnabled()
    said = shared_process().call(f"{work.PREDICT}:segment_photo", read_photo_rgb(pairs / "images" / "c.png"),
                                 model_path)
    assert said.shape == (H, W) and set(np.unique(said)) <= {1, 2, 3, 4, 5}
    assert not np.array_equal(said, said[:, ::-1]) and not np.array_equal(said, said[::-1])

    with qtbot.waitSignal(dock.predicted, timeout=90000):
        qtbot.mouseClick(dock.predict_button, Qt.MouseButton.LeftButton)
    prediction = dock.prediction_layer()
    assert np.array_equal(prediction.array[0], said)
    assert window.annotator.layer is dock.label_layer()   # painting still goes to the labels
    assert np.array_equal(np.asarray(Image.open(pairs / "predictions" / "c.png")), said)
    assert statuses(dock)["c"] == "predicted"

    with qtbot.waitSignal(dock.status_changed, timeout=10000):   # saved: labelled, then reviewed
        qtbot.mouseClick(dock.accept_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: statuses(dock)["c"] == "reviewed", timeout=10000)
    labels = dock.label_layer()
    assert np.array_equal(labels.array[0], said)
    assert np.array_equal(np.asarray(Image.open(pairs / "labels" / "c.png")), said)
    assert stored_status(pairs, "c") == "reviewed" and dock.reviewed_button.isChecked()
    assert window.annotator.can_undo   # accepting is one step of the labels' history
    window.annotator.undo()
    assert not labels.array.any()

    qtbot.mouseClick(dock.reviewed_button, Qt.MouseButton.LeftButton)   # the mark is taken back
    assert statuses(dock)["c"] == "labelled" and not dock.reviewed_button.isChecked()
    # reopening the photo shows the saved prediction again
    click_photo(dock, qtbot, "a")
    click_photo(dock, qtbot, "c")
    assert np.array_equal(dock.prediction_layer().array[0], said)


def test_a_model_trained_with_other_classes_is_refused_with_the_reason(window, qtbot, pairs, models):
    write_card_only(models, "two-class-net", [{"id": 1, "name": "grain", "colour": [200, 200, 200]},
                                              {"id": 2, "name": "pore", "colour": [0, 0, 255]}])
    dock = open_project(window, qtbot, pairs)
    click_photo(dock, qtbot, "b")
    with qtbot.waitSignal(dock.error, timeout=10000) as error:
        assert dock.predict()
    assert "trained with other classes" in error.args[0] and "3 blue-dye epoxy" in error.args[0]
    assert "trained with other classes" in dock.problems.text()
    assert dock.prediction_layer() is None and statuses(dock)["b"] == "unlabelled"


def test_add_to_training_set_and_train_with_this_project(window, qtbot, seed, monkeypatch):
    seen = []   # no training here (2 shared cores, CI time): the config that would train is what counts
    monkeypatch.setattr(model_dock, "train_model", lambda config, events, progress=None, cancel=None:
                        seen.append(config) or SimpleNamespace(entry=None, best_epoch=1, stopped_early=False))
    dock = open_project(window, qtbot, seed)
    assert dock.project.layout == "seed"
    click_photo(dock, qtbot, "c")   # a test photo
    assert dock.photos._row("c").text(2) == "test"
    window.annotator.editor.apply_mask(np.ones((1, H, W), bool), value=2)
    with qtbot.waitSignal(dock.status_changed, timeout=10000):
        qtbot.mouseClick(dock.save_button, Qt.MouseButton.LeftButton)
    assert (seed / "annotations_prepped_test" / "c.png").is_file()
    qtbot.mouseClick(dock.training_button, Qt.MouseButton.LeftButton)
    assert (seed / "images_prepped_train" / "c.png").is_file()
    assert np.all(np.asarray(Image.open(seed / "annotations_prepped_train" / "c.png")) == 2)
    assert dock.photos._row("c").text(2) == "train" and not dock.training_button.isEnabled()

    shown = {}

    def fill(dialog):
        qtbot.waitUntil(lambda: dialog._loading is None, timeout=20000)
        shown["task"] = dialog.task.currentText()
        dialog.name.setText("sandstone-retrained")
        return True

    window.model_dock.exec_dialog = fill
    with qtbot.waitSignal(window.model_dock.training_finished, timeout=20000):
        qtbot.mouseClick(dock.train_button, Qt.MouseButton.LeftButton)
    (config,) = seen
    assert shown["task"] == "thin_section" and config.task == "thin_section"
    assert config.data["sources"] == [str(seed)]
    # the project's test photos are held out (c, the only one, went to training); validation by fraction,
    # never the shipped config's photo names
    assert config.data["test"] == [] and config.data["validation"] == []


def test_predict_folder_shows_a_summary_and_fractions_per_photo(window, qtbot, pairs, models, monkeypatch,
                                                                tmp_path):
    write_card_only(models, "sandstone-net", thin_section_classes())
    asked = []

    def predict_folder(project, out, entry, progress=None, cancel=None):   # known fractions to check the summary
        asked.append((project.folder, out, entry.name))
        progress(0.5, "b.png")
        rows = [{"image": f"{n}.png", "width": W, "height": H, "porosity": p,
                 "fractions": {1: 10.0, 2: 20.0, 3: p, 4: 30.0, 5: 40.0 - p}} for n, p in (("a", 8.0), ("b", 12.0))]
        return rows, ["broken.png: cannot read image"]

    monkeypatch.setattr(work, "predict_folder", predict_folder)
    dock = open_project(window, qtbot, pairs)
    dock.ask_output_folder = lambda: tmp_path / "out"
    with qtbot.waitSignal(dock.folder_predicted, timeout=10000):
        assert dock.folder_button.isEnabled() and dock.predict_folder()
    assert asked == [(pairs, tmp_path / "out", "sandstone-net")]
    summary = dock.results.summary.text()
    assert summary.splitlines()[0] == (f"2 photos predicted into {tmp_path / 'out'}; porosity 8.0–12.0 % "
                                       "(mean 10.0 %); 1 photo skipped")
    assert "broken.png" in summary
    table = dock.results.table
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert headers == ["photo", "black", "darker", "blue-dye\nepoxy", "darker\nbright", "bright\nquartz"]
    assert table.horizontalHeaderItem(3).toolTip() == "3 blue-dye epoxy (visual porosity) % of the labelled pixels"
    assert [table.item(1, c).text() for c in (0, 3)] == ["b.png", "12.0"]
    assert dock.results.chart.heights(3) == [8.0, 12.0]
    assert dock.results.progress_row.isHidden() and dock.folder_button.isEnabled()


def test_ctviewer_thin_section_open_starts_the_gui_on_the_project(monkeypatch, pairs, tmp_path):
    from app import main

    started = []   # the real run_gui would wait in the event loop: the command line is what this test checks
    monkeypatch.setattr(main, "run_gui", lambda paths, demo=False, thin_section=False:
                        started.append((paths, thin_section)) or 0)
    assert main.main(["thin-section", "open", str(pairs)]) == 0
    assert started == [([str(pairs)], True)]
    assert work.looks_like_project(pairs) and not work.looks_like_project(pairs / "images" / "a.png")
    (tmp_path / "dicom").mkdir()
    (tmp_path / "dicom" / "1.dcm").write_bytes(b"")
    assert not work.looks_like_project(tmp_path / "dicom")
