"""Density objects in 3D: split the cube into objects 1–n, then choose which the 3D panel shows.

Splitting (:func:`ctviewer.workflows.soil.objects.density_objects`) runs in a worker and adds a label
layer "density objects"; the 3D panel (``View3D`` in label mode) extracts one surface per object in its
own worker and keeps them per label map, so the check boxes (the seed's ``--object 1 2``) and the
opacity only change the table's ``visible`` / ``opacity`` and never extract again. The clipping plane
cuts the surfaces in the renderer (no new geometry either).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGridLayout, QGroupBox,
                               QHBoxLayout, QLabel, QPushButton, QSlider, QSpinBox, QVBoxLayout, QWidget)

from app.soil.task_row import TaskRow
from ctviewer.data.layers import LabelLayer

LAYER_NAME = "density objects"
METHODS = {"Equal-width bins (the seed)": "equal", "Multi-Otsu": "otsu"}
#: clip axis title -> array axis (z, y, x)
CLIP_AXES = {"No clipping": None, "Across slices": 0, "Across rows": 1, "Across columns": 2}


def _split(volume, n, method, progress=None, cancel=None):
    from ctviewer.workflows.soil.objects import density_objects

    return density_objects(volume, n=n, method=method, progress=progress, cancel=cancel)


def clip_plane(volume, axis: int, fraction: float, keep_far: bool = False):
    """(origin, normal) in LPS mm of a plane across ``axis`` at ``fraction`` of the volume's extent.

    The normal points to the part that stays: the far part (higher indices) or the near part.
    """
    import numpy as np

    index = np.zeros(3)
    index[axis] = fraction * (volume.shape[axis] - 1)
    step = np.zeros(3)
    step[axis] = 1.0
    origin = volume.index_to_lps(index)
    normal = volume.index_to_lps(index + step) - origin
    normal /= np.linalg.norm(normal)
    return tuple(origin), tuple(normal if keep_far else -normal)


class ObjectsPanel(QWidget):
    def __init__(self, window, parent=None):
        super().__init__(parent)
        self.main = window
        self.layer: LabelLayer | None = None
        self.method = QComboBox()
        self.method.addItems(list(METHODS))
        self.count = QSpinBox()
        self.count.setRange(2, 12)
        self.count.setValue(6)
        self.method.currentTextChanged.connect(   # scikit-image's multi-Otsu stops at five classes
            lambda text: self.count.setMaximum(5 if METHODS[text] == "otsu" else 12))
        self.split_button = QPushButton("Split")
        self.split_button.clicked.connect(self.split)
        self.task = TaskRow()
        top = QFormLayout()
        top.addRow("Method", self.method)
        top.addRow("Objects", self.count)
        self.objects_box = QGroupBox("Show in 3D")
        self.checks: dict[int, QCheckBox] = {}
        self._grid = QGridLayout(self.objects_box)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(5, 100)
        self.opacity.setValue(100)
        self.opacity.valueChanged.connect(self._set_opacity)
        self.opacity_of = QComboBox()   # "all objects", or one of them: see pores through the matrix
        self.opacity_of.addItem("all objects", None)
        self.opacity_of.currentIndexChanged.connect(self._opacity_target_changed)
        self.clip_axis = QComboBox()
        self.clip_axis.addItems(list(CLIP_AXES))
        self.clip_pos = QSlider(Qt.Orientation.Horizontal)
        self.clip_pos.setRange(0, 1000)
        self.clip_pos.setValue(500)
        self.clip_far = QCheckBox("keep the far side")
        for signal in (self.clip_axis.currentIndexChanged, self.clip_pos.valueChanged, self.clip_far.toggled):
            signal.connect(lambda *_: self._apply_clip())
        view3d = QFormLayout()
        view3d.addRow("Opacity of", self.opacity_of)
        view3d.addRow("Opacity", self.opacity)
        view3d.addRow("Clip", self.clip_axis)
        view3d.addRow("Position", self.clip_pos)
        view3d.addRow("", self.clip_far)
        self.reset_button = QPushButton("Reset camera")
        self.reset_button.clicked.connect(self._reset_camera)
        self.shot_button = QPushButton("Save screenshot…")
        self.shot_button.clicked.connect(self.screenshot_dialog)
        buttons = QHBoxLayout()
        buttons.addWidget(self.reset_button)
        buttons.addWidget(self.shot_button)
        self.status3d = QLabel("")
        self.status3d.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.split_button)
        layout.addWidget(self.task)
        layout.addWidget(self.objects_box)
        layout.addLayout(view3d)
        layout.addLayout(buttons)
        layout.addWidget(self.status3d)
        layout.addStretch(1)
        if self.view3d is not None:
            self.view3d.message.connect(self.status3d.setText)
        else:
            self.status3d.setText("This window has no 3D panel.")
        self.set_study(window.study)

    @property
    def view3d(self):
        return self.main.viewer.view3d

    # -- state ---------------------------------------------------------------------------------
    def set_study(self, study) -> None:
        grey = study is not None and not study.image.is_rgb
        self.split_button.setEnabled(grey)
        self.clip_axis.setCurrentIndex(0)   # a plane placed on the last study would cut this one anywhere
        found = [layer for layer in study.layers.by_kind("labels") if layer.name == LAYER_NAME] if study else []
        self._show_objects(found[-1] if found else None)

    def _show_objects(self, layer: LabelLayer | None) -> None:
        self.layer = layer
        for box in self.checks.values():
            self._grid.removeWidget(box)
            box.deleteLater()
        self.checks = {}
        self.opacity_of.blockSignals(True)
        while self.opacity_of.count() > 1:
            self.opacity_of.removeItem(1)
        self.opacity_of.setCurrentIndex(0)
        self.opacity_of.blockSignals(False)
        if layer is None:
            return
        table = layer.labels.table
        for n, lab in enumerate(table):
            box = QCheckBox(f"{lab.id}  {lab.name}")
            swatch = QPixmap(12, 12)
            swatch.fill(QColor(*lab.colour))
            box.setIcon(QIcon(swatch))
            box.setChecked(lab.visible)
            box.toggled.connect(lambda on, i=lab.id: self.show_object(i, on))
            self._grid.addWidget(box, n // 2, n % 2)
            self.checks[lab.id] = box
            self.opacity_of.addItem(f"{lab.id}  {lab.name}", lab.id)

    # -- work ----------------------------------------------------------------------------------
    def split(self) -> None:
        study = self.main.study
        if study is None or self.task.running:
            return
        method = METHODS[self.method.currentText()]
        self.task.start("splitting into objects", _split, study.image, self.count.value(), method,
                        on_result=lambda labels: self._split_done(study, labels))

    def _split_done(self, study, labels) -> None:
        if study is not self.main.study:   # the user opened something else meanwhile
            return
        for old in [layer for layer in study.layers.by_kind("labels") if layer.name == LAYER_NAME]:
            study.layers.remove(old)
        # pores and the densest object shown, the matrix between them hidden: ticked, its surfaces
        # enclose everything else in a solid block (the seed's `--object 1 2` was a choice, too)
        ids = labels.table.ids
        for label_id in ids:
            if label_id not in (min(ids), max(ids)):
                labels.table.update(label_id, visible=False)
        layer = LabelLayer(labels, name=LAYER_NAME)
        self._show_objects(layer)
        if self.view3d is not None:
            self.view3d.set_mode("labels")
        study.layers.append(layer)   # the 3D panel shows the topmost label layer's surfaces
        self.task.say(f"{len(labels.table)} objects; tick the ones to show in 3D.")

    # -- 3D controls -----------------------------------------------------------------------------
    def show_object(self, label_id: int, on: bool) -> None:
        if self.layer is not None:
            self.layer.labels.table.update(label_id, visible=bool(on))   # the 3D panel re-colours, no re-extraction

    def _set_opacity(self, value: int) -> None:
        if self.layer is None:
            return
        table = self.layer.labels.table
        target = self.opacity_of.currentData()
        for lab in table:
            if target is None or lab.id == target:
                lab.opacity = value / 100.0
        table.changed.emit()   # one re-colour for all objects

    def _opacity_target_changed(self, _index: int) -> None:
        """The slider shows the chosen object's opacity (the first object's for "all")."""
        if self.layer is None:
            return
        target = self.opacity_of.currentData()
        labs = [lab for lab in self.layer.labels.table if target is None or lab.id == target]
        if labs:
            self.opacity.blockSignals(True)
            self.opacity.setValue(round(labs[0].opacity * 100))
            self.opacity.blockSignals(False)

    def _apply_clip(self) -> None:
        if self.view3d is None:
            return
        axis = CLIP_AXES[self.clip_axis.currentText()]
        self.clip_pos.setEnabled(axis is not None)
        self.clip_far.setEnabled(axis is not None)
        study = self.main.study
        if axis is None or study is None:
            self.view3d.set_clip_plane(None)
            return
        self.view3d.set_clip_plane(*clip_plane(study.image, axis, self.clip_pos.value() / 1000.0,
                                               self.clip_far.isChecked()))

    def _reset_camera(self) -> None:
        if self.view3d is not None:
            self.view3d.reset_view()

    def ask_screenshot_path(self) -> Path | None:
        """Where to save the 3D picture (tests replace this)."""
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", "objects.png", "PNG images (*.png)")
        if not path:
            return None
        return Path(path if path.lower().endswith(".png") else path + ".png")

    def screenshot_dialog(self) -> None:
        if self.view3d is None:
            return
        path = self.ask_screenshot_path()
        if path is None:
            return
        try:
            self.view3d.save_screenshot(path)
            self.status3d.setText(f"Saved {path}")
        except OSError as exc:
            self.status3d.setText(f"Could not save the screenshot: {exc}")

    def shutdown(self) -> None:
        self.task.cancel()
