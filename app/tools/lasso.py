"""Polygon and lasso fill (L): drag a closed outline, or click corners and double-click to close.

The outline is drawn while it is made; Escape drops it. The filled polygon is one undo step.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor

from app.tools.base import PlanePoint, Tool


class LassoTool(Tool):
    name = "lasso"
    title = "Polygon / lasso"
    shortcut = "L"
    tip = "Drag an outline (lasso) or click corners and double-click (polygon) to fill it"

    def __init__(self, annotator):
        super().__init__(annotator)
        self.points: list[PlanePoint] = []
        self._view = None
        self._curve: pg.PlotCurveItem | None = None

    # -- lasso: one drag ---------------------------------------------------------------------
    def press(self, view, at: PlanePoint) -> None:
        self._start(view)
        self.points = [at]
        self._draw()

    def move(self, view, at: PlanePoint) -> None:
        if self._view is view:
            self.points.append(at)
            self._draw()

    def release(self, view, at: PlanePoint) -> None:
        if self._view is view:
            self.points.append(at)
            self._finish()

    # -- polygon: clicks, double-click closes --------------------------------------------------
    def click(self, view, at: PlanePoint) -> None:
        if self._view is not view or (self.points and self.points[0].slice_index != at.slice_index):
            self._start(view)
        self.points.append(at)
        self._draw()

    def double_click(self, view, at: PlanePoint) -> None:
        if self._view is view and len(self.points) >= 3:
            self._finish()

    def cancel(self) -> None:
        self.points = []
        self._remove_curve()
        self._view = None

    # -- helpers -------------------------------------------------------------------------------
    def _start(self, view) -> None:
        self.cancel()
        self._view = view

    def _finish(self) -> None:
        pts, view = self.points, self._view
        self.cancel()
        if self.editor is None or len(pts) < 3:
            return
        self.editor.polygon(pts[0].plane, pts[0].slice_index, [(p.row, p.col) for p in pts])

    def _draw(self) -> None:
        view = self._view
        if view is None:
            return
        if self._curve is None:
            self._curve = pg.PlotCurveItem(pen=pg.mkPen(QColor(255, 255, 0), width=1.5))
            self._curve.setZValue(950)
            view.box.addItem(self._curve, ignoreBounds=True)
        xs, ys = zip(*(view.scene_xy(p) for p in self.points + self.points[:1]))
        self._curve.setData(list(xs), list(ys))

    def _remove_curve(self) -> None:
        if self._curve is not None and self._view is not None:
            self._view.box.removeItem(self._curve)
        self._curve = None
