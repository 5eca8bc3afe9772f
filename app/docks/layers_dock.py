"""The layers panel: toggle, reorder, remove and adjust the overlays of the open study.

It edits the layer objects only; the views follow the layers' events.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDockWidget, QDoubleSpinBox, QFormLayout, QHBoxLayout,
                               QListWidget, QListWidgetItem, QPushButton, QSlider, QVBoxLayout, QWidget)

from ctviewer.data.layers import HeatmapLayer, LabelLayer, Layer
from ctviewer.data.study import Study

COLORMAPS = ("inferno", "viridis", "magma", "plasma", "CET-L3", "CET-D1")


def range_precision(low: float, high: float) -> tuple[int, float]:
    """Decimals and arrow step for a heatmap's min/max boxes: three significant digits of the span, so a
    Grad-CAM range of 0.00004..0.0003 shows as such instead of 0.000..0.000."""
    span = abs(float(high) - float(low)) or abs(float(high)) or 1.0
    decimals = min(12, max(3, 2 - math.floor(math.log10(span))))
    return decimals, 10.0 ** math.floor(math.log10(span)) / 10


class LayersDock(QDockWidget):
    def __init__(self, parent=None):
        super().__init__("Layers", parent)
        self.setObjectName("layers_dock")
        self.study: Study | None = None
        body = QWidget()
        layout = QVBoxLayout(body)
        self.list = QListWidget()
        self.list.itemChanged.connect(self._item_toggled)
        self.list.currentRowChanged.connect(self._select)
        layout.addWidget(self.list)
        buttons = QHBoxLayout()
        self.up_button, self.down_button, self.remove_button = (QPushButton(t) for t in ("Up", "Down", "Remove"))
        self.up_button.clicked.connect(lambda: self._move(+1))
        self.down_button.clicked.connect(lambda: self._move(-1))
        self.remove_button.clicked.connect(self._remove)
        for b in (self.up_button, self.down_button, self.remove_button):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        form = QFormLayout()
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.valueChanged.connect(lambda v: self._set("opacity", v / 100.0))
        self.outline = QCheckBox("outline only")
        self.outline.toggled.connect(lambda v: self._set("outline", v))
        self.colormap = QComboBox()
        self.colormap.addItems(COLORMAPS)
        self.colormap.currentTextChanged.connect(lambda v: self._set("colormap", v))
        self.vmin, self.vmax = QDoubleSpinBox(), QDoubleSpinBox()
        for box in (self.vmin, self.vmax):
            box.setRange(-1e9, 1e9)
            box.setDecimals(3)
            box.editingFinished.connect(self._range_edited)
        form.addRow("Opacity", self.opacity)
        form.addRow("", self.outline)
        form.addRow("Colour map", self.colormap)
        form.addRow("Min", self.vmin)
        form.addRow("Max", self.vmax)
        layout.addLayout(form)
        self.setWidget(body)
        self._select(-1)

    # -- binding -----------------------------------------------------------------------------
    def set_study(self, study: Study | None) -> None:
        if self.study is not None:
            for sig in (self.study.layers.events.inserted, self.study.layers.events.removed,
                        self.study.layers.events.moved):
                sig.disconnect(self._rebuild)
        self.study = study
        if study is not None:
            for sig in (study.layers.events.inserted, study.layers.events.removed, study.layers.events.moved):
                sig.connect(self._rebuild)
        self._rebuild()

    def _rebuild(self, *_) -> None:
        current = self.current_layer()
        self.list.blockSignals(True)
        self.list.clear()
        layers = list(self.study.layers) if self.study else []
        for layer in reversed(layers):  # top layer first, as in every layer panel users know
            item = QListWidgetItem(f"{layer.name}  [{layer.kind}]")
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if layer.visible else Qt.CheckState.Unchecked)
            item.setData(Qt.ItemDataRole.UserRole, id(layer))
            self.list.addItem(item)
        self.list.blockSignals(False)
        if current in layers:
            self.list.setCurrentRow(len(layers) - 1 - layers.index(current))
        elif layers:
            self.list.setCurrentRow(0)
        else:
            self._select(-1)

    def current_layer(self) -> Layer | None:
        item = self.list.currentItem()
        if self.study is None or item is None:
            return None
        wanted = item.data(Qt.ItemDataRole.UserRole)
        return next((layer for layer in self.study.layers if id(layer) == wanted), None)

    def _select(self, row: int) -> None:
        layer = self.current_layer()
        for w in (self.opacity, self.outline, self.colormap, self.vmin, self.vmax, self.up_button,
                  self.down_button, self.remove_button):
            w.setEnabled(layer is not None)
        if layer is None:
            return
        self.opacity.blockSignals(True)
        self.opacity.setValue(int(round(layer.opacity * 100)))
        self.opacity.blockSignals(False)
        self.outline.setEnabled(isinstance(layer, LabelLayer))
        if isinstance(layer, LabelLayer):
            self.outline.blockSignals(True)
            self.outline.setChecked(layer.outline)
            self.outline.blockSignals(False)
        is_heat = isinstance(layer, HeatmapLayer)
        for w in (self.colormap, self.vmin, self.vmax):
            w.setEnabled(is_heat)
        if is_heat:
            low, high = layer.value_range
            decimals, step = range_precision(low, high)
            for w, v in ((self.vmin, low), (self.vmax, high)):
                w.blockSignals(True)
                w.setDecimals(decimals)   # before setValue: the box rounds to its decimals
                w.setSingleStep(step)
                w.setValue(v)
                w.blockSignals(False)
            self.colormap.blockSignals(True)
            self.colormap.setCurrentText(layer.colormap)
            self.colormap.blockSignals(False)

    # -- edits -------------------------------------------------------------------------------
    def _set(self, attr: str, value) -> None:
        layer = self.current_layer()
        if layer is not None and hasattr(layer, attr):
            setattr(layer, attr, value)

    def _range_edited(self) -> None:
        if self.vmax.value() > self.vmin.value():
            self._set("value_range", (self.vmin.value(), self.vmax.value()))

    def _item_toggled(self, item: QListWidgetItem) -> None:
        for layer in self.study.layers if self.study else []:
            if id(layer) == item.data(Qt.ItemDataRole.UserRole):
                layer.visible = item.checkState() == Qt.CheckState.Checked

    def _move(self, up: int) -> None:
        layer = self.current_layer()
        if layer is None:
            return
        layers = self.study.layers
        i = layers.index(layer)
        j = i + up
        if 0 <= j < len(layers):
            layers.move(i, j if j < i else j + 1)

    def _remove(self) -> None:
        layer = self.current_layer()
        if layer is not None:
            self.study.layers.remove(layer)
