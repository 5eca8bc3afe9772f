"""Brush, fill and threshold-paint options, bound both ways to ``annotator.settings``.

The widget writes through ``annotator.update_settings`` and redraws from ``settings_changed``,
so a size changed elsewhere (the [ and ] keys) shows here too.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QSlider,
                               QSpinBox, QWidget)

from app.annotation import MAX_RADIUS as SIZE_MAX
from app.annotation import MIN_RADIUS as SIZE_MIN

_SLIDER_STEPS = 1000
OVER_CHOICES = (("everything", "all"), ("only background", "background"), ("only label", "label"))


# The slider is logarithmic: users need 0.5 px steps for fine work and 200 px for big strokes.
def _size_to_slider(size: float) -> int:
    size = min(max(size, SIZE_MIN), SIZE_MAX)
    return round(_SLIDER_STEPS * math.log(size / SIZE_MIN) / math.log(SIZE_MAX / SIZE_MIN))


def _slider_to_size(pos: int) -> float:
    size = SIZE_MIN * (SIZE_MAX / SIZE_MIN) ** (pos / _SLIDER_STEPS)
    return round(size * 2) / 2  # half-pixel steps, as the spin box


class PaintOptions(QWidget):
    def __init__(self, annotator, parent=None):
        super().__init__(parent)
        self.annotator = annotator
        self._image = None
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)

        self.size = QDoubleSpinBox()
        self.size.setRange(SIZE_MIN, SIZE_MAX)
        self.size.setSingleStep(0.5)
        self.size.setDecimals(1)
        self.size.setToolTip("Brush radius ([ and ] change it while painting)")
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(0, _SLIDER_STEPS)
        self.unit = QComboBox()
        self.unit.addItems(["px", "mm"])
        size_row = QHBoxLayout()
        for w in (self.size_slider, self.size, self.unit):
            size_row.addWidget(w)
        form.addRow("Brush size", size_row)

        self.sphere = QCheckBox("3D brush (sphere)")
        self.fill_3d = QCheckBox("3D fill")
        shape_row = QHBoxLayout()
        shape_row.addWidget(self.sphere)
        shape_row.addWidget(self.fill_3d)
        form.addRow("", shape_row)

        self.over = QComboBox()
        for text, key in OVER_CHOICES:
            self.over.addItem(text, key)
        self.over_label = QSpinBox()
        self.over_label.setRange(0, 65535)
        over_row = QHBoxLayout()
        over_row.addWidget(self.over, 1)
        over_row.addWidget(self.over_label)
        form.addRow("Paint over", over_row)

        self.threshold = QCheckBox("only values in")
        self.value_min, self.value_max = QDoubleSpinBox(), QDoubleSpinBox()
        for box in (self.value_min, self.value_max):
            box.setRange(-1e6, 1e6)
            box.setDecimals(1)
        threshold_row = QHBoxLayout()
        for w in (self.threshold, self.value_min, self.value_max):
            threshold_row.addWidget(w)
        form.addRow("Threshold paint", threshold_row)

        self.size.valueChanged.connect(lambda v: self._update(radius=float(v)))
        self.size_slider.valueChanged.connect(lambda p: self._update(radius=_slider_to_size(p)))
        self.unit.currentTextChanged.connect(lambda u: self._update(unit=u))
        self.sphere.toggled.connect(lambda v: self._update(sphere=bool(v)))
        self.fill_3d.toggled.connect(lambda v: self._update(fill_3d=bool(v)))
        self.over.currentIndexChanged.connect(lambda _: self._update(over=self.over.currentData()))
        self.over_label.valueChanged.connect(lambda v: self._update(over_label=int(v)))
        self.threshold.toggled.connect(lambda v: self._update(threshold=bool(v)))
        self.value_min.valueChanged.connect(lambda _: self._range_edited(self.value_min))
        self.value_max.valueChanged.connect(lambda _: self._range_edited(self.value_max))

        annotator.settings_changed.connect(self.show_settings)
        annotator.layer_changed.connect(self._layer_changed)
        self.show_settings()

    # -- widget -> settings ------------------------------------------------------------------
    def _update(self, **fields) -> None:
        self.annotator.update_settings(**fields)

    def _range_edited(self, edited: QDoubleSpinBox) -> None:
        lo, hi = self.value_min.value(), self.value_max.value()
        if lo > hi:  # keep min <= max by moving the other end, as range sliders do
            lo, hi = (lo, lo) if edited is self.value_min else (hi, hi)
        self._update(value_range=(lo, hi))

    def _follow_image(self) -> None:
        """Photos are thresholded on luminance 0..255; volumes on their own values (HU for CT).

        The annotator picks the default range when a study opens; here only the boxes' limits
        follow. Checked on every redraw: a study without label layers changes no layer.
        """
        study = self.annotator.study
        image = study.image if study is not None else None
        if image is None or image is self._image:
            return
        self._image = image
        limits = (0.0, 255.0) if image.is_photo else (-1e6, 1e6)
        for box in (self.value_min, self.value_max):
            box.blockSignals(True)
            box.setRange(*limits)
            box.blockSignals(False)

    def _layer_changed(self, _layer) -> None:
        self.show_settings()

    # -- settings -> widget ------------------------------------------------------------------
    def show_settings(self) -> None:
        self._follow_image()
        s = self.annotator.settings
        values = ((self.size, float(s.radius)), (self.size_slider, _size_to_slider(float(s.radius))),
                  (self.over_label, int(s.over_label)), (self.value_min, float(s.value_range[0])),
                  (self.value_max, float(s.value_range[1])))
        for widget, value in values:
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)
        for box, checked in ((self.sphere, s.sphere), (self.fill_3d, s.fill_3d), (self.threshold, s.threshold)):
            box.blockSignals(True)
            box.setChecked(bool(checked))
            box.blockSignals(False)
        for combo, index in ((self.unit, self.unit.findText(s.unit)), (self.over, self.over.findData(s.over))):
            combo.blockSignals(True)
            combo.setCurrentIndex(max(index, 0))
            combo.blockSignals(False)
        self.over_label.setEnabled(s.over == "label")
        self.value_min.setEnabled(bool(s.threshold))
        self.value_max.setEnabled(bool(s.threshold))
