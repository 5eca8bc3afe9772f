"""The cube's crop box on the slice views: a draggable rectangle on the axial view, outlines on the others.

Works in voxel ranges ``[start, stop)`` (the :class:`CubeSpec` convention); the views' own coordinates
are millimetres (column × column width, row × row height), and the coronal and sagittal views show
slice 0 at the bottom (rows flipped), so each outline is placed with the view's pixel size and flip.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsRectItem

BOX_COLOUR = QColor(0, 220, 255)


class CropBox(QObject):
    """Draws ``slices`` × ``rows`` × ``cols`` on an :class:`MprViewer`; a drag on the axial view moves it."""

    #: (rows, cols) after the user dragged or resized the rectangle, snapped to whole voxels
    dragged = Signal(tuple, tuple)

    def __init__(self, viewer, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self.roi: pg.RectROI | None = None
        self.outlines: dict[str, QGraphicsRectItem] = {}
        self._shape = (1, 1, 1)
        self._spacing = (1.0, 1.0, 1.0)

    @property
    def shown(self) -> bool:
        return self.roi is not None

    def show(self, shape, spacing) -> None:
        self.hide()
        self._shape, self._spacing = tuple(shape), tuple(spacing)
        pen = pg.mkPen(BOX_COLOUR, width=2)
        z_mm, y_mm, x_mm = self._spacing
        inside = QRectF(0, 0, self._shape[2] * x_mm, self._shape[1] * y_mm)   # the box cannot leave the image
        self.roi = pg.RectROI((0, 0), (1, 1), pen=pen, removable=False, rotatable=False, maxBounds=inside)
        self.roi.setZValue(2000)
        self.roi.sigRegionChangeFinished.connect(self._roi_moved)
        self.viewer.views["axial"].box.addItem(self.roi)
        for name in ("coronal", "sagittal"):
            item = QGraphicsRectItem()
            item.setPen(pg.mkPen(BOX_COLOUR, width=1, style=pg.QtCore.Qt.PenStyle.DashLine))
            item.setZValue(2000)
            self.viewer.views[name].box.addItem(item, ignoreBounds=True)
            self.outlines[name] = item

    def hide(self) -> None:
        if self.roi is not None:
            self.viewer.views["axial"].box.removeItem(self.roi)
            self.roi = None
        for name, item in self.outlines.items():
            self.viewer.views[name].box.removeItem(item)
        self.outlines = {}

    def set_ranges(self, slices, rows, cols) -> None:
        """Place the rectangle and the outlines (no ``dragged`` signal: this is not the user's move)."""
        if self.roi is None:
            return
        z_mm, y_mm, x_mm = self._spacing
        self.roi.blockSignals(True)
        self.roi.setPos((cols[0] * x_mm, rows[0] * y_mm), update=False)
        self.roi.setSize(((cols[1] - cols[0]) * x_mm, (rows[1] - rows[0]) * y_mm))
        self.roi.blockSignals(False)
        nz = self._shape[0]
        top, bottom = (nz - slices[1]) * z_mm, (nz - slices[0]) * z_mm   # slice 0 is drawn at the bottom
        self.outlines["coronal"].setRect(QRectF(cols[0] * x_mm, top, (cols[1] - cols[0]) * x_mm, bottom - top))
        self.outlines["sagittal"].setRect(QRectF(rows[0] * y_mm, top, (rows[1] - rows[0]) * y_mm, bottom - top))

    def _roi_moved(self) -> None:
        _, y_mm, x_mm = self._spacing
        pos, size = self.roi.pos(), self.roi.size()
        ny, nx = self._shape[1], self._shape[2]

        def snap(start_mm, length_mm, mm, n):
            start = min(max(round(start_mm / mm), 0), n - 1)
            return start, min(max(round((start_mm + length_mm) / mm), start + 1), n)

        rows = snap(pos.y(), size.y(), y_mm, ny)
        cols = snap(pos.x(), size.x(), x_mm, nx)
        self.dragged.emit(rows, cols)

