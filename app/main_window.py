"""The main window: assembles the viewer, the docks, the menus and the status bar.

It holds no image logic: opening goes through :mod:`app.open_study` (work in workers), the
views follow the study's state, the docks edit layers.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QInputDialog, QLabel, QMainWindow, QProgressBar,
                               QPushButton, QScrollArea, QTabWidget, QWidget)

from app.annotation import Annotator
from app.docks.labels_dock import LabelsDock
from app.docks.layers_dock import LayersDock
from app.docks.model_dock import ModelDock
from app.docks.soil_dock import SoilDock
from app.docks.thin_section_dock import ThinSectionDock
from app.label_actions import LabelActions, ask_restore, ask_save_path, ask_unsaved
from app.label_saving import LabelKeeper
from app.open_study import StudyOpener
from app.tools.dispatch import ToolDispatcher
from app.views.mpr import MprViewer
from app.workers import WORKER_ERRORS
from ctviewer.data.study import Study
from ctviewer.imaging.window import PRESETS

MAX_RECENT = 10
DOCK_SHARE = 0.27   # of the window's width, for the side docks of a window opened the first time
FILE_FILTER = ("Images (*.dcm *.nii *.nii.gz *.nrrd *.nhdr *.npy *.npz *.png *.jpg *.jpeg *.tif *.tiff);;"
               "All files (*)")


def _scroll_when_narrow(dock) -> None:
    """The dock's contents scroll when the dock is narrower (or shorter) than they are, so the widest
    dock in a tab group no longer sets the width of all the docks, and the images keep their room."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    area.setWidget(dock.widget())
    dock.setWidget(area)


