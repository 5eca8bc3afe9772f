"""A window showing one activation-map grid: the chosen layer's channels whose activation sum exceeds the
threshold, laid out by :func:`ctviewer.workflows.soil.explain.activation_grid`, zoomable, grey levels
stretched to the grid's range."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QDialog, QLabel, QVBoxLayout


class ActivationWindow(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Activation maps")
        self.resize(700, 700)
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        self.view = pg.GraphicsLayoutWidget()
        self.box = self.view.addViewBox(lockAspect=True, invertY=True)   # row 0 on top, as in the slice view
        self.image = pg.ImageItem(axisOrder="row-major")
        self.box.addItem(self.image)
        layout = QVBoxLayout(self)
        layout.addWidget(self.caption)
        layout.addWidget(self.view, 1)

    def show_grid(self, grid: np.ndarray, channels: list[int], layer: str, index: int, thresh: float) -> None:
        grid = np.asarray(grid, np.float32)
        lo, hi = float(np.nanmin(grid)), float(np.nanmax(grid))
        self.image.setImage(grid, levels=(lo, hi if hi > lo else lo + 1.0), autoLevels=False)
        self.box.autoRange()
        listed = ", ".join(str(c) for c in channels[:40]) + (" …" if len(channels) > 40 else "")
        self.caption.setText(f"{layer}, slice {index + 1}: {len(channels)} channel(s) with activation sum "
                             f"> {thresh:g} — {listed}")
        self.setWindowTitle(f"Activation maps — {layer}, slice {index + 1}")
        self.show()
        self.raise_()
