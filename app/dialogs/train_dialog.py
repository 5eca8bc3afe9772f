"""The Train… dialog: fills a :class:`~ctviewer.ml.training.TrainConfig`; the model dock runs it.

The data section is task-specific (synthetic scan counts, a thesis ``.npz`` file, a reviewed picks
CSV, …), so its form is built from whatever the data table holds: the task's default config
(``models/configs/TASK.toml`` where ctviewer ships one: the settings its shipped model was trained
with), or a config the user loads with "Load config…" (the same TOML file ``ctviewer train`` reads).
Numbers get spin boxes, true/false a check box, paths a field with a browse button, lists of words or
paths a comma-separated field; tables and lists of tables are shown as they are. Settings the dialog
does not show (seed, ``extra``, and the output folders of a loaded config) come from that config;
the default config's output folders are not used, so training from the GUI never writes into the
shipped models folder.

For the segmentation tasks, the "Open studies" group lists the studies open in the app that have a
label layer: each checked study (with the label layer chosen beside it) is handed to the model dock,
which writes it as training files and adds that folder to ``data.sources``
(:mod:`ctviewer.workflows.segmentation.export`).

A task's module may import Keras, which takes seconds: it is loaded in a worker, never here.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QSpinBox, QVBoxLayout, QWidget)

from app.docks.segmentation_run import reference_layer
from app.workers import run_worker
from ctviewer.errors import InputError
from ctviewer.ml.training import PATH_WORDS
from ctviewer.workflows.segmentation.segment import SEGMENTATION_TASKS

FOLDER_WORDS = ("dir", "dirs", "folder", "folders")
CONFIG_FILTER = "Training configs (*.toml);;All files (*)"


def is_path_key(key: str) -> bool:
    """Data keys named like TrainConfig's path keys get a browse button (the same rule resolves them)."""
    return key in PATH_WORDS or key.rsplit("_", 1)[-1] in PATH_WORDS