class MainWindow(QMainWindow):
    def __init__(self, with_3d: bool = True, settings: QSettings | None = None):
        super().__init__()
        self.setWindowTitle("ctviewer")
        self.resize(1400, 900)
        self.settings = settings or QSettings("ctviewer", "ctviewer")
        self.study: Study | None = None
        self.viewer = MprViewer(with_3d=with_3d)
        self.setCentralWidget(self.viewer)
        self.layers_dock = LayersDock(self)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.layers_dock)
        # painting: the annotator holds the paint state, the dispatcher routes view gestures to tools,
        # the keeper saves, autosaves and restores labels
        self.annotator = Annotator(self)
        self.dispatcher = ToolDispatcher(self.annotator, self)
        self.viewer.set_painter(self.dispatcher)
        self.annotator.edited.connect(self.viewer.labels_edited)
        self.keeper = LabelKeeper(self.annotator, self)
        self.keeper.ask_restore = lambda entries: self.ask_restore(entries)
        self.keeper.error.connect(self.show_error)
        self.keeper.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.labels_dock = LabelsDock(self.annotator, self)
        self.labels_dock.error.connect(self.show_error)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.labels_dock)
        self.model_dock = ModelDock(self)
        self.model_dock.error.connect(self.show_error)
        self.model_dock.segmentation_added.connect(self._show_segmentation)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.model_dock)
        self.tabifyDockWidget(self.labels_dock, self.model_dock)
        self.thin_section_dock = ThinSectionDock(self)
        self.thin_section_dock.error.connect(self.show_error)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.thin_section_dock)
        self.tabifyDockWidget(self.model_dock, self.thin_section_dock)
        self.soil_dock = SoilDock(self)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.soil_dock)
        self.tabifyDockWidget(self.thin_section_dock, self.soil_dock)
        self.labels_dock.raise_()
        # dock tabs at the top of their area, where they are seen (Qt puts them at the bottom)
        self.setTabPosition(Qt.DockWidgetArea.AllDockWidgetAreas, QTabWidget.TabPosition.North)
        for dock in (self.layers_dock, self.labels_dock, self.model_dock, self.thin_section_dock, self.soil_dock):
            _scroll_when_narrow(dock)
        self._bins_dialog = None
        self.opener = StudyOpener(self)
        self.opener.opened.connect(self.set_study)
        self.opener.failed.connect(self.show_error)
        self.opener.progress.connect(self._show_progress)
        self.opener.busy.connect(self._set_busy)
        self.opener.choose_series.connect(self._choose_series)
        self.opener.ask_map_colours.connect(lambda path, reply: reply(self.ask_map_colours(path)))
        WORKER_ERRORS.error.connect(self.show_error)
        self._build_status_bar()
        self._build_menus()
        self.label_actions = LabelActions(self)
        self.viewer.hovered.connect(self._show_hover)
        self.setAcceptDrops(True)
        self._restored = self._restore_geometry()
        # the docks keep a share of the width until the user drags their edge (or one was restored)
        self._fit_docks = not self._restored

    # -- geometry: the window as it was closed, or maximised the first time ---------------------------
    def _restore_geometry(self) -> bool:
        geometry, state = self.settings.value("window/geometry"), self.settings.value("window/state")
        if not geometry:
            return False
        self.restoreGeometry(geometry)
        if state:
            self.restoreState(state)
        return True

    def show_as_last_time(self) -> None:
        """Show at the geometry the window was closed at, or maximised the first time."""
        if self._restored:
            self.show()
        else:
            self.showMaximized()

    def _save_geometry(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        if self._fit_docks:
            docks = [d for d in (self.layers_dock, self.labels_dock) if not d.isFloating()]
            width = round(self.width() * DOCK_SHARE)
            self.resizeDocks(docks, [width] * len(docks), Qt.Orientation.Horizontal)
            # the layer list needs less height than the label table and paint options below it
            if len(docks) == 2:
                height = self.centralWidget().height()
                self.resizeDocks(docks, [height * 3 // 10, height - height * 3 // 10], Qt.Orientation.Vertical)

    def event(self, ev) -> bool:
        # a press that reaches the window itself (a dock edge, or one no child took): the user sizes the docks
        if ev.type() == QEvent.Type.MouseButtonPress:
            self._fit_docks = False
        return super().event(ev)

    # -- building ----------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.position_label = QLabel("")
        self.position_label.setObjectName("position")
        self.position_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bar.addPermanentWidget(self.position_label, 1)
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.setRange(0, 1000)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.opener.cancel)
        row.addWidget(self.progress_bar)
        row.addWidget(self.cancel_button)
        bar.addPermanentWidget(box)
        self._progress_box = box
        box.hide()

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        self._action(m, "&Open file…", self.open_file_dialog, QKeySequence.StandardKey.Open)
        self._action(m, "Open &folder (DICOM series, numbered slices)…", self.open_folder_dialog, "Ctrl+Shift+O")
        self._action(m, "Open &thin-section folder…", self.thin_section_dock.open_folder_dialog)
        self._action(m, "Soil &cube and objects…", self.soil_dock.show_tab)
        self._action(m, "Open &demo study", self.opener.open_demo)
        self._action(m, "Open demo so&il cube", self.opener.open_demo_soil)
        self._action(m, "Open demo thin sections", self.open_demo_thin_sections)
        self.recent_menu = m.addMenu("Open &recent")
        self._action(m, "Add &label map…", self.open_labels_dialog, "Ctrl+L")
        self._action(m, "Review slice &picks…", self.open_review_dialog)
        m.addSeparator()
        self._action(m, "Save &screenshot…", self.save_screenshot_dialog, "Ctrl+Shift+S")
        m.addSeparator()
        self._action(m, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        self._fill_recent()

        v = self.menuBar().addMenu("&View")
        self._action(v, "2×2 &grid", lambda: self.viewer.set_layout("grid"), "Ctrl+1")
        self._action(v, "One big, two &small", lambda: self.viewer.set_layout("one_plus_two"), "Ctrl+2")
        self._action(v, "&Single view", lambda: self.viewer.set_layout("single"), "Ctrl+3")
        focus = v.addMenu("Big view shows")
        for name in ("axial", "coronal", "sagittal", "3d"):
            self._action(focus, name.capitalize() if name != "3d" else "3D",
                         lambda _=False, n=name: self.viewer.set_layout(
                             self.viewer.layout_name if self.viewer.layout_name != "grid" else "one_plus_two", n))
        self._action(v, "&Reset views", self.viewer.reset_views, "Ctrl+R")
        models = self.menuBar().addMenu("&Models")
        models.addAction(self.model_dock.toggleViewAction())
        self._action(models, "&Run selected model on this study", self.model_dock.run_selected)
        self._action(models, "&Train…", self.model_dock.open_train_dialog)
        self.window_menu = self.menuBar().addMenu("&Window/level")
        self._fill_window_menu()

    def _fill_window_menu(self) -> None:
        menu = self.window_menu
        menu.clear()
        for n, (name, (width, level)) in enumerate(PRESETS.items(), start=1):
            self._action(menu, f"{name.capitalize()}  ({width:.0f}/{level:.0f})",
                         lambda _=False, w=width, lv=level: self.viewer.display.set_window(w, lv), f"F{n}")
        if self.study is not None and self.study.image.window is not None:
            width, level = self.study.image.window
            self._action(menu, f"From the file  ({width:.0f}/{level:.0f})",
                         lambda _=False: self.viewer.display.set_window(*self.study.image.window), "F6")

    # -- opening -----------------------------------------------------------------------------
    def open_paths(self, paths: list[str | Path]) -> None:
        from app.thin_section.work import looks_like_project

        if len(paths) == 1 and looks_like_project(paths[0]):   # a folder of photos: the thin-section dock
            self.thin_section_dock.open_folder(paths[0])
            return
        self.opener.open_paths([Path(p) for p in paths])

    def open_demo_thin_sections(self) -> None:
        """The demo thin-section project (six synthetic photos, made on first use) in its dock."""
        self.opener.make_demo_thin_sections(self.thin_section_dock.open_folder)

    def open_file_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open image", "", FILE_FILTER)
        if paths:
            self.open_paths(paths)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a DICOM series or a folder of numbered slices")
        if folder:
            self.open_paths([folder])

    def open_review_dialog(self) -> None:
        """The L3/T12 review queue on a folder of studies or a picks CSV, in a window of its own."""
        from app.review.opening import ask_review_paths, open_review_window
        from ctviewer.errors import InputError

        paths = ask_review_paths(self)
        if paths:
            try:
                self.review_window = open_review_window(paths, parent=self)
            except InputError as exc:
                self.show_error(str(exc))

    def _show_segmentation(self, layer) -> None:
        """A model's prediction: make it the labels being edited and show its surfaces in 3D."""
        self.annotator.set_layer(layer)
        if self.viewer.view3d is not None:
            self.viewer.view3d.set_mode("labels")

    def open_labels_dialog(self) -> None:
        if self.study is None:
            self.show_error("Open an image first, then add its label map.")
            return
        path, _ = QFileDialog.getOpenFileName(self, "Add label map", "", FILE_FILTER)
        if path:
            self.opener.add_labels(self.study, Path(path))

    def _choose_series(self, descriptions: list[str], reply) -> None:
        choice, ok = QInputDialog.getItem(self, "Choose a series", "Series found:", descriptions, 0, False)
        reply(descriptions.index(choice) if ok else None)

    def set_study(self, study: Study) -> None:
        if self.study is not None and not self._settle_unsaved():
            return
        self.study = study
        self.annotator.set_study(study)
        self.viewer.set_study(study)
        self.layers_dock.set_study(study)
        self.model_dock.set_study(study)
        self.soil_dock.set_study(study)
        self._fill_window_menu()
        name = study.image.name or Path(study.image.source).name
        self.setWindowTitle(f"{name} — ctviewer")
        if study.image.source:
            self._remember(study.image.source)
        for warning in study.image.warnings:
            self.show_error(warning, kind="Warning")
        if study.image.meta.get("spacing_unknown"):
            self._ask_spacing(study)
        self.keeper.set_study(study)   # offers autosaved labels of this image back

    def ask_spacing(self, image) -> tuple[float, float, float] | None:
        """Ask the voxel size of an array file that did not say (tests replace this)."""
        text, ok = QInputDialog.getText(
            self, "Voxel size unknown",
            f"{Path(image.source).name} does not say how big its voxels are.\n"
            "Spacing in mm as z, y, x (slice, row, column):", text="1, 1, 1")
        if not ok:
            return None
        try:
            values = tuple(float(v) for v in text.replace(";", ",").split(","))
        except ValueError:
            values = ()
        if len(values) != 3 or min(values) <= 0:
            self.show_error(f"spacing {text!r} is not three positive numbers; kept 1 mm")
            return None
        return values  # type: ignore[return-value]

    def _ask_spacing(self, study: Study) -> None:
        spacing = self.ask_spacing(study.image)
        if spacing is None:
            return
        from ctviewer.io.numpy_io import save_spacing_sidecar

        study.image.spacing = tuple(float(v) for v in spacing)
        study.image.meta["spacing_unknown"] = False
        for layer in study.layers.by_kind("labels"):
            layer.labels.volume.spacing = study.image.spacing
        self.viewer.set_study(study)   # views re-read the aspect ratio
        try:
            sidecar = save_spacing_sidecar(study.image.source, spacing)
            self.statusBar().showMessage(f"Spacing saved in {sidecar.name}; it is used next time.", 8000)
        except Exception as exc:  # a read-only folder: the spacing still applies now
            self.show_error(f"spacing applied but not saved: {exc}", kind="Warning")

    def _remember(self, path: str) -> None:
        recent = [p for p in (self.settings.value("recent", []) or []) if p != path]
        self.settings.setValue("recent", [path] + recent[: MAX_RECENT - 1])
        self._fill_recent()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.value("recent", []) or []:
            self._action(self.recent_menu, path, lambda _=False, p=path: self.open_paths([p]))
        self.recent_menu.setEnabled(bool(self.recent_menu.actions()))

    # -- drag and drop -----------------------------------------------------------------------
    def dragEnterEvent(self, ev):
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev):
        paths = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_paths(paths)
            ev.acceptProposedAction()

    # -- feedback ----------------------------------------------------------------------------
    def show_error(self, message: str, kind: str = "Error") -> None:
        """One line in the status bar; the program goes on."""
        self.statusBar().showMessage(f"{kind}: {message}", 20000)
        self.last_message = f"{kind}: {message}"

    def _show_progress(self, fraction: float, message: str) -> None:
        self.progress_bar.setValue(int(fraction * 1000))
        self.progress_bar.setFormat(f"{message} %p%" if message else "%p%")

    def _set_busy(self, busy: bool) -> None:
        self._progress_box.setVisible(busy)
        if busy:
            self.progress_bar.setValue(0)

    def _show_hover(self, voxel) -> None:
        if voxel is None or self.study is None:
            self.position_label.setText("")
            return
        self.position_label.setText(self.describe_voxel(voxel))

    def describe_voxel(self, voxel) -> str:
        """Status-bar text: voxel index, patient position (mm, LPS), value and label."""
        img = self.study.image
        k, j, i = voxel
        x, y, z = img.index_to_lps((k, j, i))
        value = self.study.value_at(voxel)
        if img.is_photo:
            # a photo: its pixel and colour; no patient position, no HU
            colour = f"RGB {tuple(value[:3])}" if img.is_rgb else f"grey {value}"
            photo = f"   photo {k + 1}/{img.shape[0]}" if img.shape[0] > 1 else ""
            text = f"pixel ({i}, {j}){photo}   {colour}"
        else:
            unit = " HU" if img.modality == "CT" else ""
            text = f"voxel ({i}, {j}, {k})   x {x:.1f}  y {y:.1f}  z {z:.1f} mm   value {value}{unit}"
        for layer in self.study.layers.by_kind("labels"):
            lab = int(layer.array[k, j, i])
            if lab:
                text += f"   {layer.name}: {layer.labels.table.name(lab)} ({lab})"
        return text

    def save_screenshot_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", "ctviewer.png", "PNG (*.png)")
        if path:
            from app.snapshot import grab_widget, save_png

            save_png(grab_widget(self), Path(path))
            self.statusBar().showMessage(f"Saved {path}", 5000)

    # -- labels: questions the user answers (tests replace these) -----------------------------
    def ask_save_path(self, default: Path) -> Path | None:
        return ask_save_path(self, default)

    def ask_map_colours(self, path) -> bool:
        from PySide6.QtWidgets import QMessageBox

        answer = QMessageBox.question(
            self, "Colour label image",
            f"{Path(path).name} is a colour image, not label ids.\n"
            "Map each colour to a label id (black = background)?")
        return answer == QMessageBox.StandardButton.Yes

    def ask_unsaved(self, names: list[str]) -> str:
        return ask_unsaved(self, names)

    def ask_restore(self, entries) -> bool:
        return ask_restore(self, entries)

    def show_gray_bins(self) -> None:
        from app.dialogs.bins_dialog import GrayBinsDialog

        if self.study is None or not self.study.image.is_photo:
            self.show_error("Gray-level bins start labels on a photo: open a thin-section image first.")
            return
        self._bins_dialog = GrayBinsDialog(self.annotator, self)
        self._bins_dialog.show()

    def show_intensity_bins(self) -> None:
        from app.dialogs.intensity_bins_dialog import IntensityBinsDialog

        if self.study is None or self.study.image.is_rgb:
            self.show_error("Intensity bins start labels on a grey volume: open a CT first.")
            return
        self._bins_dialog = IntensityBinsDialog(self.annotator, self)
        self._bins_dialog.show()

    def _settle_unsaved(self) -> bool:
        """Before the study goes away: save, discard or keep it (False = the user cancelled)."""
        unsaved = self.keeper.unsaved_layers()
        if not unsaved:
            return True
        answer = self.ask_unsaved([layer.name for layer in unsaved])
        if answer == "cancel":
            return False
        if answer == "discard":
            self.keeper.discard_all()
            return True
        for layer in unsaved:
            path = self.keeper.path_of(layer) or self.ask_save_path(self.keeper.default_path(layer))
            if path is None:
                return False
            ok = []
            self.keeper.save(layer, path, on_done=ok.append, wait=True)
            if not ok or not ok[0]:
                return False
        return True

    # -- closing -----------------------------------------------------------------------------
    def closeEvent(self, ev):
        if not self.model_dock.may_close() or not self._settle_unsaved():
            ev.ignore()
            return
        self.opener.cancel()
        self.model_dock.shutdown()
        self.soil_dock.shutdown()
        from app.workers import wait_for_workers

        wait_for_workers(5000)
        self.viewer.close_views()
        self._save_geometry()
        super().closeEvent(ev)
