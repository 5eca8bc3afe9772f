"""The data model: volumes, label maps and tables, layers, studies and slice picks."""

from ctviewer.data.labels import Label, LabelMap, LabelTable
from ctviewer.data.layers import HeatmapLayer, LabelLayer, Layer, LayerList, SliceLine, SliceLinesLayer
from ctviewer.data.study import Study
from ctviewer.data.volume import CANONICAL_DIRECTION, Volume

__all__ = [
    "CANONICAL_DIRECTION", "HeatmapLayer", "Label", "LabelLayer", "LabelMap", "LabelTable", "Layer",
    "LayerList", "SliceLine", "SliceLinesLayer", "Study", "Volume",
]
