"""The soil dock's Phases tab: pores and solid split where the histogram says, porosity with its uncertainty.

The histogram is counted once per volume in a worker; every method's threshold is found with it, so
the method box answers at once. The user drags the red line (or types a value): the porosity is a
lookup in the cumulated counts and the pore phase is redrawn on the planes the three views show, both
during the drag; when the line is let go the whole pore phase is made in a worker and the 3D panel
extracts its surface (never during a drag: surfaces are slow). Denoising (median, non-local means)
runs in a worker with progress and Cancel, and its histogram is drawn over the raw one, with the
noise before and after. Measure finds the sample's outline (air around a core is not pore space) and
plots the porosity profiles and the REV curve; Save writes them with the method, threshold and
denoising, and the pore label's name carries them into a saved label map.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QPushButton, QVBoxLayout, QWidget)

from app.soil import phases_work as work
from app.soil.phases_layers import PhaseLayers
from app.soil.phases_plots import HistogramPlot, ResultPlots
from app.soil.task_row import TaskRow, one_line
from app.workers import run_worker
from ctviewer.errors import InputError


class PhasesPanel(QWidget):
    measured = Signal(object)      # the Porosity on screen now

    def __init__(self, window, parent=None):
        super().__init__(parent)
        self.window = window
        self.study = None
        self.raw = None             # Phases of the volume as opened
        self.found = None           # Phases of what is thresholded (the denoised volume, if any)
        self.denoised = None        # phases.Denoised, or None
        self.hist = None            # the histogram the live porosity reads (the sample's, after Measure)
        self.marks: dict = {}       # Otsu's and the valley's thresholds on it
        self.inside = None          # the sample's outline (bool), after Measure
        self.sample_by_slice = None  # its voxels in each slice (the Pores tab's porosity of the sample)
        self.threshold: float | None = None
        self.result = None
        self.layers = PhaseLayers(window)
        self._commit = None
        self._placing = False       # the panel moves the line itself: not a user's drag

        self.histogram = HistogramPlot()
        self.histogram.line.sigPositionChanged.connect(self._line_moved)
        self.histogram.line.sigPositionChangeFinished.connect(lambda *_: self.commit())
        self.method = QComboBox()
        for title, name in work.METHOD_TITLES.items():
            self.method.addItem(title, name)
        self.method.currentIndexChanged.connect(lambda *_: self.apply_method())
        self.value = QDoubleSpinBox()
        self.value.setKeyboardTracking(False)
        self.value.setToolTip("Pores are the voxels at or below this grey value")
        self.value.valueChanged.connect(self._typed)
        self.denoise = QComboBox()
        for title, name in work.DENOISE_TITLES.items():
            self.denoise.addItem(title, name)
        self.denoise.setToolTip("Denoise before thresholding; its histogram is drawn in blue over the raw one")
        self.denoise.currentIndexChanged.connect(lambda *_: self.start_denoise())
        self.noise = QLabel("")
        self.porosity = QLabel("–")
        font = QFont()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.2)
        self.porosity.setFont(font)
        self.porosity.setWordWrap(True)
        self.detail = QLabel("")
        self.detail.setWordWrap(True)
        self.measure_button = QPushButton("Measure")
        self.measure_button.setToolTip("Porosity inside the sample's outline, profiles along z, y, x and the REV")
        self.measure_button.clicked.connect(self.measure)
        self.save_button = QPushButton("Save porosity…")
        self.save_button.clicked.connect(self._ask_save)
        self.row = TaskRow()
        self.outline_note = QLabel("")
        self.outline_note.setWordWrap(True)
        self.plots = ResultPlots()
        self.plots.hide()          # until Measure has something to plot

        form = QFormLayout()
        denoising = QHBoxLayout()
        denoising.addWidget(self.denoise)
        denoising.addWidget(self.noise, 1)
        form.addRow("Denoise first", denoising)
        form.addRow("Method", self.method)
        form.addRow("Threshold", self.value)
        buttons = QHBoxLayout()
        buttons.addWidget(self.measure_button)
        buttons.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.histogram, 2)
        layout.addLayout(form)
        layout.addWidget(self.porosity)
        layout.addWidget(self.detail)
        layout.addLayout(buttons)
        layout.addWidget(self.row)
        layout.addWidget(self.outline_note)
        layout.addWidget(self.plots, 3)
        self.set_study(getattr(window, "study", None))

    # -- study -------------------------------------------------------------------------------
    def set_study(self, study) -> None:
        """Follow another study; its histogram is counted when the tab is first seen."""
        if study is self.study:
            return
        self.row.cancel()
        if self.study is not None:
            self.study.cursor_changed.disconnect(self._cursor_moved)
        self.study = study
        self.raw = self.found = self.denoised = self.hist = self.inside = self.result = self.sample_by_slice = None
        self.threshold, self.marks = None, {}
        self.layers.set_study(study)
        if study is not None:
            study.cursor_changed.connect(self._cursor_moved)
        self.denoise.blockSignals(True)
        self.denoise.setCurrentIndex(0)
        self.denoise.blockSignals(False)
        self.histogram.show_counts([], [])
        self.histogram.set_marks({})
        self.porosity.setText("–")
        self.detail.setText("")
        self.noise.setText("")
        self.outline_note.setText("")
        self.plots.hide()
        self._enable()
        if self.isVisible():
            self.count()

    def showEvent(self, ev) -> None:
        super().showEvent(ev)
        if self.study is not getattr(self.window, "study", None):
            self.set_study(self.window.study)
        elif self.raw is None:
            self.count()

    @property
    def grey(self) -> bool:
        return self.study is not None and not self.study.image.is_rgb and self.study.image.array.ndim == 3

    @property
    def values(self) -> np.ndarray:
        """What is thresholded: the denoised volume when there is one."""
        return self.denoised.array if self.denoised is not None else self.study.image.array

    @property
    def volume(self):
        """What the workers are given: the denoised array, or the study's image itself, whose meta say
        whether its reader filled in NaN voxels (refused, as ``ctviewer soil pores`` refuses them)."""
        return self.denoised.array if self.denoised is not None else self.study.image

    def _enable(self) -> None:
        busy = self.row.running
        self.measure_button.setEnabled(self.found is not None and self.threshold is not None and not busy)
        self.save_button.setEnabled(self.result is not None and not busy)
        self.denoise.setEnabled(self.raw is not None and not busy)
        self.method.setEnabled(self.found is not None)
        self.value.setEnabled(self.found is not None)

    @property
    def layer(self):
        """The pore phase's label layer (None until the first threshold is committed)."""
        return self.layers.pores

    # -- the histogram -------------------------------------------------------------------------
    def count(self) -> bool:
        if not self.grey or self.row.running or self.raw is not None:
            if self.study is not None and not self.grey:
                self.row.say("Phases need a grey volume (slices of a scan), not a photo.")
            return False
        study = self.study
        self.row.start("Counting grey levels", work.count_phases, study.image,
                       on_result=lambda found: self._counted(study, found), on_finished=self._enable)
        return True

    def _counted(self, study, found) -> None:
        if study is not self.study:
            return
        self.raw = found
        self._use(found)

    def _use(self, found, denoised=None) -> None:
        """Threshold ``found`` (the raw or the denoised volume's phases) from now on."""
        self.found, self.hist, self.inside, self.result = found, found.histogram, None, None
        self.sample_by_slice = None
        self.marks = {m: t.value for m, t in found.thresholds.items() if m in ("otsu", "valley")}
        hist = found.histogram
        self.histogram.show_counts(*self.raw.shown, denoised=found.shown if denoised is not None else None)
        self._placing = True   # new bounds move the line: not the user's drag
        try:
            self.histogram.set_range(float(hist.edges[0]), hist.hi)
        finally:
            self._placing = False
        self.histogram.set_marks(self.marks)
        decimals = 0 if hist.exact else 4
        self.value.blockSignals(True)
        self.value.setDecimals(decimals)
        self.value.setRange(float(hist.edges[0]), hist.hi)
        self.value.setSingleStep(max(hist.grey_step, 10 ** -decimals))
        self.value.blockSignals(False)
        self.outline_note.setText("")
        self.plots.hide()
        self.layers.drop_outline()
        self.apply_method()

    # -- the threshold -------------------------------------------------------------------------
    def apply_method(self) -> None:
        """Put the line where the chosen method says (the user's own threshold stays where it is)."""
        if self.found is None:
            return
        name = self.method.currentData()
        if name is None:   # the user's threshold stays; its porosity and pores are those of what is shown now
            mid = work.snapped(self.hist, (self.hist.lo + self.hist.hi) / 2)
            self._place(mid if self.threshold is None else self.threshold)
            return
        try:
            t = self.found.threshold(name)
        except InputError as exc:
            self.threshold = None
            self.porosity.setText(one_line(exc))
            self.detail.setText("")
            self._place_line((self.hist.lo + self.hist.hi) / 2)
            self._enable()
            return
        self._place(t.value, t.note)

    def _place_line(self, value: float) -> None:
        self._placing = True
        try:
            self.histogram.line.setValue(value)
        finally:
            self._placing = False

    def _place(self, value: float, note: str = "") -> None:
        self._place_line(value)
        self.set_threshold(value, note)
        self.commit()

    def _line_moved(self, line) -> None:
        if self._placing or self.hist is None:
            return
        self._to_own_method()
        self.set_threshold(work.snapped(self.hist, line.value()))

    def _typed(self, value: float) -> None:
        if self.hist is None:
            return
        self._to_own_method()
        t = work.snapped(self.hist, value)
        self._place_line(t)
        self.set_threshold(t)
        self.commit()

    def _to_own_method(self) -> None:
        """A dragged or typed threshold is the user's: the method box says so."""
        own = self.method.findData(None)
        if self.method.currentIndex() != own:
            self.method.blockSignals(True)
            self.method.setCurrentIndex(own)
            self.method.blockSignals(False)

    def set_threshold(self, value: float, note: str = "") -> None:
        """The live part of a drag: the porosity by lookup and the pore phase on the shown planes."""
        self.threshold = float(value)
        self.value.blockSignals(True)
        self.value.setValue(self.threshold)
        self.value.blockSignals(False)
        where = "of the sample" if self.inside is not None else "of the whole volume"
        big, line = work.porosity_text(work.live_porosity(self.hist, self.marks, self.threshold), where)
        self.porosity.setText(big)
        self.detail.setText(line + (f"\n{note}" if note else ""))
        self.preview()
        self._enable()

    def preview(self) -> None:
        """Redraw the pore phase on the three planes the views show now (not the whole volume)."""
        if self.threshold is not None:
            self.layers.preview(self.values, self.threshold, self.inside)

    def _cursor_moved(self, *_) -> None:
        if self.layers.stale:
            self.preview()

    def commit(self) -> None:
        """The line was let go: the whole pore phase in a worker, then the 3D surface."""
        if self.threshold is None or self.study is None:
            return
        if self._commit is not None:
            self._commit.cancel()
        study, t = self.study, self.threshold
        self._commit = run_worker(work.pore_phase, self.values, t, self.inside,
                                  on_result=lambda ids: self._committed(study, t, ids),
                                  on_error=lambda exc: self.row.say(one_line(exc), error=True))

    def _committed(self, study, t: float, ids: np.ndarray) -> None:
        if study is not self.study or t != self.threshold:
            return   # the line moved on: a newer pore phase is on its way
        self._fill_layer(ids)

    def _fill_layer(self, ids: np.ndarray) -> None:
        method = self.method.currentData() or "threshold"
        denoised = self.denoise.currentData()
        how = {"method": method, "threshold": self.threshold, "pores": "grey value <= threshold",
               "denoise": denoised, "sample_outline": self.inside is not None}
        if self.sample_by_slice is not None:   # the Pores tab reports the porosity of the sample, not the view
            how["sample_voxels"] = int(self.sample_by_slice.sum())
            how["sample_voxels_by_slice"] = self.sample_by_slice.tolist()
        self.layers.fill(ids, work.pore_label_name(method, self.threshold, denoised), how)

    # -- denoising -------------------------------------------------------------------------------
    def start_denoise(self) -> bool:
        method = self.denoise.currentData()
        if self.raw is None:
            return False
        if method == "none":
            self.denoised = None
            self.noise.setText("")
            self._use(self.raw)
            return True
        study = self.study
        self.row.start(f"Denoising ({self.denoise.currentText()})", work.denoise_and_count, study.image,
                       method, on_result=lambda out: self._denoised(study, out), on_finished=self._denoise_ended)
        self._enable()
        return True

    def _denoised(self, study, out) -> None:
        if study is not self.study:
            return
        self.denoised, found = out
        self.noise.setText("Noise " + self.denoised.note.split(": ", 1)[1])
        self._use(found, denoised=self.denoised)

    def _denoise_ended(self) -> None:
        wanted = self.denoise.currentData()
        have = self.denoised.method if self.denoised is not None else "none"
        if wanted != have:   # cancelled or failed: the box says what is used
            self.denoise.blockSignals(True)
            self.denoise.setCurrentIndex(self.denoise.findData(have))
            self.denoise.blockSignals(False)
        self._enable()

    # -- measuring -------------------------------------------------------------------------------
    def measure(self) -> bool:
        if self.found is None or self.threshold is None or self.row.running:
            return False
        study = self.study
        den = None if self.denoised is None else {**self.denoised.to_dict(), "note": self.denoised.note}
        self.row.start("Measuring porosity", work.measure, self.volume, self.method.currentData() or "threshold",
                       self.threshold, study.image.spacing, den,
                       on_result=lambda out: self._measured(study, out), on_finished=self._enable)
        self._enable()
        return True

    def _measured(self, study, out: work.Measured) -> None:
        if study is not self.study:
            return
        found = out.found
        self.result, self.hist, self.inside = found, found.histogram, found.sample.mask
        self.sample_by_slice = out.sample_by_slice
        u = found.uncertainty["methods"]
        self.marks = {m: u[m]["threshold"] for m in ("otsu", "valley") if u.get(m, {}).get("threshold") is not None}
        self._place_line(found.threshold.value)
        self.set_threshold(found.threshold.value, found.threshold.note)
        self.layers.show_outline(out.outline)
        self._fill_layer(out.pores)
        self.plots.show_result(found, study.image.spacing)
        self.plots.show()
        self.outline_note.setText("\n".join(found.notes))
        rev = found.rev
        how = work.method_name(found.threshold.method)
        self.row.say(f"Measured by {how} at grey <= {found.threshold.value:g}; REV "
                     + (f"{rev.rev_mm:.3g} mm" if rev.rev_mm is not None else f"not reached ({rev.note})"))
        self._enable()
        self.measured.emit(found)

    # -- saving --------------------------------------------------------------------------------
    def save(self, prefix) -> list:
        from ctviewer.imaging.orientation import stored_grid

        image = self.study.image
        source = getattr(image, "source", "") or getattr(image, "name", "")
        return work.write_results(self.result, prefix, str(source), stored_grid(image))

    def _ask_save(self) -> None:
        if self.result is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save porosity (JSON + profile and REV tables)",
                                              work.default_save_name(getattr(self.study.image, "source", "")),
                                              "JSON and CSV (*.json)")
        if path:
            try:
                self.row.say("Saved " + ", ".join(p.name for p in self.save(path)))
            except (InputError, OSError) as exc:
                self.row.say(one_line(exc), error=True)

    def shutdown(self) -> None:
        self.row.cancel()
        if self._commit is not None:
            self._commit.cancel()
