"""The soil dock's Explain tab: what a soil_fraction network looks at on a slice, and through the cube.

The user picks a model, one of its convolution layers (``block1_conv1`` … ``block5_conv3``) and a
method. "Explain this slice" explains the current axial slice in the model process: Grad-CAM comes
back as a float heatmap drawn over the views (a heatmap layer: colour map, range and opacity in the
layers dock; the signed map with ReLU off in a diverging map, never wrapped to uint8), activation maps
as one grid image in a window of its own; the model's predicted fraction for the slice is shown with it.
"Grad-CAM volume" explains every slice (progress, cancel) into a heatmap layer over the cube, which
the 3D panel also draws, as a translucent cloud in the heatmap's colours over the object surfaces
(pores and stones shown first by the Objects tab).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QPushButton,
                               QVBoxLayout, QWidget)

from app.soil import explain_work as work
from app.soil.activation_window import ActivationWindow
from app.soil.task_row import TaskRow, one_line
from app.workers import run_worker

NO_MODEL_TIP = ("No soil_fraction model yet: train one first (Models ▸ Train…, task soil_fraction, "
                "or `ctviewer train models/configs/soil_vgg16.toml`).")
METHODS = (("Grad-CAM", "gradcam"), ("Activation maps", "activation"))


class ExplainPanel(QWidget):
    explained = Signal(dict)        # the answer for one slice
    volume_explained = Signal(object)  # the Grad-CAM volume's heatmap layer
    layers_listed = Signal(list)    # the chosen model's convolution layers

    def __init__(self, window, parent=None):
        super().__init__(parent)
        self.window = window
        self.study = None
        self.entries: list = []
        self.slice_layer = None
        self._slice_key = None
        self._volume_layers: list = []
        self.activations: ActivationWindow | None = None

        self.model_box = QComboBox()
        self.model_box.currentIndexChanged.connect(self._model_chosen)
        self.refresh_button = QPushButton("↻")
        self.refresh_button.setToolTip("Look for new models")
        self.refresh_button.clicked.connect(self.refresh_models)
        self.layer_box = QComboBox()
        self.layer_box.setToolTip("The convolution layer to explain")
        self.method = QComboBox()
        for title, key in METHODS:
            self.method.addItem(title, key)
        self.method.currentIndexChanged.connect(lambda _i: self._enable())
        self.relu = QCheckBox("ReLU (off: the signed map)")
        self.relu.setChecked(True)
        self.thresh = QDoubleSpinBox()
        self.thresh.setRange(0.0, 1e12)
        self.thresh.setDecimals(2)
        self.thresh.setToolTip("Activation maps: show the channels whose activation sum exceeds this")
        self.slice_button = QPushButton("Explain this slice")
        self.slice_button.clicked.connect(self.explain_slice)
        self.volume_button = QPushButton("Grad-CAM volume")
        self.volume_button.setToolTip("Grad-CAM of every slice, shown over the views and in 3D")
        self.volume_button.clicked.connect(self.explain_volume)
        self.row = TaskRow()

        models = QHBoxLayout()
        models.addWidget(self.model_box, 1)
        models.addWidget(self.refresh_button)
        form = QFormLayout()
        form.addRow("Model", models)
        form.addRow("Layer", self.layer_box)
        form.addRow("Method", self.method)
        form.addRow("", self.relu)
        form.addRow("Threshold", self.thresh)
        buttons = QHBoxLayout()
        buttons.addWidget(self.slice_button)
        buttons.addWidget(self.volume_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.row)
        layout.addStretch(1)
        self.set_study(getattr(window, "study", None))
        self.refresh_models()

    # -- models and layers --------------------------------------------------------------------
    def refresh_models(self) -> None:
        current = self.current_entry()
        self.entries = work.soil_models()
        self.model_box.blockSignals(True)
        self.model_box.clear()
        self.model_box.addItems([e.name for e in self.entries])
        names = [e.name for e in self.entries]
        if current is not None and current.name in names:
            self.model_box.setCurrentIndex(names.index(current.name))
        self.model_box.blockSignals(False)
        self.model_box.setEnabled(bool(self.entries))
        self.model_box.setToolTip("" if self.entries else NO_MODEL_TIP)
        if not self.entries:
            self.row.say(NO_MODEL_TIP)
        self._model_chosen()

    def current_entry(self):
        n = self.model_box.currentIndex()
        return self.entries[n] if 0 <= n < len(self.entries) else None

    def _model_chosen(self, *_) -> None:
        self.layer_box.clear()
        entry = self.current_entry()
        if entry is not None:
            listed = entry.card.inputs.get("conv_layers") or entry.card.extra.get("conv_layers")
            if listed:
                self._set_layers(entry, list(listed))
            else:   # read them from the model file (Keras-free: the model process starts only to explain)
                run_worker(work.conv_layers, str(entry.path),
                           on_result=lambda names, e=entry: self._set_layers(e, names),
                           on_error=lambda exc: self.row.say(one_line(exc), error=True))
        self._enable()

    def _set_layers(self, entry, names: list[str]) -> None:
        if entry is not self.current_entry():
            return
        self.layer_box.clear()
        self.layer_box.addItems(names)
        default = "block3_conv1"   # the seed's example layer
        if default in names:
            self.layer_box.setCurrentText(default)
        self._enable()
        self.layers_listed.emit(names)

    # -- study -------------------------------------------------------------------------------
    def set_study(self, study) -> None:
        self.study = study
        self.slice_layer, self._slice_key, self._volume_layers = None, None, []
        self._enable()

    def showEvent(self, ev) -> None:
        super().showEvent(ev)
        if self.study is not getattr(self.window, "study", None):
            self.set_study(self.window.study)
        if [e.name for e in work.soil_models()] != [e.name for e in self.entries]:   # trained meanwhile
            self.refresh_models()

    def _enable(self) -> None:
        ready = (self.current_entry() is not None and bool(self.layer_box.currentText())
                 and self.study is not None and not self.study.image.is_rgb and not self.row.running)
        self.slice_button.setEnabled(ready)
        self.volume_button.setEnabled(ready)
        for w in (self.layer_box, self.method):
            w.setEnabled(self.current_entry() is not None)
        activation = self.method.currentData() == "activation"
        self.thresh.setEnabled(activation)
        self.relu.setEnabled(not activation)
        self.volume_button.setEnabled(self.slice_button.isEnabled() and not activation)

    # -- explaining ---------------------------------------------------------------------------
    def explain_slice(self) -> bool:
        if not self.slice_button.isEnabled():
            return False
        entry, study = self.current_entry(), self.study
        index = study.cursor[0]   # the axial slice the views show
        self.row.start(f"Explaining slice {index + 1}", work.explain_slice, study.image, index, entry,
                       self.layer_box.currentText(), self.method.currentData(), self.relu.isChecked(),
                       self.thresh.value(), on_result=lambda r, s=study, e=entry: self._show_slice(s, e, r),
                       on_finished=self._enable)
        self._enable()
        return True

    def _show_slice(self, study, entry, result: dict) -> None:
        if study is not self.study:
            return
        index, layer = result["index"], result["layer"]
        said = f"slice {index + 1}, {layer}: predicted fraction {result['fraction']:.3f}"
        target = entry.card.outputs.get("value")   # what the number is, e.g. "1 - fraction of … object 1"
        if target:
            said += f" ({target})"
        if result["method"] == "activation":
            if result.get("grid") is None:
                self.row.say(f"{said}; no channel's activation sum exceeds {self.thresh.value():g}: lower the "
                             "threshold")
            else:
                if self.activations is None:
                    self.activations = ActivationWindow(self)
                self.activations.show_grid(result["grid"], result["channels"], layer, index, self.thresh.value())
                self.row.say(f"{said}; {len(result['channels'])} activation map(s) shown")
        else:
            self._show_heatmap(study, entry, result, said)
        self.explained.emit(result)

    def _show_heatmap(self, study, entry, result: dict, said: str) -> None:
        signed = not self.relu.isChecked()
        key = (entry.name, result["layer"], signed)
        previous = self.slice_layer if key == self._slice_key and self.slice_layer in study.layers else None
        name = f"Grad-CAM {result['layer']}" + (" (signed)" if signed else "")
        try:
            layer = work.slice_heatmap(study, result["index"], result["heatmap"], previous, name, signed)
        except ValueError as exc:
            self.row.say(str(exc), error=True)
            return
        if layer is not previous:
            if self.slice_layer in study.layers:
                study.layers.remove(self.slice_layer)
            study.layers.append(layer)
        self.slice_layer, self._slice_key = layer, key
        self._select_in_layers_dock(layer)
        self.row.say(said)

    def explain_volume(self) -> bool:
        if not self.volume_button.isEnabled():
            return False
        entry, study, layer = self.current_entry(), self.study, self.layer_box.currentText()
        signed = not self.relu.isChecked()
        self.row.start("Grad-CAM volume", work.explain_volume, study.image, str(entry.path), layer, not signed,
                       on_result=lambda heat, s=study: self._show_volume(s, heat, layer, signed),
                       on_finished=self._enable)
        self._enable()
        return True

    def _show_volume(self, study, heat, layer: str, signed: bool) -> None:
        if study is not self.study:
            return
        if heat.shape != study.image.shape:
            self.row.say(f"the Grad-CAM volume is {heat.shape} but the cube is {study.image.shape}", error=True)
            return
        for old in self._volume_layers:   # one Grad-CAM volume at a time: each is the cube's size in float32
            if old in study.layers:
                study.layers.remove(old)
        heat_layer = work.volume_heatmap(study, heat, f"Grad-CAM volume {layer}" + (" (signed)" if signed else ""),
                                         signed)
        study.layers.append(heat_layer)
        self._volume_layers = [heat_layer]
        view3d = getattr(getattr(self.window, "viewer", None), "view3d", None)
        if view3d is not None and view3d.mode == "volume":
            view3d.set_mode("labels")   # the cloud is drawn over surfaces, not inside a volume rendering
        self._select_in_layers_dock(heat_layer)
        self.row.say(f"Grad-CAM of {layer} on {heat.shape[0]} slices; in 3D as a cloud over the object surfaces "
                     "(faded while it shows, so it can be seen inside them)")
        self.volume_explained.emit(heat_layer)

    def _select_in_layers_dock(self, layer) -> None:
        """Colour map, range and opacity of the new heatmap are then one click away."""
        dock = getattr(self.window, "layers_dock", None)
        if dock is None:
            return
        from PySide6.QtCore import Qt

        for row in range(dock.list.count()):
            if dock.list.item(row).data(Qt.ItemDataRole.UserRole) == id(layer):
                dock.list.setCurrentRow(row)
