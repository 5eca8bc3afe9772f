"""The 3D panel: a VTK render window in Qt with a small toolbar.

Volume rendering is set up on the GUI thread (it only wraps the array, no copy). Isosurfaces and
label surfaces are extracted by ``app.workers`` on a pool thread and handed back as
``vtkPolyData``; only the GUI thread touches the render window. A heatmap layer given to
:meth:`View3D.set_heat` (a Grad-CAM volume) is drawn as a translucent cloud over the isosurface or
the label surfaces (``app.views.heat3d``); it follows the layer's colour map, range, opacity and
visibility, and the surfaces are faded while it shows (``scene3d.CLOUD_SURFACE_FADE``) so the cloud
inside them is seen without touching the objects' opacity. ``scene_ready(mode)`` is emitted
each time the scene for the current mode is on screen, so tests and callers can wait for it.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor
from vtkmodules.vtkInteractionStyle import vtkInteractorStyleTrackballCamera

from app.views import heat3d, scene3d
from app.views.overlays import heatmap_lut
from app.views.scene3d import PRESETS, Scene3D
from app.workers import run_worker
from ctviewer.data.labels import LabelMap
from ctviewer.data.volume import Volume
from ctviewer.errors import InputError

#: mode key -> what the user reads in the mode box
MODE_TITLES = {"volume": "Volume rendering", "isosurface": "Isosurface", "labels": "Label surfaces"}
ISO_DEBOUNCE_MS = 400  # the spin box may tick many times while the user holds an arrow key


def _build(mode: str, key, source, *, progress, cancel, **params):
    """Worker body: the surfaces of one mode, tagged with the key they were asked for."""
    if mode == "volume":
        return mode, key, scene3d.rendering_image(source)
    if mode == "isosurface":
        return mode, key, scene3d.isosurface(source, params["value"], progress=progress, cancel=cancel)
    return mode, key, scene3d.display_surfaces(source, progress=progress, cancel=cancel)


class _Toolbar(QWidget):
    """Mode, preset, iso value, reset, save, and a line of status text."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.mode = QComboBox()
        for key, title in MODE_TITLES.items():
            self.mode.addItem(title, key)
        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        self.preset.setToolTip("Volume rendering preset (CT presets are in HU; other data is scaled to its range)")
        self.iso = QDoubleSpinBox()
        self.iso.setDecimals(1)
        self.iso.setRange(-1e6, 1e6)
        self.iso.setSingleStep(50.0)
        self.iso.setToolTip("Isosurface value (HU for CT)")
        self.reset = QPushButton("Reset")
        self.reset.setToolTip("Reset the 3D view")
        self.save = QPushButton("Save…")
        self.save.setToolTip("Save a screenshot of the 3D view")
        self.status = QLabel()
        # the panel shares the window with docks: the status line may be cut, never widen the panel
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        for combo in (self.mode, self.preset):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        # two rows when the panel is narrower than one row (a quarter of the 2x2 grid beside the docks):
        # the toolbar must not hold the 3D column wider than the slice views
        self._rows = [QHBoxLayout(), QHBoxLayout()]
        self._first = [self.mode, self.preset]
        self._second = [QLabel("Iso:"), self.iso, self.reset, self.save]
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        for row in self._rows:
            row.setContentsMargins(0, 0, 0, 0)
            layout.addLayout(row)
        gap = self.style().layoutSpacing(QSizePolicy.ControlType.PushButton, QSizePolicy.ControlType.PushButton,
                                         Qt.Orientation.Horizontal)
        gap = max(gap, 6)

        def row_width(widgets):
            return sum(w.minimumSizeHint().width() + gap for w in widgets) + 4

        self._one_row_width = row_width(self._first + self._second)
        self.setMinimumWidth(max(row_width(self._first), row_width(self._second)))
        self._two_rows: bool | None = None
        self._arrange(two_rows=False)

    def _arrange(self, two_rows: bool) -> None:
        if two_rows == self._two_rows:
            return
        self._two_rows = two_rows
        for row in self._rows:
            while row.count():
                row.takeAt(0)
        first, second = self._rows if two_rows else (self._rows[0], self._rows[0])
        for w in self._first:
            first.addWidget(w)
        for w in self._second:
            second.addWidget(w)
        second.addWidget(self.status, 1)
        if two_rows:
            first.addStretch(1)

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        self._arrange(two_rows=self.width() < self._one_row_width)


