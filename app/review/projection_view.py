"""A frontal or sagittal projection of a study with one draggable horizontal line per level, and a
tick with its name at every vertebra the classical count found (the clinician checks the count at a glance).

Image coordinates are projection rows and columns (1 mm each), shifted half a pixel so that a line
at ``projections.z_to_row(z)`` runs through the centre of that row. Dragging a line snaps it to the
nearest slice of the scan; the view reports the slice while dragging and again when the line drops.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor

#: Line colours per level: distinct from each other and from the grey bone image.
LEVEL_COLOURS = {"L3": (255, 90, 70), "T12": (70, 190, 255)}
OTHER_COLOUR = (230, 200, 60)
#: Where along its line each level's label sits (0 left .. 1 right): apart, so that close lines stay readable,
#: and clear of the count's ticks at the right edge.
LABEL_PLACE = {"L3": (0.02, (0, 1)), "T12": (0.86, (1, 1))}
#: The count's ticks: green, apart from the level lines' colours and from the grey bone image.
TICK_COLOUR = (90, 230, 110)
#: Length (mm = projection columns) of a vertebra's tick at the image's right edge; its disc marks are shorter.
TICK_MM, DISC_MM = 14.0, 6.0


def level_colour(level: str) -> tuple[int, int, int]:
    return LEVEL_COLOURS.get(level, OTHER_COLOUR)


def projection_layout(rows: int, frontal_cols: int, sagittal_cols: int, width: float, height: float,
                      share: float = 0.6) -> tuple[bool, bool, int]:
    """How to place the two projections (``rows`` tall, 1 mm pixels) in an area ``width`` × ``height``
    that they share with the axial slice: (above the axial slice, one above the other, their extent).

    Beside the axial slice and side by side suits a long scan (tall, narrow images); one above the other
    suits a short one, and a very short one (wide strips) goes above the axial slice across the whole
    width. The arrangement that shows the images largest wins; the projections take the width (or the
    height, above the slice) that they need at that size, at most ``share`` of it, the axial slice the
    rest. Moving them above the axial slice shrinks it, so that must show them 30 % larger to win.
    """
    rows, both, wide = max(rows, 1), max(frontal_cols + sagittal_cols, 1), max(frontal_cols, sagittal_cols, 1)
    options = []   # (scale, above, stacked, extent)
    for stacked, (cols, tall) in ((False, (both, rows)), (True, (wide, 2 * rows))):
        beside = min(share * width / cols, height / tall)
        options.append((beside, False, stacked, beside * cols))
        above = min(width / cols, share * height / tall)
        options.append((above / 1.3, True, stacked, above * tall))
    _, above, stacked, extent = max(options, key=lambda o: o[0])
    return above, stacked, int(round(extent))


class ProjectionView(pg.GraphicsView):
    """Shows one projection image and the level lines; emits the slice a dragged line snaps to."""

    #: (level, slice index) while a line is dragged (the line has snapped to that slice)
    line_dragged = Signal(str, int)
    #: (level, slice index) when the drag ends: the decision
    line_dropped = Signal(str, int)

    def __init__(self, name: str, parent=None):
        super().__init__(parent, background="k")
        self.name = name
        self.box = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.setCentralItem(self.box)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.box.addItem(self.image_item)
        self.title = pg.TextItem(name, color=(220, 220, 220), anchor=(0, 0))
        self.title.setParentItem(self.box)
        self.projections = None
        self.lines: dict[str, pg.InfiniteLine] = {}
        self._slices: dict[str, int | None] = {}
        # the count's ticks: one item for all the marks, a text per vertebra
        self.ticks = pg.PlotCurveItem(pen=pg.mkPen(QColor(*TICK_COLOUR), width=2), connect="pairs")
        self.ticks.setZValue(5)
        self.box.addItem(self.ticks, ignoreBounds=True)
        self.tick_labels: list[pg.TextItem] = []

    # -- content -----------------------------------------------------------------------------
    def set_image(self, image: np.ndarray | None, projections) -> None:
        """Show ``image`` (rows × cols, 0..1) of ``projections``; None clears the view."""
        self.projections = projections
        self.set_ticks(None)
        if image is None:
            self.image_item.clear()
            for line in self.lines.values():
                line.hide()
            return
        self.image_item.setImage(image, autoLevels=False, levels=(0.0, 1.0))
        rows, cols = image.shape
        self.image_item.setRect(QRectF(-0.5, -0.5, cols, rows))
        top, bottom = projections.z_to_row(float(np.max(projections.slice_z_mm))), \
            projections.z_to_row(float(np.min(projections.slice_z_mm)))
        for line in self.lines.values():
            line.setBounds((top, bottom))
        # the whole image, as large as the panel allows at 1 mm = 1 mm (the box locks the aspect), centred
        self.box.setRange(QRectF(-0.5, -0.5, cols, rows), padding=0.0)

    def set_pick(self, level: str, slice_index: int | None, text: str, active: bool) -> None:
        """Place the line of ``level`` on ``slice_index`` (None: a dashed line mid-scan, to drag)."""
        if self.projections is None:
            return
        line = self.lines.get(level) or self._make_line(level)
        self._slices[level] = slice_index
        proj = self.projections
        if slice_index is None:
            row = (proj.z_to_row(float(proj.slice_z_mm.max())) + proj.z_to_row(float(proj.slice_z_mm.min()))) / 2
        else:
            row = proj.z_to_row(float(proj.slice_z_mm[slice_index]))
        if not line.moving:
            line.setPos(row)
        colour = QColor(*level_colour(level))
        style = Qt.PenStyle.DashLine if slice_index is None else Qt.PenStyle.SolidLine
        line.setPen(pg.mkPen(colour, width=3 if active else 1.5, style=style))
        # the label re-formats its text whenever the line moves: give it the text as its format
        line.label.format = text.replace("{", "{{").replace("}", "}}")
        line.label.valueChanged()
        line.label.setColor(colour)
        line.setZValue(20 if active else 10)
        line.show()

    def set_ticks(self, spine) -> None:
        """A tick with its level's name at the centre of every vertebra of ``spine`` (a SpineCount; None
        or one without vertebrae: no ticks), and short marks at its discs, at the image's right edge."""
        for label in self.tick_labels:
            self.box.removeItem(label)
        self.tick_labels = []
        vertebrae = list(getattr(spine, "vertebrae", None) or []) if self.projections is not None else []
        if not vertebrae:
            self.ticks.setData([], [])
            return
        proj = self.projections
        right = float(self.image_item.width() or proj.frontal.shape[1]) - 0.5
        xs, ys = [], []
        for v in vertebrae:
            row = proj.z_to_row(v.centre_mm)
            xs += [right - TICK_MM, right]
            ys += [row, row]
            for z in (v.top_mm, v.bottom_mm):
                xs += [right - DISC_MM, right]
                ys += [proj.z_to_row(z)] * 2
            label = pg.TextItem(v.level or "?", color=TICK_COLOUR, anchor=(1, 0.5), fill=(0, 0, 0, 150))
            label.setPos(right - TICK_MM - 1, row)
            label.setZValue(25)          # above the level lines: the name stays readable where one crosses it
            self.box.addItem(label, ignoreBounds=True)
            self.tick_labels.append(label)
        self.ticks.setData(xs, ys)

    def tick_texts(self) -> list[str]:
        """The names at the ticks, head to feet."""
        return [label.toPlainText() for label in self.tick_labels]

    def line_row(self, level: str) -> float:
        return float(self.lines[level].value())

    def _make_line(self, level: str) -> pg.InfiniteLine:
        colour = QColor(*level_colour(level))
        position, anchor = LABEL_PLACE.get(level, (0.5, (0.5, 1)))
        line = pg.InfiniteLine(angle=0, movable=True, pen=pg.mkPen(colour, width=1.5),
                               hoverPen=pg.mkPen(colour.lighter(140), width=4),
                               label=level, labelOpts={"position": position, "anchors": [anchor, anchor],
                                                       "color": colour, "fill": (0, 0, 0, 140)})
        proj = self.projections
        line.setBounds((proj.z_to_row(float(proj.slice_z_mm.max())), proj.z_to_row(float(proj.slice_z_mm.min()))))
        line.sigDragged.connect(lambda ln, lv=level: self._dragged(lv, ln))
        line.sigPositionChangeFinished.connect(lambda ln, lv=level: self._dropped(lv, ln))
        self.box.addItem(line, ignoreBounds=True)
        self.lines[level] = line
        return line

    # -- dragging ----------------------------------------------------------------------------
    def _snap(self, line: pg.InfiniteLine) -> int:
        """Move the line onto the nearest slice's row and return that slice."""
        proj = self.projections
        k = proj.z_to_slice(proj.row_to_z(float(line.value())))
        row = proj.z_to_row(float(proj.slice_z_mm[k]))
        if abs(row - float(line.value())) > 1e-6:
            line.setPos(row)
        return k

    def _dragged(self, level: str, line: pg.InfiniteLine) -> None:
        if self.projections is None:
            return
        k = self._snap(line)
        if k != self._slices.get(level):
            self._slices[level] = k
            self.line_dragged.emit(level, k)

    def _dropped(self, level: str, line: pg.InfiniteLine) -> None:
        if self.projections is not None:
            self.line_dropped.emit(level, self._snap(line))
