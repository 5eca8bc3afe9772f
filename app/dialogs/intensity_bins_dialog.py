"""Start volume labels from intensity bins: N equal-width bins (the soil study's objects 1–N)
or multi-Otsu classes. The binning runs in a worker with progress and Cancel; the result
becomes a new label layer.
"""

from __future__ import annotations

from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QProgressBar, QSpinBox,
                               QVBoxLayout)

from app.workers import run_worker
from ctviewer.data.layers import LabelLayer
from ctviewer.errors import InputError
from ctviewer.imaging.bins import intensity_bins

#: (what the user picks, method of intensity_bins, name of the new layer)
METHODS = (("equal-width (soil seed objects 1–N)", "equal", "objects"),
           ("multi-Otsu", "otsu", "Otsu classes"))
MAX_BINS = 20
#: multi-Otsu searches 256**(N-1) splits: 5 classes already take seconds, so the core stops there.
MAX_OTSU_CLASSES = 5


class IntensityBinsDialog(QDialog):
    def __init__(self, annotator, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Intensity bins")
        self.annotator = annotator
        self.result_layer: LabelLayer | None = None
        self._worker = None
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.method = QComboBox()
        for text, method, _ in METHODS:
            self.method.addItem(text, method)
        self.method.currentIndexChanged.connect(self._method_changed)
        self.bins = QSpinBox(minimum=2, maximum=MAX_BINS, value=6)
        form.addRow("Method", self.method)
        form.addRow("Number of bins", self.bins)
        layout.addLayout(form)
        self.progress = QProgressBar(minimum=0, maximum=1000)
        self.progress.hide()
        self.message = QLabel("")
        self.message.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Apply
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.apply_button = self.buttons.button(QDialogButtonBox.StandardButton.Apply)
        self.apply_button.clicked.connect(self.apply)
        self.buttons.rejected.connect(self.cancel)
        layout.addWidget(self.buttons)
        self.apply_button.setEnabled(annotator.study is not None)

    def _method_changed(self) -> None:
        otsu = self.method.currentData() == "otsu"
        self.bins.setMaximum(MAX_OTSU_CLASSES if otsu else MAX_BINS)
        self.bins.setToolTip("multi-Otsu finds at most 5 classes in reasonable time" if otsu else "")

    @property
    def running(self) -> bool:
        return self._worker is not None

    def apply(self) -> None:
        study = self.annotator.study
        if study is None or self.running:
            return
        self.message.setText("")
        self.progress.setValue(0)
        self.progress.show()
        self.apply_button.setEnabled(False)
        for w in (self.method, self.bins):
            w.setEnabled(False)
        self._worker = run_worker(intensity_bins, study.image, n=self.bins.value(), method=self.method.currentData(),
                                  on_result=self._done, on_error=self._failed, on_progress=self._progress)
        self._worker.cancelled.connect(self._cancelled)

    def cancel(self) -> None:
        """Stop the binning if it runs, else close."""
        if self.running:
            self._worker.cancel()
        else:
            self.reject()

    def _mine(self) -> bool:
        """Only the running worker's signals count (one cancelled earlier may still deliver)."""
        mine = self._worker is not None and self.sender() is self._worker.signals
        if mine:
            self._worker = None
            self.progress.hide()
            self.apply_button.setEnabled(True)
            for w in (self.method, self.bins):
                w.setEnabled(True)
        return mine

    def _progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.message.setText(message)

    def _done(self, labels) -> None:
        if self._mine():
            name = next(n for _, method, n in METHODS if method == self.method.currentData())
            self.result_layer = self.annotator.new_layer(name, labels)
            self.accept()

    def _failed(self, exc: Exception) -> None:
        if self._mine():
            text = exc.reason if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
            self.message.setText(text.splitlines()[0] if text else type(exc).__name__)

    def _cancelled(self) -> None:
        if self._mine():
            self.message.setText("Cancelled.")

    def done(self, result: int) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        super().done(result)
