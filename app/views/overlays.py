"""Draws a study's layers (label maps, heatmaps, slice lines) over one slice view.

One graphics item per layer, stacked in layer-list order; every item follows its layer's
``changed`` events, so the layers dock and any later tool only ever edit the layer objects.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor

from ctviewer.data.layers import HeatmapLayer, LabelLayer, Layer, SliceLinesLayer
from ctviewer.data.study import Study
from ctviewer.imaging import slicing

_BASE_Z = 10


def label_outline(labels: np.ndarray) -> np.ndarray:
    """Keep only the boundary pixels of each labelled region (4-neighbourhood)."""
    edge = np.zeros(labels.shape, dtype=bool)
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    return np.where(edge, labels, 0).astype(labels.dtype)


def heatmap_lut(name: str) -> np.ndarray:
    """256-entry RGBA table of a named colour map (pyqtgraph's bundled maps; no network)."""
    cmap = pg.colormap.get(name) if name in pg.colormap.listMaps() else pg.colormap.get("inferno")
    return cmap.getLookupTable(0.0, 1.0, 256, alpha=True)


class OverlayItems:
    """The overlay graphics items of one :class:`~app.views.slice_view.SliceView`."""

    def __init__(self, box: pg.ViewBox, orientation: str):
        self.box = box
        self.orientation = orientation
        self.study: Study | None = None
        self._items: dict[int, object] = {}   # id(layer) -> item or list of lines
        self._slice = 0
        self._rect = QRectF()

    def set_study(self, study: Study | None) -> None:
        if self.study is not None:
            events = self.study.layers.events
            for sig in (events.inserted, events.removed, events.moved, events.changed, events.reordered):
                sig.disconnect(self._rebuild)
            for layer in self.study.layers:
                layer.changed.disconnect(self._on_layer_changed)
        self.study = study
        if study is not None:
            events = study.layers.events
            for sig in (events.inserted, events.removed, events.moved, events.changed, events.reordered):
                sig.connect(self._rebuild)
        self._rebuild()

    def _clear(self) -> None:
        for item in self._items.values():
            for it in (item if isinstance(item, list) else [item]):
                self.box.removeItem(it)
        self._items.clear()

    def _rebuild(self, *_) -> None:
        self._clear()
        if self.study is None:
            return
        for z, layer in enumerate(self.study.layers):
            try:
                layer.changed.disconnect(self._on_layer_changed)
            except (TypeError, ValueError, RuntimeError):
                pass
            layer.changed.connect(self._on_layer_changed)
            if isinstance(layer, (LabelLayer, HeatmapLayer)):
                item = pg.ImageItem(axisOrder="row-major")
                item.setZValue(_BASE_Z + z)
                self.box.addItem(item)
                self._items[id(layer)] = item
            elif isinstance(layer, SliceLinesLayer):
                self._items[id(layer)] = []
        self.refresh(self._slice, self._rect)

    def _on_layer_changed(self, attr: str = "") -> None:
        self.refresh(self._slice, self._rect)

    def refresh(self, slice_index: int, rect: QRectF) -> None:
        self._slice, self._rect = slice_index, rect
        if self.study is None:
            return
        for layer in self.study.layers:
            if id(layer) not in self._items:
                continue
            if isinstance(layer, LabelLayer):
                self._draw_labels(layer, self._items[id(layer)])
            elif isinstance(layer, HeatmapLayer):
                self._draw_heatmap(layer, self._items[id(layer)])
            elif isinstance(layer, SliceLinesLayer):
                self._draw_lines(layer)

    def update_region(self, layer: Layer) -> None:
        """Redraw one layer only (after a paint stroke, say)."""
        self.refresh(self._slice, self._rect)

    # -- per kind ----------------------------------------------------------------------------
    def _draw_labels(self, layer: LabelLayer, item: pg.ImageItem) -> None:
        item.setVisible(layer.visible)
        if not layer.visible:
            return
        plane_img = slicing.extract(layer.array, self.orientation, self._slice)
        if layer.outline:
            plane_img = label_outline(plane_img)
        size = 256 if layer.array.dtype == np.uint8 else 65536
        item.setImage(plane_img, lut=layer.labels.table.lut(size), levels=(0, size - 1), autoLevels=False)
        item.setRect(self._rect)
        item.setOpacity(layer.opacity)

    def _draw_heatmap(self, layer: HeatmapLayer, item: pg.ImageItem) -> None:
        item.setVisible(layer.visible)
        if not layer.visible:
            return
        plane_img = slicing.extract(layer.array, self.orientation, self._slice)
        item.setImage(plane_img, lut=heatmap_lut(layer.colormap), levels=layer.value_range, autoLevels=False)
        item.setRect(self._rect)
        item.setOpacity(layer.opacity)

    def _draw_lines(self, layer: SliceLinesLayer) -> None:
        for line in self._items[id(layer)]:
            self.box.removeItem(line)
        self._items[id(layer)] = []
        if not layer.visible or self.orientation == "axial" or self.study is None:
            return
        shape = self.study.image.shape
        row_mm = slicing.pixel_size(self.study.image.spacing, self.orientation)[0]
        for sl in layer.lines:
            row, _, _ = slicing.to_screen(self.orientation, shape, (sl.index, 0, 0))
            pen = pg.mkPen(QColor(*sl.colour), width=2)
            line = pg.InfiniteLine(pos=row * row_mm, angle=0, pen=pen, movable=False,
                                   label=sl.name, labelOpts={"position": 0.05, "color": QColor(*sl.colour)})
            line.setZValue(900)
            line.setOpacity(layer.opacity)
            self.box.addItem(line, ignoreBounds=True)
            self._items[id(layer)].append(line)
