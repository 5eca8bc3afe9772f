"""What the model dock does with segmentation models: predict a label layer, score it, compare models.

The network runs in the shared model process (TensorFlow and VTK's OpenGL crash one process); the
prediction comes back as a label array and becomes an ordinary label layer, so the labels dock's
brush, eraser and fill correct it, the 3D panel shows its surfaces and File ▸ Save labels saves it.
A vertebrae model's prediction comes split into vertebrae by the vertebra count: labels named
"vertebrae L1" … with TotalSegmentator's ids (or one class, and the log says why).

When the study already has a label layer holding the model's label ids (a reference segmentation
the user opened), the prediction is scored against it at once: Dice and Jaccard per label, one row
per run in the dock's Scores tab, with the per-model means (the 2D-vs-3D table) below; both tables
save as CSV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from ctviewer.errors import InputError

SCORE_HEADERS = ("Study", "Model", "Label", "Dice", "Jaccard")
TABLE_HEADERS = ("Model", "Label", "Mean Dice", "Median Dice", "Mean Jaccard", "Studies")


def segment_study(volume, model_path: str, keep_largest: bool, progress=None, cancel=None):
    """Worker body: the model's SegmentResult for ``volume`` (computed in the model process; a vertebrae
    model's mask comes back split into vertebrae by level, see ``segment.add_levels``)."""
    from ctviewer.ml.child import shared_process
    from ctviewer.workflows.segmentation.segment import check_scan

    check_scan(volume, volume.source or volume.name or "the study")
    progress(0.0, "running the model")
    return shared_process().call("ctviewer.workflows.segmentation.segment:segment", volume, model_path,
                                 keep_largest, progress=progress, cancel=cancel)


def prediction_layer(study, result, model_name: str):
    """A label layer (named after the model) holding the prediction, on the study's grid."""
    from ctviewer.data.labels import LabelMap
    from ctviewer.data.layers import LabelLayer
    from ctviewer.workflows.segmentation.segment import label_table

    image = study.image
    volume = image.with_array(result.labels, window=None, modality="", name=f"{model_name} prediction", source="")
    return LabelLayer(LabelMap(volume, label_table(result.groups)), name=f"{model_name} prediction")


def reference_layer(study, groups):
    """The newest label layer holding any id the model's groups were trained on (or None); a group
    trained on "all non-zero" takes any layer with labels."""
    wanted = {int(i) for g in groups for i in (g.get("ids") or [])}
    any_label = any(g.get("ids") is None for g in groups)
    for layer in reversed(study.layers.by_kind("labels")):
        ids = set(np.unique(layer.array).tolist()) - {0}
        if (any_label and ids) or wanted & ids:
            return layer
    return None


def score_rows(study_name: str, model_name: str, result, reference) -> list[dict]:
    """Dice and Jaccard of each group the model was trained on; where its vertebrae were split into
    levels, also of each level the reference holds (a TotalSegmentator-style reference has 26–50)."""
    from ctviewer.workflows.segmentation.metrics import case_scores

    trained = result.model_groups or result.groups
    rows = case_scores(study_name, _as_trained(result), reference.array, trained)
    if result.model_groups:
        present = set(np.unique(reference.array).tolist())
        levels = [g for g in result.groups if g not in trained and set(g["ids"]) == {g["label_id"]}
                  and g["label_id"] in present]
        rows += case_scores(study_name, result.labels, reference.array, levels)
    for row in rows:
        row["model"] = model_name
    return rows


def _as_trained(result) -> np.ndarray:
    """The labels as the model painted them: levelled vertebrae back in their group's one label."""
    if not result.model_groups:
        return result.labels
    labels = result.labels.copy()
    for trained in result.model_groups:
        ids = {int(i) for i in trained.get("ids") or []}
        for group in result.groups:
            if group not in result.model_groups and set(group["ids"]) <= ids:
                labels[result.labels == int(group["label_id"])] = int(trained["label_id"])
    return labels


class ScoresPanel(QWidget):
    """Dice / Jaccard of every scored run in this session, and the per-model comparison."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[dict] = []
        self.runs = _table(SCORE_HEADERS)
        self.summary = _table(TABLE_HEADERS)
        self.note = QLabel("Run a segmentation model on a study that has a reference label layer "
                           "(File ▸ Open labels…) to score it here.")
        self.note.setWordWrap(True)
        self.save_scores = QPushButton("Save scores…")
        self.save_scores.clicked.connect(lambda: self._save(False))
        self.save_table = QPushButton("Save comparison…")
        self.save_table.clicked.connect(lambda: self._save(True))
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_scores)
        buttons.addWidget(self.save_table)
        layout = QVBoxLayout(self)
        for widget in (self.note, self.runs, QLabel("Per model (mean over studies):"), self.summary):
            layout.addWidget(widget)
        layout.addLayout(buttons)
        self._refresh()

    def add(self, rows: list[dict]) -> None:
        self.rows.extend(rows)
        self._refresh()

    def comparison(self) -> list[dict]:
        from ctviewer.workflows.segmentation.metrics import comparison_table

        by_model: dict[str, list[dict]] = {}
        for row in self.rows:
            by_model.setdefault(row["model"], []).append(row)
        return comparison_table(by_model)

    def _refresh(self) -> None:
        _fill(self.runs, [(r["case"], r["model"], r["label"], f"{r['dice']:.3f}", f"{r['jaccard']:.3f}")
                          for r in self.rows])
        _fill(self.summary, [(r["model"], r["label"], f"{r['mean_dice']:.3f}", f"{r['median_dice']:.3f}",
                              f"{r['mean_jaccard']:.3f}", str(r["cases"])) for r in self.comparison()])
        for button in (self.save_scores, self.save_table):
            button.setEnabled(bool(self.rows))
        self.note.setVisible(not self.rows)

    def save(self, path: str | Path, comparison: bool) -> Path:
        from ctviewer.workflows.segmentation.metrics import write_comparison_csv, write_scores_csv

        return write_comparison_csv(path, self.comparison()) if comparison else write_scores_csv(path, self.rows)

    def _save(self, comparison: bool) -> None:
        name = "segmentation_comparison.csv" if comparison else "segmentation_scores.csv"
        path, _ = QFileDialog.getSaveFileName(self, "Save as CSV", name, "CSV (*.csv)")
        if path:
            try:
                self.save(path, comparison)
            except InputError as exc:
                self.note.setText(str(exc))
                self.note.show()


def _table(headers) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().hide()
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    return table


def _fill(table: QTableWidget, rows) -> None:
    table.setRowCount(len(rows))
    for r, values in enumerate(rows):
        for c, text in enumerate(values):
            table.setItem(r, c, QTableWidgetItem(text))
