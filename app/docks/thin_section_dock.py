"""The thin-section project dock: a folder of photomicrographs, each with its labels, prediction and status.

Clicking a photo opens it as the study through the main window (``set_study``: unsaved labels of the
study open before are asked about), its label file as the label layer painting edits (an empty layer
with the thin-section classes when it has none) and its saved prediction as a second layer. Labels are
saved by the window's label keeper into the project's label file, so the dock's "Save labels", Labels ▸
Save labels (Ctrl+S), autosave and crash recovery are one mechanism; the dock turns each save into the
photo's status. Models run in the shared model process (``app/thin_section/work.py``), never here.

Keys: Ctrl+Right / Ctrl+Left open the next / previous photo of the list (plain arrows move slices).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QComboBox, QDockWidget, QFileDialog, QGridLayout, QHBoxLayout, QLabel, QPushButton,
                               QSplitter, QTabWidget, QVBoxLayout, QWidget)

from app.thin_section import work
from app.thin_section.folder_results import FolderResults
from app.thin_section.photo_list import THUMBNAIL_PX, PhotoList
from app.workers import run_worker
from ctviewer.errors import InputError

TASK = "thin_section"
#: Photos per thumbnail worker: rows fill in while the rest are read, and a new folder stops the old run soon.
THUMBNAILS_PER_RUN = 6
NO_MODEL = "No thin-section model yet: train one with Train… (it then appears here)"


class ThinSectionDock(QDockWidget):
    error = Signal(str)              # one line for the user (the window's status bar)
    project_opened = Signal(object)  # ThinSectionProject
    photo_opened = Signal(str)       # the photo's name, once it is the window's study
    status_changed = Signal(str)     # a photo's name, after its status changed
    predicted = Signal(str)          # a photo's name, once its prediction layer is shown and saved
    folder_predicted = Signal(list)  # the rows of a "Predict folder…" run

    def __init__(self, window):
        super().__init__("Thin sections", window)
        self.setObjectName("thin_section_dock")
        self.window_ = window
        self.project = None
        self.item = None                # the ProjectImage whose study this dock opened
        self._study = None
        self._opening = self._predicting = self._folder_run = self._thumb_run = None
        self._thumb_generation = 0
        self._build()
        window.keeper.saved.connect(self._labels_saved)
        window.keeper.propose_path = self._propose_label_file
        window.annotator.layer_changed.connect(lambda _layer: self._update_buttons())
        if hasattr(window, "model_dock"):
            window.model_dock.models_changed.connect(self.refresh_models)
        self.refresh_models()

    # -- building ------------------------------------------------------------------------------
    def _build(self) -> None:
        self.folder_label = QLabel("Open a folder of thin-section photos (File ▸ Open thin-section folder…).")
        self.folder_label.setWordWrap(True)
        self.open_button = QPushButton("Open folder…")
        self.open_button.clicked.connect(self.open_folder_dialog)
        self.photos = PhotoList()
        self.photos.itemClicked.connect(lambda row, _col: self.open_photo(row.data(0, Qt.ItemDataRole.UserRole)))
        self.photos.itemActivated.connect(lambda row, _col: self.open_photo(row.data(0, Qt.ItemDataRole.UserRole)))
        self.problems = QLabel("")
        self.problems.setObjectName("problems")
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #b03020")
        self.problems.hide()
        self.save_button = _button("Save labels", self.save_labels,
                                   "Write this photo's labels into the project's label file (Ctrl+S does the same)")
        self.bins_button = _button("Gray-level bins…", self.window_.show_gray_bins,
                                   "Start this photo's labels from gray-level bins")
        self.model_combo = QComboBox()
        self.model_combo.currentIndexChanged.connect(lambda _i: self._update_buttons())
        self.predict_button = _button("Predict", self.predict, "")
        self.accept_button = _button("Accept prediction", self.accept_prediction,
                                     "Copy the prediction into the labels (Undo takes it back), save, mark reviewed")
        self.reviewed_button = _button("Mark reviewed", self.toggle_reviewed, "")
        self.reviewed_button.setCheckable(True)
        self.training_button = _button("Add to training set", self.add_to_training,
                                       "Train the next models on this photo and its labels")
        self.train_button = _button("Train…", self.train, "Train a thin-section model on this project's labels")
        self.folder_button = _button("Predict folder…", self.predict_folder,
                                     "Predict every photo of the project into a folder: class images, recoloured "
                                     "photos, class fractions (fractions.csv)")
        self.previous_button = _button("◀ Previous", self.previous_photo, "Previous photo (Ctrl+Left)")
        self.next_button = _button("Next ▶", self.next_photo, "Next photo (Ctrl+Right)")
        self.results = FolderResults(self.cancel_folder)

        grid = QGridLayout()
        for n, widget in enumerate((self.save_button, self.bins_button, self.reviewed_button, self.training_button,
                                    self.predict_button, self.accept_button, self.train_button, self.folder_button)):
            grid.addWidget(widget, n // 2, n % 2)
        model_row = QHBoxLayout()
        model_row.addWidget(QLabel("Model"))
        model_row.addWidget(self.model_combo, 1)
        top = QHBoxLayout()
        top.addWidget(self.folder_label, 1)
        top.addWidget(self.open_button)
        model_row.insertWidget(0, self.previous_button)   # one row: the splitter above keeps the height
        model_row.insertWidget(1, self.next_button)
        # the list, the fractions table and chart share the height: the list keeps its room, the user moves the rest
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("thin_section_splitter")
        for n, widget in enumerate((self.photos, self.results.table, self.results.chart)):
            self.splitter.addWidget(widget)
            self.splitter.setStretchFactor(n, (3, 1, 2)[n])
        self.splitter.setCollapsible(0, False)   # the table and chart may be dragged shut, never the list
        self._room_given = False
        project = QWidget()
        layout = QVBoxLayout(project)
        layout.addLayout(top)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.problems)
        layout.addWidget(self.results)
        layout.addLayout(model_row)
        layout.addLayout(grid)
        self.tabs = QTabWidget()
        self.tabs.addTab(project, "Project")
        self._add_live_classifier()
        self.setWidget(self.tabs)

        self.next_action = self._window_action("Next thin-section photo", self.next_photo, "Ctrl+Right")
        self.previous_action = self._window_action("Previous thin-section photo", self.previous_photo, "Ctrl+Left")
        self._update_buttons()

    def _add_live_classifier(self) -> None:
        """The live classifier panel (scribbles → random forest → labels) as the dock's second tab."""
        from app.thin_section.live_classifier import LiveClassifierPanel

        self.live_classifier = LiveClassifierPanel(self.window_)
        self.tabs.addTab(self.live_classifier, "Live classifier")

    def _window_action(self, text: str, slot, key: str) -> QAction:
        # on the window, not the dock: a dock tabified behind another is hidden, and so are its shortcuts
        action = QAction(text, self.window_)
        action.setShortcut(QKeySequence(key))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(slot)
        self.window_.addAction(action)
        return action

    # -- opening a project ---------------------------------------------------------------------
    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open thin-section folder")
        if folder:
            self.open_folder(folder)

    def open_folder(self, folder) -> None:
        """Read the project in a worker; the list fills when it is read, thumbnails after."""
        self.show()
        self.raise_()
        self.folder_label.setText(f"Reading {folder}…")
        if self._opening is not None:
            self._opening.cancel()
        self._opening = run_worker(work.open_project, folder, on_result=self._project_read,
                                   on_error=lambda exc: self._failed(f"Cannot open {folder}", exc),
                                   on_finished=self._opened_done)

    def _opened_done(self) -> None:
        self._opening = None

    def _project_read(self, project) -> None:
        self.project = project
        self.item = self._study = None
        self.folder_label.setText(f"{project.folder}  ({project.layout} layout, {len(project.images)} photos)")
        self.photos.set_images(project.images)
        self.results.clear()
        self._show_problems(list(project.problems))
        self.refresh_models()   # models trained since the window opened
        self._thumb_generation += 1
        self._next_thumbnails(self._thumb_generation)
        self._update_buttons()
        self.project_opened.emit(project)

    def _show_problems(self, lines: list[str]) -> None:
        self.problems.setText("\n".join(lines))
        self.problems.setVisible(bool(lines))

    def _next_thumbnails(self, generation: int) -> None:
        """Thumbnails in small runs, one after the other (never many photos in memory, never the GUI thread)."""
        if generation != self._thumb_generation or self.project is None:
            return
        done = set(self.photos.thumbnails)
        todo = [str(im.image_path) for im in self.project.images if str(im.image_path) not in done]
        if not todo:
            self._thumb_run = None
            return
        self._thumb_run = run_worker(work.thumbnails, todo[:THUMBNAILS_PER_RUN], THUMBNAIL_PX,
                                     on_result=lambda found, g=generation: self._thumbnails_made(found, g),
                                     on_error=lambda exc: self._failed("Thumbnails", exc))

    def _thumbnails_made(self, found, generation: int) -> None:
        if generation != self._thumb_generation or self.project is None:
            return
        for path, rgb, why in found:
            names = [im.name for im in self.project.images if str(im.image_path) == path]
            if rgb is None:
                self.photos.mark_unreadable(path)
                self._show_problems([*filter(None, self.problems.text().splitlines()), f"{path}: {why}"])
            else:
                self.photos.set_thumbnail(path, rgb, names)
        self._next_thumbnails(generation)

    # -- opening a photo -----------------------------------------------------------------------
    @property
    def open_item(self):
        """The project photo that is the window's study now (None when another study is open)."""
        if self._study is not None and self.window_.study is self._study:
            return self.item
        return None

    def open_photo(self, name: str) -> None:
        if self.project is None or name is None:
            return
        item = self.project.image(name)
        if self.open_item is item:
            return
        if self._opening is not None:
            self._opening.cancel()
        self.folder_label.setText(f"Opening {item.name}…")
        self._opening = run_worker(work.open_photo, self.project, item,
                                   on_result=lambda study, it=item: self._photo_read(it, study),
                                   on_error=lambda exc: self._failed(f"Cannot open {item.name}", exc),
                                   on_finished=self._opened_done)

    def _photo_read(self, item, study) -> None:
        window = self.window_
        self.folder_label.setText(f"{self.project.folder}  ({self.project.layout} layout)")
        window.set_study(study)
        if window.study is not study:   # the user kept the study open before (unsaved labels: Cancel)
            self._select_open_item()
            return
        self.item, self._study = item, study
        layer = self.label_layer()
        if layer is not None:
            if window.keeper.path_of(layer) is None:   # saves (Ctrl+S too) go to the project's label file
                window.keeper.paths[id(layer)] = Path(self.project.label_target(item))
            window.annotator.set_layer(layer)
        self.photos.select(item.name)
        self._update_buttons()
        self.photo_opened.emit(item.name)

    def _select_open_item(self) -> None:
        item = self.open_item
        if item is not None:
            self.photos.select(item.name)
        else:
            self.photos.clearSelection()

    def _propose_label_file(self, layer):
        """Save As of a layer of the open photo (bins, live classifier) proposes the project's label file."""
        item = self.open_item
        if item is None or layer not in self._study.layers:
            return None
        return Path(self.project.label_target(item))

    def label_layer(self):
        return self._layer(work.LABELS_LAYER)

    def prediction_layer(self):
        return self._layer(work.PREDICTION_LAYER)

    def _layer(self, name: str):
        if self.open_item is None:
            return None
        return next((ly for ly in self._study.layers.by_kind("labels") if ly.name == name), None)

    def _step(self, by: int) -> None:
        names = self.photos.names()
        if not names:
            return
        current = self.open_item.name if self.open_item is not None else self.photos.current_name()
        index = names.index(current) + by if current in names else 0
        if 0 <= index < len(names):
            self.photos.select(names[index])
            self.open_photo(names[index])

    def next_photo(self) -> None:
        self._step(1)

    def previous_photo(self) -> None:
        self._step(-1)

    # -- labels and statuses -------------------------------------------------------------------
    def save_labels(self, on_done=None) -> bool:
        """Save the open photo's label layer into the project's label file (in a worker, atomically)."""
        item, layer = self.open_item, self.label_layer()
        if item is None or layer is None:
            self.error.emit("Open a photo of the project first")
            return False
        target = Path(self.project.label_target(item))
        target.parent.mkdir(parents=True, exist_ok=True)
        self.window_.keeper.save(layer, target, on_done=on_done)
        return True

    def _labels_saved(self, path: str) -> None:
        """The keeper wrote a label file: the open photo's own one becomes its labels and status."""
        item = self.open_item
        if item is None or Path(path) != Path(self.project.label_target(item)):
            return
        item.label_path = Path(path)
        if item.status in ("unlabelled", "predicted"):
            self._set_status(item, "labelled")

    def _set_status(self, item, status: str) -> None:
        try:
            self.project.set_status(item, status)
        except (InputError, OSError) as exc:
            self._failed(f"{item.name}: status not saved", exc)
        self.photos.update_image(item)
        self._update_buttons()
        self.status_changed.emit(item.name)

    def toggle_reviewed(self) -> None:
        item = self.open_item
        if item is None:
            return
        if item.status == "reviewed":
            self._set_status(item, "labelled" if item.label_path is not None else
                             "predicted" if item.prediction_path is not None else "unlabelled")
        else:
            self._set_status(item, "reviewed")

    def add_to_training(self) -> None:
        item = self.open_item
        if item is None:
            return
        if item.label_path is None:
            self.error.emit(f"{item.name} has no saved labels yet: save them first (Save labels)")
            return
        try:
            self.project.add_to_training(item)
        except (InputError, OSError) as exc:
            self._failed(f"{item.name}: not added to the training set", exc)
            return
        self.photos.set_images(self.project.images)   # the seed layout may list a copy under *_train
        self._update_buttons()
        self.status_changed.emit(item.name)

    def accept_prediction(self) -> bool:
        """The prediction becomes the labels (one undoable step), saved; the photo is then reviewed."""
        item, labels, prediction = self.open_item, self.label_layer(), self.prediction_layer()
        if item is None or labels is None or prediction is None:
            self.error.emit("Predict this photo first")
            return False
        annotator = self.window_.annotator
        annotator.set_layer(labels)
        for lab in prediction.labels.table:
            if lab.id not in labels.labels.table:
                labels.labels.table.add(lab.id, lab.name, tuple(lab.colour))
        annotator.editor_for(labels).replace_all(prediction.array.copy(), "accept prediction")
        return self.save_labels(on_done=lambda ok, it=item: ok and self._set_status(it, "reviewed"))

    # -- models --------------------------------------------------------------------------------
    def refresh_models(self) -> None:
        """The thin_section models (shipped and the user's) in the combo; the choice is kept."""
        from ctviewer.ml.registry import scan_models

        current = self.model_combo.currentText()
        try:
            entries = scan_models(TASK)[0]
        except OSError:
            entries = []
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for entry in entries:
            self.model_combo.addItem(entry.name, entry)
            self.model_combo.setItemData(self.model_combo.count() - 1, str(entry.path), Qt.ItemDataRole.ToolTipRole)
        if current:
            self.model_combo.setCurrentText(current)
        self.model_combo.blockSignals(False)
        self.model_combo.setEnabled(bool(entries))
        self.model_combo.setToolTip("" if entries else NO_MODEL)
        self._update_buttons()

    def model(self):
        return self.model_combo.currentData()

    def predict_blocker(self) -> str:
        if self.model() is None:
            return NO_MODEL
        if self.open_item is None:
            return "Open a photo of the project first"
        if self._predicting is not None:
            return "A prediction is running"
        return ""

    def predict(self) -> bool:
        """Run the chosen model on the open photo in the model process; its prediction layer and file follow."""
        reason = self.predict_blocker()
        if reason:
            self.error.emit(reason)
            return False
        item, entry, study = self.open_item, self.model(), self._study
        self.folder_label.setText(f"Predicting {item.name} with {entry.name}…")
        self._predicting = run_worker(work.predict_photo, item.image_path, entry, self.project.table,
                                      on_result=lambda ids: self._predicted(item, study, entry, ids),
                                      on_error=lambda exc: self._failed(f"{entry.name} on {item.name}", exc),
                                      on_finished=self._predict_done)
        self._update_buttons()
        return True

    def _predict_done(self) -> None:
        self._predicting = None
        if self.project is not None:
            self.folder_label.setText(f"{self.project.folder}  ({self.project.layout} layout)")
        self._update_buttons()

    def _predicted(self, item, study, entry, ids) -> None:
        saved = ""   # the prediction layer's own file, where it was written
        try:
            item.prediction_path = Path(self.project.save_prediction(item, ids))
            saved = str(item.prediction_path)
        except (InputError, OSError) as exc:
            self._failed(f"{item.name}: prediction not saved", exc)
        self.photos.update_image(item)
        self._show_fractions(item, ids)
        if self.window_.study is study:
            old = self._layer(work.PREDICTION_LAYER)
            layer = work.ids_layer(study.image, ids, self.project.table, work.PREDICTION_LAYER, saved)
            editing = self.window_.annotator.layer
            if old is not None:
                study.layers.remove(old)
            study.layers.insert(0, layer)   # under the labels: painting keeps going to the label layer
            if editing is not None and editing in study.layers:
                self.window_.annotator.set_layer(editing)
        self._update_buttons()
        self.predicted.emit(item.name)

    def _show_fractions(self, item, ids) -> None:
        """The new prediction's class fractions in the table and chart (the row a folder run names it by)."""
        from ctviewer.workflows.thin_section.classes import POROSITY_CLASS, class_fractions

        table = self.project.table
        fractions = class_fractions(ids, [lab.id for lab in table])
        self.results.show_photo(Path(item.image_path).name, fractions, fractions.get(POROSITY_CLASS, 0.0), table)
        self._make_room()

    def _make_room(self) -> None:
        """When fractions first show, the list keeps half the splitter and at least three photos in sight;
        the table and chart share the rest (the user's own drags are kept after that)."""
        if self._room_given:
            return
        self._room_given = True
        total = sum(self.splitter.sizes())
        list_needs = (self.photos.header().sizeHint().height() + 3 * max(self.photos.sizeHintForRow(0), 0)
                      + 2 * self.photos.frameWidth() + 2)
        first = max(total // 2, min(list_needs, total - 120))
        table = (total - first) * 2 // 5
        self.splitter.setSizes([first, table, total - first - table])

    # -- training and whole folders ------------------------------------------------------------
    def train(self) -> None:
        if self.project is None:
            self.error.emit("Open a thin-section folder first")
            return
        # the project's own test photos (the seed layout's *_test folders) are held out for the card; the
        # shipped config's photo names (7, 8, 9) mean nothing here, so validation goes by fraction
        test = [item.image_path.stem for item in self.project.images if item.split == "test" and item.label_path]
        self.window_.model_dock.open_train_dialog(
            task=TASK, data={"sources": [str(self.project.folder)], "test": test, "validation": []})

    def ask_output_folder(self) -> Path | None:
        """Where "Predict folder…" writes (tests replace this)."""
        folder = QFileDialog.getExistingDirectory(self, "Write the predictions into")
        return Path(folder) if folder else None

    def predict_folder(self) -> bool:
        if self.project is None or self.model() is None:
            self.error.emit(NO_MODEL if self.project is not None else "Open a thin-section folder first")
            return False
        if self._folder_run is not None:
            self.error.emit("The folder is being predicted (Cancel stops it)")
            return False
        out = self.ask_output_folder()
        if out is None:
            return False
        entry = self.model()
        self.results.started(f"{entry.name}:")
        self._folder_run = run_worker(work.predict_folder, self.project, out, entry,
                                      on_result=lambda found: self._folder_done(*found, out),
                                      on_error=lambda exc: self._failed("Predict folder", exc),
                                      on_progress=self.results.progress, on_finished=self._folder_finished)
        self._folder_run.cancelled.connect(lambda: self.results.say("Predicting the folder was cancelled"))
        self._update_buttons()
        return True

    def cancel_folder(self) -> None:
        if self._folder_run is not None:
            self._folder_run.cancel()
            self.results.cancel_button.setEnabled(False)

    def _folder_done(self, rows, problems, out) -> None:
        self.results.show_rows(rows, out, problems, self.project.table)
        self._make_room()
        self.folder_predicted.emit(rows)

    def _folder_finished(self) -> None:
        self._folder_run = None
        self.results.finished()
        self._update_buttons()

    # -- state and feedback --------------------------------------------------------------------
    def _update_buttons(self) -> None:
        item = self.open_item
        has_labels = item is not None and self.label_layer() is not None
        self.save_button.setEnabled(has_labels)
        self.bins_button.setEnabled(item is not None)
        reason = self.predict_blocker()
        self.predict_button.setEnabled(not reason)
        self.predict_button.setToolTip(reason or f"Predict {item.name} with {self.model_combo.currentText()}")
        self.accept_button.setEnabled(has_labels and self.prediction_layer() is not None)
        self.reviewed_button.setEnabled(item is not None)
        self.reviewed_button.setChecked(item is not None and item.status == "reviewed")
        self.reviewed_button.setToolTip("Mark this photo as checked (click again to undo)" if item is None or
                                        item.status != "reviewed" else "Reviewed: click to take the mark back")
        self.training_button.setEnabled(item is not None and item.split != "train")
        self.train_button.setEnabled(self.project is not None)
        folder_ready = self.project is not None and self.model() is not None and self._folder_run is None
        self.folder_button.setEnabled(folder_ready)
        self.folder_button.setToolTip(self.folder_button.toolTip() if folder_ready or self.project is None
                                      or self._folder_run is not None else NO_MODEL)
        names = self.photos.names()
        self.previous_button.setEnabled(len(names) > 1)
        self.next_button.setEnabled(len(names) > 1)

    def _failed(self, what: str, exc: Exception) -> None:
        message = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
        message = f"{what}: {message.splitlines()[0] if message else type(exc).__name__}"
        lines = [line for line in self.problems.text().splitlines() if line]
        self._show_problems((lines + [message])[-8:])
        if self.project is not None:
            self.folder_label.setText(f"{self.project.folder}  ({self.project.layout} layout)")
        else:
            self.folder_label.setText("Open a folder of thin-section photos (File ▸ Open thin-section folder…).")
        self.error.emit(message)


def _button(text: str, slot, tip: str) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tip)
    button.clicked.connect(lambda _checked=False: slot())
    return button