class View3D(QWidget):
    """Rotate a volume: volume rendering with presets, an isosurface, label surfaces."""

    scene_ready = Signal(str)  # the mode whose content is now drawn
    message = Signal(str)  # progress and errors, also shown in the toolbar

    def __init__(self, parent=None, orientation_marker: bool = True):
        super().__init__(parent)
        self.scene = Scene3D()
        self.toolbar = _Toolbar(self)
        self._vtk = QVTKRenderWindowInteractor(self)
        self._vtk.GetRenderWindow().AddRenderer(self.scene.renderer)
        # orbit = left drag, pan = middle drag, zoom = wheel or right drag
        style = vtkInteractorStyleTrackballCamera()
        self._vtk.SetInteractorStyle(style)
        self._vtk.Initialize()
        # big label surfaces have a coarse twin drawn while the user drags (Scene3D.set_moving)
        style.AddObserver("StartInteractionEvent", lambda *_: self.scene.set_moving(True))
        style.AddObserver("EndInteractionEvent", lambda *_: self._moving_ended())
        self._marker = self.scene.orientation_marker(self._vtk) if orientation_marker else None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toolbar)
        layout.addWidget(self._vtk, 1)

        self._volume: Volume | None = None
        self._labels: LabelMap | None = None
        self._mode, self._preset, self._iso_value = "volume", "CT bone", 300.0
        self._cache: dict = {}  # (mode, key) -> polydata / dict of polydata
        self._worker = None
        self._heat_layer, self._heat_prop, self._heat_worker = None, None, None  # the cloud, built once per copy
        self._camera_pending = True  # reset the camera once the next content is shown
        self._closed = False
        self._iso_timer = QTimer(self, singleShot=True, interval=ISO_DEBOUNCE_MS)
        self._iso_timer.timeout.connect(lambda: self.set_iso_value(self.toolbar.iso.value()))
        self._connect_toolbar()
        self._sync_toolbar()

    def _connect_toolbar(self) -> None:
        tb = self.toolbar
        tb.mode.currentIndexChanged.connect(lambda _i: self.set_mode(tb.mode.currentData()))
        tb.preset.currentTextChanged.connect(self.set_preset)
        tb.iso.valueChanged.connect(lambda _v: self._iso_timer.start())
        tb.reset.clicked.connect(self.reset_view)
        tb.save.clicked.connect(self._ask_save_screenshot)

    def _sync_toolbar(self) -> None:
        """Show the current state without re-triggering the slots."""
        tb = self.toolbar
        for w in (tb.mode, tb.preset, tb.iso):
            w.blockSignals(True)
        tb.mode.setCurrentIndex(tb.mode.findData(self._mode))
        tb.preset.setCurrentText(self._preset)
        tb.iso.setValue(self._iso_value)
        for w in (tb.mode, tb.preset, tb.iso):
            w.blockSignals(False)
        tb.preset.setEnabled(self._mode == "volume")
        tb.iso.setEnabled(self._mode == "isosurface")

    # -- public API -------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self._mode

    def set_volume(self, volume: Volume | None) -> None:
        self._volume = volume
        self._cache = {k: v for k, v in self._cache.items() if k[0] == "labels"}
        if volume is not None:
            lo, hi = volume.value_range()
            self.toolbar.iso.blockSignals(True)  # a clamped value must not start a rebuild
            self.toolbar.iso.setRange(lo, hi)
            self.toolbar.iso.blockSignals(False)
            self._iso_value = scene3d.default_iso_value(volume)
            self._preset = scene3d.default_preset(volume)
        self._camera_pending = True
        self._sync_toolbar()
        self._refresh()

    def set_labels(self, labels: LabelMap | None) -> None:
        """Show these labels' surfaces (call again after the label voxels were edited)."""
        if self._labels is not None:
            self._labels.table.changed.disconnect(self._on_table_changed)
        self._labels = labels
        if labels is not None:
            labels.table.changed.connect(self._on_table_changed)
        self._cache = {k: v for k, v in self._cache.items() if k[0] != "labels"}
        if self._mode == "labels":
            self._refresh()

    def set_mode(self, mode: str) -> None:
        """'volume', 'isosurface' or 'labels' (the mode box's titles are accepted too)."""
        mode = {title: key for key, title in MODE_TITLES.items()}.get(mode, mode)
        if mode not in MODE_TITLES:
            raise ValueError(f"unknown 3D mode {mode!r}")
        self._mode = mode
        self._sync_toolbar()
        self._refresh()

    def set_preset(self, preset: str) -> None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}")
        self._preset = preset
        self._sync_toolbar()
        if self._mode == "volume":
            self._refresh()

    def set_iso_value(self, value: float) -> None:
        self._iso_timer.stop()
        self._iso_value = float(value)
        self._sync_toolbar()
        if self._mode == "isosurface":
            self._refresh()

    def set_heat(self, layer) -> None:
        """Draw this heatmap layer's values as a cloud over the surfaces (``None``: no cloud).

        Not in volume rendering mode: two ray-cast volumes do not blend in one renderer.
        """
        if layer is self._heat_layer:
            return
        if self._heat_layer is not None:
            self._heat_layer.changed.disconnect(self._heat_changed)
        self._heat_layer = layer
        if layer is not None:
            layer.changed.connect(self._heat_changed)
        self._build_heat()

    def _build_heat(self) -> None:
        """Copy the heatmap for VTK in a worker (the old cloud stays until the copy is ready)."""
        if self._heat_worker is not None:
            self._heat_worker.cancel()
            self._heat_worker = None
        layer, self._heat_prop = self._heat_layer, None
        if layer is not None:
            self._heat_worker = run_worker(heat3d.heat_image, layer.values,
                                           on_result=lambda r, wanted=layer: self._heat_built(wanted, r),
                                           on_error=self._on_error)
        else:
            self._place_heat()
            self._render()

    @property
    def heat_shown(self) -> bool:
        """Whether a heatmap cloud is in the scene now."""
        return self.scene.heat_prop is not None

    def _heat_built(self, layer, result) -> None:
        if self._closed or layer is not self._heat_layer:
            return   # a heatmap replaced while its copy was made
        self._heat_worker = None
        self._heat_prop = heat3d.heat_volume(result[0], heatmap_lut(layer.colormap), layer.value_range,
                                             layer.opacity)
        self._place_heat()
        self._render()
        self.scene_ready.emit(self._mode)

    def _heat_changed(self, attr: str) -> None:
        if attr == "values":
            self._build_heat()
        elif attr in ("colormap", "value_range", "opacity", "visible"):
            if self._heat_prop is not None and attr != "visible":   # restyle; the voxels stay on the GPU
                layer = self._heat_layer
                self._heat_prop.SetProperty(heat3d.heat_property(
                    self._heat_prop.GetMapper().GetInput(), heatmap_lut(layer.colormap), layer.value_range,
                    layer.opacity))
            self._place_heat()
            self._render()

    def _place_heat(self) -> None:
        layer = self._heat_layer
        show = (layer is not None and layer.visible and self._heat_prop is not None and self._mode != "volume"
                and self._volume is not None)
        self.scene.set_heat(self._heat_prop if show else None)

    def reset_view(self) -> None:
        self.scene.reset_camera()
        self._render()

    def _moving_ended(self) -> None:
        self.scene.set_moving(False)
        QTimer.singleShot(0, self._render)   # the finer surfaces, once the drag is over

    def set_clip_plane(self, origin=None, normal=None) -> None:
        """Cut the surfaces with a plane (LPS mm, ``normal`` towards what stays); ``None`` shows them whole."""
        self.scene.set_clip_plane(origin, normal)
        self._render()

    def vtk_widget(self) -> QWidget:
        """The render area (for painting its real pixels into a grab of the whole window)."""
        return self._vtk

    def screenshot(self):
        """The 3D area's pixels as drawn by VTK, (H, W, 3) uint8 (device pixels)."""
        window = self._vtk.GetRenderWindow()
        window.Render()
        return scene3d.read_pixels(window)

    def save_screenshot(self, path) -> None:
        """Write the 3D area as PNG; the file appears complete or not at all."""
        from app.snapshot import save_png

        save_png(self.screenshot(), Path(path))

    # -- building the scene -----------------------------------------------------------------------
    def _refresh(self) -> None:
        """Show the current mode: at once where possible, else after a worker builds surfaces."""
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        self.scene.clear()
        if self._volume is None:
            return self._shown("")
        try:
            if self._mode == "labels" and self._labels is None:
                return self._shown("no label map to show")
            key = self._key(self._mode)
            if (self._mode, key) in self._cache:
                return self._show_surfaces(self._mode, self._cache[(self._mode, key)])
        except InputError as exc:
            return self._shown(str(exc))
        source = self._labels if self._mode == "labels" else self._volume
        self._set_status(f"building {MODE_TITLES[self._mode].lower()}…")
        self._worker = run_worker(_build, self._mode, key, source, value=self._iso_value,
                                  on_result=self._on_built, on_error=self._on_error,
                                  on_progress=self._on_progress)

    def _on_built(self, payload) -> None:
        mode, key, result = payload
        self._cache[(mode, key)] = result
        if not self._closed and mode == self._mode and key == self._key(mode):  # else a stale result
            self._worker = None
            self._show_surfaces(mode, result)

    def _key(self, mode: str):
        """What a built result depends on besides the mode (stale results are dropped)."""
        return {"volume": id(self._volume), "isosurface": self._iso_value}.get(mode, id(self._labels))

    def _show_surfaces(self, mode: str, result) -> None:
        if mode == "volume":
            image, stride = result
            try:
                self.scene.set_volume_rendering(self._volume, self._preset, image)
            except InputError as exc:
                return self._shown(str(exc))
            return self._shown("" if stride == 1 else f"preview at 1/{stride} resolution")
        if mode == "isosurface":
            self.scene.set_surface(result)
            note = "" if result.GetNumberOfCells() else f"nothing crosses {self._iso_value:g}"
        else:
            self.scene.set_label_surfaces(result, self._labels.table)
            note = "" if result else "the label map is empty"
            if result and getattr(result, "stride", 1) > 1:   # too many triangles to turn smoothly
                note = f"surfaces at 1/{result.stride} resolution ({result.triangles() / 1e6:.1f} M triangles)"
        self._shown(note)

    def _shown(self, note: str = "") -> None:
        self._place_heat()   # clear() took the cloud out with the rest
        if self._camera_pending and (self.scene.volume_prop or self.scene.surface_actor or self.scene.label_actors):
            self.scene.reset_camera()
            self._camera_pending = False
        self._set_status(note)
        self._render()
        self.scene_ready.emit(self._mode)

    def _on_progress(self, fraction: float, message: str) -> None:
        self._set_status(f"{message} {100 * fraction:.0f} %")

    def _on_error(self, exc: Exception) -> None:
        self._worker = None
        self._set_status(f"3D: {exc}")

    def _on_table_changed(self) -> None:
        if not self.scene.label_actors:   # nothing drawn from the table: spare a full render (~1 s on software GL)
            return
        self.scene.update_label_colours(self._labels.table if self._labels else None)
        self._render()

    def _set_status(self, text: str) -> None:
        self.toolbar.status.setText(text)
        if text:
            self.message.emit(text)

    def _render(self) -> None:
        if not self._closed and self.isVisible():
            self._vtk.GetRenderWindow().Render()

    def _ask_save_screenshot(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", "screenshot.png", "PNG images (*.png)")
        if not path:
            return
        if not path.lower().endswith(".png"):
            path += ".png"
        try:
            self.save_screenshot(path)
            self._set_status(f"saved {path}")
        except (InputError, OSError) as exc:
            self._set_status(f"could not save the screenshot: {exc}")

    # -- shutdown ---------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop everything that could render later and close the VTK widget (idempotent).

        Called by ``closeEvent``; a window that holds this panel as a child (whose close event
        Qt does not deliver to children) calls it from its own ``closeEvent``.
        """
        if self._closed:
            return
        self._closed = True
        self._iso_timer.stop()
        for worker in (self._worker, self._heat_worker):
            if worker is not None:
                worker.cancel()
        self._worker = self._heat_worker = None
        if self._heat_layer is not None:
            self._heat_layer.changed.disconnect(self._heat_changed)
            self._heat_layer = None
        if self._labels is not None:
            self._labels.table.changed.disconnect(self._on_table_changed)
        if self._marker is not None:
            self._marker.SetEnabled(0)
            self._marker = None
        self._vtk.close()  # its own closeEvent finalizes the render window, in Qt's order

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)
