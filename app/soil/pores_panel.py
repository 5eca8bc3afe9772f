"""The soil dock's Pores tab: porosity, pore clusters, pore sizes and connectivity of one label.

The user picks a label (density object 1, the pores, by default; any id of the study's label layers)
and the connectivity, and presses Measure; :func:`ctviewer.workflows.soil.pores.pore_stats` runs in a
worker. The numbers go in a small form, the porosity per slice in a depth profile (depth downwards, as
soil profiles are drawn; a click moves the views to that slice), the local-thickness histogram in a
pore-size plot, the largest clusters in a list; Save writes what ``ctviewer soil pores --json`` (or ``--csv``)
prints; for the pore phase of the Phases tab, with its method, threshold and denoising, and where the
Phases tab measured a sample's outline, the porosity of the sample (as ``ctviewer soil pores`` reports it),
not of the whole field of view. A study without label layers is first split into density objects (the
seed's six bins).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QListWidget,
                               QPushButton, QTabWidget, QVBoxLayout, QWidget)

from app.soil import pores_work as work
from app.soil.phases_work import sample_porosity
from app.soil.task_row import TaskRow, one_line
from ctviewer.errors import InputError

TOP_CLUSTERS = 20
FIELDS = ("Porosity", "Pore clusters", "Largest cluster", "Euler number", "Percolates top to bottom",
          "Mean pore size")


class PoresPanel(QWidget):
    measured = Signal(object)     # the PoreStats on screen now
    objects_added = Signal(object)  # the density-objects label layer added to the study

    def __init__(self, window, parent=None):
        super().__init__(parent)
        self.window = window
        self.study = None
        self.stats = None
        self._choices: list[work.LabelChoice] = []
        self._measured_spacing = (1.0, 1.0, 1.0)
        self._phases = None   # method, threshold, denoising of the pore phase measured (Phases tab)

        self.label_box = QComboBox()
        self.label_box.setToolTip("The label whose voxels are the pores (density object 1 by default)")
        self.connectivity = QComboBox()
        self.connectivity.addItem("6 (faces)", 6)
        self.connectivity.addItem("26 (faces, edges, corners)", 26)
        self.connectivity.setToolTip("Which neighbours join pore voxels into one cluster")
        self.measure_button = QPushButton("Measure")
        self.measure_button.clicked.connect(self.measure)
        self.split_button = QPushButton("Split into density objects…")
        self.split_button.setToolTip("This study has no label layer: make objects 1–6 from six density bins")
        self.split_button.clicked.connect(self.split_objects)
        self.save_button = QPushButton("Save JSON or CSV…")
        self.save_button.clicked.connect(self._ask_save)
        self.row = TaskRow()

        self.values = {name: QLabel("–") for name in FIELDS}
        form = QFormLayout()
        form.addRow("Measure", self.label_box)
        form.addRow("Connectivity", self.connectivity)
        buttons = QHBoxLayout()
        for b in (self.measure_button, self.split_button, self.save_button):
            buttons.addWidget(b)
        numbers = QFormLayout()
        for name, label in self.values.items():
            numbers.addRow(name, label)

        self.profile = pg.PlotWidget()
        self.profile.setLabel("bottom", "porosity", units="%")
        self.profile.setLabel("left", "depth", units="mm")
        self.profile.invertY(True)   # depth grows downwards, as a soil profile is drawn
        self.profile_curve = self.profile.plot([], [], pen=pg.mkPen("#2e86c1", width=2), symbol="o", symbolSize=3)
        self.profile.scene().sigMouseClicked.connect(self._profile_clicked)
        self.sizes = pg.PlotWidget()
        self.sizes.setLabel("bottom", "pore size (local thickness)", units="mm")
        self.sizes.setLabel("left", "pore voxels")
        self.size_bars = None
        self.clusters = QListWidget()
        self.plots = QTabWidget()
        self.plots.addTab(self.profile, "Depth profile")
        self.plots.addTab(self.sizes, "Pore sizes")
        self.plots.addTab(self.clusters, "Largest clusters")

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.row)
        layout.addLayout(numbers)
        layout.addWidget(self.plots, 1)
        self.set_study(getattr(window, "study", None))

    # -- study -------------------------------------------------------------------------------
    def set_study(self, study) -> None:
        """Follow another study (the dock calls this when the window opens one)."""
        if self.study is not None:
            for sig in (self.study.layers.events.inserted, self.study.layers.events.removed):
                sig.disconnect(self._fill_labels)
        self.study = study
        if study is not None:
            for sig in (study.layers.events.inserted, study.layers.events.removed):
                sig.connect(self._fill_labels)
        self._fill_labels()

    def showEvent(self, ev) -> None:
        super().showEvent(ev)
        if self.study is not getattr(self.window, "study", None):   # a dock that does not call set_study
            self.set_study(self.window.study)

    def _fill_labels(self, *_) -> None:
        current = self.current_choice()
        self._choices = work.label_choices(self.study)
        self.label_box.clear()
        self.label_box.addItems([c.text for c in self._choices])
        keep = next((n for n, c in enumerate(self._choices)
                     if current and c.layer is current.layer and c.label == current.label), None)
        self.label_box.setCurrentIndex(keep if keep is not None else work.default_choice(self._choices))
        self._enable()

    def current_choice(self) -> work.LabelChoice | None:
        n = self.label_box.currentIndex()
        return self._choices[n] if 0 <= n < len(self._choices) else None

    def _enable(self) -> None:
        busy = self.row.running
        has_image = self.study is not None and not self.study.image.is_rgb
        self.measure_button.setEnabled(bool(self._choices) and not busy)
        self.split_button.setVisible(has_image and not self._choices)
        self.split_button.setEnabled(not busy)
        self.save_button.setEnabled(self.stats is not None)
        if has_image and not self._choices and not busy:
            self.row.say("This study has no label layer: split it into density objects first.")

    # -- work --------------------------------------------------------------------------------
    def measure(self) -> bool:
        choice = self.current_choice()
        if choice is None or self.row.running:
            return False
        self._measured_spacing = choice.layer.labels.volume.spacing
        # a pore phase from the Phases tab carries its method and threshold: they go with what is saved
        phases = choice.layer.labels.volume.meta.get("phases") if choice.label == work.PORES_ID else None
        self._phases = dict(phases) if phases else None
        self.row.start("Measuring pores", work.measure, choice.layer.array, self._measured_spacing, choice.label,
                       self.connectivity.currentData(), on_result=self.show_stats, on_finished=self._enable)
        self._enable()
        return True

    def split_objects(self) -> bool:
        if self.study is None or self.row.running:
            return False
        study = self.study
        self.row.start("Splitting into density objects", work.split_objects, study.image,
                       on_result=lambda labels: self._add_objects(study, labels), on_finished=self._enable)
        self._enable()
        return True

    def _add_objects(self, study, labels) -> None:
        from ctviewer.data.layers import LabelLayer

        if study is not self.study:
            return   # the user opened another study meanwhile
        layer = LabelLayer(labels, name=work.OBJECTS_LAYER)
        study.layers.append(layer)
        self.row.say("Density objects 1–6 added; object 1 (the pores) is chosen.")
        self.objects_added.emit(layer)

    # -- results -----------------------------------------------------------------------------
    def show_stats(self, stats) -> None:
        stats = sample_porosity(stats, self._phases)
        self.stats = stats
        v = self.values
        v["Porosity"].setText(f"{100.0 * stats.porosity:.2f} %")
        v["Pore clusters"].setText(f"{stats.clusters}")
        v["Largest cluster"].setText(f"{100.0 * stats.largest_cluster_fraction:.1f} % of the pore volume")
        v["Euler number"].setText(f"{stats.euler_number}")
        v["Percolates top to bottom"].setText("yes" if stats.percolates else "no")
        v["Mean pore size"].setText(f"{stats.mean_thickness_mm:.3g} mm")
        depth, porosity = work.depth_profile(stats, self._measured_spacing[0])
        self.profile_curve.setData(porosity, depth)
        edges, counts = work.size_distribution(stats)
        if self.size_bars is not None:
            self.sizes.removeItem(self.size_bars)
        self.size_bars = pg.BarGraphItem(x0=edges[:-1], x1=edges[1:], height=counts, brush="#27ae60")
        self.sizes.addItem(self.size_bars)
        self.clusters.clear()
        self.clusters.addItems(work.cluster_rows(stats, TOP_CLUSTERS))
        self.row.say(f"Measured with {stats.connectivity}-connectivity.")
        self._enable()
        self.measured.emit(stats)

    def _profile_clicked(self, ev) -> None:
        """A click on the depth profile moves the views to the slice at that depth."""
        if self.stats is None or self.study is None or ev.button() != pg.QtCore.Qt.MouseButton.LeftButton:
            return
        box = self.profile.getPlotItem().getViewBox()
        if not box.sceneBoundingRect().contains(ev.scenePos()):
            return
        depth = box.mapSceneToView(ev.scenePos()).y()
        self.go_to_depth(depth)

    def go_to_depth(self, depth_mm: float) -> int:
        k = work.depth_to_slice(depth_mm, self._measured_spacing[0], self.study.image.shape[0])
        _, j, i = self.study.cursor
        self.study.cursor = (k, j, i)
        return k

    # -- saving ------------------------------------------------------------------------------
    def save_json(self, path) -> Path:
        from ctviewer.io.atomic import atomic_write_text

        data = self.stats.to_dict()
        if self._phases:
            data["phases"] = self._saved_phases()
        atomic_write_text(path, json.dumps(data, indent=2) + "\n")
        return Path(path)

    def save_csv(self, path) -> list[Path]:
        """NAME_profile.csv, NAME_clusters.csv and NAME_sizes.csv beside ``path`` (NAME.csv)."""
        from ctviewer.workflows.soil.pores import write_pore_csvs

        from ctviewer.io.atomic import atomic_write_text

        path = Path(path)
        prefix = path.with_suffix("") if path.suffix.lower() == ".csv" else path
        written = write_pore_csvs(self.stats, prefix)
        if self._phases:   # NAME_phases.json beside the tables: how the pores were told from the solid
            written.append(prefix.with_name(f"{prefix.name}_phases.json"))
            atomic_write_text(written[-1], json.dumps(self._saved_phases(), indent=2) + "\n")
        return written

    def _saved_phases(self) -> dict:
        """How the pores were found, as saved: the sample's voxel count, not its count per slice."""
        return {k: v for k, v in self._phases.items() if k != "sample_voxels_by_slice"}

    def _ask_save(self) -> None:
        if self.stats is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save pore statistics", "pores.json",
                                              "JSON (*.json);;CSV tables: profile, clusters, sizes (*.csv)")
        if path:
            try:
                if path.lower().endswith(".csv"):
                    names = ", ".join(p.name for p in self.save_csv(path))
                else:
                    names = self.save_json(path).name
                self.row.say(f"Saved {names}")
            except (InputError, OSError) as exc:
                self.row.say(one_line(exc), error=True)
