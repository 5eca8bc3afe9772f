"""The model dock: the models a user can run, with their cards; running one on the open study;
training a new one while watching its progress, curves and log.

All model work runs in workers (:func:`app.workers.run_worker`), and Keras itself only in a child
process (:mod:`ctviewer.ml.child`: TensorFlow and VTK's software OpenGL crash one process); this
process never imports it. Training runs on a pool of its own with one thread, so one training at a time cannot starve
the shared pool that opens studies and computes statistics. Its per-batch reports arrive from the
worker thread through a queue that a ~10 Hz timer drains: a small model reports hundreds of batches
a second, far more than a screen (or Qt's event queue) should see. Errors go to the dock's log and,
as one line, to the main window's status bar (:attr:`ModelDock.error`); nothing here is modal
except the question asked when the app closes during a training.
"""

from __future__ import annotations

import html
import logging
import queue
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QCheckBox, QDialog, QDockWidget, QHBoxLayout, QHeaderView, QLabel, QMessageBox,
                               QPlainTextEdit, QProgressBar, QPushButton, QSplitter, QTableWidget,
                               QTableWidgetItem, QTabWidget, QTextBrowser, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from app.docks.locator_run import (COUNT_LAYER, LINES_LAYER, PICK_COLUMNS, Located, count_lines, locate_study,
                                   pick_lines, pick_texts, set_lines)
from app.docks.model_card import card_html
from app.docks.segmentation_run import ScoresPanel, prediction_layer, reference_layer, score_rows, segment_study
from app.views.training_curves import TrainingCurves
from app.workers import run_worker
from ctviewer.errors import InputError
from ctviewer.workflows.segmentation.segment import SEGMENTATION_TASKS, sizes_text

log = logging.getLogger(__name__)

#: Tasks whose models "Run on this study" can run, and what running one does.
RUNNABLE = {"slice_locator": "finds the L3 and T12 slices, cross-checked with the vertebra count",
            "segmentation_2d": "segments the study into a new label layer you can correct",
            "segmentation_3d": "segments the study into a new label layer you can correct"}
#: How often training reports are drawn (ms): ~10 Hz keeps the curves live and the GUI responsive.
REFRESH_MS = 100
BROKEN = Qt.ItemDataRole.UserRole + 1


