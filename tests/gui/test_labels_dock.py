"""The labels dock: table edits reach the LabelTable, statistics match the core, options bind both ways."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from app.annotation import Annotator
from app.docks.labels_dock import LOCK, ML, MEAN, NAME, NO_LAYER_HINT, PERCENT, SHOW, SWATCH, VOXELS, LabelsDock
from ctviewer.data import LabelLayer, LabelMap, Study, Volume
from ctviewer.data.labels import LabelTable
from ctviewer.imaging.label_stats import label_statistics

LIVER = 5  # the stamp study's label: 10 x 15 x 20 voxels of 2.5 x 1 x 1 mm, all at 40 HU


@pytest.fixture
def annotator(stamp_study):
    a = Annotator()
    a.set_study(stamp_study)
    return a


@pytest.fixture
def dock(qtbot, annotator):
    d = LabelsDock(annotator)
    qtbot.addWidget(d)
    qtbot.waitUntil(lambda: not d.computing and bool(d.stats))  # the first statistics
    return d


def text(dock, label_id, col):
    return dock.table.item(dock.row_of(label_id), col).text()


def test_rename_recolour_hide_lock_change_the_label_table(dock, annotator):
    table = annotator.layer.labels.table
    row = dock.row_of(LIVER)
    dock.table.item(row, NAME).setText("liver")
    assert table[LIVER].name == "liver"
    dock.table.item(row, SHOW).setCheckState(Qt.CheckState.Unchecked)
    assert table[LIVER].visible is False
    dock.table.item(row, LOCK).setCheckState(Qt.CheckState.Checked)
    assert table[LIVER].locked is True
    dock.set_colour(LIVER, QColor(10, 20, 30))
    assert table[LIVER].colour == (10, 20, 30)
    assert dock.table.item(row, SWATCH).background().color() == QColor(10, 20, 30)
    dock.table.item(row, NAME).setText("   ")  # an empty name is refused, the old one stays
    assert table[LIVER].name == "liver" and text(dock, LIVER, NAME) == "liver"


def test_rows_follow_table_changes_made_elsewhere(dock, annotator):
    table = annotator.layer.labels.table
    table.update(LIVER, name="spleen", visible=False)
    assert text(dock, LIVER, NAME) == "spleen"
    assert dock.table.item(dock.row_of(LIVER), SHOW).checkState() == Qt.CheckState.Unchecked
    table.add(9, "kidney")
    assert dock.table.rowCount() == 2 and text(dock, 9, NAME) == "kidney"


def test_add_and_remove_labels(dock, annotator, qtbot):
    table = annotator.layer.labels.table
    before = annotator.layer.array.copy()
    qtbot.mouseClick(dock.buttons["Add"], Qt.MouseButton.LeftButton)
    assert table.ids == [LIVER, LIVER + 1] and annotator.label == LIVER + 1
    dock.table.selectRow(dock.row_of(LIVER))
    qtbot.mouseClick(dock.buttons["Remove"], Qt.MouseButton.LeftButton)
    assert table.ids == [LIVER + 1] and dock.row_of(LIVER) == -1
    assert "3,000 voxels keep id 5" in dock.status.text()
    assert annotator.label == LIVER + 1
    np.testing.assert_array_equal(annotator.layer.array, before)  # only the table changed


@pytest.mark.parametrize("suffix", [".txt", ".json"])
def test_export_import_round_trip(dock, annotator, tmp_path, suffix):
    table = annotator.layer.labels.table
    table.update(LIVER, name='liver "left lobe"', colour=(1, 2, 3), visible=False)
    table.add(7, "spine", (200, 100, 50))
    path = tmp_path / f"labels{suffix}"
    assert dock.export_table(path)
    if suffix == ".txt":
        assert "ITK-SnAP Label Description File" in path.read_text()
    table.update(LIVER, name="x", colour=(9, 9, 9), visible=True)
    table.remove(7)
    assert dock.import_table(path)
    assert table.ids == [LIVER, 7]
    assert table[LIVER].colour == (1, 2, 3) and table[LIVER].visible is False
    assert table[7].name == "spine" and text(dock, 7, NAME) == "spine"
    assert LabelTable.read(path)[LIVER].colour == (1, 2, 3)


def test_malformed_table_file_emits_one_error_line(dock, annotator, tmp_path, qtbot):
    bad = tmp_path / "bad.txt"
    bad.write_text('    1   255 0 0 1 1 1 "ok"\n    2  red green blue\n')
    errors = []
    dock.error.connect(errors.append)
    assert dock.import_table(bad) is False
    assert dock.import_table(tmp_path / "missing.txt") is False
    assert len(errors) == 2 and all("\n" not in e for e in errors)
    assert "bad.txt" in errors[0] and "missing.txt" in errors[1]
    assert annotator.layer.labels.table.ids == [LIVER]  # nothing half-imported


def test_statistics_match_label_statistics(dock, annotator):
    expected = {s.id: s for s in label_statistics(annotator.study.image, annotator.layer.labels)}
    s = expected[LIVER]
    assert (s.voxels, s.volume_ml) == (3000, pytest.approx(7.5))
    assert text(dock, LIVER, VOXELS) == "3,000"
    assert text(dock, LIVER, ML) == "7.50"
    assert text(dock, LIVER, MEAN) == "40.0 ± 0.0"
    assert dock.table.isColumnHidden(PERCENT) and not dock.table.isColumnHidden(ML)


def test_statistics_recomputed_after_edits_and_on_refresh(dock, annotator, qtbot):
    mask = np.zeros(annotator.layer.array.shape, bool)
    mask[0, 0:10, 0:10] = True  # 100 voxels of air
    annotator.set_label(LIVER)
    annotator.editor.apply_mask(mask)
    assert dock._stats_timer.isActive()  # debounced: nothing starts until the painting pauses
    qtbot.waitUntil(lambda: dock.stats[LIVER].voxels == 3100, timeout=5000)
    assert text(dock, LIVER, VOXELS) == "3,100"
    annotator.layer.array[0, 0:10, 0:10] = 0  # changed behind the editor's back: Refresh sees it
    dock.refresh()
    assert dock.computing and "computing" in dock.status.text()
    qtbot.waitUntil(lambda: not dock.computing)
    assert dock.stats[LIVER].voxels == 3000 and dock.status.text() == ""


def test_photo_shows_class_fraction(qtbot):
    rgb = np.zeros((1, 20, 40, 3), np.uint8)
    image = Volume(rgb, modality="XC", name="thin section")
    ids = np.zeros((1, 20, 40), np.uint8)
    ids[..., :10] = 1   # 25 %
    ids[..., 10:] = 2   # 75 %
    study = Study(image)
    study.layers.append(LabelLayer(LabelMap(image.with_array(ids))))
    annotator = Annotator()
    annotator.set_study(study)
    dock = LabelsDock(annotator)
    qtbot.addWidget(dock)
    qtbot.waitUntil(lambda: not dock.computing and bool(dock.stats))
    assert text(dock, 1, PERCENT) == "25.00" and text(dock, 2, PERCENT) == "75.00"
    assert text(dock, 2, VOXELS) == "600"
    assert dock.table.isColumnHidden(ML) and dock.table.isColumnHidden(MEAN)
    assert dock.table.horizontalHeaderItem(VOXELS).text() == "Pixels"


def test_active_label_follows_selection_both_ways(dock, annotator):
    table = annotator.layer.labels.table
    table.add(7)
    table.add(9)
    dock.table.selectRow(dock.row_of(9))
    assert annotator.label == 9
    annotator.set_label(7)
    assert dock.table.currentRow() == dock.row_of(7)
    annotator.set_label(LIVER)
    assert dock.current_label_id() == LIVER


def test_hint_and_new_layer_without_label_layers(qtbot):
    annotator = Annotator()  # the window starts with no study
    dock = LabelsDock(annotator)
    qtbot.addWidget(dock)
    assert dock.hint.isVisibleTo(dock) and dock.hint.text() == NO_LAYER_HINT
    assert not dock.buttons["Add"].isEnabled()
    with qtbot.waitSignal(dock.error):
        qtbot.mouseClick(dock.new_layer_button, Qt.MouseButton.LeftButton)
    study = Study(Volume(np.zeros((4, 8, 8), np.int16), modality="CT"))
    annotator.set_study(study)  # no label layer in it: the layer stays None
    qtbot.mouseClick(dock.new_layer_button, Qt.MouseButton.LeftButton)
    assert annotator.layer is not None and annotator.layer in study.layers
    assert not dock.hint.isVisibleTo(dock) and dock.table.rowCount() == 1
    qtbot.waitUntil(lambda: not dock.computing)


# -- paint options -----------------------------------------------------------------------------
def test_paint_options_change_the_settings(dock, annotator):
    options = dock.paint_options
    options.size.setValue(12.5)
    assert annotator.settings.radius == 12.5
    options.size_slider.setValue(options.size_slider.maximum())
    assert annotator.settings.radius == 200 and options.size.value() == 200
    options.unit.setCurrentText("mm")
    options.sphere.setChecked(True)
    options.fill_3d.setChecked(True)
    options.over.setCurrentIndex(options.over.findData("label"))
    options.over_label.setValue(LIVER)
    options.threshold.setChecked(True)
    options.value_min.setValue(0)
    options.value_max.setValue(80)
    s = annotator.settings
    assert (s.unit, s.sphere, s.fill_3d, s.over, s.over_label, s.threshold) == ("mm", True, True, "label", 5, True)
    assert s.value_range == (0, 80)
    assert annotator.editor.rules.value_range == (0, 80)
    options.value_min.setValue(120)  # past the max: the max follows, the range stays valid
    assert annotator.settings.value_range == (120, 120)


def test_paint_options_follow_the_settings(dock, annotator):
    options = dock.paint_options
    assert (options.value_min.value(), options.value_max.value()) == (-100, 300)  # CT default
    annotator.update_settings(radius=8)
    annotator.grow_brush(1.5)  # the ] key
    assert options.size.value() == annotator.settings.radius == 12
    annotator.update_settings(over="background", sphere=True, threshold=True, value_range=(-50, 150), unit="mm")
    assert options.over.currentData() == "background" and not options.over_label.isEnabled()
    assert options.sphere.isChecked() and options.threshold.isChecked() and options.unit.currentText() == "mm"
    assert (options.value_min.value(), options.value_max.value()) == (-50, 150)


def test_paint_options_on_a_photo_use_luminance(qtbot):
    annotator = Annotator()
    annotator.set_study(Study(Volume(np.zeros((1, 8, 8, 3), np.uint8), modality="XC")))
    dock = LabelsDock(annotator)
    qtbot.addWidget(dock)
    options = dock.paint_options
    assert (options.value_min.minimum(), options.value_max.maximum()) == (0, 255)
    assert (options.value_min.value(), options.value_max.value()) == (0, 255)
    annotator.set_study(Study(Volume(np.zeros((2, 8, 8), np.int16), modality="CT")))  # no labels: no layer change
    assert options.value_min.minimum() < -1000
    assert (options.value_min.value(), options.value_max.value()) == (-100, 300)
