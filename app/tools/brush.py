"""Brush (B): paint the active label with a round brush, a disc in the slice or a 3D ball."""

from __future__ import annotations

from app.tools.base import PlanePoint, Tool


class BrushTool(Tool):
    name = "brush"
    title = "Brush"
    shortcut = "B"
    tip = "Paint the active label (drag); [ and ] change the size"
    shows_brush = True
    description = "brush"

    def __init__(self, annotator):
        super().__init__(annotator)
        self._last: PlanePoint | None = None

    def value(self) -> int | None:
        return None  # the active label

    def value_range(self):
        return None  # the annotator's rules decide (threshold check box)

    def _dab(self, at: PlanePoint) -> None:
        s = self.annotator.settings
        plane = None if s.sphere else at.plane
        if self._last is None or self._last.voxel == at.voxel:
            self.editor.dab(at.voxel, s.radius, s.unit, plane, value=self.value())
        else:  # a fast drag jumps pixels: fill the gap so the stroke stays continuous
            self.editor.line(self._last.voxel, at.voxel, s.radius, s.unit, plane, value=self.value())
        self._last = at

    def press(self, view, at: PlanePoint) -> None:
        if self.editor is None:
            return
        self._last = None
        self.editor.begin_stroke(self.description)
        self._with_range(lambda: self._dab(at))

    def move(self, view, at: PlanePoint) -> None:
        if self.editor is not None and self._last is not None:
            self._with_range(lambda: self._dab(at))

    def release(self, view, at: PlanePoint) -> None:
        if self.editor is not None and self._last is not None:
            self._with_range(lambda: self._dab(at))
            self.editor.end_stroke()
        self._last = None

    def click(self, view, at: PlanePoint) -> None:
        if self.editor is not None:
            self._last = None
            self.editor.begin_stroke(self.description)
            self._with_range(lambda: self._dab(at))
            self.editor.end_stroke()
            self._last = None

    def cancel(self) -> None:
        if self.editor is not None and self._last is not None:
            self.editor.end_stroke()
        self._last = None

    def _with_range(self, paint) -> None:
        """Threshold paint forces a value range for this tool only, then restores the rules."""
        forced = self.value_range()
        if forced is None:
            paint()
            return
        from dataclasses import replace

        rules = self.editor.rules
        self.editor.rules = replace(rules, value_range=forced)
        try:
            paint()
        finally:
            self.editor.rules = rules
