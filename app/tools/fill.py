"""Flood fill (F): the connected region under the click takes the active label.

In the slice by default, through the volume with "3D fill"; with threshold paint on, only
voxels inside the value range join the region. A 3D region can hold millions of voxels, so it
is searched in a worker (the label map is only read there) and painted, as one undo step, back
on the GUI thread.
"""

from __future__ import annotations

from app.tools.base import PlanePoint, Tool
from app.workers import run_worker


def _search(editor, voxel, value, progress=None, cancel=None):
    return editor.fill_region(voxel, plane=None, value=value)


class FillTool(Tool):
    name = "fill"
    title = "Flood fill"
    shortcut = "F"
    tip = "Fill the connected region under the click (2D, or 3D in the paint options)"

    def __init__(self, annotator):
        super().__init__(annotator)
        self.worker = None

    def click(self, view, at: PlanePoint) -> None:
        editor = self.editor
        if editor is None or self.worker is not None:
            return
        if not self.annotator.settings.fill_3d:
            editor.fill(at.voxel, plane=at.plane)
            return
        value = self.annotator.label   # resolved here: the worker must not add labels to the table
        if value > 0 and value not in editor.layer.labels.table:
            editor.layer.labels.table.add(value)

        def found(result) -> None:
            if result is not None and self.editor is editor:
                box, mask = result
                editor.apply_mask(mask, value, "3D fill", bbox=box)

        self.worker = run_worker(_search, editor, at.voxel, value, on_result=found,
                                 on_finished=self._done)

    def _done(self) -> None:
        self.worker = None
