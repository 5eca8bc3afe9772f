"""The "Live classifier" panel: scribble a few strokes per class, a random forest labels the photo.

Start adds two label layers to the photo: "classifier" (the forest's classes, drawn faint) and
"scribbles" on top of it, which becomes the layer the usual brush paints; the user picks classes in
the labels dock. The photo's features are computed once, in a worker, when Start is pressed. After
each stroke on the scribbles (150 ms after the last edit) the forest is fitted and predicts the whole
photo in a worker; only one update runs at a time: a stroke made meanwhile cancels it, and the newest
scribbles are classified as soon as it stops (latest wins). Accept copies the classifier's classes
into the labels the user is making (the newest other label layer, else a new "labels" layer) as
one undoable edit and makes that layer the edited one; scribbling on (select the scribbles layer)
and accepting again is fine. Stop removes the scribbles and classifier layers without asking:
what was accepted is in the labels already, and scribbles are redrawn in seconds.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from app.dialogs.bins_dialog import copy_table
from app.workers import run_worker
from ctviewer.data.labels import LabelMap
from ctviewer.data.layers import LabelLayer
from ctviewer.errors import InputError
from ctviewer.imaging.bins import thin_section_table
from ctviewer.workflows.thin_section.classifier import PixelClassifier

SCRIBBLES_NAME = "scribbles"
CLASSIFIER_NAME = "classifier"
LABELS_NAME = "labels"
#: An update waits this long after the last edit: a stroke's dabs start one update, not dozens.
UPDATE_DELAY_MS = 150
CLASSIFIER_OPACITY = 0.35
HINT = ("Start, then paint a few strokes of each class on the scribbles layer (pick the class in the "
        "Labels dock); the classifier relabels the photo after each stroke.")


def _features(classifier: PixelClassifier, rgb, progress=None, cancel=None) -> PixelClassifier:
    classifier.set_image(rgb, progress=progress, cancel=cancel)   # scikit-image imported here, lazily
    import sklearn.ensemble  # noqa: F401  (here, not in the first update after a stroke: ~0.5 s)
    return classifier


def _classify(classifier: PixelClassifier, scribbles, progress=None, cancel=None):
    started = time.perf_counter()
    classifier.fit(scribbles)   # scikit-learn imported here, lazily
    if cancel is not None:
        cancel.raise_if_cancelled()
    ids = classifier.predict(progress=progress, cancel=cancel)
    return ids, int(np.count_nonzero(scribbles)), list(classifier.classes), time.perf_counter() - started


class LiveClassifierPanel(QWidget):
    """Bound to the window's annotator (``window.annotator``; an Annotator itself is accepted too)."""

    def __init__(self, window, parent=None):
        super().__init__(parent)
        self.annotator = getattr(window, "annotator", window)
        self.keeper = getattr(window, "keeper", None)   # told that the classifier layer is no one's work
        self.study = None
        self.scribbles: LabelLayer | None = None
        self.classifier_layer: LabelLayer | None = None
        self.target: LabelLayer | None = None      # the labels Accept writes to
        self.classifier: PixelClassifier | None = None
        self.features_ready = False
        self.result: np.ndarray | None = None      # [y, x] classes shown in the classifier layer
        self._features_worker = self._worker = None
        self._pending = False
        self._build()
        self._timer = QTimer(self, singleShot=True, interval=UPDATE_DELAY_MS)
        self._timer.timeout.connect(self.update_now)
        self.annotator.layer_edited.connect(self._edited)
        self.annotator.layer_changed.connect(lambda _layer: self._check_study())
        self._update_buttons()

    def _build(self) -> None:
        self.hint = QLabel(HINT)
        self.hint.setWordWrap(True)
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Add a scribbles layer to paint on and compute the photo's features")
        self.start_button.clicked.connect(self.start)
        self.accept_button = QPushButton("Accept")
        self.accept_button.setToolTip("Copy the classifier's classes into the labels (Undo takes them back)")
        self.accept_button.clicked.connect(self.accept)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Remove the scribbles and classifier layers (accepted labels stay)")
        self.stop_button.clicked.connect(self.stop)
        self.progress = QProgressBar(minimum=0, maximum=100)
        self.progress.hide()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.error = QLabel("")
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b03020")
        buttons = QHBoxLayout()
        for button in (self.start_button, self.accept_button, self.stop_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.hint)
        layout.addLayout(buttons)
        for widget in (self.progress, self.status, self.error):
            layout.addWidget(widget)
        layout.addStretch(1)

    # -- state -----------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.scribbles is not None

    @property
    def busy(self) -> bool:
        return self._worker is not None or self._features_worker is not None

    def _update_buttons(self) -> None:
        self.start_button.setEnabled(not self.active)
        self.accept_button.setEnabled(self.active and self.result is not None)
        self.stop_button.setEnabled(self.active)

    def _say(self, status: str = "", error: str = "") -> None:
        self.status.setText(status)
        self.error.setText(error)

    def _check_study(self) -> None:
        """Another study opened: this session's layers went with the old one."""
        if self.active and self.annotator.study is not self.study:
            self._end(remove_layers=False)

    def _layers_removed(self, index: int, layer) -> None:
        if layer is self.scribbles or layer is self.classifier_layer:   # the user deleted one
            self.stop()

    # -- start / stop ----------------------------------------------------------------------------
    def start(self) -> bool:
        study = self.annotator.study
        if self.active:
            return False
        if study is None:
            self._say(error="Open a thin-section photo first.")
            return False
        if not study.image.is_rgb:
            self._say(error="The live classifier works on colour photos (RGB); this image is a "
                            f"{study.image.modality or 'grey'} volume.")
            return False
        self.study = study
        others = [ly for ly in study.layers.by_kind("labels") if not ly.name.endswith("(preview)")]
        self.target = others[-1] if others else None
        table = (self.target.labels.table if self.target is not None
                 and len([i for i in self.target.labels.table.ids if i > 0]) >= 2 else thin_section_table())
        image = study.image
        self.classifier_layer = LabelLayer(LabelMap.empty_like(image, copy_table(table)), name=CLASSIFIER_NAME,
                                           opacity=CLASSIFIER_OPACITY)
        study.layers.append(self.classifier_layer)
        if self.keeper is not None:   # the forest redraws it from the scribbles: closing need not ask
            self.keeper.mark_scratch(self.classifier_layer)
        self.scribbles = self.annotator.new_layer(SCRIBBLES_NAME, LabelMap.empty_like(image, copy_table(table)))
        study.layers.events.removed.connect(self._layers_removed)
        if self.annotator.tool == "navigate":
            self.annotator.set_tool("brush")
        self.classifier = PixelClassifier()
        self.features_ready, self.result, self._pending = False, None, False
        self.progress.setValue(0)
        self.progress.show()
        self._say("Computing the photo's features…")
        self._features_worker = run_worker(_features, self.classifier, image.array[0, ..., :3],
                                           on_result=self._features_done, on_error=self._failed,
                                           on_progress=self._show_progress,
                                           on_finished=self._features_finished)
        self._update_buttons()
        return True

    def stop(self) -> None:
        self._end(remove_layers=True)
        self._say("")

    def _end(self, remove_layers: bool) -> None:
        self._timer.stop()
        for worker in (self._worker, self._features_worker):
            if worker is not None:
                worker.cancel()
        self._worker = self._features_worker = None
        study, layers = self.study, (self.scribbles, self.classifier_layer)
        self.scribbles = self.classifier_layer = self.classifier = self.result = None
        self.study, self.features_ready, self._pending = None, False, False
        if study is not None:
            study.layers.events.removed.disconnect(self._layers_removed)
            if remove_layers:
                for layer in layers:
                    if layer is not None and layer in study.layers:
                        study.layers.remove(layer)
                if self.target is not None and self.target in study.layers:
                    self.annotator.set_layer(self.target)
        self.progress.hide()
        self._update_buttons()

    # -- features ----------------------------------------------------------------------------------
    def _show_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(round(100 * fraction)))

    def _features_done(self, classifier) -> None:
        if classifier is not self.classifier:
            return   # a session stopped meanwhile
        self.features_ready = True
        self._say("Features ready: paint strokes of at least two classes.")
        self.update_now()   # strokes painted while the features were computed

    def _features_finished(self) -> None:
        self._features_worker = None
        if self._worker is None:
            self.progress.hide()

    # -- updates -----------------------------------------------------------------------------------
    def _edited(self, layer, bbox) -> None:
        if self.active and layer is self.scribbles:
            self._timer.start()   # restarts: one update once the stroke rests

    def update_now(self) -> None:
        """Classify the current scribbles now, or as soon as the running update stops."""
        self._timer.stop()
        if not self.active or not self.features_ready:
            return
        if self._worker is not None:   # one at a time: the newest scribbles go next
            self._pending = True
            self._worker.cancel()
            return
        self._pending = False
        scribbles = self.scribbles.array[0].copy()
        if not scribbles.any():
            return
        self.progress.setValue(0)
        self.progress.show()
        self._worker = run_worker(_classify, self.classifier, scribbles, on_result=self._classified,
                                  on_error=self._failed, on_progress=self._show_progress,
                                  on_finished=self._update_finished)

    def _classified(self, found) -> None:
        ids, n_pixels, classes, seconds = found
        if not self.active or self._pending:
            return   # stopped, or newer scribbles are already waiting
        self.result = ids
        layer = self.classifier_layer
        layer.array[0] = ids
        layer.visible = True
        layer.data_changed.emit(None)
        self._say(f"{len(classes)} classes ({', '.join(map(str, classes))}) from {n_pixels} scribbled pixels; "
                  f"updated in {seconds:.2f} s")
        self._update_buttons()

    def _update_finished(self) -> None:
        self._worker = None
        self.progress.hide()
        if self._pending:
            self.update_now()

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, InputError):
            self._say(self.status.text(), str(exc))
        else:
            self._say(self.status.text(), f"The classifier failed: {exc}")

    # -- accept ----------------------------------------------------------------------------------
    def accept(self) -> LabelLayer | None:
        """Copy the classes shown into the labels (one undo step); returns the layer written."""
        if not self.active or self.result is None:
            return None
        study = self.study
        target = self.target if self.target is not None and self.target in study.layers else None
        if target is None:
            others = [ly for ly in study.layers.by_kind("labels")
                      if ly is not self.scribbles and ly is not self.classifier_layer
                      and not ly.name.endswith("(preview)")]
            target = others[-1] if others else None
        if target is None:
            table = copy_table(self.classifier_layer.labels.table)
            target = self.annotator.new_layer(LABELS_NAME, LabelMap.empty_like(study.image, table))
        self.target = target
        for lab in self.classifier_layer.labels.table:   # names and colours of classes new to the labels
            if lab.id not in target.labels.table:
                target.labels.table.add(lab.id, lab.name, tuple(lab.colour))
        self.annotator.editor_for(target).replace_all(self.result.reshape(target.array.shape), "live classifier")
        self.annotator.set_layer(target)
        self.classifier_layer.visible = False   # the labels show the same classes now
        # their work is in the labels now: closing the photo asks about the labels, not the scribbles
        self.annotator.editor_for(self.scribbles).mark_saved()
        self._say(f"Copied into “{target.name}” (Undo takes it back). Select “{self.scribbles.name}” in the "
                  f"layers to scribble on.")
        return target
