"""Layers: what is drawn over the image of a study.

One layer system serves every workflow: label maps (segmentations, thin-section classes),
heatmaps (model explanations, probabilities) and slice lines (L3/T12 picks). Layers are small
evented objects; the GUI observes ``changed`` and redraws, the core never knows it is watched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from psygnal import Signal
from psygnal.containers import EventedList

from ctviewer.data.labels import LabelMap
from ctviewer.data.volume import Volume


class Layer:
    """Base of all layers: a name, visibility and opacity that emit ``changed(attr)``."""

    changed = Signal(str)
    kind = "layer"

    def __init__(self, name: str, visible: bool = True, opacity: float = 1.0):
        self._name = name
        self._visible = visible
        self._opacity = float(opacity)

    def _set(self, attr: str, value) -> None:
        if getattr(self, "_" + attr) != value:
            setattr(self, "_" + attr, value)
            self.changed.emit(attr)

    name = property(lambda self: self._name, lambda self, v: self._set("name", str(v)))
    visible = property(lambda self: self._visible, lambda self, v: self._set("visible", bool(v)))
    opacity = property(lambda self: self._opacity,
                       lambda self, v: self._set("opacity", float(min(max(v, 0.0), 1.0))))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class LabelLayer(Layer):
    """A label map drawn in its table's colours, filled or as outlines.

    ``data_changed`` carries the bounding box (tuple of slices) of voxels that changed, so views
    re-upload only that region; ``None`` means everything.
    """

    kind = "labels"
    data_changed = Signal(object)

    def __init__(self, labels: LabelMap, name: str = "labels", opacity: float = 0.5, outline: bool = False):
        super().__init__(name, opacity=opacity)
        self.labels = labels
        self._outline = outline
        labels.table.changed.connect(lambda: self.changed.emit("table"))

    outline = property(lambda self: self._outline, lambda self, v: self._set("outline", bool(v)))

    @property
    def array(self) -> np.ndarray:
        return self.labels.array


class HeatmapLayer(Layer):
    """Float values on the image grid (probabilities, Grad-CAM) drawn through a colour map.

    ``in_3d``: a whole-volume map (a Grad-CAM volume) the 3D panel also draws, as a translucent cloud
    over its surfaces; a map explained slice by slice is not (it is mostly empty).
    """

    kind = "heatmap"

    def __init__(self, values: Volume, name: str = "heatmap", colormap: str = "inferno",
                 value_range: tuple[float, float] | None = None, opacity: float = 0.5, in_3d: bool = False):
        super().__init__(name, opacity=opacity)
        self.values = values
        self.in_3d = in_3d
        self._colormap = colormap
        lo, hi = value_range if value_range is not None else values.value_range()
        self._value_range = (float(lo), float(hi if hi > lo else lo + 1.0))

    colormap = property(lambda self: self._colormap, lambda self, v: self._set("colormap", str(v)))
    value_range = property(lambda self: self._value_range,
                           lambda self, v: self._set("value_range", (float(v[0]), float(v[1]))))

    @property
    def array(self) -> np.ndarray:
        return self.values.array


@dataclass(frozen=True)
class SliceLine:
    """A horizontal line at one axial slice: a pick (L3, T12) or any marked level."""

    index: int
    name: str
    colour: tuple[int, int, int] = (255, 200, 0)
    note: str = ""


class SliceLinesLayer(Layer):
    """Lines across coronal, sagittal and projection views at chosen axial slices."""

    kind = "lines"

    def __init__(self, lines: list[SliceLine] | None = None, name: str = "slice lines"):
        super().__init__(name)
        self._lines = list(lines or [])

    @property
    def lines(self) -> list[SliceLine]:
        return list(self._lines)

    @lines.setter
    def lines(self, value: list[SliceLine]) -> None:
        self._lines = list(value)
        self.changed.emit("lines")

    def set_line(self, line: SliceLine) -> None:
        """Add a line, or move the one with the same name."""
        self._lines = [ln for ln in self._lines if ln.name != line.name] + [line]
        self.changed.emit("lines")


class LayerList(EventedList):
    """Layers over the image, bottom first; emits psygnal's inserted/removed/moved events."""

    def by_kind(self, kind: str) -> list[Layer]:
        return [layer for layer in self if layer.kind == kind]
