"""Flood fill (F): the connected region under the click takes the active label.

In the slice by default, through the volume with "3D fill"; with threshold paint on, only
voxels inside the value range join the region.
"""

from __future__ import annotations

from app.tools.base import PlanePoint, Tool


class FillTool(Tool):
    name = "fill"
    title = "Flood fill"
    shortcut = "F"
    tip = "Fill the connected region under the click (2D, or 3D in the paint options)"

    def click(self, view, at: PlanePoint) -> None:
        if self.editor is None:
            return
        s = self.annotator.settings
        self.editor.fill(at.voxel, plane=None if s.fill_3d else at.plane)