class DataForm(QWidget):
    """Edits one (possibly nested) dict of task data; :meth:`values` gives it back with the same types."""

    def __init__(self, data: dict | None = None, parent=None):
        super().__init__(parent)
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.fields: dict[str, tuple[object, QWidget]] = {}   # key -> (default value, editor)
        self.set_data(data or {})

    def set_data(self, data: dict) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.fields = {}
        for key, value in data.items():
            editor = self._editor(key, value)
            self.fields[key] = (value, editor)
            self.form.addRow(key.replace("_", " "), editor)
        if not data:
            self.form.addRow(QLabel("This task has no data settings; load a config to set them."))

    def _editor(self, key: str, value) -> QWidget:
        if isinstance(value, bool):
            editor = QCheckBox()
            editor.setChecked(value)
        elif isinstance(value, int):
            editor = QSpinBox(minimum=-10**9, maximum=10**9, value=value)
        elif isinstance(value, float):
            editor = QDoubleSpinBox(minimum=-1e9, maximum=1e9, decimals=4, value=value)
        elif isinstance(value, dict):
            editor = QGroupBox()
            QVBoxLayout(editor).addWidget(DataForm(value))
        elif isinstance(value, (list, tuple)) and any(isinstance(v, (dict, list, tuple)) for v in value):
            editor = QLabel(_describe(value))   # e.g. real-CT test sets: edited in the config file
            editor.setWordWrap(True)
            editor.setToolTip("Edit this in the config file and load it with Load config…")
        else:
            text = ", ".join(str(v) for v in value) if isinstance(value, (list, tuple)) else (
                "" if value is None else str(value))
            editor = QLineEdit(text)
            if isinstance(value, (list, tuple)):
                editor.setToolTip("Several values, separated by commas")
            if is_path_key(key):
                return _with_browse(editor, key)
        editor.setObjectName(key)
        return editor

    def values(self) -> dict:
        return {key: _value_of(default, editor) for key, (default, editor) in self.fields.items()}

    def preset(self, values: dict) -> None:
        """Show ``values`` for the keys the form has (lists as comma-separated text); others are left."""
        for key, value in values.items():
            if key not in self.fields:
                continue
            editor = self.editor(key)
            line = editor.findChild(QLineEdit) if isinstance(editor, _PathField) else editor
            if isinstance(line, QLineEdit):
                line.setText(", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value))

    def editor(self, key: str) -> QWidget:
        """The widget editing ``key`` (the line edit for paths)."""
        widget = self.fields[key][1]
        return widget.findChild(QLineEdit) if isinstance(widget, _PathField) else widget


class _PathField(QWidget):
    pass


def _with_browse(line: QLineEdit, key: str) -> QWidget:
    box = _PathField()
    row = QHBoxLayout(box)
    row.setContentsMargins(0, 0, 0, 0)
    line.setObjectName(key)
    folder = key.rsplit("_", 1)[-1] in FOLDER_WORDS
    button = QPushButton("…")
    button.setToolTip("Choose a folder" if folder else "Choose a file")

    def browse():
        if folder:
            path = QFileDialog.getExistingDirectory(box, key)
        else:
            path, _ = QFileDialog.getOpenFileName(box, key)
        if path:
            line.setText(path)

    button.clicked.connect(browse)
    row.addWidget(line, 1)
    row.addWidget(button)
    return box


def _value_of(default, editor: QWidget):
    if isinstance(editor, QCheckBox):
        return editor.isChecked()
    if isinstance(editor, (QSpinBox, QDoubleSpinBox)):
        return editor.value()
    if isinstance(editor, QGroupBox):
        return editor.findChild(DataForm).values()
    if isinstance(editor, QLabel):
        return default
    text = (editor.findChild(QLineEdit) if isinstance(editor, _PathField) else editor).text().strip()
    if isinstance(default, (list, tuple)):
        kind = type(default[0]) if default else str
        return [kind(part.strip()) for part in text.split(",") if part.strip()]
    if default is None and not text:
        return None
    return text


class OpenStudiesBox(QGroupBox):
    """The open studies with label layers: a check box each and a combo of its label layers."""

    def __init__(self, studies=(), parent=None):
        super().__init__("Open studies", parent)
        grid = QGridLayout(self)
        self.rows: list[tuple[object, QCheckBox, QComboBox]] = []   # (study, train on it, its label layer)
        for study in studies:
            layers = study.layers.by_kind("labels")
            if not layers:
                continue
            check, combo = QCheckBox(study_name(study)), QComboBox()
            for layer in layers:
                combo.addItem(layer.name, layer)
            best = reference_layer(study, [{"ids": None}])   # the newest layer that holds labels
            if best is not None:
                combo.setCurrentIndex(layers.index(best))
            check.setChecked(best is not None)
            check.setToolTip("Train on this study and the label layer beside it (written to your models "
                             "folder as NIfTI files)" if best is not None else
                             "Its label layers are empty: paint or open labels first")
            combo.setToolTip("The label layer holding what the model should learn")
            grid.addWidget(check, len(self.rows), 0)
            grid.addWidget(combo, len(self.rows), 1)
            self.rows.append((study, check, combo))
        if not self.rows:
            grid.addWidget(QLabel("No open study has a label layer: open labels (File ▸ Open labels…) or "
                                  "paint them to train on a study."), 0, 0)

    def chosen(self) -> list[tuple[str, object, object]]:
        """(name, image Volume, LabelMap) of each checked study; the labels are a copy taken now, so
        painting while they are written does not change what the model learns."""
        from ctviewer.data.labels import LabelMap, LabelTable

        out = []
        for study, check, combo in self.rows:
            layer = combo.currentData()
            if check.isChecked() and layer is not None:
                labels = layer.labels
                table = LabelTable.from_json(labels.table.to_json())
                out.append((study_name(study), study.image, LabelMap(labels.volume.with_array(labels.array.copy()),
                                                                     table)))
        return out


def study_name(study) -> str:
    image = study.image
    return image.name or (Path(image.source).name if image.source else "") or study.id


class TrainDialog(QDialog):
    """Pick a task and its settings; :meth:`config` is the TrainConfig to run (InputError if unusable)."""

    #: the task's defaults arrived (loaded in a worker); tests wait for it
    task_loaded = Signal(str)

    def __init__(self, tasks: list[str], task: str | None = None, studies=(), parent=None):
        super().__init__(parent)
        self.setWindowTitle("Train a model")
        self._base = None        # the TrainConfig the settings the dialog does not show come from
        self._user_config = False   # True once the user loaded a config: the task's defaults no longer apply
        self._loading = None
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.task = QComboBox()
        self.task.addItems(tasks)
        self.name = QLineEdit()
        self.name.setPlaceholderText("letters, digits, '.', '_', '-'")
        self.epochs = QSpinBox(minimum=1, maximum=10000, value=30)
        self.batch_size = QSpinBox(minimum=1, maximum=4096, value=8)
        self.learning_rate = QDoubleSpinBox(minimum=1e-6, maximum=1.0, decimals=6, singleStep=1e-4, value=1e-3)
        self.augmentation = QCheckBox("vary the training samples (the task's crops, flips, intensity changes…)")
        self.augmentation.setChecked(True)
        self.validation = QDoubleSpinBox(minimum=0.05, maximum=0.5, decimals=2, singleStep=0.05, value=0.2)
        self.validation.setToolTip("Share of the studies held out for validation; every sample of a study "
                                   "stays on one side")
        self.patience = QSpinBox(minimum=0, maximum=1000, value=6)
        self.patience.setToolTip("Stop after this many epochs without a better validation loss (0: never)")
        for label, widget in (("Task", self.task), ("Model name", self.name), ("Epochs", self.epochs),
                              ("Batch size", self.batch_size), ("Learning rate", self.learning_rate),
                              ("Augmentation", self.augmentation), ("Validation studies", self.validation),
                              ("Early-stopping patience", self.patience)):
            form.addRow(label, widget)
        layout.addLayout(form)
        self.data_box = QGroupBox("Data")
        self.data = DataForm()
        QVBoxLayout(self.data_box).addWidget(self.data)
        layout.addWidget(self.data_box)
        self.studies = OpenStudiesBox(studies)
        layout.addWidget(self.studies)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Train")
        self.load_button = buttons.addButton("Load config…", QDialogButtonBox.ButtonRole.ActionRole)
        self.load_button.clicked.connect(self.choose_config)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.task.currentTextChanged.connect(self._task_changed)
        if task in tasks:
            self.task.setCurrentText(task)
        self._task_changed(self.task.currentText())

    # -- the task's defaults ---------------------------------------------------------------------
    def _task_changed(self, name: str) -> None:
        if not name:
            return
        self._base, self._user_config = None, False
        self.studies.setVisible(name in SEGMENTATION_TASKS)
        self.name.setText(f"{name}-{datetime.now():%Y%m%d-%H%M}")
        if self._loading is not None:
            self._loading.cancel()
        self.message.setText(f"loading the {name} task…")
        self.data.set_data({})
        self._loading = run_worker(_task_defaults, name, on_result=lambda cfg, n=name: self._defaults(n, cfg),
                                   on_error=lambda exc, n=name: self._defaults_failed(n, exc))

    def _defaults(self, name: str, config) -> None:
        if self._loading is None or name != self.task.currentText() or self._user_config:
            return  # the dialog closed, or the user moved on (another task, a loaded config)
        self._loading = None
        if config is None:
            self.data.set_data({})
            self.message.setText(f"The {name} task has no default settings: load a config for its data.")
        else:
            self.set_config(config, keep_name=True)
            self.message.setText(f"Defaults: the settings of ctviewer's own {name} model.")
        self.task_loaded.emit(name)

    def _defaults_failed(self, name: str, exc: Exception) -> None:
        if self._loading is not None and name == self.task.currentText():
            self._loading = None
            self.message.setText(f"The {name} task cannot be loaded: {_one_line(exc)}")
            self.task_loaded.emit(name)

    # -- configs -----------------------------------------------------------------------------------
    def choose_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load training config", "", CONFIG_FILTER)
        if path:
            self.load_config(path)

    def load_config(self, path) -> bool:
        """Fill the dialog from a TOML training config; False (and the reason shown) when it is unusable."""
        from ctviewer.ml.training import TrainConfig

        try:
            config = TrainConfig.from_toml(path)
        except InputError as exc:
            self.message.setText(str(exc))
            return False
        self.set_config(config)
        self._user_config = True
        self.message.setText(f"Loaded {Path(path).name}")
        return True

    def set_config(self, config, keep_name: bool = False) -> None:
        if self.task.findText(config.task) < 0:
            self.task.addItem(config.task)
        self.task.blockSignals(True)
        self.task.setCurrentText(config.task)
        self.task.blockSignals(False)
        self.studies.setVisible(config.task in SEGMENTATION_TASKS)
        self._base = config
        if not keep_name:
            self.name.setText(config.name)
        self.epochs.setValue(config.epochs)
        self.batch_size.setValue(config.batch_size)
        self.learning_rate.setValue(config.learning_rate)
        self.augmentation.setChecked(config.augmentation)
        self.validation.setValue(config.validation_fraction)
        self.patience.setValue(config.patience)
        self.data.set_data(dict(config.data))

    def config(self):
        """The TrainConfig the dialog describes; InputError naming the setting that is wrong."""
        from ctviewer.ml.training import TrainConfig

        values = dict(task=self.task.currentText(), name=self.name.text().strip(), data=self.data.values(),
                      epochs=self.epochs.value(), batch_size=self.batch_size.value(),
                      learning_rate=self.learning_rate.value(), augmentation=self.augmentation.isChecked(),
                      validation_fraction=self.validation.value(), patience=self.patience.value())
        if self._base is not None and self._base.task == values["task"]:
            return dataclasses.replace(self._base, **values)
        return TrainConfig(**values)

    def chosen_studies(self) -> list[tuple[str, object, object]]:
        """(name, image, LabelMap) of the open studies to train on as well; empty for other tasks."""
        return self.studies.chosen() if self.task.currentText() in SEGMENTATION_TASKS else []

    def accept(self) -> None:
        try:
            self.config()
        except InputError as exc:
            self.message.setText(str(exc))
            return
        if self._loading is not None:
            self._loading.cancel()
        super().accept()

    def done(self, result: int) -> None:
        if self._loading is not None:
            self._loading.cancel()
            self._loading = None
        super().done(result)


def _task_defaults(name: str, progress=None, cancel=None):
    """The task's default TrainConfig (see the module docstring), or None; InputError for an unknown task.

    Runs in a worker: it imports the task's module.
    """
    from ctviewer.ml.registry import SHIPPED_DIR
    from ctviewer.ml.tasks import task_names
    from ctviewer.ml.training import TrainConfig

    if name not in task_names():  # not get_task(): a task's module may import Keras, never loaded here
        raise InputError(f"unknown task '{name}'; known tasks: {', '.join(task_names())}")
    path = _shipped_config(SHIPPED_DIR / "configs", name)
    if path is None:
        return None
    return dataclasses.replace(TrainConfig.from_toml(path), out_dir=None, log_dir=None)


def _shipped_config(folder: Path, task: str) -> Path | None:
    """``TASK.toml``, else the first shipped config training that task (segmentation_2d has only
    liver_unet2d.toml): its data settings (target, window, spacing) are the form users edit."""
    import tomllib

    path = folder / f"{task}.toml"
    if path.is_file():
        return path
    for path in sorted(folder.glob("*.toml")):
        if path.name.startswith(("_", ".")):
            continue
        try:
            if tomllib.loads(path.read_text(encoding="utf-8")).get("task") == task:
                return path
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
    return None


def _describe(values) -> str:
    """Tables from a config, one line each: "name: abdomen_slab, image: …/abdomen_slab_ct.nii.gz"."""
    lines = []
    for v in values:
        if isinstance(v, dict):
            lines.append(", ".join(f"{k}: {Path(x).name if isinstance(x, str) and '/' in x else x}"
                                   for k, x in v.items()))
        else:
            lines.append(str(v))
    return "\n".join(lines)


def _one_line(exc: Exception) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0]
