"""The class fractions of the project's predicted photos as stacked bars, drawn live with pyqtgraph:
one bar per photo, one segment per class in the class's colour, redrawn whenever a fraction changes
(a single prediction or a "Predict folder…" run). fractions.csv and its PNG chart stay on disk too."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QPalette

#: Width of a bar in photo slots (the gap between bars is the rest).
BAR_WIDTH = 0.7
#: Photo names under the bars at most (a dock is narrow; every bar's name is in the table).
MAX_NAMES = 8


class FractionsChart(pg.PlotWidget):
    def __init__(self, parent=None):
        super().__init__(parent, background=None)   # the dock's own background, light or dark
        self.setObjectName("fractions_chart")
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        ink = self.palette().color(QPalette.ColorRole.WindowText)
        for side in ("left", "bottom"):
            axis = self.getAxis(side)
            axis.setPen(ink)
            axis.setTextPen(ink)
        self.setLabel("left", "%")   # of the labelled pixels, as the table says
        self.setYRange(0, 100, padding=0.02)
        self.setMinimumHeight(120)
        self.bars: dict[int, pg.BarGraphItem] = {}   # class id -> its segments, one per photo

    def show_fractions(self, photos: list[str], fractions: list[dict[int, float]], table) -> None:
        """``fractions[n]``: % per class id of ``photos[n]``; classes stack in the table's order."""
        for item in self.bars.values():
            self.removeItem(item)
        self.bars = {}
        x = np.arange(len(photos), dtype=float)
        bottom = np.zeros(len(photos))
        for label in table:
            heights = np.array([f.get(label.id, 0.0) for f in fractions], dtype=float)
            bars = pg.BarGraphItem(x=x, y0=bottom.copy(), height=heights, width=BAR_WIDTH,
                                   brush=pg.mkBrush(*label.colour), pen=pg.mkPen(None))
            bars.setToolTip(label.name)
            self.addItem(bars)
            self.bars[label.id] = bars
            bottom += heights
        step = -(-len(photos) // MAX_NAMES) or 1   # names that would overlap: every n-th photo is named
        self.getAxis("bottom").setTicks([[(n, name) for n, name in enumerate(photos) if n % step == 0]])
        self.setXRange(-0.5, max(len(photos), 1) - 0.5, padding=0.02)
        self.setYRange(0, 100, padding=0.02)

    def heights(self, class_id: int) -> list[float]:
        """The class's segment per photo, as drawn."""
        bars = self.bars.get(class_id)
        return [] if bars is None else [float(v) for v in bars.opts["height"]]
