"""The labels panel: the edited layer's label table, its statistics, and the paint options.

Rows mirror the layer's :class:`~ctviewer.data.labels.LabelTable` (it is redrawn on the table's
``changed``, so names and colours changed elsewhere show here). Statistics are computed in a
worker a moment after the last edit, never on the GUI thread.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QColorDialog, QDockWidget, QFileDialog, QHBoxLayout, QHeaderView, QLabel,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from app.docks.paint_options import PaintOptions
from app.workers import run_worker
from ctviewer.data.labels import LabelTable
from ctviewer.errors import InputError

COLUMNS = ("", "Id", "Name", "Show", "Lock", "Voxels", "mL", "Mean ± SD", "%")
SWATCH, ID, NAME, SHOW, LOCK, VOXELS, ML, MEAN, PERCENT = range(len(COLUMNS))
#: Statistics wait this long after the last edit, so a brush stroke does not start one per dab.
STATS_DELAY_MS = 700
NO_LAYER_HINT = "No label layer: New label layer, or File ▸ Add label map"
TABLE_FILTER = "ITK-SNAP label descriptions (*.txt *.label);;JSON (*.json);;All files (*)"


class LabelsDock(QDockWidget):
    #: One line for the user (bad table file, failed statistics); the main window shows it.
    error = Signal(str)

    def __init__(self, annotator, parent=None):
        super().__init__("Labels", parent)
        self.setObjectName("labels_dock")
        self.annotator = annotator
        self.layer = None
        self.stats: dict[int, object] = {}  # label id -> LabelStats of the last finished run
        self._worker = None
        self._syncing = False
        self._build()
        self._stats_timer = QTimer(self, singleShot=True, interval=STATS_DELAY_MS)
        self._stats_timer.timeout.connect(self.refresh)
        annotator.layer_changed.connect(self.set_layer)
        annotator.label_changed.connect(self._select_label)
        annotator.edited.connect(self._edited)
        self.set_layer(annotator.layer)

    def _build(self) -> None:
        body = QWidget()
        layout = QVBoxLayout(body)
        self.new_layer_button = QPushButton("New label layer")
        self.new_layer_button.clicked.connect(self.new_layer)
        self.hint = QLabel(NO_LAYER_HINT)
        self.hint.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        # Fixed, fitted once per redraw in _sync_rows: ResizeToContents re-measures the whole column on
        # every cell's setText, which made the first fill of ~90 labels with statistics stall the GUI.
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.horizontalHeader().setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        self.table.itemChanged.connect(self._item_changed)
        self.table.currentCellChanged.connect(self._row_selected)
        self.table.cellDoubleClicked.connect(lambda row, col: col == SWATCH and self.choose_colour())
        self.status = QLabel("")
        self.status.setWordWrap(True)
        # Remove through a lambda: clicked(bool) would otherwise arrive as the label id
        rows = ((("Add", self.add_label), ("Remove", lambda: self.remove_label()), ("Colour…", self.choose_colour)),
                (("Import table…", self.choose_import), ("Export table…", self.choose_export),
                 ("Refresh", self.refresh)))
        self.buttons: dict[str, QPushButton] = {}
        for widget in (self.new_layer_button, self.hint, self.table):
            layout.addWidget(widget)
        for row in rows:
            line = QHBoxLayout()
            for text, slot in row:
                button = self.buttons[text] = QPushButton(text)
                button.clicked.connect(slot)
                line.addWidget(button)
            layout.addLayout(line)
        layout.addWidget(self.status)
        self.paint_options = PaintOptions(self.annotator)
        layout.addWidget(self.paint_options)
        self.setWidget(body)

    # -- following the edited layer ------------------------------------------------------------
    @property
    def label_table(self) -> LabelTable | None:
        return self.layer.labels.table if self.layer is not None else None

    def set_layer(self, layer) -> None:
        if self.label_table is not None:
            self.label_table.changed.disconnect(self._sync_rows)
        self.layer = layer
        self.stats = {}
        if layer is not None:
            layer.labels.table.changed.connect(self._sync_rows)
        photo = self.is_photo
        self.table.horizontalHeaderItem(VOXELS).setText("Pixels" if photo else "Voxels")
        for col, hidden in ((ML, photo), (MEAN, photo), (PERCENT, not photo)):
            self.table.setColumnHidden(col, hidden)
        self.hint.setVisible(layer is None)
        self.table.setEnabled(layer is not None)
        for button in self.buttons.values():
            button.setEnabled(layer is not None)
        self._sync_rows()
        self.refresh()

    def _edited(self, _bbox) -> None:
        self._stats_timer.start()  # restarts: statistics wait for a pause in the painting

    @property
    def is_photo(self) -> bool:
        study = self.annotator.study
        return study is not None and study.image.is_photo

    def _sync_rows(self) -> None:
        """Redraw the rows from the table, reusing items (this may run inside an item's own edit)."""
        labels = list(self.label_table) if self.label_table is not None else []
        self._syncing = True
        self.table.blockSignals(True)
        try:
            self.table.setRowCount(len(labels))
            for row, lab in enumerate(labels):
                self._fill_row(row, lab)
            self._fit_columns()
            self._select_label(self.annotator.label)
        finally:
            self.table.blockSignals(False)
            self._syncing = False

    def _fit_columns(self) -> None:
        """Size every column but the stretched name to its contents (and header), once for all rows."""
        for col in range(len(COLUMNS)):
            if col != NAME and not self.table.isColumnHidden(col):
                self.table.resizeColumnToContents(col)

    def _item(self, row: int, col: int) -> QTableWidgetItem:
        item = self.table.item(row, col)
        if item is None:
            item = QTableWidgetItem()
            flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
            if col == NAME:
                flags |= Qt.ItemFlag.ItemIsEditable
            elif col in (SHOW, LOCK):
                flags |= Qt.ItemFlag.ItemIsUserCheckable
            elif col >= VOXELS:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.setFlags(flags)
            self.table.setItem(row, col, item)
        return item

    def _fill_row(self, row: int, lab) -> None:
        self._item(row, SWATCH).setBackground(QColor(*lab.colour))
        self._item(row, SWATCH).setToolTip("Double-click to change the colour")
        self._item(row, ID).setText(str(lab.id))
        self._item(row, ID).setData(Qt.ItemDataRole.UserRole, lab.id)
        if self._item(row, NAME).text() != lab.name:
            self._item(row, NAME).setText(lab.name)
        for col, on in ((SHOW, lab.visible), (LOCK, lab.locked)):
            self._item(row, col).setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        s = self.stats.get(lab.id)
        known = bool(self.stats) or s is not None  # after a run, an absent label has no voxels
        texts = {VOXELS: f"{s.voxels:,}" if s else ("0" if known else ""),
                 ML: f"{s.volume_ml:.2f}" if s and s.volume_ml is not None else "",
                 MEAN: f"{s.mean:.1f} ± {s.sd:.1f}" if s and s.mean is not None else "",
                 PERCENT: f"{s.fraction_pct:.2f}" if s else ("0.00" if known else "")}
        for col, text in texts.items():
            self._item(row, col).setText(text)

    def label_id_at(self, row: int) -> int | None:
        item = self.table.item(row, ID)
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def row_of(self, label_id: int) -> int:
        return next((r for r in range(self.table.rowCount()) if self.label_id_at(r) == label_id), -1)

    # -- edits through the rows ----------------------------------------------------------------
    def _item_changed(self, item: QTableWidgetItem) -> None:
        if self._syncing or self.label_table is None:
            return
        label_id, col = self.label_id_at(item.row()), item.column()
        checked = item.checkState() == Qt.CheckState.Checked
        if col == NAME:
            name = item.text().strip()
            if name and name != self.label_table[label_id].name:
                self.label_table.update(label_id, name=name)
            else:
                self._sync_rows()  # an empty name goes back to the old one
        elif col == SHOW and checked != self.label_table[label_id].visible:
            self.label_table.update(label_id, visible=checked)
        elif col == LOCK and checked != self.label_table[label_id].locked:
            self.label_table.update(label_id, locked=checked)

    def _row_selected(self, row: int, *_) -> None:
        label_id = self.label_id_at(row) if row >= 0 else None
        if not self._syncing and label_id is not None and label_id != self.annotator.label:
            self.annotator.set_label(label_id)

    def _select_label(self, label_id: int) -> None:
        row = self.row_of(label_id)
        if row != self.table.currentRow():
            blocked = self.table.blockSignals(True)
            if row >= 0:
                self.table.selectRow(row)
            else:
                self.table.clearSelection()
                self.table.setCurrentCell(-1, -1)
            self.table.blockSignals(blocked)

    def current_label_id(self) -> int | None:
        row = self.table.currentRow()
        return self.label_id_at(row) if row >= 0 else None

    def new_layer(self) -> None:
        # always enabled: opening a study without label layers changes no layer, so no signal says so
        if self.annotator.study is None:
            self.error.emit("Open an image first: a label layer lies on an image's grid.")
        else:
            self.annotator.new_layer()

    def add_label(self) -> None:
        if self.label_table is not None:
            self.annotator.set_label(self.label_table.add().id)

    def remove_label(self, label_id: int | None = None) -> None:
        """Take a label out of the table; its voxels keep their id until painted over."""
        label_id = self.current_label_id() if label_id is None else label_id
        if self.label_table is None or label_id not in self.label_table:
            return
        name = self.label_table[label_id].name
        s = self.stats.get(label_id)
        self.label_table.remove(label_id)
        count = f"its {s.voxels:,} voxels" if s else "its voxels"
        self.status.setText(f"Removed “{name}” from the table; {count} keep id {label_id} until painted over.")
        rest = self.label_table.ids
        if label_id == self.annotator.label and rest:
            self.annotator.set_label(rest[0])

    def choose_colour(self) -> None:
        label_id = self.current_label_id()
        if label_id is None or self.label_table is None:
            return
        colour = QColorDialog.getColor(QColor(*self.label_table[label_id].colour), self, "Label colour")
        if colour.isValid():
            self.set_colour(label_id, colour)

    def set_colour(self, label_id: int, colour: QColor) -> None:
        self.label_table.update(label_id, colour=(colour.red(), colour.green(), colour.blue()))

    # -- table files ---------------------------------------------------------------------------
    def choose_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import label table", "", TABLE_FILTER)
        if path:
            self.import_table(path)

    def choose_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export label table", "labels.txt", TABLE_FILTER)
        if path:
            self.export_table(path)

    def import_table(self, path) -> bool:
        """Take names, colours and visibility from a file; labels it does not name are kept."""
        if self.label_table is None:
            return False
        try:
            imported = LabelTable.read(path)
        except (InputError, OSError, ValueError) as exc:
            self.error.emit(f"Cannot import the label table {path}: {_one_line(exc)}")
            return False
        for lab in imported:
            if lab.id not in self.label_table:
                self.label_table.add(lab.id)
            self.label_table.update(lab.id, name=lab.name, colour=tuple(lab.colour), visible=lab.visible,
                                    opacity=lab.opacity)
        self.status.setText(f"Imported {len(imported)} labels from {path}")
        return True

    def export_table(self, path) -> bool:
        if self.label_table is None:
            return False
        try:
            self.label_table.write(path)
        except (InputError, OSError, ValueError) as exc:
            self.error.emit(f"Cannot export the label table to {path}: {_one_line(exc)}")
            return False
        self.status.setText(f"Exported {len(self.label_table)} labels to {path}")
        return True

    # -- statistics ----------------------------------------------------------------------------
    @property
    def computing(self) -> bool:
        return self._worker is not None

    def refresh(self) -> None:
        """Recompute the statistics in a worker; a run still going is cancelled."""
        from ctviewer.imaging.label_stats import label_statistics

        self._stats_timer.stop()
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        if self.layer is None or self.annotator.study is None:
            self.status.setText("")
            return
        self.status.setText("computing statistics…")
        self._worker = run_worker(label_statistics, self.annotator.study.image, self.layer.labels,
                                  on_result=self._show_stats, on_error=self._stats_failed)

    def _from_current_run(self) -> bool:
        """A cancelled run may still deliver a result already queued; only the newest counts."""
        current = self._worker is not None and self.sender() is self._worker.signals
        if current:
            self._worker = None
        return current

    def _show_stats(self, stats) -> None:
        if self._from_current_run():
            self.stats = {s.id: s for s in stats}
            self.status.setText("")
            self._sync_rows()

    def _stats_failed(self, exc: Exception) -> None:
        if self._from_current_run():
            self.status.setText("")
            self.error.emit(f"Label statistics failed: {_one_line(exc)}")


def _one_line(exc: Exception) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0]