class ModelDock(QDockWidget):
    #: one line for the user (the main window shows it in the status bar)
    error = Signal(str)
    #: the model list was re-read
    models_changed = Signal()
    #: a run on the study gave picks (list of ctviewer.workflows.slice_locator.picks.Pick)
    picks_found = Signal(list)
    #: a training ended: its TrainResult, or None when it failed or was cancelled
    training_finished = Signal(object)
    #: a segmentation model's prediction was added to the study (the LabelLayer)
    segmentation_added = Signal(object)

    def __init__(self, parent=None):
        super().__init__("Models", parent)
        self.setObjectName("model_dock")
        self.study = None
        self.entries: list = []        # ModelEntry of the usable models, in list order
        self.picks: list = []          # the last run's picks, in table order
        self.spine = None              # the last run's vertebra count (SpineCount), or None
        self._picks_model: str | None = None   # the model file that made them
        self._run_model: str | None = None
        self._run = self._run_study = self._training = self._result = self._run_result = None
        self._export = None            # the open studies being written for a training (it starts after)
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._last_batch = None
        self._train_fraction, self._train_message = 0.0, ""
        self._review_window = None
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._build()
        self._tick = QTimer(self, interval=REFRESH_MS)
        self._tick.timeout.connect(self._drain)
        self.refresh_models()

    # -- building ------------------------------------------------------------------------------
    def _build(self) -> None:
        self.model_list = QTreeWidget()
        self.model_list.setHeaderLabels(["Model", "Task", "Version", "From"])
        self.model_list.setRootIsDecorated(False)
        self.model_list.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.model_list.currentItemChanged.connect(self._show_card)
        self.card_view = QTextBrowser()
        self.run_button = QPushButton("Run on this study")
        self.run_button.clicked.connect(self.run_selected)
        self.largest_only = QCheckBox("Largest part only")
        self.largest_only.setToolTip("Segmentation: keep only the largest connected part of each label")
        self.train_button = QPushButton("Train…")
        self.train_button.clicked.connect(self.open_train_dialog)
        refresh = QPushButton("Refresh")
        refresh.setToolTip("Read the model folders again")
        refresh.clicked.connect(lambda: self.refresh_models())
        self.run_bar, self.run_cancel, run_row = _progress_row(self.cancel_run)
        self.train_bar, self.train_cancel, train_row = _progress_row(self.cancel_training)
        self.train_status = QLabel("")
        self.train_status.setWordWrap(True)
        self.curves = TrainingCurves()
        self.log_view = QPlainTextEdit(readOnly=True)
        self.log_view.setMaximumBlockCount(5000)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_picks(), "Picks")
        self.tabs.addTab(self.curves, "Training")
        self.scores = ScoresPanel()
        self.tabs.addTab(self.scores, "Scores")
        self.tabs.addTab(self.log_view, "Log")
        split = QSplitter(Qt.Orientation.Vertical)
        for widget in (self.model_list, self.card_view, self.tabs):
            split.addWidget(widget)
        split.setStretchFactor(1, 1)
        split.setStretchFactor(2, 1)
        split.setSizes([110, 320, 320])
        body = QWidget()
        layout = QVBoxLayout(body)
        buttons = QHBoxLayout()
        for button in (self.run_button, self.train_button, refresh):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        layout.addWidget(self.largest_only)   # on its own line: the dock stays narrow beside the images
        for row in (run_row, train_row):
            layout.addWidget(row)
        layout.addWidget(self.train_status)
        layout.addWidget(split, 1)
        self.setWidget(body)
        self._rows = (run_row, train_row)
        run_row.hide()
        train_row.hide()

    def _build_picks(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        self.picks_table = QTableWidget(0, len(PICK_COLUMNS))
        self.picks_table.setHorizontalHeaderLabels(PICK_COLUMNS)
        self.picks_table.verticalHeader().hide()
        self.picks_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.picks_table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.picks_table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.picks_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.picks_table.cellDoubleClicked.connect(lambda row, _col: self.go_to_pick(row))
        self.picks_table.currentCellChanged.connect(lambda *_: self._update_buttons())
        self.go_button = QPushButton("Go to slice")
        self.go_button.clicked.connect(lambda: self.go_to_pick(self.picks_table.currentRow()))
        self.review_button = QPushButton("Review…")
        self.review_button.clicked.connect(self.open_review)
        row = QHBoxLayout()
        row.addWidget(self.go_button)
        row.addWidget(self.review_button)
        layout.addWidget(self.picks_table)
        layout.addLayout(row)
        return box

    # -- the model list ------------------------------------------------------------------------
    def refresh_models(self, select: str | None = None) -> None:
        """Read both model folders again (small JSON files); keep or move the selection."""
        from ctviewer.ml.registry import scan_models

        current = self.selected_entry()
        select = select or (current.name if current is not None else None)
        try:
            self.entries, problems = scan_models()
        except OSError as exc:  # an unreadable models folder: say so, keep the app going
            self.entries, problems = [], [f"{exc.filename}: cannot be read ({exc.strerror}); skipped"]
        self.model_list.clear()
        for entry in self.entries:
            card = entry.card
            item = QTreeWidgetItem([entry.name, card.task, card.version, "shipped" if entry.shipped else "yours"])
            item.setData(0, Qt.ItemDataRole.UserRole, entry)
            item.setToolTip(0, str(entry.path))
            self.model_list.addTopLevelItem(item)
            if entry.name == select:
                self.model_list.setCurrentItem(item)
        for line in problems:
            path, _, reason = line.partition(": ")
            item = QTreeWidgetItem([Path(path).stem, "?", "", "cannot be used"])
            item.setData(0, BROKEN, (path, reason.removesuffix("; skipped")))
            item.setToolTip(0, line)
            for col in range(4):  # greyed, but selectable: the card pane says what is wrong
                item.setForeground(col, QColor(140, 140, 140))
            self.model_list.addTopLevelItem(item)
        if self.model_list.currentItem() is None and self.model_list.topLevelItemCount():
            self.model_list.setCurrentItem(self.model_list.topLevelItem(0))
        self._show_card()
        self.models_changed.emit()

    def selected_entry(self):
        item = self.model_list.currentItem()
        return None if item is None else item.data(0, Qt.ItemDataRole.UserRole)

    def select_model(self, name: str) -> bool:
        for n in range(self.model_list.topLevelItemCount()):
            item = self.model_list.topLevelItem(n)
            if item.text(0) == name:
                self.model_list.setCurrentItem(item)
                return True
        return False

    def _show_card(self, *_) -> None:
        item = self.model_list.currentItem()
        if item is None:
            self.card_view.setHtml("<p>No models yet: train one with <b>Train…</b>.</p>")
        elif item.data(0, BROKEN):
            path, reason = item.data(0, BROKEN)
            self.card_view.setHtml(f"<p><b>{html.escape(path)}</b></p><p>cannot be used: {html.escape(reason)}</p>")
        else:
            self.card_view.setHtml(card_html(item.data(0, Qt.ItemDataRole.UserRole)))
        self._update_buttons()

    # -- state of the buttons ------------------------------------------------------------------
    @property
    def training(self) -> bool:
        return self._training is not None or self._export is not None

    @property
    def running(self) -> bool:
        return self._run is not None

    def run_blocker(self) -> str:
        """Why "Run on this study" cannot run now ("" when it can)."""
        item = self.model_list.currentItem()
        entry = self.selected_entry()
        if item is None:
            return "Select a model first"
        if entry is None:
            return f"This model cannot be used: {item.data(0, BROKEN)[1]}"
        if entry.card.task not in RUNNABLE:
            return (f"{entry.card.task} models cannot be run on a study yet (only "
                    f"{', '.join(RUNNABLE)} models can); they can be listed and trained")
        if self.study is None:
            return "Open a study first"
        if self.running:
            return "A model is running on this study (Cancel stops it)"
        return ""

    def _update_buttons(self) -> None:
        reason = self.run_blocker()
        entry = self.selected_entry()
        self.run_button.setEnabled(not reason)
        self.run_button.setToolTip(reason or f"Run {entry.name} on the open study: {RUNNABLE[entry.card.task]}")
        self.train_button.setEnabled(not self.training)
        self.train_button.setToolTip("One training at a time: cancel the running one or wait for it to finish"
                                     if self.training else "Train a new model")
        pick = self._pick_at(self.picks_table.currentRow())
        self.go_button.setEnabled(pick is not None and pick.in_scan)
        self.go_button.setToolTip("" if pick is None or pick.in_scan else f"{pick.level} is in view but was not found"
                                  if pick.status == "not_found" else f"{pick.level} is not in this scan")
        review = self._review_blocker()
        self.review_button.setEnabled(not review)
        self.review_button.setToolTip(review or "Check and correct the picks in the review window "
                                                "(decisions go to picks.csv beside the study)")

    # -- running a model on the study ----------------------------------------------------------
    def set_study(self, study) -> None:
        if self._run is not None:
            self._run.cancel()   # its result would belong to the study that is going away
        self.study = study
        self.show_picks([], quiet=True)

    def run_selected(self) -> bool:
        reason = self.run_blocker()
        if reason:
            self.error.emit(reason)
            return False
        entry, study = self.selected_entry(), self.study
        self.log(f"running {entry.name} on {study.image.name or Path(study.image.source).name or 'the study'}")
        self._run_study, self._run_model = study, str(entry.path)
        self.run_bar.setValue(0)
        self._rows[0].show()
        if entry.card.task in SEGMENTATION_TASKS:
            work = (segment_study, study.image, str(entry.path), self.largest_only.isChecked())
        else:
            work = (locate_study, study.image, entry.path)
        self._run = run_worker(*work,
                               on_result=self._run_done, on_error=self._run_failed,
                               on_progress=lambda f, m: (self.run_bar.setValue(int(f * 1000)),
                                                         self.run_bar.setFormat(f"{m} %p%" if m else "%p%")),
                               on_finished=self._run_finished)
        self._run.cancelled.connect(lambda: self.log("run cancelled"))
        self._update_buttons()
        return True

    def cancel_run(self) -> None:
        if self._run is not None:
            self._run.cancel()

    def _run_done(self, result) -> None:
        if self._run_study is not self.study:
            self.log("the study changed while the model ran; its result was dropped")
            return
        if not isinstance(result, Located):
            self._segmentation_done(result)
            return
        self.spine = result.spine
        self.show_picks(result.picks, notes=result.notes)
        for line in result.warnings:
            self.log(line)
        self._picks_model = self._run_model
        self._run_result = result.picks

    def _segmentation_done(self, result) -> None:
        """The prediction becomes an editable label layer; scored when the study has a reference."""
        name = Path(self._run_model).stem
        # before the prediction joins the layers; the groups the model was trained on (not its levels)
        reference = reference_layer(self.study, result.model_groups or result.groups)
        layer = prediction_layer(self.study, result, name)
        self.study.layers.append(layer)
        self.log(f"{name}: {sizes_text(result, self.study.image)} → label layer '{layer.name}' "
                 "(correct it with the labels dock)")
        if result.note:   # the vertebrae's levels and where they come from, or why they kept one class
            self.log(f"  {result.note}")
        if reference is not None:
            study_name = self.study.image.name or Path(self.study.image.source).name or "study"
            rows = score_rows(study_name, name, result, reference)
            self.scores.add(rows)
            self.tabs.setCurrentWidget(self.scores)
            for row in rows:
                self.log(f"  {row['label']} against '{reference.name}': Dice {row['dice']:.3f}, "
                         f"Jaccard {row['jaccard']:.3f}")
        self.segmentation_added.emit(layer)

    def _run_failed(self, exc: Exception) -> None:
        self._report_error("Running the model failed", exc)

    def _run_finished(self) -> None:
        self._run = self._run_study = None
        self._rows[0].hide()
        self._update_buttons()
        if self._run_result is not None:
            picks, self._run_result = self._run_result, None
            self.picks_found.emit(picks)   # last: a slot may start the next run at once

    def show_picks(self, picks: list, quiet: bool = False, notes: dict | None = None) -> None:
        """Fill the picks table; the in-scan picks also become lines in the study's other views, and so
        does every vertebra the last run counted. ``notes``: level -> why its pick is what it is."""
        from ctviewer.workflows.slice_locator.combine import level_remark

        self.picks = list(picks)
        if not self.picks:
            self._picks_model = None
            self.spine = None
        table = self.picks_table
        table.setRowCount(len(self.picks))
        for row, pick in enumerate(self.picks):
            texts = pick_texts(pick)
            for col, text in enumerate(texts):
                item = QTableWidgetItem(text)
                if col in (1, 2, 3):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                table.setItem(row, col, item)
        if self.picks:
            table.selectRow(0)
            self._draw_lines()
            self.tabs.setCurrentIndex(0)
        if not quiet:
            for pick in self.picks:
                where = (f"slice {pick.slice_index} (z {pick.z_mm:.1f} mm)" if pick.in_scan
                         else "not placed" if pick.status == "not_found" else "not in scan")
                confidence = "" if pick.confidence is None else f", confidence {pick.confidence:.0%}"
                remark = level_remark(pick)
                note = (notes or {}).get(pick.level, "")
                self.log(f"{pick.level}: {where}{confidence}" + (f" — {remark}" if remark else "")
                         + (f" ({note})" if note else ""))
            if self.spine is not None:   # imported only when there is a count: it is not light
                from ctviewer.workflows.slice_locator.vertebrae import count_text

                self.log(count_text(self.spine))
        self._update_buttons()

    def _draw_lines(self) -> None:
        if self.study is None:
            return
        set_lines(self.study, LINES_LAYER, pick_lines(self.picks))
        set_lines(self.study, COUNT_LAYER, count_lines(self.spine))

    def _pick_at(self, row: int):
        return self.picks[row] if 0 <= row < len(self.picks) else None

    def go_to_pick(self, row: int) -> bool:
        """Move the study's cursor to the pick's slice (the axial view shows it)."""
        pick = self._pick_at(row)
        if pick is None or self.study is None:
            return False
        if not pick.in_scan:
            self.error.emit(f"{pick.level} is in view but was not found: no slice to go to"
                            if pick.status == "not_found" else f"{pick.level} is not in this scan")
            return False
        _, y, x = self.study.cursor
        self.study.cursor = (pick.slice_index, y, x)
        return True

    def _review_blocker(self) -> str:
        entry = self.selected_entry()
        if entry is None or entry.card.task != "slice_locator":
            return "Select a slice_locator model"
        if self.study is None or not self.study.image.source:
            return "Open a study from a file or folder first (the review keeps its picks beside it)"
        return ""

    def open_review(self) -> None:
        """The review window on this study, predicting with the selected model."""
        from app.review.sources import open_review
        from app.review.window import ReviewWindow

        reason = self._review_blocker()
        if reason:
            self.error.emit(reason)
            return
        model = str(self.selected_entry().path)
        try:
            source = open_review([self.study.image.source])
            if self.picks and self._picks_model == model:
                self._hand_over_picks(source)
            self._review_window = ReviewWindow(source, locator_name=model, parent=self.window())
        except InputError as exc:
            self._report_error("Cannot open the review", exc)
            return
        self._review_window.show()

    def _hand_over_picks(self, source) -> None:
        """Give the review this dock's picks of the study, so it does not predict them again.

        Rows the picks file already has (earlier decisions) are kept as they are.
        """
        exam = source.exam_ids[0]
        new = [replace(p, exam_id=exam) for p in self.picks if source.picks.get(exam, p.level) is None]
        if new:
            source.picks.set_many(new, "predict")

    # -- training ------------------------------------------------------------------------------
    def open_train_dialog(self, *, task: str | None = None, data: dict | None = None) -> None:
        """The Train… dialog; ``task`` and ``data`` preset it (e.g. a thin-section project: its folder as
        ``sources``, its test photos as ``test``): those keys replace the task defaults' values when the
        defaults arrive, and are added to the config where the form has no such key."""
        from app.dialogs.train_dialog import TrainDialog
        from ctviewer.ml.tasks import task_names

        if self.training:
            self.error.emit("A model is training: one training at a time")
            return
        entry = self.selected_entry()
        dialog = TrainDialog(task_names(), task=task or (entry.card.task if entry else None),
                             studies=self.open_studies(), parent=self)
        if data:
            dialog.task_loaded.connect(lambda name: name == task and dialog.data.preset(data))
        try:
            if self.exec_dialog(dialog):
                config = dialog.config()
                if data and config.task == task:
                    missing = {k: v for k, v in data.items() if k not in config.data}
                    if missing:
                        config = replace(config, data={**config.data, **missing})
                studies = dialog.chosen_studies()
                if studies:
                    self.train_on_studies(config, studies)
                else:
                    self.start_training(config)
        finally:
            dialog.deleteLater()

    def open_studies(self) -> list:
        """The studies open in the app (the main window holds one at a time)."""
        return [] if self.study is None else [self.study]

    def train_on_studies(self, config, studies) -> bool:
        """Write the open studies (name, image, LabelMap) as training files in a worker, add their folder to
        the config's ``data.sources``, then train as :meth:`start_training` does."""
        from ctviewer.workflows.segmentation.export import export_training_pairs, studies_folder

        if self.training:
            self.error.emit("A model is training: one training at a time")
            return False
        folder = studies_folder(config.name)
        self.log(f"writing {len(studies)} open stud{'y' if len(studies) == 1 else 'ies'} for {config.name} "
                 f"to {folder}")
        self.train_bar.setValue(0)
        self.train_cancel.setEnabled(True)
        self._rows[1].show()
        self._export = run_worker(export_training_pairs, studies, folder, pool=self._pool,
                                  on_result=lambda path: self._studies_written(config, path),
                                  on_error=lambda exc: self._report_error("Cannot train on the open studies", exc),
                                  on_progress=lambda f, m: (self.train_bar.setValue(int(f * 1000)),
                                                            self.train_status.setText(m)),
                                  on_finished=self._export_done)
        self._export.cancelled.connect(lambda: self.log("training cancelled while the open studies were written"))
        self._update_buttons()
        return True

    def _studies_written(self, config, folder) -> None:
        self._export = None
        data = dict(config.data)
        sources = data.get("sources") or []
        data["sources"] = [*([sources] if isinstance(sources, str) else sources), str(folder)]
        self.start_training(replace(config, data=data))

    def _export_done(self) -> None:
        if self._export is None:
            return   # written: the training has started
        self._export = None
        self._rows[1].hide()
        self.train_status.setText("")
        self._update_buttons()
        self.training_finished.emit(None)   # failed or cancelled before it began

    def exec_dialog(self, dialog) -> bool:
        """Show a dialog and wait for the user (tests replace this)."""
        return dialog.exec() == QDialog.DialogCode.Accepted

    def start_training(self, config) -> bool:
        """Train in the background (see the module docstring); False when a training already runs."""
        if self.training:
            self.error.emit("A model is training: one training at a time")
            return False
        self._events = queue.SimpleQueue()   # a fresh queue: a late report of an earlier run cannot mix in
        self._last_batch, self._train_fraction, self._train_message = None, 0.0, "starting"
        self.curves.reset()
        self.train_bar.setValue(0)
        self.train_cancel.setEnabled(True)
        self._rows[1].show()
        self.tabs.setCurrentWidget(self.curves)
        self.log(f"training {config.name} ({config.task}): {config.epochs} epochs, batch size {config.batch_size}, "
                 f"learning rate {config.learning_rate:g}")
        self._training = run_worker(train_model, config, self._events, pool=self._pool,
                                    on_result=self._trained, on_error=self._training_failed,
                                    on_progress=self._training_progress, on_finished=self._training_done)
        self._training.cancelled.connect(self._training_cancelled)
        self._tick.start()
        self._drain()
        self._update_buttons()
        return True

    def cancel_training(self) -> None:
        if self._export is not None:
            self._export.cancel()
            self.train_cancel.setEnabled(False)
        if self._training is not None:
            self._training.cancel()
            self.train_cancel.setEnabled(False)
            self.log("cancelling: the training stops after the current batch")

    def _training_progress(self, fraction: float, message: str) -> None:
        self._train_fraction, self._train_message = fraction, message   # drawn by the timer

    def _drain(self) -> None:
        """Show what the training reported since the last tick (runs ~10 times a second)."""
        from ctviewer.ml.training import format_seconds

        while True:
            try:
                kind, item = self._events.get_nowait()
            except queue.Empty:
                break
            if kind == "batch":
                self._last_batch = item
                self.curves.add_batch(item.epoch - 1 + item.batch / max(item.batches, 1), item.loss, item.metrics)
            elif kind == "epoch":
                self.curves.add_epoch(item.epoch, item.logs)
            else:
                self.log(item)
        self.train_bar.setValue(int(self._train_fraction * 1000))
        b = self._last_batch
        self.train_status.setText(
            f"epoch {b.epoch}/{b.epochs} · batch {b.batch}/{b.batches} · loss {b.loss:.4g} · "
            f"{b.samples_per_s:.0f} samples/s · {format_seconds(b.eta_s)} left"
            if b is not None and 0.1 < self._train_fraction < 0.9 else self._train_message)
        self.curves.redraw()

    def _final_drain(self) -> None:
        """Show the last reports and stop the timer, so a tick between the result and ``finished`` cannot
        write a batch line over the final status."""
        self._tick.stop()
        self._drain()

    def _trained(self, result) -> None:
        self._final_drain()
        if result.entry is not None:
            self.refresh_models(select=result.entry.name)
        self.train_status.setText(f"done: best epoch {result.best_epoch}"
                                  + (" (stopped early)" if result.stopped_early else ""))
        self._result = result

    def _training_failed(self, exc: Exception) -> None:
        self._final_drain()
        self.train_status.setText("training failed")
        self._report_error("Training failed", exc)

    def _training_cancelled(self) -> None:
        self._final_drain()
        self.train_status.setText("training cancelled")

    def _training_done(self) -> None:
        self._training = None
        self._tick.stop()
        self._rows[1].hide()
        self._update_buttons()
        result, self._result = self._result, None
        self.training_finished.emit(result)   # last: a slot may start the next training at once

    # -- feedback and closing ------------------------------------------------------------------
    def log(self, text: str) -> None:
        self.log_view.appendPlainText(f"{datetime.now():%H:%M:%S}  {text}")
        log.info("%s", text)

    def _report_error(self, what: str, exc: Exception) -> None:
        message = (str(exc) or type(exc).__name__).splitlines()[0]
        if not isinstance(exc, InputError):   # ours, not the user's: keep the details for a bug report
            log.error("%s: %s\n%s", what, message, getattr(exc, "traceback_text", ""))
            message = f"{getattr(exc, 'kind', None) or type(exc).__name__}: {message}"   # kind: from the model process
        self.log(f"{what}: {message}")
        self.tabs.setCurrentWidget(self.log_view)
        self.error.emit(f"{what}: {message}")

    def ask_stop_training(self) -> bool:
        """Asked when the app closes during a training (tests replace this)."""
        answer = QMessageBox.question(
            self, "A model is training",
            "A model is still training. Stop the training and close?\n"
            "The best checkpoint so far is kept in the training's log folder.")
        return answer == QMessageBox.StandardButton.Yes

    def may_close(self) -> bool:
        """False when the user wants the training to go on (the window then stays open)."""
        return not self.training or self.ask_stop_training()

    def shutdown(self, timeout_ms: int = 15000) -> bool:
        """Cancel the dock's work and wait for the training thread (it stops between batches)."""
        for worker in (self._run, self._export, self._training):
            if worker is not None:
                worker.cancel()
        self._tick.stop()
        stopped = self._pool.waitForDone(timeout_ms)
        self._drain()   # the last lines (where the best checkpoint is) also reach the terminal's log
        return stopped


def _progress_row(on_cancel) -> tuple[QProgressBar, QPushButton, QWidget]:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    bar = QProgressBar()
    bar.setRange(0, 1000)
    cancel = QPushButton("Cancel")
    cancel.clicked.connect(on_cancel)
    layout.addWidget(bar, 1)
    layout.addWidget(cancel)
    return bar, cancel, row


# -- work run in workers (no Qt here) ------------------------------------------------------------

def train_model(config, events: queue.SimpleQueue, progress=None, cancel=None):
    """:func:`ctviewer.ml.tasks.run_training`, its reports put on ``events`` for the GUI's timer."""
    from ctviewer.ml.child import train_in_child
    from ctviewer.ml.training import TrainingCancelled

    try:
        # In a child process at lower priority: TensorFlow and VTK's OpenGL crash one process, and
        # TensorFlow's start-up holds the interpreter lock for hundreds of milliseconds.
        return train_in_child(config, progress=progress, cancel=cancel,
                              on_batch=lambda report: events.put(("batch", report)),
                              on_epoch=lambda report: events.put(("epoch", report)),
                              log=lambda line: events.put(("log", line)))
    except TrainingCancelled as exc:   # the worker only says "cancelled": the log says what was kept
        events.put(("log", str(exc)))
        raise
