"""The linked views of one study: axial, coronal, sagittal and the 3D panel, in three layouts.

* ``grid``: 2x2 (axial, coronal / sagittal, 3D);
* ``one_plus_two``: one big view (the focused one) with two small ones beside it;
* ``single``: one view filling the area (photos always use it).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from app.views.display import DisplayState
from app.views.slice_view import SliceView
from ctviewer.data.study import Study
from ctviewer.imaging.window import default_window

LAYOUTS = ("grid", "one_plus_two", "single")


class MprViewer(QWidget):
    """Three linked slice views sharing the study cursor and window, plus an optional 3D panel."""

    hovered = Signal(object)
    layout_changed = Signal(str)

    def __init__(self, parent=None, with_3d: bool = True):
        super().__init__(parent)
        self.study: Study | None = None
        self.display = DisplayState(parent=self)
        self.views = {name: SliceView(name) for name in ("axial", "coronal", "sagittal")}
        for view in self.views.values():
            view.hovered.connect(self.hovered)
        self.view3d = None
        if with_3d:
            from app.views.view3d import View3D  # VTK loads only when a 3D panel is wanted

            self.view3d = View3D()
        self.focus = "axial"
        self.layout_name = "grid"
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._root: QSplitter | None = None
        # Panels not shown in the current layout wait here, so Qt still owns (and deletes) them.
        self._parking = QWidget(self)
        self._parking.hide()
        self.set_layout("grid")
        # label surfaces are rebuilt when the painting pauses, not after every dab
        self._surfaces_timer = QTimer(self, singleShot=True, interval=1500)
        self._surfaces_timer.timeout.connect(self._update_3d_labels)

    # -- painting --------------------------------------------------------------------------------
    def set_painter(self, painter) -> None:
        """Route left-button gestures of every slice view to ``painter`` while a tool is active."""
        for view in self.views.values():
            view.set_painter(painter)
        painter.painting_changed.connect(self._set_paint_mode)

    def _set_paint_mode(self, on: bool) -> None:
        for view in self.views.values():
            view.set_paint_mode(on)

    def labels_edited(self, bbox=None) -> None:
        """Voxels were painted: the slice views redraw themselves; the 3D surfaces follow later."""
        if self.view3d is not None:
            self._surfaces_timer.start()

    # -- study -------------------------------------------------------------------------------
    def set_study(self, study: Study | None) -> None:
        if self.study is not None:
            self.study.layers.events.inserted.disconnect(self._update_3d_labels)
            self.study.layers.events.removed.disconnect(self._update_3d_labels)
        self.study = study
        if study is not None:
            self.display.set_window(*default_window(study.image))
            study.layers.events.inserted.connect(self._update_3d_labels)
            study.layers.events.removed.connect(self._update_3d_labels)
        for view in self.views.values():
            view.set_study(study, self.display)
        if self.view3d is not None:
            self.view3d.set_volume(None if study is None or study.image.is_photo else study.image)
            self._update_3d_labels()
        if study is not None and study.image.is_photo:
            self.focus = "axial"
            self.set_layout("single")

    def _update_3d_labels(self, *_) -> None:
        """The 3D panel shows the surfaces of the topmost label layer, and the topmost heatmap meant for
        3D (a Grad-CAM volume) as a cloud over them."""
        if self.view3d is None:
            return
        layers = self.study.layers.by_kind("labels") if self.study is not None else []
        self.view3d.set_labels(layers[-1].labels if layers else None)
        heat = [h for h in self.study.layers.by_kind("heatmap") if h.in_3d] if self.study is not None else []
        self.view3d.set_heat(heat[-1] if heat else None)

    # -- layouts -----------------------------------------------------------------------------
    def _panels(self) -> dict[str, QWidget]:
        panels: dict[str, QWidget] = dict(self.views)
        if self.view3d is not None:
            panels["3d"] = self.view3d
        return panels

    def set_layout(self, name: str, focus: str | None = None) -> None:
        if name not in LAYOUTS:
            raise ValueError(f"unknown layout {name!r}; choose one of {', '.join(LAYOUTS)}")
        if focus is not None:
            self.focus = focus
        panels = self._panels()
        for widget in panels.values():
            widget.setParent(self._parking)
        if self._root is not None:
            self._root.setParent(None)
            self._root.deleteLater()
        root = QSplitter(Qt.Orientation.Horizontal)
        if name == "grid":
            order = ["axial", "coronal", "sagittal", "3d"]
            cols = [QSplitter(Qt.Orientation.Vertical), QSplitter(Qt.Orientation.Vertical)]
            for n, key in enumerate(k for k in order if k in panels):
                cols[n % 2].addWidget(panels[key])
            for col in cols:
                root.addWidget(col)
        elif name == "one_plus_two":
            big = self.focus if self.focus in panels else "axial"
            small = [k for k in ("axial", "coronal", "sagittal", "3d") if k != big and k in panels][:2]
            root.addWidget(panels[big])
            side = QSplitter(Qt.Orientation.Vertical)
            for key in small:
                side.addWidget(panels[key])
            root.addWidget(side)
        else:
            root.addWidget(panels.get(self.focus, panels["axial"]))
        for widget in panels.values():
            widget.setVisible(widget.parent() is not self._parking)
        self._layout.addWidget(root)
        root.show()  # a layout shows new children only later (queued); views must be live now
        self._root = root
        self.layout_name = name
        # the layout's own proportions hold, whatever was shown before, until the user drags a handle
        self._user_sized = False
        for splitter in [root, *root.findChildren(QSplitter)]:
            splitter.splitterMoved.connect(self._handle_dragged)
        self._fit_sizes()
        self.layout_changed.emit(name)

    def _handle_dragged(self, *_) -> None:
        self._user_sized = True

    def _fit_sizes(self) -> None:
        """Splitter sizes from the area we have: equal quarters for the grid; for one big and two small,
        the big view two thirds of the width and the small ones half the height each."""
        width, height = self.width(), self.height()
        if self._root is None or width < 100 or height < 100:
            return
        share = {"grid": 1 / 2, "one_plus_two": 2 / 3}.get(self.layout_name)
        if share is None:
            return
        left = round(width * share)
        self._root.setSizes([left, width - left])
        for col in self._root.findChildren(QSplitter):
            col.setSizes([height // 2, height - height // 2])

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        if not getattr(self, "_user_sized", True):
            self._fit_sizes()

    def reset_views(self) -> None:
        for view in self.views.values():
            view.reset_view()
        if self.view3d is not None:
            self.view3d.reset_view()

    def close_views(self) -> None:
        """Release the study before the window closes (pyqtgraph items must not outlive Qt)."""
        self._surfaces_timer.stop()
        for view in self.views.values():
            view.set_study(None, None)
        if self.view3d is not None:
            self.view3d.shutdown()  # stops its timers and workers; Qt sends children no close event
