"""Start labels from bins: the thin-section gray-level dialog (live preview) and CT intensity bins."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtGui import QColor

from app.annotation import Annotator
from app.dialogs.bins_dialog import PREVIEW_NAME, RESULT_NAME, GrayBinsDialog
from app.dialogs.intensity_bins_dialog import IntensityBinsDialog
from ctviewer.data import Study, Volume
from ctviewer.imaging.bins import THIN_SECTION_THRESHOLDS, gray_level_bins, luminance


@pytest.fixture
def photo_annotator():
    """A photo whose gray level ramps from black (left) to white (right): every class is a band."""
    ramp = np.linspace(0, 255, 160).astype(np.uint8)
    rgb = np.broadcast_to(ramp[None, None, :, None], (1, 60, 160, 3)).copy()
    a = Annotator()
    a.set_study(Study(Volume(rgb, modality="XC", name="thin section")))
    return a


def preview_layers(annotator):
    return [layer for layer in annotator.study.layers if layer.name == PREVIEW_NAME]


def expected_ids(annotator, thresholds, sigma):
    return gray_level_bins(luminance(annotator.study.image.array), thresholds, sigma)


def open_dialog(qtbot, annotator) -> GrayBinsDialog:
    dialog = GrayBinsDialog(annotator)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_preview_appears_as_a_layer_and_follows_the_thresholds(qtbot, photo_annotator):
    dialog = open_dialog(qtbot, photo_annotator)
    (preview,) = preview_layers(photo_annotator)
    assert photo_annotator.layer is None  # a preview is shown, not painted on
    np.testing.assert_array_equal(preview.array, expected_ids(photo_annotator, THIN_SECTION_THRESHOLDS, 1.0))
    assert set(np.unique(preview.array)) == {1, 2, 3, 4, 5}
    assert [lab.name for lab in preview.labels.table][2] == "blue-dye epoxy (visual porosity)"
    dialog.thresholds[0].setValue(0.1)
    dialog.sigma.setValue(0.0)
    wanted = expected_ids(photo_annotator, (0.1, 0.4, 0.6, THIN_SECTION_THRESHOLDS[3]), 0.0)
    qtbot.waitUntil(lambda: np.array_equal(preview.array, wanted), timeout=2000)
    assert preview_layers(photo_annotator) == [preview]  # updated in place, never a second layer


def test_thresholds_not_increasing_disable_apply(qtbot, photo_annotator):
    dialog = open_dialog(qtbot, photo_annotator)
    dialog.thresholds[1].setValue(0.2)  # below the first
    assert "increase" in dialog.message.text() and not dialog.apply_button.isEnabled()
    assert dialog.apply() is None and dialog.isVisible()
    dialog.thresholds[1].setValue(0.3)
    assert dialog.message.text() == "" and dialog.apply_button.isEnabled()


def test_cancel_removes_the_preview(qtbot, photo_annotator):
    dialog = open_dialog(qtbot, photo_annotator)
    assert preview_layers(photo_annotator)
    dialog.reject()
    assert preview_layers(photo_annotator) == [] and len(photo_annotator.study.layers) == 0


def test_apply_without_a_layer_makes_a_new_one_with_the_class_names(qtbot, photo_annotator):
    dialog = open_dialog(qtbot, photo_annotator)
    dialog.class_table.item(0, 2).setText("opaque minerals")
    dialog.set_class_colour(5, QColor(1, 2, 3))
    layer = dialog.apply()
    assert layer is photo_annotator.layer and layer.name == RESULT_NAME
    assert [lay.name for lay in photo_annotator.study.layers] == [RESULT_NAME]
    table = layer.labels.table
    assert table[1].name == "opaque minerals" and table[5].colour == (1, 2, 3)
    np.testing.assert_array_equal(layer.array, expected_ids(photo_annotator, THIN_SECTION_THRESHOLDS, 1.0))
    assert not dialog.isVisible()


def test_apply_into_the_edited_layer_is_one_undoable_edit(qtbot, photo_annotator):
    layer = photo_annotator.new_layer("my labels")
    layer.array[0, :5, :5] = 1  # painted: the dialog asks first
    dialog = open_dialog(qtbot, photo_annotator)
    asked = []
    dialog.ask_replace = lambda target: asked.append(target) or "replace"
    assert dialog.apply() is layer
    assert asked == [layer] and preview_layers(photo_annotator) == []
    np.testing.assert_array_equal(layer.array, expected_ids(photo_annotator, THIN_SECTION_THRESHOLDS, 1.0))
    assert layer.labels.table[3].name == "blue-dye epoxy (visual porosity)"
    photo_annotator.editor.undo()
    assert layer.array[0, :5, :5].tolist() == [[1] * 5] * 5 and layer.array.sum() == 25


def test_declining_to_replace_puts_the_classes_in_a_new_layer(qtbot, photo_annotator):
    painted = photo_annotator.new_layer("my labels")
    painted.array[0, 0, 0] = 1
    dialog = open_dialog(qtbot, photo_annotator)
    dialog.ask_replace = lambda target: "new"
    layer = dialog.apply()
    assert layer is not painted and layer.name == RESULT_NAME and painted.array.sum() == 1
    dialog2 = open_dialog(qtbot, photo_annotator)
    dialog2.ask_replace = lambda target: None  # the user pressed Cancel in the question
    assert dialog2.apply() is None and dialog2.isVisible() and preview_layers(photo_annotator)


def test_preview_of_a_thin_section_photo_is_fast_enough_for_the_gui_thread(qtbot):
    """650x510 photos are binned on the GUI thread: it must stay well under the 50 ms budget."""
    rgb = np.random.default_rng(0).integers(0, 256, (1, 510, 650, 3), dtype=np.uint8)
    annotator = Annotator()
    annotator.set_study(Study(Volume(rgb, modality="XC")))
    dialog = GrayBinsDialog(annotator)
    qtbot.addWidget(dialog)
    assert not dialog.computing
    times = []
    for sigma in (1.0, 3.0, 10.0):
        dialog.sigma.setValue(sigma)
        start = time.perf_counter()
        dialog.update_preview()
        times.append(time.perf_counter() - start)
    assert min(times) < 0.05


def test_big_photos_are_binned_in_a_worker_and_apply_waits_for_it(qtbot, photo_annotator, monkeypatch):
    monkeypatch.setattr("app.dialogs.bins_dialog.SYNC_PIXELS", 0)
    dialog = open_dialog(qtbot, photo_annotator)
    assert dialog.computing and preview_layers(photo_annotator) == []
    qtbot.waitUntil(lambda: not dialog.computing)
    dialog.thresholds[3].setValue(0.9)
    assert dialog.apply() is None and dialog.computing  # applies once the current preview is in
    qtbot.waitUntil(lambda: dialog.result_layer is not None)
    np.testing.assert_array_equal(dialog.result_layer.array,
                                  expected_ids(photo_annotator, (0.25, 0.4, 0.6, 0.9), 1.0))
    assert preview_layers(photo_annotator) == []


# -- intensity bins ----------------------------------------------------------------------------
def ramp_annotator(values: np.ndarray) -> Annotator:
    a = Annotator()
    a.set_study(Study(Volume(values, modality="CT", name="soil")))
    return a


def test_equal_width_bins_give_n_labels_on_a_ramp(qtbot):
    ramp = np.broadcast_to(np.arange(60, dtype=np.int16)[None, None, :], (4, 5, 60)).copy()
    annotator = ramp_annotator(ramp)
    dialog = IntensityBinsDialog(annotator)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.bins.value() == 6
    dialog.bins.setValue(4)
    dialog.apply()
    qtbot.waitUntil(lambda: dialog.result_layer is not None)
    layer = dialog.result_layer
    assert layer is annotator.layer and layer.name == "objects"
    assert np.unique(layer.array).tolist() == [1, 2, 3, 4]
    assert layer.labels.table.ids == [1, 2, 3, 4]
    assert not dialog.isVisible()


def test_multi_otsu_classes(qtbot):
    values = np.zeros((3, 10, 30), np.int16)
    values[..., 10:20], values[..., 20:] = 500, 1000
    annotator = ramp_annotator(values)
    dialog = IntensityBinsDialog(annotator)
    qtbot.addWidget(dialog)
    dialog.method.setCurrentIndex(dialog.method.findData("otsu"))
    assert dialog.bins.maximum() == 5
    dialog.bins.setValue(3)
    dialog.apply()
    qtbot.waitUntil(lambda: dialog.result_layer is not None)
    assert dialog.result_layer.name == "Otsu classes"
    assert np.unique(dialog.result_layer.array[0, 0]).tolist() == [1, 2, 3]


def test_cancel_stops_the_binning(qtbot, monkeypatch):
    def slow_bins(image, n, method, progress, cancel):
        while True:  # stands in for a big volume: only Cancel ends it
            progress(0.5, "Sorting voxels into bins")
            time.sleep(0.01)

    monkeypatch.setattr("app.dialogs.intensity_bins_dialog.intensity_bins", slow_bins)
    annotator = ramp_annotator(np.arange(24, dtype=np.int16).reshape(2, 3, 4))
    dialog = IntensityBinsDialog(annotator)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.apply()
    assert dialog.running and not dialog.apply_button.isEnabled()
    qtbot.waitUntil(lambda: dialog.progress.value() == 500)
    dialog.cancel()
    qtbot.waitUntil(lambda: not dialog.running)
    assert dialog.message.text() == "Cancelled." and dialog.isVisible() and annotator.layer is None
    dialog.cancel()  # nothing runs: Cancel closes
    assert not dialog.isVisible()


def test_a_constant_volume_shows_the_input_error(qtbot):
    annotator = ramp_annotator(np.full((2, 4, 4), 7, np.int16))
    dialog = IntensityBinsDialog(annotator)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.apply()
    qtbot.waitUntil(lambda: not dialog.running)
    assert "all voxels have the value 7" in dialog.message.text()
    assert dialog.isVisible() and dialog.apply_button.isEnabled() and annotator.layer is None


def test_gray_bins_on_a_volume_say_what_to_use_instead(qtbot):
    annotator = ramp_annotator(np.arange(24, dtype=np.int16).reshape(2, 3, 4))
    dialog = GrayBinsDialog(annotator)
    qtbot.addWidget(dialog)
    assert "Intensity bins" in dialog.message.text() and not dialog.apply_button.isEnabled()
    assert dialog.apply() is None and len(annotator.study.layers) == 0


def test_published_preset_sets_the_top_threshold_to_080(qtbot, photo_annotator):
    from app.dialogs.bins_dialog import GrayBinsDialog
    from ctviewer.imaging.bins import PUBLISHED_THRESHOLDS

    dialog = GrayBinsDialog(photo_annotator)
    qtbot.addWidget(dialog)
    dialog.use_preset(1)
    assert dialog.threshold_values == PUBLISHED_THRESHOLDS
    dialog.use_preset(0)
    assert dialog.threshold_values[-1] == 0.75
