"""What every paint tool shares: where the mouse is, in the terms of the slice being painted.

A slice view turns mouse positions into :class:`PlanePoint` values and hands them to the
window's active tool with the phase of the gesture (press, move, release, click, double). Tools
edit through the annotator's :class:`~ctviewer.editing.editor.LabelEditor`, so undo, autosave and
redraws follow from there.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt


@dataclass(frozen=True)
class PlanePoint:
    """A mouse position on one slice view.

    ``row`` and ``col`` are continuous voxel coordinates along the plane's row and column array
    axes (voxel centres at whole numbers, not flipped for display); ``voxel`` is the (k, j, i)
    voxel under the mouse.
    """

    plane: str
    slice_index: int
    row: float
    col: float
    voxel: tuple[int, int, int]


class Tool:
    """A paint tool. Subclasses override the phases they use; each file in app/tools is one tool."""

    name = "tool"
    title = "Tool"
    shortcut = ""
    tip = ""
    cursor = Qt.CursorShape.CrossCursor
    shows_brush = False   # the view draws the brush outline under the mouse

    def __init__(self, annotator):
        self.annotator = annotator

    @property
    def editor(self):
        return self.annotator.editor

    def press(self, view, at: PlanePoint) -> None: ...

    def move(self, view, at: PlanePoint) -> None: ...

    def release(self, view, at: PlanePoint) -> None: ...

    def click(self, view, at: PlanePoint) -> None: ...

    def double_click(self, view, at: PlanePoint) -> None: ...

    def cancel(self) -> None:
        """Escape or a tool change in the middle of a gesture."""
