"""The Phases tab's two label layers: the pore phase (on the slice views and as the 3D surface) and the
sample's outline.

While the threshold is dragged only the three planes the views show are rewritten, each announced by
``data_changed`` with its box, so every view repaints what it shows and nothing else; the whole pore
phase comes from a worker when the line is let go (:meth:`PhaseLayers.fill`), and only then is the 3D
panel handed the labels to extract their surface. The worker's arrays become the layers' own (no copy of
the volume on the GUI thread: a 1000³ pore phase is a gigabyte).
"""

from __future__ import annotations

import numpy as np

from app.soil import phases_work as work
from ctviewer.data.labels import Label, LabelMap, LabelTable
from ctviewer.data.layers import LabelLayer

OUTLINE_COLOUR = (255, 210, 0)


class PhaseLayers:
    def __init__(self, window):
        self.window = window
        self.study = None
        self.pores: LabelLayer | None = None
        self.outline: LabelLayer | None = None
        self.stale = False       # planes away from the views still show an older threshold

    def set_study(self, study) -> None:
        self.study, self.pores, self.outline, self.stale = study, None, None, False

    def _shown(self, layer) -> bool:
        return layer is not None and self.study is not None and layer in self.study.layers

    def preview(self, values: np.ndarray, threshold: float, inside=None) -> None:
        """The pore phase at ``threshold`` on the planes through the study's cursor (not the whole volume)."""
        layer = self.pores
        if not self._shown(layer):
            return
        self.stale = True
        for axis, k in enumerate(self.study.cursor):
            layer.data_changed.emit(work.draw_plane(layer.array, values, threshold, axis, k, inside))

    def fill(self, ids: np.ndarray, name: str, how: dict) -> LabelLayer:
        """The whole pore phase (label ids) in its layer, made topmost the first time; ``name`` (the
        label's) and ``how`` (kept in the label map's meta for the Pores tab) say how it was found."""
        view3d = self.window.viewer.view3d
        layer = self.pores
        if not self._shown(layer):
            table = LabelTable([Label(work.PORES_ID, name, work.PORE_COLOUR)])
            labels = LabelMap(self.study.image.with_array(np.ascontiguousarray(ids, dtype=np.uint8)), table)
            labels.volume.meta["phases"] = how
            layer = self.pores = LabelLayer(labels, name=work.PORE_LAYER, opacity=0.45)
            if view3d is not None:
                view3d.set_mode("labels")
            self.study.layers.append(layer)   # topmost: the 3D panel shows its surface
        else:
            # the worker's array becomes the layer's, as the label editor swaps in a promoted map;
            # data_changed(None): every view re-reads the whole layer
            volume = layer.labels.volume
            layer.labels.volume = volume.with_array(np.ascontiguousarray(ids, dtype=np.uint8), source=volume.source)
            layer.labels.volume.meta["phases"] = how
            layer.data_changed.emit(None)
            layer.labels.table.update(work.PORES_ID, name=name)
            labels = self.study.layers.by_kind("labels")
            if view3d is not None and labels and labels[-1] is layer:
                view3d.set_labels(layer.labels)   # extracts the new surface in its own worker
        self.stale = False
        return layer

    def drop_outline(self) -> None:
        if self._shown(self.outline):
            self.study.layers.remove(self.outline)
        self.outline = None

    def show_outline(self, inside: np.ndarray | None) -> None:
        """The sample's outline (uint8, 1 = inside; the layer keeps this array) as a yellow contour under
        the pore phase (none when it fills the view)."""
        self.drop_outline()
        if inside is None:
            return
        table = LabelTable([Label(1, "sample (inside the outline)", OUTLINE_COLOUR)])
        labels = LabelMap(self.study.image.with_array(inside), table)
        self.outline = LabelLayer(labels, name=work.OUTLINE_LAYER, opacity=0.9, outline=True)
        layers = self.study.layers
        layers.insert(layers.index(self.pores) if self.pores in layers else len(layers), self.outline)
        keeper = getattr(self.window, "keeper", None)
        if keeper is not None:   # a drawing remade by every Measure: never asked about on closing
            keeper.mark_scratch(self.outline)
