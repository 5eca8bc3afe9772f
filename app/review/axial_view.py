"""The axial slice at the active level's pick, with where it is: slice index, instance number, z in mm.

Window 400/40 (abdomen: muscle and fat, what an L3 slice is measured on) by default; right-drag
changes it like the main viewer's slice views.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.review.projection_view import level_colour
from app.views.display import DisplayState
from ctviewer.imaging import slicing

REVIEW_WINDOW = (400.0, 40.0)


class _WindowBox(pg.ViewBox):
    """Wheel zooms, middle drag pans, right drag changes window/level."""

    def __init__(self, display: DisplayState):
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.display = display

    def mouseDragEvent(self, ev, axis=None):
        if ev.button() == Qt.MouseButton.RightButton:
            ev.accept()
            delta = ev.screenPos() - ev.lastScreenPos()
            self.display.drag(float(delta.x()), float(delta.y()))
        else:
            super().mouseDragEvent(ev, axis)


class AxialView(QWidget):
    """One axial slice of the current study and a caption saying which one it is."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.display = DisplayState(*REVIEW_WINDOW, parent=self)
        self.caption = QLabel("")
        self.caption.setObjectName("axial_caption")
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.view = pg.GraphicsView(background="k")
        self.box = _WindowBox(self.display)
        self.view.setCentralItem(self.box)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.box.addItem(self.image_item)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.view, 1)
        self.display.window_changed.connect(lambda *_: self.image_item.setLevels(self.display.levels))
        self.volume = None
        self.slice_index: int | None = None

    def clear(self, message: str = "") -> None:
        self.volume, self.slice_index = None, None
        self.image_item.clear()
        self.caption.setText(message)

    def show_slice(self, volume, slice_index: int | None, level: str, extra: str = "") -> None:
        """Show ``slice_index`` of ``volume`` (None: the middle slice, the level being not placed)."""
        n = volume.shape[0]
        k = n // 2 if slice_index is None else int(np.clip(slice_index, 0, n - 1))
        first = self.volume is not volume
        self.volume, self.slice_index = volume, k
        self.image_item.setImage(slicing.extract(volume.array, "axial", k), autoLevels=False,
                                 levels=self.display.levels)
        if first:
            row_mm, col_mm = slicing.pixel_size(volume.spacing, "axial")
            rect = QRectF(0, 0, volume.shape[2] * col_mm, volume.shape[1] * row_mm)
            self.image_item.setRect(rect)
            self.box.setRange(rect, padding=0.01)
        r, g, b = level_colour(level)
        if slice_index is None:
            where = f"not placed (showing the middle slice, index {k})"
        else:
            z = float(volume.index_to_lps((k, 0, 0))[2])
            numbers = volume.instance_numbers
            instance = numbers[k] if numbers is not None and k < len(numbers) else None
            where = f"slice index {k} of {n}   z {z:.1f} mm"
            if instance is not None:
                where += f"   instance {instance}"
        self.caption.setText(f"<b style='color: rgb({r},{g},{b})'>{level}</b>&nbsp;&nbsp;{where}"
                             + (f"&nbsp;&nbsp;{extra}" if extra else ""))
