"""Routes mouse gestures from the slice views to the active paint tool.

The views know nothing of tools: they hand every left-button gesture to ``handle`` while a
tool other than 'navigate' is active, and ask ``brush_radii_mm`` for the outline to draw.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from app.tools import TOOLS
from app.tools.base import PlanePoint, Tool
from ctviewer.imaging import slicing


class ToolDispatcher(QObject):
    #: True while a paint tool is active (views then paint with the left button instead of moving the cursor)
    painting_changed = Signal(bool)

    def __init__(self, annotator, parent=None):
        super().__init__(parent)
        self.annotator = annotator
        self.tools: dict[str, Tool] = {cls.name: cls(annotator) for cls in TOOLS}
        annotator.tool_changed.connect(self._on_tool_changed)

    @property
    def active(self) -> Tool | None:
        return self.tools.get(self.annotator.tool)

    @property
    def painting(self) -> bool:
        return self.active is not None

    def _on_tool_changed(self, name: str) -> None:
        for tool in self.tools.values():
            tool.cancel()
        self.painting_changed.emit(self.painting)

    def handle(self, view, phase: str, at: PlanePoint) -> None:
        tool = self.active
        if tool is None:
            return
        if self.annotator.layer is None:
            self.annotator.new_layer()   # painting on an image without labels starts a layer
        {"press": tool.press, "move": tool.move, "release": tool.release, "click": tool.click,
         "double": tool.double_click}[phase](view, at)

    def cancel(self) -> None:
        tool = self.active
        if tool is not None:
            tool.cancel()

    def brush_radii_mm(self, orientation: str, spacing) -> tuple[float, float] | None:
        """(row, column) radii in mm of the brush outline in a view, or None for tools without one."""
        tool = self.active
        if tool is None or not tool.shows_brush:
            return None
        s = self.annotator.settings
        if s.unit == "mm":
            return s.radius, s.radius
        row_mm, col_mm = slicing.pixel_size(spacing, orientation)
        return s.radius * row_mm, s.radius * col_mm
