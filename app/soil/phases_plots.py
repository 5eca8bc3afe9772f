"""The phases panel's plots: the histogram with its draggable threshold, and after Measure the
porosity profiles along z, y, x and the REV curve (pyqtgraph)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QTabWidget, QVBoxLayout, QWidget

THRESHOLD_PEN = pg.mkPen("#e74c3c", width=2)
MARK_COLOURS = {"otsu": "#8e44ad", "valley": "#16a085"}
MARK_HEIGHTS = {"otsu": 0.78, "valley": 0.62}   # where their names sit on the line: apart when they are close
AXIS_COLOURS = {"z": "#2e86c1", "y": "#e67e22", "x": "#27ae60"}


class HistogramPlot(pg.PlotWidget):
    """Voxels per grey value (the volume's, and the denoised one's), the threshold as a red line the
    user drags (pores are the values at or left of it), Otsu's and the valley's as dashed marks."""

    def __init__(self, parent=None):
        super().__init__(parent, background="w")
        self.setMinimumHeight(170)
        self.setLabel("bottom", "grey value")
        self.setLabel("left", "voxels")
        self.setMouseEnabled(x=True, y=False)
        self.getPlotItem().hideButtons()
        self.raw = self.plot([], [], pen=pg.mkPen("#7f8c8d", width=1), fillLevel=0, brush=(127, 140, 141, 70))
        self.cleaned = self.plot([], [], pen=pg.mkPen("#2e86c1", width=1.5))
        self.pores = pg.LinearRegionItem(movable=False, brush=QColor(0, 200, 255, 45), pen=pg.mkPen(None))
        self.pores.setZValue(-5)
        self.addItem(self.pores)
        self.line = pg.InfiniteLine(angle=90, movable=True, pen=THRESHOLD_PEN,
                                    hoverPen=pg.mkPen("#c0392b", width=4),
                                    label="pores ≤ {value:.6g}", labelOpts={"position": 0.92, "color": "#c0392b"})
        self.line.setZValue(10)
        self.addItem(self.line)
        self.marks: dict[str, pg.InfiniteLine] = {}
        self.line.sigPositionChanged.connect(lambda line: self.pores.setRegion((self._lo, line.value())))
        self._lo = 0.0

    def show_counts(self, counts, centres, denoised=None) -> None:
        """The histogram (``denoised``: the denoised volume's ``(counts, centres)`` drawn over it)."""
        self.raw.setData(np.asarray(centres, float), np.asarray(counts, float))
        if denoised is None:
            self.cleaned.setData([], [])
        else:
            self.cleaned.setData(np.asarray(denoised[1], float), np.asarray(denoised[0], float))

    def set_range(self, lo: float, hi: float) -> None:
        self._lo = lo
        self.line.setBounds((lo, hi))
        self.setXRange(lo, hi, padding=0.02)

    def set_marks(self, values: dict) -> None:
        """Dashed lines at the methods' thresholds (name -> value; None: not found)."""
        for line in self.marks.values():
            self.removeItem(line)
        self.marks = {}
        for name, value in values.items():
            if value is None:
                continue
            colour = MARK_COLOURS.get(name, "#555")
            mark = pg.InfiniteLine(pos=value, angle=90, movable=False,
                                   pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine),
                                   label="Otsu" if name == "otsu" else name,
                                   labelOpts={"position": MARK_HEIGHTS.get(name, 0.7), "color": colour})
            self.addItem(mark)
            self.marks[name] = mark


class ResultPlots(QTabWidget):
    """Porosity profiles (z, y, x) and the REV curve of a measured :class:`Porosity`."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.profiles = pg.PlotWidget(background="w")
        self.profiles.setLabel("bottom", "position along the axis", units="mm")
        self.profiles.setLabel("left", "porosity", units="%")
        self.profile_curves = {axis: self.profiles.plot([], [], pen=pg.mkPen(c, width=2))
                               for axis, c in AXIS_COLOURS.items()}
        # the key above the plot, not a legend over the curves of a small plot
        key = QLabel("   ".join(f'<span style="color:{c}">━━ along {axis}</span>' for axis, c in AXIS_COLOURS.items()))
        profiles = QWidget()
        box = QVBoxLayout(profiles)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        box.addWidget(key)
        box.addWidget(self.profiles, 1)
        self.rev = pg.PlotWidget(background="w")
        self.rev.setLabel("bottom", "side of the centred sub-cube", units="mm")
        self.rev.setLabel("left", "porosity", units="%")
        self.rev_curve = self.rev.plot([], [], pen=pg.mkPen("#2e86c1", width=2), symbol="o", symbolSize=5,
                                       symbolBrush="#2e86c1")
        band = pg.mkPen("#7f8c8d", width=1, style=Qt.PenStyle.DashLine)
        self.rev_whole = [pg.InfiniteLine(angle=0, pen=band),
                          pg.InfiniteLine(angle=0, pen=band, label="whole sample ± 5 %",
                                          labelOpts={"position": 0.9, "color": "#7f8c8d", "anchors": [(1, 1), (1, 1)]})]
        self.rev_mark = pg.InfiniteLine(angle=90, pen=pg.mkPen("#c0392b", width=1.5), label="REV",
                                        labelOpts={"position": 0.1, "color": "#c0392b"})
        for item in (*self.rev_whole, self.rev_mark):
            item.hide()
            self.rev.addItem(item)
        self.addTab(profiles, "Profiles z / y / x")
        self.addTab(self.rev, "REV")

    def show_result(self, found, spacing) -> None:
        for n, (axis, values) in enumerate(found.profiles.items()):
            values = np.asarray(values, dtype=float)
            self.profile_curves[axis].setData(np.arange(values.size) * float(spacing[n]), 100 * values,
                                              connect="finite")
        rev = found.rev
        self.rev_curve.setData(np.asarray(rev.sides_mm, float), 100 * np.asarray(rev.porosity, float),
                               connect="finite")
        for line, sign in zip(self.rev_whole, (-1, 1)):   # the tolerance band around the whole sample's
            line.setPos(100 * rev.whole * (1 + sign * rev.tolerance))
            line.show()
        self.rev_whole[1].label.setFormat(f"whole sample ± {100 * rev.tolerance:.0f} %")
        self.rev_mark.setVisible(rev.rev_mm is not None)
        if rev.rev_mm is not None:
            self.rev_mark.setPos(rev.rev_mm)
