"""The cube builder: pick a slice range and a crop box on the open stack, build the cube, save it.

The seed cut every cube at slices 100–499 and rows/columns 150–349; those are the defaults here,
clipped to the open stack. The box is drawn on the views (:mod:`app.soil.crop_box`) and follows the
spin boxes both ways. Building runs :func:`ctviewer.workflows.soil.cube.build_cube` in a worker; the
cube then opens as the study, through the window's usual :meth:`set_study`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QPushButton, QSpinBox,
                               QVBoxLayout, QWidget)

from app.soil.crop_box import CropBox
from app.soil.task_row import TaskRow
from ctviewer.data.study import Study

SEED_SLICES, SEED_ROWS, SEED_COLS = (100, 500), (150, 350), (150, 350)   # [start, stop), the seed's cube
SAVE_FILTER = "NumPy cube (*.npy);;NIfTI (*.nii.gz *.nii)"


def clipped(seed: tuple[int, int], size: int) -> tuple[int, int]:
    """The part of the seed's range inside the stack; the whole axis where the stack misses it."""
    start, stop = seed[0], min(seed[1], size)
    return (start, stop) if stop > start else (0, size)


def _build(source, spec, progress=None, cancel=None):
    from ctviewer.workflows.soil.cube import build_cube

    return build_cube(source, spec, progress=progress, cancel=cancel)


def _write(volume, path, progress=None, cancel=None):
    from ctviewer.workflows.soil.cube import write_cube

    return write_cube(volume, path)


class RangeRow(QWidget):
    """Two spin boxes: first and last index (inclusive, as users count) of one axis."""

    def __init__(self, on_change, parent=None):
        super().__init__(parent)
        self.first, self.last = QSpinBox(), QSpinBox()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for label, box in (("from", self.first), ("to", self.last)):
            row.addWidget(QLabel(label))
            row.addWidget(box, 1)
            box.valueChanged.connect(on_change)

    def set_limit(self, size: int) -> None:
        for box in (self.first, self.last):
            box.setRange(0, max(size - 1, 0))

    def set_range(self, start_stop: tuple[int, int]) -> None:
        for box, value in ((self.first, start_stop[0]), (self.last, start_stop[1] - 1)):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)

    def range(self) -> tuple[int, int]:
        a, b = sorted((self.first.value(), self.last.value()))
        return a, b + 1


class CubeBuilderPanel(QWidget):
    built = Signal(object)   # the cube Volume, once it is the open study
    saved = Signal(object)   # Path

    def __init__(self, window, parent=None):
        super().__init__(parent)
        self.main = window
        self.study: Study | None = None
        self.cube = None          # the last cube built (what Save writes)
        self.box = CropBox(window.viewer, self)
        self.box.dragged.connect(self._box_dragged)
        self._active = False
        self.slices, self.rows, self.cols = (RangeRow(self._ranges_changed) for _ in range(3))
        self.show_box = QCheckBox("Show the box on the views (drag it on the axial view)")
        self.show_box.setChecked(True)
        self.show_box.toggled.connect(lambda _on: self._update_box())
        self.size_label = QLabel("")
        self.build_button = QPushButton("Build cube")
        self.build_button.clicked.connect(self.build)
        self.save_button = QPushButton("Save cube…")
        self.save_button.clicked.connect(self.save_dialog)
        self.task = TaskRow()
        form = QFormLayout()
        form.addRow("Slices", self.slices)
        form.addRow("Rows", self.rows)
        form.addRow("Columns", self.cols)
        buttons = QHBoxLayout()
        buttons.addWidget(self.build_button)
        buttons.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        intro = QLabel("Open the DICOM stack, choose the part to keep, then build the cube.")
        intro.setWordWrap(True)   # a narrow dock wraps it instead of scrolling sideways
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.size_label)
        layout.addWidget(self.show_box)
        layout.addLayout(buttons)
        layout.addWidget(self.task)
        layout.addStretch(1)
        self.set_study(None)

    # -- state ---------------------------------------------------------------------------------
    def set_study(self, study: Study | None) -> None:
        self.study = study
        grey = study is not None and not study.image.is_rgb and min(study.image.shape) > 1
        for w in (self.slices, self.rows, self.cols, self.build_button):
            w.setEnabled(grey)
        self.save_button.setEnabled(self.cube is not None or grey)
        if grey:
            nz, ny, nx = study.image.shape
            for row, size, seed in ((self.slices, nz, SEED_SLICES), (self.rows, ny, SEED_ROWS),
                                    (self.cols, nx, SEED_COLS)):
                row.set_limit(size)
                row.set_range(clipped(seed, size))
        self.box.hide()
        self._ranges_changed()

    def set_active(self, on: bool) -> None:
        """The box is drawn only while the user can see this panel."""
        self._active = on
        self._update_box()

    def spec(self):
        from ctviewer.workflows.soil.cube import CubeSpec

        return CubeSpec(slices=self.slices.range(), rows=self.rows.range(), cols=self.cols.range())

    def _ranges_changed(self, *_):
        if self.study is None:
            self.size_label.setText("No stack open.")
            return
        (s0, s1), (r0, r1), (c0, c1) = self.slices.range(), self.rows.range(), self.cols.range()
        self.size_label.setText(f"Cube: {s1 - s0} slices × {r1 - r0} rows × {c1 - c0} columns")
        self._update_box()

    def _update_box(self) -> None:
        want = self._active and self.show_box.isChecked() and self.slices.isEnabled()
        if want and not self.box.shown:
            self.box.show(self.study.image.shape, self.study.image.spacing)
        elif not want and self.box.shown:
            self.box.hide()
        if self.box.shown:
            self.box.set_ranges(self.slices.range(), self.rows.range(), self.cols.range())

    def _box_dragged(self, rows, cols) -> None:
        self.rows.set_range(rows)
        self.cols.set_range(cols)
        self._ranges_changed()

    # -- work ----------------------------------------------------------------------------------
    def build(self) -> None:
        if self.study is None or self.task.running:
            return
        self.task.start("building the cube", _build, self.study.image, self.spec(), on_result=self._built)

    def _built(self, cube) -> None:
        self.cube = cube
        if not cube.name:
            cube.name = "soil cube"
        self.task.say(f"Cube built: {' × '.join(str(n) for n in cube.shape)} voxels; it is the open study now.")
        self.main.set_study(Study(cube))
        self.built.emit(cube)

    def ask_save_path(self) -> Path | None:
        """Where to save (tests replace this)."""
        path, chosen = QFileDialog.getSaveFileName(self, "Save cube", "cube.npy", SAVE_FILTER)
        if not path:
            return None
        if not path.lower().endswith((".npy", ".nii", ".nii.gz")):
            path += ".nii.gz" if "NIfTI" in chosen else ".npy"
        return Path(path)

    def save_dialog(self) -> None:
        volume = self.cube if self.cube is not None else (self.study.image if self.study else None)
        if volume is None or self.task.running:
            return
        path = self.ask_save_path()
        if path is None:
            return
        self.task.start("saving the cube", _write, volume, path, on_result=self._saved)

    def _saved(self, path) -> None:
        self.task.say(f"Saved {path}")
        self.saved.emit(Path(path))

    def shutdown(self) -> None:
        self.task.cancel()
        self.box.hide()
