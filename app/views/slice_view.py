"""One slice view (axial, coronal or sagittal) with overlays, crosshair and the field's mouse keys.

Mouse and keys (radiology conventions): wheel, PageUp/PageDown, Up/Down move the slice;
Ctrl+wheel zooms; left click/drag moves the crosshair; right drag or Ctrl+left drag changes
window/level; middle drag pans; R or Home resets the view. While a paint tool is active the left
button paints instead (the view hands the gesture to the window's tool dispatcher).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics
from PySide6.QtWidgets import QGraphicsEllipseItem, QLabel

from app.views.display import DisplayState
from app.tools.base import PlanePoint
from app.views.overlays import OverlayItems
from app.views.view_texts import PlacedText, place_texts
from ctviewer.data.study import Study
from ctviewer.imaging import slicing

# Our arrays are [row, column]; pyqtgraph's default is column-major (STYLE.md). Told once, here,
# because every pyqtgraph image in the app is drawn by a module that imports this one.
pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)


class SliceViewBox(pg.ViewBox):
    """A ViewBox that turns mouse gestures into slice, cursor and window requests."""

    slice_step = Signal(int)
    #: where the wheel turned (view coordinates), sent before the slice step it asks for
    wheel_at = Signal(QPointF)
    cursor_at = Signal(QPointF)
    window_drag = Signal(float, float)
    #: a paint gesture: phase ('press', 'move', 'release', 'click', 'double') and view position
    paint = Signal(str, QPointF)

    def __init__(self):
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self._zoom_mode = False
        self.paint_mode = False

    def wheelEvent(self, ev, axis=None):
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)  # zoom about the cursor
            return
        delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
        self.wheel_at.emit(self.mapSceneToView(ev.scenePos()))
        if delta:
            self.slice_step.emit(1 if delta > 0 else -1)
        ev.accept()

    def mouseClickEvent(self, ev):
        if ev.button() == Qt.MouseButton.LeftButton and self.paint_mode:
            self.paint.emit("double" if ev.double() else "click", self.mapSceneToView(ev.scenePos()))
            ev.accept()
        elif ev.button() == Qt.MouseButton.LeftButton:
            self.cursor_at.emit(self.mapSceneToView(ev.scenePos()))
            ev.accept()
        else:
            ev.ignore()

    def mouseDragEvent(self, ev, axis=None):
        button, mods = ev.button(), ev.modifiers()
        ev.accept()
        if button == Qt.MouseButton.RightButton or (
                button == Qt.MouseButton.LeftButton and mods & Qt.KeyboardModifier.ControlModifier):
            delta = ev.screenPos() - ev.lastScreenPos()
            self.window_drag.emit(float(delta.x()), float(delta.y()))
        elif button == Qt.MouseButton.MiddleButton:
            delta = self.mapSceneToView(ev.lastScenePos()) - self.mapSceneToView(ev.scenePos())
            self.translateBy(x=delta.x(), y=delta.y())
        elif button == Qt.MouseButton.LeftButton and self.paint_mode:
            if ev.isStart():
                self.paint.emit("press", self.mapSceneToView(ev.buttonDownScenePos()))
            self.paint.emit("release" if ev.isFinish() else "move", self.mapSceneToView(ev.scenePos()))
        elif button == Qt.MouseButton.LeftButton:
            self.cursor_at.emit(self.mapSceneToView(ev.scenePos()))


class SliceView(pg.GraphicsView):
    """Shows one plane of a study; follows the study's cursor and the shared window."""

    #: (k, j, i) voxel under the mouse, or None when the mouse left the image.
    hovered = Signal(object)

    def __init__(self, orientation: str = "axial", parent=None):
        super().__init__(parent, background="k")
        self.orientation = orientation
        self.plane = slicing.plane(orientation)
        self.study: Study | None = None
        self.display: DisplayState | None = None
        self.slice_index = 0
        self.box = SliceViewBox()
        self.setCentralItem(self.box)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.box.addItem(self.image_item)
        self.overlays = OverlayItems(self.box, orientation)
        pen = pg.mkPen(QColor(255, 220, 0, 140), width=1, style=Qt.PenStyle.DashLine)
        self.h_line = pg.InfiniteLine(angle=0, pen=pen, movable=False)
        self.v_line = pg.InfiniteLine(angle=90, pen=pen, movable=False)
        for line in (self.h_line, self.v_line):
            line.setZValue(1000)
            self.box.addItem(line, ignoreBounds=True)
        self.painter = None   # the window's ToolDispatcher (app/tools/dispatch.py), when painting is possible
        self.brush_outline = QGraphicsEllipseItem()
        self.brush_outline.setPen(pg.mkPen(QColor(255, 255, 255, 200), width=1))
        self.brush_outline.setZValue(1001)
        self.brush_outline.hide()
        self.box.addItem(self.brush_outline, ignoreBounds=True)
        # orientation letters and corner texts, placed by measured size in _place_texts
        self._letters = {edge: "" for edge in ("left", "right", "top", "bottom")}
        self._corners: dict[str, list[str]] = {}
        self._labels = {name: self._make_label() for name in (*self._letters, "top_left", "bottom_left")}
        self._hover_pos: QPointF | None = None   # the mouse over this view (view coordinates), if it is
        self.box.slice_step.connect(self.step_slice)
        self.box.wheel_at.connect(self._wheel_at)
        self.box.cursor_at.connect(self._cursor_at)
        self.box.window_drag.connect(self._window_drag)
        self.box.paint.connect(self._paint)
        self.scene().sigMouseMoved.connect(self._mouse_moved)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setToolTip("")

    # -- set-up ------------------------------------------------------------------------------
    def _make_label(self) -> QLabel:
        label = QLabel(self)
        # a dark veil keeps the yellow readable over bone and bright photos
        label.setStyleSheet("color: #ffd24a; background: rgba(0, 0, 0, 110); padding: 0px; margin: 0px;")
        font = QFont()
        font.setBold(True)
        label.setFont(font)
        label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        label.setIndent(1)
        label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        return label

    def set_study(self, study: Study | None, display: DisplayState | None) -> None:
        if self.study is not None:
            self.study.cursor_changed.disconnect(self._on_cursor)
        if self.display is not None:
            self.display.window_changed.disconnect(self._apply_window)
        self.study, self.display = study, display
        self.overlays.set_study(study)
        if study is None:
            self.image_item.clear()
            self._letters = {edge: "" for edge in self._letters}
            self._corners = {}
            self._place_texts()
            return
        study.cursor_changed.connect(self._on_cursor)
        if display is not None:
            display.window_changed.connect(self._apply_window)
        img = study.image
        row_mm, col_mm = slicing.pixel_size(img.spacing, self.orientation)
        self._pixel = (row_mm, col_mm)
        p = self.plane
        self._rect = QRectF(0, 0, img.shape[p.col_axis] * col_mm, img.shape[p.row_axis] * row_mm)
        # a photo has no patient, so no anatomical directions
        self._letters = ({edge: "" for edge in self._letters} if img.is_photo
                         else slicing.edge_letters(img.direction, self.orientation))
        self.slice_index = study.cursor[p.normal_axis]
        self.refresh()
        self.reset_view()
        self._on_cursor(study.cursor)

    # -- drawing -----------------------------------------------------------------------------
    @property
    def slice_count(self) -> int:
        return slicing.slice_count(self.study.image.shape, self.orientation) if self.study else 0

    def refresh(self) -> None:
        """Redraw the image and every overlay at the current slice."""
        if self.study is None:
            return
        img = self.study.image
        plane_img = slicing.extract(img.array, self.orientation, self.slice_index)
        if img.is_rgb:
            top = 255 if plane_img.dtype == np.uint8 else float(plane_img.max() or 1)
            self.image_item.setImage(plane_img, autoLevels=False, levels=(0, top))
        else:
            lv = self.display.levels if self.display else (float(plane_img.min()), float(plane_img.max()))
            self.image_item.setImage(plane_img, autoLevels=False, levels=lv)
        self.image_item.setRect(self._rect)
        self.overlays.refresh(self.slice_index, self._rect)
        self._update_info()

    def _apply_window(self, width: float, level: float) -> None:
        if self.study is not None and not self.study.image.is_rgb:
            self.image_item.setLevels(self.display.levels)
            self._update_info()

    def _update_info(self) -> None:
        """The corner texts: which slice (top left) and the window (bottom left), each in a long and
        shorter forms for narrow views."""
        img = self.study.image if self.study is not None else None
        where = f"{self.slice_index + 1}/{self.slice_count}"
        if img is not None and img.is_photo:
            # a photo is not an axial slice; a single one needs no slice number at all
            forms = ["Photo"] if self.slice_count == 1 else [f"Photo {where}", where]
        else:
            forms = [f"{self.orientation.capitalize()} {where}", f"{self.orientation[:3].capitalize()} {where}",
                     where]
        corners = {"top_left": forms, "bottom_left": []}
        if self.display is not None and img is not None and not img.is_rgb:
            w, lv = self.display.window
            corners["bottom_left"] = [f"W {w:.0f} L {lv:.0f}", f"{w:.0f}/{lv:.0f}"]
        self._corners = corners
        self._place_texts()

    def overlay_texts(self) -> dict[str, PlacedText]:
        """The texts drawn over the view (orientation letters, corner texts) with their rectangles in
        this widget's coordinates, as placed for its current size."""
        fm = QFontMetrics(self._labels["top_left"].font())
        return place_texts(self.width(), self.height(), fm, self._letters, self._corners)

    def _place_texts(self) -> None:
        placed = self.overlay_texts()
        for name, label in self._labels.items():
            if name in placed:
                label.setText(placed[name].text)
                label.setGeometry(placed[name].rect)
            label.setVisible(name in placed)

    def reset_view(self) -> None:
        if self.study is not None:
            self.box.setRange(self._rect, padding=0.02)

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        if not hasattr(self, "_labels"):  # pyqtgraph resizes once inside its own __init__
            return
        self._place_texts()

    # -- cursor and slices -------------------------------------------------------------------
    def _on_cursor(self, cursor) -> None:
        p = self.plane
        k = cursor[p.normal_axis]
        if k != self.slice_index:
            self.slice_index = k
            self.refresh()
            if self._hover_pos is not None:
                # the mouse stayed still while the slice moved under it (wheel, keys)
                self.hovered.emit(self._voxel_at(self._hover_pos))
        row, col, _ = slicing.to_screen(self.orientation, self.study.image.shape, cursor)
        self.h_line.setPos(row * self._pixel[0])
        self.v_line.setPos(col * self._pixel[1])

    def set_slice(self, index: int) -> None:
        if self.study is None:
            return
        index = int(np.clip(index, 0, self.slice_count - 1))
        cursor = list(self.study.cursor)
        cursor[self.plane.normal_axis] = index
        self.study.cursor = tuple(cursor)

    def step_slice(self, steps: int) -> None:
        self.set_slice(self.slice_index + steps)

    def _voxel_at(self, pos: QPointF):
        row, col = pos.y() / self._pixel[0], pos.x() / self._pixel[1]
        shape = self.study.image.shape
        p = self.plane
        if not (0 <= row < shape[p.row_axis] and 0 <= col < shape[p.col_axis]):
            return None
        return slicing.to_voxel(self.orientation, shape, self.slice_index, row, col)

    def _cursor_at(self, pos: QPointF) -> None:
        if self.study is not None:
            voxel = self._voxel_at(pos)
            if voxel is not None:
                self.study.cursor = voxel

    def _window_drag(self, dx: float, dy: float) -> None:
        if self.display is not None:
            self.display.drag(dx, dy)

    def _mouse_moved(self, scene_pos) -> None:
        if self.study is not None:
            pos = self.box.mapSceneToView(scene_pos)
            self._hover_pos = pos
            self.hovered.emit(self._voxel_at(pos))
            self._show_brush(pos)

    def _wheel_at(self, pos: QPointF) -> None:
        self._hover_pos = pos

    def leaveEvent(self, ev):
        # slices changed from elsewhere then are not under this mouse
        self._hover_pos = None
        super().leaveEvent(ev)

    # -- painting ------------------------------------------------------------------------------
    def set_painter(self, painter) -> None:
        """Let ``painter`` (a ToolDispatcher) receive left-button gestures while a tool is active."""
        self.painter = painter
        self.set_paint_mode(painter is not None and painter.painting)

    def set_paint_mode(self, on: bool) -> None:
        self.box.paint_mode = bool(on)
        self.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)
        if not on:
            self.brush_outline.hide()

    def plane_point(self, pos: QPointF, clamp: bool = False) -> PlanePoint | None:
        """The mouse position ``pos`` (view coordinates, mm) as a point of this slice."""
        if self.study is None:
            return None
        shape = self.study.image.shape
        p = self.plane
        rows, cols = shape[p.row_axis], shape[p.col_axis]
        screen_row, col = pos.y() / self._pixel[0], pos.x() / self._pixel[1]
        if not clamp and not (0 <= screen_row < rows and 0 <= col < cols):
            return None
        screen_row, col = min(max(screen_row, 0.0), rows - 1e-3), min(max(col, 0.0), cols - 1e-3)
        row = (rows - screen_row) - 0.5 if p.flip_rows else screen_row - 0.5  # voxel centres at integers
        voxel = slicing.to_voxel(self.orientation, shape, self.slice_index, screen_row, col)
        return PlanePoint(self.orientation, self.slice_index, row, col - 0.5, voxel)

    def scene_xy(self, point: PlanePoint) -> tuple[float, float]:
        """View coordinates (mm) of a plane point: the inverse of :meth:`plane_point`."""
        rows = self.study.image.shape[self.plane.row_axis]
        screen_row = rows - (point.row + 0.5) if self.plane.flip_rows else point.row + 0.5
        return (point.col + 0.5) * self._pixel[1], screen_row * self._pixel[0]

    def _paint(self, phase: str, pos: QPointF) -> None:
        if self.painter is None or self.study is None:
            return
        at = self.plane_point(pos, clamp=phase in ("move", "release"))
        if at is not None:
            self.painter.handle(self, phase, at)
        self._show_brush(pos)

    def _show_brush(self, pos: QPointF) -> None:
        radii = None
        if self.painter is not None and self.box.paint_mode and self.study is not None:
            radii = self.painter.brush_radii_mm(self.orientation, self.study.image.spacing)
        at = self.plane_point(pos) if radii is not None else None
        if at is None:
            self.brush_outline.hide()
            return
        x, y = self.scene_xy(at)
        ry, rx = radii
        self.brush_outline.setRect(QRectF(x - rx, y - ry, 2 * rx, 2 * ry))
        self.brush_outline.show()

    def keyPressEvent(self, ev):
        key = ev.key()
        big = 10 if ev.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1
        steps = {Qt.Key.Key_Up: big, Qt.Key.Key_Down: -big, Qt.Key.Key_Right: big, Qt.Key.Key_Left: -big,
                 Qt.Key.Key_PageUp: 10, Qt.Key.Key_PageDown: -10}
        if key in steps:
            self.step_slice(steps[key])
        elif key in (Qt.Key.Key_R, Qt.Key.Key_Home):
            self.reset_view()
        elif key == Qt.Key.Key_Escape and self.painter is not None:
            self.painter.cancel()
        else:
            super().keyPressEvent(ev)
