"""Start thin-section labels from gray-level bins, with a live preview layer.

While the dialog is open the classes are shown as a label layer "gray-level bins (preview)";
moving σ or a threshold recomputes it ~100 ms after the last change. Apply turns the preview
into the edited labels (one undoable step when it replaces a layer's map); Cancel removes it.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QColorDialog, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout,
                               QHBoxLayout, QHeaderView, QLabel, QMessageBox, QTableWidget, QTableWidgetItem, QVBoxLayout)

from app.workers import run_worker
from ctviewer.data.labels import Label, LabelMap, LabelTable
from ctviewer.data.layers import LabelLayer
from ctviewer.imaging.bins import (PUBLISHED_THRESHOLDS, THIN_SECTION_THRESHOLDS, gray_level_bins, luminance,
                                   thin_section_table)

PREVIEW_NAME = "gray-level bins (preview)"
RESULT_NAME = "thin-section classes"
PREVIEW_DELAY_MS = 100
#: Up to this many pixels the bins are computed on the GUI thread: a 650x510 photo takes
#: 10-16 ms (σ 1-10, 2-core CPU); bigger photos go to a worker so a slider never stalls.
SYNC_PIXELS = 600_000


def _bins(gray, thresholds, sigma, progress=None, cancel=None) -> np.ndarray:
    return gray_level_bins(gray, thresholds, sigma)


def copy_table(table: LabelTable) -> LabelTable:
    return LabelTable([Label(lab.id, lab.name, tuple(lab.colour), lab.visible, lab.locked, lab.opacity)
                       for lab in table])


class GrayBinsDialog(QDialog):
    def __init__(self, annotator, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Gray-level bins")
        self.annotator = annotator
        self.study = annotator.study
        self.image = self.study.image if self.study is not None else None
        self.classes = thin_section_table()
        self.preview: LabelLayer | None = None
        self.result_layer: LabelLayer | None = None
        self._worker = None
        self._apply_when_ready = False
        self._gray = None
        if self.image is not None and self.image.is_photo:
            self._gray = luminance(self.image.array) if self.image.is_rgb else self.image.array
        self._build()
        self._timer = QTimer(self, singleShot=True, interval=PREVIEW_DELAY_MS)
        self._timer.timeout.connect(self.update_preview)
        self.classes.changed.connect(self._show_classes)
        self._show_classes()
        self.update_preview()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.sigma = QDoubleSpinBox(minimum=0.0, maximum=10.0, singleStep=0.1, decimals=1, value=1.0)
        self.sigma.setToolTip("Gaussian smoothing before binning, in pixels (0 = none)")
        self.sigma.valueChanged.connect(self._changed)
        form.addRow("Smoothing σ (px)", self.sigma)
        row = QHBoxLayout()
        self.thresholds = []
        for t in THIN_SECTION_THRESHOLDS:
            box = QDoubleSpinBox(minimum=0.001, maximum=0.999, singleStep=0.01, decimals=3, value=t)
            box.valueChanged.connect(self._changed)
            row.addWidget(box)
            self.thresholds.append(box)
        form.addRow("Thresholds (gray 0–1)", row)
        self.preset = QComboBox()
        self.preset.addItems(["Seed defaults (0.25 / 0.40 / 0.60 / 0.75)",
                              "As the published thin-section labels (… / 0.80)"])
        self.preset.setToolTip("The published label images were made with 0.80 at the top; "
                               "this reproduces them exactly")
        self.preset.activated.connect(self.use_preset)
        form.addRow("Preset", self.preset)
        layout.addLayout(form)
        self.message = QLabel("")
        self.message.setStyleSheet("color: #c0392b")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        self.class_table = QTableWidget(0, 3)
        self.class_table.setHorizontalHeaderLabels(["", "Id", "Class name"])
        self.class_table.verticalHeader().hide()
        self.class_table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.class_table.itemChanged.connect(self._class_renamed)
        self.class_table.cellDoubleClicked.connect(self._choose_class_colour)
        layout.addWidget(self.class_table)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Apply
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.apply_button = self.buttons.button(QDialogButtonBox.StandardButton.Apply)
        self.apply_button.clicked.connect(self.apply)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    # -- parameters ----------------------------------------------------------------------------
    def use_preset(self, index: int) -> None:
        values = (THIN_SECTION_THRESHOLDS, PUBLISHED_THRESHOLDS)[index]
        for box, value in zip(reversed(self.thresholds), reversed(values)):  # top first: stays increasing
            box.setValue(value)

    @property
    def threshold_values(self) -> tuple[float, ...]:
        return tuple(box.value() for box in self.thresholds)

    @property
    def valid(self) -> bool:
        return self._gray is not None and all(np.diff(self.threshold_values) > 0)

    def _validate(self) -> bool:
        if self._gray is None:
            self.message.setText("Gray-level bins work on photos; for a volume use Intensity bins.")
        elif not self.valid:
            self.message.setText("Thresholds must increase from left to right.")
        else:
            self.message.setText("")
        self.apply_button.setEnabled(self.valid)
        return self.valid

    def _changed(self, *_) -> None:
        if self._validate():
            self._timer.start()  # restarts: recompute once the slider rests

    # -- classes -------------------------------------------------------------------------------
    def _show_classes(self) -> None:
        self.class_table.blockSignals(True)
        self.class_table.setRowCount(len(self.classes))
        for row, lab in enumerate(self.classes):
            for col, text in ((0, ""), (1, str(lab.id)), (2, lab.name)):
                item = self.class_table.item(row, col)
                if item is None:
                    item = QTableWidgetItem()
                    flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                    item.setFlags(flags | Qt.ItemFlag.ItemIsEditable if col == 2 else flags)
                    self.class_table.setItem(row, col, item)
                item.setText(text)
            self.class_table.item(row, 0).setBackground(QColor(*lab.colour))
            self.class_table.item(row, 0).setToolTip("Double-click to change the colour")
        self.class_table.blockSignals(False)

    def _class_id(self, row: int) -> int:
        return int(self.class_table.item(row, 1).text())

    def _class_renamed(self, item: QTableWidgetItem) -> None:
        name = item.text().strip()
        if item.column() == 2 and name:
            self.classes.update(self._class_id(item.row()), name=name)
        else:
            self._show_classes()

    def _choose_class_colour(self, row: int, col: int) -> None:
        if col != 0:
            return
        label_id = self._class_id(row)
        colour = QColorDialog.getColor(QColor(*self.classes[label_id].colour), self, "Class colour")
        if colour.isValid():
            self.set_class_colour(label_id, colour)

    def set_class_colour(self, label_id: int, colour: QColor) -> None:
        self.classes.update(label_id, colour=(colour.red(), colour.green(), colour.blue()))

    # -- preview -------------------------------------------------------------------------------
    @property
    def computing(self) -> bool:
        return self._worker is not None

    def update_preview(self) -> None:
        self._timer.stop()
        if not self._validate():
            return
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        args = (self._gray, self.threshold_values, self.sigma.value())
        if self._gray.size <= SYNC_PIXELS:
            self._show_preview(_bins(*args))
        else:
            self._worker = run_worker(_bins, *args, on_result=self._preview_ready)

    def _preview_ready(self, ids) -> None:
        if self._worker is None or self.sender() is not self._worker.signals:
            return  # an older run, already replaced by a newer one
        self._worker = None
        self._show_preview(ids)
        if self._apply_when_ready:
            self.apply()

    def _show_preview(self, ids: np.ndarray) -> None:
        if self.preview is not None:
            self.preview.array[...] = ids
            self.preview.data_changed.emit(None)
            return
        editing = self.annotator.layer
        labels = LabelMap(self.image.with_array(ids, window=None, name=PREVIEW_NAME), self.classes)
        self.preview = LabelLayer(labels, name=PREVIEW_NAME)
        self.study.layers.append(self.preview)
        keeper = getattr(self.parent(), "keeper", None)
        if keeper is not None:   # a preview goes with the dialog: switching photos need not ask about it
            keeper.mark_scratch(self.preview)
        if self.annotator.layer is self.preview:
            # the annotator edits the first label layer added to a study; a preview is not for painting
            self.annotator.set_layer(editing)

    def _remove_preview(self) -> None:
        if self.preview is not None and self.preview in self.study.layers:
            self.study.layers.remove(self.preview)
        self.preview = None

    # -- apply / cancel ------------------------------------------------------------------------
    def apply(self) -> LabelLayer | None:
        """Make the classes the edited labels; returns the layer that holds them (None: nothing done)."""
        self._apply_when_ready = False
        if not self.valid:
            return None
        if self._timer.isActive() or self.preview is None:
            self.update_preview()
        if self._worker is not None:  # a big photo: apply once the preview is current
            self._apply_when_ready = True
            return None
        ids = self.preview.array.copy()
        target = self.annotator.layer
        choice = "new"
        if target is not None and target is not self.preview and target.array.shape == ids.shape:
            choice = "replace" if not target.array.any() else self.ask_replace(target)
        if choice is None:
            return None
        self._remove_preview()
        if choice == "replace":
            self.annotator.editor.replace_all(ids, "gray-level bins")
            for lab in self.classes:
                if lab.id not in target.labels.table:
                    target.labels.table.add(lab.id)
                target.labels.table.update(lab.id, name=lab.name, colour=tuple(lab.colour))
            self.result_layer = target
        else:
            labels = LabelMap(self.image.with_array(ids, window=None, name=RESULT_NAME), copy_table(self.classes))
            self.result_layer = self.annotator.new_layer(RESULT_NAME, labels)
        self.accept()
        return self.result_layer

    def ask_replace(self, layer: LabelLayer) -> str | None:
        """'replace' the painted layer (undoable), put the classes in a 'new' layer, or None."""
        box = QMessageBox(QMessageBox.Icon.Question, "Gray-level bins",
                          f"“{layer.name}” already holds labels. Replace them with the classes "
                          f"(Undo brings them back), or put the classes in a new layer?", parent=self)
        replace = box.addButton("Replace", QMessageBox.ButtonRole.AcceptRole)
        new = box.addButton("New layer", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        clicked = box.clickedButton()
        return "replace" if clicked is replace else "new" if clicked is new else None

    def done(self, result: int) -> None:
        self._timer.stop()
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        self._remove_preview()
        super().done(result)
