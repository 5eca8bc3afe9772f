"""Draws a study's layers (label maps, heatmaps, slice lines) over one slice view.

One graphics item per layer, stacked in layer-list order; every item follows its layer's
``changed`` events, so the layers dock and any later tool only ever edit the layer objects.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor

from app.views.label_item import LabelSliceItem
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


def _lut_size(layer: LabelLayer) -> int:
    """Entries of a label layer's colour table: every id its dtype can hold (a uint16 map after an
    id above 255 was painted needs the long table, and a redraw with it)."""
    return 256 if layer.array.dtype == np.uint8 else 65536


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
        self._data_slots: dict[int, object] = {}
        self._slice = 0
        self._rect = QRectF()

    def set_study(self, study: Study | None) -> None:
        if self.study is not None:
            events = self.study.layers.events
            for sig in (events.inserted, events.removed, events.moved, events.changed, events.reordered):
                sig.disconnect(self._rebuild)
            for layer in self.study.layers:
                self._disconnect(layer)
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
            self._disconnect(layer)
            layer.changed.connect(self._on_layer_changed)
            if isinstance(layer, LabelLayer):
                slot = partial(self._on_data_changed, layer)
                self._data_slots[id(layer)] = slot
                layer.data_changed.connect(slot)
                item = LabelSliceItem()
                item.setZValue(_BASE_Z + z)
                self.box.addItem(item, ignoreBounds=True)
                self._items[id(layer)] = item
            elif isinstance(layer, HeatmapLayer):
                item = pg.ImageItem(axisOrder="row-major")
                item.setZValue(_BASE_Z + z)
                self.box.addItem(item)
                self._items[id(layer)] = item
            elif isinstance(layer, SliceLinesLayer):
                self._items[id(layer)] = []
        self.refresh(self._slice, self._rect)

    def _disconnect(self, layer: Layer) -> None:
        slots = [(layer.changed, self._on_layer_changed)]
        if id(layer) in self._data_slots:
            slots.append((layer.data_changed, self._data_slots.pop(id(layer))))
        for sig, slot in slots:
            try:
                sig.disconnect(slot)
            except (TypeError, ValueError, RuntimeError):
                pass

    def _on_layer_changed(self, attr: str = "") -> None:
        self.refresh(self._slice, self._rect)

    def _on_data_changed(self, layer: LabelLayer, bbox) -> None:
        """Voxels of ``layer`` changed inside ``bbox``: redraw that part of this slice only."""
        item = self._items.get(id(layer))
        if item is None or not layer.visible:
            return
        shown = slicing.extract(layer.array, self.orientation, 0).shape[:2]
        if bbox is None or item.lut is None or item.rgba.shape[:2] != shown or len(item.lut) != _lut_size(layer):
            self._draw_labels(layer, item)
        else:
            self._draw_label_region(layer, item, bbox)

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

    # -- per kind ----------------------------------------------------------------------------
    def _lut(self, layer: LabelLayer) -> np.ndarray:
        return layer.labels.table.lut(_lut_size(layer))

    def _draw_labels(self, layer: LabelLayer, item: LabelSliceItem) -> None:
        item.setVisible(layer.visible)
        if not layer.visible:
            return
        plane_img = slicing.extract(layer.array, self.orientation, self._slice)
        if layer.outline:
            plane_img = label_outline(plane_img)
        item.lut = self._lut(layer)   # kept for region redraws until the table changes
        item.set_pixels(item.lut[plane_img], self._rect)
        item.setOpacity(layer.opacity)

    def _draw_label_region(self, layer: LabelLayer, item: LabelSliceItem, bbox) -> None:
        """Recolour the screen rectangle of ``bbox`` on this slice; nothing when the slice is outside."""
        p = slicing.plane(self.orientation)
        normal = bbox[p.normal_axis]
        if not normal.start <= self._slice < normal.stop:
            return
        plane_img = slicing.extract(layer.array, self.orientation, self._slice)
        h, w = plane_img.shape
        rows, cols = bbox[p.row_axis], bbox[p.col_axis]
        if p.flip_rows:  # the view shows rows upside down: screen row = h - 1 - array row
            rows = slice(h - rows.stop, h - rows.start)
        m = 2 if layer.outline else 0   # outline pixels next to the edit change too
        r0, r1 = max(rows.start - m, 0), min(rows.stop + m, h)
        c0, c1 = max(cols.start - m, 0), min(cols.stop + m, w)
        part = plane_img[r0:r1, c0:c1]
        if layer.outline:
            # the window's own border lacks outside neighbours: drop it unless it is the image edge
            part = label_outline(part)
            top, bottom, left, right = int(r0 > 0), int(r1 < h), int(c0 > 0), int(c1 < w)
            part = part[top:part.shape[0] - bottom, left:part.shape[1] - right]
            r0, r1, c0, c1 = r0 + top, r1 - bottom, c0 + left, c1 - right
        item.rgba[r0:r1, c0:c1] = item.lut[part]
        item.pixels_changed(slice(r0, r1), slice(c0, c1))

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
