"""A graphics item that shows a label slice and repaints only the pixels a stroke changed.

pyqtgraph's ImageItem converts its whole image on every change; for a brush dab on a 512x512
slice that is wasted work. This item wraps its RGBA buffer in a QImage without copying, so an
edit writes the changed pixels into the buffer and asks Qt to repaint just their rectangle.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QGraphicsItem, QGraphicsObject, QStyleOptionGraphicsItem


class LabelSliceItem(QGraphicsObject):
    """RGBA pixels (H, W, 4 uint8) drawn into ``rect`` (view coordinates), nearest-neighbour."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rgba = np.zeros((1, 1, 4), np.uint8)
        self._qimage = self._wrap(self.rgba)
        self._rect = QRectF(0, 0, 1, 1)
        self.lut: np.ndarray | None = None   # the colours the buffer was drawn with (set by the overlay)
        # exposedRect tells paint() which part needs drawing, so a dab repaints a dab-sized area
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)

    @staticmethod
    def _wrap(rgba: np.ndarray) -> QImage:
        h, w = rgba.shape[:2]
        return QImage(rgba.data, w, h, w * 4, QImage.Format.Format_RGBA8888)

    def set_pixels(self, rgba: np.ndarray, rect: QRectF) -> None:
        """Show a new slice (the buffer is kept, not copied: edit it and call :meth:`pixels_changed`)."""
        self.rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
        self._qimage = self._wrap(self.rgba)
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = QRectF(rect)
        self.update()

    def pixels_changed(self, rows: slice, cols: slice) -> None:
        """Repaint the screen rectangle of pixel rows/cols after the buffer was edited there."""
        h, w = self.rgba.shape[:2]
        sx, sy = self._rect.width() / w, self._rect.height() / h
        self.update(QRectF(self._rect.x() + cols.start * sx, self._rect.y() + rows.start * sy,
                           (cols.stop - cols.start) * sx, (rows.stop - rows.start) * sy))

    def boundingRect(self) -> QRectF:
        return QRectF(self._rect)

    def paint(self, painter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        h, w = self.rgba.shape[:2]
        target = option.exposedRect.intersected(self._rect) if option is not None else self._rect
        if target.isEmpty():
            return
        sx, sy = w / self._rect.width(), h / self._rect.height()
        # whole source pixels covering the exposed area, drawn at their exact place
        c0 = max(int(np.floor((target.left() - self._rect.x()) * sx)), 0)
        r0 = max(int(np.floor((target.top() - self._rect.y()) * sy)), 0)
        c1 = min(int(np.ceil((target.right() - self._rect.x()) * sx)), w)
        r1 = min(int(np.ceil((target.bottom() - self._rect.y()) * sy)), h)
        if c1 <= c0 or r1 <= r0:
            return
        src = QRectF(c0, r0, c1 - c0, r1 - r0)
        dst = QRectF(self._rect.x() + c0 / sx, self._rect.y() + r0 / sy, (c1 - c0) / sx, (r1 - r0) / sy)
        painter.drawImage(dst, self._qimage, src)
