"""Label picker (I): the label under the click becomes the active label."""

from __future__ import annotations

from app.tools.base import PlanePoint, Tool


class PickerTool(Tool):
    name = "picker"
    title = "Pick label"
    shortcut = "I"
    tip = "Click a voxel to make its label the active one"
    cursor = Tool.cursor

    def click(self, view, at: PlanePoint) -> None:
        if self.editor is None:
            return
        label = self.editor.pick(at.voxel)
        if label > 0:
            self.annotator.set_label(label)
