"""Threshold brush (T): paints only voxels whose image value lies in the chosen range.

The range is the one in the paint options (CT: HU; photos: luminance 0–255). The same range
can also limit every tool (the "threshold paint" check box); this tool always applies it.
"""

from __future__ import annotations

from app.tools.brush import BrushTool


class ThresholdTool(BrushTool):
    name = "threshold"
    title = "Threshold brush"
    shortcut = "T"
    tip = "Paint only where the image value is inside the range set in the paint options"
    description = "threshold paint"

    def value_range(self):
        return tuple(self.annotator.settings.value_range)
