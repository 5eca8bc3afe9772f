"""Predict folder… in the dock: progress with Cancel while the model process works through the photos,
then a one-line summary and the class fractions per photo, read back from the rows predict_folder returns
(the same numbers as its fractions.csv)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QHBoxLayout, QHeaderView, QLabel, QProgressBar, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)


def summary(rows: list[dict], out, problems=()) -> str:
    """One line, e.g. "9 photos predicted into OUT; porosity 8.1–15.3 % (mean 11.2 %); 1 photo skipped"."""
    text = f"{len(rows)} photo{'s' * (len(rows) != 1)} predicted into {out}"
    values = [float(r["porosity"]) for r in rows if r.get("porosity") is not None]
    if len(values) > 1:
        text += f"; porosity {min(values):.1f}–{max(values):.1f} % (mean {sum(values) / len(values):.1f} %)"
    elif values:
        text += f"; porosity {values[0]:.1f} %"
    if problems:
        text += f"; {len(problems)} photo{'s' * (len(problems) != 1)} skipped"
    return text


def table_rows(rows: list[dict], table) -> tuple[list[str], list[list[str]]]:
    """Headers and cells: photo, % per class of ``table`` (as fractions.csv names them), porosity %."""
    headers = ["photo"] + [f"{lab.id} {lab.name} %" for lab in table] + ["porosity %"]
    cells = []
    for row in rows:
        fractions = {int(k): float(v) for k, v in (row.get("fractions") or {}).items()}
        cells.append([str(row.get("image", ""))] + [f"{fractions.get(lab.id, 0.0):.2f}" for lab in table]
                     + [f"{float(row.get('porosity', 0.0)):.2f}"])
    return headers, cells


class FolderResults(QWidget):
    def __init__(self, on_cancel, parent=None):
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(on_cancel)
        self.progress_row = QWidget()
        row = QHBoxLayout(self.progress_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(0, 0)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMaximumHeight(180)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.progress_row, self.summary, self.table):
            layout.addWidget(widget)
        self.progress_row.hide()
        self.table.hide()

    def started(self, what: str) -> None:
        self.bar.setValue(0)
        self.bar.setFormat(f"{what} %p%")
        self.cancel_button.setEnabled(True)
        self.progress_row.show()
        self.summary.setText("")

    def progress(self, fraction: float, message: str) -> None:
        self.bar.setValue(int(fraction * 1000))
        self.bar.setFormat(f"{message} %p%" if message else "%p%")

    def finished(self) -> None:
        self.progress_row.hide()

    def say(self, text: str) -> None:
        self.summary.setText(text)

    def show_rows(self, rows: list[dict], out, problems, table) -> None:
        """The summary line (and one line per skipped photo), then a row of fractions per photo."""
        headers, cells = table_rows(rows, table)
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setRowCount(len(cells))
        for r, values in enumerate(cells):
            for c, text in enumerate(values):
                cell = QTableWidgetItem(text)
                if c:
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, cell)
        self.table.setVisible(bool(cells))
        self.summary.setText("\n".join([summary(rows, out, problems), *map(str, problems)]))
